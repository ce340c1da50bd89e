"""Scan speed (issue 3): a 100,000-entry dir, 10,000 orphaned files, and a cold start.

Run: `uv run python benchmarks/scan_bench.py [--rounds N]`. Prints ratios against baselines
measured in the same run and rewrites the "Scan" section of benchmarks/RESULTS.md.

Start-up is measured twice: with bytecode compiled (what users' installs have) and with every
import compiled from source (what `PYTHONDONTWRITEBYTECODE=1` machines see without it).
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from _common import ROOT, interleaved_medians, record, time_command

GOALS = {"big_dir": 1.5, "classify_s": 0.5, "cold": 4.0}


def make_big_dir(path: Path, entries: int, locks: int) -> None:
    path.mkdir()
    for i in range(entries - locks):
        (path / f"file-{i:06d}.tmp").touch()
    for i in range(locks):
        (path / f"uv-{i:016x}.lock").touch()


def compile_bytecode() -> None:
    """Compile the app and what the scan path imports, as an installed wheel would have them."""
    site = Path(sysconfig.get_path("purelib"))
    for target in (ROOT / "app" / "uvsweep", site / "platformdirs"):
        compileall.compile_dir(str(target), quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()

    python = sys.executable
    uvsweep = str(Path(python).with_name("uvsweep"))
    find = shutil.which("find") or "find"
    env_bytecode = {**os.environ}
    env_bytecode.pop("PYTHONDONTWRITEBYTECODE", None)
    compile_bytecode()
    work = Path(tempfile.mkdtemp(prefix="uvsweep-bench-"))
    no_cache = work / "empty-pycache"  # an empty cache prefix: every import compiles from source
    env_source = {
        **os.environ,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPYCACHEPREFIX": str(no_cache),
    }
    lines = []
    try:
        # 1. 100,000 entries, 10 of them uv lock files
        big = work / "big"
        make_big_dir(big, 100_000, 10)
        runs = interleaved_medians(
            {
                "python -c pass": lambda: time_command([python, "-c", "pass"], env_bytecode),
                "find": lambda: time_command(
                    [find, str(big), "-maxdepth", "1", "-name", "uv-*.lock"], env_bytecode
                ),
                "uvsweep scan --json": lambda: time_command(
                    [uvsweep, "scan", "--json", "--dir", str(big)], env_bytecode
                ),
            },
            args.rounds,
        )
        baseline = runs["find"] + runs["python -c pass"]
        ratio = runs["uvsweep scan --json"] / baseline
        lines.append("### 100,000 entries, 10 uv lock files (bytecode compiled)\n")
        lines.append("| command | median |\n|---|---|")
        lines += [f"| `{name}` | {value * 1000:.1f} ms |" for name, value in runs.items()]
        lines.append(
            f"\n`uvsweep scan --json` / (`find` + interpreter start) = **{ratio:.2f}x** "
            f"(goal <= {GOALS['big_dir']}x: {'met' if ratio <= GOALS['big_dir'] else 'NOT met'})\n"
        )
        print(f"big dir: {ratio:.2f}x of find + python start")

        # 2. 10,000 orphaned lock files classified (engine time, in process)
        many = work / "many"
        many.mkdir()
        for i in range(10_000):
            (many / f"uv-{i:016x}.lock").touch()
        sys.path.insert(0, str(ROOT / "app"))
        from uvsweep import scanner  # noqa: PLC0415

        timings = []
        for _ in range(5):
            start = time.perf_counter()
            snap = scanner.scan([str(many)])
            timings.append(time.perf_counter() - start)
            assert snap.count(scanner.STATE_ORDER[0]) == 10_000, snap.summary()
        best, median = min(timings), sorted(timings)[len(timings) // 2]
        lines.append("### 10,000 orphaned lock files classified (engine time, in process)\n")
        lines.append(
            "`scanner.scan` (probe, /proc walk, classify, label): "
            f"median **{median * 1000:.0f} ms**, "
            f"best {best * 1000:.0f} ms over 5 runs "
            f"(goal < {GOALS['classify_s'] * 1000:.0f} ms: "
            f"{'met' if median < GOALS['classify_s'] else 'NOT met'})\n"
        )
        print(f"10,000 files: {median * 1000:.0f} ms")

        # 3. cold start on an empty dir, with and without bytecode
        empty = work / "empty"
        empty.mkdir()
        lines.append("### Cold `uvsweep scan` on an empty dir\n")
        lines.append("| bytecode | `python -c pass` | `uvsweep scan` | ratio |\n|---|---|---|---|")
        for label, env in (
            ("compiled (users' installs)", env_bytecode),
            ("none: compiled from source", env_source),
        ):
            runs = interleaved_medians(
                {
                    "pass": lambda env=env: time_command([python, "-c", "pass"], env),
                    "scan": lambda env=env: time_command(
                        [uvsweep, "scan", "--dir", str(empty)], env
                    ),
                },
                args.rounds,
            )
            ratio = runs["scan"] / runs["pass"]
            lines.append(
                f"| {label} | {runs['pass'] * 1000:.1f} ms | {runs['scan'] * 1000:.1f} ms | "
                f"**{ratio:.2f}x** |"
            )
            print(f"cold scan ({label}): {ratio:.2f}x of python -c pass")
        lines.append(
            f"\nGoal: within {GOALS['cold']}x of `python -c pass`, with bytecode compiled."
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    record("Scan", "\n".join(lines))
    print(f"wrote {ROOT / 'benchmarks' / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
