"""Red team, fourth review: waiters and openers the fd walk cannot see, and the lock table.

`76cf5fc` (on a branch, never merged) let the check before the unlink skip `/proc/locks` when
root's walk of `/proc/*/fd` found none of a batch's files open: "a waiter has the file open, so
the walk would have found it; what only the table shows is handed over after the unlink". These
tests broke that (B1, B3, B4, B6: two holders), and the skip was dropped; they now guard the
table read before the unlink. B2 and B5 are gaps of the walk itself, older than the skip, open
(strict xfails): an opener between its open and its flock that the walk cannot see.

Every test runs a real cleaner process (`LinuxRemover.remove`, real flock, real `/proc`) that
stops at four points for the test: holding its batch before its look before the unlink
(`holding`: `users_before_unlink`, before it takes the batch's write leases, so a process the
test starts there has the file open before the lease is asked, as one before the cleaner's
lock would), before its `changed` look at each file it found unused (`checked`: the walk is
over), before its `users` call on unlinked files (`rechecking`) and before the handoffs run
(`handing`). When the table shows a waiter, the cleaner never gets past `holding`:
it keeps the file (`result` comes next). The "uv" processes are small scripts that lock as uv
does (an exclusive flock on the lock file, blocking). Two holders: a process that has taken the
flock it asked for while a new uv at the name takes the file there (two critical sections).
"""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests import procs
from tests.conftest import need, other_user_python
from tests.helpers import A
from tests.redteam.support import (
    LINUX_REAL,
    NO_PTRACE,
    PREEMPTED,
    Child,
    ScriptedCleaner,
    keepers_end,
    lease_breaking,
    links_to,
    lock_file,
    new_uv_locks,
    wait_for,
)
from uvsweep.model import CleanResult, LockState
from uvsweep.probe.posix import Syscalls
from uvsweep.remove import Policy
from uvsweep.remove.posix import LinuxRemover

pytestmark = LINUX_REAL

#: The cleaner: `LinuxRemover().remove([dir])`, paused at the points named in the module's doc
#: until the test writes a line; then one line `result {json}`.
CLEANER = textwrap.dedent(
    """
    import json, sys
    from uvsweep.remove import Policy, posix
    from uvsweep.remove.posix import LinuxRemover

    real_users, real_run = LinuxRemover.users, posix.run_handoffs
    real_before = getattr(LinuxRemover, "users_before_unlink", None)  # (`users` before it)

    def pause(word):
        print(word, flush=True)
        sys.stdin.readline()

    def before(self, targets, result):
        pause("holding")  # the batch locked, no lease taken yet
        return real_before(self, targets, result)

    def users(self, targets, result):
        if real_before is None or any(t.unlinked for t in targets):
            pause("holding" if not any(t.unlinked for t in targets) else "rechecking")
        return real_users(self, targets, result)

    def run_handoffs(*args, **kwargs):
        pause("handing")
        return real_run(*args, **kwargs)

    real_changed = LinuxRemover.changed

    def changed(self, target):
        pause("checked")
        return real_changed(self, target)

    LinuxRemover.users = users
    if real_before is not None:
        LinuxRemover.users_before_unlink = before
    LinuxRemover.changed = changed
    posix.run_handoffs = run_handoffs
    result = LinuxRemover().remove([sys.argv[1]], Policy())
    print("result", json.dumps({
        "removed": result.removed, "handoffs": result.handoffs, "keepers": result.keepers,
        "hidden": result.hidden_processes,
        "skipped": [[s.path, s.state.name, s.reason] for s in result.skipped],
    }), flush=True)
    """
)


class Cleaner(ScriptedCleaner):
    """The cleaner process (`CLEANER`); `next()` is its next word, `go()` lets it on from a
    pause."""

    def __init__(self, directory: Path, prefix: list[str], python: str = sys.executable) -> None:
        super().__init__(CLEANER, directory, prefix, python)

    def finish(self) -> dict[str, object]:
        """Let it on from every pause until its result."""
        while (word := self.next()) != "result":
            assert word in ("checked", "rechecking", "handing"), word
            self.go()
        return self.result


def queued(pid: int, ino: int) -> bool:
    """Whether `/proc/locks` shows `pid` waiting for a lock on inode `ino` (a `->` line)."""
    with open("/proc/locks") as handle:
        for line in handle:
            parts = line.split()
            if (
                len(parts) >= 7 and parts[1] == "->" and parts[5] == str(pid)
                and parts[6].rsplit(":", 1)[-1] == str(ino)
            ):  # fmt: skip
                return True
    return False


def stopped(pid: int) -> bool:
    """Whether every thread of `pid` is stopped (a thread that has exited aside)."""
    states = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{tid}/stat") as handle:
            states.add(handle.read().rsplit(")", 1)[1].split()[0])
    return states <= {"T", "Z"} and "T" in states


def _opener_then_a_new_uv(
    path: Path, opener: Child, cleaner: Callable[[], Cleaner], started: list[Cleaner | Child]
) -> dict[str, object]:
    """Once `opener` has the file open (it waits to lock it), a cleaner starts and runs to its
    end; then the opener locks whatever inode it has, and a new uv at the name must not get
    the lock beside it."""
    started.append(opener)
    opener.expect("opened")
    started.append(run := cleaner())
    assert run.next() == "holding"
    run.go()
    result = run.finish()
    opener.tell()
    opener.expect("locked")
    assert not new_uv_locks(path), f"two holders: the opener and a new uv; cleaner: {result}"
    return result


def _holding_with_a_waiter_out_of_sight(
    lockdir: Path, code: str, word: str, started: list[Cleaner | Child]
) -> tuple[Path, int, Cleaner, Child]:
    """A cleaner holding its batch (paused at `holding`) and a waiter queued behind it that
    then hides its fd (`code`, which says `word` once it has): no link of the waiter's shows
    the file, the lock table still shows it waiting."""
    path, ino = lock_file(lockdir)
    cleaner = Cleaner(lockdir, [])
    started.append(cleaner)
    assert cleaner.next() == "holding"
    waiter = Child([sys.executable, "-c", code, str(path)])
    started.append(waiter)
    waiter.expect("opened")
    wait_for(lambda: queued(waiter.pid, ino), what="the waiter to queue behind the cleaner")
    waiter.tell()
    waiter.expect(word)
    assert not links_to(waiter.pid, ino) and queued(waiter.pid, ino)
    return path, ino, cleaner, waiter


@pytest.fixture
def nobody_prefix() -> list[str]:
    found = other_user_python()
    need(found is not None, "root and the user nobody (setpriv, util-linux) to run as another user")
    assert found is not None
    uid, gid, python = found
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", python]


#: a uv that waits for the lock: open, say so, flock (blocking), say so, hold until killed
WAITER = (
    "import fcntl, os, sys, time\n"
    "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
    "print('opened', flush=True)\n"
    "fcntl.flock(fd, fcntl.LOCK_EX)\n"
    "print('locked', flush=True)\n"
    "time.sleep(600)\n"
)


def _waiter_stopped_during_the_handoff(
    directory: Path, cleaner_prefix: list[str], waiter_argv: list[str],
    started: list[Cleaner | Child], code: str = WAITER,
) -> tuple[bool, dict[str, object]]:  # fmt: skip
    """A uv starts waiting for the file while the cleaner holds it (before its check); if the
    cleaner removes it and hands it over, the uv is stopped (Ctrl-Z, or the scheduler: a woken
    waiter not yet run) as the handoff begins, and continued once the cleaner is done. Whether
    it then holds the lock beside a new uv at the name; the cleaner's result."""
    path, ino = lock_file(directory)
    cleaner = Cleaner(directory, cleaner_prefix)
    started.append(cleaner)
    assert cleaner.next() == "holding"
    waiter = Child([*waiter_argv, "-c", code, str(path)])
    started.append(waiter)
    waiter.expect("opened")
    wait_for(lambda: queued(waiter.pid, ino), what="the waiter to queue behind the cleaner")
    cleaner.go()
    while (word := cleaner.next()) != "result":
        if word == "handing":  # the file was removed: the waiter is now handed over
            os.kill(waiter.pid, signal.SIGSTOP)
            wait_for(lambda: stopped(waiter.pid) and not queued(waiter.pid, ino), what="stop")
        cleaner.go()
    result = cleaner.result
    os.kill(waiter.pid, signal.SIGCONT)
    waiter.expect("locked")
    return new_uv_locks(path), result


# ---- F1: root whose walk cannot read another user's fd links --------------------------------


def test_a_waiter_a_root_cleaner_without_ptrace_cannot_see_keeps_the_file(
    shared_tmp: Path, nobody_prefix: list[str], started: list[Cleaner | Child]
) -> None:
    two, result = _waiter_stopped_during_the_handoff(shared_tmp, NO_PTRACE, nobody_prefix, started)
    assert not two, f"two holders: the waiter and a new uv at the name; cleaner: {result}"


def test_a_root_cleaner_without_ptrace_hands_over_a_file_another_user_had_open(
    shared_tmp: Path, nobody_prefix: list[str], started: list[Cleaner | Child]
) -> None:
    """B2: the opener's links are refused to the walk, and it is in no table yet. After the
    unlink the kernel's lease says somebody else still has the file open: the lock is handed
    over and followed, so the opener's flock on the old inode never meets a new uv's."""
    path, _ino = lock_file(shared_tmp)
    opener = Child([*nobody_prefix, "-c", PREEMPTED, str(path)])
    result = _opener_then_a_new_uv(path, opener, lambda: Cleaner(shared_tmp, NO_PTRACE), started)
    assert result["removed"] == [] and result["handoffs"] == 1 and result["hidden"], result
    [[kept, state, why]] = result["skipped"]  # type: ignore[misc]
    assert (kept, state) == (str(path), "HELD") and "the OS does not show" in why, result
    opener.tell()  # done: it unlocks and exits, and the handoff with it
    keepers_end(result)


def test_a_root_cleaner_without_ptrace_hands_over_a_file_another_user_opens_as_it_is_removed(
    shared_tmp: Path, nobody_prefix: list[str], started: list[Cleaner | Child]
) -> None:
    """B2, after the check: the opener opens the file once the walk and the table have found
    nobody, before the unlink. Unseen by both after the unlink too, its open meets the lease
    kept from before the unlink and waits; the look before the close sees the lease broken:
    the lock is handed over (the open then goes on, on the old inode), and followed (the lease
    again) until the opener is done, so a new uv at the name waits."""
    path, ino = lock_file(shared_tmp)
    run = Cleaner(shared_tmp, NO_PTRACE)
    started.append(run)
    assert run.next() == "holding"
    run.go()
    assert run.next() == "checked"  # the walk and the table are over: nobody was seen
    opener = Child([*nobody_prefix, "-c", PREEMPTED, str(path)])
    started.append(opener)
    wait_for(lambda: lease_breaking(ino), what="the opener's open to wait on the cleaner's lease")
    run.go()
    opener.expect("opened")
    result = run.finish()
    assert result["handoffs"] == 1, result
    opener.tell()
    opener.expect("locked")
    assert not new_uv_locks(path), f"two holders: the opener and a new uv; cleaner: {result}"
    opener.tell()  # done: it unlocks and exits, and the handoff with it
    keepers_end(result)
    assert new_uv_locks(path)


# ---- F2: root in a child PID namespace (`--accept-hidden-processes`) -------------------------


def test_a_waiter_outside_the_cleaners_pid_namespace_keeps_the_file(
    lockdir: Path, started: list[Cleaner | Child]
) -> None:
    need(
        procs.run(["unshare", "--pid", "--fork", "--mount-proc", "true"]).returncode == 0,
        "unshare (util-linux) and the right to make a PID namespace",
    )
    two, result = _waiter_stopped_during_the_handoff(
        lockdir, ["unshare", "--pid", "--fork", "--mount-proc"], [sys.executable], started
    )
    assert not two, f"two holders: the waiter and a new uv at the name; cleaner: {result}"


def test_a_waiter_root_can_see_is_kept_however_it_is_stopped(
    shared_tmp: Path, nobody_prefix: list[str], started: list[Cleaner | Child]
) -> None:
    """B1's control: root with every capability reads the waiter's fd links, so the walk finds
    it and the file is kept (the table read or not): the waiter then locks the file at the name."""
    two, result = _waiter_stopped_during_the_handoff(shared_tmp, [], nobody_prefix, started)
    assert not two, f"two holders: the waiter and a new uv at the name; cleaner: {result}"
    assert result["removed"] == [] and result["handoffs"] == 0, result


# ---- a waiter whose fd another of its threads closed -----------------------------------------

#: thread A blocks in flock(fd); when the test says so, the main thread closes fd (the request
#: stays queued: the syscall holds its own reference to the open file)
CLOSED_FD_WAITER = (
    "import fcntl, os, sys, threading, time\n"
    "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
    "def lock():\n"
    "    fcntl.flock(fd, fcntl.LOCK_EX)\n"
    "    print('woke', flush=True)\n"
    "thread = threading.Thread(target=lock)\n"
    "thread.start()\n"
    "print('opened', flush=True)\n"
    "sys.stdin.readline()\n"
    "os.close(fd)\n"
    "print('closed', flush=True)\n"
    "thread.join()\n"
    "time.sleep(600)\n"
)


def _own_locks(pid: int) -> list[str]:
    with open("/proc/locks") as handle:
        return [line for line in handle if line.split()[4 if "->" not in line else 5] == str(pid)]


def test_a_waiter_whose_fd_another_thread_closed_is_handed_over_or_kept(
    lockdir: Path, started: list[Cleaner | Child]
) -> None:
    """Attack 1 (holds). The walk cannot see such a waiter, so with the skip (76cf5fc, reverted)
    the file was unlinked and the check after the unlink, reading the table, handed it over
    (main keeps it as waiting). Either way it is never reported removed, the name is never free
    while the request waits, and the handoff ends by itself. What the waiter gets is the same in
    both: its flock returns 0, and the lock goes at once with the syscall's reference to the
    file (no lock of its pid is left in the table): that process broke its own exclusion, on the
    old inode or on the file at the name alike."""
    path, ino, cleaner, waiter = _holding_with_a_waiter_out_of_sight(
        lockdir, CLOSED_FD_WAITER, "closed", started
    )
    cleaner.go()
    while (word := cleaner.next()) != "result":
        if word == "handing":  # the name is ours again before the old lock goes
            assert queued(waiter.pid, ino)
        cleaner.go()
    result = cleaner.result
    waiter.expect("woke")
    assert result["removed"] == [], result
    ((where, state, reason),) = result["skipped"]  # type: ignore[misc]
    assert where == str(path) and f"pid {waiter.pid} " in reason, result
    if state == "HELD":  # as with the skip (76cf5fc, reverted): handed over after the unlink
        assert result["handoffs"] == 1, result
        assert path.exists() and os.stat(path).st_ino != ino
    else:  # main: kept, as the table showed the waiter before the unlink
        assert (state, result["handoffs"]) == ("WAITING", 0), result
    wait_for(lambda: not result["keepers"] or not any(
        procs.alive(pid) for pid in result["keepers"]  # type: ignore[attr-defined]
    ), what="the keeper to end by itself")  # fmt: skip
    assert _own_locks(waiter.pid) == []


# ---- a waiter whose only reference is in flight in a unix socket ------------------------------

#: the main thread blocks in flock(fd) (libc's, so that a signal ends it: Python's own would
#: retry); a helper thread sends fd to the process itself (SCM_RIGHTS, not received yet) and
#: closes it. On SIGUSR1 the flock gives up (EINTR, as a lock with a timeout does); when the
#: test says so, the fd is received again and locked (the retry)
IN_FLIGHT_WAITER = textwrap.dedent(
    """
    import array, ctypes, fcntl, os, signal, socket, sys, threading, time
    libc = ctypes.CDLL(None, use_errno=True)
    signal.signal(signal.SIGUSR1, lambda *_args: None)
    fd = os.open(sys.argv[1], os.O_RDONLY)
    sender, receiver = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)

    def helper():
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
        sys.stdin.readline()
        sender.sendmsg([b"x"], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", [fd]))])
        os.close(fd)
        print("in-flight", flush=True)

    threading.Thread(target=helper, daemon=True).start()
    print("opened", flush=True)
    rc = libc.flock(fd, fcntl.LOCK_EX)
    print("gave-up", rc, ctypes.get_errno(), flush=True)
    sys.stdin.readline()
    _data, ancillary, _flags, _addr = receiver.recvmsg(1, socket.CMSG_LEN(4))
    again = array.array("i", ancillary[0][2])[0]
    fcntl.flock(again, fcntl.LOCK_EX)
    print("locked", flush=True)
    time.sleep(600)
    """
)


def test_a_waiter_whose_file_is_in_flight_in_a_socket_keeps_the_file(
    lockdir: Path, started: list[Cleaner | Child]
) -> None:
    path, _ino, cleaner, waiter = _holding_with_a_waiter_out_of_sight(
        lockdir, IN_FLIGHT_WAITER, "in-flight", started
    )
    cleaner.go()
    gave_up = False
    while (word := cleaner.next()) != "result":
        if word == "rechecking" and not gave_up:  # unlinked: the wait ends before the check
            os.kill(waiter.pid, signal.SIGUSR1)
            assert waiter.expect("gave-up").split()[1:] == ["-1", "4"]  # EINTR
            gave_up = True
        cleaner.go()
    result = cleaner.result
    if not gave_up:  # kept (the parent): the wait ends all the same, later
        os.kill(waiter.pid, signal.SIGUSR1)
        waiter.expect("gave-up")
    waiter.tell()
    waiter.expect("locked")
    assert not new_uv_locks(path), f"two holders: the waiter and a new uv; cleaner: {result}"


# ---- the non-root path still reads the table before the unlink --------------------------------


def test_a_cleaner_that_is_not_root_keeps_a_file_root_waits_for(
    shared_tmp: Path, nobody_prefix: list[str], started: list[Cleaner | Child]
) -> None:
    """Attack 4 (holds): `nobody` cleans its own dir; a root uv queues behind its lock. Root's
    fds are hidden from it (and it is not root): the table is read before the unlink, and the
    file is kept as waited for, never unlinked (no `rechecking` pause is reached)."""
    directory = shared_tmp / "own"
    directory.mkdir()
    os.chown(directory, *_nobody_ids())
    path, ino = lock_file(directory)
    os.chown(path, *_nobody_ids())
    cleaner = Cleaner(directory, nobody_prefix[:-1], python=nobody_prefix[-1])
    started.append(cleaner)
    assert cleaner.next() == "holding"
    waiter = Child([sys.executable, "-c", WAITER, str(path)])
    started.append(waiter)
    waiter.expect("opened")
    wait_for(lambda: queued(waiter.pid, ino), what="the waiter to queue behind the cleaner")
    cleaner.go()
    assert cleaner.next() == "result", "the file was unlinked"
    result = cleaner.result
    ((where, state, _reason),) = result["skipped"]  # type: ignore[misc]
    assert (where, state, result["removed"]) == (str(path), "WAITING", []), result
    waiter.expect("locked")
    assert os.stat(path).st_ino == ino


def _nobody_ids() -> tuple[int, int]:
    found = other_user_python()
    assert found is not None
    return found[0], found[1]


# ---- a process whose main thread has exited -------------------------------------------------

#: a uv whose main thread has exited (`pthread_exit`) while another thread runs on: the leader
#: is a zombie, and `/proc/PID/fd` lists nothing, whatever the live thread has open (its fds
#: show under `/proc/PID/task/TID/fd` only). With "stdin": it waits for a line between its
#: open and its flock
ZOMBIE_LEADER = textwrap.dedent(
    """
    import ctypes, fcntl, os, sys, threading, time

    def leader_gone():
        with open("/proc/self/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"

    def run():
        while not leader_gone():
            time.sleep(0.01)
        fd = os.open(sys.argv[1], os.O_RDONLY)
        print("opened", flush=True)
        if sys.argv[2:] == ["stdin"]:
            sys.stdin.readline()
        fcntl.flock(fd, fcntl.LOCK_EX)
        print("locked", flush=True)
        time.sleep(600)

    threading.Thread(target=run).start()
    ctypes.CDLL(None).pthread_exit(None)
    """
)


# Fixed; it was B5 (older than the reverted skip).
def test_an_opener_whose_main_thread_has_exited_keeps_the_file(
    lockdir: Path, started: list[Cleaner | Child]
) -> None:
    path, _ino = lock_file(lockdir)
    opener = Child([sys.executable, "-c", ZOMBIE_LEADER, str(path), "stdin"])
    _opener_then_a_new_uv(path, opener, lambda: Cleaner(lockdir, []), started)


def test_a_waiter_whose_main_thread_has_exited_keeps_the_file(
    lockdir: Path, started: list[Cleaner | Child]
) -> None:
    two, result = _waiter_stopped_during_the_handoff(
        lockdir, [], [sys.executable], started, code=ZOMBIE_LEADER
    )
    assert not two, f"two holders: the waiter and a new uv at the name; cleaner: {result}"


# ---- an opener that comes after the walk, before the unlink ----------------------------------

#: a uv that opens the file and, with "queue", asks for the lock at once (it blocks behind the
#: cleaner); else only once the test says so (preempted between its open and its flock)
OPENER = textwrap.dedent(
    """
    import fcntl, os, sys, time
    fd = os.open(sys.argv[1], os.O_RDONLY)
    print("opened", flush=True)
    if sys.argv[2] != "queue":
        sys.stdin.readline()
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("locked", flush=True)
    sys.stdin.readline()
    """
)


@pytest.mark.parametrize("when", ["queue", "later"])
def test_an_opener_after_the_walk_is_handed_over(
    lockdir: Path, started: list[Cleaner | Child], when: str
) -> None:
    """Attack 2 (holds): a uv opens the file after the walk went past (the table would have
    been read now) and asks for the lock then (it queues behind the cleaner) or only after
    the removal. Its open meets the write lease the cleaner keeps from before the unlink and
    waits in the kernel; the look at the lease before the close sees it broken, gives it up
    (the open goes on, on the unlinked file) and hands the file over: the name stays locked
    while the opener holds the old inode."""
    path, ino = lock_file(lockdir)
    cleaner = Cleaner(lockdir, [])
    started.append(cleaner)
    assert cleaner.next() == "holding"
    cleaner.go()
    assert cleaner.next() == "checked"
    opener = Child([sys.executable, "-c", OPENER, str(path), when])
    started.append(opener)
    wait_for(lambda: lease_breaking(ino), what="the opener's open to wait on the cleaner's lease")
    cleaner.go()
    opener.expect("opened")  # the lease given up: its open goes on, on the unlinked file
    if when == "queue":
        wait_for(lambda: queued(opener.pid, ino), what="the opener to queue behind the cleaner")
    result = cleaner.finish()
    assert (result["removed"], result["handoffs"]) == ([], 1), result
    if when == "later":
        opener.tell()
    opener.expect("locked")
    assert not new_uv_locks(path), f"two holders: the opener and a new uv; cleaner: {result}"
    opener.tell()  # done: it closes the old file, and the handoff (or its keeper) ends
    keepers_end(result)


# ---- a waiter whose file is held by a mapping, its fd closed ----------------------------------

#: thread A blocks in flock(fd); the main thread maps the file (libc's mmap: Python's refuses a
#: mapping longer than the empty file) and closes fd. Once A has the lock, the mapping is the
#: only reference to the locked open file: the lock lasts until the test says to unmap it
MAPPED_WAITER = textwrap.dedent(
    """
    import ctypes, fcntl, mmap, os, sys, threading, time
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                          ctypes.c_int, ctypes.c_long]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    fd = os.open(sys.argv[1], os.O_RDONLY)

    def lock():
        fcntl.flock(fd, fcntl.LOCK_EX)
        print("locked", flush=True)

    thread = threading.Thread(target=lock)
    thread.start()
    print("opened", flush=True)
    sys.stdin.readline()
    address = libc.mmap(None, 4096, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
    assert address not in (None, ctypes.c_void_p(-1).value), ctypes.get_errno()
    os.close(fd)
    print("mapped", flush=True)
    thread.join()
    sys.stdin.readline()
    libc.munmap(address, 4096)
    print("unmapped", flush=True)
    time.sleep(600)
    """
)


def test_a_waiter_whose_file_is_only_mapped_keeps_the_name_until_it_unmaps(
    lockdir: Path, started: list[Cleaner | Child]
) -> None:
    """Attack 2, a file held by an `mmap` with its fd closed (holds): the walk cannot see the
    waiter, so with the skip (76cf5fc, reverted) the file was handed over (main keeps it); the
    waiter then holds the old inode's lock through the mapping alone, and the handoff's own try-
    lock keeps the name locked until it unmaps."""
    path, _ino, cleaner, waiter = _holding_with_a_waiter_out_of_sight(
        lockdir, MAPPED_WAITER, "mapped", started
    )
    cleaner.go()
    result = cleaner.finish()
    assert result["removed"] == [], result
    waiter.expect("locked")
    assert _own_locks(waiter.pid), "the mapping keeps the lock"
    time.sleep(0.5)  # longer than a round of the handoff: it must not end meanwhile
    assert not new_uv_locks(path), f"two holders: the waiter and a new uv; cleaner: {result}"
    waiter.tell()
    waiter.expect("unmapped")
    keepers_end(result)


# ---- root with a process that refuses the walk still reads the table ---------------------------


class _Refusing(Syscalls):
    """The real calls, except that listing `/proc/PID/fd` of `refuse` fails as the kernel
    fails it for a process we may not look into; on one thread (the table is then read, if at
    all, after the walk, where `users` decides whether to read it)."""

    concurrent = False

    def __init__(self, refuse: int) -> None:
        self.refuse = refuse

    def list_dir(self, where: int | str) -> list[str]:
        if where == f"/proc/{self.refuse}/fd":
            raise PermissionError(13, "Permission denied", where)
        return super().list_dir(where)


def test_root_reads_the_table_when_a_process_refused_the_walk(
    lockdir: Path, started: list[Cleaner | Child]
) -> None:
    """Attack 4 (holds): with one process refusing the walk a look at its fds (`hidden` 1),
    root still reads the table before the unlink and sees a waiter the walk cannot (its fd
    closed by another of its threads). Without the refusal, 76cf5fc (reverted) skipped the
    table and `users` found nobody there (main: waiting), which the tests above build on."""
    path, ino = lock_file(lockdir)
    other = Child([sys.executable, "-c", "import sys; print('up', flush=True); sys.stdin.read()"])
    started.append(other)
    other.expect("up")
    remover = LinuxRemover(calls=_Refusing(other.pid))
    dir_fd = os.open(lockdir, os.O_RDONLY | os.O_DIRECTORY)
    result = CleanResult([str(lockdir)])
    target = remover.acquire(dir_fd, str(lockdir), A, Policy(), result)
    assert target is not None
    try:
        waiter = Child([sys.executable, "-c", CLOSED_FD_WAITER, str(path)])
        started.append(waiter)
        waiter.expect("opened")
        wait_for(lambda: queued(waiter.pid, ino), what="the waiter to queue behind us")
        waiter.tell()
        waiter.expect("closed")
        found = remover.users([target], result)
        assert result.hidden_processes >= 1  # (another process may refuse it too: pid 1 here)
        assert found[target].state is LockState.WAITING, found
    finally:
        remover.release(target)
        os.close(dir_fd)
