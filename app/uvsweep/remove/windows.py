"""The removal primitives on Windows: one handle, `LockFileEx`, a rename and a POSIX delete.

Each file is opened once, sharing read, write and delete as uv's own handles do, with `DELETE`
access and without following reparse points. An exclusive `LockFileEx` that fails immediately
says whether anyone holds it; `NtQueryInformationFile(FileProcessIdsUsingFileInformation)` lists
every process with a handle on it (waiters included).

The name is freed at once, as an unlink does on Unix: the file is renamed through our handle, with
POSIX semantics, to a unique name in the same dir that is not a uv lock name, and only then marked
for deletion (`FileDispositionInfoEx`, `DELETE | POSIX_SEMANTICS`). A delete-pending file refuses
every open with `ERROR_ACCESS_DENIED`, on which uv >= 0.7.19 warns and runs *without* its lock;
so no name is ever left delete-pending, not even while the rest of a batch is checked. A uv that
opens the name afterwards creates a new file there, as on Unix.

A process that opened the old file between the check and the rename is handed the lock as on
Unix: a new file at the name is fenced first (byte [0, 1) locked: every uv locks the whole file,
so one byte keeps it out), the old lock released, and the fence kept until nobody but us has a
handle on the old file. `clean` waits for that a bounded time (`HANDOFF_WAIT`, cut short by
Ctrl-C or a quitting tray), then a detached keeper process locks byte [1, 2) of the new file and
says `ready`, and only then is our byte let go (`remove.winkeeper`: a Windows lock dies with its
process and cannot be passed on, but two bytes can be held by two processes at once). If no
keeper takes over, `clean` keeps its byte and waits itself; only Ctrl-C twice gives that up.

The Win32 calls sit behind `Win32Remove` (ctypes in `Kernel32Remove`, imported only when used),
so the logic is tested on any OS with a model of the Windows file calls.
"""
# ruff: noqa: PLC0415 - imports inside functions: only the path that needs a module pays for it

from __future__ import annotations

import ntpath
import os
import secrets
import stat
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from uvsweep import system
from uvsweep.model import CleanResult, LockState, LockUser, ScanError
from uvsweep.naming import is_lock_name
from uvsweep.probe import LockProbe, Observation, classify
from uvsweep.probe.windows import (
    DELETE,
    ERROR_LOCK_VIOLATION,
    FILE_ATTRIBUTE_REPARSE_POINT,
    GENERIC_READ,
    GENERIC_WRITE,
    OPEN_ALWAYS,
    OPEN_EXISTING,
    READ_CONTROL,
    Kernel32Files,
)
from uvsweep.processes import ProcessTable
from uvsweep.remove import (
    FOREIGN_FILE,
    Policy,
    Progress,
    Remover,
    Target,
    Use,
    backoff,
)
from uvsweep.remove.handoff import HANDOFF_WAIT, keeper_log_path
from uvsweep.remove.winkeeper import CLEANER_FENCE, WinHandoff, WinKeeper, still_used

TYPE_CHECKING = False
if TYPE_CHECKING:
    from uvsweep.remove import Clock

FILE_RENAME_INFO = 3
FILE_DISPOSITION_INFO = 4
FILE_DISPOSITION_INFO_EX = 21
FILE_RENAME_INFO_EX = 22
FILE_DISPOSITION_FLAG_DELETE = 0x1
FILE_DISPOSITION_FLAG_POSIX_SEMANTICS = 0x2
FILE_RENAME_FLAG_POSIX_SEMANTICS = 0x2
#: what a removed file is renamed to before it goes: never a uv lock name
GONE_SUFFIX = ".uvsweep-removed"


class Win32Remove(Protocol):
    """The Win32 file calls removal needs."""

    def open_for_delete(self, path: str) -> Any:
        """A handle with read, delete and read-control access, sharing everything."""

    def open_generation(self, path: str) -> Any:
        """Open or create (`OPEN_ALWAYS`) as uv does, read-write, sharing everything; OSError
        if what is at the name is a reparse point."""

    def identity(self, handle: Any) -> tuple[int, int]:
        """(volume serial, file index)."""

    def owner(self, handle: Any) -> tuple[str, bool]:
        """(owner's account name, whether it is the current user)."""

    def lock_exclusive(self, handle: Any) -> bool:
        """`LockFileEx` exclusive, fail-immediately, whole range; False if someone holds it."""

    def unlock(self, handle: Any) -> None:
        """`UnlockFileEx` over the whole range."""

    def lock_range(self, handle: Any, offset: int, length: int) -> bool:
        """`LockFileEx` exclusive, fail-immediately, over [offset, offset + length); False if
        a lock of someone else (or ours) overlaps it."""

    def unlock_range(self, handle: Any, offset: int, length: int) -> None:
        """`UnlockFileEx` of exactly the range `lock_range` took; OSError if it is not ours."""

    def pids_using(self, handle: Any) -> list[int]:
        """Every process with a handle on the file (ours included)."""

    def rename(self, handle: Any, new_name: str) -> None:
        """Rename the file through `handle` to `new_name` in the same dir (never replacing)."""

    def set_delete(self, handle: Any) -> None:
        """Mark the file for deletion through `handle` (POSIX semantics where available)."""

    def close(self, handle: Any) -> None:
        """`CloseHandle`."""


class Kernel32Remove(Kernel32Files):
    """`Win32Remove` through ctypes; only ever called on Windows."""

    def open_for_delete(self, path: str) -> Any:
        """See `Win32Remove`."""
        return self._create(path, GENERIC_READ | DELETE | READ_CONTROL, OPEN_EXISTING)

    def open_generation(self, path: str) -> Any:
        """See `Win32Remove`."""
        handle = self._create(path, GENERIC_READ | GENERIC_WRITE, OPEN_ALWAYS)
        info = self.info_type()
        if not self.kernel32.GetFileInformationByHandle(handle, self.ctypes.byref(info)):
            error = self._error()
            self.close(handle)
            raise error
        if info.attributes & FILE_ATTRIBUTE_REPARSE_POINT:
            self.close(handle)
            raise OSError(0, "a symlink or junction is at the name", path)
        return handle

    def lock_exclusive(self, handle: Any) -> bool:
        """See `Win32Remove`: the whole file, as uv locks it."""
        return self.lock_range(handle, 0, 0xFFFFFFFFFFFFFFFF)

    def unlock(self, handle: Any) -> None:
        """See `Win32Remove`."""
        overlapped = self.overlapped_type()
        self.kernel32.UnlockFileEx(handle, 0, 0xFFFFFFFF, 0xFFFFFFFF, self.ctypes.byref(overlapped))

    def lock_range(self, handle: Any, offset: int, length: int) -> bool:
        """See `Win32Remove`: the offset goes in the OVERLAPPED, the length in two DWORDs."""
        overlapped = self.overlapped_type()
        overlapped.offset, overlapped.offset_high = offset & 0xFFFFFFFF, offset >> 32
        exclusive, fail_immediately = 0x2, 0x1
        if self.kernel32.LockFileEx(
            handle, exclusive | fail_immediately, 0, length & 0xFFFFFFFF, length >> 32,
            self.ctypes.byref(overlapped),
        ):  # fmt: skip
            return True
        code = self.ctypes.get_last_error()
        if code == ERROR_LOCK_VIOLATION:
            return False
        raise self.ctypes.WinError(code)

    def unlock_range(self, handle: Any, offset: int, length: int) -> None:
        """See `Win32Remove`."""
        overlapped = self.overlapped_type()
        overlapped.offset, overlapped.offset_high = offset & 0xFFFFFFFF, offset >> 32
        if not self.kernel32.UnlockFileEx(
            handle, 0, length & 0xFFFFFFFF, length >> 32, self.ctypes.byref(overlapped)
        ):
            raise self._error()

    def rename(self, handle: Any, new_name: str) -> None:
        """See `Win32Remove`: a bare name renames within the same dir."""
        ctypes, wintypes = self.ctypes, self.wintypes
        name_type = ctypes.c_wchar * (len(new_name) + 1)
        fields = [("flags", wintypes.DWORD), ("root", wintypes.HANDLE),
                  ("length", wintypes.DWORD), ("name", name_type)]  # fmt: skip
        info: Any = type("RenameInfo", (ctypes.Structure,), {"_fields_": fields})()
        info.root, info.length, info.name = None, len(new_name) * 2, new_name
        info.flags = FILE_RENAME_FLAG_POSIX_SEMANTICS  # no REPLACE_IF_EXISTS: never replace
        size = ctypes.sizeof(info)
        if self.kernel32.SetFileInformationByHandle(
            handle, FILE_RENAME_INFO_EX, ctypes.byref(info), size
        ):
            return
        # Windows before 10 1709 and file systems without it: the classic rename, just as
        # immediate (flags 0 is ReplaceIfExists = FALSE)
        info.flags = 0
        if not self.kernel32.SetFileInformationByHandle(
            handle, FILE_RENAME_INFO, ctypes.byref(info), size
        ):
            raise self._error()

    def set_delete(self, handle: Any) -> None:
        """See `Win32Remove`: POSIX semantics where the file system has them."""
        ctypes = self.ctypes
        flags = FILE_DISPOSITION_FLAG_DELETE | FILE_DISPOSITION_FLAG_POSIX_SEMANTICS
        info = ctypes.c_ulong(flags)
        if self.kernel32.SetFileInformationByHandle(
            handle, FILE_DISPOSITION_INFO_EX, ctypes.byref(info), ctypes.sizeof(info)
        ):
            return
        # FAT and Windows before 10 1607: the classic disposition (the renamed file goes at the
        # last close; its unique name is nobody's lock)
        classic = ctypes.c_ubyte(1)
        if not self.kernel32.SetFileInformationByHandle(
            handle, FILE_DISPOSITION_INFO, ctypes.byref(classic), ctypes.sizeof(classic)
        ):
            raise self._error()


class WindowsRemover(Remover):
    """The protocol on Windows."""

    def __init__(
        self,
        progress: Progress | None = None,
        files: Win32Remove | None = None,
        processes: ProcessTable | None = None,
        lstat: Callable[[str], os.stat_result] = os.lstat,
        listdir: Callable[[str], list[str]] = os.listdir,
        clock: Callable[[], float] = time.time,
        is_admin: Callable[[], bool] | None = None,
        calls: Clock | None = None,
        getpid: Callable[[], int] = os.getpid,
        keeper: WinKeeper | None = None,
        handoff_wait: float = HANDOFF_WAIT,
    ) -> None:
        super().__init__(progress)
        self.keeper = keeper or WinKeeper()  # finishes the handoffs that outlast `handoff_wait`
        self.handoff_wait = handoff_wait
        self._keeper_error: OSError | None = None
        self.calls = calls  # the waits' monotonic clock and sleep (the real ones by default)
        self.getpid = getpid  # our own pid, to tell our handles from other processes'
        self.files = files
        self.processes = processes
        self.lstat = lstat
        self.listdir = listdir
        self.clock = clock
        self.is_admin = is_admin or _is_admin

    def _files(self) -> Win32Remove:
        if self.files is None:
            self.files = Kernel32Remove()
        return self.files

    def _holder(self, pid: int) -> LockUser:
        self.processes = self.processes or ProcessTable(platform="win32")
        return self.processes.holder(pid)

    def listing(self, directory: str) -> tuple[str, list[str]]:
        """See `Remover`."""
        return directory, sorted(name for name in self.listdir(directory) if is_lock_name(name))

    def close_dir(self, dir_handle: Any) -> None:
        """See `Remover`: nothing was opened."""

    def _skip(
        self, directory: str, name: str, st: os.stat_result, result: CleanResult, *,
        mode: int | None = None, owner: str = "unknown", mine: bool = True,
        lock: LockProbe = LockProbe.FREE, why: str = "",
    ) -> None:  # fmt: skip
        obs = Observation(
            directory=directory, name=name, mode=st.st_mode if mode is None else mode,
            size=st.st_size, nlink=st.st_nlink, mtime=st.st_mtime, dev=st.st_dev, ino=st.st_ino,
            uid=0, owner=owner, mine=mine, lock=lock,
        )  # fmt: skip
        obs.unreadable_reason = why
        item = classify(obs)
        result.skip(item.path, item.state, item.reason)

    def privileged(self) -> bool:
        """See `Remover`: an administrator (an elevated token)."""
        return self.is_admin()

    def acquire(
        self, dir_handle: Any, directory: str, name: str, policy: Policy, result: CleanResult
    ) -> Target | None:
        """See `Remover`."""
        path = ntpath.join(directory, name)  # Windows paths, also when tested elsewhere
        try:
            st = self.lstat(path)
        except FileNotFoundError:
            return None
        except OSError as err:
            result.errors.append(ScanError(path, system.reason(err)))
            return None
        if getattr(st, "st_file_attributes", 0) & FILE_ATTRIBUTE_REPARSE_POINT:
            self._skip(directory, name, st, result, mode=stat.S_IFLNK | 0o666)
            return None
        if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1 or st.st_size != 0:
            self._skip(directory, name, st, result, lock=LockProbe.NOT_PROBED)
            return None
        age = self.clock() - st.st_mtime
        young = policy.too_young(age)  # the rule's age part, before any handle is opened
        if young:
            result.skip(path, LockState.ORPHANED, young)
            return None
        files = self._files()
        try:
            handle = files.open_for_delete(path)
        except FileNotFoundError:
            return None
        except OSError as err:
            self._skip(directory, name, st, result, lock=LockProbe.UNREADABLE,
                       why=system.reason(err))  # fmt: skip
            return None
        keep = False
        try:
            ident = (st.st_dev & 0xFFFFFFFF, st.st_ino & 0xFFFFFFFFFFFFFFFF)
            if files.identity(handle) != ident:
                result.skip(path, LockState.SUSPICIOUS, "replaced while it was being checked")
                return None
            owner, mine = files.owner(handle)
            why = policy.may_remove(
                mine=mine, privileged=self.privileged(), age=age, directory=directory
            )
            if why == FOREIGN_FILE:
                self._skip(directory, name, st, result, owner=owner, mine=False)
                return None
            if why:
                result.skip(path, LockState.ORPHANED, why)
                return None
            if not files.lock_exclusive(handle):
                self._skip(directory, name, st, result, lock=LockProbe.HELD)
                return None
            keep = True
            return Target(directory, name, path, ident[0], ident[1], handle)
        except OSError as err:
            result.errors.append(ScanError(path, system.reason(err)))
            return None
        finally:
            if not keep:
                files.close(handle)

    def users(self, targets: Sequence[Target], result: CleanResult) -> dict[Target, Use]:
        """See `Remover`: every other process with a handle on the file (waiters have one)."""
        files = self._files()
        me = self.getpid()
        found: dict[Target, Use] = {}
        for target in targets:
            try:
                pids = [pid for pid in files.pids_using(target.handle) if pid != me]
            except OSError:
                found[target] = Use(LockState.OPEN, [LockUser(pid=None)])  # unknown: not "nobody"
                continue
            if pids:
                found[target] = Use(LockState.OPEN, [self._holder(pid) for pid in sorted(pids)])
        return found

    def changed(self, target: Target) -> str | None:
        """See `Remover`: the name must still refer to the very file we hold."""
        try:
            st = self.lstat(target.path)
        except OSError:
            return "replaced while it was being removed"
        key = (st.st_dev & 0xFFFFFFFF, st.st_ino & 0xFFFFFFFFFFFFFFFF)
        return None if key == (target.dev, target.ino) else "replaced while it was being removed"

    def unlink(self, target: Target) -> None:
        """See `Remover`: free the name at once (a rename away), then delete by handle.

        OSError (the file stays at its name) only if the rename fails; once it is renamed, a
        failed delete leaves a file nobody locks under a name that is not uv's, and is noted.
        """
        files = self._files()
        for _attempt in range(3):
            gone = f"{target.name}.{secrets.token_hex(8)}{GONE_SUFFIX}"
            try:
                files.rename(target.handle, gone)
            except FileExistsError:
                continue
            break
        else:
            raise FileExistsError(0, "no free name to rename it to", target.path)
        try:
            files.set_delete(target.handle)
        except OSError as err:
            note = (
                f"{ntpath.join(target.directory, gone)}: renamed away but not deleted"
                f" ({system.reason(err)}); it is no lock file and may be deleted by hand"
            )
            self.notes.append(note)

    def undo(self, target: Target, use: Use, result: CleanResult) -> str:
        """See `Remover`: hand the lock over (`undo_all` for one file)."""
        return self.undo_all([(target, use)], result)[target] or "nobody used the old file"

    def undo_all(
        self, pending: Sequence[tuple[Target, Use]], result: CleanResult
    ) -> dict[Target, str | None]:
        """See `Remover` and `remove.winkeeper`: hand each lock over, wait a bounded time,
        then pass what is left to a keeper (or, if none takes it, wait here).

        A new file at each name is fenced (byte [0, 1) locked by us) before the old lock is
        released; the process that got a handle on the old file then takes its lock, and
        anyone who opens the name from now on finds the new file, locked, until nobody but us
        (or the keeper) has a handle on the old one.
        """
        files = self._files()
        hows: dict[Target, str | None] = {}
        live: dict[Target, WinHandoff] = {}
        asked = len(self.interrupts)  # Ctrl-C already seen: counted from here
        try:
            for target, _use in pending:
                new = self._next_generation(target, result)
                files.unlock(target.handle)  # the old file's user proceeds
                target.locked = False
                if new is None:
                    hows[target] = (
                        "the lock could not be handed over (see errors); the old file was released"
                    )
                    continue
                try:
                    old_id, new_id = (target.dev, target.ino), files.identity(new)
                except OSError:
                    old_id, new_id = (target.dev, target.ino), (-1, -1)  # no keeper can check
                live[target] = WinHandoff(target.path, target.handle, new, old_id, new_id)
            for waited in backoff(calls=self.calls):
                for target, handoff in list(live.items()):
                    if not self._still_used(target):
                        self._let_go(handoff)
                        del live[target]
                if not live or waited >= self.handoff_wait or self.stopping:
                    break
            keeper_pid = self._to_keeper(list(live.values()), pending, result) if live else None
            if live and keeper_pid is None:
                self._wait_here(live, pending, asked)
            for target, _use in pending:
                if target in hows:
                    continue
                left = live.get(target)
                if left is None:
                    hows[target] = "the lock was handed over to a new file at the name, which stays"
                elif keeper_pid is not None:
                    hows[target] = (
                        "the lock was handed over to a new file at the name, which stays; a"
                        f" uvsweep keeper (pid {keeper_pid}) holds it until the old file is let go"
                    )
                elif left.done:
                    hows[target] = "the lock was handed over to a new file at the name, which stays"
                else:
                    hows[target] = (
                        "the lock was handed over to a new file at the name, and released on"
                        " request before the old file's user was done"
                    )
        finally:
            for handoff in live.values():
                self._let_go(handoff)
        return hows

    def _let_go(self, handoff: WinHandoff) -> None:
        """Unlock our byte of the new file and close it (once, whatever happened)."""
        if handoff.new is None:
            return
        files = self._files()
        try:
            files.unlock_range(handoff.new, *CLEANER_FENCE)
        except OSError:
            pass  # closing the handle drops it too
        finally:
            files.close(handoff.new)
            handoff.new = None

    def _to_keeper(
        self,
        handoffs: Sequence[WinHandoff],
        pending: Sequence[tuple[Target, Use]],
        result: CleanResult,
    ) -> int | None:
        """A keeper's pid once it holds every new file's byte (ours are then let go), or None."""
        try:
            pid = self.keeper.take(handoffs, keeper_log_path())
        except OSError as err:
            self._keeper_error = err
            return None
        result.keepers.append(pid)
        uses = {target.path: use for target, use in pending}
        for handoff in handoffs:
            self._let_go(handoff)
            who = uses[handoff.path].describe() if handoff.path in uses else "its user"
            self.progress(
                f"{handoff.path}: a uvsweep keeper (pid {pid}) keeps the lock at the name until"
                f" {who} is done with the old file"
            )
        return pid

    def _wait_here(
        self, live: dict[Target, WinHandoff], pending: Sequence[tuple[Target, Use]], asked: int
    ) -> None:
        """No keeper took the handoffs: keep our bytes and wait. Only Ctrl-C (SIGINT/SIGTERM)
        twice gives that up: a quitting tray asks to stop through every path it has, and must
        not give up mutual exclusion on its own."""
        uses = dict(pending)
        said = False
        for _waited in backoff(calls=self.calls):
            for target, handoff in live.items():
                if not handoff.done and not self._still_used(target):
                    self._let_go(handoff)
                    handoff.done = True
            if all(handoff.done for handoff in live.values()):
                return
            asked_now = len(self.interrupts) - asked
            if not said:
                who = ", ".join(uses[t].describe() for t in live if not live[t].done)
                self.progress(
                    f"could not start a keeper ({self._keeper_error}): keeping the new lock"
                    f" until {who} is done with the old file; Ctrl-C twice gives up (two uv"
                    " processes could then hold one lock)"
                )
                said = True
            if asked_now > 1:
                # asked twice: the user chose to stop over mutual exclusion for these files
                for target, handoff in live.items():
                    if not handoff.done:
                        self.progress(f"{target.path}: gave up the handoff on request")
                return

    def _still_used(self, target: Target) -> bool:
        """Whether any process but us still has a handle on the old (renamed) file."""
        return still_used(self._files(), target.handle, self.getpid())

    def _next_generation(self, target: Target, result: CleanResult) -> Any:
        """A file at the target's name with our fence byte locked (created if need be)."""
        files = self._files()
        deadline: float | None = None
        for waited in backoff(calls=self.calls):
            try:
                handle = files.open_generation(target.path)
            except OSError as err:
                # a delete-pending file or a reparse point at the name: retry briefly
                deadline = deadline or waited + 5.0
                if waited > deadline:
                    why = system.reason(err)
                    result.errors.append(ScanError(target.path, f"lock handoff failed: {why}"))
                    return None
                continue
            try:
                if files.lock_range(handle, *CLEANER_FENCE):
                    return handle
            except OSError as err:
                files.close(handle)
                why = system.reason(err)
                result.errors.append(ScanError(target.path, f"lock handoff failed: {why}"))
                return None
            files.close(handle)  # a new uv holds the new file: wait for it, keeping the old lock
        return None  # pragma: no cover - backoff() never ends

    def release(self, target: Target) -> None:
        """See `Remover`: unlock, then close (the delete, if any, completes at close)."""
        if target.handle is None:
            return
        files = self._files()
        try:
            if target.locked:
                files.unlock(target.handle)
        finally:
            files.close(target.handle)
            target.handle = None
            target.locked = False


def keeper_main(argv: Sequence[str]) -> int:
    """`uvsweep _winkeeper`: a Windows keeper (`winkeeper.keeper_main`) with the Win32 calls."""
    from uvsweep.remove import winkeeper

    return winkeeper.keeper_main(argv, make_files=Kernel32Remove)


def _is_admin() -> bool:
    try:
        from uvsweep import win32

        return bool(win32.load("shell32").IsUserAnAdmin())
    except (AttributeError, OSError):
        return False
