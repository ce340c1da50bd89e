"""Tests that kill mutants a real bug could hide behind (tests/MUTATION.md).

Each test names the mutation it was shown to fail under (applied by hand and by
`tests/mutation/named.py`). Real files, real flock, real processes of another user.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import select
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import procs
from tests.conftest import APP_DIR, Holder, flock_held, need, other_user_python
from tests.helpers import A, eventually, wait_keepers_gone
from tests.redteam.support import no_lease_before_the_unlink
from uvsweep.model import LockState
from uvsweep.probe.linux import LockEntry, LockTable
from uvsweep.probe.posix import Syscalls
from uvsweep.remove import Policy
from uvsweep.remove.handoff import FOREIGN_PATIENCE, NEW, Handoff, Keeper
from uvsweep.remove.posix import LinuxRemover

pytestmark = [
    pytest.mark.linux,
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc"),
]

C = "uv-00000000000000cc.lock"


class _WaiterHasItOpen(Syscalls):
    """The real calls, except that the kernel refuses every lease: the waiter a fake lock table
    shows would have the file open (so the lock table is read, before the unlink too)."""

    def alone(self, fd: int, keep: bool = False) -> bool | None:
        return False


class _NoLeases(Syscalls):
    """The real calls on a file system without leases: the kernel cannot say whether anybody
    else has a file open, so the lock table is read for it, before the unlink and after."""

    def alone(self, fd: int, keep: bool = False) -> bool | None:
        return None


def _readline(child: subprocess.Popen[str], timeout: float = 30.0) -> str:
    """The child's next stdout line; fails (instead of hanging) when none comes in time."""
    assert child.stdout is not None
    ready, _, _ = select.select([child.stdout], [], [], timeout)
    assert ready, f"pid {child.pid} said nothing for {timeout:.0f}s"
    return child.stdout.readline().strip()


def _stop(*children: subprocess.Popen[str] | None) -> None:
    for child in children:
        if child is None:
            continue
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
        if child.stdout is None or not child.stdout.closed:  # not stopped already
            child.communicate()


def _waiting_on(ino: int) -> bool:
    return any(
        " -> " in line and line.split()[-3].endswith(f":{ino}")
        for line in Path("/proc/locks").read_text().splitlines()
    )


#: root's uv-like process: open, wait in flock, say so once it holds, hold until told.
_ROOT_WAITER = (
    "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR);"
    " print('opened', os.fstat(fd).st_ino, flush=True); fcntl.flock(fd, fcntl.LOCK_EX);"
    " print('locked', flush=True); sys.stdin.readline()"
)

#: `nobody`'s cleaner: stops just before its unlink until told to go on.
_NOBODY_CLEANER = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, {app!r})
    from uvsweep.remove import Policy
    from uvsweep.remove.posix import LinuxRemover

    class PausedAtUnlink(LinuxRemover):
        def unlink(self, target):
            import fcntl  # (no lease kept before the unlink: as where none can be taken)
            if target in self._leased:
                self._leased.discard(target)
                fcntl.fcntl(target.handle, fcntl.F_SETLEASE, fcntl.F_UNLCK)
            print("unlinking", flush=True)
            sys.stdin.readline()
            super().unlink(target)

    result = PausedAtUnlink(handoff_wait=120.0).remove([{directory!r}], Policy())
    print(json.dumps({{
        "removed": result.removed, "handoffs": result.handoffs, "keepers": result.keepers,
        "skipped": [(s.state.value, s.reason) for s in result.skipped],
        "hidden": result.hidden_processes,
    }}), flush=True)
    """
)


@pytest.fixture
def nobody() -> tuple[int, int, str]:
    found = other_user_python()
    need(found is not None, "root and the user nobody (setpriv, util-linux) to run as another user")
    assert found is not None
    return found


@pytest.fixture
def sticky_dir(shared_tmp: Path) -> Iterator[Path]:
    """A dir anybody may create files in, as /tmp (the cleaner runs as `nobody`)."""
    shared_tmp.chmod(0o1777)
    yield shared_tmp
    shared_tmp.chmod(0o755)


def test_a_root_waiter_only_the_lock_table_shows_gets_a_handoff(
    sticky_dir: Path, nobody: tuple[int, int, str]
) -> None:
    """Kills `old_in_use` ignoring the lock table (`if mine or unsure: return True` gone).

    `nobody` cleans its own file; in its unlink window a root process opens it and waits in
    flock. `nobody` cannot see root's fds, so only /proc/locks shows that process: the handoff's
    first round must see it there, take a new file at the name, and only then let it have the
    old inode. Ignoring the table, the old lock is dropped as unused and the name is left free
    while root is about to lock the unlinked inode.

    (What happens after that first round is not asserted: a waiter just woken by our unlock is
    in neither table until it runs again; see tests/MUTATION.md, "A finding".)
    """
    uid, gid, python = nobody
    path = sticky_dir / A
    path.touch()
    os.chown(path, uid, gid)
    path.chmod(0o666)
    old_ino = path.stat().st_ino
    cleaner = subprocess.Popen(
        ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", python, "-c",
         _NOBODY_CLEANER.format(app=APP_DIR, directory=str(sticky_dir))],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    waiter: subprocess.Popen[str] | None = None
    try:
        assert cleaner.stdin is not None
        assert _readline(cleaner) == "unlinking"
        waiter = subprocess.Popen(
            [sys.executable, "-c", _ROOT_WAITER, str(path)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        assert waiter.stdin is not None
        assert _readline(waiter) == f"opened {old_ino}"
        deadline = time.monotonic() + 20
        while not _waiting_on(old_ino) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _waiting_on(old_ino), "root's process never showed up waiting in /proc/locks"
        cleaner.stdin.write("\n")
        cleaner.stdin.flush()
        assert _readline(waiter) == "locked"  # root now holds the old, unlinked inode
        assert path.exists(), "the name came back free while root holds the old inode"
        assert path.stat().st_ino != old_ino, "no new generation at the name"
        waiter.stdin.write("\n")  # root is done with the old file and exits (its parent,
        waiter.stdin.flush()  # as uv's would, reaps it: a zombie is a process to follow)...
        waiter.wait(30)
        report = json.loads(_readline(cleaner))  # ...so the handoff ends and the cleaner returns
    finally:
        _stop(cleaner, waiter)
    assert report["hidden"] >= 1, "nobody saw root's fds: the lock table was not the only witness"
    assert report["removed"] == [] and report["handoffs"] == 1 and report["keepers"] == []
    assert [state for state, _reason in report["skipped"]] == ["held"]
    assert path.exists() and not flock_held(path)


# ---- lock lines whose device cannot be learned ------------------------------------------------


def _fake_proc(tmp_path: Path) -> Path:
    """A /proc whose processes are the real ones and whose `locks` the test writes."""
    fake = tmp_path / "proc"
    fake.mkdir()
    for entry in os.listdir("/proc"):
        if entry.isdigit() or entry == "self":
            (fake / entry).symlink_to(f"/proc/{entry}")
    (fake / "locks").write_text("")
    return fake


class _UnlearnableDevice(LinuxRemover):
    """/proc/locks as on a file system that prints another device than `st_dev`, read while our
    own lock line is not there to learn that device from: once we hold the file, a waiter's line
    appears with our inode number and that other device."""

    def __init__(self, fake: Path, line: str, **seams: object) -> None:
        super().__init__(proc=str(fake), **seams)  # type: ignore[arg-type]
        self.fake = fake
        self.line = line
        self.holding = False

    def _read_table(self, holding=()):  # type: ignore[no-untyped-def]
        (self.fake / "locks").write_text(self._own_lines() + self.line if self.holding else "")
        return super()._read_table(holding)

    def _own_lines(self) -> str:
        """Our own lock, printed on two devices, neither `st_dev` (so it shows, as the table
        must, yet teaches no single device: the entry's device stays unsure)."""
        device, ino = self.line.split()[-3].rsplit(":", 1)
        major, minor = (int(part, 16) for part in device.split(":"))
        return "".join(
            f"{n}: FLOCK  ADVISORY  WRITE {self.own_pid} {major + extra:02x}:{minor:02x}:{ino}"
            " 0 EOF\n"
            for n, extra in ((8, 0), (9, 1))
        )

    def acquire(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        target = super().acquire(*args, **kwargs)
        self.holding = target is not None
        return target

    def locked_one(self, fd: int, st: os.stat_result) -> None:
        """Nothing learned from our fd's `fdinfo` either (a kernel that does not show it)."""


def _other_device_line(path: Path, waiting: bool = True) -> str:
    st = os.stat(path)
    device = f"{os.major(st.st_dev) + 1:02x}:{os.minor(st.st_dev):02x}"
    arrow = "-> " if waiting else ""
    pid = 2 if os.getpid() == 1 else 1  # another process (the suite may be pid 1)
    return f"7: {arrow}FLOCK  ADVISORY  WRITE {pid} {device}:{st.st_ino} 0 EOF\n"


def test_a_waiter_on_a_device_that_cannot_be_told_apart_keeps_the_file(
    lockdir: Path, tmp_path: Path
) -> None:
    """Kills `lock_users` dropping the unsure entries (`_use_of(mine + unsure)` -> `mine`), and
    `LockTable.entries` returning no unsure entries: where the device cannot be matched, an
    entry on our inode number counts while we hold the file (the safe side)."""
    path = lockdir / A
    path.touch()
    fake = _fake_proc(tmp_path)
    remover = _UnlearnableDevice(fake, _other_device_line(path), calls=_WaiterHasItOpen())
    result = remover.remove([str(lockdir)], Policy())
    assert remover.holding, "the file was never locked: the unsure entry decided too early"
    assert result.removed == [] and path.exists()
    assert [(s.state, s.reason.split(":")[0]) for s in result.skipped] == [
        (LockState.WAITING, "a process began waiting for it during removal")
    ]
    # the waiter is named: its own entry decided (run 4: a read that misses our own record
    # counts the file as in use too, but without a name, so the reason tells them apart)
    waiter = int(_other_device_line(path).split()[-4])
    assert result.skipped[0].reason.split(": ", 1)[1].startswith(f"pid {waiter} ")


def test_after_the_unlink_an_entry_on_an_unsure_device_still_counts(
    lockdir: Path, tmp_path: Path
) -> None:
    """Kills `old_in_use` dropping the unsure entries (`if mine or unsure` -> `if mine`): the
    handoff must not end while an entry that may be on the old inode is in the table."""
    path = lockdir / A
    path.touch()
    st = os.stat(path)
    fake = _fake_proc(tmp_path)
    (fake / "locks").write_text(_other_device_line(path, waiting=False))
    other = (os.major(st.st_dev) + 1, os.minor(st.st_dev))
    third = (os.major(st.st_dev) + 2, os.minor(st.st_dev))
    # the device unknown: the entry may be on our inode
    assert LinuxRemover(proc=str(fake)).old_in_use(st.st_dev, st.st_ino, str(path))
    # learned (as a cleaner passes it to its keeper): the entry is ours...
    learned = LinuxRemover(proc=str(fake), known_devices={st.st_dev: other})
    assert learned.old_in_use(st.st_dev, st.st_ino, str(path))
    # ...or certainly another file system's, with nobody having our file open
    elsewhere = LinuxRemover(proc=str(fake), known_devices={str(st.st_dev): list(third)})
    assert not elsewhere.old_in_use(st.st_dev, st.st_ino, str(path))


def _own_lines(*devices: tuple[int, int], ino: int = 5, pid: int = 4242) -> list[str]:
    """Our own exclusive lock lines on `ino`, one per device, as /proc/locks prints them."""
    return [f"1: FLOCK  ADVISORY  WRITE {pid} {a:02x}:{b:02x}:{ino} 0 EOF" for a, b in devices]


def test_our_own_lock_teaches_the_device_and_a_second_lock_of_ours_does_not_confuse_it() -> None:
    """Kills `device_of` mistakes: our one lock on a file we hold gives its device (for it
    alone: devices are learned for the run from our fd's fdinfo only, red-team F1); a device
    learned so is used; with our locks on two files of one inode number, st_dev decides;
    otherwise st_dev is a guess; a file we do not hold learns nothing from our locks; with every
    entry on st_dev's device, that device is certain."""
    dev = os.makedev(8, 1)
    waiter = {5: [LockEntry("FLOCK", "WRITE", 77, 0, 38, 5, True)]}  # on another device
    known: dict[int, tuple[int, int]] = {}
    learned = LockTable(waiter, _own_lines((0, 38)), 4242)
    assert learned.device_of(dev, 5, known) == ((0, 38), True) and known == {}
    known[dev] = (0, 38)  # as LinuxRemover.locked_one learns it from fdinfo
    assert LockTable(waiter).device_of(dev, 5, known) == ((0, 38), True)  # remembered
    both = LockTable(waiter, _own_lines((8, 1), (0, 38)), 4242)
    assert both.device_of(dev, 5, {}) == ((8, 1), True)
    neither = LockTable(waiter, _own_lines((9, 1), (0, 38)), 4242)
    assert neither.device_of(dev, 5, {}) == ((8, 1), False)
    assert LockTable(waiter).device_of(dev, 5, {}) == ((8, 1), False)
    # the old generation of a handoff: our locks are on the new file, not on this one
    assert learned.device_of(dev, 5, {}, own=False) == ((8, 1), False)
    # every entry on the device st_dev names: that is certain, nothing to learn
    on_st_dev = {5: [LockEntry("FLOCK", "WRITE", 77, 8, 1, 5, True)]}
    assert LockTable(on_st_dev).device_of(dev, 5, {}) == ((8, 1), True)
    assert LockTable({}).device_of(dev, 5, {}) == ((8, 1), True)


# ---- the scanner's reading of lock lines (probe/linux.py) ---------------------------------------


def _scan(proc: Path, directory: Path) -> tuple[list[tuple[str, LockState]], list[str]]:
    from uvsweep.probe.linux import LinuxBackend

    found = LinuxBackend(proc=str(proc)).probe([str(directory)])
    return [(f.name, f.state) for f in found.files], found.notes


def _line(path: Path, major_shift: int, waiting: bool) -> str:
    st = os.stat(path)
    device = f"{os.major(st.st_dev) + major_shift:02x}:{os.minor(st.st_dev):02x}"
    arrow = "-> " if waiting else ""
    pid = 2 if os.getpid() == 1 else 1
    return f"7: {arrow}FLOCK  ADVISORY  WRITE {pid} {device}:{st.st_ino} 0 EOF\n"


def test_scan_a_lock_on_another_device_with_our_inode_number_is_not_ours(
    lockdir: Path, tmp_path: Path
) -> None:
    """Kills `same_dev` matching every *other* device (`==` -> `!=` in `lock_entries`)."""
    path = lockdir / A
    path.touch()
    fake = _fake_proc(tmp_path)
    (fake / "locks").write_text(_line(path, 1, waiting=False) + _line(path, 1, waiting=True))
    assert _scan(fake, lockdir)[0] == [(A, LockState.ORPHANED)]


def test_scan_a_waiter_on_our_device_counts_even_when_the_probe_finds_it_free(
    lockdir: Path, tmp_path: Path
) -> None:
    """Kills `same_dev or ...` -> `same_dev and ...`: an entry on this very file is trusted
    without the try-lock's word (its holder may have let go between the two looks)."""
    path = lockdir / A
    path.touch()
    fake = _fake_proc(tmp_path)
    (fake / "locks").write_text(_line(path, 0, waiting=True))
    assert _scan(fake, lockdir)[0] == [(A, LockState.WAITING)]


def test_scan_with_an_unreadable_lock_table_says_so_and_still_probes(
    lockdir: Path, tmp_path: Path
) -> None:
    """Kills the scanner's `except OSError` around reading /proc/locks narrowed away."""
    from tests.conftest import child_with_file

    path = lockdir / A
    path.touch()
    fake = _fake_proc(tmp_path)
    (fake / "locks").unlink()
    (fake / "locks").mkdir()  # reading it fails with EISDIR
    with child_with_file(path, lock=True):
        files, notes = _scan(fake, lockdir)
    assert files == [(A, LockState.HELD)]
    assert any("locks unreadable" in note for note in notes)


# ---- odd files are probed as the scanner would (remove/posix.py) ---------------------------------


def test_a_held_odd_file_the_lock_table_cannot_show_is_held_not_odd(
    lockdir: Path, tmp_path: Path
) -> None:
    """Kills `_probe_shared`'s same-file check inverted: a non-empty file whose holder only the
    try-lock can see (the lock table unreadable) is `held`, as in `scan` (held wins)."""
    from tests.conftest import child_with_file

    path = lockdir / A
    path.write_text("x")
    fake = _fake_proc(tmp_path)
    (fake / "locks").unlink()
    (fake / "locks").mkdir()
    with child_with_file(path, lock=True):
        result = LinuxRemover(proc=str(fake)).remove([str(lockdir)], Policy())
    assert [(s.state, s.reason) for s in result.skipped] == [
        (LockState.HELD, "locked by a process the OS does not show")
    ]


def test_scan_describes_holders_from_the_proc_it_was_given(lockdir: Path, tmp_path: Path) -> None:
    """Kills `processes or ProcessTable(proc=proc)` -> `and`: the holder is looked up in the
    /proc the backend reads (a parent namespace's, say), not in ours."""
    path = lockdir / A
    path.touch()
    st = os.stat(path)
    fake = _fake_proc(tmp_path)
    pid = 4_000_000  # beyond any pid_max: only the given /proc has it
    (fake / str(pid)).mkdir()
    (fake / str(pid) / "comm").write_text("uv\n")
    (fake / str(pid) / "cmdline").write_bytes(b"uv\0sync\0")
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}"
    (fake / "locks").write_text(f"1: FLOCK  ADVISORY  WRITE {pid} {device}:{st.st_ino} 0 EOF\n")
    from uvsweep.probe.linux import LinuxBackend

    (found,) = LinuxBackend(proc=str(fake)).probe([str(lockdir)]).files
    assert found.state is LockState.HELD
    assert [(h.pid, h.name, h.cmdline) for h in found.holders] == [(pid, "uv", ("uv", "sync"))]


class _NoKeeper:
    """A keeper that cannot be started, neither as a program nor as a copy (no fork either)."""

    def take(self, handoffs: object, view: object) -> int:
        raise OSError("cannot start")

    def fork(self, handoffs: object, view: object) -> int:
        raise OSError("cannot fork")


def test_without_a_keeper_the_cleaner_finishes_the_handoff_and_names_no_keeper(
    lockdir: Path,
) -> None:
    """Kills `keeper_pid is not None and handoff in left` -> `or`: a handoff this run finished
    itself is reported without a keeper (there is none: `pid None`)."""
    path = lockdir / A
    path.touch()
    children: list[subprocess.Popen[str]] = []
    said: list[str] = []

    class OpenedDuringUnlink(LinuxRemover):
        def unlink(self, target):  # type: ignore[no-untyped-def]
            no_lease_before_the_unlink(self, target)
            child = subprocess.Popen(
                [sys.executable, "-c", _ROOT_WAITER, target.path], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, text=True, start_new_session=True,
            )  # fmt: skip
            children.append(child)
            assert _readline(child).startswith("opened")
            super().unlink(target)

    def progress(line: str) -> None:
        said.append(line)
        if "could not start a keeper" in line:  # now the old file's user may be done
            for child in children:
                assert child.stdin is not None
                child.stdin.write("\n")
                child.stdin.flush()

    remover = OpenedDuringUnlink(keeper=_NoKeeper(), handoff_wait=0.0, progress=progress)
    try:
        result = remover.remove([str(lockdir)], Policy())
    finally:
        _stop(*children)
    assert result.keepers == [] and result.handoffs == 1
    assert any("could not start a keeper" in line for line in said)
    ((state, reason),) = [(s.state, s.reason) for s in result.skipped]
    assert state is LockState.HELD and "keeper" not in reason, reason
    assert reason.endswith("the lock was handed over to a new file at the name, which stays")


# ---- a waiter that is not running is in neither table: it is followed by pid --------------------

#: `nobody`'s cleaner: stops before its unlink and again before its handoffs, until told.
_NOBODY_CLEANER_TWO_PAUSES = _NOBODY_CLEANER.replace(
    "\nresult = PausedAtUnlink(",
    """    def undo_all(self, pending, result):
        print("handing over", flush=True)
        sys.stdin.readline()
        return super().undo_all(pending, result)

result = PausedAtUnlink(""",
)
assert "handing over" in _NOBODY_CLEANER_TWO_PAUSES


def _new_generation(path: Path, old_ino: int) -> bool:
    try:
        return path.stat().st_ino != old_ino
    except FileNotFoundError:
        return False


def test_a_stopped_root_waiter_is_not_left_to_lock_the_old_inode_of_a_free_name(
    sticky_dir: Path, nobody: tuple[int, int, str]
) -> None:
    """`nobody` cleans its file; root opens it in the unlink window and waits in flock, then is
    stopped (SIGSTOP ends its flock call, to be restarted on SIGCONT). While it is stopped it is
    in no table `nobody` can read, so a handoff that asks only the tables finds the old inode
    unused, drops its lock and leaves the name free; once root runs again it locks the unlinked
    inode, and a new uv at the name would hold "the" lock at the same time.

    Kills the handoff starting without the pids seen after the unlink (`followed` seeded empty
    in `undo_all`) and `followed` being forgotten (`followed &= hidden` with a visible set): the
    pid seen waiting, whose fds `nobody` cannot read, is followed until it exits. (Found while
    writing the mutation tests, as a strict xfail; fixed since by following such pids.)
    """
    uid, gid, python = nobody
    path = sticky_dir / A
    path.touch()
    os.chown(path, uid, gid)
    path.chmod(0o666)
    old_ino = path.stat().st_ino
    code = _NOBODY_CLEANER_TWO_PAUSES.format(app=APP_DIR, directory=str(sticky_dir))
    cleaner = subprocess.Popen(
        ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", python, "-c", code],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    waiter: subprocess.Popen[str] | None = None
    try:
        assert cleaner.stdin is not None
        assert _readline(cleaner) == "unlinking"
        waiter = subprocess.Popen(
            [sys.executable, "-c", _ROOT_WAITER, str(path)], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, start_new_session=True,
        )  # fmt: skip
        assert waiter.stdin is not None
        assert _readline(waiter) == f"opened {old_ino}"
        deadline = time.monotonic() + 20
        while not _waiting_on(old_ino) and time.monotonic() < deadline:
            time.sleep(0.01)
        cleaner.stdin.write("\n")
        cleaner.stdin.flush()
        assert _readline(cleaner) == "handing over"  # it saw root waiting after the unlink
        os.kill(waiter.pid, signal.SIGSTOP)
        deadline = time.monotonic() + 20
        while _waiting_on(old_ino) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not _waiting_on(old_ino), "a stopped waiter stays in /proc/locks after all"
        cleaner.stdin.write("\n")
        cleaner.stdin.flush()
        # root stays stopped until the handoff has decided: a new generation at the name, or
        # the cleaner's report (the old lock dropped as unused)
        deadline = time.monotonic() + 30
        while not _new_generation(path, old_ino) and time.monotonic() < deadline:
            if select.select([cleaner.stdout], [], [], 0.01)[0]:
                break
        os.kill(waiter.pid, signal.SIGCONT)
        assert _readline(waiter) == "locked"  # root holds the old, unlinked inode
        assert path.exists() and path.stat().st_ino != old_ino and flock_held(path), (
            "the name is free while root holds its old inode"
        )
        waiter.stdin.write("\n")  # root is done with the old file and exits (reaped)...
        waiter.stdin.flush()
        waiter.wait(30)
        report = json.loads(_readline(cleaner))  # ...so the handoff ends and the cleaner returns
    finally:
        if waiter is not None and waiter.poll() is None:
            os.kill(waiter.pid, signal.SIGCONT)
        _stop(cleaner, waiter)
    assert report["removed"] == [] and report["handoffs"] == 1 and report["keepers"] == []
    assert path.exists() and not flock_held(path)


def _unopenable(*names: str) -> Syscalls:
    """Calls whose open of `names` fails as on another user's private file (EACCES)."""

    class Unopenable(Syscalls):
        def open(self, name, flags, mode=0o777, dir_fd=None):  # type: ignore[no-untyped-def]
            if name in names and dir_fd is not None:
                raise PermissionError(13, "Permission denied")
            return super().open(name, flags, mode, dir_fd=dir_fd)

    return Unopenable()


def test_an_lstat_error_is_reported_with_the_os_message_alone(lockdir: Path) -> None:
    """Kills `_error`'s `if what` inverted: the message is the OS's, with no stray prefix (a
    file we could not open, whose lstat fails too)."""
    (lockdir / A).touch()

    def refusing(name: str, dir_fd: int) -> os.stat_result:
        raise PermissionError(13, "Permission denied")

    result = LinuxRemover(calls=_unopenable(A), lstat=refusing).remove([str(lockdir)], Policy())
    assert [(e.path, e.message) for e in result.errors] == [(str(lockdir / A), "Permission denied")]


def _links_refused() -> set[int]:
    """The processes whose fd links this process may list but not read (as the test sees it:
    for root, those a security module or a missing CAP_SYS_PTRACE keeps from it)."""
    refused = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            fds = os.listdir(f"/proc/{entry}/fd")
            if fds:
                os.readlink(f"/proc/{entry}/fd/{fds[0]}")
        except PermissionError:
            refused.add(int(entry))
        except OSError:
            pass
    return refused


def test_root_sees_every_process(lockdir: Path) -> None:
    """Kills `hidden = 0` -> `1` in `walk_fds`: nothing is hidden from root but the processes
    whose links it is refused (on the machine uvsweep is built on, its pid 1; none in a PID
    namespace of the suite's own), so no note says otherwise."""
    need(os.geteuid() == 0, "root, to see every process's fds")
    (lockdir / A).touch()
    refused = _links_refused()
    result = LinuxRemover().remove([str(lockdir)], Policy())
    assert result.removed == [str(lockdir / A)]
    assert result.hidden_processes == len(refused | _links_refused())


def test_a_use_gone_by_the_handoff_leaves_the_file_removed(lockdir: Path) -> None:
    """Kills `released_unused = True` -> `False`, and `continue` -> `break` after such a file in
    `Remover._batch`: when the process seen after the unlink is already done with the old file
    at the handoff's first round, nothing is handed over and the file counts as removed (every
    such file of the batch)."""
    from uvsweep.remove import Use

    path = lockdir / A
    path.touch()
    other = lockdir / "uv-00000000000000bb.lock"
    other.touch()

    class SeenOnceAfterTheUnlink(LinuxRemover):
        rounds = 0

        def users(self, targets, result):  # type: ignore[no-untyped-def]
            self.rounds += 1
            found = super().users(targets, result)
            if self.rounds == 2:  # after the unlink: a process that has let go again since
                found = {t: Use(LockState.OPEN, []) for t in targets}
            return found

    result = SeenOnceAfterTheUnlink().remove([str(lockdir)], Policy())
    assert result.removed == [str(path), str(other)] and result.handoffs == 0
    assert result.skipped == [] and not path.exists() and not other.exists()


_OPENER = (
    "import os, sys, time; fd = os.open(sys.argv[1], os.O_RDONLY);"
    " print('opened', flush=True); time.sleep(120)"
)


def _latecomer_at_unlink(children: list[subprocess.Popen[str]]) -> type[LinuxRemover]:
    """A remover under which a process opens each file between the checks and the unlink and
    stops before its flock (a latecomer: `_OPENER`), kept in `children` to be stopped."""

    class OpenedDuringUnlink(LinuxRemover):
        def unlink(self, target):  # type: ignore[no-untyped-def]
            no_lease_before_the_unlink(self, target)
            child = subprocess.Popen(
                [sys.executable, "-c", _OPENER, target.path], stdout=subprocess.PIPE, text=True,
                start_new_session=True,
            )  # fmt: skip
            children.append(child)
            assert _readline(child) == "opened"
            super().unlink(target)

    return OpenedDuringUnlink


def _fd_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def test_a_keeper_holds_the_new_file_until_the_old_files_user_is_gone(
    lockdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills the keeper's loop ending after one round (`run`'s `stop` default `lambda: True`, a
    negative poll interval), the new file's mode other than 0666, and `Keeper.take` closing an
    fd that is not its own (`ready_w = -1` -> `0`), and its log rotated at every line or never
    written: the keeper goes on holding the name's new file for as long as the old file is open,
    and says so in its log."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # the keeper's log goes there

    path = lockdir / A
    path.touch()
    children: list[subprocess.Popen[str]] = []

    latecomer_at_unlink = _latecomer_at_unlink(children)

    keepers: list[int] = []
    stdin_open = _fd_open(0)
    try:
        # the keeper inherits SIGHUP's disposition: the default one, whatever ran this test
        # (`nohup`), so that only the keeper's own ignoring keeps it alive below
        hangup = signal.signal(signal.SIGHUP, signal.SIG_DFL)
        try:
            result = latecomer_at_unlink(handoff_wait=0.0).remove([str(lockdir)], Policy())
        finally:
            signal.signal(signal.SIGHUP, hangup)
        keepers = result.keepers
        assert len(keepers) == 1 and result.handoffs == 1
        assert _fd_open(0) == stdin_open, "starting the keeper closed our fd 0"
        assert (path.stat().st_mode & 0o7777) == 0o666, "the new file is not uv's 0666"
        deadline = time.monotonic() + 3  # many of its rounds (one each 0.1 s)
        while procs.alive(keepers[0]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert procs.alive(keepers[0]), "the keeper left while the old file is still open"
        for signum in (signal.SIGINT, signal.SIGHUP):  # `kill -INT`, a closed session: ignored
            os.kill(keepers[0], signum)
        time.sleep(0.5)
        assert procs.alive(keepers[0]), "a SIGINT or SIGHUP ended the keeper, and its locks"
        # in a session of its own: a terminal's Ctrl-C, Ctrl-\\ or Ctrl-Z never reach it
        assert os.getsid(keepers[0]) != os.getsid(0)
        assert os.getpgid(keepers[0]) != os.getpgid(0)
        assert flock_held(path), "the name's new file is not locked while the old one is open"
        _stop(*children)  # the old file's last user goes...
        wait_keepers_gone(keepers)  # ...and so does the keeper
        assert not flock_held(path)
        (log,) = (tmp_path / "state").rglob("keeper.log")
        lines = log.read_text().splitlines()
        assert [line.split(": ", 1)[1].split(" ")[0] for line in lines] == ["keeping", "done"]
    finally:
        _stop(*children)
        for pid in keepers:
            if procs.alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_file_the_os_refuses_to_remove_does_not_stop_the_batch(lockdir: Path) -> None:
    """Kills `continue` -> `break` after a refused unlink in `Remover._batch`: the files after it
    in the batch are still removed."""
    refused = lockdir / A
    refused.touch()
    later = lockdir / "uv-00000000000000bb.lock"
    later.touch()

    class RefusingOne(LinuxRemover):
        def unlink(self, target):  # type: ignore[no-untyped-def]
            no_lease_before_the_unlink(self, target)
            if target.name == A:
                raise PermissionError(1, "Operation not permitted")
            super().unlink(target)

    result = RefusingOne().remove([str(lockdir)], Policy())
    assert result.removed == [str(later)] and refused.exists() and not later.exists()
    assert [(s.path, s.state) for s in result.skipped] == [(str(refused), LockState.ORPHANED)]


def test_a_name_removed_while_held_is_kept_as_replaced_not_a_crash(lockdir: Path) -> None:
    """Kills `still_named` letting the lstat error through (`except OSError` narrowed): the name
    gone between our lock and our re-check (another cleaner) is a skip, never a traceback."""
    path = lockdir / A
    path.touch()

    class RemovedDuringHold(LinuxRemover):
        def users(self, targets, result):  # type: ignore[no-untyped-def]
            found = super().users(targets, result)
            if path.exists():
                path.unlink()
            return found

    result = RemovedDuringHold().remove([str(lockdir)], Policy())
    assert result.removed == [] and result.errors == []
    assert [(s.state, s.reason) for s in result.skipped] == [
        (LockState.SUSPICIOUS, "replaced while it was being removed")
    ]


def test_a_keeper_that_cannot_start_says_so_in_its_log_and_exits_2(tmp_path: Path) -> None:
    """Kills the keeper's `except (..., OSError)` narrowed, its exit status changed and its log's
    rotation broken: a job it cannot take (here: its GO fd is not open; an unusable ready fd
    alone is taken for a cleaner gone) is logged, and the keeper exits 2."""
    job = json.dumps({"view": {"platform": "linux"}, "handoffs": []}).encode()
    env = {**os.environ, "PYTHONPATH": APP_DIR, "XDG_STATE_HOME": str(tmp_path / "state")}
    old_log = tmp_path / "state" / "uvsweep" / "keeper.log"
    old_log.parent.mkdir(parents=True)
    old_log.write_text("x" * (300 * 1024))  # past 256 KiB: rotated before the next line
    job_r, job_w = os.pipe()
    os.write(job_w, job)  # a whole job, as a cleaner writes it...
    os.close(job_w)
    try:  # ...but fds 987 and 988, where it is to say "ready" and hear GO, are not open
        done = subprocess.run(
            [sys.executable, "-m", "uvsweep", "_keeper", "--job-fd", str(job_r),
             "--ready-fd", "987", "--go-fd", "988"],
            capture_output=True, text=True, env=env, check=False, timeout=60, pass_fds=[job_r],
        )  # fmt: skip
    finally:
        os.close(job_r)
    assert done.returncode == 2, done.stderr
    (log,) = (tmp_path / "state").rglob("keeper.log")
    assert "cannot start" in log.read_text() and "Traceback" not in done.stderr
    assert len(log.read_text()) < 1024 and old_log.with_name("keeper.log.1").exists()


@pytest.mark.parametrize("min_age", [0.0, 3600.0], ids=["found-holding-it", "kept-young"])
def test_a_waiter_alone_in_the_table_is_named_in_the_reason(
    lockdir: Path, tmp_path: Path, min_age: float
) -> None:
    """Kills `holders or waiters or openers` -> `holders or waiters and openers` when a skip is
    described: a waiter whose holder is hidden is still named (run 4: a file kept before the
    lock, here for its age, is described by `_skip_observed`; one found once held, by its
    `Use`)."""
    path = lockdir / A
    path.touch()
    st = os.stat(path)
    fake = _fake_proc(tmp_path)
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}"
    me = os.getpid()  # a waiting line of ours is somebody else's as far as the table goes
    (fake / "locks").write_text(f"1: -> FLOCK  ADVISORY  WRITE {me} {device}:{st.st_ino} 0 EOF\n")
    result = LinuxRemover(proc=str(fake), calls=_WaiterHasItOpen()).remove(
        [str(lockdir)], Policy(min_age=min_age)
    )
    ((state, reason),) = [(s.state, s.reason) for s in result.skipped]
    assert state is LockState.WAITING and f"pid {me} " in reason, reason


def test_a_file_unlinked_under_our_eyes_is_gone_not_odd(lockdir: Path) -> None:
    """Kills `st_nlink == 0` -> `== -1` in `_may_lock`: a regular file with no link left
    (another cleaner unlinked it during our lstat of a file we could not open) is simply gone,
    not "a hard link (0 links)"."""
    (lockdir / A).touch()

    def no_links(name: str, dir_fd: int) -> os.stat_result:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        return os.stat_result((st.st_mode, st.st_ino, st.st_dev, 0, *tuple(st)[4:10]))

    result = LinuxRemover(calls=_unopenable(A), lstat=no_links).remove([str(lockdir)], Policy())
    assert (result.removed, result.skipped, result.errors) == ([], [], [])


def test_a_file_unlinked_between_our_open_and_fstat_is_gone_not_odd(lockdir: Path) -> None:
    """Kills `found.st_nlink == 0` -> `== -1` after the open: the file another cleaner unlinked
    right after our open is gone, not "changed while it was being checked"."""
    from uvsweep.probe.posix import Syscalls

    (lockdir / A).touch()

    class AnotherCleaner(Syscalls):
        def open(self, name, flags, mode=0o777, dir_fd=None):  # type: ignore[no-untyped-def]
            fd = super().open(name, flags, mode, dir_fd=dir_fd)
            if name == A and dir_fd is not None:
                os.unlink(name, dir_fd=dir_fd)
            return fd

    result = LinuxRemover(calls=AnotherCleaner()).remove([str(lockdir)], Policy())
    assert (result.removed, result.skipped, result.errors) == ([], [], [])


def test_a_file_another_cleaner_removed_first_does_not_stop_the_batch(lockdir: Path) -> None:
    """Kills `continue` -> `break` after `FileNotFoundError` from our unlink."""
    first = lockdir / A
    first.touch()
    later = lockdir / "uv-00000000000000bb.lock"
    later.touch()

    class RemovedFirst(LinuxRemover):
        def unlink(self, target):  # type: ignore[no-untyped-def]
            no_lease_before_the_unlink(self, target)
            if target.name == A:
                os.unlink(target.path)
                raise FileNotFoundError(2, "No such file or directory")
            super().unlink(target)

    result = RemovedFirst().remove([str(lockdir)], Policy())
    assert result.removed == [str(later)] and result.skipped == [] and not later.exists()


def test_nothing_to_remove_hides_nothing(lockdir: Path) -> None:
    """Kills `CleanResult.hidden_processes` starting at -1 (or 1)."""
    result = LinuxRemover().remove([str(lockdir)], Policy())
    assert result.hidden_processes == 0 and result.removed == []


def test_a_file_gone_after_lstat_is_neither_an_error_nor_a_crash(lockdir: Path) -> None:
    """Kills `except FileNotFoundError` narrowed after the lstat of a file we could not open (a
    vanished file reported as an error), and `_probe_shared`'s `except OSError` narrowed (an
    odd file gone before its probe ends the run with a traceback)."""
    (lockdir / A).touch()
    odd = lockdir / "uv-00000000000000bb.lock"
    odd.write_text("x")

    class Vanishing(Syscalls):
        odd_fds: list[int] = []  # noqa: RUF012 - one instance

        def open(self, name, flags, mode=0o777, dir_fd=None):  # type: ignore[no-untyped-def]
            if name == A and dir_fd is not None:
                raise PermissionError(13, "Permission denied")
            fd = super().open(name, flags, mode, dir_fd=dir_fd)
            if name == odd.name:
                self.odd_fds.append(fd)
            return fd

        def fstat(self, fd: int) -> os.stat_result:
            st = super().fstat(fd)
            if self.odd_fds == [fd]:
                odd.unlink()  # gone after our check of it, before the shared probe opens it
            return st

    def vanishing(name: str, dir_fd: int) -> os.stat_result:
        if name == A:
            raise FileNotFoundError(2, "No such file or directory")
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)

    result = LinuxRemover(calls=Vanishing(), lstat=vanishing).remove([str(lockdir)], Policy())
    assert result.errors == [] and result.removed == []
    assert [(s.state, s.reason) for s in result.skipped] == [
        (LockState.SUSPICIOUS, "not empty (1 bytes)")
    ]


def test_a_file_we_may_not_open_says_why(lockdir: Path) -> None:
    """Kills `err.strerror or ""` -> `and`: an open refused for another reason than a symlink
    gives the OS's reason."""
    from uvsweep.probe.posix import Syscalls

    (lockdir / A).touch()

    class Refusing(Syscalls):
        def open(self, name, flags, mode=0o777, dir_fd=None):  # type: ignore[no-untyped-def]
            if name == A:
                raise PermissionError(13, "Permission denied")
            return super().open(name, flags, mode, dir_fd=dir_fd)

    result = LinuxRemover(calls=Refusing()).remove([str(lockdir)], Policy())
    assert [(s.state, s.reason) for s in result.skipped] == [
        (LockState.SUSPICIOUS, "unreadable, its lock cannot be checked: Permission denied")
    ]


def test_a_keeper_that_dies_before_it_is_ready_is_not_trusted_with_the_locks(
    lockdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills `not readable or read != ready` -> `and`: a keeper that exits without saying it
    has the locks (here: its interpreter is `false`) is not handed them; the cleaner finishes the
    handoff itself."""
    path = lockdir / A
    path.touch()
    children: list[subprocess.Popen[str]] = []
    python = sys.executable

    class OpenedDuringUnlink(LinuxRemover):
        def unlink(self, target):  # type: ignore[no-untyped-def]
            no_lease_before_the_unlink(self, target)
            child = subprocess.Popen(
                [python, "-c", _ROOT_WAITER, target.path], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, text=True, start_new_session=True,
            )  # fmt: skip
            children.append(child)
            assert _readline(child).startswith("opened")
            super().unlink(target)

    def progress(line: str) -> None:
        if "could not start a keeper" in line:  # now the old file's user may be done
            for child in children:
                assert child.stdin is not None
                child.stdin.write("\n")
                child.stdin.flush()

    monkeypatch.setattr(sys, "executable", "/bin/false")  # the keeper dies at once, silently
    remover = OpenedDuringUnlink(handoff_wait=0.0, progress=progress, keeper=_ExecOnlyKeeper())
    try:
        result = remover.remove([str(lockdir)], Policy())
    finally:
        monkeypatch.undo()
        _stop(*children)
    assert result.keepers == [] and result.handoffs == 1


class _ExecOnlyKeeper(Keeper):
    """The real keeper program, without the forked fallback (a platform without fork)."""

    def fork(self, handoffs: object, view: object) -> int:  # type: ignore[override]
        raise OSError("no fork here")


_DEAD_KEEPER = textwrap.dedent(
    """
    import os, sys
    sys.path.insert(0, {app!r})
    from uvsweep.probe.posix import SYSCALLS
    from uvsweep.remove import handoff
    from uvsweep.remove.handoff import FOREIGN_PATIENCE, NEW, Handoff, Keeper

    dir_fd = os.open({directory!r}, os.O_RDONLY)
    handoffs = [
        Handoff(SYSCALLS, dir_fd, "/" + "d" * 4000, "uv-%016x.lock" % i,
                os.open("/dev/null", os.O_RDONLY), (0, i), lambda handoff: True)
        for i in range(24)
    ]  # a job of ~100 KB: more than a pipe holds
    sys.executable = "/bin/false"  # the keeper dies at once, without a word
    handoff.KEEPER_START_TIMEOUT = 3600.0  # seen dead at once, not when its time is up
    try:
        Keeper().take(handoffs, {{"platform": "linux"}})
    except OSError as err:
        print("not taken:", err, flush=True)
    """
)


def test_a_keeper_that_dies_at_once_is_not_waited_for_whatever_the_jobs_size(
    lockdir: Path,
) -> None:
    """`Keeper.take` kept its own copies of the keeper's pipe ends (the job's read end and the
    "ready" write end, moved above stdio for the keeper): a keeper dead at once never looked
    dead, so a job bigger than a pipe blocked our write for ever (and a small one waited the
    whole start timeout). The cleaner must see the keeper gone and keep its locks itself.
    (Run 4: with the job in a file, `take`'s loop that closes those copies run zero times
    only made a dead keeper wait out the start timeout, an hour here: the bound is this
    test's 60 s.)"""
    code = _DEAD_KEEPER.format(app=APP_DIR, directory=str(lockdir))
    try:
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
            check=False, start_new_session=True,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail("the cleaner waits for a keeper that is gone")
    assert done.stdout.startswith("not taken:"), done.stdout + done.stderr


def _one_handoff(lockdir: Path) -> list[Handoff]:
    """One handoff of a real file of `lockdir` (its dir and file fds are the caller's to close)."""
    from uvsweep.probe.posix import SYSCALLS

    (lockdir / A).touch()
    dir_fd = os.open(lockdir, os.O_RDONLY)
    fd = os.open(lockdir / A, os.O_RDWR)
    st = os.fstat(fd)
    return [Handoff(SYSCALLS, dir_fd, str(lockdir), A, fd, (st.st_dev, st.st_ino), lambda h: True)]


def _open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def test_a_keeper_start_that_fails_leaves_no_fd_of_ours_open(
    lockdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills `Keeper.take`'s `os.close(low)` -> `pass` (run 4): the keeper's pipe ends copied
    above its stdio left their originals open here. With the job in a file of its own that no
    longer blocks, but every keeper start leaks two fds (a tray that cleans all day runs out),
    and a keeper that dies at once is waited for until the start timeout (our own copy of its
    "ready" end keeps the pipe from ending). The cleaner's fds after a failed start are the
    ones it had before."""
    from uvsweep.remove import handoff as handoff_module

    handoffs = _one_handoff(lockdir)
    monkeypatch.setattr(handoff_module, "KEEPER_START_TIMEOUT", 5.0)
    monkeypatch.setattr(sys, "executable", "/bin/false")  # the keeper dies at once, silently
    try:
        before = _open_fds()
        with pytest.raises(OSError, match="did not take over"):
            Keeper().take(handoffs, {"platform": "linux"})
        after = _open_fds()
    finally:
        monkeypatch.undo()
        os.close(handoffs[0].old_fd)  # type: ignore[arg-type]
        os.close(handoffs[0].dir_fd)
    assert after == before


def test_a_keeper_that_never_says_ready_is_killed_and_never_trusted(
    lockdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills the ready pipe's end or silence taken for "ready" (`next_line`'s `if not chunk`
    returning the word; run 4): a keeper that is alive but never says it has the locks (stuck
    before it could build its remover) must be killed when its time is up and `take` must
    raise, so that the cleaner keeps its locks and finishes the handoffs itself. Trusted, it
    would be told GO (it still reads the pipe) and the cleaner would let go of files a stuck
    process holds."""
    from uvsweep.remove import handoff as handoff_module

    stuck = tmp_path / "stuck-keeper"
    stuck.write_text("#!/bin/sh\nexec sleep 600\n")
    stuck.chmod(0o755)
    started: list[int] = []
    launch = handoff_module._launch

    def noted(*args: object) -> int:
        pid = launch(*args)  # type: ignore[arg-type]
        started.append(pid)
        return pid

    handoffs = _one_handoff(lockdir)
    monkeypatch.setattr(handoff_module, "_launch", noted)
    monkeypatch.setattr(handoff_module, "KEEPER_START_TIMEOUT", 2.0)
    monkeypatch.setattr(sys, "executable", str(stuck))
    try:
        with pytest.raises(OSError, match="did not take over"):
            Keeper().take(handoffs, {"platform": "linux"})
        assert started and procs.wait_gone(started) == [], "the silent keeper still runs"
    finally:
        monkeypatch.undo()
        for pid in started:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        os.close(handoffs[0].old_fd)  # type: ignore[arg-type]
        os.close(handoffs[0].dir_fd)


class _ForkOnlyKeeper(Keeper):
    """No new program can start (no /bin/sh, say): the forked keeper takes over."""

    def take(self, handoffs: object, view: object) -> int:  # type: ignore[override]
        raise OSError("no program can start here")


@pytest.mark.parametrize("pipes", [True, False], ids=["pipes", "no-fds-for-pipes"])
def test_a_forked_keeper_polls_its_rounds_without_failing_them(
    lockdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pipes: bool
) -> None:
    """Kills the forked keeper's poll interval `limit=0.1` -> `-0.9` (run 4): every round after
    the second then fails (a negative sleep) and is tried again at once, a busy loop that
    floods the keeper's log; and, where no fds were left for its pipes (`_two_pipes` gives
    none, as when `pipe()` fails), `ready_fd >= 0` -> `>= -1`: a keeper told to say nothing
    says "ready" on fd -1 and logs that its cleaner was gone; with stdin closed too, `fork`'s
    no-pipe `ready_w` -1 -> 0: the keeper then says "ready" into fd 0, here the handoff's dir,
    and closes it, and every round after fails. The forked keeper holds the
    name's new file while the old file is open, ends once it is let go, and logs only that it
    keeps the lock and is done; and, being our child there (no second fork), it is reaped by
    the next clean once it is done (`reap_forked`'s `== 0` -> `== 1`: a keeper still running
    when asked was dropped from the list, and left a zombie)."""
    from uvsweep.remove import handoff as handoff_module

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))  # the keeper's log goes there
    if not pipes:
        monkeypatch.setattr(handoff_module, "_two_pipes", list)  # no fds for pipes
    path = lockdir / A
    path.touch()
    children: list[subprocess.Popen[str]] = []

    latecomer_at_unlink = _latecomer_at_unlink(children)

    keepers: list[int] = []
    stdin = os.dup(0)
    try:
        remover = latecomer_at_unlink(handoff_wait=0.0, keeper=_ForkOnlyKeeper())
        if not pipes:
            os.close(0)  # a starved cleaner run with stdin closed: the dir's fd is fd 0
        try:
            keepers = remover.remove([str(lockdir)], Policy()).keepers
        finally:
            os.dup2(stdin, 0)
        assert len(keepers) == 1
        time.sleep(1.0)  # many rounds (one each 0.1 s)
        assert flock_held(path), "the name's new file is not locked while the old one is open"
        handoff_module.reap_forked()  # the next clean of a tray: the keeper still runs
        _stop(*children)
        wait_keepers_gone(keepers)
        if not pipes:  # no second fork without pipes: the keeper is our child...
            handoff_module.reap_forked()  # ...reaped by the next clean once it is done
            assert not os.path.exists(f"/proc/{keepers[0]}"), "a keeper left as a zombie"
        (log,) = (tmp_path / "state").rglob("keeper.log")
        text = log.read_text()
        assert "failed" not in text and "gone" not in text, text[:2000]
        assert text.splitlines()[-1].split(": ", 1)[1].startswith("(forked) done with"), text
    finally:
        os.close(stdin)
        _stop(*children)
        for pid in keepers:
            if procs.alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_forked_keeper_that_cannot_start_says_why_in_its_log(
    lockdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills `_forked_keeper`'s `except BaseException` narrowed (run 4): a forked keeper that
    fails before it is ready (here: a view of a platform whose remover has no Unix handoffs)
    ends, `fork` raises so that the cleaner keeps its locks, and the keeper's log says why it
    failed (narrowed, the error left through `finally` with status 0 and no word)."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    handoffs = _one_handoff(lockdir)
    try:
        with pytest.raises(OSError, match="did not take over"):
            Keeper().fork(handoffs, {"platform": "win32"})
    finally:
        os.close(handoffs[0].old_fd)  # type: ignore[arg-type]
        os.close(handoffs[0].dir_fd)
    (log,) = (tmp_path / "state").rglob("keeper.log")
    assert "(forked) failed: TypeError" in log.read_text(), log.read_text()


_FORKING_CLEANER = textwrap.dedent(
    """
    import os, subprocess, sys
    sys.path.insert(0, {app!r})
    from uvsweep.remove import Policy
    from uvsweep.remove.handoff import Keeper
    from uvsweep.remove.posix import LinuxRemover

    class ForkOnly(Keeper):
        def take(self, handoffs, view):
            raise OSError("no program can start here")

    exit_now = os._exit

    def exit_late(status):  # the keeper's first copy is still there when asked about
        import time
        time.sleep(1.0)
        exit_now(status)

    os._exit = exit_late
    openers = []

    class OpenedDuringUnlink(LinuxRemover):
        def unlink(self, target):
            import fcntl  # (no lease kept before the unlink: as where none can be taken)
            if target in self._leased:
                self._leased.discard(target)
                fcntl.fcntl(target.handle, fcntl.F_SETLEASE, fcntl.F_UNLCK)
            openers.append(subprocess.Popen(
                [sys.executable, "-c", {opener!r}, target.path], stdout=subprocess.PIPE,
                text=True, start_new_session=True,
            ))
            assert openers[0].stdout.readline().strip() == "opened"
            super().unlink(target)

    remover = OpenedDuringUnlink(handoff_wait=0.0, keeper=ForkOnly())
    result = remover.remove([{directory!r}], Policy())
    (keeper,) = result.keepers
    with open(f"/proc/{{keeper}}/stat") as stat:
        parent = int(stat.read().rsplit(")", 1)[1].split()[1])
    def parent_of(pid):
        try:
            with open(f"/proc/{{pid}}/stat") as stat:
                return int(stat.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            return None

    # the keeper's first copy, once it exited, was reaped: no child of ours but the opener
    children = [
        int(pid) for pid in os.listdir("/proc")
        if pid.isdigit() and parent_of(int(pid)) == os.getpid() and int(pid) != openers[0].pid
    ]
    def stdio(pid):
        try:
            return all(os.readlink(f"/proc/{{pid}}/fd/{{n}}") == "/dev/null" for n in (0, 1, 2))
        except OSError:
            return False

    print(
        keeper, openers[0].pid, parent == os.getpid(), os.getpid(), len(children),
        stdio(keeper), flush=True,
    )
    sys.stdin.readline()
    """
)


def test_a_forked_keeper_is_nobodys_child(lockdir: Path) -> None:
    """Kills `_second_fork`'s `if pid != 0` -> `== 0` (run 4): the first copy must exit and the
    second be the keeper, so that the keeper is no child of the cleaner (a long-lived tray
    would keep it as a zombie once it is done); and `fork`'s `if pid == 0` -> `!= 0`: the
    cleaner itself then exits (its shell sees a clean that ended) and goes on in its first
    copy; and `fork`'s `if keeper == pid` inverted, or its `os.waitpid(pid, 0)` -> `1`
    (WNOHANG): the first copy, which exits at once (here a second late), is then never
    reaped (a zombie for the tray's life); and `_become_keeper`'s stdio loop
    `(0, 1, 2)` -> `(0, 0, 2)`: the keeper's stdout left closed, where its next open (a lock
    file) would land. The cleaner here is a process of its own, so
    that the keeper's parent is not this test's (pid 1 of the namespace the mutation runs use
    adopts orphans)."""
    (lockdir / A).touch()
    code = _FORKING_CLEANER.format(app=APP_DIR, opener=_OPENER, directory=str(lockdir))
    cleaner = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    keeper = opener = 0
    try:
        keeper_s, opener_s, ours, who, children, stdio = _readline(cleaner, 60).split()
        keeper, opener = int(keeper_s), int(opener_s)
        assert int(who) == cleaner.pid, "the cleaner went on in a copy of itself"
        assert ours == "False", "the forked keeper is the cleaner's own child"
        assert children == "0", "the keeper's first copy was never reaped"
        assert stdio == "True", "the keeper's stdin, stdout and stderr are not /dev/null"
    finally:
        if opener:
            os.killpg(opener, signal.SIGKILL)
        if keeper:
            wait_keepers_gone([keeper])
        _stop(cleaner)


def test_a_fork_that_fails_leaves_no_pipe_of_ours_open(
    lockdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills `Keeper.fork`'s `for fd in pipes: os.close(fd)` run zero times when `os.fork` fails
    (run 4): a cleaner out of processes (EAGAIN) must not leak the keeper's two pipes at each
    try; `fork` raises, so that the caller waits itself."""
    import errno

    def no_process(*args: object) -> int:
        raise OSError(errno.EAGAIN, "Resource temporarily unavailable")

    handoffs = _one_handoff(lockdir)
    try:
        before = _open_fds()
        with monkeypatch.context() as patch:
            patch.setattr(os, "fork", no_process)
            with pytest.raises(OSError, match="temporarily unavailable"):
                Keeper().fork(handoffs, {"platform": "linux"})
        assert _open_fds() == before
    finally:
        os.close(handoffs[0].old_fd)  # type: ignore[arg-type]
        os.close(handoffs[0].dir_fd)


def test_a_fork_that_fails_in_the_keepers_copy_only_leaves_that_copy_the_keeper(
    lockdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills `_second_fork`'s `pid = 0` -> `1` when the second fork fails (run 5): a cleaner at
    its process limit after the first fork (here `os.fork` fails in every process but this
    one, EAGAIN) must let its first copy be the keeper, our child (reaped by the next clean),
    rather than have it exit too: then no copy is left, `fork` raises, and the cleaner waits
    out the old file's users itself although a keeper had started. Also `_second_fork`'s
    `except OSError` narrowed: the first copy then returned into the cleaner's code."""
    import errno

    from uvsweep.remove import handoff as handoff_module

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    real_fork, cleaner = os.fork, os.getpid()

    def fork_here_only() -> int:
        if os.getpid() != cleaner:
            raise OSError(errno.EAGAIN, "Resource temporarily unavailable")
        return real_fork()

    handoffs = _one_handoff(lockdir)
    keeper = 0
    try:
        with monkeypatch.context() as patch:
            patch.setattr(os, "fork", fork_here_only)
            try:
                keeper = Keeper().fork(handoffs, {"platform": "linux"})
            finally:
                if os.getpid() != cleaner:  # a copy came back into the test: it ends here
                    os._exit(3)
        with open(f"/proc/{keeper}/stat", encoding="ascii") as stat:
            parent = int(stat.read().rsplit(")", 1)[1].split()[1])
        assert parent == os.getpid(), "the keeper is not the cleaner's first copy"
        assert keeper in handoff_module._FORKED, "our child keeper is never reaped"
    finally:
        if keeper:
            os.kill(keeper, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(keeper, 0)
            with contextlib.suppress(ValueError):
                handoff_module._FORKED.remove(keeper)
        os.close(handoffs[0].old_fd)  # type: ignore[arg-type]
        os.close(handoffs[0].dir_fd)


def test_a_handoff_whose_old_file_nobody_uses_closes_its_fd(lockdir: Path) -> None:
    """Kills `Handoff._drop_old(close=True)`'s default -> `False` (run 4's open one): a handoff
    whose old file turns out unused ends at once (`released_unused`), and nothing closes it
    after that (`undo_all` closes only the handoffs left to a keeper or given up): left open,
    its fd leaked for the process's life, one for each such handoff of a tray that cleans all
    day. The old file's fd is closed (and its lock gone) when the handoff ends."""
    from uvsweep.probe.posix import SYSCALLS

    (lockdir / A).touch()
    dir_fd = os.open(lockdir, os.O_RDONLY)
    fd = os.open(lockdir / A, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        st = os.fstat(fd)
        handoff = Handoff(
            SYSCALLS, dir_fd, str(lockdir), A, fd, (st.st_dev, st.st_ino), lambda _h: False
        )
        assert handoff.step() is True
        assert handoff.released_unused and handoff.old_fd is None
        assert not _fd_open(fd), "the old file's fd stays open after its handoff ended"
        assert not flock_held(lockdir / A)
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
        os.close(dir_fd)


def test_a_forked_keeper_keeps_a_handoffs_file_that_was_opened_as_stdio(
    lockdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hold: type[Holder]
) -> None:
    """Kills `_become_keeper`'s `fd != null and fd not in keep` -> `or` (run 4's open one): a
    cleaner started with stdin and stdout closed opens the handoff's dir as fd 0 and the old
    file as fd 1; a forked keeper that puts /dev/null on its stdio must skip the fds it keeps,
    or the old file's lock goes with the cleaner's copy. Here a new uv holds the file at the
    name, so the handoff stays in `OLD`: the keeper must hold the old file's lock, or its
    waiters lock the unlinked inode while the new uv holds the name (two holders). Also
    `if null > 2` -> `> 1` (run 5): /dev/null, opened as fd 2 here, closed."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    path = lockdir / A
    path.touch()
    openers: list[subprocess.Popen[str]] = []
    old_ino: list[int] = []

    class NewUvAfterUnlink(LinuxRemover):
        def unlink(self, target):  # type: ignore[no-untyped-def]
            no_lease_before_the_unlink(self, target)
            opener = subprocess.Popen(
                [sys.executable, "-c", _OPENER, target.path], stdout=subprocess.PIPE, text=True,
                start_new_session=True,
            )  # fmt: skip
            openers.append(opener)
            assert _readline(opener) == "opened"
            old_ino.append(os.stat(target.path).st_ino)
            super().unlink(target)
            path.touch()  # a new uv's file at the name, locked: no next generation yet
            hold(path)

    keepers: list[int] = []
    saved = os.dup(0), os.dup(1)
    try:
        remover = NewUvAfterUnlink(handoff_wait=0.0, keeper=_ForkOnlyKeeper())
        os.close(0)  # a cleaner started with stdin and stdout closed: the dir's fd is fd 0,
        os.close(1)  # the old file's fd 1
        try:
            keepers = remover.remove([str(lockdir)], Policy()).keepers
        finally:
            os.dup2(saved[0], 0)
            os.dup2(saved[1], 1)
        assert len(keepers) == 1
        # its stderr is /dev/null too (`null > 2` -> `> 1` closed /dev/null, here fd 2: the
        # keeper's next open, a new lock file, would take stderr's place)
        assert os.readlink(f"/proc/{keepers[0]}/fd/2") == "/dev/null"
        (opener,) = openers
        (again,) = (
            f"/proc/{opener.pid}/fd/{n}"
            for n in os.listdir(f"/proc/{opener.pid}/fd")
            if os.stat(f"/proc/{opener.pid}/fd/{n}").st_ino == old_ino[0]
        )
        old = os.open(again, os.O_RDONLY)  # the unlinked old file, opened afresh
        try:
            with pytest.raises(BlockingIOError):  # its lock is the keeper's...
                fcntl.flock(old, fcntl.LOCK_EX | fcntl.LOCK_NB)  # ...or a waiter's to take
        finally:
            os.close(old)
    finally:
        for fd in saved:
            os.close(fd)
        _stop(*openers)
        for pid in keepers:
            if procs.alive(pid):
                os.kill(pid, signal.SIGKILL)


class _FstatFails(Syscalls):
    """The real calls, but `fstat` of one fd fails (EIO)."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self.fd = fd

    def fstat(self, fd: int) -> os.stat_result:
        if fd == self.fd:
            raise OSError(5, "Input/output error")
        return super().fstat(fd)


def test_a_replaced_next_generation_is_the_old_file_in_its_turn_and_the_last_one_is_closed(
    lockdir: Path,
) -> None:
    """Kills `Handoff._next_in_line`'s `self.replaced[0]` -> `[-1]` and `if self.old_fd is not
    None` -> `is None` (run 5): once the old file is free, the oldest of the next generations
    removed from the name while we held them becomes the old file, by its own identity (read
    from the newest, a uv that opened the oldest and has not locked it yet went unseen, and
    the handoff could end under it); and the old file done with is closed (left open, its fd,
    locked by our confirming try-lock, leaked for the process's life). Also its `except
    OSError` narrowed (run 5): a replaced file that cannot be fstat'ed leaves everything as
    it was for the next round, never an error out of the handoff's round."""
    from uvsweep.probe.posix import SYSCALLS

    def locked() -> int:  # the file at the name, locked by us
        fd = os.open(lockdir / A, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd

    old = locked()
    os.unlink(lockdir / A)
    first = locked()
    opener = subprocess.Popen(
        [sys.executable, "-c", _OPENER, str(lockdir / A)], stdout=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    dir_fd = os.open(lockdir, os.O_RDONLY)
    second = new = -1
    try:
        assert _readline(opener) == "opened"  # a uv between its open and its lock
        os.unlink(lockdir / A)
        second = locked()
        os.unlink(lockdir / A)
        new = locked()
        st = os.fstat(old)
        handoff = Handoff(
            SYSCALLS, dir_fd, str(lockdir), A, old, (st.st_dev, st.st_ino), lambda _h: False
        )
        handoff.state, handoff.new_fd, handoff.replaced = NEW, new, [first, second]
        handoff.calls = _FstatFails(first)
        assert handoff.step() is False  # the first replaced cannot be known: nothing changes
        assert handoff.old_fd == old and handoff.replaced == [first, second]
        handoff.calls = SYSCALLS
        assert handoff.step() is False  # the old file is free: the first replaced is next
        assert handoff.old_fd == first and handoff.replaced == [second]
        assert not _fd_open(old), "the old file done with is still open"
        assert LinuxRemover().handoffs_in_use([handoff]) == {handoff}, "its opener went unseen"
    finally:
        _stop(opener)
        for fd in (old, first, second, new, dir_fd):
            with contextlib.suppress(OSError):
                os.close(fd)


def test_roots_file_at_the_name_is_taken_at_once_by_a_cleaner_that_is_not_root(
    lockdir: Path,
) -> None:
    """Kills `Handoff._acceptable`'s `owner in (0, euid)` -> `(1, euid)` or `(-1, euid)`
    (run 5): in a sticky dir that neither root nor we own, a free file of root's at the name
    is the next generation at once (root may remove any file anyway), while a file of uid 1's
    waits out the patience as any other user's does. The cleaner's uid and clock are injected
    (the test runs as root, whose own files are taken at once either way). Also the warning
    then given (run 5): how long the file was there (`now - since` -> `+`), and no link count
    for a file of one link (`st_nlink != 1` -> `!= 0`)."""
    from uvsweep.probe.posix import Syscalls

    need(os.geteuid() == 0, "root, to give files to other owners (chown)")

    class NotRoot(Syscalls):
        now = 1000.0

        def geteuid(self) -> int:
            return 4322

        def monotonic(self) -> float:
            return self.now

    os.chown(lockdir, 65534, -1)
    lockdir.chmod(0o1777)
    for owner, taken in ((0, True), (1, False)):
        fd = os.open(lockdir / A, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
        os.fchown(fd, 4321, -1)
        fcntl.flock(fd, fcntl.LOCK_EX)
        st = os.fstat(fd)
        os.unlink(lockdir / A)
        dir_fd = os.open(lockdir, os.O_RDONLY)
        calls = NotRoot()
        handoff = Handoff(
            calls, dir_fd, str(lockdir), A, fd, (st.st_dev, st.st_ino), lambda _h: True
        )
        said: list[str] = []
        handoff.warn = said.append
        planted = os.open(lockdir / A, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.fchown(planted, owner, -1)
        os.close(planted)
        try:
            handoff.step()
            assert (handoff.state == NEW) is taken, f"uid {owner}'s file"
            if not taken:  # taken once it has been there, free, for the patience
                calls.now += FOREIGN_PATIENCE
                handoff.step()
                assert handoff.state == NEW
                warning = (
                    f"{lockdir}/{A}: took uid 1's file at the name as the next generation of"
                    f" the lock (there, free, for {FOREIGN_PATIENCE:.0f} s); its owner could"
                    " remove it"
                )
                assert said == [warning]
        finally:
            handoff.close()
            os.close(dir_fd)
            os.unlink(lockdir / A)


def test_progress_that_cannot_be_written_never_stops_a_removal_between_unlink_and_handoff(
    lockdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills `_never_failing`'s `except Exception` narrowed (run 5): the line that says a file
    is being handed over is written between its unlink and its handoff; a progress output that
    raises there (`clean ... 2>&1 | head -1`: a closed pipe) must not end the removal, or the
    batch's locks go with it while a latecomer has the unlinked file open and the name is
    free (two holders). The handoff is made, and the name's new file is locked."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    path = lockdir / A
    path.touch()
    openers: list[subprocess.Popen[str]] = []

    latecomer_at_unlink = _latecomer_at_unlink(openers)

    def broken_pipe(_message: str) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    keepers: list[int] = []
    try:
        remover = latecomer_at_unlink(progress=broken_pipe, handoff_wait=0.0)
        keepers = remover.remove([str(lockdir)], Policy()).keepers
        assert len(keepers) == 1 and flock_held(path), "no handoff: the name is free"
    finally:
        _stop(*openers)
        wait_keepers_gone(keepers)


def test_a_keeper_still_running_never_keeps_the_next_ones_from_being_reaped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Kills `reap_forked`'s `continue` -> `break` (run 5): a forked keeper that still runs is
    skipped, and the ones after it that have exited are reaped (stopped at the first, a tray
    kept every later keeper as a zombie for as long as that one ran)."""
    from uvsweep.remove import handoff as handoff_module

    running = subprocess.Popen(["sleep", "60"])
    done = subprocess.Popen(["true"])
    try:
        eventually(lambda: not procs.alive(done.pid))  # a zombie, not reaped yet
        monkeypatch.setattr(handoff_module, "_FORKED", [running.pid, done.pid])
        handoff_module.reap_forked()
        left = list(handoff_module._FORKED)
        assert left == [running.pid]
        assert not os.path.exists(f"/proc/{done.pid}"), "an exited keeper left a zombie"
    finally:
        running.kill()
        running.wait()
        done.wait()


def test_a_launcher_that_hangs_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """Kills `_launch`'s `except subprocess.SubprocessError` replaced (run 5): a launcher that
    does not return in time (its timeout made a second here) is an OSError the cleaner
    handles (it keeps its locks), never another exception out of the handoff."""
    from uvsweep.remove.handoff import _launch

    run = subprocess.run

    def soon(*args: Any, **kwargs: Any) -> Any:
        return run(*args, **{**kwargs, "timeout": 1.0})

    monkeypatch.setattr(subprocess, "run", soon)
    with pytest.raises(OSError, match="the keeper did not start"):
        _launch("exec sleep 60", [], set())


class _SwapBeforeOpen(Syscalls):
    """The real calls; `swap` runs once, just before the remover's first open of a file (the
    name listed as a regular file becomes something else in the window before the open)."""

    def __init__(self, swap: Callable[[], None]) -> None:
        super().__init__()
        self.swap: list[Callable[[], None]] = [swap]

    def open(self, name: str, flags: int, mode: int = 0o777, dir_fd: int | None = None) -> int:
        if self.swap and dir_fd is not None:
            self.swap.pop()()
        return super().open(name, flags, mode, dir_fd=dir_fd)


def test_a_symlink_swapped_in_before_the_open_is_never_followed(
    lockdir: Path, tmp_path: Path
) -> None:
    """Kills issue 12's `O_NOFOLLOW` removed (run 5: the tests it had reach the open no more,
    the listing's file type now keeps a symlink from being opened at all): a symlink put at
    the name between the listing and the open is refused by the open itself, and stays with
    the symlink's reason; its target, a file another process holds, is never opened or
    locked by us (followed, it was, and the name was removed)."""
    path = lockdir / A
    path.touch()
    victim = tmp_path / "victim"
    victim.touch()

    def swap() -> None:
        os.unlink(path)
        path.symlink_to(victim)

    result = LinuxRemover(calls=_SwapBeforeOpen(swap)).remove([str(lockdir)], Policy())
    assert result.removed == [] and path.is_symlink() and victim.exists()
    assert [(s.state, s.reason) for s in result.skipped] == [
        (LockState.SUSPICIOUS, "a symlink; uv never makes one")
    ]


def test_a_fifo_swapped_in_before_the_open_never_hangs_the_remover(lockdir: Path) -> None:
    """Kills issue 12's `O_NONBLOCK` removed (run 5, as `O_NOFOLLOW` above): a FIFO put at the
    name between the listing and the open must not block the remover's open (a read-only
    open of a FIFO waits for a writer). After 10 s a writer's open lets a stuck remover go
    on, so the test fails instead of hanging."""
    path = lockdir / A
    path.touch()

    def swap() -> None:
        os.unlink(path)
        os.mkfifo(path)

    done: list[object] = []
    remover = LinuxRemover(calls=_SwapBeforeOpen(swap))
    thread = threading.Thread(target=lambda: done.append(remover.remove([str(lockdir)], Policy())))
    thread.start()
    thread.join(10)
    hung = thread.is_alive()
    if hung:
        with contextlib.suppress(OSError):
            os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(10)
    assert not hung, "the remover hangs on a FIFO swapped in before its open"
    assert path.is_fifo() and done


@pytest.mark.parametrize(("kind", "reason"), [("fifo", "a FIFO"), ("dir", "a directory")])
def test_a_file_of_another_type_swapped_in_before_the_open_is_kept_for_its_type(
    lockdir: Path, kind: str, reason: str
) -> None:
    """Kills "acquire's common case: a file of any type taken" (named.py): what the open finds
    is judged by its own `fstat`, so a FIFO or a dir put at the name after the listing said
    "regular file" is never locked, and stays for what it is, as the scanner says it (not
    "replaced while it was being removed", which a lock and the later look would say)."""
    path = lockdir / A
    path.touch()

    def swap() -> None:
        os.unlink(path)
        if kind == "fifo":
            os.mkfifo(path)
        else:
            path.mkdir()

    result = LinuxRemover(calls=_SwapBeforeOpen(swap)).remove([str(lockdir)], Policy())
    assert result.removed == [] and result.errors == []
    assert [(s.state, s.reason) for s in result.skipped] == [(LockState.SUSPICIOUS, reason)]
    assert path.is_fifo() if kind == "fifo" else path.is_dir()


_CLEANER_DYING_BEFORE_READY = textwrap.dedent(
    """
    import os, subprocess, sys
    sys.path.insert(0, {app!r})
    from uvsweep.remove import Policy, handoff
    from uvsweep.remove.handoff import Keeper
    from uvsweep.remove.posix import LinuxRemover

    class ForkOnly(Keeper):
        def take(self, handoffs, view):
            raise OSError("no program can start here")

    class DiesAtOnce:  # the cleaner is killed as it is about to hear the keeper
        def __init__(self, fd):
            os._exit(9)

    handoff._ReadyPipe = DiesAtOnce

    class OpenedDuringUnlink(LinuxRemover):
        def unlink(self, target):
            import fcntl  # (no lease kept before the unlink: as where none can be taken)
            if target in self._leased:
                self._leased.discard(target)
                fcntl.fcntl(target.handle, fcntl.F_SETLEASE, fcntl.F_UNLCK)
            opener = subprocess.Popen(
                [sys.executable, "-c", {opener!r}, target.path], stdout=subprocess.PIPE,
                text=True, start_new_session=True,
            )
            assert opener.stdout.readline().strip() == "opened"
            print(opener.pid, flush=True)
            super().unlink(target)

    OpenedDuringUnlink(handoff_wait=0.0, keeper=ForkOnly()).remove([{directory!r}], Policy())
    """
)


def test_a_forked_keeper_whose_cleaner_died_before_hearing_ready_keeps_the_files(
    lockdir: Path, tmp_path: Path
) -> None:
    """Kills `_say_ready`'s `except OSError` narrowed (run 4): a keeper whose cleaner is gone
    before it read "ready" (killed; the pipe's write fails with EPIPE) holds the files alone
    now, and must go on holding the name's new file for as long as the old file is open;
    narrowed, the error ended the keeper, and with it the only lock on the new file."""
    path = lockdir / A
    path.touch()
    state = tmp_path / "state"
    code = _CLEANER_DYING_BEFORE_READY.format(app=APP_DIR, opener=_OPENER, directory=str(lockdir))
    cleaner = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
        start_new_session=True, env={**os.environ, "XDG_STATE_HOME": str(state)},
    )  # fmt: skip
    opener = 0
    keepers: list[int] = []
    try:
        opener = int(_readline(cleaner, 60))
        assert cleaner.wait(60) == 9
        log = state / "uvsweep" / "keeper.log"
        deadline = time.monotonic() + 60
        text = ""
        while "(forked) keeping" not in text and "(forked) failed" not in text:
            assert time.monotonic() < deadline, f"the keeper said nothing: {text!r}"
            time.sleep(0.05)
            text = log.read_text() if log.exists() else ""
        assert "(forked) keeping" in text, text
        assert flock_held(path), "the name's new file is not locked while the old one is open"
        keepers = [
            int(p) for p in os.listdir("/proc")
            if p.isdigit() and int(p) != opener and _holds_open(int(p), path)
        ]  # fmt: skip
        assert len(keepers) == 1
    finally:
        if opener:
            os.killpg(opener, signal.SIGKILL)
        wait_keepers_gone(keepers)
        _stop(cleaner)


def _holds_open(pid: int, path: Path) -> bool:
    """Whether `pid` has the file now at `path` open."""
    try:
        st = path.stat()
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        with contextlib.suppress(OSError):
            found = os.stat(f"/proc/{pid}/fd/{fd}")
            if (found.st_dev, found.st_ino) == (st.st_dev, st.st_ino):
                return True
    return False


def test_a_forked_keeper_whose_round_fails_after_go_keeps_the_files(
    lockdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills `_forked_keeper`'s `said = True` -> `False` (run 4): once it has said "ready" and
    heard GO the keeper alone holds the files, so a round that fails (here the first one,
    injected) is logged and tried again; with `said` False it ended the keeper instead (the
    error path for a keeper not yet ready), and with it the lock on the name's new file while
    the old file was still open."""
    from uvsweep.remove import handoff as handoff_module

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    rounds = handoff_module.run
    failed: list[bool] = []

    def first_round_fails(*args: Any, **kwargs: Any) -> Any:
        if not failed and kwargs.get("wait", 0) is None:  # the keeper's rounds, not ours
            failed.append(True)
            raise RuntimeError("injected: a round that fails")
        return rounds(*args, **kwargs)

    monkeypatch.setattr(handoff_module, "run", first_round_fails)  # the forked copy has it too
    path = lockdir / A
    path.touch()
    children: list[subprocess.Popen[str]] = []

    latecomer_at_unlink = _latecomer_at_unlink(children)

    keepers: list[int] = []
    try:
        remover = latecomer_at_unlink(handoff_wait=0.0, keeper=_ForkOnlyKeeper())
        keepers = remover.remove([str(lockdir)], Policy()).keepers
        assert len(keepers) == 1
        log = tmp_path / "state" / "uvsweep" / "keeper.log"
        deadline = time.monotonic() + 30
        while "a round failed" not in (log.read_text() if log.exists() else ""):
            assert time.monotonic() < deadline, "the keeper's round never failed"
            time.sleep(0.05)
        time.sleep(0.5)  # the keeper decides at once (it then sleeps 1 s before its next try)
        assert procs.alive(keepers[0]) and flock_held(path), log.read_text()
        _stop(*children)
        wait_keepers_gone(keepers)
        text = log.read_text()
        assert "(forked) failed" not in text and "(forked) done with" in text, text
    finally:
        _stop(*children)
        for pid in keepers:
            if procs.alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_keeper_gone_between_ready_and_go_is_said_in_plain_words(
    lockdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills `_say_go`'s `except OSError` narrowed (run 4): a keeper that said "ready" and
    stopped reading its GO pipe (it died) makes `take` raise that it ended before it took over
    the locks (what the cleaner then shows), not a bare broken pipe. The keeper here is a
    script that closes its GO end, says ready and exits."""
    script = tmp_path / "keeper-that-leaves"
    script.write_text(
        f"#!{sys.executable}\n"
        "import os, sys\n"
        "args = sys.argv\n"
        "os.close(int(args[args.index('--go-fd') + 1]))\n"
        "os.write(int(args[args.index('--ready-fd') + 1]), b'ready\\n')\n"
    )
    script.chmod(0o755)
    handoffs = _one_handoff(lockdir)
    monkeypatch.setattr(sys, "executable", str(script))
    try:
        with pytest.raises(OSError, match="ended before it took over the locks"):
            Keeper().take(handoffs, {"platform": "linux"})
    finally:
        monkeypatch.undo()
        os.close(handoffs[0].old_fd)  # type: ignore[arg-type]
        os.close(handoffs[0].dir_fd)


# ---- survivors of the run on today's protocol (tests/MUTATION.md) --------------------------------


def test_a_file_that_cannot_be_checked_again_is_kept_with_the_os_reason(lockdir: Path) -> None:
    """Kills `changed`'s `except OSError` narrowed and `err.strerror or err` -> `and`: when the
    file we hold cannot be looked at again at the re-check before the unlink (EIO on a failing
    disk; the re-check is the name's lstat, which is the held file's own status when it shows
    the same inode), the file is kept with the OS's reason, never removed unchecked, never a
    traceback."""
    import errno

    from uvsweep.probe.posix import Syscalls

    path = lockdir / A
    path.touch()

    class FailingDisk(Syscalls):
        broken = False

        def fstat(self, fd: int) -> os.stat_result:
            if self.broken:
                raise OSError(errno.EIO, "Input/output error")
            return super().fstat(fd)

        def lstat(self, name: str, dir_fd: int) -> os.stat_result:
            if self.broken:
                raise OSError(errno.EIO, "Input/output error")
            return super().lstat(name, dir_fd)

    calls = FailingDisk()

    class BrokenAtTheRecheck(LinuxRemover):
        def users(self, targets, result):  # type: ignore[no-untyped-def]
            found = super().users(targets, result)
            calls.broken = True  # from here on, the disk fails
            return found

    result = BrokenAtTheRecheck(calls=calls).remove([str(lockdir)], Policy())
    assert result.removed == [] and path.exists()
    assert [(s.state, s.reason) for s in result.skipped] == [
        (LockState.SUSPICIOUS, "cannot be checked again: Input/output error")
    ]


def test_a_dir_that_cannot_be_listed_is_an_error_and_its_fd_is_closed(lockdir: Path) -> None:
    """Kills `listing`'s `except OSError` narrowed: a dir whose listing fails once it is open
    is reported, and the dir fd is closed (a tray or watcher cleaning every few minutes would
    otherwise leak one fd per failing run)."""
    import errno

    from uvsweep.probe.posix import Syscalls

    (lockdir / A).touch()

    class Unlistable(Syscalls):
        def __init__(self) -> None:
            self.opened: list[int] = []
            self.closed: list[int] = []

        def open_dir(self, path: str) -> int:
            fd = super().open_dir(path)
            self.opened.append(fd)
            return fd

        def list_kinds(self, dir_fd: int) -> list[tuple[str, bool]]:
            if dir_fd in self.opened:
                raise OSError(errno.EIO, "Input/output error")
            return super().list_kinds(dir_fd)

        def close(self, fd: int) -> None:
            self.closed.append(fd)
            super().close(fd)

    calls = Unlistable()
    try:
        result = LinuxRemover(calls=calls).remove([str(lockdir)], Policy())
    finally:
        for fd in calls.opened:
            if fd not in calls.closed:
                os.close(fd)
    assert [e.path for e in result.errors] == [str(lockdir)] and result.removed == []
    assert calls.opened and calls.closed == calls.opened, "the dir fd was left open"


def test_a_dirs_files_are_taken_and_reported_in_name_order_whatever_order_it_lists(
    lockdir: Path,
) -> None:
    """Kills `listing`'s sort dropped (run 6): a dir's files are taken, removed and reported
    in the order of their names, not in the order the file system lists them (ext4's hash
    order, tmpfs' newest first), so a run's batches and its report are the same everywhere.
    The listing is given backwards through the seam: a real dir need not list out of order."""
    from uvsweep.probe.posix import Syscalls

    names = [f"uv-{index:016x}.lock" for index in range(12)]
    for name in names:
        (lockdir / name).touch()
    (lockdir / "uv-00000000000000AA.lock").touch()  # no lock name: never listed

    class Backwards(Syscalls):
        def list_kinds(self, dir_fd: int) -> list[tuple[str, bool]]:
            return sorted(super().list_kinds(dir_fd), reverse=True)

    remover = LinuxRemover(calls=Backwards())
    dir_fd, listed = remover.listing(str(lockdir))
    remover.close_dir(dir_fd)
    assert listed == names
    result = remover.remove([str(lockdir)], Policy())
    assert result.removed == [str(lockdir / name) for name in names]
    assert [path.name for path in lockdir.iterdir()] == ["uv-00000000000000AA.lock"]


def _opened_during_unlink(children: list[subprocess.Popen[str]]) -> type[LinuxRemover]:
    """A remover in whose unlink window a root process opens the file and waits in flock."""

    class OpenedDuringUnlink(LinuxRemover):
        def unlink(self, target):  # type: ignore[no-untyped-def]
            no_lease_before_the_unlink(self, target)
            child = subprocess.Popen(
                [sys.executable, "-c", _ROOT_WAITER, target.path], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, text=True, start_new_session=True,
            )  # fmt: skip
            try:
                assert _readline(child).startswith("opened")
            finally:
                children.append(child)  # (only once it said so: the test reads what follows)
            super().unlink(target)

    return OpenedDuringUnlink


def test_a_hidden_process_seen_on_the_old_inode_is_followed_pid_1_included(
    lockdir: Path, tmp_path: Path
) -> None:
    """Kills `handoffs_in_use`'s `e.pid > 0` -> `> 1` or `<= 0`: a process seen on the old
    file's lock entry whose fds we may not read is followed once it has left the table (a
    waiter our unlock woke is in no table until it runs), pid 1 included: uv can be the init
    of the PID namespace we clean in (a container's)."""
    from uvsweep.probe.posix import Syscalls
    from uvsweep.remove.handoff import Handoff

    path = lockdir / A
    path.touch()
    st = path.stat()
    fake = tmp_path / "proc"
    (fake / "1" / "fd").mkdir(parents=True)
    (fake / "self").symlink_to("4000001")  # we are not pid 1 of this /proc
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}"
    (fake / "locks").write_text(f"1: -> FLOCK  ADVISORY  WRITE 1 {device}:{st.st_ino} 0 EOF\n")

    class PidOneHidden(Syscalls):  # as for a cleaner that is not root
        def list_dir(self, where: int | str) -> list[str]:
            if where == f"{fake}/1/fd":
                raise PermissionError(13, "Permission denied")
            return super().list_dir(where)

    calls = PidOneHidden()
    remover = LinuxRemover(proc=str(fake), calls=calls)
    dir_fd = os.open(lockdir, os.O_RDONLY)
    old_fd = os.open(path, os.O_RDONLY)
    handoff = Handoff(
        calls, dir_fd, str(lockdir), A, old_fd, (st.st_dev, st.st_ino), lambda _h: True
    )
    try:
        assert remover.handoffs_in_use([handoff]) == {handoff}  # waiting on the old inode
        (fake / "locks").write_text("")  # woken, not yet running: in no table
        assert remover.handoffs_in_use([handoff]) == {handoff}, "pid 1 was not followed"
        assert handoff.followed == {1}
    finally:
        os.close(old_fd)
        os.close(dir_fd)


def test_request_stop_hands_a_long_handoff_to_a_keeper_at_once(lockdir: Path) -> None:
    """Kills `stopping`'s `interrupts or stop_requests` -> `and`: `request_stop` (the tray and
    `watch` call it when they quit) alone must end the wait of a cleanup thread: its handoff
    goes to a keeper, and the removal returns, long before its own wait would end."""
    import threading

    from uvsweep.remove import request_stop

    path = lockdir / A
    path.touch()
    children: list[subprocess.Popen[str]] = []
    remover = _opened_during_unlink(children)(handoff_wait=120.0)
    done: list[object] = []
    thread = threading.Thread(
        target=lambda: done.append(remover.remove([str(lockdir)], Policy())), daemon=True
    )
    keepers: list[int] = []
    try:
        thread.start()
        deadline = time.monotonic() + 30  # the handoff is under way once root holds the old file
        while not children and time.monotonic() < deadline:
            time.sleep(0.01)
        assert children, "nobody opened the file during the unlink"
        assert _readline(children[0]) == "locked"
        assert request_stop() >= 1
        thread.join(30)
        hung = thread.is_alive()
        if hung:  # let it end on its own: the old file's user goes
            _stop(*children)
            thread.join(30)
        assert not hung, "request_stop did not end the handoff's wait"
        (result,) = done
        keepers = result.keepers  # type: ignore[attr-defined]
        assert len(keepers) == 1 and flock_held(path), "nobody holds the name's new file"
        _stop(*children)
        wait_keepers_gone(keepers)
    finally:
        _stop(*children)
        for pid in keepers:
            if procs.alive(pid):
                os.kill(pid, signal.SIGKILL)
        thread.join(30)


def _release(children: list[subprocess.Popen[str]]) -> None:
    """Tell each `_ROOT_WAITER` it is done with the old file (it exits)."""
    for child in children:
        if child.poll() is None and child.stdin is not None:
            child.stdin.write("\n")
            child.stdin.flush()


def test_without_a_keeper_one_interrupt_only_says_why_and_the_handoff_goes_on(
    lockdir: Path,
) -> None:
    """Kills `_wait_without_keeper`'s `len(interrupts) > seen + 1` -> `seen - 1` or `seen + 0`:
    with no keeper, the cleaner waits for the old file's user itself, holding the name's new
    file; no Ctrl-C, or a first one, must not give that up (two uv could then hold one lock).
    The interrupt is acted on once the handoff is over."""
    path = lockdir / A
    path.touch()
    children: list[subprocess.Popen[str]] = []
    said: list[str] = []
    held: list[bool] = []

    class InterruptedOnce(_opened_during_unlink(children)):  # type: ignore[misc]
        rounds = 0

        def handoffs_in_use(self, handoffs):  # type: ignore[no-untyped-def]
            if any("could not start a keeper" in line for line in said):
                self.rounds += 1
                held.append(flock_held(path))
                if self.rounds == 2:
                    os.kill(os.getpid(), signal.SIGINT)  # "why does it not return?"
                elif self.rounds == 5:
                    _release(children)  # the old file's user is done
            return super().handoffs_in_use(handoffs)

    remover = InterruptedOnce(keeper=_NoKeeper(), handoff_wait=0.0, progress=said.append)
    try:
        with pytest.raises(KeyboardInterrupt):
            remover.remove([str(lockdir)], Policy())
    finally:
        _stop(*children)
    assert not any("gave up" in line for line in said), said
    assert remover.rounds >= 5 and all(held[:5]), "the new file was let go while the old is used"
    assert path.exists() and not flock_held(path)


def test_without_a_keeper_two_more_interrupts_give_the_handoff_up_and_close_its_files(
    lockdir: Path,
) -> None:
    """Kills the give-up loop of `_wait_without_keeper` never running: with no keeper and a
    user of the old file that does not finish, two Ctrl-C give the handoff up, say so for each
    file, and close its fds (the name's new file is no longer locked by us), then the
    interrupt is raised."""
    path = lockdir / A
    path.touch()
    children: list[subprocess.Popen[str]] = []
    said: list[str] = []

    class InterruptedTwice(_opened_during_unlink(children)):  # type: ignore[misc]
        rounds = 0

        def handoffs_in_use(self, handoffs):  # type: ignore[no-untyped-def]
            if any("could not start a keeper" in line for line in said):
                self.rounds += 1
                if self.rounds == 1:
                    # the user, told why the wait goes on, presses Ctrl-C twice: the first is
                    # held back while the locks are ours, the second gives up the wait
                    os.kill(os.getpid(), signal.SIGINT)
                    os.kill(os.getpid(), signal.SIGINT)
                elif self.rounds == 200:  # not given up: let the old file's user go (the
                    _release(children)  # test fails below instead of hanging)
            return super().handoffs_in_use(handoffs)

    remover = InterruptedTwice(keeper=_NoKeeper(), handoff_wait=0.0, progress=said.append)
    try:
        with pytest.raises(KeyboardInterrupt):
            remover.remove([str(lockdir)], Policy())
        assert _readline(children[0]) == "locked"  # root holds the old inode, still working
        assert any(line.endswith(": gave up the handoff on request") for line in said), said
        assert path.exists() and not flock_held(path), "the given-up handoff's files are open"
    finally:
        _stop(*children)


def test_sigterm_while_locks_are_held_waits_for_the_batch_then_exits_143(lockdir: Path) -> None:
    """Kills `deferred_interrupts` leaving a default SIGTERM alone (`== SIG_DFL` inverted): a
    cleaner terminated while it holds its locks (here: just before its unlink) finishes the
    batch first, so no lock is dropped halfway through the protocol, then exits 143."""
    path = lockdir / A
    path.touch()
    code = _NOBODY_CLEANER.format(app=APP_DIR, directory=str(lockdir))
    cleaner = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        assert cleaner.stdin is not None
        assert _readline(cleaner) == "unlinking"
        cleaner.send_signal(signal.SIGTERM)  # (its handler runs, at the latest, right after
        time.sleep(0.2)  # the read below returns: still inside the batch)
        with contextlib.suppress(BrokenPipeError):  # a default SIGTERM ended it: fails below
            cleaner.stdin.write("\n")
            cleaner.stdin.flush()
        cleaner.wait(30)
    finally:
        _stop(cleaner)
    assert cleaner.returncode == 128 + signal.SIGTERM, cleaner.returncode
    assert not path.exists(), "the batch was not finished before the exit"


def test_the_keeper_never_logs_into_a_dir_another_user_owns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills `_log`'s `not S_ISDIR(...) or st_uid != euid` -> `and`: root with another user's
    XDG_STATE_HOME (sudo keeps it) writes no log into that user's dir."""
    need(os.geteuid() == 0, "root, to own a dir as another user")
    from uvsweep.remove.handoff import _log

    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    theirs = tmp_path / "state" / "uvsweep"
    theirs.mkdir(parents=True)
    os.chown(theirs, 65534, 65534)
    _log("a line")
    assert list(theirs.iterdir()) == []
    os.chown(theirs, 0, 0)
    _log("a line")  # (our own dir: logged)
    assert [p.name for p in theirs.iterdir()] == ["keeper.log"]
    fresh = tmp_path / "fresh"
    monkeypatch.setenv("XDG_STATE_HOME", str(fresh))
    _log("a line")  # a dir of our own made for it: nobody else may enter it
    assert ((fresh / "uvsweep").stat().st_mode & 0o777) == 0o700
    assert ((fresh / "uvsweep" / "keeper.log").stat().st_mode & 0o777) == 0o600


_TAKE_NOTHING = textwrap.dedent(
    """
    import resource, sys
    sys.path.insert(0, {app!r})
    from uvsweep.remove.handoff import Keeper

    resource.setrlimit(resource.RLIMIT_NPROC, ({nproc!r}, {nproc!r}))
    try:
        print("taken:", Keeper().take([], {{"platform": "linux"}}), flush=True)
    except OSError as err:
        print("not taken:", err, flush=True)
    """
)


def test_a_launcher_that_cannot_fork_the_keeper_is_a_clear_error(
    nobody: tuple[int, int, str],
) -> None:
    """Kills `Keeper.take`'s `except (IndexError, ValueError)` narrowed: when the launcher's
    shell cannot fork the keeper (a process limit reached: it then prints no pid), the cleaner
    gets an OSError it handles (it keeps its locks), never an IndexError traceback; and it says
    the launcher's status in one short line (run 5: the launcher run with `check=True` said
    "Command '[...]' returned non-zero exit status 2", the keeper's whole command line). Run
    as a uid of its own, so that the process count is exactly ours."""
    _uid, _gid, python = nobody
    uid = 4_000_123  # no other process on the machine runs as this uid
    code = _TAKE_NOTHING.format(app=APP_DIR, nproc=2)  # us and the shell
    done = subprocess.run(
        ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", python, "-c", code],
        capture_output=True, text=True, timeout=60, check=False, cwd="/",
    )  # fmt: skip
    said = done.stdout.strip()
    assert re.fullmatch(r"not taken: the keeper did not start \(status \d+\)", said), said


def test_a_cleaner_that_is_not_root_reads_the_lock_table_twice(
    lockdir: Path, tmp_path: Path
) -> None:
    """Kills `_read_table_once`'s `euid == 0` inverted: /proc/locks is read in pages, and a
    lock released meanwhile can make the kernel skip other lines; root sees every fd to make
    up for it, a cleaner that is not root does not, so it reads the table twice and takes
    both reads (a line missed twice running is much rarer). Root reads it once."""
    from uvsweep.probe.posix import Syscalls

    fake = _fake_proc(tmp_path)

    class CountingReads(Syscalls):
        reads = 0

        def read(self, path: str) -> bytes:
            if path == f"{fake}/locks":
                self.reads += 1
            return super().read(path)

    for euid, reads in ((0, 1), (65534, 2)):
        calls = CountingReads()
        remover = LinuxRemover(proc=str(fake), calls=calls)
        remover.euid = euid
        assert remover.lock_users([]) == {} and calls.reads == reads, (euid, calls.reads)


def test_without_the_lock_table_a_cleaner_that_is_not_root_cleans_only_private_dirs(
    tmp_path: Path,
) -> None:
    """Kills `blind_spot`'s `dir_is_private` inverted: with /proc/locks unreadable, a cleaner
    that is not root cannot see another user's waiter at all, so a dir others may enter is
    kept and only a dir no other user can enter is cleaned. Root sees every fd: no blind spot."""
    fake = _fake_proc(tmp_path)
    (fake / "locks").unlink()
    (fake / "locks").mkdir()  # reading it fails
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o1777)
    shared.chmod(0o1777)
    remover = LinuxRemover(proc=str(fake))
    remover.euid = 65534
    assert remover.lock_users([]) == {}  # the table was tried, and could not be read
    assert remover.blind_spot(str(private)) is None
    why = remover.blind_spot(str(shared))
    assert why is not None and why.startswith(f"{fake}/locks cannot be read"), why
    remover.euid = 0
    assert remover.blind_spot(str(shared)) is None
    # and a removal keeps the file for that reason (`kept_by_visibility(...) or blind_spot(...)`)
    (shared / A).touch()
    os.chown(shared / A, 65534, 65534)
    cleaner = LinuxRemover(proc=str(fake))
    cleaner.euid = 65534  # (its files: the owner the checks compare with)
    result = cleaner.remove([str(shared)], Policy())
    assert result.removed == [] and (shared / A).exists()
    ((state, reason),) = [(s.state, s.reason) for s in result.skipped]
    assert state is LockState.ORPHANED and reason.startswith(f"{fake}/locks cannot be read")


def test_another_users_file_is_kept_and_its_owner_named(lockdir: Path) -> None:
    """Kills `_owner`'s `user_name(uid) or str(uid)` -> `and`: another user's file is kept as
    `foreign`, naming its owner by name (by number only where the uid has no name)."""
    import pwd

    need(os.geteuid() == 0, "root, to give a file to another user")
    nobody = pwd.getpwnam("nobody")
    named = lockdir / A
    named.touch()
    os.chown(named, nobody.pw_uid, nobody.pw_gid)
    nameless = lockdir / "uv-00000000000000bb.lock"
    nameless.touch()
    os.chown(nameless, 4_000_123, 4_000_123)  # a uid with no user name
    result = LinuxRemover().remove([str(lockdir)], Policy())
    assert result.removed == [] and named.exists() and nameless.exists()
    reasons = [(s.state, s.reason.split(";")[0]) for s in result.skipped]
    assert reasons == [
        (LockState.FOREIGN, f"owned by {nobody.pw_name}"),
        (LockState.FOREIGN, "owned by 4000123"),
    ]


def test_a_file_of_the_same_name_open_in_another_dir_is_not_ours(
    lockdir: Path, tmp_path: Path
) -> None:
    """Kills `walk_fds`'s `key is not None and key in wanted` -> `or`: a process that has open
    a lock file of the same name in another dir is no user of ours (and no crash): our file
    is removed, the other stays."""
    from tests.conftest import child_with_file

    path = lockdir / A
    path.touch()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / A).touch()
    with child_with_file(elsewhere / A):
        result = LinuxRemover().remove([str(lockdir)], Policy())
    assert result.removed == [str(path)] and result.skipped == [] and result.errors == []
    assert (elsewhere / A).exists()


def test_a_keeper_lets_each_name_go_as_soon_as_its_old_file_is_free(lockdir: Path) -> None:
    """Kills `resume_handoff` losing the new file's fd (`new_fd` read as None): a keeper with
    two handoffs releases each name's new file once that name's old file is free, not when the
    last one is (uv waits on that lock meanwhile)."""

    first, second = lockdir / A, lockdir / "uv-00000000000000bb.lock"
    first.touch()
    second.touch()
    children: list[subprocess.Popen[str]] = []
    remover = _opened_during_unlink(children)(handoff_wait=0.0)
    keepers: list[int] = []
    try:
        result = remover.remove([str(lockdir)], Policy())
        keepers = result.keepers
        assert len(keepers) == 1 and result.handoffs == 2
        for child in children:  # each holds its old, unlinked inode now
            assert _readline(child) == "locked"
        assert flock_held(first) and flock_held(second)
        _release(children[:1])
        children[0].wait(30)  # (reaped: gone)
        deadline = time.monotonic() + 30
        while flock_held(first) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not flock_held(first), "the first name stays locked until the keeper is done"
        assert flock_held(second) and procs.alive(keepers[0])
        _release(children)
        wait_keepers_gone(keepers)
    finally:
        _stop(*children)
        for pid in keepers:
            if procs.alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_handoff_rides_out_a_round_it_cannot_read_and_a_name_it_cannot_open(
    lockdir: Path,
) -> None:
    """Kills `run`'s `except Exception` around the round's check narrowed, and
    `_next_generation`'s two `except OSError` narrowed: a round whose look at /proc fails keeps
    every lock (unknown is not unused), a dir that refuses a new file (full) and a name that
    refuses to open (a symlink planted there: ELOOP) are tried again next round. None of them
    ends the handoff, nor the run, with a traceback; the handoff completes."""
    import errno

    from uvsweep.probe.posix import OPEN_FLAGS, Syscalls

    path = lockdir / A
    path.touch()
    children: list[subprocess.Popen[str]] = []

    class PlantedAtTheName(Syscalls):
        armed = False
        full = True  # the first new file is refused: the file system is full
        refusals = 2

        def open(self, name, flags, mode=0o777, dir_fd=None):  # type: ignore[no-untyped-def]
            if self.armed and name == A and self.refusals > 0:
                if flags & os.O_CREAT and self.full:
                    self.full = False
                    raise OSError(errno.ENOSPC, "No space left on device")
                if flags & os.O_CREAT:
                    raise FileExistsError(errno.EEXIST, "File exists")
                if flags == OPEN_FLAGS:
                    self.refusals -= 1
                    raise OSError(errno.ELOOP, "Too many levels of symbolic links")
            return super().open(name, flags, mode, dir_fd=dir_fd)

    calls = PlantedAtTheName()

    class Troubled(_opened_during_unlink(children)):  # type: ignore[misc]
        failed = 0

        def unlink(self, target):  # type: ignore[no-untyped-def]
            no_lease_before_the_unlink(self, target)
            super().unlink(target)
            calls.armed = True

        def handoffs_in_use(self, handoffs):  # type: ignore[no-untyped-def]
            if self.failed == 0:
                self.failed += 1
                raise OSError(errno.EIO, "/proc could not be read")
            if calls.refusals == 0 and children and children[0].poll() is None:
                _release(children)  # the old file's user may be done now
            return super().handoffs_in_use(handoffs)

    try:
        result = Troubled(calls=calls, handoff_wait=60.0).remove([str(lockdir)], Policy())
    finally:
        _stop(*children)
    assert not calls.full and calls.refusals == 0
    assert result.handoffs == 1 and result.keepers == []
    assert result.removed == [] and path.exists() and not flock_held(path)


def test_a_held_file_whose_lock_line_has_an_unknown_device_names_its_holder(
    lockdir: Path, tmp_path: Path
) -> None:
    """Kills `busy_use`'s `self._table is None` inverted: a file our try-lock finds held, whose
    lock line the table printed with a device that cannot be told apart (so the check before
    the lock did not trust it), is kept naming the holder the table shows."""
    from tests.conftest import child_with_file

    path = lockdir / A
    path.touch()
    fake = _fake_proc(tmp_path)
    with child_with_file(path, lock=True) as holder:
        st = path.stat()
        device = f"{os.major(st.st_dev) + 1:02x}:{os.minor(st.st_dev):02x}"
        (fake / "locks").write_text(
            f"1: FLOCK  ADVISORY  WRITE {holder.pid} {device}:{st.st_ino} 0 EOF\n"
        )
        result = LinuxRemover(proc=str(fake)).remove([str(lockdir)], Policy())
    ((state, reason),) = [(s.state, s.reason) for s in result.skipped]
    assert state is LockState.HELD and f"pid {holder.pid}" in reason, reason


def test_the_signal_handlers_are_given_back_after_each_batch(lockdir: Path) -> None:
    """Kills `deferred_interrupts` not restoring the handlers (its loop never run): once a
    removal returns, Ctrl-C and SIGTERM act as before it (a tray or `watch` cleaning in its
    main thread would otherwise ignore Ctrl-C for the rest of its life)."""
    (lockdir / A).touch()
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    result = LinuxRemover().remove([str(lockdir)], Policy())
    assert result.removed == [str(lockdir / A)]
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before


def test_the_scanners_probe_gives_the_os_reason_for_a_file_it_cannot_open(lockdir: Path) -> None:
    """Kills `try_lock`'s `err.strerror or str(err)` -> `and`: a name the probe may not open
    (here a symlink planted after lstat: O_NOFOLLOW refuses it) is unreadable, with the OS's
    own words."""
    import errno

    from uvsweep.probe import LockProbe
    from uvsweep.probe.posix import try_lock

    (lockdir / A).symlink_to("/etc/hostname")
    dir_fd = os.open(lockdir, os.O_RDONLY)
    try:
        assert try_lock(dir_fd, A, 0, 0) == (LockProbe.UNREADABLE, os.strerror(errno.ELOOP))
    finally:
        os.close(dir_fd)


def test_scan_names_the_owner_of_another_users_file(lockdir: Path) -> None:
    """Kills the scanner's `owner_name`: `user_name(uid) or str(uid)` -> `and`."""
    import pwd

    from uvsweep.probe.linux import LinuxBackend

    need(os.geteuid() == 0, "root, to give a file to another user")
    nobody = pwd.getpwnam("nobody")
    (lockdir / A).touch()
    os.chown(lockdir / A, nobody.pw_uid, nobody.pw_gid)
    (found,) = LinuxBackend().probe([str(lockdir)]).files
    assert found.state is LockState.FOREIGN and found.owner == nobody.pw_name


# ---- survivors in probe/posix.py (the scanner) ---------------------------------------------------


def test_scan_sees_uv_holding_its_file_under_the_temp_name_it_linked_into_place(
    lockdir: Path,
) -> None:
    """Kills `opened_key`'s `endswith(DELETED) and base not in names` -> `or`: uv, on a file
    system without RENAME_NOREPLACE, links its `.tmpXXXXXX` file into place; until it unlinks
    the temp name its fd shows that live name, and the file (two links then) is open in uv."""
    from tests.conftest import child_with_file
    from uvsweep.probe.linux import LinuxBackend

    temp = lockdir / ".tmpAbC123"
    temp.touch()
    with child_with_file(temp) as uv:
        os.link(temp, lockdir / A)
        (found,) = LinuxBackend().probe([str(lockdir)]).files
    assert found.state is LockState.OPEN and [h.pid for h in found.openers] == [uv.pid]


def test_holders_are_listed_once_each_in_order() -> None:
    """Kills `holder_list`'s `continue` -> `break` after a pid seen before."""
    from uvsweep.probe.posix import holder_list
    from uvsweep.processes import ProcessTable

    me, gone = os.getpid(), 4_000_000  # (beyond any pid_max: an exited process)
    found = holder_list(ProcessTable(), [me, me, gone, me])
    assert [h.pid for h in found] == [me, gone]


def test_scan_drops_a_file_gone_before_its_lstat(
    lockdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills `observe`'s `except FileNotFoundError` narrowed: a file listed, then removed by
    someone else before its lstat, is simply not there (no error)."""
    from uvsweep.probe.linux import LinuxBackend

    b = "uv-00000000000000bb.lock"
    (lockdir / A).touch()
    (lockdir / b).touch()
    real_stat = os.stat

    def vanishing(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if path == A:
            raise FileNotFoundError(2, "No such file or directory")
        if path == b:
            raise PermissionError(13, "Permission denied")
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", vanishing)
    found = LinuxBackend().probe([str(lockdir)])
    monkeypatch.undo()
    # (and one that cannot be looked at is an error of its own, not the end of the scan:
    # `probe`'s `except OSError` around `observe`)
    assert found.files == []
    assert [(e.path, "Permission denied" in e.message) for e in found.errors] == [
        (str(lockdir / b), True)
    ]


def test_a_symlink_planted_at_the_name_during_a_handoff_is_never_followed(
    lockdir: Path, tmp_path: Path
) -> None:
    """Kills the new generation's `O_CREAT|O_EXCL|O_NOFOLLOW` losing `O_EXCL` and `O_NOFOLLOW`
    (`O_EXCL & O_NOFOLLOW`): a symlink someone plants at the name between our unlink and the
    next generation must never be opened, nor its target made 0666; the handoff waits until the
    name is free again, then makes its own file there."""
    path = lockdir / A
    path.touch()
    victim = tmp_path / "victim"
    victim.write_text("secret")
    victim.chmod(0o600)
    children: list[subprocess.Popen[str]] = []

    class Planted(_opened_during_unlink(children)):  # type: ignore[misc]
        rounds = 0

        def unlink(self, target):  # type: ignore[no-untyped-def]
            no_lease_before_the_unlink(self, target)
            super().unlink(target)
            path.symlink_to(victim)

        def handoffs_in_use(self, handoffs):  # type: ignore[no-untyped-def]
            self.rounds += 1
            if self.rounds == 3 and path.is_symlink():
                path.unlink()  # the name is free again
            elif self.rounds == 6:
                _release(children)  # the old file's user is done
            return super().handoffs_in_use(handoffs)

    try:
        result = Planted(handoff_wait=60.0).remove([str(lockdir)], Policy())
    finally:
        _stop(*children)
    assert (victim.stat().st_mode & 0o777) == 0o600, "the symlink's target was made 0666"
    assert victim.read_text() == "secret"
    assert result.handoffs == 1 and not path.is_symlink() and path.exists()


def test_a_dir_whose_listing_fails_after_its_open_is_an_error_and_the_scan_goes_on(
    lockdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills the scanner's `except OSError` around a dir's listing narrowed (`probe/posix.py`,
    `PosixBackend.probe`): the error escaped and the whole scan failed. The dir is a real one
    whose listing fails once it is open: `/proc/PID/fd` of a process that exits in between
    (ENOENT); the test only chooses the moment, by ending the process just before the listing."""
    from uvsweep.probe import posix
    from uvsweep.probe.linux import LinuxBackend

    (lockdir / A).touch()
    victim = subprocess.Popen(["sleep", "60"])
    listing = posix.uv_names

    def after_its_end(dir_fd: int) -> Iterator[str]:
        if victim.poll() is None:
            victim.kill()
            victim.wait()
        return listing(dir_fd)

    monkeypatch.setattr(posix, "uv_names", after_its_end)
    gone = f"/proc/{victim.pid}/fd"
    try:
        result = LinuxBackend().probe([gone, str(lockdir)])
    finally:
        victim.kill()
        victim.wait()
    assert [(e.path, e.message) for e in result.errors] == [(gone, "no such directory")]
    assert [(f.name, f.state) for f in result.files] == [(A, LockState.ORPHANED)]


def test_a_posix_dir_with_a_backslash_in_its_name_gives_its_files_slash_paths(
    tmp_path: Path,
) -> None:
    """Kills `entry_path`'s `"\\\\" in directory and "/" not in directory` -> `or`
    (`probe/__init__.py`): a POSIX dir whose name holds a backslash was taken for a Windows dir,
    and its files were reported (and removed, by `clean`) under a path that does not exist."""
    from uvsweep.probe.linux import LinuxBackend

    odd = tmp_path / "back\\slash"
    odd.mkdir()
    (odd / A).touch()
    (found,) = LinuxBackend().probe([str(odd)]).files
    assert found.path == f"{odd}/{A}" and os.path.exists(found.path)
    result = LinuxRemover().remove([str(odd)], Policy())
    assert result.removed == [f"{odd}/{A}"] and not (odd / A).exists()


def test_a_relative_dir_gives_its_files_slash_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills `entry_path`'s `"\\\\" in directory` -> `not "\\\\" in directory`: a relative
    POSIX dir (neither slash nor backslash in it) was taken for a Windows dir."""
    from uvsweep.probe.linux import LinuxBackend

    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / A).touch()
    monkeypatch.chdir(tmp_path)
    (found,) = LinuxBackend().probe(["plain"]).files
    assert found.path == f"plain/{A}"


def test_probing_named_files_looks_at_those_files_only(
    lockdir: Path, tmp_path: Path, hold: type[Holder]
) -> None:
    """Kills `PosixBackend.probe_files`' loop over its dirs run zero times (the watcher's probe
    of the files that changed found nothing), and its `continue` after a dir it cannot open
    made `break` (the dirs after it were never looked at). Each named file is observed and
    classified as a whole-dir scan would; a name that is gone or no uv lock name is left out; a
    dir that cannot be opened is an error."""
    from uvsweep.probe.linux import LinuxBackend

    other = tmp_path / "other"
    other.mkdir()
    (lockdir / A).touch()
    (lockdir / "uv-00000000000000ff.lock").touch()  # not asked for
    (other / A).touch()
    holder = hold(other / A)
    missing = str(tmp_path / "missing")
    result = LinuxBackend().probe_files([
        (missing, A), (str(lockdir), A), (str(lockdir), "uv-00000000000000ee.lock"),
        (str(lockdir), "notes"), (str(other), A),
    ])  # fmt: skip
    found = {(f.path, f.state) for f in result.files}
    assert found == {(f"{lockdir}/{A}", LockState.ORPHANED), (f"{other}/{A}", LockState.HELD)}
    (held,) = [f for f in result.files if f.state is LockState.HELD]
    assert [h.pid for h in held.holders] == [holder.pid]
    assert [(e.path, e.message) for e in result.errors] == [(missing, "no such directory")]


def test_the_removers_probe_of_a_file_it_keeps_is_shared(lockdir: Path, tmp_path: Path) -> None:
    """Kills `LOCK_SH = 1` -> `2` (`probe/posix.py`; the remover's `_probe_shared` then tries an
    exclusive lock): another scanner's shared probe of a file that stays for another reason
    (here, not empty) is no holder, so the file is odd, not `held` (the lock table unreadable:
    only the try-lock decides, as in `scan`)."""
    path = lockdir / A
    path.write_text("x")
    fake = _fake_proc(tmp_path)
    (fake / "locks").unlink()
    (fake / "locks").mkdir()
    code = (
        "import fcntl, os, sys, time\n"
        "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
        "fcntl.flock(fd, fcntl.LOCK_SH)\n"
        "print('ok', flush=True)\n"
        "time.sleep(60)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(path)], stdout=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        assert _readline(child) == "ok"
        result = LinuxRemover(proc=str(fake)).remove([str(lockdir)], Policy())
    finally:
        _stop(child)
    assert [(s.state, s.reason) for s in result.skipped] == [
        (LockState.SUSPICIOUS, "not empty (1 bytes)")
    ]


def test_the_scanners_probe_gives_the_os_reason_for_a_lock_it_cannot_try(
    lockdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills `try_lock`'s second `err.strerror or str(err)` -> `and` (a flock that fails for
    another reason than a holder, as NFS's ENOLCK): the reason is the OS's own words."""
    import errno
    import fcntl

    from uvsweep.probe import LockProbe, posix

    def no_locks(fd: int, operation: int) -> None:
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    (lockdir / A).touch()
    st = os.stat(lockdir / A)
    dir_fd = os.open(lockdir, os.O_RDONLY)
    try:
        with monkeypatch.context() as patch:
            patch.setattr(fcntl, "flock", no_locks)  # try_lock imports fcntl when it runs
            found = posix.try_lock(dir_fd, A, st.st_dev, st.st_ino)
    finally:
        os.close(dir_fd)
    assert found == (LockProbe.UNREADABLE, os.strerror(errno.ENOLCK))


def test_the_scanner_opens_only_regular_files_and_quietly_none_without_a_lock_line(
    lockdir: Path,
) -> None:
    """Kills `observe`'s `S_ISREG(st.st_mode) and self.probe_needed(st)` -> `or`: a FIFO named
    like a lock file was opened (an open that releases a writer blocked on it), and the quiet
    scan (the watcher's: its own opens would show up among the events it reacts to) opened a
    file no lock line names. `before_open` is the watcher's hook, called before each open."""
    from uvsweep.probe.linux import LinuxBackend

    (lockdir / A).touch()
    os.mkfifo(lockdir / C)
    backend = LinuxBackend()
    opened: list[str] = []
    backend.before_open = opened.append
    states = {f.name: f.state for f in backend.probe([str(lockdir)]).files}
    assert states == {A: LockState.ORPHANED, C: LockState.SUSPICIOUS}
    assert opened == [f"{lockdir}/{A}"]
    opened.clear()
    backend.quiet = True
    backend.probe([str(lockdir)])
    assert opened == []


def test_a_dir_that_cannot_be_opened_for_another_reason_says_so_in_the_os_words(
    tmp_path: Path,
) -> None:
    """Kills `dir_error_message`'s `err.strerror or str(err)` -> `and` (a symlink loop given as
    a dir: the message was Python's `[Errno 40] ...: path`, not the OS's words)."""
    import errno

    from uvsweep.probe.linux import LinuxBackend

    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    result = LinuxBackend().probe([str(loop)])
    assert [(e.path, e.message) for e in result.errors] == [(str(loop), os.strerror(errno.ELOOP))]


def test_a_keeper_that_has_a_file_open_without_its_lock_does_not_make_it_held() -> None:
    """Kills `classify`'s `obs.lock is LockProbe.HELD` -> `is not` (`held`): a keeper counts as
    the holder only of a file that is held (its lock taken from the cleaner that started it); a
    free file a keeper merely has open (its old file, say, once a new one took the name) is
    `open`, like any file open without a lock."""
    import stat

    from uvsweep.model import LockUser
    from uvsweep.probe import LockProbe, Observation, classify

    obs = Observation(
        directory="/tmp", name=A, mode=stat.S_IFREG | 0o644, size=0, nlink=1, mtime=0.0,
        dev=1, ino=2, uid=0, owner="root", mine=True, lock=LockProbe.FREE,
    )  # fmt: skip
    obs.openers = [LockUser(pid=77, name="uvsweep-keeper", user="root")]
    found = classify(obs)
    assert found.state is LockState.OPEN and [h.pid for h in found.holders] == []
    obs.lock = LockProbe.HELD
    found = classify(obs)
    assert found.state is LockState.HELD and [h.pid for h in found.holders] == [77]


def test_a_scan_goes_on_past_an_entry_it_cannot_look_at(lockdir: Path) -> None:
    """Kills `_observe_names`' `continue` after an entry's error made `break`: the entries
    listed after it were never looked at. (The first entry's lstat fails, as an EIO or, for a
    scanner that may not search the dir, EACCES would.)"""
    import errno

    from uvsweep.probe.linux import LinuxBackend

    names = [f"uv-00000000000000{n}{n}.lock" for n in "abc"]
    for name in names:
        (lockdir / name).touch()
    refused: list[str] = []

    class FirstRefused(LinuxBackend):
        def observe(self, directory: str, dir_fd: int, name: str):  # type: ignore[no-untyped-def]
            if not refused:
                refused.append(name)
                raise OSError(errno.EIO, os.strerror(errno.EIO))
            return super().observe(directory, dir_fd, name)

    result = FirstRefused().probe([str(lockdir)])
    assert [e.path for e in result.errors] == [f"{lockdir}/{refused[0]}"]
    assert sorted(f.name for f in result.files) == sorted(set(names) - set(refused))


def test_a_dir_read_as_a_stream_gives_the_names_a_listing_at_once_gives(
    lockdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills, in `uv_names`' stream (a dir too big to list at once, or whose size says nothing),
    `entry.name.startswith("uv-")` negated and the loop run zero times. The stream is had with
    `LIST_AT_ONCE` at 0 (every dir too big); the names must be those of the listing at once, so
    which of the two reads a dir only changes its cost (MUTATION.md counts the mutants of that
    choice as equivalent)."""
    from uvsweep.probe import posix
    from uvsweep.probe.linux import LinuxBackend

    wanted = [A, C, "uv-0000000000000dd.lock", "uv-cache"]  # any name starting "uv-"
    for name in [*wanted, "uvx-00000000000000aa.lock", "notes", "a-uv-00000000000000ee.lock"]:
        (lockdir / name).touch()

    def names_and_files() -> tuple[list[str], list[str]]:
        dir_fd = os.open(lockdir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            names = sorted(posix.uv_names(dir_fd))
        finally:
            os.close(dir_fd)
        return names, sorted(f.name for f in LinuxBackend().probe([str(lockdir)]).files)

    at_once = names_and_files()
    monkeypatch.setattr(posix, "LIST_AT_ONCE", 0)
    assert names_and_files() == at_once == (sorted(wanted), [A, C])


def test_a_lock_table_that_never_shows_our_own_lock_keeps_the_file(
    lockdir: Path, tmp_path: Path
) -> None:
    """Kills `LockTable.unseen`'s `not self.complete` -> `self.complete` (`probe/linux.py`): the
    reads of `/proc/locks` never showed our own lock on the file we hold (here a /proc whose
    `locks` stays empty; in life, a record the kernel skipped while other locks came and
    went), so whoever waits behind it went unseen too, and the file must stay."""
    (lockdir / A).touch()
    fake = _fake_proc(tmp_path)
    # (without leases: a lease granted says nobody waits, whatever the table shows or skips)
    result = LinuxRemover(proc=str(fake), calls=_NoLeases()).remove([str(lockdir)], Policy())
    assert result.removed == [] and (lockdir / A).exists()
    assert [s.state for s in result.skipped] == [LockState.WAITING]


def test_a_lock_table_that_fails_after_it_was_read_leaves_old_files_in_use(
    lockdir: Path, tmp_path: Path
) -> None:
    """Kills `waiting_behind_us`' `if self._table_ever_read` with `not` added (`remove/posix.py`):
    a `/proc/locks` that was readable a moment ago and now fails says nothing about who waits
    behind our lock on an old file, so every such handoff stays in use; one that was never
    readable leaves the decision to the rule for such runs (private dirs only) and names none."""
    from uvsweep.remove.handoff import Handoff

    path = lockdir / A
    path.touch()
    st = os.stat(path)
    dir_fd = os.open(lockdir, os.O_RDONLY | os.O_DIRECTORY)
    old_fd = os.open(path, os.O_RDWR)
    try:
        outcomes = []
        for readable_first in (False, True):
            (tmp_path / str(readable_first)).mkdir()
            fake = _fake_proc(tmp_path / str(readable_first))
            remover = LinuxRemover(proc=str(fake))
            if readable_first:
                assert remover.lock_users([]) == {}  # a read that works
            (fake / "locks").unlink()
            (fake / "locks").mkdir()  # from now on every read fails (EISDIR)
            handoff = Handoff(
                remover.calls, dir_fd, str(lockdir), A, old_fd, (st.st_dev, st.st_ino),
                lambda _handoff: False,
            )  # fmt: skip
            outcomes.append(remover.waiting_behind_us([handoff]) == {handoff})
        assert outcomes == [False, True]
    finally:
        os.close(old_fd)
        os.close(dir_fd)


def test_a_check_cut_short_never_leaves_an_old_file_locked_by_us(lockdir: Path) -> None:
    """Kills `confirm_in_use`'s `except BaseException` narrowed (`remove/posix.py`): when the
    check of who waits behind our confirming lock is cut short (Ctrl-C, an error), every old
    file we had just locked counts as in use and is unlocked at once, so a waiter queued behind
    us is not kept waiting by a lock nobody will look at until the next round."""
    import fcntl

    from uvsweep.remove.handoff import NEW, Handoff

    path = lockdir / A
    path.touch()
    st = os.stat(path)

    class CutShort(LinuxRemover):
        def waiting_behind_us(self, handoffs):  # type: ignore[no-untyped-def]
            raise KeyboardInterrupt

    remover = CutShort()
    dir_fd = os.open(lockdir, os.O_RDONLY | os.O_DIRECTORY)
    old_fd = os.open(path, os.O_RDWR)
    try:
        handoff = Handoff(
            remover.calls, dir_fd, str(lockdir), A, old_fd, (st.st_dev, st.st_ino),
            lambda _handoff: False,
        )  # fmt: skip
        handoff.state = NEW
        with pytest.raises(KeyboardInterrupt):
            remover.confirm_in_use([handoff])
        other = os.open(path, os.O_RDWR)  # another open file description: another locker
        try:
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # fails if we still hold it
        finally:
            os.close(other)
    finally:
        os.close(old_fd)
        os.close(dir_fd)


def test_the_lock_table_is_read_until_our_own_records_show_and_no_longer(lockdir: Path) -> None:
    """Kills `_read_table_once`'s `anchored`: `len(own.get(ino, ())) >= count` -> `>` (never
    satisfied: every check read `/proc/locks` `ANCHORED_READS` times, and called the read
    incomplete). Root's removal of one free file sees its own lock record in the first read or,
    if the kernel skipped it while other locks came and went, in one of the next few."""
    from uvsweep.probe.linux import ANCHORED_READS

    (lockdir / A).touch()

    class CountingReads(_NoLeases):  # (without leases: the table is read for the file)
        reads: list[int]

        def read(self, path: str) -> bytes:
            if path == "/proc/locks":
                self.reads[-1] += 1
            return super().read(path)

    calls = CountingReads()
    calls.reads = [0]

    class Counted(LinuxRemover):
        def lock_users(self, targets):  # type: ignore[no-untyped-def]
            calls.reads.append(0)  # the reads of this check alone
            return super().lock_users(targets)

    remover = Counted(calls=calls)
    remover.euid = 0
    result = remover.remove([str(lockdir)], Policy())
    assert result.removed == [str(lockdir / A)]
    checks = calls.reads[1:]
    assert checks and all(0 < reads < ANCHORED_READS // 2 for reads in checks), calls.reads


def test_an_incomplete_lock_table_holds_back_only_the_handoffs_whose_record_is_missing(
    lockdir: Path, tmp_path: Path
) -> None:
    """Kills `handoffs_in_use`' `table.unseen(handoff.old_key[1])` -> `old_key[0]` (the device
    asked for as an inode: every handoff still holding its old file counted as unseen whenever
    any record was missing), and `holding and table.unseen(...)` with `not` added (a handoff
    whose record is missing counted free). Two handoffs hold their old files; the reads show
    our own record of the first only: the second stays in use, the first does not."""
    from uvsweep.remove.handoff import Handoff

    fake = _fake_proc(tmp_path)
    remover = LinuxRemover(proc=str(fake))
    dir_fd = os.open(lockdir, os.O_RDONLY | os.O_DIRECTORY)
    fds: list[int] = []
    handoffs = []
    try:
        for name in (A, C):
            (lockdir / name).touch()
            fds.append(os.open(lockdir / name, os.O_RDWR))
            st = os.stat(lockdir / name)
            handoffs.append(
                Handoff(
                    remover.calls,
                    dir_fd,
                    str(lockdir),
                    name,
                    fds[-1],
                    (st.st_dev, st.st_ino),
                    lambda _handoff: False,
                )
            )
        st = os.stat(lockdir / A)
        device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}"
        (fake / "locks").write_text(
            f"1: FLOCK  ADVISORY  WRITE {remover.own_pid} {device}:{st.st_ino} 0 EOF\n"
        )
        assert remover.handoffs_in_use(handoffs) == {handoffs[1]}
        # the same when the old files are ours (NEW, `waiting_behind_us`): kills its
        # `table.unseen(handoff.old_key[1])` -> `old_key[0]`
        assert remover.waiting_behind_us(handoffs) == {handoffs[1]}
    finally:
        for fd in fds:
            os.close(fd)
        os.close(dir_fd)


def test_each_handoff_whose_old_file_someone_holds_is_confirmed_in_use(
    lockdir: Path, hold: type[Holder]
) -> None:
    """Kills, in `confirm_in_use`, the `continue` after a handoff not in `NEW` and the one after
    a failed try-lock made `break` (the handoffs after it were never tried, so counted free),
    and the try-lock's `except OSError` narrowed (a held file raised out of the check). Three
    handoffs: one still in `OLD`, then two in `NEW` whose old files other processes hold."""
    from uvsweep.remove.handoff import NEW, Handoff

    remover = LinuxRemover()
    dir_fd = os.open(lockdir, os.O_RDONLY | os.O_DIRECTORY)
    fds: list[int] = []
    handoffs = []
    try:
        for name in (A, "uv-00000000000000bb.lock", C):
            (lockdir / name).touch()
            fds.append(os.open(lockdir / name, os.O_RDWR))
            st = os.stat(lockdir / name)
            handoffs.append(
                Handoff(
                    remover.calls,
                    dir_fd,
                    str(lockdir),
                    name,
                    fds[-1],
                    (st.st_dev, st.st_ino),
                    lambda _handoff: False,
                )
            )
        for handoff in handoffs[1:]:
            handoff.state = NEW
            hold(lockdir / handoff.name)
        assert remover.confirm_in_use(handoffs) == set(handoffs[1:])
    finally:
        for fd in fds:
            os.close(fd)
        os.close(dir_fd)


def test_a_process_whose_fds_cannot_be_listed_for_want_of_fds_keeps_the_handoff(
    lockdir: Path,
) -> None:
    """Found through a kill of a provably equivalent mutant (`reads=0` for `reads=1`): the
    red-team test under `prlimit --nofile=10` once saw two holders at once. Here the fd walk's
    listing of the opener's fd dir fails with EMFILE, as it does at the fd limit. (It was a
    strict xfail: `walk_fds` took that for the process's exit, and the handoff ended.)"""
    import errno

    from tests.conftest import child_with_file
    from uvsweep.probe.posix import Syscalls
    from uvsweep.remove.handoff import Handoff

    path = lockdir / A
    path.touch()
    st = os.stat(path)
    with child_with_file(path) as opener:

        class NoFds(Syscalls):
            def list_dir(self, where: int | str) -> list[str]:
                if where == f"/proc/{opener.pid}/fd":
                    raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))
                return super().list_dir(where)

        remover = LinuxRemover(calls=NoFds())
        dir_fd = os.open(lockdir, os.O_RDONLY | os.O_DIRECTORY)
        old_fd = os.open(path, os.O_RDWR)
        try:
            import fcntl

            fcntl.flock(old_fd, fcntl.LOCK_EX)  # the handoff holds its old file (OLD)
            handoff = Handoff(
                remover.calls, dir_fd, str(lockdir), A, old_fd, (st.st_dev, st.st_ino),
                lambda _handoff: False,
            )  # fmt: skip
            assert remover.handoffs_in_use([handoff]) == {handoff}
        finally:
            os.close(old_fd)
            os.close(dir_fd)


def test_an_old_file_whose_openers_fds_cannot_be_listed_for_want_of_fds_is_in_use(
    lockdir: Path,
) -> None:
    """Kills `LinuxRemover.old_in_use`'s `except OSError` narrowed (run 6): the one-file look
    says "in use" when a process's fds cannot be listed (EMFILE, at the fd limit), as
    `handoffs_in_use` does, and never raises out of a handoff's step."""
    import errno

    from tests.conftest import child_with_file
    from uvsweep.probe.posix import Syscalls

    path = lockdir / A
    path.touch()
    st = os.stat(path)
    with child_with_file(path) as opener:

        class NoFds(Syscalls):
            def list_dir(self, where: int | str) -> list[str]:
                if where == f"/proc/{opener.pid}/fd":
                    raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))
                return super().list_dir(where)

        assert LinuxRemover(calls=NoFds()).old_in_use(st.st_dev, st.st_ino, str(path)) is True
        # and, its fds listed, the opener is what makes it so
        assert LinuxRemover().old_in_use(st.st_dev, st.st_ino, str(path)) is True
    assert LinuxRemover().old_in_use(st.st_dev, st.st_ino, str(path)) is False


def test_a_file_kept_because_the_fd_walk_failed_names_no_process(lockdir: Path) -> None:
    """Kills `open_users`' pid `[0]` -> `[1]` for a walk that fails, and its `except OSError`
    narrowed (run 6): when a process's fds cannot be listed (EMFILE, at the fd limit), each
    file of the batch is kept as open by a process nobody can name, never by pid 1 (init; the
    suite itself in a PID namespace), and the removal goes on."""
    import errno

    from tests.conftest import child_with_file
    from uvsweep.probe.posix import Syscalls

    path = lockdir / A
    path.touch()
    with child_with_file(path) as opener:

        class NoFds(Syscalls):
            def list_dir(self, where: int | str) -> list[str]:
                if where == f"/proc/{opener.pid}/fd":
                    raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))
                return super().list_dir(where)

        result = LinuxRemover(calls=NoFds()).remove([str(lockdir)], Policy())
    assert result.removed == [] and path.exists()
    assert [s.state for s in result.skipped] == [LockState.OPEN]
    assert result.skipped[0].reason.endswith(": a process the OS does not show"), result.skipped


#: A process with a POSIX (fcntl) read lock on a file: not uv's kind of lock, and one that
#: coexists with our flock on it.
_POSIX_LOCKER = (
    "import fcntl, os, sys, time\n"
    "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
    "fcntl.lockf(fd, fcntl.LOCK_SH)\n"
    "print('ok', flush=True)\n"
    "time.sleep(60)\n"
)


def test_a_handoff_still_holding_its_old_file_keeps_its_lock_beside_a_posix_lock(
    lockdir: Path,
) -> None:
    """Kills `handoffs_in_use`' unlock `... and any(not e.waiting ...)` -> `or any(...)` (run
    6): only a NEW handoff's old description is unlocked there. In OLD our flock is what keeps
    the latecomer off the old inode; a process's POSIX lock on that inode (a holder in the
    table beside our flock) must not make us drop it, least of all while a new uv holds the
    name and the next generation cannot be had."""
    from tests.conftest import child_with_file

    path = lockdir / A
    old_fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    fcntl.flock(old_fd, fcntl.LOCK_EX)
    st = os.fstat(old_fd)
    dir_fd = os.open(lockdir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    posix = procs.popen([sys.executable, "-c", _POSIX_LOCKER, str(path)],
                        stdout=subprocess.PIPE, text=True, lasting=True)  # fmt: skip
    try:
        assert _readline(posix) == "ok"
        with child_with_file(path, write=False) as latecomer:  # opened, not locked yet
            os.unlink(path)
            path.touch()
            with child_with_file(path, lock=True):  # a new uv made the name and holds it
                remover = LinuxRemover()
                handoff = Handoff(
                    Syscalls(), dir_fd, str(lockdir), A, old_fd, (st.st_dev, st.st_ino),
                    remover._handoff_in_use,
                )  # fmt: skip
                handoff.warn = lambda _message: None
                assert not handoff.step()  # in use; no next generation to be had: OLD
                assert handoff.state != NEW and handoff.old_fd == old_fd
                link = f"/proc/{latecomer.pid}/fd"
                opened = [
                    f"{link}/{fd}" for fd in os.listdir(link)
                    if os.readlink(f"{link}/{fd}").endswith(f"/{A} (deleted)")
                ]  # fmt: skip
                assert len(opened) == 1
                # the latecomer's turn must not come while the new uv holds the name
                assert flock_held(Path(opened[0])), "the old inode left unlocked in OLD"
    finally:
        _stop(posix)
        os.close(old_fd)
        os.close(dir_fd)


def test_a_handoff_still_holding_its_old_file_reads_the_table_until_its_record_shows(
    lockdir: Path, tmp_path: Path
) -> None:
    """Kills `handoffs_in_use`' anchors `if h.state == OLD` -> `!= OLD`: the old files we still
    hold are the records the table must show (a waiter is printed behind the lock it waits
    for). Here the first read misses our record and the waiter behind it, as when the kernel
    skips a record while other locks come and go; the second shows both: the waiter keeps the
    handoff in use."""
    from uvsweep.probe.posix import Syscalls
    from uvsweep.remove.handoff import Handoff

    path = lockdir / A
    path.touch()
    st = os.stat(path)
    fake = _fake_proc(tmp_path)
    device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"

    class SkippedOnce(Syscalls):
        reads = 0

        def read(self, path: str) -> bytes:
            if path != f"{fake}/locks":
                return super().read(path)
            self.reads += 1
            if self.reads == 1:
                return b""
            own = remover.own_pid
            return (
                f"1: FLOCK  ADVISORY  WRITE {own} {device} 0 EOF\n"
                f"1: -> FLOCK  ADVISORY  WRITE 4242 {device} 0 EOF\n"
            ).encode()

    remover = LinuxRemover(proc=str(fake), calls=SkippedOnce())
    dir_fd = os.open(lockdir, os.O_RDONLY | os.O_DIRECTORY)
    old_fd = os.open(path, os.O_RDWR)
    try:
        handoff = Handoff(
            remover.calls, dir_fd, str(lockdir), A, old_fd, (st.st_dev, st.st_ino),
            lambda _handoff: False,
        )  # fmt: skip
        assert remover.handoffs_in_use([handoff]) == {handoff}
    finally:
        os.close(old_fd)
        os.close(dir_fd)


def test_a_handoff_still_holding_its_old_file_is_never_confirmed_and_keeps_its_lock(
    lockdir: Path, hold: type[Holder]
) -> None:
    """Kills `confirm_in_use`'s `handoff.state != NEW or handoff.old_fd is None` -> `and`: a
    handoff still in `OLD` (its old file locked by us) was try-locked again and, with a waiter
    behind it, unlocked: the waiter took the old inode while the handoff still counted on it."""
    import fcntl

    from uvsweep.remove.handoff import Handoff

    path = lockdir / A
    path.touch()
    st = os.stat(path)
    remover = LinuxRemover()
    dir_fd = os.open(lockdir, os.O_RDONLY | os.O_DIRECTORY)
    old_fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(old_fd, fcntl.LOCK_EX)  # OLD: the handoff holds its old file
        handoff = Handoff(
            remover.calls, dir_fd, str(lockdir), A, old_fd, (st.st_dev, st.st_ino),
            lambda _handoff: False,
        )  # fmt: skip
        waiter = hold(path, wait=True)  # queued behind our lock
        assert remover.confirm_in_use([handoff]) == set()
        time.sleep(0.3)  # a waiter let go would have its lock by now
        assert waiter.proc.poll() is None and not _locked_by(waiter)
    finally:
        os.close(old_fd)
        os.close(dir_fd)


def _locked_by(waiter: Holder) -> bool:
    """Whether a `Holder` started with `wait=True` has said it got its lock."""
    assert waiter.proc.stdout is not None
    ready, _, _ = select.select([waiter.proc.stdout], [], [], 0)
    return bool(ready) and waiter.proc.stdout.readline().strip() == "locked"
