"""The Windows and macOS backends' logic on Linux, with their OS calls injected."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Holder, child_with_file
from tests.darwin_model import LibprocModel
from tests.psutil_double import FakeProcess, FakePsutil
from tests.windows_model import WindowsModel
from uvsweep.model import LockState
from uvsweep.probe import for_platform
from uvsweep.probe.darwin import DarwinBackend, Libproc
from uvsweep.probe.linux import LinuxBackend
from uvsweep.probe.windows import FILE_ATTRIBUTE_REPARSE_POINT, WindowsBackend
from uvsweep.processes import ProcessTable

NAME_A = "uv-00000000000000aa.lock"
NAME_B = "uv-00000000000000bb.lock"


@pytest.fixture(autouse=True)
def _psutil_as_on_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    if sys.platform.startswith("linux"):
        procs = [FakeProcess(pid, name="uv.exe", username="HOST\\me") for pid in (99, 4141, 4242)]
        monkeypatch.setitem(sys.modules, "psutil", FakePsutil("win32", procs))


def windows(fs: WindowsModel) -> WindowsBackend:
    return WindowsBackend(files=fs, processes=ProcessTable(platform="win32"),  # type: ignore[arg-type]
                          lstat=fs.lstat, listdir=fs.listdir)  # fmt: skip


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


def test_darwin_backend_matches_open_files_by_inode(lockdir: Path, hold: type[Holder]) -> None:
    for name in (NAME_A, NAME_B, "uv-00000000000000cc.lock"):
        (lockdir / name).touch()
    held = hold(lockdir / NAME_B)
    with (
        child_with_file(lockdir / "uv-00000000000000cc.lock") as opener,
        open(lockdir / NAME_A, "rb"),
    ):  # only we have A open: that does not count
        libproc = Libproc(LibprocModel([held.pid, opener.pid], refused=[999999]).library())
        result = DarwinBackend(open_files=libproc.open_files).probe([str(lockdir)])
    states = {item.name: item for item in result.files}
    assert {name: item.state for name, item in states.items()} == {
        NAME_A: LockState.ORPHANED,
        NAME_B: LockState.HELD,
        "uv-00000000000000cc.lock": LockState.OPEN,
    }
    assert [h.pid for h in states["uv-00000000000000cc.lock"].openers] == [opener.pid]
    assert states[NAME_B].holders[0].pid is None  # macOS cannot say who: unknown, never none
    assert result.hidden_processes == 1
    assert any("unknown" in note for note in result.notes)


def test_libproc_reports_kernel_paths_and_unlinked_inodes(lockdir: Path) -> None:
    """The model answers as macOS does: /private paths, and an unlinked file keeps its inode."""
    path = lockdir / NAME_A
    path.touch()
    st = path.stat()
    with child_with_file(path) as opener:
        path.unlink()
        files = dict(Libproc(LibprocModel([opener.pid]).library()).open_files())[opener.pid]
    assert files is not None
    found = [(dev, ino, p) for dev, ino, p in files if ino == st.st_ino]
    assert found == [(st.st_dev & 0xFFFFFFFF, st.st_ino, "/private" + os.path.realpath(path))]


def test_the_chooser_picks_a_backend_per_os() -> None:
    assert isinstance(for_platform("linux"), LinuxBackend)
    assert isinstance(for_platform("darwin"), DarwinBackend)  # psutil's fallback here
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


def test_libproc_refusals_are_hidden_and_the_gone_are_nobody(lockdir: Path) -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (lockdir / NAME_A).touch()
    with child_with_file(lockdir / NAME_A) as opener:
        listed = dict(
            Libproc(LibprocModel([opener.pid, gone.pid], refused=[999999]).library()).open_files()
        )
    assert listed[999999] is None  # EPERM: another user's process
    assert listed[gone.pid] == []  # ESRCH: exited meanwhile
    assert listed[opener.pid]
