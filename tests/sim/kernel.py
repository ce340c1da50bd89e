"""A small simulated Unix kernel: one temp dir, inodes, open file descriptions, flock, /proc.

Only what the removal protocol and uv touch is modelled, but that part as strictly as Linux does
it (`fs/locks.c`, `fs/namei.c`, `fs/proc/`):

- a directory of names -> inodes (dev, ino, mode, uid, size, nlink, mtime); an unlinked inode
  lives on while some open file description refers to it;
- per-process fd tables of open file descriptions (OFDs); `open` with `O_CREAT`, `O_EXCL`,
  `O_NOFOLLOW`, `O_DIRECTORY`; `renameat2(RENAME_NOREPLACE)`; `rename` (replacing); `unlink`;
  `close`;
- `flock` locks belong to the OFD: exclusive/shared, non-blocking (`EWOULDBLOCK`) or blocking. A
  blocked request is a *waiter* listed under the lock that blocks it; when that lock goes (unlock,
  close of the OFD, a conversion), every waiter on it is woken and **leaves the table** until it
  retries, exactly as `locks_wake_up_blocks` does, so anybody may take the lock first;
- `/proc/locks` text in the kernel's format, `/proc` (pids), `/proc/<pid>/fd` (fd numbers),
  `readlink` of an fd link (the path, with ` (deleted)` once unlinked) and `stat` through it
  (with `refused_links`, EACCES for a uv process's links, as root without `CAP_SYS_PTRACE`
  gets for another user's);
- a write lease (`alone`, `F_SETLEASE F_WRLCK`): granted only while no other OFD refers to the
  inode (an opener waiting on a lease counts: its open is counted before it waits), given back
  at once or kept (`keep`) by the OFD until its last close or an `F_UNLCK`. Any `open` of a
  leased inode, by anyone (the holder's own process too), breaks the lease: with `O_NONBLOCK`
  it fails with `EWOULDBLOCK`; without, the opener waits (not runnable) until the lease goes,
  then completes its open on the inode it resolved, linked or not (it never looks at the name
  again). `lease_broken` is `F_GETLEASE`, and `F_UNLCK` when broken. An unlink breaks no lease
  (only NFS delegations); `lease-break-time` (45 s) is beyond the model's waits.

Every method is called by exactly one actor at a time (the scheduler guarantees it), with the
pid of the calling process. A blocking `flock` returns `BLOCKED` instead of sleeping: the caller
(`actors.SimCalls`) parks its actor until the kernel wakes it, then retries.

The OS-specific views live in one place (`proc_*` methods) so a macOS or Windows flavour (no
/proc; `LockFileEx` and delete-on-close semantics) can be added beside them later.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field

#: flock operations (the same numbers on Linux, macOS and the BSDs).
LOCK_SH, LOCK_EX, LOCK_NB, LOCK_UN = 1, 2, 4, 8

#: The simulated file system's device: tmpfs-like, major 0, as on most /tmp mounts.
SIM_DEV = os.makedev(0, 0x2A)
#: Where the simulated temp dir and /proc are (paths the remover is given).
TMP = "/sim/tmp"
PROC = "/sim/proc"
#: mtime of the files that exist before the run (old enough for any policy).
EPOCH = 1_700_000_000.0


class _Blocked:
    def __repr__(self) -> str:
        return "BLOCKED"


BLOCKED = _Blocked()  # what a blocking flock (or an open that meets a lease) returns: wait


def _err(code: int, name: str | None = None) -> OSError:
    """An OSError of the right subclass (FileNotFoundError, BlockingIOError, ...)."""
    if name is None:
        return OSError(code, os.strerror(code))
    return OSError(code, os.strerror(code), name)


@dataclass
class Inode:
    ino: int
    mode: int
    uid: int
    mtime: float
    size: int = 0
    nlink: int = 1
    path: str = ""  # the last path it had (what /proc/<pid>/fd shows)
    # the test's view only (red-team P2's oracle, `world.Actor.enter_critical`), never a call's:
    # the number of arrivals at a name when it arrived at its own (`Kernel.arrivals`), that
    # number when it left its name (-1: never), whether it left by a planter's act, whether a
    # uvsweep process (remover, keeper) ever locked it
    arrival: int = 0
    left_at: int = -1
    left_by_planter: bool = False
    taken: bool = False

    def stat(self) -> os.stat_result:
        gid = os.getegid()
        return os.stat_result(
            (self.mode, self.ino, SIM_DEV, self.nlink, self.uid, gid, self.size,
             self.mtime, self.mtime, self.mtime)
        )  # fmt: skip


@dataclass
class OpenFile:
    """An open file description (what `open` creates, `close` of its last fd drops)."""

    inode: Inode | None  # None for the directory
    flags: int
    pid: int  # the process that opened it, and its fd there: the OFD's name in fingerprints
    fd: int
    refs: int = 1  # fds referring to it, in any process (a keeper inherits the cleaner's)
    # the test's view: its file left the name by a planter's act while this was open (P2)
    lost_to_planter: bool = False


@dataclass
class Lock:
    ofd: OpenFile
    exclusive: bool
    pid: int  # the process that took it (what /proc/locks prints)


@dataclass
class Waiter:
    ofd: OpenFile
    exclusive: bool
    pid: int
    blocker: OpenFile  # the OFD whose lock it is queued behind


@dataclass
class Lease:
    """A write lease kept by `ofd` (`F_SETLEASE F_WRLCK`, until its last close or `F_UNLCK`)."""

    ofd: OpenFile
    broken: bool = False  # an open met it (`F_GETLEASE` no longer says `F_WRLCK`)


@dataclass
class LeaseWaiter:
    """An `open` without `O_NONBLOCK` that met a lease: it resolved `inode` and is counted as an
    open of it (no lease can be granted meanwhile), but has no fd yet (no `/proc` shows it)."""

    pid: int
    inode: Inode
    flags: int


@dataclass
class Process:
    pid: int
    name: str
    fds: dict[int, OpenFile] = field(default_factory=dict)
    alive: bool = True
    uid: int = 0  # its effective uid (the kernel's `euid` unless spawned as another user)


class Kernel:
    """The shared state every actor's system calls act on."""

    def __init__(self, umask: int = 0o022, *, refused_links: bool = False, leases: bool = True):
        self.umask = umask
        #: root without CAP_SYS_PTRACE (red-team B2): a uv process's fd links are listed but
        #: reading one fails with EACCES (`ptrace_may_access`), for every other process
        self.refused_links = refused_links
        #: whether the file system grants leases (`alone`); where not, nobody can tell
        self.leases = leases
        self.euid = os.geteuid()
        self.names: dict[str, Inode] = {}
        self.dir_inode = Inode(ino=2, mode=stat.S_IFDIR | 0o1777, uid=0, mtime=EPOCH, path=TMP)
        self.next_ino = 100
        self.locks: list[Lock] = []  # in the order they were taken (the /proc/locks order)
        self.waiters: list[Waiter] = []
        self.held_leases: list[Lease] = []  # kept write leases, in the order they were granted
        self.lease_waiters: list[LeaseWaiter] = []  # opens waiting for a lease to go
        self.procs: dict[int, Process] = {}
        self.now = 0.0  # virtual monotonic time
        self.version = 0  # bumped by every change another process could see
        self.arrivals = 0  # files that came to a name so far (the test's view: `Inode.arrival`)
        #: the uid whose acts count as a planter's (`world.PLANTER_UID`; the test's view)
        self.planter_uid = 65534

    # ---- set-up --------------------------------------------------------------------------------

    def spawn(self, pid: int, name: str, uid: int | None = None) -> Process:
        proc = Process(pid, name, uid=self.euid if uid is None else uid)
        self.procs[pid] = proc
        return proc

    def make_file(self, name: str, mode: int = 0o666, size: int = 0) -> Inode:
        """A file that is there before anything runs (an orphaned lock file, say)."""
        inode = self._new_inode(stat.S_IFREG | mode, EPOCH - 3600)
        inode.size = size
        inode.path = f"{TMP}/{name}"
        self._arrive(inode)
        self.names[name] = inode
        return inode

    # ---- the test's view of names (P2's oracle): nothing a call returns depends on it ----------

    def _arrive(self, inode: Inode) -> None:
        self.arrivals += 1
        inode.arrival = self.arrivals

    def _leave(self, pid: int, inode: Inode) -> None:
        inode.left_at = self.arrivals
        inode.left_by_planter = self._proc(pid).uid == self.planter_uid
        if inode.left_by_planter:
            for proc in self.procs.values():
                for ofd in proc.fds.values():
                    if ofd.inode is inode:
                        ofd.lost_to_planter = True

    def _new_inode(self, mode: int, mtime: float, uid: int | None = None) -> Inode:
        self.next_ino += 1
        return Inode(ino=self.next_ino, mode=mode, uid=self.euid if uid is None else uid,
                     mtime=mtime)  # fmt: skip

    def _may(self, pid: int, inode: Inode, flags: int) -> None:
        """EACCES unless `pid` may open `inode` for `flags` (root may always; the owner has the
        owner's bits; everybody shares one group here, so anyone else the group's)."""
        uid = self._proc(pid).uid
        if uid == 0:
            return
        bits = (inode.mode >> 6 if uid == inode.uid else inode.mode >> 3) & 0o7
        access = flags & os.O_ACCMODE
        wanted = {os.O_RDONLY: 0o4, os.O_WRONLY: 0o2, os.O_RDWR: 0o6}[access]
        if bits & wanted != wanted:
            raise _err(errno.EACCES)

    def _may_remove(self, pid: int, inode: Inode, name: str) -> None:
        """EPERM for removing (or renaming away) `inode` in the sticky temp dir unless `pid`
        owns it, owns the dir or is root (`may_delete` -> `check_sticky`)."""
        uid = self._proc(pid).uid
        sticky = self.dir_inode.mode & stat.S_ISVTX
        if sticky and uid not in (0, inode.uid, self.dir_inode.uid):
            raise _err(errno.EPERM, name)

    def _changed(self) -> None:
        self.version += 1

    # ---- path and fd resolution ----------------------------------------------------------------

    def _proc(self, pid: int) -> Process:
        return self.procs[pid]

    def _ofd(self, pid: int, fd: int) -> OpenFile:
        found = self._proc(pid).fds.get(fd)
        if found is None:
            raise _err(errno.EBADF)
        return found

    def _in_dir(self, pid: int, name: str, dir_fd: int | None) -> str:
        """The entry name in the temp dir for `name` (relative to `dir_fd`, or absolute)."""
        if dir_fd is not None and not name.startswith("/"):
            ofd = self._ofd(pid, dir_fd)
            if ofd.inode is not None:
                raise _err(errno.ENOTDIR, name)
            base = name
        else:
            head, _, base = name.rpartition("/")
            if head != TMP:
                raise _err(errno.ENOENT, name)
        if not base or "/" in base or base in (".", ".."):
            raise _err(errno.EINVAL, name)
        return base

    def _install(self, pid: int, inode: Inode | None, flags: int) -> int:
        proc = self._proc(pid)
        fd = 3
        while fd in proc.fds:
            fd += 1
        proc.fds[fd] = OpenFile(inode, flags, pid, fd)
        self._changed()  # a new /proc/<pid>/fd entry
        return fd

    # ---- file system calls ---------------------------------------------------------------------

    def open_dir(self, pid: int, path: str) -> int:
        if path.rstrip("/") != TMP:
            raise _err(errno.ENOENT, path)
        return self._install(pid, None, os.O_RDONLY | os.O_DIRECTORY)

    def list_dir(self, pid: int, where: int | str) -> list[str]:
        if isinstance(where, int):
            ofd = self._ofd(pid, where)
            if ofd.inode is not None:
                raise _err(errno.ENOTDIR)
            return sorted(self.names)  # one fixed order (tmpfs has its own; the remover sorts)
        return self.proc_list_dir(where)

    def lstat(self, pid: int, name: str, dir_fd: int) -> os.stat_result:
        base = self._in_dir(pid, name, dir_fd)
        inode = self.names.get(base)
        if inode is None:
            raise _err(errno.ENOENT, name)
        return inode.stat()

    def open(self, pid: int, name: str, flags: int, mode: int, dir_fd: int | None) -> int:
        base = self._in_dir(pid, name, dir_fd)
        inode = self.names.get(base)
        if inode is not None:
            if flags & os.O_CREAT and flags & os.O_EXCL:
                raise _err(errno.EEXIST, name)
            if stat.S_ISLNK(inode.mode) and flags & os.O_NOFOLLOW:
                raise _err(errno.ELOOP, name)
            if stat.S_ISDIR(inode.mode) and flags & os.O_ACCMODE != os.O_RDONLY:
                raise _err(errno.EISDIR, name)
            if flags & os.O_DIRECTORY and not stat.S_ISDIR(inode.mode):
                raise _err(errno.ENOTDIR, name)
            self._may(pid, inode, flags)
            lease = self._lease_on(inode)
            if lease is not None:  # `break_lease`: any open, the holder's own process's too
                if not lease.broken:
                    lease.broken = True
                    self._changed()
                if flags & os.O_NONBLOCK:
                    raise _err(errno.EWOULDBLOCK, name)
                self.lease_waiters.append(LeaseWaiter(pid, inode, flags))
                self._changed()
                return BLOCKED
            return self._install(pid, inode, flags)
        if not flags & os.O_CREAT:
            raise _err(errno.ENOENT, name)
        creator = self._proc(pid).uid
        inode = self._new_inode(
            stat.S_IFREG | (mode & 0o7777 & ~self.umask), EPOCH + self.now, creator
        )
        inode.path = f"{TMP}/{base}"
        self._arrive(inode)
        self.names[base] = inode
        return self._install(pid, inode, flags)

    def finish_open(self, pid: int) -> object:
        """The open `pid` waits with on a lease (`open` returned `BLOCKED`): its fd once no
        lease is left on the inode it resolved (whatever name leads to it now), else `BLOCKED`."""
        waiter = next(w for w in self.lease_waiters if w.pid == pid)
        if self._lease_on(waiter.inode) is not None:
            return BLOCKED
        self.lease_waiters.remove(waiter)
        return self._install(pid, waiter.inode, waiter.flags)

    def fstat(self, pid: int, fd: int) -> os.stat_result:
        ofd = self._ofd(pid, fd)
        return ofd.inode.stat() if ofd.inode is not None else self.dir_inode.stat()

    def fchmod(self, pid: int, fd: int, mode: int) -> None:
        ofd = self._ofd(pid, fd)
        if ofd.inode is None:
            raise _err(errno.EPERM)
        if self._proc(pid).uid not in (0, ofd.inode.uid):
            raise _err(errno.EPERM)  # only the owner (or root) changes a file's mode
        ofd.inode.mode = stat.S_IFMT(ofd.inode.mode) | (mode & 0o7777)
        self._changed()

    def rename_noreplace(self, pid: int, old: str, new: str, dir_fd: int | None) -> None:
        """`renameat2(..., RENAME_NOREPLACE)`: EEXIST if `new` is there."""
        old_base = self._in_dir(pid, old, dir_fd)
        new_base = self._in_dir(pid, new, dir_fd)
        inode = self.names.get(old_base)
        if inode is None:
            raise _err(errno.ENOENT, old)
        if new_base in self.names:
            raise _err(errno.EEXIST, new)
        self._may_remove(pid, inode, old)
        del self.names[old_base]
        self.names[new_base] = inode
        inode.path = f"{TMP}/{new_base}"
        self._arrive(inode)
        self._changed()

    def rename(self, pid: int, old: str, new: str, dir_fd: int | None) -> None:
        """`renameat(2)`: a file at `new` is replaced (atomically: the name is never free). In
        the sticky dir both the file moved and the one replaced must be the caller's, the
        dir's owner's, or the caller root (`may_delete` on each)."""
        old_base = self._in_dir(pid, old, dir_fd)
        new_base = self._in_dir(pid, new, dir_fd)
        inode = self.names.get(old_base)
        if inode is None:
            raise _err(errno.ENOENT, old)
        self._may_remove(pid, inode, old)
        replaced = self.names.get(new_base)
        if replaced is inode:
            return  # two links to one inode: nothing to do (POSIX)
        if replaced is not None:
            self._may_remove(pid, replaced, new)
            if stat.S_ISDIR(replaced.mode):
                raise _err(errno.EISDIR, new)
        del self.names[old_base]
        self.names[new_base] = inode
        inode.path = f"{TMP}/{new_base}"
        self._arrive(inode)
        if replaced is not None:
            replaced.nlink -= 1
            self._leave(pid, replaced)
        self._changed()

    def unlink(self, pid: int, name: str, dir_fd: int | None) -> None:
        base = self._in_dir(pid, name, dir_fd)
        inode = self.names.get(base)
        if inode is None:
            raise _err(errno.ENOENT, name)
        self._may_remove(pid, inode, name)  # may_delete: the sticky check comes first
        if stat.S_ISDIR(inode.mode):
            raise _err(errno.EISDIR, name)
        del self.names[base]
        inode.nlink -= 1
        self._leave(pid, inode)
        self._changed()

    def close(self, pid: int, fd: int) -> None:
        ofd = self._ofd(pid, fd)
        del self._proc(pid).fds[fd]
        ofd.refs -= 1
        if ofd.refs == 0:
            self._drop_lock(ofd)  # the last fd of the OFD: its flock goes with it
            self._drop_lease(ofd)  # and its lease (`locks_remove_file`)
        self._changed()

    def inherit(self, parent: int, child: int, fds: list[int]) -> None:
        """`child` gets `parent`'s `fds`, same numbers, same OFDs (fork + exec with pass_fds)."""
        for fd in fds:
            ofd = self._ofd(parent, fd)
            ofd.refs += 1
            self._proc(child).fds[fd] = ofd
        self._changed()

    def exit(self, pid: int) -> None:
        """The process ends: every fd is closed, /proc/<pid> disappears."""
        proc = self._proc(pid)
        for fd in sorted(proc.fds):
            self.close(pid, fd)
        proc.alive = False
        self.waiters = [w for w in self.waiters if w.pid != pid]
        self.lease_waiters = [w for w in self.lease_waiters if w.pid != pid]
        self._changed()

    # ---- flock ---------------------------------------------------------------------------------

    def flock(self, pid: int, fd: int, operation: int) -> object:
        """None when done, `BLOCKED` when a blocking request has to wait (it is then queued)."""
        ofd = self._ofd(pid, fd)
        if ofd.inode is None:
            raise _err(errno.EBADF)  # flock on our dir fd is legal in Linux, but never done here
        if operation & LOCK_UN:
            self._drop_lock(ofd)
            return None
        if operation & (LOCK_EX | LOCK_SH) == 0:
            raise _err(errno.EINVAL)
        exclusive = bool(operation & LOCK_EX)
        mine = self._lock_of(ofd)
        if mine is not None:
            if mine.exclusive == exclusive:
                return None
            self._drop_lock(ofd)  # flock converts by dropping first (not atomic), as Linux does
        blocker = self._conflict(ofd, exclusive)
        if blocker is None:
            self.waiters = [w for w in self.waiters if w.ofd is not ofd]
            self.locks.append(Lock(ofd, exclusive, pid))
            if self._proc(pid).name == "uvsweep":
                ofd.inode.taken = True  # the test's view (P2's oracle)
            self._changed()
            return None
        if operation & LOCK_NB:
            raise _err(errno.EWOULDBLOCK)
        self.waiters.append(Waiter(ofd, exclusive, pid, blocker.ofd))
        self._changed()  # a "->" line in /proc/locks
        return BLOCKED

    def _lock_of(self, ofd: OpenFile) -> Lock | None:
        for lock in self.locks:
            if lock.ofd is ofd:
                return lock
        return None

    def _conflict(self, ofd: OpenFile, exclusive: bool) -> Lock | None:
        for lock in self.locks:
            same_file = lock.ofd.inode is ofd.inode and lock.ofd is not ofd
            if same_file and (exclusive or lock.exclusive):
                return lock
        return None

    def _drop_lock(self, ofd: OpenFile) -> None:
        lock = self._lock_of(ofd)
        if lock is None:
            return
        self.locks.remove(lock)
        # every waiter behind it is woken and leaves the table until it retries
        self.waiters = [w for w in self.waiters if w.blocker is not ofd]
        self._changed()

    def blocked(self, pid: int) -> bool:
        """Whether `pid` is queued on a lock, or its open waits on a lease that is still there
        (not runnable until woken)."""
        return any(w.pid == pid for w in self.waiters) or any(
            w.pid == pid and self._lease_on(w.inode) is not None for w in self.lease_waiters
        )

    # ---- leases --------------------------------------------------------------------------------

    def _lease_on(self, inode: Inode) -> Lease | None:
        for lease in self.held_leases:
            if lease.ofd.inode is inode:
                return lease
        return None

    def _lease_of(self, ofd: OpenFile) -> Lease | None:
        for lease in self.held_leases:
            if lease.ofd is ofd:
                return lease
        return None

    def _drop_lease(self, ofd: OpenFile) -> None:
        lease = self._lease_of(ofd)
        if lease is not None:
            self.held_leases.remove(lease)  # its waiting openers may go on
            self._changed()

    def lease_broken(self, pid: int, fd: int) -> bool:
        """`F_GETLEASE` on `fd`: False while our kept lease is intact (`F_WRLCK`); else True,
        and the lease (broken, or none) is given up (`F_UNLCK`), so a waiting open goes on."""
        ofd = self._ofd(pid, fd)
        lease = self._lease_of(ofd)
        if lease is not None and not lease.broken:
            return False
        self._drop_lease(ofd)
        return True

    # ---- the /proc views (Linux) ---------------------------------------------------------------

    def proc_locks(self) -> bytes:
        """`/proc/locks`: each lock, then the waiters queued behind it, `N: -> ...`."""
        lines = []
        major, minor = os.major(SIM_DEV), os.minor(SIM_DEV)
        for number, lock in enumerate(self.locks, 1):
            assert lock.ofd.inode is not None
            dev = f"{major:02x}:{minor:02x}:{lock.ofd.inode.ino}"
            mode = "WRITE" if lock.exclusive else "READ"
            lines.append(f"{number}: FLOCK  ADVISORY  {mode} {lock.pid} {dev} 0 EOF")
            for waiter in self.waiters:
                if waiter.blocker is lock.ofd:
                    mode = "WRITE" if waiter.exclusive else "READ"
                    lines.append(f"{number}: -> FLOCK  ADVISORY  {mode} {waiter.pid} {dev} 0 EOF")
        return "".join(line + "\n" for line in lines).encode()

    def _proc_parts(self, path: str) -> list[str]:
        if not path.startswith(PROC + "/") and path != PROC:
            raise _err(errno.ENOENT, path)
        return [part for part in path[len(PROC) :].split("/") if part]

    def _live(self, pid_text: str, path: str) -> Process:
        proc = self.procs.get(int(pid_text)) if pid_text.isdigit() else None
        if proc is None or not proc.alive:
            raise _err(errno.ENOENT, path)
        return proc

    def proc_list_dir(self, path: str) -> list[str]:
        parts = self._proc_parts(path)
        if not parts:
            pids = [str(pid) for pid, proc in self.procs.items() if proc.alive]
            return ["self", "locks", *pids]
        if len(parts) == 2 and parts[1] == "fd":
            return [str(fd) for fd in sorted(self._live(parts[0], path).fds)]  # as Linux does
        raise _err(errno.ENOENT, path)

    def read(self, path: str) -> bytes:
        if path == f"{PROC}/locks":
            return self.proc_locks()
        raise _err(errno.ENOENT, path)

    def _fd_link(self, path: str) -> OpenFile:
        parts = self._proc_parts(path)
        if len(parts) != 3 or parts[1] != "fd" or not parts[2].isdigit():
            raise _err(errno.ENOENT, path)
        ofd = self._live(parts[0], path).fds.get(int(parts[2]))
        if ofd is None:
            raise _err(errno.ENOENT, path)
        return ofd

    def _refused(self, pid: int | None, path: str) -> None:
        """EACCES where `refused_links` keeps another process's uv fd links from `pid`."""
        owner = self.procs[int(self._proc_parts(path)[0])]
        if self.refused_links and owner.name == "uv" and owner.pid != pid:
            raise _err(errno.EACCES, path)

    def readlink(self, pid: int, path: str) -> str:
        if path == f"{PROC}/self":
            return str(pid)
        ofd = self._fd_link(path)
        self._refused(pid, path)
        if ofd.inode is None:
            return TMP
        return ofd.inode.path + (" (deleted)" if ofd.inode.nlink == 0 else "")

    def stat(self, path: str) -> os.stat_result:
        ofd = self._fd_link(path)
        self._refused(None, path)
        return (ofd.inode or self.dir_inode).stat()

    def alone(self, pid: int, fd: int, keep: bool = False) -> bool | None:
        """`F_SETLEASE` `F_WRLCK` on `fd`: granted (True) only while no other OFD refers to its
        inode (`check_conflicting_open`: any process, open, waiting or holding, the inode linked
        or not, and an opener waiting on a lease, whose open is counted already); EAGAIN (False)
        otherwise, a lease already kept left as it was; None without leases. Granted, it is
        given back at once (`F_UNLCK`, a kept one too), or with `keep` kept by the OFD (one
        already kept stays as it is, broken or not: Linux keeps its pending break)."""
        ofd = self._ofd(pid, fd)
        if not self.leases or ofd.inode is None:
            return None
        for proc in self.procs.values():
            for other in proc.fds.values():
                if other is not ofd and other.inode is ofd.inode:
                    return False
        if any(w.inode is ofd.inode for w in self.lease_waiters):
            return False
        if not keep:
            self._drop_lease(ofd)
        elif self._lease_of(ofd) is None:
            self.held_leases.append(Lease(ofd))
            self._changed()
        return True

    # ---- for the scheduler ---------------------------------------------------------------------

    def fingerprint(self) -> tuple[object, ...]:
        """Everything observable, with OFDs named by (pid, fd) so equal states compare equal."""
        names = tuple(sorted((name, inode.ino) for name, inode in self.names.items()))
        inodes: dict[int, Inode] = {i.ino: i for i in self.names.values()}
        fds = []
        for pid, proc in sorted(self.procs.items()):
            for fd, ofd in sorted(proc.fds.items()):
                if ofd.inode is not None:
                    inodes[ofd.inode.ino] = ofd.inode
                fds.append((pid, fd, ofd.inode.ino if ofd.inode else 0, ofd.flags,
                            ofd.lost_to_planter))  # fmt: skip
            fds.append((pid, proc.alive))
        for waiting in self.lease_waiters:
            inodes[waiting.inode.ino] = waiting.inode  # (it may be on no name, in no fd)
        shape = tuple(
            (
                i.ino,
                i.mode,
                i.uid,
                i.nlink,
                i.size,
                i.mtime,
                i.path,
                i.arrival,
                i.left_at,
                i.left_by_planter,
                i.taken,
            )
            for _, i in sorted(inodes.items())
        )
        locks = tuple((lk.ofd.pid, lk.ofd.fd, lk.exclusive) for lk in self.locks)
        waiters = tuple(
            (w.ofd.pid, w.ofd.fd, w.exclusive, w.blocker.pid, w.blocker.fd) for w in self.waiters
        )
        leases = tuple((ls.ofd.pid, ls.ofd.fd, ls.broken) for ls in self.held_leases)
        opening = tuple((w.pid, w.inode.ino, w.flags) for w in self.lease_waiters)
        return (names, shape, tuple(fds), locks, waiters, leases, opening, self.next_ino,
                self.now, self.arrivals)  # fmt: skip
