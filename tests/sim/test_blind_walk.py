"""The interleaving search with a walk that cannot read the uv processes' fd links (red-team B2).

Root without `CAP_SYS_PTRACE` (Docker's default set) lists another user's `/proc/PID/fd` but
reading a link there fails with EACCES. A uv between its open and its flock is then in no lock
table and behind no link the walk can read. The simulated kernel refuses the uv actors' links
to the remover (`Kernel(refused_links=True)`); the real remover counts each such process
hidden and asks the kernel's write lease (`Syscalls.alone`) whether anybody else has the file
open, after the unlink and in each round of a handoff.

Without leases (`leases=False`: a file system or an owner that cannot take one) the search
finds the two holders B2 is about; it must: it shows the search can see them here.
"""

from __future__ import annotations

from tests.sim.explore import dfs, random_runs
from tests.sim.kernel import Kernel
from tests.sim.world import Scenario


def _blind() -> Kernel:
    return Kernel(refused_links=True)


def _blind_without_leases() -> Kernel:
    return Kernel(refused_links=True, leases=False)


def test_every_schedule_of_a_blind_walk_within_two_preemptions_keeps_one_holder() -> None:
    report = dfs(Scenario(uv=2, kernel=_blind), bound=2)
    print(report.summary())
    assert report.failure is None, report.failure.describe()
    assert report.complete
    assert report.states > 1_000  # it did explore


def test_random_schedules_of_three_uv_actors_and_a_blind_walk() -> None:
    report = random_runs(Scenario(uv=3, kernel=_blind), seed=11, runs=300)
    print(report.summary())
    assert report.failure is None, report.failure.describe()


def test_a_followed_uv_that_comes_back_for_the_name_is_not_waited_for_until_it_exits() -> None:
    """Liveness: a uv the walk cannot see, followed since it waited on the old file, takes the
    old lock, lets go, and opens the name again (a second lock in one run), where the keeper
    holds the new file. Followed until it exits, it never would (it waits on the keeper): the
    lease says nobody has the old file open any more, and the handoff ends. Before, the search
    found "not done after 2000 steps: W1, K1" within 30 runs."""
    report = random_runs(Scenario(uv=3, rounds=2, kernel=_blind), seed=5, runs=300)
    print(report.summary())
    assert report.failure is None, report.failure.describe()


def test_without_leases_the_search_finds_b2s_two_holders() -> None:
    report = dfs(Scenario(uv=2, kernel=_blind_without_leases), bound=2)
    print(report.summary())
    assert report.failure is not None, "the search no longer sees B2: it proves nothing above"


def _seeing_without_leases() -> Kernel:
    return Kernel(leases=False)


def test_without_leases_a_walk_that_sees_every_process_keeps_one_holder() -> None:
    """Where no lease can be asked (NFS, another user's file without `CAP_LEASE`) the check
    after the unlink is the lock table and the walk, as before leases: with every process's
    links readable, still no two holders. (It guards the remover's reading of a lease it could
    not ask: taken for a granted one, the search finds two holders here.)"""
    report = dfs(Scenario(uv=2, kernel=_seeing_without_leases), bound=2)
    print(report.summary())
    assert report.failure is None, report.failure.describe()
    assert report.complete
    assert report.handoffs > 100  # the check after the unlink did hand files over
