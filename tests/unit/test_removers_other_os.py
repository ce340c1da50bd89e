"""The Windows and macOS removal primitives, on Linux with their OS calls injected.

Windows: a model of the Windows file calls that is strict where Windows is (tests/windows_model.py:
share modes, byte-range locks per handle, delete-pending files refusing opens, renames and POSIX
deletes by handle). macOS: real files and real
flock, with psutil's open-file list injected.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Holder
from tests.windows_model import ME, WindowsModel
from uvsweep.model import LockState
from uvsweep.probe.windows import FILE_ATTRIBUTE_REPARSE_POINT
from uvsweep.remove import Policy, for_platform
from uvsweep.remove.posix import DarwinRemover, LinuxRemover
from uvsweep.remove.windows import WindowsRemover

A = "uv-00000000000000aa.lock"
B = "uv-00000000000000bb.lock"
C = "uv-00000000000000cc.lock"


def windows_remover(fs: WindowsModel, admin: bool = False) -> WindowsRemover:
    class Table:
        def holder(self, pid: int) -> Any:
            from uvsweep.model import Holder as ModelHolder

            return ModelHolder(pid, "uv.exe", "HOST\\me")

    return WindowsRemover(
        files=fs, processes=Table(), lstat=fs.lstat, listdir=fs.listdir,  # type: ignore[arg-type]
        clock=lambda: 1000.0, is_admin=lambda: admin,
    )  # fmt: skip


def test_windows_removes_an_orphan_freeing_the_name_before_the_delete() -> None:
    fs = WindowsModel()
    fs.add(A)
    result = windows_remover(fs).remove([fs.DIR], Policy())
    assert result.removed == [fs.path(A)]
    assert fs.names == {} and fs.handles == {}  # the renamed file went at our close
    assert fs.log == ["open", "lock", "pids", "rename", "delete", "pids", "unlock", "close"]


def test_windows_never_leaves_a_name_delete_pending_while_other_files_are_checked() -> None:
    """Finding 2: uv opening a file of the batch while the next one is checked.

    With the name delete-pending, uv's open fails with ERROR_ACCESS_DENIED and uv >= 0.7.19 runs
    without the lock. With the name freed at once, uv creates a new file there and locks it.
    """
    fs = WindowsModel()
    fs.add(A)
    fs.add(B)
    uv: list[object] = []

    def uv_comes_for_a() -> None:  # B's second lstat (still_named): A is done with by now
        assert "delete" in fs.log
        try:
            handle = fs.uv_open(A, pid=4242)
        except PermissionError as err:  # the bug: uv warns and runs without the lock
            uv.append(err)
            return
        assert fs.try_lock(handle)
        uv.append(handle)

    fs.hooks["lstat " + fs.path(B)] = lambda: fs.hooks.__setitem__(
        "lstat " + fs.path(B), uv_comes_for_a
    )
    result = windows_remover(fs).remove([fs.DIR], Policy())
    assert len(uv) == 1 and isinstance(uv[0], int), f"uv's open of A failed: {uv}"
    assert result.removed == [fs.path(A), fs.path(B)]
    assert fs.holder_of(fs.path(A)) == 4242  # uv's own new file, locked by uv alone
    assert [h.pid for h in fs.handles.values()] == [4242]


def test_windows_hands_the_lock_over_to_a_late_opener() -> None:
    """uv opens the file between the check and the rename: it gets the old file, and the name
    gets a new file that we hold until uv is done with the old one."""
    fs = WindowsModel()
    fs.add(A)
    late: dict[str, int] = {}
    seen: list[str] = []

    def uv_opens() -> None:  # the still_named lstat, right before the rename
        late["handle"] = fs.uv_open(A, pid=777)
        assert not fs.try_lock(late["handle"])  # our lock: uv waits in LockFileEx

    def old_lock_released(number: int) -> None:
        if fs.handles[number].file is not fs.handles[late["handle"]].file:
            return
        # at the moment the old lock goes, the name must already be a file locked by us
        seen.append(f"name held by {fs.holder_of(fs.path(A))}")
        assert fs.try_lock(late["handle"])  # the waiting uv now takes the old file's lock
        another = fs.uv_open(A, pid=888)  # and a new uv finds the new file, locked
        seen.append(f"new uv locks: {fs.try_lock(another)}")
        fs.close_handle(another)
        fs.hooks["pids"] = lambda _n: fs.hooks.__setitem__("pids", finish)

    def finish(_number: int) -> None:
        fs.close_handle(late["handle"])  # uv is done with the old file

    fs.hooks["lstat " + fs.path(A)] = lambda: fs.hooks.__setitem__("lstat " + fs.path(A), uv_opens)
    fs.hooks["unlock"] = old_lock_released
    result = windows_remover(fs).remove([fs.DIR], Policy())
    assert seen == [f"name held by {ME}", "new uv locks: False"]
    assert result.removed == [] and result.handoffs == 1
    assert "handed over" in result.skipped[0].reason
    assert list(fs.names) == [fs.path(A)] and fs.handles == {}  # the new file stays, unlocked


def test_windows_rename_refused_keeps_the_file() -> None:
    fs = WindowsModel()
    fs.add(A)
    fs.add(B)

    # (a sharing violation cannot refuse it: nobody can open the file without sharing delete
    # while our DELETE handle is open; the model enforces that too)
    original = fs.rename

    def rename(number: int, new_name: str) -> None:
        if new_name.startswith(A):
            raise PermissionError(13, "Access is denied")
        original(number, new_name)

    fs.rename = rename  # type: ignore[method-assign]
    result = windows_remover(fs).remove([fs.DIR], Policy())
    assert result.removed == [fs.path(B)]
    assert [e.path for e in result.errors] == [fs.path(A)]
    assert fs.path(A) in fs.names and not fs.names[fs.path(A)].delete_pending


def test_windows_without_posix_delete_the_name_is_still_freed_at_once() -> None:
    fs = WindowsModel(posix_delete=False)  # FAT: the classic disposition
    fs.add(A)
    fs.add(B)
    fs.hooks["rename"] = lambda _h: fs.hooks.__setitem__(
        "lstat " + fs.path(B), lambda: fs.uv_open(A, pid=1)
    )
    result = windows_remover(fs).remove([fs.DIR], Policy())
    assert result.removed == [fs.path(A), fs.path(B)]


def test_windows_leaves_held_used_and_odd_files() -> None:
    fs = WindowsModel()
    fs.add(A)
    fs.try_lock(fs.uv_open(A, pid=4141))
    fs.uv_open(B, pid=4242)
    fs.add(C, attrs=FILE_ATTRIBUTE_REPARSE_POINT)
    fs.add("uv-00000000000000dd.lock", size=3)
    fs.add("uv-00000000000000ee.lock", mine=False)
    result = windows_remover(fs).remove([fs.DIR], Policy())
    assert result.removed == []
    assert len(fs.names) == 5 and len(fs.handles) == 2  # uv's two handles, none of ours
    reasons = {s.path.rsplit("\\", 1)[1]: (s.state, s.reason) for s in result.skipped}
    assert reasons[A][0] is LockState.HELD
    assert reasons[B][0] is LockState.OPEN and "pid 4242" in reasons[B][1]
    assert reasons[C][0] is LockState.SUSPICIOUS
    assert reasons["uv-00000000000000dd.lock"][0] is LockState.SUSPICIOUS
    assert reasons["uv-00000000000000ee.lock"][0] is LockState.FOREIGN
    assert "rename" not in fs.log and "delete" not in fs.log


def test_windows_unknown_users_count_as_users() -> None:
    fs = WindowsModel()
    fs.add(A)
    fs.pids_fail = True
    result = windows_remover(fs).remove([fs.DIR], Policy())
    assert result.removed == [] and len(fs.names) == 1
    assert "does not show" in result.skipped[0].reason


def test_windows_other_users_files_need_all_users_and_admin() -> None:
    fs = WindowsModel()
    fs.add(A, mine=False)
    assert windows_remover(fs).remove([fs.DIR], Policy(all_users=True)).removed == []
    assert windows_remover(fs, admin=True).remove([fs.DIR], Policy(all_users=True)).removed == [
        fs.path(A)
    ]


def test_windows_replaced_file_and_min_age() -> None:
    fs = WindowsModel()
    fs.add(A).mtime = 990.0
    fs.add(B)
    original = fs.identity
    fs.identity = lambda h: (7, 99) if fs.handles[h].file is fs.names[fs.path(B)] else original(h)  # type: ignore[method-assign]
    result = windows_remover(fs).remove([fs.DIR], Policy(min_age=60))
    reasons = {s.path.rsplit("\\", 1)[1]: s.reason for s in result.skipped}
    assert "younger than the minimum age" in reasons[A]
    assert "replaced" in reasons[B]
    assert result.removed == [] and len(fs.names) == 2 and fs.handles == {}


def test_windows_missing_dir() -> None:
    result = windows_remover(WindowsModel()).remove(["C:\\gone"], Policy())
    assert [e.path for e in result.errors] == ["C:\\gone"]


# ---- macOS: real files and flock, psutil's open files injected --------------------------------


def test_darwin_remover_with_real_locks(lockdir: Path, hold: type[Holder]) -> None:
    for name in (A, B, C):
        (lockdir / name).touch()
    hold(lockdir / B)

    def open_files() -> list[tuple[int, list[str] | None]]:
        return [(1, [str(lockdir / C)]), (2, None), (ME, [str(lockdir / A)])]

    result = DarwinRemover(open_files=open_files).remove([str(lockdir)], Policy())
    assert result.removed == [str(lockdir / A)]
    states = {Path(s.path).name: s.state for s in result.skipped}
    assert states == {B: LockState.HELD, C: LockState.OPEN}
    assert result.hidden_processes == 1
    assert (lockdir / B).exists() and (lockdir / C).exists()


def test_darwin_handoff_when_a_process_shows_up_after_the_unlink(lockdir: Path) -> None:
    path = lockdir / A
    path.touch()
    old_ino = path.stat().st_ino
    calls = {"after_unlink": False, "checks": 0}

    class Remover(DarwinRemover):
        def unlink(self, target: Any) -> None:
            super().unlink(target)
            calls["after_unlink"] = True

    def open_files() -> list[tuple[int, list[str] | None]]:
        if not calls["after_unlink"]:
            return []
        calls["checks"] += 1
        # pid 31337 had opened the old file; it lets go after a few polls
        return [(31337, [str(path)])] if calls["checks"] < 4 else []

    result = Remover(open_files=open_files).remove([str(lockdir)], Policy())
    assert result.removed == [] and result.handoffs == 1
    assert path.exists() and path.stat().st_ino != old_ino
    assert stat.S_IMODE(path.stat().st_mode) == 0o666
    assert "handed over" in result.skipped[0].reason
    assert calls["checks"] >= 4


def test_the_chooser_picks_a_remover_per_os() -> None:
    assert isinstance(for_platform("linux"), LinuxRemover)
    assert isinstance(for_platform("darwin", open_files=list), DarwinRemover)
    assert isinstance(for_platform("win32"), WindowsRemover)


# ---- on the real OSes -------------------------------------------------------------------------


@pytest.mark.windows
@pytest.mark.skipif(os.name != "nt", reason="runs on Windows only")
def test_windows_real_remove(tmp_path: Path) -> None:  # pragma: no cover
    import msvcrt

    (tmp_path / A).touch()
    (tmp_path / B).touch()
    with open(tmp_path / B, "r+b") as handle:
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        result = WindowsRemover().remove([str(tmp_path)], Policy())
    assert result.removed == [str(tmp_path / A)]
    assert not (tmp_path / A).exists() and (tmp_path / B).exists()


@pytest.mark.macos
@pytest.mark.skipif(sys.platform != "darwin", reason="runs on macOS only")
def test_macos_real_remove(lockdir: Path, hold: type[Holder]) -> None:  # pragma: no cover
    (lockdir / A).touch()
    (lockdir / B).touch()
    hold(lockdir / B)
    result = DarwinRemover().remove([str(lockdir)], Policy())
    assert result.removed == [str(lockdir / A)]
    assert (lockdir / B).exists()
