"""The Windows and macOS removal primitives, on Linux with their OS calls injected.

Windows: a pretend file system that enforces what Windows does (exclusive byte-range locks,
handles, delete dispositions that complete when the handle closes). macOS: real files and real
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
from uvsweep.model import LockState
from uvsweep.probe.windows import FILE_ATTRIBUTE_REPARSE_POINT
from uvsweep.remove import Policy, for_platform
from uvsweep.remove.posix import DarwinRemover, LinuxRemover
from uvsweep.remove.windows import WindowsRemover

A = "uv-00000000000000aa.lock"
B = "uv-00000000000000bb.lock"
C = "uv-00000000000000cc.lock"
ME = os.getpid()


class FakeFile:
    def __init__(self, index: int, *, size: int = 0, attrs: int = 0, mine: bool = True) -> None:
        self.index, self.size, self.attrs, self.mine = index, size, attrs, mine
        self.mtime = 0.0
        self.locked_elsewhere = False
        self.users: set[int] = set()  # other processes with a handle on it
        self.delete_pending = False


class FakeStat:
    def __init__(self, f: FakeFile) -> None:
        self.st_mode = stat.S_IFREG | 0o666
        self.st_size, self.st_nlink, self.st_mtime = f.size, 1, f.mtime
        self.st_dev, self.st_ino, self.st_file_attributes = 7, f.index, f.attrs


class FakeWindows:
    """Enough of Windows to run the protocol: handles, LockFileEx, pids using, dispositions."""

    def __init__(self) -> None:
        self.files: dict[str, FakeFile] = {}
        self.handles: dict[int, str] = {}
        self.locks: set[int] = set()
        self.log: list[str] = []
        self.next_handle = 100
        self.on_delete: Any = None
        self.pids_fail = False

    def add(self, name: str, **kwargs: Any) -> FakeFile:
        f = FakeFile(len(self.files) + 1, **kwargs)
        self.files[f"C:\\T\\{name}"] = f
        return f

    # the os-level seams
    def lstat(self, path: str) -> FakeStat:
        if path not in self.files:
            raise FileNotFoundError(2, "not found", path)
        return FakeStat(self.files[path])

    def listdir(self, directory: str) -> list[str]:
        if directory != "C:\\T":
            raise FileNotFoundError(3, "The system cannot find the path specified")
        return [p.rsplit("\\", 1)[1] for p in self.files] + [
            "notes.txt",
            "UV-00000000000000AA.lock",
        ]

    # Win32Remove
    def open_for_delete(self, path: str) -> int:
        f = self.files.get(path)
        if f is None:
            raise FileNotFoundError(2, "not found", path)
        if f.delete_pending:
            raise PermissionError(5, "Access is denied (delete pending)")
        self.next_handle += 1
        self.handles[self.next_handle] = path
        self.log.append("open")
        return self.next_handle

    def identity(self, handle: int) -> tuple[int, int]:
        return 7, self.files[self.handles[handle]].index

    def owner(self, handle: int) -> tuple[str, bool]:
        mine = self.files[self.handles[handle]].mine
        return ("HOST\\me" if mine else "HOST\\bob"), mine

    def lock_exclusive(self, handle: int) -> bool:
        if self.files[self.handles[handle]].locked_elsewhere:
            return False
        self.locks.add(handle)
        self.log.append("lock")
        return True

    def unlock(self, handle: int) -> None:
        self.locks.discard(handle)
        self.log.append("unlock")

    def pids_using(self, handle: int) -> list[int]:
        if self.pids_fail:
            raise PermissionError(5, "Access is denied")
        self.log.append("pids")
        return [ME, *self.files[self.handles[handle]].users]

    def set_delete(self, handle: int, delete: bool) -> None:
        assert handle in self.locks, "the delete must happen while our lock is held"
        f = self.files[self.handles[handle]]
        f.delete_pending = delete
        self.log.append("delete" if delete else "cancel")
        if delete and self.on_delete:
            self.on_delete(f)

    def close(self, handle: int) -> None:
        path = self.handles.pop(handle)
        self.locks.discard(handle)
        self.log.append("close")
        f = self.files.get(path)
        if f is not None and f.delete_pending:
            del self.files[path]


def windows_remover(fs: FakeWindows, admin: bool = False) -> WindowsRemover:
    class Table:
        def holder(self, pid: int) -> Any:
            from uvsweep.model import Holder as ModelHolder

            return ModelHolder(pid, "uv.exe", "HOST\\me")

    return WindowsRemover(
        files=fs, processes=Table(), lstat=fs.lstat, listdir=fs.listdir,  # type: ignore[arg-type]
        clock=lambda: 1000.0, is_admin=lambda: admin,
    )  # fmt: skip


def test_windows_removes_an_orphan_with_the_delete_inside_the_lock() -> None:
    fs = FakeWindows()
    fs.add(A)
    result = windows_remover(fs).remove(["C:\\T"], Policy())
    assert result.removed == ["C:\\T\\" + A]
    assert fs.files == {} and fs.handles == {}
    assert fs.log == ["open", "lock", "pids", "delete", "pids", "unlock", "close"]


def test_windows_leaves_held_used_and_odd_files() -> None:
    fs = FakeWindows()
    fs.add(A).locked_elsewhere = True
    fs.add(B).users.add(4242)
    fs.add(C, attrs=FILE_ATTRIBUTE_REPARSE_POINT)
    fs.add("uv-00000000000000dd.lock", size=3)
    fs.add("uv-00000000000000ee.lock", mine=False)
    result = windows_remover(fs).remove(["C:\\T"], Policy())
    assert result.removed == []
    assert len(fs.files) == 5 and fs.handles == {}
    reasons = {s.path.rsplit("\\", 1)[1]: (s.state, s.reason) for s in result.skipped}
    assert reasons[A][0] is LockState.HELD
    assert reasons[B][0] is LockState.OPEN and "pid 4242" in reasons[B][1]
    assert reasons[C][0] is LockState.SUSPICIOUS
    assert reasons["uv-00000000000000dd.lock"][0] is LockState.SUSPICIOUS
    assert reasons["uv-00000000000000ee.lock"][0] is LockState.FOREIGN
    assert "delete" not in fs.log


def test_windows_cancels_the_delete_if_someone_got_a_handle_first() -> None:
    fs = FakeWindows()
    fs.add(A)
    fs.on_delete = lambda f: f.users.add(777)  # opened between the first check and the delete
    result = windows_remover(fs).remove(["C:\\T"], Policy())
    assert result.removed == [] and result.handoffs == 1
    assert "C:\\T\\" + A in fs.files, "the file must survive"
    assert fs.log[-4:] == ["pids", "cancel", "unlock", "close"]
    assert "cancelled" in result.skipped[0].reason


def test_windows_unknown_users_count_as_users() -> None:
    fs = FakeWindows()
    fs.add(A)
    fs.pids_fail = True
    result = windows_remover(fs).remove(["C:\\T"], Policy())
    assert result.removed == [] and len(fs.files) == 1
    assert "does not show" in result.skipped[0].reason


def test_windows_other_users_files_need_all_users_and_admin() -> None:
    fs = FakeWindows()
    fs.add(A, mine=False)
    assert windows_remover(fs).remove(["C:\\T"], Policy(all_users=True)).removed == []
    assert windows_remover(fs, admin=True).remove(["C:\\T"], Policy(all_users=True)).removed == [
        "C:\\T\\" + A
    ]


def test_windows_replaced_file_and_min_age() -> None:
    fs = FakeWindows()
    fs.add(A).mtime = 990.0
    fs.add(B)
    original = fs.identity
    fs.identity = lambda h: (7, 99) if fs.handles[h].endswith(B) else original(h)  # type: ignore[method-assign]
    result = windows_remover(fs).remove(["C:\\T"], Policy(min_age=60))
    reasons = {s.path.rsplit("\\", 1)[1]: s.reason for s in result.skipped}
    assert "younger than the minimum age" in reasons[A]
    assert "replaced" in reasons[B]
    assert result.removed == [] and len(fs.files) == 2 and fs.handles == {}


def test_windows_missing_dir() -> None:
    result = windows_remover(FakeWindows()).remove(["C:\\gone"], Policy())
    assert [e.path for e in result.errors] == ["C:\\gone"]


# ---- macOS: real files and flock, psutil's open files injected --------------------------------


def test_darwin_remover_with_real_locks(lockdir: Path, hold: type[Holder]) -> None:
    for name in (A, B, C):
        (lockdir / name).touch()
    hold(lockdir / B)

    def open_files() -> list[tuple[int, list[str] | None]]:
        # ours first, a hidden one, then another (the suite may be pid 1 of a PID namespace)
        return [(ME, [str(lockdir / A)]), (ME + 2, None), (ME + 1, [str(lockdir / C)])]

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
