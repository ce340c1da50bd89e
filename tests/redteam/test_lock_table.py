"""Red team: one read of `/proc/locks` is not one snapshot (it was R16).

`/proc/locks` is a seq_file: each read() call fills about a page and re-finds its place by
*position*, so a big table (a cleaner's own batch holds up to 1,024 locks: ~46 KB) takes several
calls, and a lock released anywhere in the system between two of them shifts the positions: a
record the reader has not printed yet is skipped, *with its whole tree of waiters* (a lock and
the processes waiting behind it are printed by one call, so they come or go together).

No reader can make the whole table a snapshot. What the remover needs is narrower, and that it
gets: every waiter of a file *we* hold (our own record is an anchor the table is read again for,
until it shows), and a handoff that never ends while anyone holds the old file, whatever the
tables miss (our own try-lock decides at the end). Both tests failed on the code before the fix.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests.redteam.support import stop
from uvsweep.model import CleanResult
from uvsweep.probe.linux import read_locks
from uvsweep.probe.posix import LOCK_EX, LOCK_NB, Syscalls
from uvsweep.remove import Policy
from uvsweep.remove.handoff import DONE, NEW, Handoff
from uvsweep.remove.handoff import run as run_handoffs
from uvsweep.remove.posix import LinuxRemover

pytestmark = [
    pytest.mark.linux,
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc"),
]

#: A lock taken and dropped all the time: any program that does (sqlite, uv, cron...).
_CHURN = textwrap.dedent(
    """
    import fcntl, os, sys
    fd = os.open(sys.argv[1] + "/churn", os.O_RDWR | os.O_CREAT, 0o666)
    print("go", flush=True)
    while True:
        fcntl.flock(fd, fcntl.LOCK_EX)
        fcntl.flock(fd, fcntl.LOCK_UN)
    """
)

#: One process, one thread blocked in flock() on each file named: a waiter behind each of
#: the cleaner's locks (/proc/locks prints each as "-> FLOCK ... <pid> ...").
_WAIT_ON_EACH = textwrap.dedent(
    """
    import fcntl, os, sys, threading, time
    def wait(path):
        fd = os.open(path, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_EX)
        time.sleep(600)
    for path in sys.argv[1:]:
        threading.Thread(target=wait, args=(path,), daemon=True).start()
    print("started", flush=True)
    time.sleep(600)
    """
)


def _start(code: str, *args: str) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", code, *args], stdout=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    assert child.stdout is not None
    child.stdout.readline()
    return child


def _waiters_of(pid: int) -> int:
    return sum(e.pid == pid and e.waiting for es in read_locks().values() for e in es)


def test_every_waiter_behind_our_locks_is_seen_while_other_locks_churn(tmp_path: Path) -> None:
    """1,000 files held by the cleaner, a waiter behind 200 of them, and a lock churning
    elsewhere: every check of the batch names all 200 (before the fix, reads that missed some
    were common: a missed waiter is a file unlinked under a uv that is about to lock it)."""
    work = tmp_path / "locks"
    work.mkdir()
    names = [f"uv-{index:016x}.lock" for index in range(1000)]
    for name in names:
        (work / name).touch()
    remover = LinuxRemover()
    result = CleanResult()
    dir_fd, listed = remover.listing(str(work))
    waiter = churn = None
    try:
        remover.begin_batch()
        targets = [
            t for name in sorted(listed)
            if (t := remover.acquire(dir_fd, str(work), name, Policy(), result)) is not None
        ]  # fmt: skip
        assert len(targets) == 1000, result.errors
        waited = targets[::5]
        waiter = _start(_WAIT_ON_EACH, *(t.path for t in waited))
        deadline = time.monotonic() + 30
        while _waiters_of(waiter.pid) < len(waited):  # each seen at least once: all queued
            assert time.monotonic() < deadline, "the waiters never queued"
            time.sleep(0.05)
        churn = _start(_CHURN, str(tmp_path))
        for attempt in range(60):
            found = remover.lock_users(targets)
            missed = [t.path for t in waited if t not in found]
            assert not missed, f"check {attempt}: {len(missed)} waiters unseen"
            assert set(found) == set(waited)
            assert all(found[t].holders[0].pid == waiter.pid for t in waited)
        for target in targets:
            remover.release(target)
    finally:
        stop(churn)
        stop(waiter)
        remover.close_dir(dir_fd)


def _tear_down(
    late: subprocess.Popen[str], handoff: Handoff | None, old_fd: int, dir_fd: int
) -> None:
    stop(late)
    if handoff is not None:
        handoff.close()  # the old file's fd with it
    else:
        os.close(old_fd)
    os.close(dir_fd)


class _Blindfold(Syscalls):
    """The OS as a cleaner sees it when one process is invisible to it (another user's uv,
    for a cleaner that is not root): neither its fds nor its lock-table lines."""

    def __init__(self, hidden: int) -> None:
        self.hidden = hidden

    def list_dir(self, path: str) -> list[str]:
        return [entry for entry in super().list_dir(path) if entry != str(self.hidden)]

    def read(self, path: str) -> bytes:
        text = super().read(path)
        if not path.endswith("/locks"):
            return text
        mark = f" {self.hidden} ".encode()
        return b"".join(line for line in text.splitlines(True) if mark not in line)


_LOCK_OLD = textwrap.dedent(
    """
    import fcntl, os, sys, time
    fd = os.open(sys.argv[1], os.O_RDONLY)
    print("opened", flush=True)
    fcntl.flock(fd, fcntl.LOCK_EX)   # behind the cleaner's lock on the old file
    open(sys.argv[2], "w").close()   # now it holds the old file: its critical section
    time.sleep(600)
    """
)


def test_a_handoff_never_ends_while_someone_the_tables_miss_holds_the_old_file(
    tmp_path: Path,
) -> None:
    """A latecomer holds the old, unlinked file's lock, and the lock table and the fd walk
    both miss it (a skipped record, another user's process): the new file at the name must
    stay locked until it lets go. Before the fix the handoff ended on the tables' word."""
    path = tmp_path / "uv-00000000000000aa.lock"
    path.touch()
    dir_fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    old_fd = os.open(path, os.O_RDONLY)
    fcntl.flock(old_fd, fcntl.LOCK_EX)
    st = os.fstat(old_fd)
    holding = tmp_path / "holding"
    late = _start(_LOCK_OLD, str(path), str(holding))
    handoff: Handoff | None = None
    try:
        os.unlink(path)  # the cleaner's unlink; the latecomer had opened it just before
        remover = LinuxRemover(calls=_Blindfold(late.pid))
        handoff = Handoff(
            remover.calls, dir_fd, str(tmp_path), path.name, old_fd, (st.st_dev, st.st_ino),
            lambda h: remover.old_in_use(*h.old_key, h.path),
        )  # fmt: skip
        # OLD -> NEW: the next generation is ours, the old lock goes to the latecomer (the
        # cleaner saw it by its open fd, as root would: the first round says "used")
        assert handoff.step(used=True) is False
        assert handoff.state == NEW
        deadline = time.monotonic() + 20
        while not holding.exists():
            assert time.monotonic() < deadline, "the latecomer never got the old lock"
            time.sleep(0.01)
        left = run_handoffs([handoff], remover.calls, wait=1.0, check=remover.handoffs_in_use)
        assert left == [handoff] and handoff.state == NEW, "the name was freed under a holder"
        probe = os.open(tmp_path / path.name, os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):  # a new uv still waits at the name
                fcntl.flock(probe, LOCK_EX | LOCK_NB)
        finally:
            os.close(probe)
        stop(late)  # done: the old file is let go
        left = run_handoffs([handoff], remover.calls, wait=5.0, check=remover.handoffs_in_use)
        assert left == [] and handoff.state == DONE
    finally:
        _tear_down(late, handoff, old_fd, dir_fd)


class _FdsHidden(Syscalls):
    """A process whose fds the cleaner cannot read (another user's, for a cleaner that is not
    root), though its lock-table lines show; and a hook on our own try-lock of the old file.
    No lease can be taken, so the kernel cannot say who has a file open."""

    def __init__(self, hidden: int, old_fd: int, on_confirm: object) -> None:
        self.hidden, self.old_fd, self.on_confirm, self.confirms = hidden, old_fd, on_confirm, 0

    def list_dir(self, path: str) -> list[str]:
        return [entry for entry in super().list_dir(path) if entry != str(self.hidden)]

    def alone(self, fd: int) -> bool | None:
        return None  # no lease to ask (NFS, say): the lock table and our try-lock decide

    def flock(self, fd: int, operation: int) -> None:
        super().flock(fd, operation)
        if fd == self.old_fd and operation == LOCK_EX | LOCK_NB and self.confirms == 0:
            self.confirms += 1
            self.on_confirm()  # type: ignore[operator]


_WAIT_WHEN_TOLD = textwrap.dedent(
    """
    import fcntl, os, sys, time
    fd = os.open(sys.argv[1], os.O_RDONLY)
    print("opened", flush=True)
    sys.stdin.readline()
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("locked", flush=True)
    time.sleep(600)
    """
)


def test_a_waiter_that_queues_behind_our_confirming_lock_keeps_the_handoff_going(
    tmp_path: Path,
) -> None:
    """The handoff's last round takes the old file's lock itself; a latecomer whose fds are
    hidden queues behind it right then. Only the lock table shows it, behind our own record:
    the handoff must see it, follow it, and let it have the old file before it ends."""
    path = tmp_path / "uv-00000000000000aa.lock"
    path.touch()
    dir_fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    old_fd = os.open(path, os.O_RDONLY)
    fcntl.flock(old_fd, fcntl.LOCK_EX)
    st = os.fstat(old_fd)
    late = subprocess.Popen(
        [sys.executable, "-c", _WAIT_WHEN_TOLD, str(path)], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    assert late.stdin is not None and late.stdout is not None
    assert late.stdout.readline() == "opened\n"
    handoff: Handoff | None = None

    def queue_behind_us() -> None:
        assert late.stdin is not None
        late.stdin.write("go\n")
        late.stdin.flush()
        deadline = time.monotonic() + 20
        while _waiters_of(late.pid) == 0:
            assert time.monotonic() < deadline, "the latecomer never queued"
            time.sleep(0.01)

    try:
        os.unlink(path)
        remover = LinuxRemover(calls=_FdsHidden(late.pid, old_fd, queue_behind_us))
        handoff = Handoff(
            remover.calls, dir_fd, str(tmp_path), path.name, old_fd, (st.st_dev, st.st_ino),
            lambda h: remover.old_in_use(*h.old_key, h.path),
        )  # fmt: skip
        assert handoff.step(used=True) is False and handoff.state == NEW
        # nothing uses the old file as far as the tables tell: the confirming lock decides
        assert remover.handoffs_in_use([handoff]) == {handoff}
        assert late.pid in handoff.followed
        assert late.stdout.readline() == "locked\n"  # it got the old file once we let go
        assert run_handoffs([handoff], remover.calls, wait=0.5, check=remover.handoffs_in_use)
        assert handoff.state == NEW, "the name was freed while the latecomer held the old file"
        stop(late)
        assert not run_handoffs([handoff], remover.calls, wait=5, check=remover.handoffs_in_use)
        assert handoff.state == DONE
    finally:
        _tear_down(late, handoff, old_fd, dir_fd)
