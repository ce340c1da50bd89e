"""The removal primitives on Windows: one handle, `LockFileEx`, and a POSIX-semantics delete.

Each file is opened once, sharing read, write and delete as uv's own handles do, with `DELETE`
access and without following reparse points. An exclusive `LockFileEx` that fails immediately
says whether anyone holds it; `NtQueryInformationFile(FileProcessIdsUsingFileInformation)` lists
every process with a handle on it (waiters included); the delete is a disposition set through
the same handle (`FileDispositionInfoEx`, `DELETE | POSIX_SEMANTICS`) while the lock is held.

Once a delete is pending, Windows refuses new opens of the file, so the set of processes using it
can only shrink: if the check after the delete finds one, the delete is simply cancelled.

The Win32 calls sit behind `Win32Remove` (ctypes in `Kernel32Remove`, imported only when used),
so the logic is tested on any OS with a fake.
"""

from __future__ import annotations

import ntpath
import os
import stat
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from uvsweep.model import Holder, LockState, ScanError
from uvsweep.naming import is_lock_name
from uvsweep.probe import LockProbe, Observation, classify
from uvsweep.probe.windows import (
    ERROR_LOCK_VIOLATION,
    FILE_ATTRIBUTE_REPARSE_POINT,
    Kernel32Files,
)
from uvsweep.processes import ProcessTable
from uvsweep.remove import Policy, Progress, Remover, RemoveResult, Target, Use

STATUS_INFO_LENGTH_MISMATCH = 0xC0000004
FILE_PROCESS_IDS_USING_FILE_INFORMATION = 47
FILE_DISPOSITION_INFO_EX = 21
FILE_DISPOSITION_INFO = 4
FILE_DISPOSITION_FLAG_DELETE = 0x1
FILE_DISPOSITION_FLAG_POSIX_SEMANTICS = 0x2


class Win32Remove(Protocol):
    """The Win32 file calls removal needs."""

    def open_for_delete(self, path: str) -> Any:
        """A handle with read, delete and read-control access, sharing everything."""

    def identity(self, handle: Any) -> tuple[int, int]:
        """(volume serial, file index)."""

    def owner(self, handle: Any) -> tuple[str, bool]:
        """(owner's account name, whether it is the current user)."""

    def lock_exclusive(self, handle: Any) -> bool:
        """`LockFileEx` exclusive, fail-immediately, whole range; False if someone holds it."""

    def unlock(self, handle: Any) -> None:
        """`UnlockFileEx` over the whole range."""

    def pids_using(self, handle: Any) -> list[int]:
        """Every process with a handle on the file (ours included)."""

    def set_delete(self, handle: Any, delete: bool) -> None:
        """Mark the file for POSIX-style deletion through `handle`, or cancel that."""

    def close(self, handle: Any) -> None:
        """`CloseHandle`."""


class Kernel32Remove(Kernel32Files):
    """`Win32Remove` through ctypes; only ever called on Windows."""

    def __init__(self) -> None:
        super().__init__()
        self.ntdll = self.ctypes.WinDLL("ntdll")
        self.kernel32.CreateFileW.restype = self.wintypes.HANDLE

    def open_for_delete(self, path: str) -> Any:
        """See `Win32Remove`."""
        generic_read, delete, read_control = 0x80000000, 0x00010000, 0x00020000
        share_all = 0x1 | 0x2 | 0x4
        open_existing, open_reparse_point = 3, 0x00200000
        handle = self.kernel32.CreateFileW(
            path, generic_read | delete | read_control, share_all, None, open_existing,
            open_reparse_point, None,
        )  # fmt: skip
        if handle in (None, self.wintypes.HANDLE(-1).value):
            raise self._error()
        return handle

    def lock_exclusive(self, handle: Any) -> bool:
        """See `Win32Remove`."""
        overlapped = self.overlapped_type()
        exclusive, fail_immediately = 0x2, 0x1
        if self.kernel32.LockFileEx(
            handle, exclusive | fail_immediately, 0, 0xFFFFFFFF, 0xFFFFFFFF,
            self.ctypes.byref(overlapped),
        ):  # fmt: skip
            return True
        code = self.ctypes.get_last_error()
        if code == ERROR_LOCK_VIOLATION:
            return False
        raise self.ctypes.WinError(code)

    def unlock(self, handle: Any) -> None:
        """See `Win32Remove`."""
        overlapped = self.overlapped_type()
        self.kernel32.UnlockFileEx(handle, 0, 0xFFFFFFFF, 0xFFFFFFFF, self.ctypes.byref(overlapped))

    def pids_using(self, handle: Any) -> list[int]:
        """See `Win32Remove`."""
        ctypes = self.ctypes
        status_block = (ctypes.c_void_p * 2)()
        size = 4096
        while True:
            buffer = ctypes.create_string_buffer(size)
            status = self.ntdll.NtQueryInformationFile(
                handle, ctypes.byref(status_block), buffer, size,
                FILE_PROCESS_IDS_USING_FILE_INFORMATION,
            ) & 0xFFFFFFFF  # fmt: skip
            if status == STATUS_INFO_LENGTH_MISMATCH and size < 1 << 22:
                size *= 4
                continue
            if status:
                raise OSError(f"NtQueryInformationFile failed (NTSTATUS {status:#010x})")
            count = ctypes.c_ulong.from_buffer(buffer, 0).value
            offset = ctypes.sizeof(ctypes.c_void_p)  # the ULONG_PTR array is pointer-aligned
            ids = (ctypes.c_size_t * count).from_buffer(buffer, offset)
            return [int(pid) for pid in ids]

    def set_delete(self, handle: Any, delete: bool) -> None:
        """See `Win32Remove`: POSIX semantics where the file system has them."""
        ctypes = self.ctypes
        flags = FILE_DISPOSITION_FLAG_DELETE | FILE_DISPOSITION_FLAG_POSIX_SEMANTICS
        info = ctypes.c_ulong(flags if delete else 0)
        if self.kernel32.SetFileInformationByHandle(
            handle, FILE_DISPOSITION_INFO_EX, ctypes.byref(info), ctypes.sizeof(info)
        ):
            return
        # FAT and Windows before 10 1607: the classic disposition (the name goes at last close)
        classic = ctypes.c_ubyte(1 if delete else 0)
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
    ) -> None:
        super().__init__(progress)
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

    def _holder(self, pid: int) -> Holder:
        self.processes = self.processes or ProcessTable(platform="win32")
        return self.processes.holder(pid)

    def listing(self, directory: str) -> tuple[str, list[str]]:
        """See `Remover`."""
        return directory, sorted(name for name in self.listdir(directory) if is_lock_name(name))

    def close_dir(self, dir_handle: Any) -> None:
        """See `Remover`: nothing was opened."""

    def _skip(
        self, directory: str, name: str, st: os.stat_result, result: RemoveResult, *,
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

    def acquire(
        self, dir_handle: Any, directory: str, name: str, policy: Policy, result: RemoveResult
    ) -> Target | None:
        """See `Remover`."""
        path = ntpath.join(directory, name)  # Windows paths, also when tested elsewhere
        try:
            st = self.lstat(path)
        except FileNotFoundError:
            return None
        except OSError as err:
            result.errors.append(ScanError(path, err.strerror or str(err)))
            return None
        if getattr(st, "st_file_attributes", 0) & FILE_ATTRIBUTE_REPARSE_POINT:
            self._skip(directory, name, st, result, mode=stat.S_IFLNK | 0o666)
            return None
        if not stat.S_ISREG(st.st_mode) or st.st_nlink > 1 or st.st_size != 0:
            self._skip(directory, name, st, result, lock=LockProbe.NOT_PROBED)
            return None
        young = policy.too_young(self.clock() - st.st_mtime)
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
                       why=err.strerror or str(err))  # fmt: skip
            return None
        keep = False
        try:
            ident = (st.st_dev & 0xFFFFFFFF, st.st_ino & 0xFFFFFFFFFFFFFFFF)
            if files.identity(handle) != ident:
                result.skip(path, LockState.SUSPICIOUS, "replaced while it was being checked")
                return None
            owner, mine = files.owner(handle)
            if not mine and not (policy.all_users and self.is_admin()):
                self._skip(directory, name, st, result, owner=owner, mine=False)
                return None
            if not files.lock_exclusive(handle):
                self._skip(directory, name, st, result, lock=LockProbe.HELD)
                return None
            keep = True
            return Target(directory, name, path, ident[0], ident[1], handle)
        except OSError as err:
            result.errors.append(ScanError(path, err.strerror or str(err)))
            return None
        finally:
            if not keep:
                files.close(handle)

    def users(self, targets: Sequence[Target], result: RemoveResult) -> dict[Target, Use]:
        """See `Remover`: every other process with a handle on the file (waiters have one)."""
        files = self._files()
        me = os.getpid()
        found: dict[Target, Use] = {}
        for target in targets:
            try:
                pids = [pid for pid in files.pids_using(target.handle) if pid != me]
            except OSError:
                found[target] = Use(LockState.OPEN, [Holder(pid=None)])  # unknown: not "nobody"
                continue
            if pids:
                found[target] = Use(LockState.OPEN, [self._holder(pid) for pid in sorted(pids)])
        return found

    def still_named(self, target: Target) -> bool:
        """See `Remover`."""
        try:
            st = self.lstat(target.path)
        except OSError:
            return False
        return (st.st_dev & 0xFFFFFFFF, st.st_ino & 0xFFFFFFFFFFFFFFFF) == (
            target.dev,
            target.ino,
        )

    def unlink(self, target: Target) -> None:
        """See `Remover`: a POSIX-semantics delete through our handle, lock still held."""
        self._files().set_delete(target.handle, delete=True)

    def undo(self, target: Target, use: Use, result: RemoveResult) -> str:
        """See `Remover`: nobody can open a file with a delete pending, so just cancel it."""
        self._files().set_delete(target.handle, delete=False)
        return "the delete was cancelled and the file kept"

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


def _is_admin() -> bool:
    try:
        import ctypes  # noqa: PLC0415

        return bool(ctypes.windll.shell32.IsUserAnAdmin())  # type: ignore[attr-defined]
    except (AttributeError, OSError):
        return False
