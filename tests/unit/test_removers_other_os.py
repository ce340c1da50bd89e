"""The Windows and macOS removal primitives, on Linux with their OS calls injected.

Windows: a model of the Windows file calls that is strict where Windows is (tests/windows_model.py:
share modes, byte-range locks per handle, delete-pending files refusing opens, renames and POSIX
deletes by handle). macOS: real files and real
flock, with psutil's open-file list injected.
"""

from __future__ import annotations

import ctypes
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import darwin_model
from tests.conftest import Holder, child_with_file
from tests.darwin_model import LibprocModel
from tests.helpers import A, B
from tests.psutil_double import FakeProcess, FakePsutil
from tests.windows_model import ME, WindowsModel
from uvsweep.model import LockState
from uvsweep.probe.darwin import (
    Libproc,
    ProcFdInfo,
    VinfoStat,
    VnodeFdInfoWithPath,
    VnodeInfo,
    psutil_open_files,
)
from uvsweep.probe.windows import FILE_ATTRIBUTE_REPARSE_POINT
from uvsweep.processes import ProcessTable
from uvsweep.remove import Policy, for_platform
from uvsweep.remove.darwin import DarwinRemover
from uvsweep.remove.posix import LinuxRemover
from uvsweep.remove.windows import WindowsRemover

C = "uv-00000000000000cc.lock"


#: the processes the Windows tests name, as psutil shows them on Windows
WINDOWS_PIDS = (1, 99, 777, 888, 4141, 4242)


@pytest.fixture(autouse=True)
def _psutil_as_on_each_os(monkeypatch: pytest.MonkeyPatch) -> None:
    """Off their own OS, the removers see psutil as it is on theirs (the macOS tests install
    their own, over their real children)."""
    if sys.platform.startswith("linux"):
        procs = [FakeProcess(pid, name="uv.exe", username="HOST\\me") for pid in WINDOWS_PIDS]
        monkeypatch.setitem(sys.modules, "psutil", FakePsutil("win32", procs))


def windows_remover(fs: WindowsModel, admin: bool = False) -> WindowsRemover:
    return WindowsRemover(
        files=fs, processes=ProcessTable(platform="win32"), lstat=fs.lstat,  # type: ignore[arg-type]
        listdir=fs.listdir, clock=lambda: 1000.0, is_admin=lambda: admin,
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

    def uv_comes_for_a() -> None:  # B's second lstat (`changed`): A is done with by now
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

    def uv_opens() -> None:  # the `changed` lstat, right before the rename
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


def test_windows_handoff_waits_through_one_ctrl_c_and_gives_up_on_the_second() -> None:
    """Windows cannot pass a lock to another process (a lock dies with the process that took
    it), so `clean` itself waits for the old file's user: the first Ctrl-C only says how to
    give up, the second gives up, loudly."""
    fs = WindowsModel()
    fs.add(A)
    late: dict[str, int] = {}
    said: list[str] = []

    def uv_opens() -> None:  # the `changed` lstat, right before the rename
        late["handle"] = fs.uv_open(A, pid=777)  # ... and keeps the old file for ever

    fs.hooks["lstat " + fs.path(A)] = lambda: fs.hooks.__setitem__("lstat " + fs.path(A), uv_opens)
    remover = windows_remover(fs)
    remover.progress = said.append
    polls = 0

    def pids(_number: int) -> None:
        nonlocal polls
        polls += 1
        if polls in (4, 7):
            remover.interrupts.append(2)  # Ctrl-C, as deferred_interrupts records it
        fs.hooks["pids"] = pids

    fs.hooks["pids"] = pids
    with pytest.raises(KeyboardInterrupt):  # acted on once the batch let go of its locks
        remover.remove([fs.DIR], Policy())
    assert 7 <= polls <= 8, polls  # it went on after the first Ctrl-C, stopped at the second
    assert any("Ctrl-C twice gives up" in line for line in said), said
    assert any("gave up the handoff on request" in line for line in said), said
    assert [h.pid for h in fs.handles.values()] == [777]  # ours are closed, uv's stays
    assert list(fs.names) == [fs.path(A)]  # the new file stays at the name, unlocked


def test_windows_handoff_is_not_given_up_by_a_quitting_tray() -> None:
    """A tray that quits asks every removal to stop, through more than one path: on Windows
    that must not give a handoff up (only Ctrl-C twice does); the wait ends when the old
    file's user is done."""
    fs = WindowsModel()
    fs.add(A)
    late: dict[str, int] = {}
    said: list[str] = []

    def uv_opens() -> None:
        late["handle"] = fs.uv_open(A, pid=777)

    fs.hooks["lstat " + fs.path(A)] = lambda: fs.hooks.__setitem__("lstat " + fs.path(A), uv_opens)
    remover = windows_remover(fs)
    remover.progress = said.append
    polls = 0

    def pids(_number: int) -> None:
        nonlocal polls
        polls += 1
        if polls == 3:
            remover.stop_requests += [1, 2]  # the tray's request_stop, twice
        if polls == 8:
            fs.close_handle(late["handle"])  # uv is done with the old file
        fs.hooks["pids"] = pids

    fs.hooks["pids"] = pids
    result = remover.remove([fs.DIR], Policy())
    assert polls >= 8 and not any("gave up" in line for line in said), said
    assert result.handoffs == 1 and "released on request" not in result.skipped[0].reason


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


# ---- macOS: real files, flock and processes; libproc and psutil as macOS answers them ---------

LATE_OPENER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)  # uv's open, before the unlink
print("opened", flush=True)
fcntl.flock(fd, fcntl.LOCK_EX)  # blocks on our lock until it is handed over
# uv holds the old file's lock now: whoever opens the name must find it locked
probe = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.flock(probe, fcntl.LOCK_EX | fcntl.LOCK_NB)
    print("name free: two uv could both hold a lock", flush=True)
except BlockingIOError:
    print("name locked", flush=True)
sys.stdin.readline()  # uv works until told to finish
"""


def darwin_remover(pids: list[int], **seams: Any) -> DarwinRemover:
    """The macOS remover over libproc and psutil as macOS answers them, for these processes."""
    # (the autouse fixture put psutil in sys.modules through monkeypatch: it restores the real one)
    sys.modules["psutil"] = darwin_model.psutil_double(pids, refused=[999999])
    libproc = Libproc(LibprocModel(pids, refused=[999999]).library())
    return DarwinRemover(open_files=libproc.open_files, processes=ProcessTable(platform="darwin"),
                         **seams)  # fmt: skip


def test_darwin_remover_sees_openers_whatever_the_kernel_calls_the_path(
    lockdir: Path, hold: type[Holder]
) -> None:
    """Finding 3: psutil and libproc report /private/var/... where $TMPDIR says /var/...: a
    match by path saw nobody and removed a file uv had open."""
    for name in (A, B, C):
        (lockdir / name).touch()
    held = hold(lockdir / B)
    with child_with_file(lockdir / C) as opener:
        remover = darwin_remover([held.pid, opener.pid])
        result = remover.remove([str(lockdir)], Policy())
        states = {Path(s.path).name: (s.state, s.reason) for s in result.skipped}
        assert result.removed == [str(lockdir / A)]
        assert states[B][0] is LockState.HELD
        assert "uvsweep itself" not in states[B][1], "another process holds it, not we"
        assert states[C][0] is LockState.OPEN and f"pid {opener.pid}" in states[C][1]
        assert result.hidden_processes == 1
        assert (lockdir / B).exists() and (lockdir / C).exists()


def test_darwin_handoff_sees_a_user_of_the_unlinked_inode(lockdir: Path) -> None:
    """Finding 3: psutil drops an unlinked file from open_files, so the handoff never fired."""
    path = lockdir / A
    path.touch()
    old_ino = path.stat().st_ino
    late: list[subprocess.Popen[str]] = []

    class Remover(DarwinRemover):
        def unlink(self, target: Any) -> None:
            # uv opens the file after our check, right before the unlink
            argv = [sys.executable, "-c", LATE_OPENER, str(path)]
            pipe = subprocess.PIPE
            child = subprocess.Popen(argv, stdin=pipe, stdout=pipe, text=True)
            late.append(child)
            assert child.stdout is not None and child.stdout.readline().strip() == "opened"
            self.open_files = Libproc(LibprocModel([child.pid]).library()).open_files
            super().unlink(target)

        def old_in_use(self, dev: int, ino: int, path: str) -> bool:
            used = super().old_in_use(dev, ino, path)
            child = late[0]
            handed_over = os.path.exists(path) and os.stat(path).st_ino != old_ino
            if used and handed_over and child.stdin is not None and not child.stdin.closed:
                assert child.stdout is not None
                said.append(child.stdout.readline().strip())  # once it has the old lock
                child.stdin.close()  # uv finishes and exits
                child.wait()
            return used

    said: list[str] = []
    try:
        result = Remover(open_files=Libproc(LibprocModel([]).library()).open_files).remove(
            [str(lockdir)], Policy()
        )
    finally:
        for child in late:
            child.kill()
            child.wait()
            for stream in (child.stdin, child.stdout):
                if stream is not None:
                    stream.close()
    assert said == ["name locked"]
    assert result.removed == [] and result.handoffs == 1
    assert "handed over" in result.skipped[0].reason
    assert path.exists() and path.stat().st_ino != old_ino
    assert stat.S_IMODE(path.stat().st_mode) == 0o666


def test_darwin_libproc_structs_are_laid_out_as_xnu_does() -> None:
    """bsd/sys/proc_info.h: a wrong offset here would read another field as the inode."""
    assert ctypes.sizeof(ProcFdInfo) == 8
    assert ctypes.sizeof(VnodeFdInfoWithPath) == 1200  # PROC_PIDFDVNODEPATHINFO_SIZE
    stat_at = VnodeFdInfoWithPath.vip_vi.offset + VnodeInfo.vi_stat.offset
    assert stat_at == 24
    assert stat_at + VinfoStat.vst_dev.offset == 24
    assert stat_at + VinfoStat.vst_ino.offset == 32
    assert ctypes.sizeof(VinfoStat) == 136 and ctypes.sizeof(VnodeInfo) == 152
    assert VnodeFdInfoWithPath.vip_path.offset == 176


def test_bsd_fallback_matches_psutil_paths_by_inode(
    lockdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without libproc, psutil's kernel paths are re-stat'ed: openers are seen by inode."""
    (lockdir / A).touch()
    (lockdir / B).touch()
    with child_with_file(lockdir / B) as opener:
        monkeypatch.setitem(
            sys.modules, "psutil", darwin_model.psutil_double([opener.pid], [999999])
        )
        remover = DarwinRemover(open_files=lambda: psutil_open_files(stat=darwin_model.view_stat))
        result = remover.remove([str(lockdir)], Policy())
        assert result.removed == [str(lockdir / A)]
        assert [(Path(s.path).name, s.state) for s in result.skipped] == [(B, LockState.OPEN)]
        assert result.hidden_processes == 1


def test_the_chooser_picks_a_remover_per_os() -> None:
    assert isinstance(for_platform("linux"), LinuxRemover)
    assert isinstance(for_platform("darwin", open_files=list), DarwinRemover)
    assert isinstance(for_platform("freebsd14", open_files=list), DarwinRemover)
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


@pytest.mark.windows
@pytest.mark.skipif(os.name != "nt", reason="runs on Windows only")
def test_windows_real_rename_frees_the_name_at_once(tmp_path: Path) -> None:  # pragma: no cover
    from uvsweep.remove.windows import Kernel32Remove

    (tmp_path / A).touch()
    files = Kernel32Remove()
    handle = files.open_for_delete(str(tmp_path / A))
    try:
        assert files.owner(handle)[1], "the owner check must see our own file as ours"
        assert files.lock_exclusive(handle)
        files.rename(handle, A + ".x.uvsweep-removed")
        files.set_delete(handle)
        with open(tmp_path / A, "a+b"):  # uv's open of the name: a new file, not access denied
            pass
        assert os.getpid() in files.pids_using(handle)
    finally:
        files.unlock(handle)
        files.close(handle)
    assert sorted(p.name for p in tmp_path.iterdir()) == [A]


@pytest.mark.macos
@pytest.mark.skipif(sys.platform != "darwin", reason="runs on macOS only")
def test_macos_real_remove(lockdir: Path, hold: type[Holder]) -> None:  # pragma: no cover
    (lockdir / A).touch()
    (lockdir / B).touch()
    (lockdir / C).touch()
    hold(lockdir / B)
    with child_with_file(lockdir / C):
        result = DarwinRemover().remove([str(lockdir)], Policy())
    assert result.removed == [str(lockdir / A)]
    assert (lockdir / B).exists() and (lockdir / C).exists()


@pytest.mark.macos
@pytest.mark.skipif(sys.platform != "darwin", reason="runs on macOS only")
def test_macos_libproc_sees_an_unlinked_file(lockdir: Path) -> None:  # pragma: no cover
    path = lockdir / A
    path.touch()
    st = path.stat()
    with child_with_file(path) as child:
        path.unlink()
        files = dict(Libproc().open_files([child.pid]))[child.pid]
    assert files is not None
    assert any(ino == st.st_ino and dev == st.st_dev & 0xFFFFFFFF for dev, ino, _p in files)
