"""The Windows and macOS backends' logic on Linux, with their OS calls injected."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Holder
from tests.psutil_double import FakeProcess, FakePsutil
from tests.windows_model import WindowsModel
from uvsweep.model import LockState
from uvsweep.probe import for_platform
from uvsweep.probe.darwin import DarwinBackend
from uvsweep.probe.linux import LinuxBackend
from uvsweep.probe.windows import FILE_ATTRIBUTE_REPARSE_POINT, WindowsBackend

NAME_A = "uv-00000000000000aa.lock"
NAME_B = "uv-00000000000000bb.lock"


class Table:
    def holder(self, pid: int) -> Any:
        from uvsweep.model import Holder as ModelHolder

        return ModelHolder(pid, "uv.exe", "HOST\\me")


def windows(fs: WindowsModel) -> WindowsBackend:
    return WindowsBackend(files=fs, processes=Table(), lstat=fs.lstat,  # type: ignore[arg-type]
                          listdir=fs.listdir)  # fmt: skip


def test_windows_held_free_foreign_and_reparse_points() -> None:
    fs = WindowsModel()
    fs.add(NAME_A)
    fs.add(NAME_B)
    fs.add("uv-00000000000000cc.lock", mine=False)
    fs.add("uv-00000000000000dd.lock", attrs=FILE_ATTRIBUTE_REPARSE_POINT)
    fs.try_lock(fs.uv_open(NAME_B, pid=4141))
    result = windows(fs).probe([fs.DIR])
    states = {item.name: item.state for item in result.files}
    assert states == {
        NAME_A: LockState.ORPHANED,
        NAME_B: LockState.HELD,
        "uv-00000000000000cc.lock": LockState.FOREIGN,
        "uv-00000000000000dd.lock": LockState.SUSPICIOUS,
    }
    assert fs.ours() == []  # every handle closed


def test_windows_never_opens_reparse_points() -> None:
    fs = WindowsModel()
    fs.add(NAME_A, attrs=FILE_ATTRIBUTE_REPARSE_POINT)
    assert windows(fs).probe([fs.DIR]).files[0].state is LockState.SUSPICIOUS
    assert "open" not in fs.log


def test_windows_file_replaced_between_lstat_and_open_is_not_trusted() -> None:
    fs = WindowsModel()
    fs.add(NAME_A)
    fs.identity = lambda number: (7, 99)  # type: ignore[method-assign]
    item = windows(fs).probe([fs.DIR]).files[0]
    assert item.state is LockState.SUSPICIOUS
    assert "replaced" in item.reason


def test_windows_access_denied_is_suspicious_not_orphaned() -> None:
    fs = WindowsModel()
    fs.add(NAME_A)
    fs.create_file(fs.path(NAME_A), 99, 0x80000000, 0, create=False)  # shares nothing
    item = windows(fs).probe([fs.DIR]).files[0]
    assert item.state is LockState.SUSPICIOUS


def test_windows_openers_come_from_the_files_own_handle(monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding 9: who has the file open is asked of the file, not of every process's open-file
    list (which psutil calls incomplete, and which spells paths its own way)."""
    fs = WindowsModel()
    fs.add(NAME_A)
    fs.add(NAME_B)
    fs.uv_open(NAME_A, pid=4242)  # opened, not locked (yet)
    # psutil would list the file under its 8.3 spelling, which matches no lstat'ed path
    double = FakePsutil("win32", [
        FakeProcess(4242, name="uv.exe", open_paths=["C:\\Users\\RUNNER~1\\T\\" + NAME_A]),
    ], stat=lambda path: os.stat_result((stat.S_IFREG | 0o666,) + (0,) * 9))  # fmt: skip
    monkeypatch.setitem(sys.modules, "psutil", double)
    result = windows(fs).probe([fs.DIR])
    states = {item.name: item for item in result.files}
    assert states[NAME_A].state is LockState.OPEN
    assert [h.pid for h in states[NAME_A].openers] == [4242]
    assert states[NAME_B].state is LockState.ORPHANED


def test_windows_unknown_openers_are_not_nobody() -> None:
    fs = WindowsModel()
    fs.add(NAME_A)
    fs.pids_fail = True
    item = windows(fs).probe([fs.DIR]).files[0]
    assert item.state is LockState.OPEN and item.openers[0].pid is None


def test_windows_missing_dir_is_an_error_not_a_crash() -> None:
    result = windows(WindowsModel()).probe(["C:\\missing"])
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
        return [(1, [opened]), (2, None), (os.getpid(), [str(lockdir / NAME_A)])]

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
