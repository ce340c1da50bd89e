"""Cleanup speed (issue 4): removing 10,000 orphaned uv lock files, against `rm -f`.

Run: `uv run python benchmarks/clean_bench.py [--files N] [--rounds N]`. Each round makes the same
N empty files in a fresh dir, then removes them with `rm -f <every name>` or with
`uvsweep clean --dir DIR --ignore-running-uv` (the gate is skipped so a uv process elsewhere on
the machine cannot turn the run into a no-op; every per-file check runs). Rounds alternate, and
the medians and their ratio are printed and written to the "Clean" section of RESULTS.md.
Bytecode is compiled first, as users' installs have it. The engine time in process (no
interpreter start) is reported too. `--baseline-app DIR` (a copy of another version's `app/`,
say `git archive <commit> app | tar -x -C DIR`) times that version's `clean` in the same rounds,
for a before/after ratio measured in the same minutes. `--quick` (CI: 200 files, one round,
nothing written, no goal checked) only shows the script still runs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import ROOT, record
from scan_bench import compile_bytecode

GOAL = 5.0  # issue 12
STRETCH = 2.0  # issue 19


#: The protocol's own system calls and nothing else, in a bare Python process: per file open,
#: fstat, exclusive try-lock, the write lease taken (kept), looked at before the unlink, lstat of
#: the name while holding, unlink while locked, the lease looked at again, close (in batches, as
#: `clean` holds them). What `clean` could take in Python if every check, table read and fd
#: walk were free.
BARE_PROTOCOL = """
import fcntl, os, sys
flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
d = os.open(sys.argv[1], os.O_RDONLY | os.O_DIRECTORY)
names = sorted(n for n in os.listdir(d) if n.startswith("uv-"))
for start in range(0, len(names), 2048):
    held = []
    for name in names[start:start + 2048]:
        fd = os.open(name, flags, dir_fd=d)
        os.fstat(fd)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.append((name, fd))
    for name, fd in held:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
    for name, fd in held:
        fcntl.fcntl(fd, fcntl.F_GETLEASE)
        os.lstat(name, dir_fd=d)
        os.unlink(name, dir_fd=d)
    for name, fd in held:
        fcntl.fcntl(fd, fcntl.F_GETLEASE)
        os.close(fd)
"""


def fill(directory: Path, count: int) -> list[str]:
    directory.mkdir()
    names = [f"uv-{i:016x}.lock" for i in range(count)]
    for name in names:
        (directory / name).touch()
    return names


def timed(argv: list[str], cwd: Path, env: dict[str, str], target: Path | None = None) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, check=False)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{argv[:3]} failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    if target is not None and any(target.iterdir()):
        said = done.stdout.decode().splitlines()
        kept = said[next((i for i, line in enumerate(said) if line.startswith("Kept")), 0) :]
        raise SystemExit(f"{argv[:2]} left files behind: {kept[:6]} {done.stderr.decode()[-300:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="CI: tiny sizes, nothing written")
    parser.add_argument("--baseline-app", help="another version's app/ dir, timed alongside")
    args = parser.parse_args()
    if args.quick:
        args.files, args.rounds = 200, 1

    compile_bytecode()
    env = {**os.environ}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    uvsweep = str(Path(sys.executable).with_name("uvsweep"))
    rm = shutil.which("rm") or "rm"
    work = Path(tempfile.mkdtemp(prefix="uvsweep-clean-bench-"))
    samples: dict[str, list[float]] = {
        "rm": [], "bare": [], "uvsweep": [], "engine": [], "baseline": [],
    }  # fmt: skip
    baseline_env = {**env, "PYTHONPATH": str(Path(args.baseline_app or ".").resolve())}
    if args.baseline_app:
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", args.baseline_app], check=True,
            capture_output=True,
        )  # fmt: skip
    try:
        for index in range(args.rounds):
            target = work / f"rm-{index}"
            names = fill(target, args.files)
            samples["rm"].append(timed([rm, "-f", *names], target, env, target))
            assert not any(target.iterdir()), "rm left files behind"

            target = work / f"bare-{index}"
            fill(target, args.files)
            command = [sys.executable, "-c", BARE_PROTOCOL, str(target)]
            samples["bare"].append(timed(command, work, env, target))

            target = work / f"uvsweep-{index}"
            fill(target, args.files)
            command = [uvsweep, "clean", "--dir", str(target), "--ignore-running-uv"]
            samples["uvsweep"].append(timed(command, work, env, target))

            if args.baseline_app:
                target = work / f"baseline-{index}"
                fill(target, args.files)
                command = [uvsweep, "clean", "--dir", str(target), "--ignore-running-uv"]
                samples["baseline"].append(timed(command, work, baseline_env, target))

            target = work / f"engine-{index}"
            fill(target, args.files)
            sys.path.insert(0, str(ROOT / "app"))
            from uvsweep import cleaner  # noqa: PLC0415

            start = time.perf_counter()
            report = cleaner.clean([str(target)], gate=False)
            samples["engine"].append(time.perf_counter() - start)
            assert len(report.removed) == args.files
    finally:
        shutil.rmtree(work, ignore_errors=True)

    med = {name: statistics.median(values) for name, values in samples.items() if values}
    ratio = med["uvsweep"] / med["rm"]
    verdict = "met" if ratio <= GOAL else "NOT met"
    stretch = "met" if ratio <= STRETCH else "NOT met"
    baseline = ""
    if "baseline" in med:
        baseline = (
            "| the same, by the version given as `--baseline-app` |"
            f" {med['baseline'] * 1000:.1f} ms |\n"
        )
    body = f"""
### {args.files:,} orphaned lock files removed (bytecode compiled, median of {args.rounds})

| command | median |
|---|---|
| `rm -f <{args.files:,} names>` | {med["rm"] * 1000:.1f} ms |
| the protocol's nine calls a file alone, bare `python -c` | {med["bare"] * 1000:.1f} ms \
({med["bare"] / med["rm"]:.2f}x `rm -f`) |
| `uvsweep clean --dir DIR --ignore-running-uv` | {med["uvsweep"] * 1000:.1f} ms |
| `cleaner.clean` in process (no interpreter start) | {med["engine"] * 1000:.1f} ms |
{baseline}
`uvsweep clean` / `rm -f` = **{ratio:.2f}x** (issue 12's goal <= {GOAL:.0f}x: {verdict}; issue 19's
<= {STRETCH:.0f}x: {stretch}); the protocol's calls alone, with no check, table or walk, take
{med["bare"] / med["rm"]:.2f}x, and `uvsweep clean` takes {med["uvsweep"] / med["bare"]:.2f}x
of that. Every file went
through the whole protocol: `O_NOFOLLOW` open, fstat, exclusive flock, the kernel's write lease
taken and kept, one `/proc/*/fd` walk per batch while holding (and `/proc/locks` only for files
the lease is refused for), the lease looked at, lstat, unlink while locked, the lease looked at
again, close.
"""
    print(body)
    if not args.quick:
        record("Clean", body)


if __name__ == "__main__":
    main()
