"""Removing orphaned uv lock files without ever breaking uv's mutual exclusion.

The protocol (the README's "The per-file protocol" says it for users) is written once here, in
`Remover.remove`; each OS supplies the few primitives it is made of:

1. `acquire`: exact name, the file itself checked (regular, owned, one link, empty, old enough:
   on Unix the `fstat` of an `O_NOFOLLOW` open relative to the dir, with `lstat` only to say why
   a file that cannot be opened stays; on Windows `lstat`, then the opened handle's own
   information), and an exclusive try-lock (it fails on any holder; waiters queue only behind
   a holder, so they are looked for in step 2, while we hold it). Anything else is skipped with
   its state and reason.
2. `users_before_unlink`, while holding every lock of a batch: nobody waits for, holds or has the
   file open (by default `users`: one pass over the OS's tables for the whole batch, the lock
   table *and* every process's files; on Linux the kernel's write lease is taken first and kept,
   and the lock table is read only for a batch with a file it was refused for), and `changed`:
   the name is still that file, and the file still what we checked.
3. `unlink` while still holding the lock (it frees the name at once: on Windows the file is
   renamed away by handle, then deleted with POSIX semantics), then `users_after_unlink` for the
   batch (by default both tables again; on Linux only the files without a kept lease).
4. If some process turns out to be using the old file after all (it opened it between our checks
   and the unlink), `undo_all`: a handoff for each (a new file at the name, locked before the old
   lock is released, kept until *every* user of the old file, read afresh each round, has let go
   of it). It is bounded in time and then finished by a detached keeper: on Unix
   (`remove.handoff`) the keeper inherits the locked file descriptions; on Windows, where a lock
   cannot be passed to another process, the keeper locks another byte of the new file before the
   cleaner lets its own byte go (`remove.winkeeper`). The file is then reported as kept.
5. `release`: unlock and close.
"""
# ruff: noqa: PLC0415 - imports inside functions: only the path that needs a module pays for it

from __future__ import annotations

import gc
import signal
import threading
import time
import weakref
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from uvsweep import system
from uvsweep.model import CleanResult, LockState, LockUser, Record, ScanError, format_age

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Protocol

    class Clock(Protocol):
        """What `backoff` needs of the OS (`probe.posix.Syscalls` is one; a type only:
        `typing` costs every start ~3 ms)."""

        def monotonic(self) -> float: ...
        def sleep(self, seconds: float) -> None: ...


#: Called with a one-line message when something takes long enough to be worth saying.
Progress = Callable[[str], None]


#: `Policy.may_remove`'s answer for another user's file that this run may not take.
FOREIGN_FILE = "another user's file: only root removes those, with --all-users"


class Policy:
    """Which files a run may remove, beyond what the protocol itself demands."""

    def __init__(
        self, min_age: float = 0.0, all_users: bool = False, private_dirs_only: str = ""
    ) -> None:
        self.min_age = min_age  # seconds since the file was created (uv never writes to it)
        self.all_users = all_users  # also other users' files (only honoured for root)
        # non-empty: processes of other users are hidden from us (the reason why), so only
        # files in a dir that no other user can enter may go
        self.private_dirs_only = private_dirs_only
        self._private: dict[str, bool] = {}

    def kept_by_visibility(self, directory: str, st: object) -> str | None:
        """Why a file stays because a hidden process could have it open, or None."""
        if not self.private_dirs_only:
            return None
        if directory not in self._private:
            self._private[directory] = dir_is_private(directory)
        if self._private[directory]:
            return None
        return (
            f"another user's process could have it open unseen: {self.private_dirs_only}"
            " (only files in a dir no other user can enter are removed)"
        )

    def too_young(self, age: float) -> str | None:
        """Why a file of this age stays, or None if it is old enough."""
        if age >= self.min_age:
            return None
        return f"younger than the minimum age ({format_age(age)} < {format_age(self.min_age)})"

    def may_take(self, *, mine: bool, privileged: bool) -> bool:
        """Whether a file of this owner may go at all: our own always; another user's only in
        an all-users run by a privileged user (root; an administrator on Windows)."""
        return mine or (self.all_users and privileged)

    def may_remove(self, *, mine: bool, privileged: bool, age: float, directory: str) -> str | None:
        """The whole rule for a file nobody uses, in one place (the dry run and every remover
        ask it): None when it may go, else why it stays (FOREIGN_FILE: another user's file)."""
        if not self.may_take(mine=mine, privileged=privileged):
            return FOREIGN_FILE
        return self.too_young(age) or self.kept_by_visibility(directory, None)


def dir_is_private(directory: str) -> bool:
    """Whether no other user can reach files in `directory` (ours, no group or other access)."""
    import os

    try:
        st = os.stat(directory)
    except OSError:
        return False
    return st.st_uid == os.geteuid() and st.st_mode & 0o077 == 0


class Target:
    """One file this pass has opened and exclusively locked (mutable, internal)."""

    __slots__ = (
        "dev", "dir_handle", "directory", "handle", "ino", "locked", "name", "path", "uid",
        "unlinked",
    )  # fmt: skip

    def __init__(
        self, directory: str, name: str, path: str, dev: int, ino: int, handle: Any,
        dir_handle: Any = None,
    ) -> None:  # fmt: skip
        self.directory, self.name, self.path = directory, name, path
        self.dev, self.ino, self.handle = dev, ino, handle
        self.dir_handle = dir_handle  # what `listing` returned (Unix: the dir fd)
        self.locked = True
        self.uid = -1  # the owner the checks saw (Unix)
        self.unlinked = False  # its name removed by us (step 4): `users` looks again


class Use(Record):
    """Somebody other than us is using a target: how, and who (pid None when hidden)."""

    __slots__ = ("holders", "state")
    state: LockState  # WAITING, HELD or OPEN
    holders: tuple[LockUser, ...]

    def __init__(self, state: LockState, holders: Sequence[LockUser]) -> None:
        self._init(state=state, holders=tuple(holders))

    def describe(self) -> str:
        """`pid 12 uv (alice)` or `a process the OS does not show`."""
        return describe_holders(self.holders)


def describe_holders(holders: Sequence[LockUser]) -> str:
    """`pid 12 uv (alice), pid 13 ...`, or `a process the OS does not show`."""
    shown = [f"pid {h.describe()}" for h in holders if h.pid is not None]
    return ", ".join(shown) if shown else "a process the OS does not show"


_USE_REASON = {
    LockState.WAITING: "a process began waiting for it during removal: {who}",
    LockState.HELD: "another process has a lock on it: {who}",
    LockState.OPEN: "a process opened it during removal: {who}",
}


@contextmanager
def deferred_interrupts(caught: list[int]) -> Iterator[None]:
    """Hold back Ctrl-C (SIGINT) and SIGTERM while locks are held, and act on them once the
    locks are released or handed to a keeper (KeyboardInterrupt, or exit status 143).

    A caught signal is appended to `caught` at once, so long waits inside can cut themselves
    short. Only the main thread can install a handler; elsewhere this does nothing (see
    `request_stop` for threads).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _remember(signum: int, _frame: object) -> None:
        caught.append(signum)

    wanted: list[int] = [signal.SIGINT]
    if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        wanted.append(signal.SIGTERM)  # a default SIGTERM would drop the locks unhanded
    previous: dict[int, Any] = {}
    try:
        for signum in wanted:
            previous[signum] = signal.signal(signum, _remember)
    except ValueError:  # not the main interpreter
        yield
        return
    try:
        yield
    finally:
        for restored, handler in previous.items():
            signal.signal(restored, handler)
    if signal.SIGINT in caught:
        raise KeyboardInterrupt
    if caught:
        raise SystemExit(128 + signal.SIGTERM)


#: Removals under way in this process (for `request_stop`).
_RUNNING: weakref.WeakSet[Remover] = weakref.WeakSet()


def request_stop() -> int:
    """Ask every removal under way in this process (on any thread) to stop waiting: a handoff
    in progress goes to a keeper at once, and the removal returns. How many were asked.

    The tray and `watch` call it when they quit, so a cleanup thread never dies holding a lock
    that a handoff still needs.
    """
    running = list(_RUNNING)
    for remover in running:
        remover.stop_requests.append(1)
    return len(running)


class Remover(ABC):
    """The protocol, over an OS's primitives. One instance serves one run."""

    #: Files locked at once: one pass over the process table serves all of them.
    batch_size = 512

    def __init__(self, progress: Progress | None = None) -> None:
        self.progress = _never_failing(progress) if progress else (lambda _message: None)
        self.notes: list[str] = []  # said once per run, whatever the number of files
        self.interrupts: list[int] = []  # SIGINT/SIGTERM caught while a batch held its locks
        self.stop_requests: list[int] = []  # `request_stop` from another thread

    # ---- primitives ---------------------------------------------------------------------------

    @abstractmethod
    def privileged(self) -> bool:
        """Whether this process may remove other users' files (root; a Windows administrator):
        the `privileged` of `Policy.may_take`."""

    @abstractmethod
    def listing(self, directory: str) -> tuple[Any, list[str]]:
        """(a handle on the dir, the uv lock names in it); OSError if it cannot be listed."""

    @abstractmethod
    def close_dir(self, dir_handle: Any) -> None:
        """Release what `listing` opened."""

    def begin_batch(self) -> None:  # noqa: B027 - an optional hook, empty by default
        """Forget what was cached for the previous batch (a lock table, say)."""

    @abstractmethod
    def acquire(
        self, dir_handle: Any, directory: str, name: str, policy: Policy, result: CleanResult
    ) -> Target | None:
        """Check and exclusively lock one file; None (with the skip recorded) if it stays."""

    @abstractmethod
    def users(self, targets: Sequence[Target], result: CleanResult) -> dict[Target, Use]:
        """Targets some other process holds, waits for or has open, in one pass for all."""

    def users_before_unlink(
        self, locked: Sequence[Target], result: CleanResult
    ) -> dict[Target, Use]:
        """Step 2's look: of the files just locked, those some other process holds, waits for
        or has open. By default `users`; an OS whose kernel can say at once that nobody else
        has a file open asks it first (Linux: the lease, kept until the close, which spares
        the lock table for a batch it is granted for entirely)."""
        return self.users(locked, result)

    def users_after_unlink(
        self, unlinked: Sequence[Target], result: CleanResult
    ) -> dict[Target, Use]:
        """Step 4's look: of the files just unlinked (still locked by us), those some other
        process holds, waits for or has open now. By default `users`; an OS whose kernel can
        say at once that nobody else has a file open asks it first (Linux: the lease)."""
        return self.users(unlinked, result)

    def let_go(self, targets: Sequence[Target]) -> list[Target]:
        """Release the unlinked `targets` nobody else used: those that turn out used at the
        last moment stay locked and are returned, to be handed over. By default none."""
        for target in targets:
            self.release(target)
        return []

    @abstractmethod
    def changed(self, target: Target) -> str | None:
        """Why the file may not go after all (renamed, replaced, written to), or None."""

    @abstractmethod
    def unlink(self, target: Target) -> None:
        """Remove the name while the lock is held; OSError if the OS refuses."""

    @abstractmethod
    def undo(self, target: Target, use: Use, result: CleanResult) -> str:
        """Some process used the file after all: keep mutual exclusion intact.

        Returns how, for the report: `the lock was handed over`.
        """

    def undo_all(
        self, pending: Sequence[tuple[Target, Use]], result: CleanResult
    ) -> dict[Target, str | None]:
        """`undo` for every file of a batch that some process used after all; how, per file.

        None for a file that nobody needed after all (it stays removed).
        """
        return {target: self.undo(target, use, result) for target, use in pending}

    @abstractmethod
    def release(self, target: Target) -> None:
        """Unlock and close (idempotent)."""

    # ---- the protocol -------------------------------------------------------------------------

    @property
    def stopping(self) -> bool:
        """Whether a signal or `request_stop` asked this removal to stop waiting."""
        return bool(self.interrupts or self.stop_requests)

    def remove(
        self, dirs: Sequence[str], policy: Policy, result: CleanResult | None = None
    ) -> CleanResult:
        """Remove every removable uv lock file directly inside `dirs`; what was removed and
        kept goes into `result` (a new one by default), which is returned."""
        _RUNNING.add(self)
        try:
            with _collector_paused():
                return self._remove(dirs, policy, CleanResult(dirs) if result is None else result)
        finally:
            _RUNNING.discard(self)

    def _remove(self, dirs: Sequence[str], policy: Policy, result: CleanResult) -> CleanResult:
        for directory in dirs:
            try:
                dir_handle, names = self.listing(directory)
            except OSError as err:
                result.errors.append(ScanError(directory, system.dir_reason(err)))
                continue
            try:
                for start in range(0, len(names), self.batch_size):
                    with deferred_interrupts(self.interrupts):
                        self._batch(
                            dir_handle, directory, names[start : start + self.batch_size],
                            policy, result,
                        )  # fmt: skip
            finally:
                self.close_dir(dir_handle)
        for note in self.notes:
            result.note(note)
        return result

    def _batch(
        self,
        dir_handle: Any,
        directory: str,
        names: Sequence[str],
        policy: Policy,
        result: CleanResult,
    ) -> None:
        locked: list[Target] = []
        self.begin_batch()
        try:
            for name in names:
                target = self.acquire(dir_handle, directory, name, policy, result)
                if target is not None:
                    locked.append(target)
            if not locked:
                return
            unlinked = self._unlink_unused(locked, result)
            if unlinked:
                self._after_unlink(directory, locked, unlinked, result)
        finally:
            for target in locked:
                self.release(target)

    def _unlink_unused(self, locked: Sequence[Target], result: CleanResult) -> list[Target]:
        """Steps 2 and 3: the files nobody uses, unlinked while we hold them."""
        busy = self.users_before_unlink(locked, result)
        unlinked: list[Target] = []
        for target in locked:
            use = busy.get(target)
            if use is not None:
                reason = _USE_REASON[use.state].format(who=use.describe())
                result.skip(target.path, use.state, reason)
            elif (why := self.changed(target)) is not None:
                result.skip(target.path, LockState.SUSPICIOUS, why)
            else:
                try:
                    self.unlink(target)
                except FileNotFoundError:
                    continue  # someone else removed it first
                except OSError as err:
                    message = system.reason(err)
                    result.errors.append(ScanError(target.path, message))
                    result.skip(
                        target.path, LockState.ORPHANED, f"the OS refused to remove it ({message})"
                    )
                    continue
                target.unlinked = True
                unlinked.append(target)
        return unlinked

    def _after_unlink(
        self,
        directory: str,
        locked: Sequence[Target],
        unlinked: Sequence[Target],
        result: CleanResult,
    ) -> None:
        """Step 4: whoever got hold of an unlinked file meanwhile gets a handoff."""
        unseen = Use(LockState.OPEN, [LockUser(pid=None)])  # somebody we cannot name
        try:
            after = self.users_after_unlink(unlinked, result)
        except Exception as err:  # noqa: BLE001 - never drop an unlinked file's lock unchecked
            result.errors.append(
                ScanError(directory, f"the removed files could not be checked again: {err}")
            )
            after = dict.fromkeys(unlinked, unseen)  # the safe side: hand every one over
        pending: list[tuple[Target, Use]] = []
        unused: list[Target] = []
        for target in unlinked:
            use = after.get(target)
            if use is None:
                unused.append(target)
                continue
            self.progress(
                f"{target.path}: {use.describe()} opened it while it was being removed;"
                " handing the lock over"
            )
            pending.append((target, use))
        late = set(self.let_go(unused))  # a last look at each, as it is closed
        for target in unused:
            if target not in late:
                result.removed.append(target.path)
                continue
            self.progress(
                f"{target.path}: {unseen.describe()} was opening it as it was being removed;"
                " handing the lock over"
            )
            pending.append((target, unseen))
        if not pending:
            return
        handing = {target for target, _use in pending}
        for target in locked:  # nobody waits on our other locks while we hand over
            if target not in handing:
                self.release(target)
        hows = self.undo_all(pending, result)
        for target, use in pending:
            how = hows[target]
            if how is None:  # nobody needed the old file after all: it is gone
                result.removed.append(target.path)
                continue
            result.handoffs += 1
            result.skip(
                target.path,
                LockState.HELD,
                f"{use.describe()} opened it while it was being removed: {how}",
            )


class _CollectorPause:
    """No cyclic garbage collection while a removal runs (on any thread): a batch makes
    thousands of objects that live until its end (a `Target` and two `os.stat_result`s a file),
    and the collections they set off, which free none of them, took 8% of a 10,000-file removal.
    What removals leave in cycles is collected once the last one is over; a collector that was
    off before the first stays off."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running = 0  # removals under way in this process
        self._was_on = False

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._running == 0:
                self._was_on = gc.isenabled()
                gc.disable()
            self._running += 1
        try:
            yield
        finally:
            with self._lock:
                self._running -= 1
                if self._running == 0 and self._was_on:
                    gc.enable()


_collector_paused = _CollectorPause()


class _RealClock:
    monotonic = staticmethod(time.monotonic)
    sleep = staticmethod(time.sleep)


def _never_failing(say: Progress) -> Progress:
    """`say`, except that a line it cannot write (a closed pipe, a full disk) is dropped: a
    removal never stops half-way, between an unlink and its handoff, for its progress output."""

    def saying(message: str) -> None:
        try:
            say(message)
        except Exception:  # noqa: BLE001 - progress is never worth a lock
            return

    return saying


def backoff(
    start: float = 0.001, limit: float = 0.05, calls: Clock | None = None
) -> Iterator[float]:
    """Sleep intervals for polling: short at first, then `limit`; yields the time waited so far."""
    clock = calls or _RealClock()
    delay, began = start, clock.monotonic()
    while True:
        yield clock.monotonic() - began
        clock.sleep(delay)
        delay = min(limit, delay * 2)


def for_platform(
    platform: str | None = None, progress: Progress | None = None, **seams: Any
) -> Remover:
    """The remover for this OS (Linux, Windows, or the macOS/BSD one for any other Unix)."""
    import sys

    platform = platform or sys.platform
    if system.is_linux(platform):
        from uvsweep.remove.posix import LinuxRemover

        return LinuxRemover(progress=progress, **seams)
    if system.is_windows(platform):
        from uvsweep.remove.windows import WindowsRemover

        return WindowsRemover(progress=progress, **seams)
    from uvsweep.remove.darwin import DarwinRemover

    return DarwinRemover(progress=progress, **seams)
