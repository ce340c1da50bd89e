"""The simulated kernel behaves as Linux does where the remover and uv look.

Where it can, each test does the same thing on the real OS and compares.
"""

from __future__ import annotations

import errno
import fcntl
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests import procs
from tests.sim.kernel import (
    BLOCKED,
    LOCK_EX,
    LOCK_NB,
    LOCK_SH,
    LOCK_UN,
    PROC,
    SIM_DEV,
    TMP,
    Kernel,
)
from uvsweep.probe.linux import parse_locks
from uvsweep.probe.posix import OPEN_FLAGS

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc")

NAME = "uv-0123456789abcdef.lock"


def _kernel() -> tuple[Kernel, int]:
    kernel = Kernel()
    kernel.make_file(NAME)
    for pid in (10, 11, 12):
        kernel.spawn(pid, "uv")
    return kernel, kernel.names[NAME].ino


def _shape(line: str) -> list[str]:
    """A /proc/locks line with its id, pid and device:inode blanked out."""
    parts = line.split()
    pid_at = 5 if parts[1] == "->" else 4
    parts[0] = "N:"
    parts[pid_at] = "PID"
    parts[pid_at + 1] = "DEV:INO"
    return parts


def _real_lines(ino: int) -> list[str]:
    text = Path("/proc/locks").read_text()
    return [line for line in text.splitlines() if line.split()[-3].endswith(f":{ino}")]


def test_holder_and_waiter_lines_match_the_real_proc_locks(tmp_path: Path) -> None:
    path = tmp_path / NAME
    path.touch()
    holder = os.open(path, os.O_RDWR)
    waiter = os.open(path, os.O_RDWR)  # another open file description: flock conflicts
    fcntl.flock(holder, fcntl.LOCK_EX)
    got: list[str] = []
    thread = threading.Thread(target=lambda: (fcntl.flock(waiter, fcntl.LOCK_EX), got.append("x")))
    thread.start()
    try:
        ino = os.fstat(holder).st_ino
        for _ in range(500):
            real = _real_lines(ino)
            if len(real) == 2:
                break
            time.sleep(0.01)
    finally:
        fcntl.flock(holder, fcntl.LOCK_UN)
        thread.join(10)
        os.close(holder)
        os.close(waiter)
    assert got == ["x"]

    kernel, sim_ino = _kernel()
    a = kernel.open(10, f"{TMP}/{NAME}", os.O_RDWR, 0, None)
    b = kernel.open(11, f"{TMP}/{NAME}", os.O_RDWR, 0, None)
    assert kernel.flock(10, a, LOCK_EX) is None
    assert kernel.flock(11, b, LOCK_EX) is BLOCKED
    sim = kernel.proc_locks().decode().splitlines()
    assert [_shape(line) for line in sim] == [_shape(line) for line in real]
    table = parse_locks("\n".join(sim))
    entries = table[sim_ino]
    assert [(e.pid, e.waiting, e.major, e.minor) for e in entries] == [
        (10, False, os.major(SIM_DEV), os.minor(SIM_DEV)),
        (11, True, os.major(SIM_DEV), os.minor(SIM_DEV)),
    ]


def test_a_release_wakes_the_waiter_which_leaves_the_table_until_it_retries() -> None:
    kernel, _ino = _kernel()
    a = kernel.open(10, f"{TMP}/{NAME}", os.O_RDWR, 0, None)
    b = kernel.open(11, f"{TMP}/{NAME}", os.O_RDWR, 0, None)
    c = kernel.open(12, f"{TMP}/{NAME}", os.O_RDWR, 0, None)
    kernel.flock(10, a, LOCK_EX)
    assert kernel.flock(11, b, LOCK_EX) is BLOCKED
    assert kernel.blocked(11)
    kernel.close(10, a)  # closing the last fd of the OFD drops its lock
    assert not kernel.blocked(11)
    assert kernel.proc_locks() == b""  # woken, not yet retried: in no line at all
    kernel.flock(12, c, LOCK_EX | LOCK_NB)  # a third process gets there first
    assert kernel.flock(11, b, LOCK_EX) is BLOCKED  # the retry queues again
    assert b"-> FLOCK" in kernel.proc_locks()


def test_nonblocking_conflicts_and_shared_locks() -> None:
    kernel, _ino = _kernel()
    a = kernel.open(10, f"{TMP}/{NAME}", os.O_RDONLY, 0, None)
    b = kernel.open(11, f"{TMP}/{NAME}", os.O_RDONLY, 0, None)
    kernel.flock(10, a, LOCK_SH)
    kernel.flock(11, b, LOCK_SH | LOCK_NB)  # shared with shared: fine
    with pytest.raises(BlockingIOError):
        kernel.flock(11, b, LOCK_EX | LOCK_NB)  # conversion drops the shared one first
    assert b"READ 10" in kernel.proc_locks()
    assert b"READ 11" not in kernel.proc_locks()
    kernel.flock(10, a, LOCK_UN)
    kernel.flock(11, b, LOCK_EX | LOCK_NB)


def test_open_create_exclusive_nofollow_and_rename_without_replace(tmp_path: Path) -> None:
    kernel, _ino = _kernel()
    dir_fd = kernel.open_dir(10, TMP)
    excl = os.O_RDWR | os.O_CREAT | os.O_EXCL
    with pytest.raises(FileExistsError):
        kernel.open(10, NAME, excl, 0o666, dir_fd)
    with pytest.raises(FileNotFoundError):
        kernel.open(10, "uv-ffffffffffffffff.lock", os.O_RDWR, 0, dir_fd)
    tmp = kernel.open(10, f"{TMP}/.tmpabc", excl, 0o666, None)
    assert kernel.fstat(10, tmp).st_mode & 0o777 == 0o644  # the umask applies
    kernel.fchmod(10, tmp, 0o666)
    assert kernel.fstat(10, tmp).st_mode & 0o777 == 0o666
    with pytest.raises(FileExistsError):
        kernel.rename_noreplace(10, f"{TMP}/.tmpabc", f"{TMP}/{NAME}", None)
    kernel.unlink(10, NAME, dir_fd)
    kernel.rename_noreplace(10, f"{TMP}/.tmpabc", f"{TMP}/{NAME}", None)
    assert kernel.lstat(10, NAME, dir_fd).st_ino == kernel.fstat(10, tmp).st_ino
    assert sorted(kernel.list_dir(10, dir_fd)) == [NAME]


def test_unlinked_file_lives_on_while_open_and_proc_shows_it_deleted(tmp_path: Path) -> None:
    # the real OS first: the format the remover parses
    real = tmp_path / NAME
    real.touch()
    fd = os.open(real, os.O_RDONLY)
    try:
        real.unlink()
        shown = os.readlink(f"/proc/self/fd/{fd}")
        assert shown == f"{real} (deleted)"
        assert os.stat(f"/proc/self/fd/{fd}").st_nlink == 0
    finally:
        os.close(fd)

    kernel, ino = _kernel()
    dir_fd = kernel.open_dir(10, TMP)
    fd = kernel.open(11, f"{TMP}/{NAME}", os.O_RDWR, 0, None)
    kernel.unlink(10, NAME, dir_fd)
    link = f"{PROC}/11/fd/{fd}"
    assert kernel.readlink(10, link) == f"{TMP}/{NAME} (deleted)"
    assert (kernel.stat(link).st_ino, kernel.stat(link).st_nlink) == (ino, 0)
    assert str(fd) in kernel.proc_list_dir(f"{PROC}/11/fd")
    kernel.exit(11)
    assert "11" not in kernel.proc_list_dir(PROC)
    with pytest.raises(FileNotFoundError):
        kernel.proc_list_dir(f"{PROC}/11/fd")
    with pytest.raises(FileNotFoundError):
        kernel.readlink(10, link)


def test_an_inherited_open_file_description_keeps_its_lock_after_the_parent_closes() -> None:
    kernel, _ino = _kernel()
    fd = kernel.open(10, f"{TMP}/{NAME}", os.O_RDONLY, 0, None)
    other = kernel.open(12, f"{TMP}/{NAME}", os.O_RDWR, 0, None)
    kernel.flock(10, fd, LOCK_EX | LOCK_NB)
    kernel.inherit(10, 11, [fd])  # a keeper started with pass_fds
    kernel.close(10, fd)
    kernel.exit(10)
    with pytest.raises(BlockingIOError):
        kernel.flock(12, other, LOCK_EX | LOCK_NB)
    assert b"WRITE 10 " in kernel.proc_locks()  # the pid that took it, as Linux prints
    assert kernel.readlink(11, f"{PROC}/self") == "11"
    kernel.close(11, fd)
    kernel.flock(12, other, LOCK_EX | LOCK_NB)


# ---- owners and the sticky temp dir (red-team F5's planter) ----------------------------------

_AS_NOBODY = """
import errno, os, sys
path, how = sys.argv[1], sys.argv[2]
try:
    if how == "unlink":
        os.unlink(path)
    elif how == "write":
        os.close(os.open(path, os.O_RDWR))
    elif how == "fchmod":
        fd = os.open(path, os.O_RDONLY)
        os.fchmod(fd, 0o666)
    elif how == "create":
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        print(os.fstat(fd).st_uid)
        os.unlink(path)  # its own file: allowed
    elif how in ("rename-over-roots", "rename-over-own"):
        if how == "rename-over-own":
            mine = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        fresh = path + ".fresh"
        os.close(os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        try:
            os.rename(fresh, path)  # replaces the file at the name (P2's planter)
        except OSError:
            os.unlink(fresh)
            raise
        if how == "rename-over-own":
            print(os.fstat(mine).st_nlink)  # the replaced file has no name left
        os.unlink(path)
    print("ok")
except OSError as err:
    print(errno.errorcode[err.errno])
"""


@pytest.mark.parametrize(
    "how", ["unlink", "write", "fchmod", "create", "rename-over-roots", "rename-over-own"]
)
def test_another_user_in_the_sticky_dir_is_refused_as_linux_refuses_it(
    how: str, shared_tmp: Path
) -> None:
    import subprocess

    from tests.conftest import need, other_user_python

    found = other_user_python()
    need(found is not None, "root and the user nobody (setpriv, util-linux) to run as another user")
    assert found is not None
    uid, gid, python = found
    shared_tmp.chmod(0o1777)
    real = shared_tmp / NAME
    if how not in ("create", "rename-over-own"):
        real.touch()  # root's 0644 file
        real.chmod(0o644)
    argv = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", python, "-c"]
    said = subprocess.run([*argv, _AS_NOBODY, str(real), how], capture_output=True, text=True,
                          check=True).stdout.split()  # fmt: skip

    kernel = Kernel(umask=0)
    kernel.euid = 0
    kernel.spawn(20, "sh", uid=uid)
    if how not in ("create", "rename-over-own"):
        kernel.make_file(NAME, mode=0o644)
    dir_fd = kernel.open_dir(20, TMP)
    seen: list[str] = []
    try:
        if how == "unlink":
            kernel.unlink(20, NAME, dir_fd)
        elif how == "write":
            kernel.open(20, NAME, os.O_RDWR, 0, dir_fd)
        elif how == "fchmod":
            kernel.fchmod(20, kernel.open(20, NAME, os.O_RDONLY, 0, dir_fd), 0o666)
        elif how.startswith("rename-over"):
            create = os.O_WRONLY | os.O_CREAT | os.O_EXCL
            if how == "rename-over-own":
                mine = kernel.open(20, NAME, create, 0o644, dir_fd)
            kernel.close(20, kernel.open(20, NAME + ".fresh", create, 0o644, dir_fd))
            try:
                kernel.rename(20, NAME + ".fresh", NAME, dir_fd)
            except OSError:
                kernel.unlink(20, NAME + ".fresh", dir_fd)
                raise
            if how == "rename-over-own":
                seen.append(str(kernel.fstat(20, mine).st_nlink))
            kernel.unlink(20, NAME, dir_fd)
        else:
            fd = kernel.open(20, NAME, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd)
            seen.append(str(kernel.fstat(20, fd).st_uid))
            kernel.unlink(20, NAME, dir_fd)
        seen.append("ok")
    except OSError as err:
        import errno

        seen.append(errno.errorcode[err.errno or 0])
    assert seen == said
    assert said == {"unlink": ["EPERM"], "write": ["EACCES"], "fchmod": ["EPERM"],
                    "create": [str(uid), "ok"], "rename-over-roots": ["EPERM"],
                    "rename-over-own": ["0", "ok"]}[how]  # fmt: skip


# ---- the write lease (`alone`) and links refused to root without CAP_SYS_PTRACE (B2) ---------


def _real_alone_steps(path: Path) -> list[bool | None]:
    """On the real OS: alone, beside a second open, beside it once unlinked, after its close."""
    from uvsweep.probe.posix import OPEN_FLAGS, SYSCALLS

    path.touch()
    fd = os.open(path, OPEN_FLAGS)
    seen = [SYSCALLS.alone(fd)]
    other = os.open(path, os.O_RDWR)
    seen.append(SYSCALLS.alone(fd))
    path.unlink()
    seen.append(SYSCALLS.alone(fd))
    os.close(other)
    seen.append(SYSCALLS.alone(fd))
    os.close(fd)
    return seen


def test_the_lease_is_granted_only_to_the_one_open_file_description_as_linux_grants_it(
    tmp_path: Path,
) -> None:
    real = _real_alone_steps(tmp_path / NAME)
    assert real == [True, False, False, True]

    kernel, _ino = _kernel()
    dir_fd = kernel.open_dir(10, TMP)
    fd = kernel.open(10, f"{TMP}/{NAME}", os.O_RDONLY, 0, None)
    seen = [kernel.alone(10, fd)]
    other = kernel.open(11, f"{TMP}/{NAME}", os.O_RDWR, 0, None)
    seen.append(kernel.alone(10, fd))
    kernel.unlink(10, NAME, dir_fd)
    seen.append(kernel.alone(10, fd))
    kernel.close(11, other)
    seen.append(kernel.alone(10, fd))
    assert seen == real
    kernel.inherit(10, 12, [fd])  # the same OFD in another process: still alone
    assert kernel.alone(10, fd) is True
    blind = Kernel(leases=False)
    blind.make_file(NAME)
    blind.spawn(10, "uvsweep")
    assert blind.alone(10, blind.open(10, f"{TMP}/{NAME}", os.O_RDONLY, 0, None)) is None


def test_refused_links_fail_as_linux_fails_root_without_cap_sys_ptrace(tmp_path: Path) -> None:
    """The real OS: root whose bounding set lacks CAP_SYS_PTRACE lists another user's fds and
    is refused each link (EACCES); the simulated kernel refuses a uv process's the same way."""
    from tests.conftest import need, other_user_python

    found = other_user_python()
    need(found is not None, "root and the user nobody (setpriv, util-linux) to run as another user")
    assert found is not None
    uid, gid, python = found
    holder = procs.popen(
        ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", python, "-c",
         "import sys; print('up', flush=True); sys.stdin.read()"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, lasting=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "up\n"
        look = (
            "import errno, os, sys\nfds = os.listdir(f'/proc/{sys.argv[1]}/fd')\ntry:\n"
            "    os.readlink(f'/proc/{sys.argv[1]}/fd/{fds[0]}')\n    print('read')\n"
            "except OSError as err:\n    print(bool(fds), errno.errorcode[err.errno])\n"
        )
        done = procs.run(
            ["setpriv", "--inh-caps=-sys_ptrace", "--bounding-set=-sys_ptrace", sys.executable,
             "-c", look, str(holder.pid)],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip
        assert done.stdout == "True EACCES\n", done
    finally:
        procs.stop(holder, grace=0)

    kernel = Kernel(refused_links=True)
    kernel.make_file(NAME)
    kernel.spawn(10, "uvsweep")
    kernel.spawn(11, "uv")
    fd = kernel.open(11, f"{TMP}/{NAME}", os.O_RDWR, 0, None)
    link = f"{PROC}/11/fd/{fd}"
    assert kernel.proc_list_dir(f"{PROC}/11/fd") == [str(fd)]
    with pytest.raises(PermissionError):
        kernel.readlink(10, link)
    with pytest.raises(PermissionError):
        kernel.stat(link)
    assert kernel.readlink(11, link) == f"{TMP}/{NAME}"  # its own links: read


# ---- a kept lease on a linked file, and the opens that meet it -----------------------------------


def _real_kept_lease(path: Path) -> list[object]:
    """On the real OS: a kept lease, an unlink (breaks none), an `O_NONBLOCK` open of a leased
    file (EWOULDBLOCK, and the lease broken), a blocking opener (waits, then gets the inode it
    resolved, unlinked) once the broken lease is given up."""
    from uvsweep.probe.posix import OPEN_FLAGS, SYSCALLS

    seen: list[object] = []
    path.touch()
    fd = os.open(path, OPEN_FLAGS)
    seen.append(SYSCALLS.alone(fd, keep=True))
    other = path.with_name("uv-1111111111111111.lock")
    other.touch()
    kept = os.open(other, OPEN_FLAGS)
    assert SYSCALLS.alone(kept, keep=True) is True
    os.unlink(other)
    seen.append(SYSCALLS.lease_broken(kept))  # an unlink breaks no lease
    os.close(kept)
    try:
        os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as err:
        seen.append(errno.errorcode[err.errno])
    seen.append(SYSCALLS.lease_broken(fd))  # broken, and given up
    seen.append(SYSCALLS.alone(fd, keep=True))  # nobody else: granted again
    ino = os.fstat(fd).st_ino
    opener = procs.popen(
        [sys.executable, "-c",
         ("import os, sys\nfd = os.open(sys.argv[1], os.O_RDWR)\nst = os.fstat(fd)\n"
         "print(st.st_ino, st.st_nlink, flush=True)\n"), str(path)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while fcntl.fcntl(fd, fcntl.F_GETLEASE) == fcntl.F_WRLCK:  # until its open meets it
            assert time.monotonic() < deadline
            time.sleep(0.01)
        seen.append(opener.poll() is None)  # it waits in open()
        seen.append(SYSCALLS.alone(fd, keep=True))  # its open is counted: refused
        os.unlink(path)
        path.touch()  # a new file at the name: the waiting opener never looks at it
        seen.append(SYSCALLS.lease_broken(fd))  # given up: its open goes on
        assert opener.stdout is not None
        got_ino, got_links = map(int, opener.stdout.readline().split())
        seen.append((got_ino == ino, got_links))
    finally:
        procs.stop(opener, grace=0)
        os.close(fd)
    return seen


def test_a_kept_lease_is_broken_by_any_open_as_linux_breaks_it(tmp_path: Path) -> None:
    real = _real_kept_lease(tmp_path / NAME)
    assert real == [True, False, "EAGAIN", True, True, True, False, True, (True, 0)]

    kernel, ino = _kernel()
    dir_fd = kernel.open_dir(10, TMP)
    fd = kernel.open(10, f"{TMP}/{NAME}", OPEN_FLAGS, 0, None)
    seen: list[object] = [kernel.alone(10, fd, keep=True)]
    other = kernel.make_file("uv-1111111111111111.lock")
    kept = kernel.open(10, f"{TMP}/uv-1111111111111111.lock", OPEN_FLAGS, 0, None)
    assert kernel.alone(10, kept, keep=True) is True
    kernel.unlink(10, "uv-1111111111111111.lock", dir_fd)
    seen.append(kernel.lease_broken(10, kept))
    kernel.close(10, kept)
    assert other.nlink == 0
    try:
        kernel.open(12, f"{TMP}/{NAME}", os.O_RDONLY | os.O_NONBLOCK, 0, None)
    except OSError as err:
        seen.append(errno.errorcode[err.errno])
    seen.append(kernel.lease_broken(10, fd))
    seen.append(kernel.alone(10, fd, keep=True))
    assert kernel.open(11, f"{TMP}/{NAME}", os.O_RDWR, 0, None) is BLOCKED
    seen.append(kernel.blocked(11))
    assert kernel.proc_list_dir(f"{PROC}/11/fd") == []  # no fd yet: no walk sees it
    seen.append(kernel.alone(10, fd, keep=True))
    kernel.unlink(10, NAME, dir_fd)
    kernel.make_file(NAME)
    seen.append(kernel.lease_broken(10, fd))
    assert not kernel.blocked(11)
    got = kernel.fstat(11, int(kernel.finish_open(11)))  # type: ignore[call-overload]
    seen.append((got.st_ino == ino, got.st_nlink))
    assert seen == real


def test_a_kept_lease_goes_with_the_last_close_and_its_waiters_with_their_process() -> None:
    """The lease belongs to the OFD: a child sharing it keeps it past the parent's close; the
    last close releases it, and a waiting opener goes on. An exiting opener stops waiting."""
    kernel, _ino = _kernel()
    fd = kernel.open(10, f"{TMP}/{NAME}", OPEN_FLAGS, 0, None)
    assert kernel.alone(10, fd, keep=True) is True
    kernel.inherit(10, 12, [fd])
    assert kernel.open(11, f"{TMP}/{NAME}", os.O_RDWR, 0, None) is BLOCKED
    kernel.close(10, fd)
    assert kernel.blocked(11)  # the keeper's fd still holds the OFD, and the lease
    kernel.exit(11)
    assert kernel.lease_waiters == []
    kernel.spawn(13, "uv")
    assert kernel.open(13, f"{TMP}/{NAME}", os.O_RDWR, 0, None) is BLOCKED
    fingerprint = kernel.fingerprint()
    kernel.close(12, fd)
    assert kernel.fingerprint() != fingerprint
    assert not kernel.blocked(13)
    assert kernel.finish_open(13) == 3
    assert kernel.alone(13, 3, keep=False) is True
