"""The Unix half every Unix backend shares: dir fd, lstat, `O_NOFOLLOW` open and a try-lock.

Every open is relative to a directory fd and refuses symlinks, and a FIFO is never opened without
`O_NONBLOCK`: a hostile temp dir can neither redirect us nor hang us.
"""
# ruff: noqa: PLC0415 - imports inside functions: only the path that needs a module pays for it

from __future__ import annotations

import contextlib
import errno
import os
import stat
from abc import abstractmethod
from collections.abc import Callable, Container, Iterable, Iterator, Sequence

from uvsweep import system
from uvsweep.model import LockUser, ScanError
from uvsweep.naming import is_lock_name
from uvsweep.probe import Backend, LockProbe, Observation, ProbeResult, classify
from uvsweep.processes import OwnerNames, ProcessTable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NOFOLLOW", 0)
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_CLOEXEC", 0)
)
DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
BUSY_ERRNOS = frozenset({errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES})
#: What an `O_NONBLOCK` open fails with on a file another open file description holds a write
#: lease on (Linux: a cleaner removing it, `LinuxRemover.users_before_unlink`); the open has
#: broken that lease. (`EACCES`, a busy flock's errno elsewhere, is a refused permission here.)
LEASED_ERRNOS = frozenset({errno.EWOULDBLOCK, errno.EAGAIN})

#: (st_dev, st_ino): how a file is known to the lock and open-file tables.
FileKey = tuple[int, int]
DELETED = " (deleted)"

#: flock operations: the same numbers on Linux, macOS and the BSDs (`<sys/file.h>`).
LOCK_SH, LOCK_EX, LOCK_NB, LOCK_UN = 1, 2, 4, 8


#: `fcntl.flock`, once first needed (Unix only: this module imports on every OS, and a
#: function-level import would cost every one of a clean's ten thousand calls).
_FLOCK: Callable[[int, int], None] | None = None


def _load_flock() -> Callable[[int, int], None]:
    global _FLOCK  # noqa: PLW0603 - set once, the first time a lock is taken
    import fcntl

    _FLOCK = fcntl.flock
    return _FLOCK


#: `fcntl.fcntl` and the numbers a write lease needs (`F_SETSIG`, `F_SETLEASE`, `F_WRLCK`,
#: `F_UNLCK`, `SIGURG`, `F_GETLEASE`), once first needed; False where there are no leases (only
#: Linux has them).
_Lease = tuple[Callable[[int, int, int], int], int, int, int, int, int, int]
_LEASE: _Lease | bool | None = None


def _load_lease() -> _Lease | bool:
    global _LEASE  # noqa: PLW0603 - set once, the first time a lease is asked for
    try:
        import fcntl
        import signal

        _LEASE = (
            fcntl.fcntl, fcntl.F_SETSIG, fcntl.F_SETLEASE, fcntl.F_WRLCK, fcntl.F_UNLCK,
            signal.SIGURG, fcntl.F_GETLEASE,
        )  # fmt: skip
    except (ImportError, AttributeError):
        _LEASE = False
    return _LEASE


#: Whether this process ignores `SIGIO` (`ignore_lease_breaks`): then a lease needs no
#: `F_SETSIG` of its own.
_SIGIO_IGNORED = False


def ignore_lease_breaks() -> None:
    """Ignore `SIGIO` in this process, if it takes the default action (which ends the
    process), from the main thread: the kernel signals the holder of a lease that an open
    breaks (`Syscalls.alone`), and uvsweep uses `SIGIO` for nothing else. A lease then costs
    one system call less. For a program's own process (`clean`): children inherit the ignored
    signal, so a library never calls it. Elsewhere each lease asks for `SIGURG` instead
    (ignored by default)."""
    global _SIGIO_IGNORED  # noqa: PLW0603 - once a process
    if _SIGIO_IGNORED or not system.LINUX:
        return
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    try:
        if signal.getsignal(signal.SIGIO) in (signal.SIG_DFL, signal.SIG_IGN):
            signal.signal(signal.SIGIO, signal.SIG_IGN)
            _SIGIO_IGNORED = True
    except (ValueError, OSError, AttributeError):
        pass


#: libc's `setfsuid` (Linux), once first needed; False where it cannot be had.
_SETFSUID: Callable[[int], int] | bool | None = None


def _load_setfsuid() -> Callable[[int], int] | None:
    """libc's `setfsuid`: it sets the calling thread's file-system uid only (glibc makes no
    process-wide call of it, unlike `setuid`), and returns the one it had."""
    global _SETFSUID  # noqa: PLW0603 - set once, the first time it is needed
    if _SETFSUID is None:
        try:
            import ctypes

            function = ctypes.CDLL(None, use_errno=True).setfsuid  # (libc: linked in already)
            function.argtypes, function.restype = [ctypes.c_uint], ctypes.c_int
            _SETFSUID = function
        except (ImportError, OSError, AttributeError):
            _SETFSUID = False
    return _SETFSUID if callable(_SETFSUID) else None


class Syscalls:
    """The OS calls the Unix remover makes, in one place: the seam a simulated kernel replaces.

    The interleaving search in `tests/sim/` runs the real removal protocol against a kernel of
    its own through this class; nothing here may do more than forward one call.
    """

    #: Whether two of these calls may be made at once, from two threads (the lock table read
    #: beside the open-file walk); a simulated kernel that schedules its callers one at a time
    #: says False.
    concurrent = True

    def lstat(self, name: str, dir_fd: int) -> os.stat_result:
        """`lstat` relative to a dir fd."""
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)

    def open(self, name: str, flags: int, mode: int = 0o777, dir_fd: int | None = None) -> int:
        """`openat`."""
        return os.open(name, flags, mode, dir_fd=dir_fd)

    def open_dir(self, path: str) -> int:
        """A dir fd for `path`."""
        return os.open(path, DIR_FLAGS)

    def list_dir(self, where: int | str) -> list[str]:
        """The names in a dir (by fd or path)."""
        return os.listdir(where)

    def list_kinds(self, dir_fd: int) -> list[tuple[str, bool]]:
        """The names in a dir, each with whether it may be a regular file: what the dir's own
        entry says (`d_type`, free with the listing); `lstat` only where it says nothing."""
        with os.scandir(dir_fd) as entries:
            return [(entry.name, entry.is_file(follow_symlinks=False)) for entry in entries]

    def fstat(self, fd: int) -> os.stat_result:
        """`fstat`."""
        return os.fstat(fd)

    def fchmod(self, fd: int, mode: int) -> None:
        """`fchmod`."""
        os.fchmod(fd, mode)

    def flock(self, fd: int, operation: int) -> None:
        """`flock`; OSError (EWOULDBLOCK) when `LOCK_NB` finds it held."""
        (_FLOCK or _load_flock())(fd, operation)

    def alone(self, fd: int, keep: bool = False) -> bool | None:
        """Whether `fd`'s open file description is the only one its file has, anywhere.

        The kernel grants a write lease (`F_SETLEASE` `F_WRLCK`, Linux) only while no other
        open file description of the inode is open for reading or writing: in any process, of
        any user, in any PID namespace, blocked in `flock`, held only by a mapping or in an
        `SCM_RIGHTS` message in flight (its counts go up before an `open` returns and down
        after its locks are dropped). So a lease granted says nobody else has the file open,
        holds it or waits for it, which no `/proc` walk can say where it is refused a process's
        fds. Not counted: an `O_PATH` description, or one opened with access mode 3, neither of
        which can lock the file, but either can reopen it through `/proc/PID/fd` (red-team L3;
        a walk that reads the process's links sees both). The lease is
        given back at once, or with `keep` at the fd's close (any open of the file meanwhile,
        anyone's, breaks it: `lease_broken`; an unlink does not). True: alone; False: another
        description exists (EAGAIN); None: cannot tell (no leases on this OS or file system, or
        not the file's owner without `CAP_LEASE`).

        An `open` that comes while the lease is held waits for its release, and the kernel
        signals us: with `SIGURG`, which is ignored unless handled, not `SIGIO`, whose default
        ends the process (unless `ignore_lease_breaks` made this process ignore `SIGIO`).
        """
        lease = _LEASE if _LEASE is not None else _load_lease()
        if not isinstance(lease, tuple):
            return None
        fcntl, set_sig, set_lease, wrlck, unlck, sigurg, _get_lease = lease
        try:
            if not _SIGIO_IGNORED:
                fcntl(fd, set_sig, sigurg)
            fcntl(fd, set_lease, wrlck)
        except OSError as err:
            if err.errno in (errno.EAGAIN, errno.EWOULDBLOCK):
                return False
            return self._alone_as_owner(fd, keep) if err.errno == errno.EACCES else None
        if not keep:
            with contextlib.suppress(OSError):  # (it goes with the fd's close at the latest)
                fcntl(fd, set_lease, unlck)
        return True

    def lease_broken(self, fd: int) -> bool:
        """Whether an open has met the write lease kept through `fd` (one `alone(fd,
        keep=True)` granted): an open of the file by anyone, after the grant, breaks the lease
        (one without `O_NONBLOCK` then waits in the kernel, one with it fails with
        `EWOULDBLOCK`), and `F_GETLEASE` then says anything but `F_WRLCK`. Such an open may
        have found the file by its name before it was unlinked (held in between by a slow
        permission check, or by the scheduler). A broken lease is given up at once, so that a
        waiting open goes on (on the file the caller still holds) instead of waiting
        `lease-break-time` (45 s) or our close. An error counts as broken: the caller then
        keeps or hands the file over (the safe side)."""
        lease = _LEASE if _LEASE is not None else _load_lease()
        if not isinstance(lease, tuple):
            return True  # (only a kept lease, which only Linux grants, is asked about)
        fcntl, _set_sig, set_lease, wrlck, unlck, _sigurg, get_lease = lease
        try:
            if fcntl(fd, get_lease, 0) == wrlck:
                return False
            with contextlib.suppress(OSError):
                fcntl(fd, set_lease, unlck)
        except OSError:
            pass
        return True

    def alone_all(self, fds: Sequence[int], keep: bool = False) -> list[bool | None]:
        """`alone` for each of `fds`, in order (one call for a batch: the loop is the cost).

        Kept leases in a process that ignores `SIGIO` need one `F_SETLEASE` each: a file whose
        call fails is asked through `alone`, which says why (refused, or not ours to lease).
        (A subclass's own `alone`, a test's seam, is asked for every file.)"""
        lease = _LEASE if _LEASE is not None else _load_lease()
        alone = self.alone
        fast = keep and _SIGIO_IGNORED and type(self).alone is Syscalls.alone
        if not (fast and isinstance(lease, tuple)):
            return [alone(fd, keep) for fd in fds]
        fcntl, set_lease, wrlck = lease[0], lease[2], lease[3]
        answers: list[bool | None] = []
        said = answers.append
        granted: bool | None = True
        for fd in fds:
            try:
                fcntl(fd, set_lease, wrlck)
            except OSError:
                said(alone(fd, keep))
            else:
                said(granted)
        return answers

    def _alone_as_owner(self, fd: int, keep: bool) -> bool | None:
        """`alone` for root without `CAP_LEASE` (Docker's default set) on another user's file:
        the lease taken, and given back, with this thread's fsuid set to the file's owner
        (`setfsuid`, per thread, with `CAP_SETUID`), then set back (red-team L2)."""
        setfsuid = _load_setfsuid()
        lease = _LEASE
        if setfsuid is None or not isinstance(lease, tuple) or os.geteuid() != 0:
            return None
        fcntl, _set_sig, set_lease, wrlck, unlck, _sigurg, _get_lease = lease
        try:
            owner = os.fstat(fd).st_uid
        except OSError:
            return None
        before = setfsuid(owner)
        try:
            fcntl(fd, set_lease, wrlck)
            if not keep:
                with contextlib.suppress(OSError):
                    fcntl(fd, set_lease, unlck)
        except OSError as err:
            return False if err.errno in (errno.EAGAIN, errno.EWOULDBLOCK) else None
        finally:
            setfsuid(before)
        return True

    def close(self, fd: int) -> None:
        """`close` (drops our flock with the last fd of the open file description)."""
        os.close(fd)

    def unlink(self, name: str, dir_fd: int) -> None:
        """`unlinkat`."""
        os.unlink(name, dir_fd=dir_fd)

    def read(self, path: str) -> bytes:
        """A whole (small) file, such as `/proc/locks`."""
        with open(path, "rb") as handle:
            return handle.read()

    def readlink(self, path: str) -> str:
        """`readlink`."""
        return os.readlink(path)

    def stat(self, path: str) -> os.stat_result:
        """`stat`, following links (what `/proc/<pid>/fd/<n>` points at)."""
        return os.stat(path)

    def getpid(self) -> int:
        """Our pid."""
        return os.getpid()

    def getppid(self) -> int:
        """Our parent's pid, in our PID namespace (0: a parent outside it, as for its first
        process)."""
        return os.getppid()

    def geteuid(self) -> int:
        """Our effective uid (the owner of the files we create)."""
        return os.geteuid()

    def monotonic(self) -> float:
        """The monotonic clock."""
        import time

        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        """Sleep."""
        import time

        time.sleep(seconds)


#: The real OS.
SYSCALLS = Syscalls()


class _EveryName:
    """A set of names that holds every name (`ANY_NAME`)."""

    def __contains__(self, name: object) -> bool:
        return True


#: For `opened_key` and the fd walk: every fd link is stat'ed, and the inode alone decides (for
#: a file that may have been moved to another name since it was opened).
ANY_NAME: Container[str] = _EveryName()


def opened_key(
    shown_path: str, stat_path: str, names: Container[str],
    stat: Callable[[str], os.stat_result],
) -> FileKey | None:  # fmt: skip
    """The (dev, ino) another process has open, if its path names one of ours; else None.

    Names are compared first so only candidates cost a stat; the inode then decides, so a file
    of the same name elsewhere (or one renamed since) never counts. `ANY_NAME`: every link.
    """
    base = shown_path.rsplit("/", 1)[-1]
    if base.endswith(DELETED) and base not in names:
        base = base[: -len(DELETED)]  # Linux shows an unlinked file as "<path> (deleted)"
    # uv creates a lock file as a `.tmpXXXXXX` file it then renames into place, or, where the
    # file system refuses RENAME_NOREPLACE, links into place and unlinks: its fd then still
    # shows the temp name, so those are looked at too (by inode, like the rest)
    if base not in names and not base.startswith(".tmp"):
        return None
    try:
        st = stat(stat_path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


#: A dir the file system says is at most this big (bytes, as `st_size` reports a dir: about 20
#: to 40 per entry) is listed in one call, the fastest way; a bigger one, or one whose size says
#: nothing (0), is read as a stream, so a million entries cost memory for their `uv-` names only.
LIST_AT_ONCE = 4 * 1024 * 1024


def uv_names(dir_fd: int) -> Iterator[str]:
    """The names in a dir that start with `uv-`; OSError if it cannot be read."""
    size = os.fstat(dir_fd).st_size
    if 0 < size <= LIST_AT_ONCE:
        # joined, the few `uv-` names are found by `str.find` in C: no Python step per entry
        # (a name never holds a NUL)
        text = "\0" + "\0".join(os.listdir(dir_fd)) + "\0"
        start = text.find("\0uv-")
        while start >= 0:
            end = text.index("\0", start + 1)
            yield text[start + 1 : end]
            start = text.find("\0uv-", end)
        return
    with os.scandir(dir_fd) as entries:
        for entry in entries:
            if entry.name.startswith("uv-"):
                yield entry.name


def try_lock(dir_fd: int, name: str, dev: int, ino: int) -> tuple[LockProbe, str]:
    """A non-blocking *shared* flock probe on the very inode lstat saw, released at once.

    Shared, so two scanners never see each other as holders; uv only takes exclusive locks on
    these files, so a shared probe fails exactly when uv holds one.
    """
    import fcntl  # Unix only; this module imports on every OS

    try:
        fd = os.open(name, OPEN_FLAGS, dir_fd=dir_fd)
    except FileNotFoundError:
        raise  # it vanished after lstat: the caller drops it
    except OSError as err:
        if err.errno in LEASED_ERRNOS:
            return LockProbe.HELD, ""  # a cleaner's lease: it holds the file to remove it
        return LockProbe.UNREADABLE, system.reason(err)
    try:
        found = os.fstat(fd)
        if (found.st_dev, found.st_ino) != (dev, ino):
            return LockProbe.UNREADABLE, "replaced while it was being checked"
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as err:
            if err.errno in BUSY_ERRNOS:
                return LockProbe.HELD, ""
            return LockProbe.UNREADABLE, system.reason(err)
        return LockProbe.FREE, ""
    finally:
        os.close(fd)  # closing drops our shared lock with the open file description


def rw_accessible(st: os.stat_result, euid: int, groups: frozenset[int]) -> bool:
    """Whether a user could open the file read-write (what uv does before it locks)."""
    if euid == 0:
        return True
    mode = st.st_mode
    if st.st_uid == euid:
        return mode & 0o600 == 0o600
    if st.st_gid in groups:
        return mode & 0o060 == 0o060
    return mode & 0o006 == 0o006


#: Dirs bigger than this (bytes, as `st_size` reports a dir: about 20 to 40 per entry, so some
#: 2,000 entries) take longer to list than the lock table takes to read: it is read beside them.
LIST_BESIDE = 64 * 1024


def _dir_size(dir_fd: int) -> int:
    try:
        return os.fstat(dir_fd).st_size
    except OSError:
        return 0


class Beside:
    """`call(*args)` on a thread of its own, started at once, beside the caller's own work;
    `take()` waits for it and returns what it returned, or raises what it raised, on the
    caller's thread. For the reads that mostly wait in the kernel (the lock table's RCU grace
    period): they cost the caller no CPU meanwhile."""

    def __init__(self, call: Callable[..., object], *args: object) -> None:
        import threading  # big dirs and batches only

        self.returned: list[object] = []
        self.failed: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, args=(call, args), daemon=True,
                                       name="uvsweep-beside")  # fmt: skip
        self.thread.start()

    def wait(self) -> None:
        """Until the call is over, whatever it returns or raises (never leave it running: a
        caller may fork next)."""
        self.thread.join()

    def _run(self, call: Callable[..., object], args: tuple[object, ...]) -> None:
        try:
            self.returned.append(call(*args))
        except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
            self.failed.append(err)

    def take(self) -> Any:
        """What the call returned (once it is over); what it raised is raised here."""
        self.wait()
        if self.failed:
            raise self.failed[0]
        return self.returned[0]


class PosixBackend(Backend):
    """Lists each dir through a dir fd and probes every uv lock name in it."""

    def __init__(self, processes: ProcessTable | None = None) -> None:
        self.processes = processes or ProcessTable()
        self.euid = os.geteuid()
        self.groups = frozenset({os.getegid(), *os.getgroups()})
        self.owner_name = OwnerNames()  # the login name for a uid, looked up once

    @abstractmethod
    def load_lock_table(self, result: ProbeResult) -> None:
        """Read the OS's table of locks once per pass, where it has one."""

    @abstractmethod
    def lock_entries(self, obs: Observation, probe: LockProbe) -> None:
        """Fill `obs.holders` and `obs.waiters` from the lock table for this file."""

    @abstractmethod
    def find_openers(
        self, wanted: dict[FileKey, Observation], result: ProbeResult
    ) -> dict[FileKey, list[int]]:
        """Pids (not ours) that have any of the `wanted` files open, in one pass."""

    def probe_needed(self, st: os.stat_result) -> bool:
        """Whether this file must be opened for a try-lock (the lock table may decide alone)."""
        return True

    def observe(self, directory: str, dir_fd: int, name: str) -> Observation | None:
        """lstat one entry and, if it is a regular file, try-lock it. None if it vanished."""
        try:
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            return None
        obs = Observation(
            directory=directory,
            name=name,
            mode=st.st_mode,
            size=st.st_size,
            nlink=st.st_nlink,
            mtime=st.st_mtime,
            dev=st.st_dev,
            ino=st.st_ino,
            uid=st.st_uid,
            owner=self.owner_name(st.st_uid),
            mine=st.st_uid == self.euid,
            accessible=rw_accessible(st, self.euid, self.groups),
        )
        if stat.S_ISREG(st.st_mode) and self.probe_needed(st):
            if self.before_open is not None:
                self.before_open(obs.path)
            try:
                obs.lock, obs.unreadable_reason = try_lock(dir_fd, name, st.st_dev, st.st_ino)
            except FileNotFoundError:
                return None  # removed between lstat and open (another cleaner, a racing uv)
        return obs

    def probe(self, dirs: Sequence[str]) -> ProbeResult:
        """See the class docstring and `uv_names`. Beside a big dir's listing (`LIST_BESIDE`)
        the lock table is read on a thread: the listing does not need it, and on Linux the
        read waits for an RCU grace period (5-25 ms). Then every name listed is observed."""
        result = ProbeResult()
        # per dir: (its fd or None, why it could not be opened or (further) listed)
        opened: list[tuple[str, int | None, str]] = []
        reader: Beside | None = None  # the lock table, read beside a big dir's listing
        table = ProbeResult()
        try:
            for directory in dirs:
                try:
                    opened.append((directory, os.open(directory, DIR_FLAGS), ""))
                except OSError as err:
                    opened.append((directory, None, system.dir_reason(err)))
            sizes = [_dir_size(fd) for _, fd, _ in opened if fd is not None]
            if sum(sizes) > LIST_BESIDE:
                reader = Beside(self.load_lock_table, table)
            else:
                self.load_lock_table(result)
            listed: list[tuple[str, int | None, list[str], str]] = []
            for directory, fd, unopened in opened:
                names: list[str] = []
                why = unopened
                if fd is not None:
                    try:
                        names.extend(uv_names(fd))
                    except OSError as err:
                        why = system.dir_reason(err)
                listed.append((directory, fd, names, why))
            if reader is not None:
                reader.take()
                result.notes += table.notes
                result.errors += table.errors
                result.hidden_processes += table.hidden_processes
            observed: list[Observation] = []
            for directory, fd, names, why in listed:
                if fd is not None:
                    self._observe_names(directory, fd, names, observed, result)
                if why:
                    result.errors.append(ScanError(directory, why))
        finally:
            if reader is not None:
                reader.thread.join()
            for _, fd, _ in opened:
                if fd is not None:
                    os.close(fd)
        self._finish(observed, result)
        return result

    def probe_files(self, files: Sequence[tuple[str, str]]) -> ProbeResult:
        """See `Backend.probe_files`: only the named entries are looked at (no dir listing)."""
        result = ProbeResult()
        if not self.lazy_table:
            self.load_lock_table(result)
        observed: list[Observation] = []
        by_dir: dict[str, list[str]] = {}
        for directory, name in files:
            by_dir.setdefault(directory, []).append(name)
        for directory, names in by_dir.items():
            try:
                dir_fd = os.open(directory, DIR_FLAGS)
            except OSError as err:
                result.errors.append(ScanError(directory, system.dir_reason(err)))
                continue
            try:
                self._observe_names(directory, dir_fd, names, observed, result)
            finally:
                os.close(dir_fd)
        self._finish(observed, result)
        return result

    def _observe_names(
        self,
        directory: str,
        dir_fd: int,
        names: Iterable[str],
        observed: list[Observation],
        result: ProbeResult,
    ) -> None:
        for name in names:
            if not is_lock_name(name):
                continue
            try:
                obs = self.observe(directory, dir_fd, name)
            except OSError as err:
                result.errors.append(ScanError(f"{directory}/{name}", str(err)))
                continue
            if obs is not None:
                observed.append(obs)

    def _finish(self, observed: list[Observation], result: ProbeResult) -> None:
        """One open-file walk and the lock table for everything observed, then classify (with
        `lazy_table`, the table is read here, and only where the try-locks leave a doubt)."""
        regular = [obs for obs in observed if stat.S_ISREG(obs.mode)]
        # openers of every file: of a free one, who is about to lock it; of a held one, who
        # holds it when the lock table names a process that took the lock and has exited or is
        # hidden (a uvsweep keeper it passed the lock to, or a child)
        wanted: dict[FileKey, Observation] = {(obs.dev, obs.ino): obs for obs in regular}
        openers = self.find_openers(wanted, result) if wanted else {}
        if self.lazy_table and (openers or any(obs.lock is not LockProbe.FREE for obs in regular)):
            self.load_lock_table(result)
        for obs in regular:
            self.lock_entries(obs, obs.lock)
        for key, pids in openers.items():
            wanted[key].openers = [self.processes.holder(pid) for pid in sorted(pids)]
        result.files = [classify(obs) for obs in observed]


def holder_list(processes: ProcessTable, pids: Sequence[int]) -> list[LockUser]:
    """Pids as Holders, each once, in order; 0 (a pid we cannot see) stays unknown."""
    seen: set[int] = set()
    out: list[LockUser] = []
    for pid in pids:
        if pid in seen:
            continue
        seen.add(pid)
        out.append(processes.holder(pid))
    return out
