"""The interleaving search over the real remover, and proof that the search can see failures.

The search tests assert the invariant (never two uv actors in their critical sections at once),
that nobody is left blocked for ever, and that every run ends, over every schedule within the
bound. The `power` tests run the same machinery against deliberately broken programs and must
find each failure: a search that cannot fail would prove nothing.
"""

from __future__ import annotations

import os

import pytest

from tests.sim.explore import dfs, encode, random_runs, run
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


@pytest.mark.slow
def test_every_schedule_of_two_removers_and_a_uv_actor_within_two_preemptions() -> None:
    report = dfs(Scenario(uv=1, removers=2), bound=2)
    _check(report.failure and report.failure.describe(), report.summary())
    assert report.complete


@pytest.mark.slow
def test_every_schedule_of_a_uv_actor_creating_the_file_twice_and_a_remover() -> None:
    report = dfs(Scenario(uv=2, rounds=2, existing=False), bound=2)
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
