"""The Windows and macOS backends' logic on Linux, with their OS calls injected."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Holder
from uvsweep.model import LockState
from uvsweep.probe import for_platform
from uvsweep.probe.darwin import DarwinBackend
from uvsweep.probe.linux import LinuxBackend
from uvsweep.probe.windows import FILE_ATTRIBUTE_REPARSE_POINT, WindowsBackend

NAME_A = "uv-00000000000000aa.lock"
NAME_B = "uv-00000000000000bb.lock"


class FakeStat:
    def __init__(self, ino: int, *, mode: int = stat.S_IFREG | 0o666, attrs: int = 0) -> None:
        self.st_mode, self.st_size, self.st_nlink, self.st_mtime = mode, 0, 1, 0.0
        self.st_dev, self.st_ino, self.st_file_attributes = 7, ino, attrs


class FakeWin32:
    """A pretend Win32: which handles are locked elsewhere, who owns what, what fails."""

    def __init__(self) -> None:
        self.locked: set[str] = set()
        self.foreign: set[str] = set()
        self.denied: set[str] = set()
        self.identities: dict[str, tuple[int, int]] = {}
        self.open_handles: list[str] = []

    def open(self, path: str) -> Any:
        if path in self.denied:
            raise PermissionError(13, "Access is denied")
        self.open_handles.append(path)
        return path

    def identity(self, handle: Any) -> tuple[int, int]:
        return self.identities[handle]

    def try_lock_shared(self, handle: Any) -> bool:
        return handle not in self.locked

    def owner(self, handle: Any) -> tuple[str, bool]:
        return ("HOST\\bob", False) if handle in self.foreign else ("HOST\\me", True)

    def close(self, handle: Any) -> None:
        self.open_handles.remove(handle)


def windows(entries: dict[str, FakeStat], win: FakeWin32, open_files: Any = None) -> WindowsBackend:
    def lstat(path: str) -> FakeStat:
        try:
            return entries[os.path.basename(path.replace("\\", "/"))]
        except KeyError:
            raise FileNotFoundError(path) from None

    def listdir(directory: str) -> list[str]:
        if directory == "C:\\missing":
            raise FileNotFoundError(2, "The system cannot find the path specified")
        return [*entries, "notes.txt", "UV-00000000000000AA.lock"]

    for name, st in entries.items():
        win.identities[os.path.join("C:\\T", name)] = (st.st_dev, st.st_ino)
    return WindowsBackend(files=win, open_files=open_files or (list), lstat=lstat, listdir=listdir)


def test_windows_held_free_foreign_and_reparse_points() -> None:
    win = FakeWin32()
    entries = {
        NAME_A: FakeStat(1),
        NAME_B: FakeStat(2),
        "uv-00000000000000cc.lock": FakeStat(3),
        "uv-00000000000000dd.lock": FakeStat(4, attrs=FILE_ATTRIBUTE_REPARSE_POINT),
    }
    backend = windows(entries, win)
    win.locked.add(os.path.join("C:\\T", NAME_B))
    win.foreign.add(os.path.join("C:\\T", "uv-00000000000000cc.lock"))
    result = backend.probe(["C:\\T"])
    states = {item.name: item.state for item in result.files}
    assert states == {
        NAME_A: LockState.ORPHANED,
        NAME_B: LockState.HELD,
        "uv-00000000000000cc.lock": LockState.FOREIGN,
        "uv-00000000000000dd.lock": LockState.SUSPICIOUS,
    }
    assert win.open_handles == []  # every handle closed


def test_windows_never_opens_reparse_points() -> None:
    win = FakeWin32()
    backend = windows({NAME_A: FakeStat(1, attrs=FILE_ATTRIBUTE_REPARSE_POINT)}, win)
    opened: list[str] = []
    original = win.open
    win.open = lambda path: (opened.append(path), original(path))[1]  # type: ignore[method-assign]
    assert backend.probe(["C:\\T"]).files[0].state is LockState.SUSPICIOUS
    assert opened == []


def test_windows_file_replaced_between_lstat_and_open_is_not_trusted() -> None:
    win = FakeWin32()
    backend = windows({NAME_A: FakeStat(1)}, win)
    win.identities[os.path.join("C:\\T", NAME_A)] = (7, 99)  # another file now has the name
    item = backend.probe(["C:\\T"]).files[0]
    assert item.state is LockState.SUSPICIOUS
    assert "replaced" in item.reason


def test_windows_access_denied_is_suspicious_not_orphaned() -> None:
    win = FakeWin32()
    backend = windows({NAME_A: FakeStat(1)}, win)
    win.denied.add(os.path.join("C:\\T", NAME_A))
    item = backend.probe(["C:\\T"]).files[0]
    assert item.state is LockState.SUSPICIOUS


def test_windows_openers_and_hidden_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    win = FakeWin32()
    path = "C:\\T\\" + NAME_A  # as psutil reports it on Windows

    def open_files() -> list[tuple[int, list[str] | None]]:
        return [(4242, [path.upper()]), (4343, None)]

    class Table:
        def holder(self, pid: int) -> Any:
            from uvsweep.model import Holder as ModelHolder

            return ModelHolder(pid, "uv.exe", "HOST\\me")

    backend = windows({NAME_A: FakeStat(1)}, win, open_files)
    backend.processes = Table()  # type: ignore[assignment]
    monkeypatch.setattr(os.path, "normcase", str.lower)  # Windows compares paths case-blind
    result = backend.probe(["C:\\T"])
    assert result.files[0].state is LockState.OPEN
    assert result.files[0].openers[0].pid == 4242
    assert result.hidden_processes == 1


def test_windows_missing_dir_is_an_error_not_a_crash() -> None:
    result = windows({}, FakeWin32()).probe(["C:\\missing"])
    assert result.files == []
    assert result.errors[0].path == "C:\\missing"


# ---- macOS: real flock on real files, open files injected ------------------------------------


def test_darwin_backend_with_real_locks_and_injected_open_files(
    lockdir: Path, hold: type[Holder]
) -> None:
    for name in (NAME_A, NAME_B, "uv-00000000000000cc.lock"):
        (lockdir / name).touch()
    hold(lockdir / NAME_B)
    opened = str(lockdir / "uv-00000000000000cc.lock")

    def open_files() -> list[tuple[int, list[str] | None]]:
        me = os.getpid()  # the others are not us (the suite may be pid 1 of a PID namespace)
        return [(me + 1, [opened]), (me + 2, None), (me, [str(lockdir / NAME_A)])]

    result = DarwinBackend(open_files=open_files).probe([str(lockdir)])
    states = {item.name: item.state for item in result.files}
    assert states == {
        NAME_A: LockState.ORPHANED,  # only we have it open: that does not count
        NAME_B: LockState.HELD,
        "uv-00000000000000cc.lock": LockState.OPEN,
    }
    held = next(item for item in result.files if item.name == NAME_B)
    assert held.holders[0].pid is None  # macOS cannot say who: unknown, never none
    assert result.hidden_processes == 1
    assert any("unknown" in note for note in result.notes)


def test_the_chooser_picks_a_backend_per_os() -> None:
    assert isinstance(for_platform("linux"), LinuxBackend)
    assert isinstance(for_platform("darwin"), DarwinBackend)
    assert isinstance(for_platform("freebsd14"), DarwinBackend)
    assert isinstance(for_platform("win32"), WindowsBackend)


@pytest.mark.windows
@pytest.mark.skipif(os.name != "nt", reason="runs on Windows only")
def test_windows_real_lockfileex_probe(tmp_path: Path) -> None:  # pragma: no cover
    import msvcrt

    path = tmp_path / NAME_A
    path.touch()
    backend = WindowsBackend()
    assert backend.probe([str(tmp_path)]).files[0].state is LockState.ORPHANED
    with open(path, "r+b") as handle:
        msvcrt.locking(handle.fileno(), msvcrt.LK_NBLCK, 1)
        assert backend.probe([str(tmp_path)]).files[0].state is LockState.HELD
