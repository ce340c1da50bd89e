"""Scan speed (issues 3 and 19): big dirs against a bare-Python floor, 10,000 orphaned files
classified, and a cold start.

Run: `uv run python benchmarks/scan_bench.py [--rounds N] [--quick]`. Prints each row's ratio to
its floor, measured in the same run (commands interleaved, medians), and rewrites the "Scan"
section of benchmarks/RESULTS.md. `--quick` (CI: tiny sizes, one round, nothing written, no goal
checked) only shows the script still runs.

1. `uvsweep scan --json` of a dir of 100,000 entries, 10 of them uv lock files, labels on,
   against the floor: the same interpreter running a bare `os.scandir` prefix filter that prints
   the names as JSON (goal <= 1.2x).
2. The same at 1,000,000 entries, 1,000 of them lock files (built on tmpfs where there is one):
   time against the same floor (goal <= 1.2x) and peak RSS (goal <= 60 MB: the dir is streamed).
3. 10,000 orphaned lock files classified, in process (goal < 500 ms).
4. A cold `uvsweep scan` on an empty dir against `python -c pass`, with bytecode compiled (what
   users' installs have; goal <= 4x) and with every import compiled from source.

The commands run in the scratch dir (not inside a project); the label index also covers the uv
processes running on the machine, so other users' uv runs cost the scan (never the floor) time.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from _common import ROOT, interleaved_medians, record, run_measured, time_command

GOALS = {"big_dir": 1.2, "classify_s": 0.5, "cold": 4.0, "huge_rss_mb": 60.0}

#: Another uvsweep (`--baseline-app` on PYTHONPATH), started as the `uvsweep` script starts this
#: one (`python -m` would import runpy first: ~5 ms more).
AS_SCRIPT = "import sys; from uvsweep.cli import main; sys.exit(main())"

#: The floor: list the dir, keep the `uv-` names, print them as JSON.
FLOOR = (
    "import json, os, sys\n"
    "print(json.dumps([e.name for e in os.scandir(sys.argv[1]) if e.name.startswith('uv-')]))"
)


def make_big_dir(path: Path, entries: int, locks: int) -> None:
    """`entries` empty files, `locks` of them named as uv names its lock files, spread out."""
    path.mkdir()
    step = max(1, entries // max(1, locks))
    made = 0
    for i in range(entries):
        if made < locks and i % step == 0:
            name, made = f"uv-{made:016x}.lock", made + 1
        else:
            name = f"file-{i:07d}.tmp"
        os.close(os.open(path / name, os.O_CREAT | os.O_WRONLY, 0o600))


def compile_bytecode() -> None:
    """Compile the app and what the scan path imports, as an installed wheel would have them."""
    site = Path(sysconfig.get_path("purelib"))
    for target in (ROOT / "app" / "uvsweep", site / "platformdirs"):
        compileall.compile_dir(str(target), quiet=1)


def scratch_root() -> str | None:
    """A tmpfs to build the huge dir on (the disk's speed is not what is measured), if any."""
    shm = "/dev/shm"
    if os.path.isdir(shm) and os.access(shm, os.W_OK):
        return shm
    return None


def big_dir_row(
    name: str,
    path: Path,
    rounds: int,
    python: str,
    uvsweep: str,
    env: dict[str, str],
    cwd: str,
    baseline_app: str | None = None,
) -> tuple[str, float, float, float]:
    """(a Markdown block, the ratio to the floor, our peak RSS in MB, the floor's in MB); with
    `baseline_app`, a row for that uvsweep too, its runs interleaved with ours."""
    scan = ["scan", "--json", "--dir", str(path)]
    commands = {
        "floor": ([python, "-c", FLOOR, str(path)], env),
        "scan": ([uvsweep, *scan], env),
    }
    if baseline_app:
        commands["baseline"] = ([python, "-c", AS_SCRIPT, *scan],
                                {**env, "PYTHONPATH": baseline_app})  # fmt: skip
    samples: dict[str, list[tuple[float, int]]] = {key: [] for key in commands}
    for _ in range(rounds):
        for key, (argv, argv_env) in commands.items():
            samples[key].append(run_measured(argv, argv_env, cwd))
    wall = {key: statistics.median(s[0] for s in runs) for key, runs in samples.items()}
    best = {key: min(s[0] for s in runs) for key, runs in samples.items()}
    rss = {key: max(s[1] for s in runs) / 1e6 for key, runs in samples.items()}
    ratio = wall["scan"] / wall["floor"]
    block = (
        f"| {name} | {wall['floor'] * 1000:.1f} ms | {wall['scan'] * 1000:.1f} ms | "
        f"**{ratio:.2f}x** | {best['scan'] / best['floor']:.2f}x | {rss['floor']:.1f} MB |"
        f" {rss['scan']:.1f} MB |"
    )
    if baseline_app:
        old = wall["baseline"] / wall["floor"]
        print(f"{name}: baseline {old:.2f}x of the floor")
        block += (
            f"\n| same, baseline (`--baseline-app`) | {wall['floor'] * 1000:.1f} ms |"
            f" {wall['baseline'] * 1000:.1f} ms | {old:.2f}x |"
            f" {best['baseline'] / best['floor']:.2f}x | {rss['floor']:.1f} MB |"
            f" {rss['baseline']:.1f} MB |"
        )
    return block, ratio, rss["scan"], rss["floor"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--quick", action="store_true", help="CI: tiny sizes, nothing written")
    parser.add_argument(
        "--baseline-app", metavar="DIR",
        help="the `app` dir of another uvsweep (e.g. `git archive` of an older commit): its big"
        " dir scans are interleaved with this one's and shown as rows of their own",
    )  # fmt: skip
    parser.add_argument("--only-big", action="store_true", help="the 100,000-entry row only")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    big, huge, many = (100_000, 10), (1_000_000, 1_000), 10_000
    rounds, huge_rounds = args.rounds, max(3, args.rounds // 2)
    if args.quick:
        big, huge, many, rounds, huge_rounds = (2_000, 10), (5_000, 50), 200, 1, 1

    python = sys.executable
    uvsweep = str(Path(python).with_name("uvsweep"))
    env_bytecode = {**os.environ}
    env_bytecode.pop("PYTHONDONTWRITEBYTECODE", None)
    compile_bytecode()
    if args.baseline_app:
        compileall.compile_dir(args.baseline_app, quiet=1)
    work = Path(tempfile.mkdtemp(prefix="uvsweep-bench-"))
    tmpfs = scratch_root()
    huge_work = Path(tempfile.mkdtemp(prefix="uvsweep-bench-", dir=tmpfs)) if tmpfs else work
    no_cache = work / "empty-pycache"  # an empty cache prefix: every import compiles from source
    env_source = {
        **os.environ,
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPYCACHEPREFIX": str(no_cache),
    }
    load = os.getloadavg()[0]
    lines = [
        f"Load average {load:.1f} on {os.cpu_count()} cores when it started"
        + (" (loaded by other work: ratios hold better than times)" if load > 1 else "")
        + "; bytecode compiled; commands run outside any project.\n",
        "### Big dirs: `uvsweep scan --json` (labels on) against a bare `os.scandir` filter\n",
        (
            "The floor: `python -c` listing the dir with `os.scandir`, keeping the `uv-` names"
            " and printing them as JSON (the same interpreter). Medians of interleaved runs"
            " (the ratio of the fastest runs beside it: on a loaded machine the medians swing);"
            " peak RSS is the largest over the runs.\n"
        ),
        (
            "| dir | floor | `uvsweep scan --json` | ratio | fastest / fastest | floor peak RSS"
            " | scan peak RSS |"
        ),
        "|---|---|---|---|---|---|---|",
    ]
    verdicts = []
    try:
        # 1. 100,000 entries, 10 of them uv lock files
        make_big_dir(work / "big", *big)
        row, ratio, _, _ = big_dir_row(
            f"{big[0]:,} entries, {big[1]} locks (temp dir)",
            work / "big", rounds, python, uvsweep, env_bytecode, str(work), args.baseline_app,
        )  # fmt: skip
        lines.append(row)
        verdicts.append(f"{big[0]:,} entries: {ratio:.2f}x (goal <= {GOALS['big_dir']}x)")
        print(f"{big[0]:,} entries: {ratio:.2f}x of the floor")
        shutil.rmtree(work / "big")
        if args.only_big:
            print("\n".join(lines))
            return

        # 2. 1,000,000 entries, 1,000 of them lock files, on tmpfs
        began = time.perf_counter()
        make_big_dir(huge_work / "huge", *huge)
        built = time.perf_counter() - began
        row, ratio, rss, _ = big_dir_row(
            f"{huge[0]:,} entries, {huge[1]:,} locks ({'tmpfs' if tmpfs else 'temp dir'})",
            huge_work / "huge", huge_rounds, python, uvsweep, env_bytecode, str(work),
        )  # fmt: skip
        lines.append(row)
        verdicts.append(
            f"{huge[0]:,} entries: {ratio:.2f}x (goal <= {GOALS['big_dir']}x), peak RSS"
            f" {rss:.1f} MB (goal <= {GOALS['huge_rss_mb']:.0f} MB)"
        )
        print(f"{huge[0]:,} entries: {ratio:.2f}x of the floor, peak RSS {rss:.1f} MB"
              f" (dir built in {built:.1f} s)")  # fmt: skip
        shutil.rmtree(huge_work / "huge")
        lines.append("\nGoals: " + "; ".join(verdicts) + ".\n")

        # 3. 10,000 orphaned lock files classified (engine time, in process)
        classified = work / "many"
        classified.mkdir()
        for i in range(many):
            (classified / f"uv-{i:016x}.lock").touch()
        sys.path.insert(0, str(ROOT / "app"))
        from uvsweep import scanner  # noqa: PLC0415

        timings = []
        for _ in range(5 if not args.quick else 1):
            start = time.perf_counter()
            snap = scanner.scan([str(classified)])
            timings.append(time.perf_counter() - start)
            assert snap.count(scanner.STATE_ORDER[0]) == many, snap.summary()
        best, median = min(timings), statistics.median(timings)
        lines.append(f"### {many:,} orphaned lock files classified (engine time, in process)\n")
        lines.append(
            "`scanner.scan` (probe, /proc walk, classify, label): "
            f"median **{median * 1000:.0f} ms**, best {best * 1000:.0f} ms over"
            f" {len(timings)} runs (goal < {GOALS['classify_s'] * 1000:.0f} ms)\n"
        )
        print(f"{many:,} files: {median * 1000:.0f} ms")

        # 4. cold start on an empty dir, with and without bytecode
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
                rounds,
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
        if huge_work != work:
            shutil.rmtree(huge_work, ignore_errors=True)
    if args.quick or args.no_write:
        print("\n".join(lines))
    else:
        record("Scan", "\n".join(lines))
        print(f"wrote {ROOT / 'benchmarks' / 'RESULTS.md'}")


if __name__ == "__main__":
    main()
