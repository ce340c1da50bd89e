"""The interleaving search over the real Windows remover, on the simulated Windows kernel.

First the kernel itself, call by call, against what the Win32 docs say; then the search (the
same invariant as on Linux: never two uv processes in their critical sections at once; and an
old uv, which fails when its open fails, must never fail); then its power: the delete-pending
design (issue 15's finding 2, 63d3071's `unlink`) put back in a subclass of today's remover is
caught, by the exhaustive search, by random schedules, and by a kept scenario.

Then the keeper (`remove.winkeeper`): the kernel's byte ranges, lock owners and handle
inheritance against the docs; the search with a keeper process taking long handoffs over, and
with none starting or one dying before its `ready`; scripted handovers (a silent keeper killed,
a keeper killed after `ready`: the documented limit); and the power of the search over a cleaner
that lets its byte go before `ready` and a keeper that says `ready` before it holds its byte.

Deep runs (bound 3, three uv processes, two removers) only with `UVSWEEP_SIM_DEEP=1`.
"""

from __future__ import annotations

import os
from typing import Any

import pytest

from tests.sim.explore import (
    Directive,
    before,
    blocked,
    dfs,
    done,
    encode,
    in_critical,
    random_runs,
    run,
    scripted,
)
from tests.sim.kernel import BLOCKED
from tests.sim.winkernel import (
    DELETE,
    ERROR_ACCESS_DENIED,
    ERROR_ALREADY_EXISTS,
    ERROR_FILE_NOT_FOUND,
    ERROR_INVALID_LOCK_RANGE,
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
    WHOLE_FILE,
    WIN_TMP,
    WinKernel,
)
from tests.sim.winworld import (
    WIN_LOCK_PATH,
    SimWinKeeper,
    WinCalls,
    dying_keeper,
    silent_keeper,
    windows_scenario,
)  # fmt: skip
from tests.sim.world import LOCK_NAME, Actor, Body
from uvsweep.model import CleanResult
from uvsweep.remove import Target, Use
from uvsweep.remove.windows import GONE_SUFFIX, WindowsRemover
from uvsweep.remove.winkeeper import CLEANER_FENCE, KEEPER_FENCE, WinHandoff

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

    def undo(self, target: Target, use: Use, result: CleanResult) -> str:
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


# ---- byte ranges, owners and inheritance, against the docs --------------------------------------


def test_byte_ranges_conflict_only_where_they_overlap() -> None:
    """`LockFileEx`: "exclusive locks cannot overlap an existing locked region"; ranges that do
    not overlap are independent, whoever holds them. uv's lock (offset 0, length 2^64 - 1)
    overlaps every byte."""
    kernel = _kernel()
    one, two, uv = (kernel.create_file(pid, WIN_LOCK_PATH, UV, SHARE_ALL, OPEN_ALWAYS)
                    for pid in (1, 2, 3))  # fmt: skip
    assert kernel.lock(1, one, True, True, *CLEANER_FENCE) is None
    assert kernel.lock(2, two, True, True, *KEEPER_FENCE) is None  # [1, 2) beside [0, 1)
    assert _winerror(kernel.lock, 3, uv, True, True, *WHOLE_FILE) == ERROR_LOCK_VIOLATION
    assert _winerror(kernel.lock, 3, uv, False, True, *WHOLE_FILE) == ERROR_LOCK_VIOLATION
    # [0, 2) overlaps both; [2, 3) neither
    assert _winerror(kernel.lock, 3, uv, True, True, 0, 2) == ERROR_LOCK_VIOLATION
    assert kernel.lock(3, uv, True, True, 2, 1) is None
    kernel.unlock(1, one, *CLEANER_FENCE)
    kernel.unlock(3, uv, 2, 1)
    # one byte still locked by anybody keeps uv's whole-file lock out
    assert _winerror(kernel.lock, 3, uv, True, True, *WHOLE_FILE) == ERROR_LOCK_VIOLATION
    kernel.unlock(2, two, *KEEPER_FENCE)
    assert kernel.lock(3, uv, True, True, *WHOLE_FILE) is None


def test_an_exclusive_request_conflicts_with_its_own_locks_and_a_shared_one_does_not() -> None:
    kernel = _kernel()
    mine = kernel.create_file(1, WIN_LOCK_PATH, UV, SHARE_ALL, OPEN_ALWAYS)
    theirs = kernel.create_file(2, WIN_LOCK_PATH, UV, SHARE_ALL, OPEN_ALWAYS)
    assert kernel.lock(1, mine, True, True, 0, 1) is None
    assert _winerror(kernel.lock, 1, mine, True, True, 0, 1) == ERROR_LOCK_VIOLATION
    assert kernel.lock(1, mine, False, True, 0, 1) is None  # shared over our own exclusive
    assert _winerror(kernel.lock, 2, theirs, False, True, 0, 1) == ERROR_LOCK_VIOLATION
    # two unlocks: "the first unlock operation unlocks the exclusive lock"
    kernel.unlock(1, mine, 0, 1)
    assert kernel.lock(2, theirs, False, True, 0, 1) is None  # only shared ones left
    kernel.unlock(1, mine, 0, 1)
    assert _winerror(kernel.unlock, 1, mine, 0, 1) == ERROR_NOT_LOCKED


def test_unlock_must_name_exactly_a_range_of_the_same_owner() -> None:
    """`UnlockFileEx`: the region "must correspond exactly to an existing locked region";
    adjacent regions cannot be unlocked as one; another process's lock is not ours to drop."""
    kernel = _kernel()
    mine = kernel.create_file(1, WIN_LOCK_PATH, UV, SHARE_ALL, OPEN_ALWAYS)
    theirs = kernel.create_file(2, WIN_LOCK_PATH, UV, SHARE_ALL, OPEN_ALWAYS)
    kernel.lock(1, mine, True, True, 0, 1)
    kernel.lock(1, mine, True, True, 1, 1)
    assert _winerror(kernel.unlock, 1, mine, 0, 2) == ERROR_NOT_LOCKED  # spans both
    assert _winerror(kernel.unlock, 1, mine, *WHOLE_FILE) == ERROR_NOT_LOCKED
    assert _winerror(kernel.unlock, 2, theirs, 0, 1) == ERROR_NOT_LOCKED  # not its owner's
    kernel.lock(2, theirs, True, True, 4, 4)
    assert _winerror(kernel.unlock, 2, theirs, 4, 2) == ERROR_NOT_LOCKED  # a part of it
    kernel.unlock(1, mine, 1, 1)
    kernel.unlock(1, mine, 0, 1)
    kernel.unlock(2, theirs, 4, 4)
    assert kernel.locks == []


def test_ranges_that_wrap_are_refused_and_zero_lengths_are_not_modelled() -> None:
    kernel = _kernel()
    mine = kernel.create_file(1, WIN_LOCK_PATH, UV, SHARE_ALL, OPEN_ALWAYS)
    assert _winerror(kernel.lock, 1, mine, True, True, 2, (1 << 64) - 1) == (
        ERROR_INVALID_LOCK_RANGE
    )
    assert kernel.lock(1, mine, True, True, 1, (1 << 64) - 1) is None  # ends at the last byte
    with pytest.raises(NotImplementedError):
        kernel.lock(1, mine, True, True, 5, 0)


def test_an_inherited_handle_carries_no_lock_and_a_lock_dies_with_its_process() -> None:
    """A child inheriting a handle has the same file object under the same number, but the
    parent's locks are not its own (it cannot release them) and they go when the parent exits,
    while the child's own lock on the same file object stays."""
    kernel = _kernel()
    parent = kernel.create_file(1, WIN_LOCK_PATH, UV, SHARE_ALL, OPEN_ALWAYS)
    uv = kernel.create_file(3, WIN_LOCK_PATH, UV, SHARE_ALL, OPEN_ALWAYS)
    kernel.lock(1, parent, True, True, *CLEANER_FENCE)
    kernel.inherit(1, 2, [parent])
    assert kernel.identity(2, parent) == kernel.identity(1, parent)
    assert _winerror(kernel.unlock, 2, parent, *CLEANER_FENCE) == ERROR_NOT_LOCKED
    assert _winerror(kernel.lock, 2, parent, True, True, *CLEANER_FENCE) == ERROR_LOCK_VIOLATION
    assert kernel.lock(2, parent, True, True, *KEEPER_FENCE) is None
    assert kernel.lock(3, uv, True, False) is BLOCKED  # uv waits for the whole file
    kernel.exit(1)  # the parent's byte goes with it ...
    assert kernel.lock_ranges(kernel.names[LOCK_NAME.casefold()]) == [(2, *KEEPER_FENCE, True)]
    assert kernel.blocked(3)  # ... but uv still waits: the child's byte is in its range
    assert kernel.processes_using(2, parent) == [2, 3]
    kernel.exit(2)
    assert kernel.holds_lock(3, uv) and not kernel.blocked(3)  # granted in the exit


def test_a_posix_delete_through_an_inherited_file_object_waits_for_its_last_handle() -> None:
    kernel = _kernel()
    mine = kernel.create_file(1, WIN_LOCK_PATH, CLEANER, SHARE_ALL, OPEN_EXISTING)
    kernel.rename(1, mine, "gone")
    kernel.set_disposition(1, mine, delete=True, posix=True)
    kernel.inherit(1, 2, [mine])
    kernel.close(1, mine)
    assert kernel.listdir(WIN_TMP) == ["gone"]  # the child's handle is on that file object
    kernel.close(2, mine)
    assert kernel.listdir(WIN_TMP) == []


# ---- the keeper: handed over, and the search with it --------------------------------------------


def test_the_search_with_keepers_finds_no_counterexample() -> None:
    """2 uv and a cleaner whose handoffs outlast its wait (a "timeout" choice) go to a keeper
    process: every schedule within two preemptions, the keeper's steps included."""
    report = dfs(windows_scenario(uv=2), bound=2)
    _check(report)
    assert report.handoffs > 0 and report.keepers > 0


def test_random_schedules_with_keepers() -> None:
    report = random_runs(windows_scenario(uv=3), seed=12, runs=300)
    _check(report)
    assert report.keepers > 0


@pytest.mark.parametrize(
    "keeper",
    [None, lambda actor: SimWinKeeper(actor, dying_keeper)],
    ids=["no-keeper-starts", "keeper-dies-before-ready"],
)
def test_the_search_when_no_keeper_takes_over(keeper: Any) -> None:
    """No keeper (it cannot start, or it dies before its `ready`): the cleaner keeps its byte
    and waits itself; every schedule within two preemptions is still safe."""
    report = dfs(windows_scenario(uv=2, keeper=keeper), bound=2)
    _check(report)
    assert report.handoffs > 0


def _keeper_started(actor: Actor) -> bool:
    return any(a.kind == "keeper" for a in actor.world.actors)


def _asleep(actor: Actor) -> bool:
    return actor.status == "sleeping"


#: a late opener forces a handoff; the cleaner hands it to a keeper and returns while the old
#: file's user still holds the old lock; a new uv opening the name waits for the keeper
HANDOVER: list[Directive] = [
    ("R", before("SetFileInformationByHandle")),  # checked, about to rename
    ("W1", blocked),  # opens the old file and waits for its lock (ours)
    ("R", _keeper_started),  # renames, sees W1, fences a new file, releases the old one
    ("K1", _asleep),  # takes its byte, says ready, follows the old file's users
    ("R", done),  # lets its byte go and returns
    ("W2", blocked),  # opens the name: the new file, behind the keeper's byte
]


def test_handover_to_a_keeper_keeps_uv_out_until_the_old_file_is_free() -> None:
    seen: dict[str, object] = {}

    def look(actor: Actor) -> bool:  # once W2 waits: what holds what
        kernel = actor.world.kernel
        if blocked(actor) and not seen:
            new = kernel.names[LOCK_NAME.casefold()]
            seen["locks"] = kernel.lock_ranges(new)
            seen["R"] = actor.world.by_name("R").status
            seen["W1"] = actor.world.by_name("W1").in_cs or kernel.holds_lock(
                actor.world.by_name("W1").pid, 256
            )
        return blocked(actor)

    scenario = windows_scenario(uv=2, handoff_wait=0.0)
    out = run(scenario, scripted([*HANDOVER[:-1], ("W2", look)]))
    assert out.failure is None, f"{out.failure}\n{out.describe()}"
    keeper = out.results.get("K1")
    assert seen == {"locks": [(keeper_pid(out), *KEEPER_FENCE, True)], "R": "done", "W1": True}
    assert out.results["R"].keepers == [keeper_pid(out)]
    assert keeper == 0 and out.critical_sections == 2  # W2 got the new file in the end
    assert "keeper (pid" in out.results["R"].skipped[0].reason


def keeper_pid(out: Any) -> int:
    return 100 + 3  # R, W1, W2, then the keeper


def test_the_cleaner_releases_only_after_ready() -> None:
    """In the trace, the cleaner's byte goes after the keeper's `ready`, never before."""
    out = run(windows_scenario(uv=2, handoff_wait=0.0), scripted(HANDOVER))
    assert out.failure is None
    calls = [(who, call[0], call[2:]) for who, call in out.trace]
    ready = calls.index(("K1", "WriteFile", ("ready",)))
    kept = [i for i, (who, name, rest) in enumerate(calls)
            if who == "K1" and name == "LockFileEx" and rest == KEEPER_FENCE]  # fmt: skip
    released = [i for i, (who, name, rest) in enumerate(calls)
                if who == "R" and name == "UnlockFileEx" and rest == CLEANER_FENCE]  # fmt: skip
    assert kept and released and kept[0] < ready < released[0]


def test_asilent_keeper_is_killed_and_the_cleaner_waits_itself() -> None:
    scenario = windows_scenario(
        uv=2, handoff_wait=0.0, keeper=lambda actor: SimWinKeeper(actor, silent_keeper)
    )
    killed: Directive = ("R", lambda actor: actor.world.by_name("K1").killed)
    out = run(scenario, scripted([*HANDOVER[:3], killed]))  # R times out waiting for ready
    assert out.failure is None, f"{out.failure}\n{out.describe()}"
    assert ("R", ("TerminateProcess", keeper_pid(out))) in out.trace
    assert out.results["R"].keepers == [] and out.critical_sections == 2
    assert out.results["R"].handoffs == 1


def test_a_keeper_killed_after_ready_lets_uv_in_while_the_old_file_is_used() -> None:
    """The documented limit: once `ready` came the keeper is the only guard. Killed from
    outside while the old file's user still holds the old lock, its byte goes and a uv that
    waits on the new file gets it: two holders, as with a Unix keeper killed by SIGKILL."""

    def kill_keeper(actor: Actor) -> bool:
        keeper = actor.world.by_name("K1")
        if not keeper.killed:
            keeper.killed = True
            actor.world.kernel.exit(keeper.pid)
        return True

    directives = [
        *HANDOVER,
        ("W2", kill_keeper),
        ("K1", done),
        ("W2", in_critical),
        ("W1", in_critical),
    ]
    out = run(windows_scenario(uv=2, handoff_wait=0.0), scripted(directives))
    assert out.failure is not None and "entered its critical section while" in out.failure


# ---- power: a cleaner that lets go before the keeper's ready is caught -------------------------


class EarlyReleaseRemover(WindowsRemover):
    """Lets its byte of the new file go *before* the keeper says ready (as if it trusted the
    keeper's start): the name is unlocked until the keeper's lock lands."""

    def _to_keeper(
        self,
        handoffs: Any,
        pending: Any,
        result: CleanResult,
    ) -> int | None:
        for handoff in handoffs:
            self._files().unlock_range(handoff.new, *CLEANER_FENCE)
        return super()._to_keeper(handoffs, pending, result)


def test_power_the_search_finds_a_cleaner_releasing_before_ready() -> None:
    scenario = windows_scenario(uv=2, remover_type=EarlyReleaseRemover)
    report = dfs(scenario, bound=2)
    print(report.summary())
    assert report.failure is not None
    assert "entered its critical section while" in str(report.failure.failure)
    assert random_runs(scenario, seed=2, runs=300).failure is not None


def _eager_keeper(job: str) -> Body:
    """A keeper that says ready before it holds its byte."""

    def body(actor: Actor) -> int:
        calls: WinCalls = actor.calls
        calls._do(
            ("WriteFile", actor.channel, "ready"),
            lambda: calls.kernel.write_channel(actor.pid, actor.channel, "ready\n"),
        )
        from tests.sim.winworld import win_keeper_run

        inner: Any = win_keeper_run(job)
        actor.channel = "ready-unused"
        calls.kernel.open_channel("ready-unused", actor.pid)
        return int(inner(actor))

    return body


@DEEP
def test_power_the_search_finds_a_keeper_saying_ready_too_early() -> None:
    """Bound 3 (4,080 runs, 12,016 states, 22 s here): the keeper's lock must land between the
    uv that waits on the new file and the cleaner's release."""
    scenario = windows_scenario(uv=2, keeper=lambda actor: SimWinKeeper(actor, _eager_keeper))
    report = dfs(scenario, bound=3)
    print(report.summary())
    assert report.failure is not None
    assert "entered its critical section while" in str(report.failure.failure)


def test_a_handoff_survives_json_for_the_keeper() -> None:
    handoff = WinHandoff("C:\\T\\x.lock", 0x104, 0x108, (7, 9), (7, 10))
    again = WinHandoff.from_json(handoff.to_json())
    assert (again.path, again.old, again.new, again.old_id, again.new_id) == (
        "C:\\T\\x.lock",
        0x104,
        0x108,
        (7, 9),
        (7, 10),
    )
