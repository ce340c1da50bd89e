"""The interleaving search over the real Windows remover, on the simulated Windows kernel.

First the kernel itself, call by call, against what the Win32 docs say; then the search (the
same invariant as on Linux: never two uv processes in their critical sections at once; and an
old uv, which fails when its open fails, must never fail); then its power: the delete-pending
design (issue 15's finding 2, 63d3071's `unlink`) put back in a subclass of today's remover is
caught, by the exhaustive search, by random schedules, and by a kept scenario.

Deep runs (bound 3, three uv processes, two removers) only with `UVSWEEP_SIM_DEEP=1`.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.sim.explore import Directive, dfs, done, encode, in_critical, random_runs, run, scripted
from tests.sim.kernel import BLOCKED
from tests.sim.winkernel import (
    DELETE,
    ERROR_ACCESS_DENIED,
    ERROR_ALREADY_EXISTS,
    ERROR_FILE_NOT_FOUND,
    ERROR_LOCK_VIOLATION,
    ERROR_NOT_LOCKED,
    ERROR_SHARING_VIOLATION,
    FILE_READ_ATTRIBUTES,
    FILE_SHARE_READ,
    GENERIC_READ,
    GENERIC_WRITE,
    OPEN_ALWAYS,
    OPEN_EXISTING,
    SHARE_ALL,
    VOLUME_SERIAL,
    WIN_TMP,
    WinKernel,
)
from tests.sim.winworld import WIN_LOCK_PATH, windows_scenario
from tests.sim.world import LOCK_NAME, Actor
from uvsweep.remove import RemoveResult, Target, Use
from uvsweep.remove.windows import GONE_SUFFIX, WindowsRemover

DEEP = pytest.mark.skipif(
    not os.environ.get("UVSWEEP_SIM_DEEP"), reason="a deep search: set UVSWEEP_SIM_DEEP=1"
)
UV = GENERIC_READ | GENERIC_WRITE  # uv's access; it shares everything
CLEANER = GENERIC_READ | DELETE


def _kernel() -> WinKernel:
    kernel = WinKernel()
    for pid in (1, 2, 3):
        kernel.spawn(pid, "p")
    kernel.make_file(LOCK_NAME)
    return kernel


def _winerror(call: Any, *args: Any) -> int:
    with pytest.raises(OSError) as caught:
        call(*args)
    return int(caught.value.winerror)  # type: ignore[attr-defined]


# ---- the kernel, against the docs --------------------------------------------------------------


def test_open_existing_and_open_always() -> None:
    kernel = _kernel()
    missing = f"{WIN_TMP}\\uv-00000000000000ff.lock"
    assert _winerror(kernel.create_file, 1, missing, UV, SHARE_ALL, OPEN_EXISTING) == (
        ERROR_FILE_NOT_FOUND
    )
    with pytest.raises(FileNotFoundError):
        kernel.create_file(1, missing, UV, SHARE_ALL, OPEN_EXISTING)
    handle = kernel.create_file(1, missing, UV, SHARE_ALL, OPEN_ALWAYS)  # created
    assert kernel.identity(1, handle)[0] == VOLUME_SERIAL
    # names are case-insensitive
    again = kernel.create_file(2, missing.upper().replace("C:\\", "c:\\"), UV, SHARE_ALL,
                               OPEN_EXISTING)  # fmt: skip
    assert kernel.identity(2, again) == kernel.identity(1, handle)


def test_share_modes_are_checked_both_ways_and_only_for_data_access() -> None:
    kernel = _kernel()
    kernel.create_file(1, WIN_LOCK_PATH, GENERIC_READ, FILE_SHARE_READ, OPEN_EXISTING)
    # the first handle does not share write or delete
    assert _winerror(kernel.create_file, 2, WIN_LOCK_PATH, UV, SHARE_ALL, OPEN_EXISTING) == (
        ERROR_SHARING_VIOLATION
    )
    assert _winerror(kernel.create_file, 2, WIN_LOCK_PATH, CLEANER, SHARE_ALL, OPEN_EXISTING) == (
        ERROR_SHARING_VIOLATION
    )
    # the new handle must share what the first one does (read)
    assert _winerror(kernel.create_file, 2, WIN_LOCK_PATH, GENERIC_READ, 0, OPEN_EXISTING) == (
        ERROR_SHARING_VIOLATION
    )
    kernel.create_file(2, WIN_LOCK_PATH, GENERIC_READ, SHARE_ALL, OPEN_EXISTING)
    kernel.create_file(3, WIN_LOCK_PATH, FILE_READ_ATTRIBUTES, 0, OPEN_EXISTING)  # not checked


def test_a_delete_pending_file_refuses_every_open_until_its_name_goes() -> None:
    kernel = _kernel()
    mine = kernel.create_file(1, WIN_LOCK_PATH, CLEANER, SHARE_ALL, OPEN_EXISTING)
    theirs = kernel.create_file(2, WIN_LOCK_PATH, UV, SHARE_ALL, OPEN_EXISTING)
    kernel.set_disposition(1, mine, delete=True, posix=True)
    # uv's open: access denied (what uv >= 0.7.19 warns about, then runs unlocked)
    err = _winerror(kernel.create_file, 3, WIN_LOCK_PATH, UV, SHARE_ALL, OPEN_ALWAYS)
    assert err == ERROR_ACCESS_DENIED
    # lstat: CPython's fallback to FindFirstFileW knows no file index
    assert kernel.lstat(WIN_LOCK_PATH).st_ino == 0
    assert kernel.listdir(WIN_TMP) == [LOCK_NAME]
    # POSIX semantics: the name goes when the handle that set it is closed, though another is open
    kernel.close(1, mine)
    assert kernel.listdir(WIN_TMP) == []
    assert kernel.processes_using(2, theirs) == [2]  # the file lives on for its other handle
    fresh = kernel.create_file(3, WIN_LOCK_PATH, UV, SHARE_ALL, OPEN_ALWAYS)
    assert kernel.identity(3, fresh) != kernel.identity(2, theirs)


def test_a_classic_delete_keeps_the_name_until_the_last_handle_and_can_be_cleared() -> None:
    kernel = _kernel()
    mine = kernel.create_file(1, WIN_LOCK_PATH, CLEANER, SHARE_ALL, OPEN_EXISTING)
    theirs = kernel.create_file(2, WIN_LOCK_PATH, UV, SHARE_ALL, OPEN_EXISTING)
    assert _winerror(kernel.set_disposition, 2, theirs, True, False) == ERROR_ACCESS_DENIED
    kernel.set_disposition(1, mine, delete=True, posix=False)
    kernel.close(1, mine)
    assert kernel.listdir(WIN_TMP) == [LOCK_NAME]  # still there: uv's handle is open
    assert _winerror(kernel.create_file, 3, WIN_LOCK_PATH, UV, SHARE_ALL, OPEN_ALWAYS) == (
        ERROR_ACCESS_DENIED
    )
    kernel.close(2, theirs)
    assert kernel.listdir(WIN_TMP) == []
    # cleared before the close: nothing goes
    kernel.make_file(LOCK_NAME)
    mine = kernel.create_file(1, WIN_LOCK_PATH, CLEANER, SHARE_ALL, OPEN_EXISTING)
    kernel.set_disposition(1, mine, delete=True, posix=True)
    kernel.set_disposition(1, mine, delete=False, posix=True)
    kernel.close(1, mine)
    assert kernel.listdir(WIN_TMP) == [LOCK_NAME]


def test_a_rename_by_handle_frees_the_name_at_once_and_never_replaces() -> None:
    kernel = _kernel()
    kernel.make_file("taken")
    mine = kernel.create_file(1, WIN_LOCK_PATH, CLEANER, SHARE_ALL, OPEN_EXISTING)
    theirs = kernel.create_file(2, WIN_LOCK_PATH, UV, SHARE_ALL, OPEN_EXISTING)
    assert _winerror(kernel.rename, 2, theirs, "x") == ERROR_ACCESS_DENIED  # no DELETE access
    assert _winerror(kernel.rename, 1, mine, "TAKEN") == ERROR_ALREADY_EXISTS
    with pytest.raises(FileExistsError):
        kernel.rename(1, mine, "taken")
    kernel.rename(1, mine, "gone")
    assert kernel.listdir(WIN_TMP) == ["gone", "taken"]
    fresh = kernel.create_file(3, WIN_LOCK_PATH, UV, SHARE_ALL, OPEN_ALWAYS)
    assert kernel.identity(3, fresh) != kernel.identity(1, mine)
    assert kernel.processes_using(1, mine) == [1, 2]  # uv's handle followed the file


def test_lockfileex_fails_immediately_or_waits_and_waiters_are_granted_in_order() -> None:
    kernel = _kernel()
    handles = [kernel.create_file(pid, WIN_LOCK_PATH, UV, SHARE_ALL, OPEN_ALWAYS)
               for pid in (1, 2, 3)]  # fmt: skip
    assert kernel.lock(1, handles[0], exclusive=True, fail_immediately=True) is None
    assert _winerror(kernel.lock, 1, handles[0], True, True) == ERROR_LOCK_VIOLATION  # same handle
    assert _winerror(kernel.lock, 2, handles[1], True, True) == ERROR_LOCK_VIOLATION
    with pytest.raises(PermissionError):
        kernel.lock(2, handles[1], True, True)
    assert kernel.lock(3, handles[2], exclusive=True, fail_immediately=False) is BLOCKED
    assert kernel.lock(2, handles[1], exclusive=True, fail_immediately=False) is BLOCKED
    assert kernel.blocked(2) and kernel.blocked(3)
    assert kernel.processes_using(1, handles[0]) == [1, 2, 3]  # waiters have handles
    kernel.unlock(1, handles[0])
    # granted in the unlock, first come first served: nobody can slip in between
    assert kernel.holds_lock(3, handles[2]) and not kernel.blocked(3) and kernel.blocked(2)
    assert _winerror(kernel.lock, 1, handles[0], True, True) == ERROR_LOCK_VIOLATION
    assert _winerror(kernel.unlock, 1, handles[0]) == ERROR_NOT_LOCKED
    kernel.close(3, handles[2])  # a close drops the handle's locks: the next waiter gets it
    assert kernel.holds_lock(2, handles[1])
    kernel.exit(2)
    assert kernel.lock(1, handles[0], exclusive=True, fail_immediately=True) is None
    # a handle without read or write access cannot lock
    attrs = kernel.create_file(3, WIN_LOCK_PATH, DELETE, SHARE_ALL, OPEN_EXISTING)
    assert _winerror(kernel.lock, 3, attrs, True, True) == ERROR_ACCESS_DENIED


# ---- the search --------------------------------------------------------------------------------


def _check(report: Any) -> None:
    print(report.summary())
    failure = report.failure
    assert failure is None, (
        f"{failure.failure}\nschedule: {encode(failure.schedule)}\n{failure.describe()}"
    )
    assert report.complete


def test_the_remover_removes_an_orphan_when_it_runs_alone() -> None:
    out = run(windows_scenario(uv=2), lambda step: step.default())
    assert out.failure is None
    assert out.results["R"].removed == [WIN_LOCK_PATH]
    assert out.critical_sections == 2
    names = {call[3] for _who, call in out.trace if call[:2] == ("SetFileInformationByHandle",
                                                                 "FileRenameInfoEx")}  # fmt: skip
    assert len(names) == 1 and names.pop().endswith(GONE_SUFFIX)


@pytest.mark.parametrize("modern_uv", [True, False], ids=["uv>=0.7.19", "uv<0.7.19"])
def test_every_schedule_of_two_uv_and_a_remover_within_two_preemptions(modern_uv: bool) -> None:
    report = dfs(windows_scenario(uv=2, modern_uv=modern_uv), bound=2)
    _check(report)
    assert report.states > 1000 and report.handoffs > 0


def test_every_schedule_of_two_removers_and_a_uv_within_one_preemption() -> None:
    _check(dfs(windows_scenario(uv=1, removers=2), bound=1))


def test_every_schedule_of_a_batch_of_two_files_within_one_preemption() -> None:
    # W1 and W3 on one name, W2 on the other: one remover batch holds both
    report = dfs(windows_scenario(uv=3, files=2), bound=1)
    _check(report)
    assert report.handoffs > 0


def test_every_schedule_without_posix_semantics_within_one_preemption() -> None:
    _check(dfs(windows_scenario(uv=2, posix=False), bound=1))


def test_random_schedules_of_three_uv_and_a_remover() -> None:
    report = random_runs(windows_scenario(uv=3), seed=15, runs=300)
    _check(report)
    assert report.runs == 300


@DEEP
@pytest.mark.parametrize(
    ("uv", "removers", "bound"),
    [(2, 1, 3), (3, 1, 2), (2, 2, 2)],
    ids=["2uv-b3", "3uv-b2", "2R-b2"],
)
def test_deep(uv: int, removers: int, bound: int) -> None:
    _check(dfs(windows_scenario(uv=uv, removers=removers), bound=bound))


@DEEP
def test_deep_batch_of_two_files() -> None:
    _check(dfs(windows_scenario(uv=3, files=2), bound=2))


# ---- power: the delete-pending design is caught ------------------------------------------------


class DeletePendingRemover(WindowsRemover):
    """63d3071's Windows `unlink`/`undo` in today's remover: mark the file delete-pending by
    handle (POSIX semantics), check again, and close; the name goes only at the close."""

    def unlink(self, target: Target) -> None:
        self._files().set_delete(target.handle)

    def undo(self, target: Target, use: Use, result: RemoveResult) -> str:
        self._files().set_delete(target.handle, delete=False)  # type: ignore[call-arg]
        return "the delete was cancelled and the file kept"


@pytest.mark.parametrize("modern_uv", [True, False], ids=["uv>=0.7.19", "uv<0.7.19"])
def test_power_the_search_finds_the_delete_pending_window(modern_uv: bool) -> None:
    scenario = windows_scenario(uv=2, modern_uv=modern_uv, remover_type=DeletePendingRemover)
    report = dfs(scenario, bound=2)
    print(report.summary())
    assert report.failure is not None
    if modern_uv:
        assert "entered its critical section while" in str(report.failure.failure)
    else:
        assert "failed: its open of the lock file was refused" in str(report.failure.failure)
    assert random_runs(scenario, seed=1, runs=300).failure is not None


def _marked_for_deletion(actor: Actor) -> bool:
    return any(f.delete for f in actor.world.kernel.names.values())


#: finding 2 of issue 15 as a scenario: uv opens the name while the cleaner's delete is pending
DELETE_PENDING_WINDOW: list[Directive] = [
    ("R", _marked_for_deletion),  # the file has a delete pending (the old design: at its name)
    ("W1", in_critical),  # opens the name: refused, so uv >= 0.7.19 runs without the lock
    ("R", done),  # checks again, unlocks, closes: the name goes
    ("W2", in_critical),  # creates a fresh file at the name and locks it
]


@pytest.mark.parametrize("broken", [True, False], ids=["delete-pending", "today"])
def test_finding_2_uv_opening_during_the_delete(broken: bool) -> None:
    scenario = windows_scenario(uv=2, remover_type=DeletePendingRemover if broken else None)
    out = run(scenario, scripted(DELETE_PENDING_WINDOW))
    if broken:
        assert out.failure == "W2 entered its critical section while W1 is in its own"
        return
    assert out.failure is None, f"{out.failure}\n{out.describe()}"
    assert out.critical_sections == 2
    assert out.results["R"].removed == [WIN_LOCK_PATH]  # renamed away first: uv got a new file
