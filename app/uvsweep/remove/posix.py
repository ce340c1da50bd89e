"""The removal primitives on Unix: flock, a dir fd, and the OS's lock and open-file tables.

Linux reads `/proc/locks` (holders and waiters of every user) and walks `/proc/*/fd` (who has the
file open, unlinked or not). macOS and the BSDs have no lock table; open files come from psutil,
matched by path, so a process that has any file open at the name counts as a user of it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import time
from collections.abc import Callable, Iterable, Sequence

from uvsweep.model import LockState, ScanError
from uvsweep.naming import is_lock_name
from uvsweep.probe import LockProbe, Observation, classify
from uvsweep.probe.linux import LockEntry, read_locks, walk_fds
from uvsweep.probe.posix import (
    BUSY_ERRNOS,
    DIR_FLAGS,
    OPEN_FLAGS,
    FileKey,
    holder_list,
    rw_accessible,
)
from uvsweep.processes import ProcessTable, user_name
from uvsweep.remove import (
    Policy,
    Progress,
    Remover,
    RemoveResult,
    Target,
    Use,
    backoff,
    describe_holders,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: Mode of a file uv creates (>= 0.9.15): anybody may lock it.
LOCK_FILE_MODE = 0o666


def raise_fd_limit(wanted: int = 8192) -> int:
    """Raise the soft open-file limit towards `wanted` (never past the hard one); the new limit."""
    try:
        import resource  # noqa: PLC0415 - Unix only
    except ImportError:
        return 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return wanted if soft == resource.RLIM_INFINITY else soft


class PosixRemover(Remover):
    """The protocol's primitives on any Unix; subclasses say how to see lock and file users."""

    def __init__(
        self,
        progress: Progress | None = None,
        processes: ProcessTable | None = None,
        lstat: Callable[[str, int], os.stat_result] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(progress)
        self.processes = processes or ProcessTable()
        self.euid = os.geteuid()
        self.groups = frozenset({os.getegid(), *os.getgroups()})
        self.clock = clock
        # the seam tests use to change the dir between our lstat and our open
        self.lstat = lstat or (lambda name, dir_fd: os.stat(name, dir_fd=dir_fd,
                                                             follow_symlinks=False))  # fmt: skip
        # /proc/locks costs the kernel O(lines^2) to read while we hold a batch: 1024 balances
        # that against one /proc/*/fd walk per batch
        self.batch_size = max(16, min(1024, (raise_fd_limit() - 128) // 2))
        self._users: dict[int, str] = {}

    # ---- what subclasses provide --------------------------------------------------------------

    def lock_users(self, targets: Sequence[Target]) -> dict[Target, Use]:
        """Targets with a lock-table entry that is not ours (none where there is no table)."""
        return {}

    def pre_lock_use(self, dev: int, ino: int) -> Use | None:
        """A holder or waiter of this file in the lock table, before we open it."""
        return None

    def open_users(
        self, targets: Sequence[Target], result: RemoveResult
    ) -> dict[Target, list[int]]:
        """Targets other processes have open, with their pids (one pass for all)."""
        return {}

    def still_used(self, target: Target, pids: Sequence[int]) -> bool:
        """Whether any of `pids` (or a hidden process) still uses the old, unlinked file."""
        return False

    # ---- primitives ---------------------------------------------------------------------------

    def listing(self, directory: str) -> tuple[int, list[str]]:
        """See `Remover`."""
        dir_fd = os.open(directory, DIR_FLAGS)
        try:
            names = sorted(name for name in os.listdir(dir_fd) if is_lock_name(name))
        except OSError:
            os.close(dir_fd)
            raise
        return dir_fd, names

    def close_dir(self, dir_handle: int) -> None:
        """See `Remover`."""
        os.close(dir_handle)

    def _owner(self, uid: int) -> str:
        if uid not in self._users:
            self._users[uid] = user_name(uid) or str(uid)
        return self._users[uid]

    def _skip_observed(
        self, directory: str, name: str, st: os.stat_result, result: RemoveResult,
        lock: LockProbe = LockProbe.FREE, why: str = "", use: Use | None = None,
    ) -> None:  # fmt: skip
        """Record a skip with the state and reason the scanner would give the file."""
        obs = Observation(
            directory=directory, name=name, mode=st.st_mode, size=st.st_size, nlink=st.st_nlink,
            mtime=st.st_mtime, dev=st.st_dev, ino=st.st_ino, uid=st.st_uid,
            owner=self._owner(st.st_uid), mine=st.st_uid == self.euid,
            lock=lock if stat.S_ISREG(st.st_mode) else LockProbe.NOT_PROBED,
            accessible=rw_accessible(st, self.euid, self.groups),
        )  # fmt: skip
        obs.unreadable_reason = why
        if use is not None:
            if use.state is LockState.WAITING:
                obs.waiters = list(use.holders)
            else:
                obs.holders = list(use.holders)
        item = classify(obs)
        reason = item.reason
        who = item.holders or item.waiters or item.openers
        if who and any(h.pid is not None for h in who):
            reason = f"{reason}: {describe_holders(who)}"
        result.skip(item.path, item.state, reason)

    def acquire(
        self, dir_handle: int, directory: str, name: str, policy: Policy, result: RemoveResult
    ) -> Target | None:
        """See `Remover`: every check before the lock, then `LOCK_EX|LOCK_NB`."""
        import fcntl  # noqa: PLC0415 - Unix only; this module imports on every OS

        path = f"{directory.rstrip('/')}/{name}"
        try:
            st = self.lstat(name, dir_handle)
        except FileNotFoundError:
            return None  # gone: another cleaner, or never there
        except OSError as err:
            result.errors.append(_error(path, err))
            return None
        if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or st.st_size != 0:
            self._skip_observed(directory, name, st, result)
            return None
        if st.st_uid != self.euid and not (policy.all_users and self.euid == 0):
            self._skip_observed(directory, name, st, result)  # foreign
            return None
        use = self.pre_lock_use(st.st_dev, st.st_ino)
        if use is not None:
            self._skip_observed(directory, name, st, result, use=use)
            return None
        young = policy.too_young(self.clock() - st.st_mtime)
        if young:
            result.skip(path, LockState.ORPHANED, young)
            return None
        try:
            fd = os.open(name, OPEN_FLAGS, dir_fd=dir_handle)
        except FileNotFoundError:
            return None
        except OSError as err:
            why = "replaced by a symlink" if err.errno == errno.ELOOP else (err.strerror or "")
            self._skip_observed(directory, name, st, result, LockProbe.UNREADABLE, why)
            return None
        try:
            found = os.fstat(fd)
            if (found.st_dev, found.st_ino) != (st.st_dev, st.st_ino):
                result.skip(path, LockState.SUSPICIOUS, "replaced while it was being checked")
                os.close(fd)
                return None
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno in BUSY_ERRNOS:
                self._skip_observed(directory, name, st, result, LockProbe.HELD)
            else:
                result.errors.append(_error(path, err))
            return None
        return Target(directory, name, path, st.st_dev, st.st_ino, fd, dir_handle)

    def users(self, targets: Sequence[Target], result: RemoveResult) -> dict[Target, Use]:
        """See `Remover`: the lock table first, then one pass over open files."""
        found = self.lock_users(targets)
        rest = [target for target in targets if target not in found]
        if rest:
            for target, pids in self.open_users(rest, result).items():
                found[target] = Use(LockState.OPEN, holder_list(self.processes, pids))
        return found

    def still_named(self, target: Target) -> bool:
        """See `Remover`."""
        try:
            st = self.lstat(target.name, target.dir_handle)
        except OSError:
            return False
        return (st.st_dev, st.st_ino) == (target.dev, target.ino) and stat.S_ISREG(st.st_mode)

    def unlink(self, target: Target) -> None:
        """See `Remover`: by name, relative to the dir, while our lock is held."""
        os.unlink(target.name, dir_fd=target.dir_handle)

    def undo(self, target: Target, use: Use, result: RemoveResult) -> str:
        """Hand the lock over: lock a new file at the name, then free the old one.

        The process that got hold of the old file takes its lock once we let go of it; anyone
        who opens the name from now on finds the new file, locked by us until that process has
        let go of the old one. So at no moment can two processes both believe they hold the lock.
        """
        import fcntl  # noqa: PLC0415

        new_fd = self._next_generation(target, result)
        pids = [h.pid for h in use.holders if h.pid is not None]
        try:
            fcntl.flock(target.handle, fcntl.LOCK_UN)  # the old generation's user proceeds
            target.locked = False
            if new_fd is None:
                return "the lock could not be handed over (see errors); the old file was released"
            said = False
            for waited in backoff():
                if not self.still_used(target, pids):
                    break
                if waited > 1 and not said:
                    self.progress(
                        f"{target.path}: keeping the new lock until {use.describe()} is done"
                        " with the old file"
                    )
                    said = True
        finally:
            if new_fd is not None:
                os.close(new_fd)
        return "the lock was handed over to a new file at the name, which stays"

    def _next_generation(self, target: Target, result: RemoveResult) -> int | None:
        """A new file at the target's name, exclusively locked by us (created if need be)."""
        import fcntl  # noqa: PLC0415

        dir_fd = target.dir_handle
        create = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        deadline: float | None = None
        for waited in backoff():
            try:
                fd = os.open(target.name, create, LOCK_FILE_MODE, dir_fd=dir_fd)
                with contextlib.suppress(OSError):
                    os.fchmod(fd, LOCK_FILE_MODE)  # what uv sets, whatever our umask
            except FileExistsError:
                try:
                    fd = os.open(target.name, OPEN_FLAGS, dir_fd=dir_fd)  # a new uv made one
                except FileNotFoundError:
                    continue
                except OSError as err:
                    # not a file we may lock (say, a symlink planted at the name): retry briefly
                    deadline = deadline or waited + 5.0
                    if waited > deadline:
                        result.errors.append(_error(target.path, err, "lock handoff failed"))
                        return None
                    continue
            except OSError as err:
                result.errors.append(_error(target.path, err, "lock handoff failed"))
                return None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)  # a new uv holds the new file: wait for it, keeping the old lock
                continue
            return fd
        return None  # pragma: no cover - backoff() never ends

    def release(self, target: Target) -> None:
        """See `Remover`: closing the fd drops the lock."""
        if target.handle is not None:
            os.close(target.handle)
            target.handle = None
            target.locked = False


def _error(path: str, err: OSError, what: str = "") -> ScanError:
    message = err.strerror or str(err)
    return ScanError(path, f"{what}: {message}" if what else message)


class LinuxRemover(PosixRemover):
    """Linux: `/proc/locks` for holders and waiters, one `/proc/*/fd` walk per batch."""

    def __init__(self, proc: str = "/proc", **seams: Any) -> None:
        """`seams` are `PosixRemover`'s."""
        seams.setdefault("processes", ProcessTable(proc=proc))
        super().__init__(**seams)
        self.proc = proc
        self._table: dict[int, list[LockEntry]] | None = None

    def begin_batch(self) -> None:
        """See `Remover`: the lock table is read afresh for each batch."""
        self._table = None

    def _read_table(self, own_pid: int | None = None) -> dict[int, list[LockEntry]] | None:
        try:
            return read_locks(self.proc, own_pid)
        except OSError as err:
            note = (
                f"{self.proc}/locks is unreadable ({err.strerror}): only the waiters whose open"
                " files are visible were seen"
            )
            if note not in self.notes:
                self.notes.append(note)
            return None

    def _entries(self, table: dict[int, list[LockEntry]], dev: int, ino: int) -> list[LockEntry]:
        entries = table.get(ino, [])
        same_dev = [e for e in entries if (e.major, e.minor) == (os.major(dev), os.minor(dev))]
        # /proc/locks may print another device on btrfs/overlayfs: then any entry on the inode
        return same_dev or entries

    def pre_lock_use(self, dev: int, ino: int) -> Use | None:
        """See `PosixRemover`: read the table once per batch (before the first lock)."""
        if self._table is None:
            self._table = self._read_table() or {}
        if ino not in self._table:
            return None
        entries = self._entries(self._table, dev, ino)
        return self._use_of(entries) if entries else None

    def _use_of(self, entries: Iterable[LockEntry]) -> Use | None:
        waiting = [e.pid for e in entries if e.waiting]
        holding = [e.pid for e in entries if not e.waiting]
        if holding:
            return Use(LockState.HELD, holder_list(self.processes, holding))
        if waiting:
            return Use(LockState.WAITING, holder_list(self.processes, waiting))
        return None

    def lock_users(self, targets: Sequence[Target]) -> dict[Target, Use]:
        """See `PosixRemover`: every entry on our inodes except our own locks."""
        # every target is locked by us here, so our exclusive entries are exactly those locks
        table = self._read_table(own_pid=os.getpid())
        if table is None:
            return {}
        found: dict[Target, Use] = {}
        for target in targets:
            if target.ino not in table:
                continue
            use = self._use_of(self._entries(table, target.dev, target.ino))
            if use is not None:
                found[target] = use
        return found

    def open_users(
        self, targets: Sequence[Target], result: RemoveResult
    ) -> dict[Target, list[int]]:
        """See `PosixRemover`: one walk of `/proc/*/fd` for the whole batch."""
        by_key: dict[FileKey, Target] = {(t.dev, t.ino): t for t in targets}
        pids = [int(entry) for entry in os.listdir(self.proc) if entry.isdigit()]
        found, hidden = walk_fds(self.proc, pids, {t.name for t in targets}, by_key)
        result.hidden_processes = max(result.hidden_processes, hidden)
        return {by_key[key]: pids for key, pids in found.items()}

    def still_used(self, target: Target, pids: Sequence[int]) -> bool:
        """See `PosixRemover`: any lock entry on the old inode, or one of `pids` with it open."""
        key = (target.dev, target.ino)
        table = self._read_table() or {}
        me = os.getpid()
        if any(e.pid != me for e in self._entries(table, *key)):
            return True
        found, _hidden = walk_fds(self.proc, pids, {target.name}, {key})
        return bool(found)
