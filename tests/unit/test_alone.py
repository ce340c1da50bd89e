"""`Syscalls.alone`: the kernel's write lease says whether anybody else has a file open.

Real files, real processes, the real kernel (Linux: `F_SETLEASE`). The remover asks it where
its walk of `/proc/*/fd` was refused some process's fds (red-team B2): each case here is a way a
file can be open, held or waited for that such a walk may miss.
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import procs
from tests.conftest import APP_DIR, need, other_user_python
from tests.helpers import wait_for
from uvsweep.probe import posix
from uvsweep.probe.posix import OPEN_FLAGS, SYSCALLS

pytestmark = [
    pytest.mark.linux,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="leases are Linux's"),
]


@pytest.fixture
def lock(shared_tmp: Path) -> Iterator[tuple[Path, int]]:
    """A lock file (another user may open it), opened as the remover opens it."""
    path = shared_tmp / "uv-00000000000000aa.lock"
    path.touch()
    path.chmod(0o666)
    fd = os.open(path, OPEN_FLAGS)
    yield path, fd
    os.close(fd)


def _as_nobody(code: str, *args: str) -> subprocess.Popen[str]:
    found = other_user_python()
    need(found is not None, "root and the user nobody (setpriv, util-linux) to run as another user")
    assert found is not None
    uid, gid, python = found
    argv = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", python, "-c", code]
    return procs.popen(
        [*argv, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, lasting=True
    )


def test_a_file_nobody_else_has_open_is_alone(lock: tuple[Path, int]) -> None:
    path, fd = lock
    assert SYSCALLS.alone(fd) is True
    # the lease was given back: an open that would wait for it (O_NONBLOCK: fail) goes through
    other = os.open(path, os.O_RDWR | os.O_NONBLOCK)
    os.close(other)
    assert SYSCALLS.alone(fd) is True


def test_a_kept_lease_goes_with_the_close(tmp_path: Path) -> None:
    """`keep`: granted and held until the fd is closed (the remover keeps it on a file it has
    unlinked): an open that would wait for it (O_NONBLOCK: fails) goes through once the fd is
    closed."""
    path = tmp_path / "uv-00000000000000aa.lock"
    path.touch()
    fd = os.open(path, OPEN_FLAGS)
    os.unlink(path)
    link = os.open(f"/proc/self/fd/{fd}", os.O_PATH)  # to reach it afterwards (no lease breaks)
    try:
        assert SYSCALLS.alone(fd, keep=True) is True
        with pytest.raises(BlockingIOError):
            os.open(f"/proc/self/fd/{fd}", os.O_RDONLY | os.O_NONBLOCK)
    finally:
        os.close(fd)
    os.close(os.open(f"/proc/self/fd/{link}", os.O_RDONLY | os.O_NONBLOCK))  # released
    os.close(link)


def test_our_own_second_open_is_another_description(lock: tuple[Path, int]) -> None:
    path, fd = lock
    other = os.open(path, os.O_RDONLY)
    try:
        assert SYSCALLS.alone(fd) is False
    finally:
        os.close(other)
    assert SYSCALLS.alone(fd) is True


def test_a_dup_is_the_same_description(lock: tuple[Path, int]) -> None:
    _path, fd = lock
    copy = os.dup(fd)
    try:
        assert SYSCALLS.alone(fd) is True
    finally:
        os.close(copy)


def test_another_users_opener_before_its_flock_is_seen_and_after_the_unlink_too(
    lock: tuple[Path, int],
) -> None:
    """The opener B2 is about: in no lock table yet, its fds perhaps not ours to read."""
    path, fd = lock
    opener = _as_nobody(
        "import os, sys\nfd = os.open(sys.argv[1], os.O_RDONLY)\nprint('opened', flush=True)\n"
        "sys.stdin.readline()\n",
        str(path),
    )
    try:
        assert opener.stdout is not None and opener.stdout.readline() == "opened\n"
        assert SYSCALLS.alone(fd) is False
        path.unlink()
        assert SYSCALLS.alone(fd) is False  # unlinked: only its openers can reach it
    finally:
        procs.stop(opener, grace=0)
    assert SYSCALLS.alone(fd) is True


def test_a_description_only_in_flight_in_a_unix_socket_is_seen(lock: tuple[Path, int]) -> None:
    """Red-team B4: an fd sent with SCM_RIGHTS and closed by its sender is in no process's fd
    table until it is received, but its open file description lives on."""
    path, fd = lock
    left, right = socket.socketpair(socket.AF_UNIX)
    try:
        sent = os.open(path, os.O_RDWR)
        socket.send_fds(left, [b"x"], [sent])
        os.close(sent)
        assert SYSCALLS.alone(fd) is False
        _msg, [received], _flags, _addr = socket.recv_fds(right, 1, 1)
        os.close(received)
        assert SYSCALLS.alone(fd) is True
    finally:
        left.close()
        right.close()


def test_a_waiter_blocked_in_flock_is_seen(lock: tuple[Path, int]) -> None:
    path, fd = lock
    fcntl.flock(fd, fcntl.LOCK_EX)
    code = "import fcntl, os, sys\nfcntl.flock(os.open(sys.argv[1], os.O_RDONLY), fcntl.LOCK_EX)\n"
    waiter = procs.popen([sys.executable, "-c", code, str(path)], lasting=True)
    try:
        # queued behind our lock (the lock table says so): its description is seen
        table = Path("/proc/locks")
        wait_for("the waiter to queue", lambda: f" {waiter.pid} " in table.read_text())
        assert SYSCALLS.alone(fd) is False
    finally:
        procs.stop(waiter, grace=0)
        fcntl.flock(fd, fcntl.LOCK_UN)


#: `alone` in a process of its own whose lease is broken while it is held: an open comes right
#: after the kernel grants it (O_NONBLOCK: it fails, but the lease's owner is signalled)
BROKEN_LEASE = """
import fcntl, os, signal, sys
sys.path.insert(0, sys.argv[2])
from uvsweep.probe import posix
signal.signal(signal.SIGIO, signal.SIG_DFL)  # (not what a parent may have left it)
path, sig = sys.argv[1], int(sys.argv[3])
real = fcntl.fcntl
if sig == -2:
    posix.ignore_lease_breaks()
def fcntl_then_an_open(fd, cmd, arg):
    if cmd == fcntl.F_SETSIG and sig == -2:
        print("F_SETSIG", flush=True)
    if cmd == fcntl.F_SETSIG and sig >= 0:
        arg = sig
    done = real(fd, cmd, arg)
    if cmd == fcntl.F_SETLEASE and arg == fcntl.F_WRLCK:
        try:
            os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
        except BlockingIOError:
            print("broken", flush=True)
    return done
lease = posix._load_lease()
posix._LEASE = (fcntl_then_an_open, *lease[1:])
print(posix.SYSCALLS.alone(os.open(path, posix.OPEN_FLAGS)), flush=True)
"""


@pytest.mark.parametrize("sig", [-1, 0, -2])
def test_a_lease_broken_while_it_is_held_never_ends_the_process(tmp_path: Path, sig: int) -> None:
    """The kernel signals the owner of a lease that an open breaks: `SIGIO` by default (the
    `sig` 0 case, which shows it), whose default ends a process. `alone` asks for `SIGURG`,
    ignored unless handled; in a process that ignores `SIGIO` (`ignore_lease_breaks`, what a
    removal does from the main thread: `sig` -2) it asks for nothing."""
    path = tmp_path / "uv-00000000000000aa.lock"
    path.touch()
    done = procs.run(
        [sys.executable, "-c", BROKEN_LEASE, str(path), APP_DIR, str(sig)],
        capture_output=True, text=True,
    )  # fmt: skip
    if sig == 0:  # F_SETSIG 0: SIGIO, what the lease would send without `alone`'s F_SETSIG
        assert done.returncode == -signal.SIGIO, done
    else:
        assert (done.returncode, done.stdout) == (0, "broken\nTrue\n"), done


def test_without_the_right_to_lease_it_cannot_tell(lock: tuple[Path, int]) -> None:
    """Not the file's owner and without CAP_LEASE: the kernel refuses the lease (EACCES), so
    nothing is known, never "alone"."""
    path, _fd = lock
    code = (
        "import os, sys\nsys.path.insert(0, sys.argv[2])\n"
        "from uvsweep.probe.posix import OPEN_FLAGS, SYSCALLS\n"
        "print(SYSCALLS.alone(os.open(sys.argv[1], OPEN_FLAGS)), flush=True)\n"
    )
    checker = _as_nobody(code, str(path), APP_DIR)
    assert checker.stdout is not None
    try:
        assert checker.stdout.readline() == "None\n"
    finally:
        procs.stop(checker, grace=0)


#: `alone` as root without CAP_LEASE (Docker's default set) on a file of nobody's: alone (the
#: lease given back), beside another open, and the thread's file-system uid after each (4th
#: field of `Uid:`)
AS_OWNER = """
import os, sys
sys.path.insert(0, sys.argv[2])
from uvsweep.probe.posix import OPEN_FLAGS, SYSCALLS
def fsuid():
    with open("/proc/thread-self/status") as handle:
        return [line.split()[4] for line in handle if line.startswith("Uid:")][0]
fd = os.open(sys.argv[1], OPEN_FLAGS)
print(SYSCALLS.alone(fd), fsuid())
try:  # given back: an open that would wait for the lease (O_NONBLOCK: fail) goes through
    os.close(os.open(sys.argv[1], os.O_RDONLY | os.O_NONBLOCK))
except BlockingIOError:
    sys.exit("the lease taken as the owner was kept")
other = os.open(sys.argv[1], os.O_RDONLY)
print(SYSCALLS.alone(fd), fsuid())
os.close(other)
"""


def _nobodys_file(directory: Path) -> Path:
    """A lock file in `directory` owned by the user nobody (another user's, for root)."""
    path = directory / "uv-00000000000000aa.lock"
    path.touch()
    found = other_user_python()
    need(found is not None, "root and the user nobody (setpriv, util-linux) to run as another user")
    assert found is not None
    os.chown(path, found[0], found[1])
    return path


def test_root_without_cap_lease_takes_the_lease_as_the_files_owner(shared_tmp: Path) -> None:
    """Red-team L2: without CAP_LEASE a lease is granted only where the file's owner is our
    file-system uid; root sets its thread's to the owner for the lease (CAP_SETUID), then back,
    and gives the lease back (else the next opener would wait the lease-break time, 45 s)."""
    path = _nobodys_file(shared_tmp)
    done = procs.run(
        ["setpriv", "--inh-caps=-lease", "--bounding-set=-lease", sys.executable, "-c", AS_OWNER,
         str(path), APP_DIR],
        capture_output=True, text=True,
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (0, "True 0\nFalse 0\n"), done


def test_alone_all_answers_each_in_order_and_gives_each_lease_back(tmp_path: Path) -> None:
    """`alone_all` is `alone` for each fd, in order: without `keep`, each lease is given back at
    once (an open that would wait for a lease still held, O_NONBLOCK: fails, goes through)."""
    paths = [tmp_path / f"uv-00000000000000a{n}.lock" for n in range(3)]
    for path in paths:
        path.touch()
    fds = [os.open(path, OPEN_FLAGS) for path in paths]
    other = os.open(paths[1], os.O_RDONLY)  # the second one is open elsewhere too
    try:
        assert SYSCALLS.alone_all(fds) == [True, False, True]
        for path in paths:
            os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))  # no lease left on any
    finally:
        for fd in [*fds, other]:
            os.close(fd)


#: `alone` as root without CAP_LEASE on a file of nobody's, where its owner cannot be had:
#: libc has no `setfsuid` (as `_load_setfsuid` finds it when the call cannot be had), or the
#: `fstat` for the owner fails (ENOMEM, the one way it can fail on an open fd)
CANNOT_BE_OWNER = """
import errno, os, sys
sys.path.insert(0, sys.argv[2])
from uvsweep.probe import posix
fd = os.open(sys.argv[1], posix.OPEN_FLAGS)
if sys.argv[3] == "no-setfsuid":
    posix._SETFSUID = False
else:
    def fstat(fd):
        raise OSError(errno.ENOMEM, os.strerror(errno.ENOMEM))
    os.fstat = fstat
print(posix.SYSCALLS.alone(fd), flush=True)
"""


@pytest.mark.parametrize("missing", ["no-setfsuid", "no-fstat"])
def test_root_without_cap_lease_that_cannot_be_the_owner_cannot_tell(
    shared_tmp: Path, missing: str
) -> None:
    """Red-team L2's way round CAP_LEASE needs libc's `setfsuid` and the file's owner: where
    either cannot be had, root without CAP_LEASE on another user's file cannot tell (None),
    and never fails."""
    path = _nobodys_file(shared_tmp)
    done = procs.run(
        ["setpriv", "--inh-caps=-lease", "--bounding-set=-lease", sys.executable, "-c",
         CANNOT_BE_OWNER, str(path), APP_DIR, missing],
        capture_output=True, text=True,
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (0, "None\n"), done


@pytest.mark.parametrize("os_name", ["no fcntl (Windows)", "no leases in fcntl (macOS, BSD)"])
def test_where_there_are_no_leases_it_cannot_tell(
    lock: tuple[Path, int], monkeypatch: pytest.MonkeyPatch, os_name: str
) -> None:
    """`alone` on an OS without leases: Python's `fcntl` is missing (Windows), or has no
    `F_SETLEASE`, `F_SETSIG` (every Unix but Linux): None, never an error."""
    _path, fd = lock
    if os_name.startswith("no fcntl"):
        monkeypatch.setitem(sys.modules, "fcntl", None)  # `import fcntl`: ImportError
    else:
        monkeypatch.delattr(fcntl, "F_SETLEASE")
        monkeypatch.delattr(fcntl, "F_SETSIG")
    monkeypatch.setattr(posix, "_LEASE", None)  # (loaded again; set back after the test)
    assert SYSCALLS.alone(fd) is None
    assert SYSCALLS.alone_all([fd, fd], keep=True) == [None, None]


@pytest.mark.parametrize("failure", ["no ctypes", "no libc to load", "no setfsuid in libc"])
def test_where_setfsuid_cannot_be_had_it_is_none(
    monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    """`_load_setfsuid` where the call cannot be had: no `ctypes` (ImportError), a process
    without a loadable libc (OSError), a libc without `setfsuid` (macOS, BSD: AttributeError,
    here a real library that lacks it): None, never an error, and `alone` then cannot take a
    lease as the owner (`_alone_as_owner`: None)."""
    import ctypes

    real = ctypes.CDLL
    if failure == "no ctypes":
        monkeypatch.setitem(sys.modules, "ctypes", None)  # `import ctypes`: ImportError
    elif failure == "no libc to load":
        monkeypatch.setattr(ctypes, "CDLL", lambda _name, **kw: real("libuvsweep-none.so", **kw))
    else:  # glibc's dynamic loader: a library loaded already that has no `setfsuid`
        with open("/proc/self/maps", encoding="utf-8") as maps:
            loader = next(line.split()[-1] for line in maps if "/ld-linux" in line)
        monkeypatch.setattr(ctypes, "CDLL", lambda _name, **kw: real(loader, **kw))
    monkeypatch.setattr(posix, "_SETFSUID", None)  # (loaded again; set back after the test)
    assert posix._load_setfsuid() is None
    found = posix._SETFSUID
    monkeypatch.undo()  # ctypes as it is; what was found is kept, not looked for again
    monkeypatch.setattr(posix, "_SETFSUID", found)
    assert posix._load_setfsuid() is None


#: `ignore_lease_breaks` in a fresh process (SIGIO at its default), called as MODE says: what
#: SIGIO's disposition is after it, and whether leases then go without a signal of their own
IGNORE = """
import signal, sys, threading
sys.path.insert(0, sys.argv[1])
from uvsweep import system
from uvsweep.probe import posix
signal.signal(signal.SIGIO, signal.SIG_DFL)  # (not what a parent may have left it)
mode = sys.argv[2]
if mode == "not-linux":
    system.LINUX = False
if mode == "handled":
    signal.signal(signal.SIGIO, lambda *_: None)
if mode == "thread":
    thread = threading.Thread(target=posix.ignore_lease_breaks)
    thread.start()
    thread.join()
else:
    posix.ignore_lease_breaks()
disposition = signal.getsignal(signal.SIGIO)
print(getattr(disposition, "name", "handler"), posix._SIGIO_IGNORED, flush=True)
"""


@pytest.mark.parametrize(
    ("mode", "after"),
    [
        ("main", "SIG_IGN True"),
        ("not-linux", "SIG_DFL False"),  # (no leases: SIGIO left as it is)
        ("thread", "SIG_DFL False"),  # (only the main thread may set a disposition)
        ("handled", "handler False"),  # (a program's own use of SIGIO is left alone)
    ],
)
def test_lease_breaks_are_ignored_only_from_the_main_thread_on_linux(mode: str, after: str) -> None:
    done = procs.run(
        [sys.executable, "-c", IGNORE, APP_DIR, mode], capture_output=True, text=True
    )  # fmt: skip
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{after}\n", ""), done


#: `ignore_lease_breaks` from a subinterpreter's main thread (mod_wsgi runs programs so): there
#: `signal.signal` raises ValueError (only the main interpreter may set a disposition)
IN_A_SUBINTERPRETER = """
import signal, sys
try:
    import _xxsubinterpreters as interpreters
except ImportError:
    import _interpreters as interpreters
signal.signal(signal.SIGIO, signal.SIG_DFL)
interpreters.run_string(interpreters.create(), '''
import signal, sys
sys.path.insert(0, %r)
from uvsweep.probe import posix
posix.ignore_lease_breaks()
print(signal.getsignal(signal.SIGIO) == signal.SIG_DFL, posix._SIGIO_IGNORED, flush=True)
''' % sys.argv[1])
"""


def test_lease_breaks_are_left_alone_in_a_subinterpreter() -> None:
    done = procs.run(
        [sys.executable, "-c", IN_A_SUBINTERPRETER, APP_DIR], capture_output=True, text=True
    )  # fmt: skip
    assert (done.returncode, done.stdout, done.stderr) == (0, "True False\n", ""), done


#: `alone_all(keep=True)` as `clean` asks it (`SIGIO` ignored: one `F_SETLEASE` a file), over
#: three files, the second open elsewhere too; then whether each lease is still there (an
#: `O_NONBLOCK` open fails on a kept lease) and what `F_GETLEASE` says once it is broken
KEPT_IN_CLEAN = """
import errno, fcntl, os, sys
sys.path.insert(0, sys.argv[1])
from uvsweep.probe import posix
posix.ignore_lease_breaks()
paths = [os.path.join(sys.argv[2], f"uv-00000000000000b{n}.lock") for n in range(3)]
for path in paths:
    open(path, "w").close()
fds = [os.open(path, posix.OPEN_FLAGS) for path in paths]
other = os.open(paths[1], os.O_RDONLY)
said = posix.SYSCALLS.alone_all(fds, keep=True)
os.close(other)
kept = []
for path in paths:
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_NONBLOCK))
        kept.append(False)
    except OSError as err:
        kept.append(errno.errorcode[err.errno])
broken = [posix.SYSCALLS.lease_broken(fd) for fd in fds]
left = [fcntl.fcntl(fd, fcntl.F_GETLEASE) == fcntl.F_UNLCK for fd in fds]
print(said, kept, broken, left, flush=True)
"""


def test_alone_all_keeps_each_lease_granted_in_a_clean(tmp_path: Path) -> None:
    """In a process that ignores `SIGIO` (`clean`), `alone_all(keep=True)` is one `F_SETLEASE`
    a file: each answer in order (a refusal asked through `alone`), each granted lease kept
    (an open then fails with EWOULDBLOCK, and breaks it), a refused one never taken. A broken
    lease is given up by `lease_broken` (F_UNLCK: a waiting opener goes on)."""
    done = procs.run(
        [sys.executable, "-c", KEPT_IN_CLEAN, APP_DIR, str(tmp_path)], capture_output=True,
        text=True,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, ""), done
    assert done.stdout == (
        "[True, False, True] ['EAGAIN', False, 'EAGAIN'] [True, True, True] [True, True, True]\n"
    )
