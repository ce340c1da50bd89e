"""The removal primitives on Unix: flock, a dir fd, and the OS's lock and open-file tables.

Linux takes the kernel's write lease on each locked file first (granted only where no other open
file description of it exists: nobody holds, waits for or has it open) and keeps it to the close,
walks `/proc/*/fd` (who has the file open, unlinked or not, `O_PATH` included), and reads
`/proc/locks` (holders and waiters of every user) only for the files the lease was refused for.
macOS and the BSDs have no lock table; open files come from psutil,
matched by path, so a process that has any file open at the name counts as a user of it.
"""
# ruff: noqa: PLC0415 - imports inside functions: only the path that needs a module pays for it

from __future__ import annotations

import contextlib
import errno
import os
import stat
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from uvsweep import system
from uvsweep.model import CleanResult, LockState, LockUser, ScanError, plural
from uvsweep.naming import LOCK_NAME_RE
from uvsweep.probe import LockProbe, Observation, classify
from uvsweep.probe.linux import (
    Device,
    LockEntry,
    LockTable,
    TableWarmer,
    device_key,
    grow_fd_table,
    printed_device,
    read_lock_table,
    walk_fds,
)
from uvsweep.probe.posix import (
    ANY_NAME,
    BUSY_ERRNOS,
    LEASED_ERRNOS,
    LOCK_EX,
    LOCK_NB,
    LOCK_SH,
    LOCK_UN,
    OPEN_FLAGS,
    SYSCALLS,
    Beside,
    FileKey,
    Syscalls,
    holder_list,
    rw_accessible,
)
from uvsweep.processes import OwnerNames, ProcessTable
from uvsweep.remove import (
    FOREIGN_FILE,
    Policy,
    Progress,
    Remover,
    Target,
    Use,
    describe_holders,
)
from uvsweep.remove.handoff import HANDOFF_WAIT, NEW, OLD, Handoff, Keeper, outlive
from uvsweep.remove.handoff import run as run_handoffs

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def raise_fd_limit(wanted: int = 8192) -> int:
    """Raise the soft open-file limit towards `wanted` (never past the hard one); the new limit."""
    try:
        import resource  # Unix only
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
        calls: Syscalls = SYSCALLS,
        keeper: Keeper | None = None,
        handoff_wait: float = HANDOFF_WAIT,
    ) -> None:
        super().__init__(progress)
        self.calls = calls  # every OS call of the protocol goes through here (see `Syscalls`)
        self.processes = processes or ProcessTable()
        self.euid = os.geteuid()
        self.groups = frozenset({os.getegid(), *os.getgroups()})
        self.clock = clock
        # the seam tests use to change the dir while we hold a file (and to fail an lstat)
        self.lstat = lstat or calls.lstat
        self.keeper = keeper or Keeper()  # finishes the handoffs that outlast `handoff_wait`
        self.handoff_wait = handoff_wait
        self.fd_limit = raise_fd_limit()
        self.batch_size = batch_size_for(self.fd_limit)
        self._not_regular: set[str] = set()  # per dir: names the listing says are no files
        self._owner = OwnerNames()
        self._devices_seen: set[int] = set()  # file systems a file was locked on (`locked_one`)
        self._warmer: TableWarmer | None = None  # during `remove` (see `warm_table`)
        #: set by a read of the lock table: the next batch starts the warmer (`begin_batch`)
        self._table_wanted = False
        self._dir_reasons: dict[str, str | None] = {}  # per batch (`_dir_reason`)

    # ---- what subclasses provide --------------------------------------------------------------

    def lock_users(self, targets: Sequence[Target]) -> dict[Target, Use]:
        """Targets with a lock-table entry that is not ours (none where there is no table)."""
        return {}

    def tabled(self, targets: Sequence[Target]) -> list[Target]:
        """Of `users`' targets, those the lock table is read for: all, unless something else
        has answered for some (`LinuxRemover`: a write lease kept on the file)."""
        return list(targets)

    def pre_lock_use(self, dev: int, ino: int) -> Use | None:
        """A holder or waiter of this file in the lock table, before we open it."""
        return None

    def table_beside(self) -> bool:
        """Whether `lock_users` reads a table slow enough to be read on a thread beside
        `open_users` (both only look, and every target is held meanwhile)."""
        return False

    def open_users(self, targets: Sequence[Target], result: CleanResult) -> dict[Target, list[int]]:
        """Targets other processes have open, with their pids (one pass for all)."""
        return {}

    def busy_use(self, dev: int, ino: int) -> Use | None:
        """Who holds a file our try-lock found held, if the lock table says (None: unknown)."""
        return None

    def held_by_us(self, dev: int, ino: int) -> bool:
        """Whether a file our try-lock found held is held by this process (another thread's
        handoff) or a keeper it started, as far as the OS says."""
        return False

    def blind_spot(self, directory: str) -> str | None:
        """Why a file in `directory` stays because what could use it cannot be seen, or None."""
        return None

    def old_in_use(self, dev: int, ino: int, path: str) -> bool:
        """Whether any other process holds, waits for or has open the unlinked file (dev, ino).

        Read afresh at every call, over every process: never the pids an earlier look saw.
        """
        return False

    def init_ending_with_us(self) -> str | None:
        """The name of our parent where it is the first process of our PID namespace and exits
        once we have (a shell running a script, a container's minimal init), else None: its
        exit ends every process of the namespace, our keepers too (red-team M3). None where
        there are no PID namespaces."""
        return None

    def warm_table(self) -> TableWarmer | None:
        """A `TableWarmer` that keeps this removal's reads of the lock table from
        waiting for the kernel, or None (no table, or no fd to spare for it)."""
        return None

    def view(self) -> dict[str, Any]:
        """What a keeper needs to build the same remover (`for_platform(**view)`)."""
        return {"platform": "posix"}

    def locked_one(self, fd: int, st: os.stat_result) -> None:
        """We have just locked this file exclusively, the first of its file system (what the OS
        shows of it can be learned)."""

    def begin_batch(self) -> None:
        """See `Remover`; the table's warmer starts here once a batch has read the table (a
        removal that never reads it never pays for keeping it warm)."""
        self._dir_reasons.clear()
        if self._table_wanted and self._warmer is None:
            self._warmer = self.warm_table()

    def _dir_reason(self, directory: str) -> str | None:
        """Why no file of `directory` may go in this batch because what could use it cannot be
        seen from here (`blind_spot`), or None; the policy's own reasons come first."""
        if directory in self._dir_reasons:
            return self._dir_reasons[directory]
        why = self.blind_spot(directory)
        self._dir_reasons[directory] = why
        return why

    def remove(
        self, dirs: Sequence[str], policy: Policy, result: CleanResult | None = None
    ) -> CleanResult:
        """See `Remover`; once a batch has read the lock table, it is kept warm for the later
        ones (`warm_table`, started by `begin_batch`)."""
        self._table_wanted = False
        try:
            return super().remove(dirs, policy, result)
        finally:
            self._cool()

    def _cool(self) -> None:
        """Stop the table's warmer, if it runs (idempotent; a later batch may start another)."""
        if self._warmer is not None:
            self._warmer.stop()
            self._warmer = None

    # ---- primitives ---------------------------------------------------------------------------

    def listing(self, directory: str) -> tuple[int, list[str]]:
        """See `Remover`."""
        dir_fd = self.calls.open_dir(directory)
        lock_name = LOCK_NAME_RE.fullmatch  # `is_lock_name`, without a call per entry
        try:
            kinds = [(name, kind) for name, kind in self.calls.list_kinds(dir_fd)
                     if lock_name(name)]  # fmt: skip
        except OSError:
            self.calls.close(dir_fd)
            raise
        self._not_regular = {name for name, regular in kinds if not regular}
        names = [name for name, _regular in kinds]
        names.sort()
        return dir_fd, names

    def close_dir(self, dir_handle: int) -> None:
        """See `Remover`."""
        self.calls.close(dir_handle)

    def _skip_observed(
        self, directory: str, name: str, st: os.stat_result, result: CleanResult,
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
            elif use.state is LockState.OPEN:
                obs.openers = list(use.holders)
            else:
                obs.holders = list(use.holders)
        item = classify(obs)
        reason = item.reason
        who = item.holders or item.waiters or item.openers
        if who and any(h.pid is not None for h in who):
            reason = f"{reason}: {describe_holders(who)}"
        result.skip(item.path, item.state, reason)

    def _skip_odd(
        self, dir_fd: int, directory: str, name: str, st: os.stat_result, result: CleanResult
    ) -> None:
        """An odd file (linked, not empty, not regular) is skipped as the scanner would see it:
        a lock on it wins over its oddity, as the README says."""
        use = self.pre_lock_use(st.st_dev, st.st_ino)
        lock = LockProbe.FREE
        if use is None and stat.S_ISREG(st.st_mode):
            lock = self._probe_shared(dir_fd, name, st)
        self._skip_observed(directory, name, st, result, lock=lock, use=use)

    def _probe_shared(self, dir_fd: int, name: str, st: os.stat_result) -> LockProbe:
        """A shared try-lock on the file lstat saw, released at once (as the scanner's probe)."""
        try:
            fd = self.calls.open(name, OPEN_FLAGS, dir_fd=dir_fd)
        except OSError:
            return LockProbe.UNREADABLE
        try:
            found = self.calls.fstat(fd)
            if (found.st_dev, found.st_ino) != (st.st_dev, st.st_ino):
                return LockProbe.UNREADABLE
            self.calls.flock(fd, LOCK_SH | LOCK_NB)
        except OSError as err:
            return LockProbe.HELD if err.errno in BUSY_ERRNOS else LockProbe.UNREADABLE
        finally:
            self.calls.close(fd)
        return LockProbe.FREE

    def privileged(self) -> bool:
        """See `Remover`: root."""
        return self.euid == 0

    def acquire(
        self, dir_handle: int, directory: str, name: str, policy: Policy, result: CleanResult
    ) -> Target | None:
        """See `Remover`: open the name (never following a link, never waiting on a FIFO),
        check the opened file itself (`fstat`), then `LOCK_EX|LOCK_NB`.

        Nothing is decided from a status read before the open: the fd's status is the very
        file we would lock, and one `lstat` a file fewer is the cheapest system call saved.
        Nothing is opened that the listing says is no regular file (a FIFO's blocked writer
        would be let go, a device's driver run), nor in a dir none of whose files may go:
        `lstat` says why those stay.
        """
        if self._warmer is not None:
            self._warmer.tick()
        if (
            name in self._not_regular
            or policy.kept_by_visibility(directory, None)
            or self._dir_reason(directory)
        ):
            self._skip_unopened(dir_handle, directory, name, None, policy, result)
            return None
        calls = self.calls
        try:
            fd = calls.open(name, OPEN_FLAGS, dir_fd=dir_handle)
        except FileNotFoundError:
            return None  # gone: another cleaner, or never there
        except OSError as err:
            if err.errno == errno.EMFILE:
                raise  # out of fds: the run stops with one clear message (see `clean`)
            if err.errno in LEASED_ERRNOS:  # another cleaner's lease (our open broke it)
                result.skip(_joined(directory, name), LockState.HELD, LEASED_BY_OTHER)
                return None
            self._skip_unopened(dir_handle, directory, name, err, policy, result)
            return None
        try:
            st = calls.fstat(fd)
            # the common case decided here as `_may_lock` would (the dir's own reasons are
            # known to be none, above): a regular, empty file with one link that the policy
            # lets go; anything else is `_may_lock`'s to decide, and to say why it stays
            may_lock = (
                st.st_nlink == 1
                and not st.st_size
                and st.st_mode & _FILE_TYPE == stat.S_IFREG
                and policy.may_remove(
                    mine=st.st_uid == self.euid, privileged=self.euid == 0,
                    age=self.clock() - st.st_mtime, directory=directory,
                ) is None
            ) or self._may_lock(dir_handle, directory, name, st, policy, result)  # fmt: skip
        except BaseException as err:
            calls.close(fd)
            if not isinstance(err, OSError):
                raise
            result.errors.append(_error(_joined(directory, name), err))
            return None
        if not may_lock:
            calls.close(fd)
            return None
        try:
            calls.flock(fd, LOCK_EX | LOCK_NB)
        except OSError as err:
            calls.close(fd)
            if err.errno in BUSY_ERRNOS:
                # held: name the holder where the lock table shows one, even on a device we
                # could not match (the failed try-lock says the entry is this file's)
                use = self.busy_use(st.st_dev, st.st_ino)
                if use is None and self.held_by_us(st.st_dev, st.st_ino):
                    # our own pid's record (F6)
                    result.skip(_joined(directory, name), LockState.HELD, HELD_BY_US)
                else:
                    self._skip_observed(directory, name, st, result, LockProbe.HELD, use=use)
            else:
                result.errors.append(_error(_joined(directory, name), err))
            return None
        if st.st_dev not in self._devices_seen:
            self._devices_seen.add(st.st_dev)
            self.locked_one(fd, st)
        target = Target(
            directory, name, _joined(directory, name), st.st_dev, st.st_ino, fd,
            dir_handle,
        )  # fmt: skip
        target.uid = st.st_uid
        return target

    def _may_lock(
        self, dir_handle: int, directory: str, name: str, st: os.stat_result, policy: Policy,
        result: CleanResult,
    ) -> bool:  # fmt: skip
        """Whether the file `st` describes (what we opened, or what lstat shows when we could
        not open it) may be locked for removal; if not, its skip is recorded."""
        regular = stat.S_ISREG(st.st_mode)
        if regular and st.st_nlink == 0:
            return False  # unlinked under our eyes (another cleaner): gone
        if not regular or st.st_nlink != 1 or st.st_size != 0:
            self._skip_odd(dir_handle, directory, name, st, result)
            return False
        why = policy.may_remove(
            mine=st.st_uid == self.euid, privileged=self.euid == 0,
            age=self.clock() - st.st_mtime, directory=directory,
        )  # fmt: skip
        if why == FOREIGN_FILE:  # another user's: foreign, or held/waited for as the table says
            use = self.pre_lock_use(st.st_dev, st.st_ino)
            self._skip_observed(directory, name, st, result, use=use)
            return False
        why = why or self._dir_reason(directory)
        if why:
            # it stays anyway: a holder or waiter the lock table shows says its state
            use = self.pre_lock_use(st.st_dev, st.st_ino)
            if use is not None:
                self._skip_observed(directory, name, st, result, use=use)
            else:
                result.skip(_joined(directory, name), LockState.ORPHANED, why)
            return False
        return True

    def _skip_unopened(
        self, dir_handle: int, directory: str, name: str, err: OSError | None, policy: Policy,
        result: CleanResult,
    ) -> None:  # fmt: skip
        """A file not opened (`err`: why our open failed, a symlink, another user's private
        file...; None: not tried): what lstat shows of the name says why it stays, as the
        scanner would say it."""
        try:
            st = self.lstat(name, dir_handle)
        except FileNotFoundError:
            return  # gone meanwhile
        except OSError as lstat_err:
            result.errors.append(_error(_joined(directory, name), lstat_err))
            return
        if self._may_lock(dir_handle, directory, name, st, policy, result):
            if err is None:  # a regular file now, where the listing said otherwise
                why = "replaced while it was being checked"
            else:
                why = "replaced by a symlink" if err.errno == errno.ELOOP else system.reason(err)
            self._skip_observed(directory, name, st, result, LockProbe.UNREADABLE, why)

    def users(self, targets: Sequence[Target], result: CleanResult) -> dict[Target, Use]:
        """See `Remover`: the lock table, and one pass over open files, for *every* target
        (the table only for those `tabled` keeps: none, and it is not read).

        A lock-table entry decides the state shown; the open-file pass is never skipped for a
        target that has one (a late opener beside a waiter must be seen too).
        """
        tabled = self.tabled(targets)
        # (the reader needs an fd of its own while the walk uses one: only with some to spare)
        spare = self.fd_limit - 2 * len(targets) - FD_RESERVE >= 8
        beside = (
            Beside(self.lock_users, tabled) if tabled and spare and self.table_beside() else None
        )
        try:
            opened = self.open_users(targets, result)
        except BaseException:
            if beside is not None:
                beside.wait()  # its reader is over before anything else runs (or forks)
            raise
        found: dict[Target, Use] = (
            beside.take() if beside is not None
            else self.lock_users(tabled) if tabled else {}
        )  # fmt: skip
        for target, pids in opened.items():
            if target not in found:
                found[target] = Use(LockState.OPEN, holder_list(self.processes, pids))
        return found

    def changed(self, target: Target) -> str | None:
        """See `Remover`: the name still that file, and the file itself as it was checked.

        The name's lstat is the held file's own status (same device and inode: one inode,
        one set of attributes), so it tells a hard link, a write or a new owner as well.
        """
        try:
            found = self.lstat(target.name, target.dir_handle)
        except FileNotFoundError:
            return "replaced while it was being removed"
        except OSError as err:
            return f"cannot be checked again: {system.reason(err)}"
        if (
            found.st_ino != target.ino or found.st_dev != target.dev
            or not stat.S_ISREG(found.st_mode)
        ):  # fmt: skip
            return "replaced while it was being removed"
        # (a regular file: checked above)
        odd = (
            _oddity(found, target.uid)
            if found.st_size or found.st_nlink != 1 or found.st_uid != target.uid
            else ""
        )
        return f"changed while it was being removed: {odd}" if odd else None

    def unlink(self, target: Target) -> None:
        """See `Remover`: by name, relative to the dir, while our lock is held."""
        if self._warmer is not None:
            self._warmer.tick()
        self.calls.unlink(target.name, dir_fd=target.dir_handle)

    def _handoff(self, target: Target) -> Handoff:
        handoff = Handoff(
            self.calls, target.dir_handle, target.directory, target.name, target.handle,
            (target.dev, target.ino), self._handoff_in_use,
        )  # fmt: skip
        target.handle = None  # the handoff owns the old file's fd (and lock) from now on
        target.locked = False
        handoff.warn = self.progress
        handoff.replaced_in_use = self.replaced_in_use
        return handoff

    def _handoff_in_use(self, handoff: Handoff) -> bool:
        return handoff in self.handoffs_in_use([handoff])

    def resume_handoff(self, item: dict[str, Any]) -> Handoff:
        """A handoff a cleaner passed on (`Handoff.to_json`), for the keeper to finish."""
        handoff = Handoff(
            self.calls, int(item["dir_fd"]), str(item["directory"]), str(item["name"]),
            int(item["old_fd"]) if item["old_fd"] is not None else -1,
            (int(item["old_key"][0]), int(item["old_key"][1])), self._handoff_in_use,
        )  # fmt: skip
        handoff.old_fd = None if item["old_fd"] is None else int(item["old_fd"])
        handoff.new_fd = None if item["new_fd"] is None else int(item["new_fd"])
        handoff.state = str(item["state"])
        handoff.followed = {int(pid) for pid in item.get("followed", ())}
        handoff.replaced = [int(fd) for fd in item.get("replaced", ())]
        handoff.retakes = int(item.get("retakes", 0))
        handoff.old_was_new = bool(item.get("old_was_new", False))
        handoff.seen = {
            (int(dev), int(ino)): {int(pid) for pid in pids}
            for dev, ino, pids in item.get("seen", ())
        }
        handoff.replaced_in_use = self.replaced_in_use
        return handoff

    def handoffs_in_use(self, handoffs: Sequence[Handoff]) -> set[Handoff]:
        """Which handoffs' old files some other process uses now (see `old_in_use`)."""
        used = {h for h in handoffs if self.old_in_use(*h.old_key, h.path)}
        return used | self.confirm_in_use([h for h in handoffs if h not in used])

    def confirm_in_use(self, handoffs: Sequence[Handoff]) -> set[Handoff]:
        """Of the handoffs whose old file looked unused, those it is not after all.

        A handoff in `NEW` ends only on our own try-lock of the old file: it fails while any
        process holds the old lock (whatever a table or a walk missed), and once it is ours,
        whoever is waiting waits behind us, where `waiting_behind_us` finds them. A file found
        in use is unlocked again at once; one found free stays locked until the handoff closes
        it (`Handoff.step`), so nobody can take it in between.
        """
        used: set[Handoff] = set()
        locked: list[Handoff] = []
        for handoff in handoffs:
            if handoff.state != NEW or handoff.old_fd is None:
                continue
            try:
                self.calls.flock(handoff.old_fd, LOCK_EX | LOCK_NB)
            except OSError:
                used.add(handoff)  # held by someone (or refused: the safe side)
                continue
            locked.append(handoff)
        try:
            used |= self.waiting_behind_us(locked)
        except BaseException:
            used |= set(locked)
            raise
        finally:
            for handoff in locked:
                if handoff in used and handoff.old_fd is not None:
                    with contextlib.suppress(OSError):
                        self.calls.flock(handoff.old_fd, LOCK_UN)
        return used

    def waiting_behind_us(self, handoffs: Sequence[Handoff]) -> set[Handoff]:
        """Of handoffs whose old file we have just locked, those some process waits for; their
        pids are followed (`Handoff.followed`). None where there is no lock table."""
        return set()

    def replaced_in_use(
        self, handoff: Handoff, keys: list[FileKey], fds: list[int]
    ) -> set[FileKey]:
        """Of files (dev, ino) that `handoff` holds exclusively locked through `fds` (one
        each) and that have left its name, those another process has open or waits on
        (red-team P2: the others are closed at once, `Handoff._set_aside`). Here, without a
        way to look: all of them."""
        return set(keys)

    def undo(self, target: Target, use: Use, result: CleanResult) -> str:
        """See `Remover`: one handoff (see `undo_all`)."""
        how = self.undo_all([(target, use)], result)[target]
        return how or "nobody used the old file after all"

    def undo_all(
        self, pending: Sequence[tuple[Target, Use]], result: CleanResult
    ) -> dict[Target, str | None]:
        """See `Remover` and `remove.handoff`: bounded here, then finished by a keeper."""
        self._cool()  # no thread of ours may run on when a keeper is forked
        handoffs: dict[Target, Handoff] = {}
        for target, use in pending:
            handoff = handoffs[target] = self._handoff(target)
            handoff.followed = {h.pid for h in use.holders if h.pid is not None and h.alive}
        left = run_handoffs(
            list(handoffs.values()), self.calls, self.handoff_wait, lambda: self.stopping,
            check=self.handoffs_in_use,
        )  # fmt: skip
        keeper_pid: int | None = None
        if left:
            try:
                keeper_pid = self.keeper.take(left, self.view())
            except OSError as err:
                try:
                    # no new program could start (no /bin/sh, no fds for its pipes, ...): a
                    # copy of this process needs neither
                    keeper_pid = self.keeper.fork(left, self.view())
                except OSError as second:
                    self._wait_without_keeper(left, OSError(f"{err}; {second}"))
                else:
                    self.progress(f"no keeper could start ({err}): a copy of uvsweep keeps it")
            if keeper_pid is not None:
                result.keepers.append(keeper_pid)
                if self.calls.getpid() == 1:
                    # the first process of a PID namespace: the keeper ends when we do (L8)
                    outlive(keeper_pid)
                    result.note(OUTLIVED_NOTE)
                elif (init := self.init_ending_with_us()) is not None:
                    # run by that first process, which exits once we have (M3): the same
                    outlive(keeper_pid)
                    result.note(OUTLIVED_BY_INIT_NOTE.format(init=init))
                for handoff in left:
                    handoff.close()  # the keeper shares these file descriptions: locks stay
        hows: dict[Target, str | None] = {}
        for target, handoff in handoffs.items():
            if handoff.released_unused:
                hows[target] = None
            elif keeper_pid is not None and handoff in left:
                hows[target] = (
                    "the lock was handed over to a new file at the name, which stays; a uvsweep"
                    f" keeper (pid {keeper_pid}) holds it until the old file is let go"
                )
            else:
                hows[target] = "the lock was handed over to a new file at the name, which stays"
        return hows

    def _wait_without_keeper(self, left: Sequence[Handoff], err: OSError) -> None:
        """No keeper could be started: wait here. The first Ctrl-C (or SIGTERM) says why; a
        second one gives up the wait, and with it mutual exclusion for these files, loudly."""
        self.progress(
            f"could not start a keeper ({err}): waiting here until the old files' users are"
            " done; Ctrl-C again gives up (two uv processes could then hold one lock)"
        )
        seen = len(self.interrupts)
        run_handoffs(
            left, self.calls, None, lambda: len(self.interrupts) > seen + 1,
            check=self.handoffs_in_use,
        )  # fmt: skip
        for handoff in left:
            if handoff.state != "done":
                self.progress(f"{handoff.path}: gave up the handoff on request")
                handoff.close()

    def release(self, target: Target) -> None:
        """See `Remover`: closing the fd drops the lock."""
        if target.handle is not None:
            self.calls.close(target.handle)
            target.handle = None
            target.locked = False


#: Why a file is kept that this very process holds (through a handoff on another thread, as in
#: a tray) or a keeper it started does: `/proc/locks` prints such a lock with our own pid.
HELD_BY_US = (
    "held by uvsweep itself (this process, or a keeper it started): a process opened it while"
    " it was being removed, and the lock at the name is kept until that process is done with"
    " the old file"
)


#: Why a file is kept whose open failed on another process's write lease (`LEASED_ERRNOS`).
LEASED_BY_OTHER = "held by another process (a cleaner removing it: it holds the file's write lease)"


#: The first processes of a PID namespace that may exit once the command they run has (a shell
#: running `sh -c 'uvsweep clean; ...'` or an entrypoint script, `docker run --init`'s tini,
#: dumb-init, podman's catatonit, uv): a cleaner they run waits for its keepers before it
#: exits (red-team M3), at the cost of a wait where such a process stays (an interactive
#: shell, `sh -c 'uvsweep clean; exec server'`).
INITS_ENDING_WITH_THEIR_CHILD = frozenset(
    {
        "sh", "bash", "dash", "ash", "zsh", "busybox",  # shells (`sh -c`, an entrypoint script)
        "tini", "docker-init", "dumb-init", "catatonit", "podman-init",  # minimal inits
        "uv", "uvx",  # `uvx uvsweep clean` as the container's command: uv waits, then exits
        "timeout", "sudo", "su", "runuser",  # they wait for their command, then exit
    }
)  # fmt: skip

#: Why a cleaner run by such a first process (`init`: its name) lingers after its report.
OUTLIVED_BY_INIT_NOTE = (
    "this process runs under the first process of its PID namespace ({init}), which may exit"
    " once it has and so end every process of the namespace: it waits for its keepers before"
    " exiting"
)

#: Why a cleaner that is the first process of its PID namespace lingers after its report.
OUTLIVED_NOTE = (
    "this process is the first of its PID namespace (a container's entry point, `unshare"
    " --pid --fork`): every keeper it started ends when it exits, so it waits for them before"
    " exiting"
)


#: `st_mode`'s file type bits (`stat.S_IFMT`, without its call).
_FILE_TYPE = 0o170000


def _joined(directory: str, name: str) -> str:
    """A file's path in `directory`, as the reports show it."""
    return f"{directory.rstrip('/')}/{name}"


def _oddity(st: os.stat_result, uid: int) -> str:
    """What is wrong with an opened file uv could not have left, or ''."""
    if not stat.S_ISREG(st.st_mode):
        return "no longer a regular file"
    if st.st_size != 0:
        return f"not empty ({st.st_size} bytes)"
    if st.st_nlink != 1:
        return f"a hard link ({st.st_nlink} links)"
    if st.st_uid != uid:
        return "its owner changed"
    return ""


def batch_size_for(fd_limit: int, in_use: int = 0) -> int:
    """How many files one batch may hold open, leaving room for dirs, /proc and the CLI."""
    # each batch reads /proc/locks (our own lines included: O(lines^2) for the kernel, by
    # pages) and walks every process's fds twice; 2048 files a batch measured cheapest
    # (10,000 files: 12% less CPU than 1024, 4096 no better)
    return max(1, min(BATCH_CAP, (fd_limit - in_use - FD_RESERVE) // 2))


#: Errors that say the process is short of something, not that a file cannot be read.
SHORT_OF_RESOURCES = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM})

#: The fds a batch leaves to everything else: stdio, dirs, `/proc` and the CLI's own.
FD_RESERVE = 24


#: The most files a batch holds at once (see `batch_size_for`).
BATCH_CAP = 2048

#: How many fds a process's fd table holds before it first grows (Linux's `NR_OPEN_DEFAULT`,
#: `BITS_PER_LONG`): a smaller batch needs no growth.
FD_TABLE_START = 64

#: How often, and how far apart, the lease on an unlinked file is asked again while another
#: open file description refuses it (`LinuxRemover._alone_again`): a scan's or another
#: cleaner's probe holds one for microseconds; a uv between its open and its flock for good.
LEASE_RETRIES = 3
LEASE_RETRY_WAIT = 0.0003


def _error(path: str, err: OSError, what: str = "") -> ScanError:
    message = system.reason(err)
    return ScanError(path, f"{what}: {message}" if what else message)


class LinuxRemover(PosixRemover):
    """Linux: the write lease before the unlink, one `/proc/*/fd` walk per batch, and
    `/proc/locks` for holders and waiters where the lease is refused."""

    def __init__(
        self,
        proc: str = "/proc",
        known_devices: Mapping[Any, Sequence[int]] | None = None,
        **seams: Any,
    ) -> None:
        """`seams` are `PosixRemover`'s."""
        seams.setdefault("processes", ProcessTable(proc=proc))
        super().__init__(**seams)
        self.proc = proc
        self.own_pid = self._own_pid()
        # st_dev -> the device /proc/locks prints (keys are strings when a keeper passes them)
        self.known: dict[int, Device] = {
            int(dev): (int(device[0]), int(device[1]))
            for dev, device in (known_devices or {}).items()
        }
        self._table: LockTable | None = None
        self._table_readable = True
        self._table_ever_read = False
        #: removed files of which the kernel could not say whether anybody else had them open
        #: (no lease: a file system without them, another user's file without CAP_LEASE)
        self.unasked = 0
        #: unlinked files whose lease `users_after_unlink` was refused (False) or could not ask
        #: (None), for `open_users` to go on from
        self._lease_said: dict[Target, bool | None] = {}
        #: unlinked files whose write lease we hold (kept until the close: `let_go` looks at it)
        self._leased: set[Target] = set()

    def remove(
        self, dirs: Sequence[str], policy: Policy, result: CleanResult | None = None
    ) -> CleanResult:
        """See `PosixRemover`; says how many removed files the kernel's lease could not be asked
        about where the walk could not see every process (red-team L5)."""
        self.unasked = 0
        done = super().remove(dirs, policy, result)
        if self.unasked and (done.hidden_processes or self.euid != 0):
            done.note(
                f"the kernel could not be asked whether anybody else had"
                f" {plural(self.unasked, 'removed file')} open (no write lease: a file system"
                " without leases, or another user's file without CAP_LEASE): a process whose"
                " open files could not be inspected may have opened one unseen"
            )
        return done

    def listing(self, directory: str) -> tuple[int, list[str]]:
        """See `PosixRemover`; the fd table is grown at once to the batch it will hold
        (`grow_fd_table`: no wait for the kernel at each doubling in a process with threads)."""
        dir_fd, names = super().listing(directory)
        if len(names) > FD_TABLE_START:
            grow_fd_table(dir_fd, min(len(names), self.batch_size) + FD_RESERVE)
        return dir_fd, names

    def init_ending_with_us(self) -> str | None:
        """See `PosixRemover`: our parent is pid 1 of a child PID namespace (`getppid`, in our
        namespace) and, by any of its names in `/proc` (its pid there is `PPid` in our own
        status), a program that exits once its command has (`INITS_ENDING_WITH_THEIR_CHILD`).
        Its names: `comm`, and the base names of its `argv[0]` and its executable, since a
        script run by its shebang has the script's name as `comm` (`/docker-entrypoint.sh`:
        `dash` is its executable) and podman runs catatonit as `podman-init`. Anything else (a
        supervisor, a test runner, what cannot be read) is None: the cleaner then exits at
        once, as everywhere else."""
        if self.calls.getppid() != 1:
            return None
        from uvsweep.visibility import pid_namespace

        if pid_namespace(self.proc) != "child":
            return None  # (pid 1 of the initial namespace, systemd or init, stays)
        try:
            status = self.calls.read(f"{self.proc}/self/status").decode("latin-1")
            ppid = next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:"))
            parent = f"{self.proc}/{int(ppid)}"
        except (OSError, StopIteration, ValueError, IndexError):
            return None
        for name in self._names_of(parent):
            if name in INITS_ENDING_WITH_THEIR_CHILD:
                return name
        return None

    def _names_of(self, process: str) -> Iterator[str]:
        """The names of the process at `process` (a `/proc` entry) that can be read: `comm`,
        then the base names of `argv[0]` and of its executable."""
        reads: list[Callable[[], str]] = [
            lambda: self.calls.read(f"{process}/comm").decode("latin-1").strip(),
            lambda: self.calls.read(f"{process}/cmdline").split(b"\0")[0].decode("latin-1"),
            lambda: self.calls.readlink(f"{process}/exe"),
        ]
        for read in reads:
            try:
                name = read()
            except OSError:
                continue
            yield name.rsplit("/", 1)[-1]

    def _own_pid(self) -> int:
        """Our pid as this `/proc` shows it (not `getpid()` under a parent namespace's /proc)."""
        try:
            return int(self.calls.readlink(f"{self.proc}/self"))
        except (OSError, ValueError):
            return self.calls.getpid()

    def view(self) -> dict[str, Any]:
        """See `PosixRemover`."""
        known = {str(dev): list(device) for dev, device in self.known.items()}
        return {"platform": "linux", "proc": self.proc, "known_devices": known}

    def begin_batch(self) -> None:
        """See `Remover`: the lock table is read afresh for each batch."""
        super().begin_batch()
        self._table = None
        self._leased.clear()

    def locked_one(self, fd: int, st: os.stat_result) -> None:
        """See `PosixRemover`: the first lock on a file system tells the device `/proc/locks`
        prints for it, from our own fd's `fdinfo` (exact: only our open file's locks are
        there). Where that cannot be read, `st_dev`'s own numbers are assumed."""
        if st.st_dev in self.known:
            return
        try:
            text = self.calls.read(f"{self.proc}/self/fdinfo/{fd}").decode("latin-1")
        except OSError:
            return
        for line in text.splitlines():
            parts = line.split()
            # a line such as `lock: 1: FLOCK ADVISORY WRITE 24297 fe:00:2146492 0 EOF`
            if len(parts) >= 7 and parts[0] == "lock:" and parts[2] == "FLOCK":
                try:
                    major, minor, ino = parts[6].split(":")
                    if int(ino) == st.st_ino:
                        self.known[st.st_dev] = (int(major, 16), int(minor, 16))
                        return
                except ValueError:
                    continue

    def _read_table(self, holding: Iterable[FileKey] = ()) -> LockTable | None:
        """The lock table; `holding`: the (st_dev, st_ino) of files we hold exclusively now,
        whose own records (each with its waiters) must be in it (see `read_lock_table`)."""
        table = self._read_table_once(holding)
        self._table_wanted = True  # (the next batch keeps it warm: `begin_batch`)
        self._table_readable = table is not None
        self._table_ever_read = self._table_ever_read or table is not None
        return table

    def _read_table_once(self, holding: Iterable[FileKey]) -> LockTable | None:
        prefixes: dict[int, str] = {}
        held: set[str] = set()
        for dev, ino in holding:
            prefix = prefixes.get(dev)
            if prefix is None:  # "MAJOR:MINOR:" once per device, not once per file
                prefix = prefixes[dev] = device_key(printed_device(dev, self.known), 0)[:-1]
            held.add(prefix + str(ino))
        try:
            # a non-root cleaner cannot see other users' fds to make up for a record the
            # kernel skipped on some other lock (not one of ours), so it always reads twice
            return read_lock_table(
                self.proc, self.own_pid, self.calls, reads=1 if self.euid == 0 else 2, held=held
            )
        except OSError as err:
            if err.errno in SHORT_OF_RESOURCES:
                raise  # no fd or memory to read it with now: unknown, never "no waiter"
            note = (
                f"{self.proc}/locks is unreadable ({err.strerror}): only the waiters whose open"
                " files are visible were seen"
            )
            if note not in self.notes:
                self.notes.append(note)
            return None

    def _batch_table(self) -> LockTable:
        """The lock table, read once a batch when first needed (empty if it cannot be read)."""
        if self._table is None:
            self._table = self._read_table() or LockTable({})
        return self._table

    def pre_lock_use(self, dev: int, ino: int) -> Use | None:
        """See `PosixRemover`: read the table once per batch, when first needed.

        Only entries certainly on this file count here; where the device is unsure, our own
        try-lock decides (and, once we hold the file, `lock_users` does).
        """
        mine, _unsure = self._batch_table().entries(dev, ino, self.known, own=False)
        return self._use_of(mine) if mine else None

    def held_by_us(self, dev: int, ino: int) -> bool:
        """See `PosixRemover`: our own pid's record on the file (a keeper inherited it)."""
        return self._batch_table().shows(dev, ino, self.known)

    def busy_use(self, dev: int, ino: int) -> Use | None:
        """See `PosixRemover`: entries on the inode, whatever device they were printed with."""
        mine, unsure = self._batch_table().entries(dev, ino, self.known, own=False)
        return self._use_of(mine + unsure)

    def blind_spot(self, directory: str) -> str | None:
        """See `PosixRemover`: without `/proc/locks`, a non-root cleaner cannot see another
        user's waiter at all (its fds are hidden too), so only private dirs are cleaned."""
        if self.euid == 0:
            return None
        self._batch_table()  # once a batch: whether it can be read now
        if self._table_readable:
            return None
        from uvsweep.remove import dir_is_private

        if dir_is_private(directory):
            return None
        return (
            f"{self.proc}/locks cannot be read, so another user's process waiting for it would"
            " be invisible (only files in a dir no other user can enter are removed)"
        )

    def _use_of(self, entries: Iterable[LockEntry]) -> Use | None:
        waiting = [e.pid for e in entries if e.waiting]
        holding = [e.pid for e in entries if not e.waiting]
        if holding:
            return Use(LockState.HELD, holder_list(self.processes, holding))
        if waiting:
            return Use(LockState.WAITING, holder_list(self.processes, waiting))
        return None

    def warm_table(self) -> TableWarmer | None:
        """See `PosixRemover`: only beside real system calls, and with a batch, the table's
        reader and the fd walk all given their fds."""
        spare = self.fd_limit - 2 * self.batch_size - FD_RESERVE >= 8
        if not (spare and self.calls.concurrent):
            return None
        return TableWarmer(f"{self.proc}/locks")

    def table_beside(self) -> bool:
        """See `PosixRemover`: `/proc/locks` waits for an RCU grace period (5-25 ms) before
        the kernel prints it, time the fd walk can use (unless the calls are simulated). Not
        while a `TableWarmer` runs: then there is no wait to use, and a reader on a thread would
        queue for the interpreter's lock after each of its page-sized reads."""
        return self.calls.concurrent and self._warmer is None

    def lock_users(self, targets: Sequence[Target]) -> dict[Target, Use]:
        """See `PosixRemover`: every entry on our files except our own locks.

        We hold every target here, so our own record for each must be in the table (a waiter
        is printed with the lock it waits for): the table is read until all are. Our own
        entries also tell which device `/proc/locks` prints for each file; an entry whose
        device still cannot be told apart counts (the safe side), and so does a target whose
        own record never showed (an unknown waiter).
        """
        table = self._read_table((t.dev, t.ino) for t in targets)
        if table is None:
            return {}
        found: dict[Target, Use] = {}
        others = table.others
        for target in targets if not table.complete else [t for t in targets if t.ino in others]:
            mine, unsure = table.entries(target.dev, target.ino, self.known)
            use = self._use_of(mine + unsure) if mine or unsure else None
            if use is None and table.unseen(target.dev, target.ino, self.known):
                use = Use(LockState.WAITING, [LockUser(pid=None)])  # its waiters went unseen
            if use is not None:
                found[target] = use
        return found

    def open_users(self, targets: Sequence[Target], result: CleanResult) -> dict[Target, list[int]]:
        """See `PosixRemover`: one walk of `/proc/*/fd` for the whole batch."""
        by_key: dict[FileKey, Target] = {(t.dev, t.ino): t for t in targets}
        try:
            pids = [int(entry) for entry in self.calls.list_dir(self.proc) if entry.isdigit()]
            found, hidden = walk_fds(
                self.proc, pids, {t.name for t in targets}, by_key, self.calls, self.own_pid
            )
        except OSError:  # some process's open files could not be listed: any could be open
            return {target: [0] for target in targets}  # (pid 0: a process we cannot name)
        result.hidden_processes = max(result.hidden_processes, hidden)
        opened = {by_key[key]: pids for key, pids in found.items()}
        # after the unlink, the kernel's lease: an opener between its open and its flock shows
        # in no table, and no walk sees it where its fds are out of sight (another user's,
        # another PID namespace's, a thread's own fd table: red-team B2, L1, L7). Every such
        # opener, whether it came before our first look or after it, still has the file open
        # now, and is handed over. Kept until our close: no name leads to the file any more,
        # and giving it back costs more than the close's. `users_after_unlink` has asked it
        # already for the files it brings here: its answers stand
        asked = [t for t in targets if t.unlinked and t not in opened]
        known = self._lease_said
        unknown = [t for t in asked if t not in known]
        answers = self.calls.alone_all([t.handle for t in unknown], keep=True)
        firsts = dict(zip(unknown, answers, strict=True))
        for target in asked:
            first = known.pop(target) if target in known else firsts[target]
            said = self._alone_again(target.handle) if first is False else first
            if said is False:
                opened[target] = [0]
            elif said is None:
                self.unasked += 1
            else:
                self._leased.add(target)
        return opened

    def users_before_unlink(
        self, locked: Sequence[Target], result: CleanResult
    ) -> dict[Target, Use]:
        """See `Remover`: the kernel's write lease first, for the whole batch, kept through the
        unlink until our close (`Syscalls.alone`). A file it is granted for has no other open
        file description anywhere: nobody holds it, waits for it (a waiter has it open) or has
        it open between its open and its flock, whatever user or PID namespace, so the lock
        table has nothing to add for it. Any open of it from now on breaks the lease (one
        without `O_NONBLOCK` waits in the kernel for it, one with it fails with `EWOULDBLOCK`,
        and an unlink breaks none): a broken lease is seen right before the unlink, here, and
        the file kept (the opener goes on at once, on the file at the name), or at the close
        (`let_go`: handed over). So the lock table (`/proc/locks`, and its wait for the
        kernel) is read only for a batch with a file the lease was refused for (someone has
        it open) or could not be asked about, and only for those files; nobody's answer stands
        for theirs after the unlink either (`users_after_unlink`).

        The fd walk still looks at every file: an `O_PATH` description, or one opened with
        access mode 3, is no open the lease counts, yet either can reopen the file through
        `/proc/PID/fd` (red-team L3, M7), and only the walk sees those.
        """
        answers = self.calls.alone_all([t.handle for t in locked], keep=True)
        leased = self._leased
        for target, said in zip(locked, answers, strict=True):
            if said is True:
                leased.add(target)
        found = self.users(locked, result)  # (the lock table for the others only: `tabled`)
        broken = self.calls.lease_broken
        for target in locked:
            if target in leased and target not in found and broken(target.handle):
                # opened since the grant (an opener waiting on the lease now goes on, on the
                # file at the name, and queues for our lock like any other; the file is kept)
                found[target] = Use(LockState.OPEN, [LockUser(pid=None)])
        return found

    def tabled(self, targets: Sequence[Target]) -> list[Target]:
        """See `PosixRemover`: the files without a kept lease (`users_before_unlink`): nobody
        holds or waits for a file whose lease was granted, and an open since breaks it."""
        leased = self._leased
        return [t for t in targets if t not in leased] if leased else list(targets)

    def users_after_unlink(
        self, unlinked: Sequence[Target], result: CleanResult
    ) -> dict[Target, Use]:
        """See `Remover`: the files whose lease `users_before_unlink` keeps need no look (an
        open since breaks the lease, and `let_go` sees it). The others: the kernel's lease
        first, for all of them (kept until our close,
        see `open_users`). A file it is granted for has no other open file description: no
        process holds it, waits for it (a waiter has it open) or has it open between its open
        and its flock, and the lock name no longer leads to it (a hard link made meanwhile, or
        a handle, could still: red-team M5; an open that breaks the kept lease is handed over
        by `let_go`): nobody to hand over to, so the lock table and the fd walk are not needed
        for it. Only the files it is refused
        for (someone has it open: `users` names who, and a refusal the walk cannot explain is
        asked again there, `_alone_again`) or cannot be asked about (no lease on this file
        system, or no right to one: `users` decides as without leases) are looked at."""
        doubt: list[Target] = []
        leased = self._leased  # (kept since `users_before_unlink`: `let_go` asks those)
        asked = [t for t in unlinked if t not in leased]
        answers = self.calls.alone_all([t.handle for t in asked], keep=True)
        for target, said in zip(asked, answers, strict=True):
            if said is not True:
                self._lease_said[target] = said
                doubt.append(target)
            else:
                self._leased.add(target)
        try:
            return self.users(doubt, result) if doubt else {}
        finally:
            self._lease_said.clear()  # (for this call's `open_users` only)

    def let_go(self, targets: Sequence[Target]) -> list[Target]:
        """See `Remover`: each file whose lease we keep is asked, right before its close,
        whether an open waits on that lease (`Syscalls.lease_broken`, red-team M6): an open
        that found the name before the unlink and was counted only after the lease was granted
        (held in between by a slow permission check, or descheduled) would get the unlinked
        file once we close it, and lock it beside a new uv at the name. Such a file stays
        locked, its lease given up, and is returned to be handed over. An open still held
        before its count when the file is closed is seen by nothing (red-team M1)."""
        late: list[Target] = []
        leased, broken = self._leased, self.calls.lease_broken
        for target in targets:
            if target in leased and target.handle is not None and broken(target.handle):
                late.append(target)
            else:
                self.release(target)
        leased.clear()
        return late

    def _alone_again(self, fd: int) -> bool | None:
        """`Syscalls.alone` (kept) through `fd`, refused once, asked again a few times over a
        millisecond: a description closed meanwhile (another cleaner's or a scan's probe,
        opened before our unlink) can never lock the unlinked file (red-team L4, L6)."""
        said: bool | None = False
        for _retry in range(LEASE_RETRIES):
            self.calls.sleep(LEASE_RETRY_WAIT)
            said = self.calls.alone(fd, keep=True)
            if said is not False:
                break
        return said

    def handoffs_in_use(self, handoffs: Sequence[Handoff]) -> set[Handoff]:
        """See `PosixRemover`: one read of the lock table and one fd walk for all of them.

        A process seen on an old file's lock entry whose fds we cannot read (another user's,
        when we are not root) is followed until it exits: once our lock goes, a woken waiter
        is in no table until it runs again, and its open fd is hidden from us. Unless the
        kernel's lease (`Syscalls.alone`) can be asked: it sees every open file description of
        the old file, that waiter's included, so it decides instead.
        """
        # the old files we still hold (OLD) are anchors: their waiters queue behind us
        table = self._read_table(h.old_key for h in handoffs if h.state == OLD)
        pids = [int(entry) for entry in self.calls.list_dir(self.proc) if entry.isdigit()]
        hidden: set[int] = set()
        try:
            # a former next generation may have been moved to another name before it left ours
            # (red-team Q4): its openers are found by inode whatever their links show
            names = ANY_NAME if any(h.old_was_new for h in handoffs) else {h.name for h in handoffs}
            found, _count = walk_fds(
                self.proc, pids, names, {h.old_key for h in handoffs}, self.calls, self.own_pid,
                hidden,
            )  # fmt: skip
        except OSError:  # some process's open files could not be listed: unknown, so in use
            return set(handoffs)
        used: set[Handoff] = set()
        for handoff in handoffs:
            entries: list[LockEntry] = []
            holding = handoff.state == OLD
            if table is not None:
                mine, unsure = table.entries(*handoff.old_key, self.known, own=holding)
                entries = mine + unsure
                if holding and table.unseen(*handoff.old_key, self.known):
                    used.add(handoff)  # our own record never showed: its waiters are unknown
            handoff.followed |= {e.pid for e in entries if e.pid > 0}
            handoff.followed &= hidden  # a visible one is seen below; an exited one is gone
            # the kernel's lease says whether anybody still has the old file open, whoever the
            # walk cannot see (B2, L1, L7); it answers for the followed pids too: one that
            # let go of the old file cannot take its lock again (no name, no open file left),
            # so it need not be followed until it exits (it may wait on our new file meanwhile)
            alone = self.calls.alone(handoff.old_fd) if handoff.old_fd is not None else None
            if found.get(handoff.old_key) or alone is False:
                used.add(handoff)
            elif handoff.followed and alone is None:
                used.add(handoff)  # it may use the old file unseen: followed until it exits
            elif entries and holding:
                used.add(handoff)  # waiting behind our lock (our own record is not here)
            # in NEW, a lock entry alone is left to our try-lock (`confirm_in_use`): it fails
            # while anybody else holds the old file, and once it is ours every waiter queues
            # behind us. The holder may be our own description, locked by a keeper that was
            # killed as it took over (printed with its dead pid): only our unlock lets the
            # old file's users go on, and between rounds our description holds no lock in NEW
            if (
                handoff in used and not holding and handoff.old_fd is not None
                and any(not e.waiting for e in entries)
            ):  # fmt: skip
                with contextlib.suppress(OSError):
                    self.calls.flock(handoff.old_fd, LOCK_UN)
        return used | self.confirm_in_use([h for h in handoffs if h not in used])

    def waiting_behind_us(self, handoffs: Sequence[Handoff]) -> set[Handoff]:
        """See `PosixRemover`: the table, read until our record on each old file is in it."""
        if not handoffs:
            return set()
        table = self._read_table(h.old_key for h in handoffs)
        if table is None:
            if self._table_ever_read:
                return set(handoffs)  # it was readable a moment ago: unknown is not "nobody"
            return set()  # never readable (R13's rule keeps such runs to private dirs)
        used: set[Handoff] = set()
        for handoff in handoffs:
            mine, unsure = table.entries(*handoff.old_key, self.known)
            handoff.followed |= {e.pid for e in mine + unsure if e.pid > 0}
            if mine or unsure or table.unseen(*handoff.old_key, self.known):
                used.add(handoff)
        return used

    def replaced_in_use(
        self, handoff: Handoff, keys: list[FileKey], fds: list[int]
    ) -> set[FileKey]:
        """See `PosixRemover`: the fd walk first (whoever has one open, unlinked or not), then
        the lock table read until our own record on each is in it (whoever waits queues behind
        that record; a record never seen leaves its waiters unknown: used). Whatever cannot be
        read counts as used.

        The walk matches by inode whatever name a link shows: such a file may have been moved
        to another name before it left ours (red-team Q3). A cleaner that cannot look into
        every process's fds (not root: other users' are hidden, or not even listed under
        `hidepid`; root refused some process's links) finds every one in use, since an opener
        between its open and its flock shows nowhere else (Q1), unless the kernel grants a
        lease through our fd on it (`Syscalls.alone`: nobody else has it open). The table is
        read all the same, for the pids of the waiters, which are remembered (`Handoff.seen`)
        and followed in the file's turn (Q2).
        """
        if not keys:
            return set()
        pids = [int(entry) for entry in self.calls.list_dir(self.proc) if entry.isdigit()]
        try:
            found, hidden = walk_fds(
                self.proc, pids, ANY_NAME, set(keys), self.calls, self.own_pid
            )  # fmt: skip
        except OSError:  # some process's open files could not be listed: unknown, so in use
            return set(keys)
        used = {key for key in keys if found.get(key)}
        blind = self.euid != 0 or hidden > 0
        by_key = dict(zip(keys, fds, strict=False))
        for key in keys:
            # the lease sees every open the walk may not (another user's, a thread's own fd
            # table); where it cannot be asked, a blind walk leaves the file used
            fd = by_key.get(key)
            said = self.calls.alone(fd) if fd is not None else None
            if said is False or (said is None and blind):
                used.add(key)
        table = self._read_table(keys)
        if table is None:
            # never readable: as for the old file (R13's rule keeps such runs to private dirs)
            return set(keys) if self._table_ever_read else used
        for key in keys:
            mine, unsure = table.entries(*key, self.known)
            handoff.seen.setdefault(key, set()).update(e.pid for e in mine + unsure if e.pid > 0)
            if mine or unsure or table.unseen(*key, self.known):
                used.add(key)
        return used

    def old_in_use(self, dev: int, ino: int, path: str) -> bool:
        """See `PosixRemover`: any entry on the old inode, or any process with it open."""
        name = path.rsplit("/", 1)[-1]
        table = self._read_table()
        if table is not None:
            # the device was learned while we held the file (`known`); our locks now are others'
            mine, unsure = table.entries(dev, ino, self.known, own=False)
            if mine or unsure:
                return True
        pids = [int(entry) for entry in self.calls.list_dir(self.proc) if entry.isdigit()]
        try:
            found, _hidden = walk_fds(
                self.proc, pids, {name}, {(dev, ino)}, self.calls, self.own_pid
            )
        except OSError:  # some process's open files could not be listed: unknown, so in use
            return True
        return bool(found)
