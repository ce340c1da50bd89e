"""Helpers for the benchmark scripts: timing whole commands, and recording results."""

from __future__ import annotations

import datetime
import os
import platform
import re
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"


def time_command(argv: Sequence[str], env: dict[str, str] | None = None) -> float:
    """Wall time of one run of `argv`, output discarded; fails loudly if the command fails."""
    start = time.perf_counter()
    done = subprocess.run(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False
    )
    elapsed = time.perf_counter() - start
    if done.returncode not in (0, 4):
        raise SystemExit(f"{argv} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    return elapsed


def run_measured(
    argv: Sequence[str], env: dict[str, str] | None = None, cwd: str | None = None
) -> tuple[float, int]:
    """(wall seconds, peak RSS in bytes) of one run of `argv`, output discarded; fails loudly if
    the command fails. The peak is read by GNU time (`/usr/bin/time`, Debian package `time`):
    a child forked from this (big) process would count this process's pages in its own peak."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as report:
        start = time.perf_counter()
        done = subprocess.run(
            ["/usr/bin/time", "-f", "%M", "-o", report.name, *argv],
            env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False,
        )  # fmt: skip
        elapsed = time.perf_counter() - start
        if done.returncode not in (0, 4):
            raise SystemExit(f"{argv} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
        peak_kb = int(report.read().split()[-1])
    return elapsed, peak_kb * 1024


def interleaved_medians(commands: dict[str, Callable[[], float]], rounds: int) -> dict[str, float]:
    """Median of `rounds` runs of each, interleaved so machine noise hits all alike."""
    samples: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(rounds):
        for name, run in commands.items():
            samples[name].append(run())
    return {name: statistics.median(values) for name, values in samples.items()}


def machine() -> str:
    """One line about where this ran."""
    return (
        f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores, "
        f"{platform.python_implementation()} {platform.python_version()}"
    )


def record(section: str, body: str) -> None:
    """Replace (or add) `## section` in RESULTS.md with today's date and `body`."""
    today = datetime.date.today().isoformat()
    text = (
        RESULTS.read_text()
        if RESULTS.exists()
        else "# Benchmark results\n\nWritten by the scripts in this folder; rerun to refresh.\n"
    )
    block = f"## {section}\n\n_{today}, {machine()}_\n\n{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(section)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = (
        pattern.sub(lambda _m: block + "\n", text)
        if pattern.search(text)
        else text.rstrip() + "\n\n" + block
    )
    RESULTS.write_text(text.rstrip() + "\n")
