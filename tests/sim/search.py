"""Search the interleavings of the real removal code from the command line.

    uv run python -m tests.sim.search --actors 3 --removers 1 --bound 3
    uv run python -m tests.sim.search --actors 3 --seed 7 --runs 20000
    uv run python -m tests.sim.search --actors 3 --replay "R*13 W1*3 W2 R*10 ..."
    uv run python -m tests.sim.search --os windows --actors 2 --bound 3 [--old-uv] [--no-posix]
        [--keeper default|none|dies]
    uv run python -m tests.sim.search --os macos --actors 2 --bound 3

Without `--seed` the search is exhaustive up to `--bound` preemptions (`--iterate` tries bounds
0, 1, ... up to it, so the smallest counterexample comes first); with `--seed` it runs random
schedules. It prints what it explored, the time, and any counterexample as a replayable
schedule and a step-by-step trace. Exit code 1 when a counterexample was found.
"""

from __future__ import annotations

import argparse
import sys

from tests.sim.explore import SearchReport, decode, dfs, encode, follow, random_runs, run
from tests.sim.kernel import Kernel
from tests.sim.world import Scenario


def _show(report: SearchReport, scenario: Scenario) -> None:
    print(f"{scenario.describe()}: {report.summary()}")
    out = report.failure
    if out is None:
        return
    print(f"counterexample: {out.failure}")
    print(f"schedule ({len(out.schedule)} steps): {encode(out.schedule)}")
    print(out.describe())


def _scenario(args: argparse.Namespace) -> Scenario:
    if args.os == "windows":
        from tests.sim.winworld import SimWinKeeper, windows_scenario

        keeper: object = SimWinKeeper
        if args.keeper == "none":
            keeper = None  # the code's own default: no keeper can start here, clean waits
        elif args.keeper == "dies":

            def keeper(actor: object) -> SimWinKeeper:
                from tests.sim.winworld import dying_keeper

                return SimWinKeeper(actor, dying_keeper)  # type: ignore[arg-type]

        return windows_scenario(
            uv=args.actors, removers=args.removers, rounds=args.rounds, existing=not args.no_file,
            files=args.files, modern_uv=not args.old_uv, posix=not args.no_posix,
            keeper=keeper,  # type: ignore[arg-type]
        )  # fmt: skip
    if args.os == "macos":
        from tests.sim.darwinworld import darwin_scenario

        return darwin_scenario(
            uv=args.actors, removers=args.removers, rounds=args.rounds, existing=not args.no_file,
            files=args.files, uv_exact=args.uv_exact,
        )  # fmt: skip
    if args.refused_links or args.no_leases:

        def kernel() -> Kernel:
            return Kernel(refused_links=args.refused_links, leases=not args.no_leases)

        return Scenario(
            uv=args.actors, removers=args.removers, rounds=args.rounds,
            existing=not args.no_file, files=args.files, uv_exact=args.uv_exact, kernel=kernel,
        )  # fmt: skip
    return Scenario(
        uv=args.actors, removers=args.removers, rounds=args.rounds, existing=not args.no_file,
        files=args.files, uv_exact=args.uv_exact,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.sim.search", description=__doc__)
    parser.add_argument("--actors", type=int, default=3, help="uv-like actors (default 3)")
    parser.add_argument("--removers", type=int, default=1, help="remover runs (default 1)")
    parser.add_argument("--rounds", type=int, default=1, help="critical sections per uv actor")
    parser.add_argument(
        "--files", type=int, default=1, choices=(1, 2, 3),
        help="lock names in the dir (one batch); uv actors take them in turn",
    )  # fmt: skip
    parser.add_argument(
        "--no-file", action="store_true", help="start with no file at the name (uv creates it)"
    )
    parser.add_argument(
        "--uv-exact",
        action="store_true",
        help="uv's real EEXIST path: one reopen, and on without the lock if that fails",
    )
    parser.add_argument(
        "--refused-links", action="store_true",
        help="linux: the uv actors' fd links are refused to the remover (root without"
        " CAP_SYS_PTRACE, red-team B2)",
    )  # fmt: skip
    parser.add_argument(
        "--no-leases",
        action="store_true",
        help="linux: no write lease can be taken (a file system without them)",
    )
    parser.add_argument(
        "--os", choices=("linux", "windows", "macos"), default="linux",
        help="which kernel and remover (default linux)",
    )  # fmt: skip
    parser.add_argument(
        "--old-uv", action="store_true", help="windows: uv < 0.7.19 (fails when its open fails)"
    )
    parser.add_argument(
        "--no-posix",
        action="store_true",
        help="windows: no POSIX-semantics rename and delete (FAT, Windows before 10 1709)",
    )
    parser.add_argument(
        "--keeper",
        choices=("default", "none", "dies"),
        default="default",
        help="windows: a keeper process takes long handoffs (default), none starts, or it exits"
        " before its ready",
    )
    parser.add_argument("--bound", type=int, default=2, help="preemption bound (default 2)")
    parser.add_argument("--unbounded", action="store_true", help="no preemption bound")
    parser.add_argument("--iterate", action="store_true", help="bounds 0..--bound in turn")
    parser.add_argument("--seed", type=int, help="random schedules from this seed")
    parser.add_argument("--runs", type=int, default=10_000, help="random runs (default 10000)")
    parser.add_argument("--switch", type=float, default=0.3, help="random switch probability")
    parser.add_argument(
        "--pause", type=int, default=150, help="random: longest pause of a preempted actor"
    )
    parser.add_argument(
        "--arrivals", type=int, default=100, help="random: latest step an actor starts at"
    )
    parser.add_argument("--deadline", type=float, help="stop after this many seconds")
    parser.add_argument("--max-steps", type=int, default=2000, help="steps before 'not done'")
    parser.add_argument(
        "--no-timeouts", action="store_true", help="sleepers resume only when woken or alone"
    )
    parser.add_argument("--replay", help="run one schedule (as printed) and show its trace")
    args = parser.parse_args(argv)
    scenario = _scenario(args)
    if args.replay:
        out = run(scenario, follow(decode(args.replay)), args.max_steps, not args.no_timeouts)
        print(out.describe())
        print(f"{len(out.schedule)} steps: {out.failure or 'no failure'}")
        return 1 if out.failure else 0
    if args.seed is not None:
        report = random_runs(
            scenario, args.seed, args.runs, args.switch, args.max_steps, args.deadline,
            pause=args.pause, timeouts=not args.no_timeouts, arrivals=args.arrivals,
        )  # fmt: skip
        _show(report, scenario)
        return 1 if report.failure else 0
    bounds = [None] if args.unbounded else (
        list(range(args.bound + 1)) if args.iterate else [args.bound]
    )  # fmt: skip
    for bound in bounds:
        report = dfs(
            scenario, bound, args.max_steps, deadline=args.deadline, timeouts=not args.no_timeouts
        )
        _show(report, scenario)
        sys.stdout.flush()
        if report.failure:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
