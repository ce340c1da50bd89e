"""The interleaving search over the real remover, and proof that the search can see failures.

The search tests assert the invariant (never two uv actors in their critical sections at once),
that nobody is left blocked for ever, and that every run ends, over every schedule within the
bound. The `power` tests run the same machinery against deliberately broken programs and must
find each failure: a search that cannot fail would prove nothing.
"""

from __future__ import annotations

import os

import pytest

from tests.sim.explore import before, dfs, done, encode, in_critical, random_runs, run, scripted
from tests.sim.kernel import LOCK_EX, LOCK_NB, TMP
from tests.sim.world import LOCK_NAME, LOCK_PATH, Actor, Body, Scenario


def _check(report_failure: object, summary: str) -> None:
    print(summary)
    assert report_failure is None, summary


def test_the_remover_removes_an_orphan_when_it_runs_alone() -> None:
    out = run(Scenario(uv=2), lambda step: step.default())  # R first, then W1, then W2
    assert out.failure is None
    removed = out.results["R"].removed
    assert removed == [f"{TMP}/{LOCK_NAME}"]
    assert out.critical_sections == 2


def test_every_schedule_of_two_uv_actors_and_a_remover_within_two_preemptions() -> None:
    report = dfs(Scenario(uv=2), bound=2)
    _check(report.failure and report.failure.describe(), report.summary())
    assert report.complete
    assert report.states > 1000  # it did explore (6,173 distinct states at 63d3071)


def test_every_schedule_of_two_removers_and_a_uv_actor_within_one_preemption() -> None:
    report = dfs(Scenario(uv=1, removers=2), bound=1)
    _check(report.failure and report.failure.describe(), report.summary())
    assert report.complete


def test_random_schedules_of_three_uv_actors_and_a_remover() -> None:
    report = random_runs(Scenario(uv=3), seed=12, runs=300)
    _check(report.failure and report.failure.describe(), report.summary())
    assert report.runs == 300


@pytest.mark.slow
def test_every_schedule_of_two_uv_actors_and_a_remover_within_three_preemptions() -> None:
    report = dfs(Scenario(uv=2), bound=3)
    _check(report.failure and report.failure.describe(), report.summary())
    assert report.complete


def test_every_schedule_of_uv_actors_creating_the_file_twice_and_a_remover() -> None:
    # no file at first: uv creates it (temp file, rename without replace) beside the handoff's
    # O_CREAT|O_EXCL; bound 2 and two removers are for the command line (see the README)
    report = dfs(Scenario(uv=2, rounds=2, existing=False), bound=1)
    _check(report.failure and report.failure.describe(), report.summary())
    assert report.complete


# ---- the search's power: broken programs are caught -------------------------------------------


def _naive_remover() -> Body:
    """What systemd-tmpfiles does: try-lock, unlink, close. No check for waiters or openers."""

    def body(actor: Actor) -> None:
        calls = actor.calls
        dir_fd = calls.open_dir(TMP)
        fd = calls.open(LOCK_NAME, os.O_RDONLY, dir_fd=dir_fd)
        try:
            calls.flock(fd, LOCK_EX | LOCK_NB)
        except BlockingIOError:
            return
        calls.unlink(LOCK_NAME, dir_fd)
        calls.close(fd)

    return body


def test_power_the_search_finds_the_overlap_a_naive_remover_causes() -> None:
    report = dfs(Scenario(uv=2, remover=_naive_remover), bound=2)
    assert report.failure is not None, report.summary()
    assert "critical section" in (report.failure.violation or "")
    print(report.summary(), encode(report.failure.schedule), sep="\n")


def test_power_random_schedules_find_it_too() -> None:
    report = random_runs(Scenario(uv=2, remover=_naive_remover), seed=1, runs=500)
    assert report.failure is not None, report.summary()
    assert report.failure.violation


def _locks_twice() -> Body:
    """A program that waits for itself: two opens, the second flock blocks on the first."""

    def body(actor: Actor) -> None:
        calls = actor.calls
        first = calls.open(LOCK_PATH, os.O_RDWR)
        second = calls.open(LOCK_PATH, os.O_RDWR)
        calls.flock(first, LOCK_EX)
        calls.flock(second, LOCK_EX)

    return body


def test_power_a_process_blocked_for_ever_is_reported() -> None:
    out = run(Scenario(uv=1, remover=_locks_twice), lambda step: step.default())
    assert out.deadlock is not None
    assert "R" in out.deadlock


def _polls_for_ever() -> Body:
    def body(actor: Actor) -> None:
        while True:
            actor.calls.read("/sim/proc/locks")
            actor.calls.sleep(0.05)

    return body


def test_power_a_run_that_never_ends_is_reported() -> None:
    out = run(Scenario(uv=1, remover=_polls_for_ever), lambda step: step.default(), max_steps=200)
    assert out.endless is not None


def test_power_a_crash_in_the_code_under_test_is_reported() -> None:
    def body(actor: Actor) -> None:
        actor.calls.fstat(99)  # EBADF, not caught

    out = run(Scenario(uv=1, remover=lambda: body), lambda step: step.default())
    assert out.crash is not None
    assert "Bad file descriptor" in out.crash


def test_power_a_handoff_that_follows_nobody_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    # the remover's own code, with the check of the old inode's users cut out: the search must
    # see the overlap that would follow (a uv on the old inode, another on a new file)
    from uvsweep.remove.posix import LinuxRemover, PosixRemover

    # one handoff at a time through `old_in_use` (as the base class does), which is cut out
    monkeypatch.setattr(LinuxRemover, "handoffs_in_use", PosixRemover.handoffs_in_use)
    monkeypatch.setattr(LinuxRemover, "old_in_use", lambda *_args: False)
    report = dfs(Scenario(uv=2), bound=2)
    assert report.failure is not None, report.summary()
    assert report.failure.violation


def test_power_a_users_pass_that_skips_open_files_is_caught(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # as at 63d3071: a target with a lock-table entry is not looked for among open files, and
    # the handoff follows only the pids that pass saw
    from uvsweep.model import LockState
    from uvsweep.probe.linux import walk_fds
    from uvsweep.probe.posix import holder_list
    from uvsweep.remove import Remover, Use
    from uvsweep.remove.posix import LinuxRemover, PosixRemover

    followed: dict[tuple[int, int], list[int]] = {}

    def users(self: PosixRemover, targets, result):  # type: ignore[no-untyped-def]
        found = self.lock_users(targets)
        rest = [t for t in targets if t not in found]
        for target, pids in self.open_users(rest, result).items():
            found[target] = Use(LockState.OPEN, holder_list(self.processes, pids))
        for target, use in found.items():
            followed[(target.dev, target.ino)] = [h.pid for h in use.holders if h.pid]
        return found

    def old_in_use(self: LinuxRemover, dev: int, ino: int, path: str) -> bool:
        table = self._read_table()
        if table is not None and any(table.entries(dev, ino, self.known)):
            return True
        pids = followed.get((dev, ino), [])
        name = path.rsplit("/", 1)[-1]
        found, _ = walk_fds(self.proc, pids, {name}, {(dev, ino)}, self.calls, self.own_pid)
        return bool(found)

    monkeypatch.setattr(PosixRemover, "users", users)
    # (63d3071 took no lease before the unlink: its look there was `users` itself)
    monkeypatch.setattr(LinuxRemover, "users_before_unlink", Remover.users_before_unlink)
    monkeypatch.setattr(LinuxRemover, "handoffs_in_use", PosixRemover.handoffs_in_use)
    monkeypatch.setattr(LinuxRemover, "old_in_use", old_in_use)
    from tests.sim.explore import scripted
    from tests.sim.scenarios import FINDING_1

    out = run(Scenario(uv=3), scripted(FINDING_1), timeouts=False)
    assert out.violation is not None, out.describe()


@pytest.mark.parametrize("bound", [1, 2])
def test_pruning_seen_states_loses_no_end_state(bound: int) -> None:
    # every schedule run to its end, against the search that skips states it has seen: the
    # same set of end states (kernel state, each actor's observations and result)
    scenario = Scenario(uv=1, rounds=2)
    full = dfs(scenario, bound=bound, cache=False)
    pruned = dfs(scenario, bound=bound)
    assert full.failure is None and pruned.failure is None
    assert pruned.finals == full.finals
    assert pruned.steps < full.steps
    print(f"bound {bound}: {full.runs} schedules, {pruned.runs} runs with pruning")


def test_the_command_line_searches_and_replays(capsys: pytest.CaptureFixture[str]) -> None:
    from tests.sim.search import main

    assert main(["--actors", "1", "--bound", "1", "--iterate"]) == 0
    printed = capsys.readouterr().out
    assert "preemption bound 0" in printed and "preemption bound 1" in printed
    assert "no counterexample" in printed
    assert main(["--actors", "1", "--seed", "3", "--runs", "20"]) == 0
    assert "random: 20 runs" in capsys.readouterr().out
    assert main(["--actors", "1", "--replay", "R*3 W1*4"]) == 0
    printed = capsys.readouterr().out
    assert "W1  flock(" in printed and "no failure" in printed


# ---- the keeper path, scripted ----------------------------------------------------------------

KEEPER_PATH = [
    ("R", before("unlink")),  # every check passed, the lock is held
    ("W1", before("flock")),  # opens the old file, paused before its flock
    ("R", done),  # unlink, handoff; W1 stays paused: `clean` stops waiting, a keeper takes over
    ("W1", in_critical),  # flock on the old inode
    ("W2", in_critical),  # a newcomer: the new file, which the keeper must still hold
]


def test_a_keeper_holds_the_new_file_until_the_old_one_is_let_go() -> None:
    out = run(Scenario(uv=2), scripted(KEEPER_PATH))
    assert out.failure is None, out.describe()
    assert out.keepers == 1 and out.critical_sections == 2
    assert out.results["R"].keepers  # `clean` returned, reporting its keeper


def test_power_a_keeper_that_inherits_no_lock_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    from uvsweep.remove.handoff import Handoff

    monkeypatch.setattr(Handoff, "fds", lambda self: [self.dir_fd])
    out = run(Scenario(uv=2), scripted(KEEPER_PATH))
    assert out.violation is not None, out.describe()
