"""Windows: a `LockFileEx` probe through one shared-everything handle, plus psutil's open files.

The Win32 calls live in `Kernel32Files` (ctypes, imported inside its methods) so this module
imports on every OS and `WindowsBackend`'s logic is tested anywhere with a fake `Win32Files`.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from typing import Any, Protocol

from uvsweep.model import ScanError
from uvsweep.naming import is_lock_name
from uvsweep.probe import Backend, LockProbe, Observation, ProbeResult, classify
from uvsweep.probe.darwin import OpenFilesLister, psutil_open_files
from uvsweep.processes import ProcessTable

FILE_ATTRIBUTE_REPARSE_POINT = 0x400
ERROR_LOCK_VIOLATION = 33
ERROR_SHARING_VIOLATION = 32


class Win32Files(Protocol):
    """The handful of Win32 file calls the probe needs."""

    def open(self, path: str) -> Any:
        """A handle with read, read-control and every share mode; OSError on failure."""

    def identity(self, handle: Any) -> tuple[int, int]:
        """(volume serial, file index): what `os.lstat` reports as st_dev and st_ino."""

    def try_lock_shared(self, handle: Any) -> bool:
        """`LockFileEx` shared, fail-immediately, whole range; True if we got it (then unlocked)."""

    def owner(self, handle: Any) -> tuple[str, bool]:
        """(owner's account name, whether it is the current user)."""

    def close(self, handle: Any) -> None:
        """`CloseHandle`."""


class Kernel32Files:
    """`Win32Files` through ctypes; only ever called on Windows."""

    def __init__(self) -> None:
        import ctypes  # noqa: PLC0415 - Windows only
        from ctypes import wintypes  # noqa: PLC0415

        self.ctypes = ctypes
        self.wintypes = wintypes
        self.kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)  # type: ignore[attr-defined]
        self.advapi32 = ctypes.WinDLL("advapi32", use_last_error=True)  # type: ignore[attr-defined]
        self.kernel32.CreateFileW.restype = wintypes.HANDLE
        self._me: Any = None
        dword = wintypes.DWORD
        times = [(f"time{i}", dword) for i in range(6)]
        info_fields = [("attributes", dword), *times, ("serial", dword), ("size_high", dword),
                       ("size_low", dword), ("links", dword), ("index_high", dword),
                       ("index_low", dword)]  # fmt: skip
        self.info_type: Any = type("FileInfo", (ctypes.Structure,), {"_fields_": info_fields})
        overlapped_fields = [("internal", ctypes.c_void_p), ("internal_high", ctypes.c_void_p),
                             ("offset", dword), ("offset_high", dword),
                             ("event", wintypes.HANDLE)]  # fmt: skip
        self.overlapped_type: Any = type(
            "Overlapped", (ctypes.Structure,), {"_fields_": overlapped_fields}
        )

    def _error(self) -> OSError:
        return self.ctypes.WinError(self.ctypes.get_last_error())  # type: ignore[attr-defined,no-any-return]

    def open(self, path: str) -> Any:
        """See `Win32Files`."""
        generic_read, read_control = 0x80000000, 0x00020000
        share_all = 0x1 | 0x2 | 0x4
        open_existing, open_reparse_point = 3, 0x00200000
        handle = self.kernel32.CreateFileW(
            path,
            generic_read | read_control,
            share_all,
            None,
            open_existing,
            open_reparse_point,
            None,
        )
        if handle in (None, self.wintypes.HANDLE(-1).value):
            raise self._error()
        return handle

    def identity(self, handle: Any) -> tuple[int, int]:
        """See `Win32Files`."""
        info = self.info_type()
        if not self.kernel32.GetFileInformationByHandle(handle, self.ctypes.byref(info)):
            raise self._error()
        return info.serial, (info.index_high << 32) | info.index_low

    def try_lock_shared(self, handle: Any) -> bool:
        """See `Win32Files`."""
        overlapped = self.overlapped_type()
        fail_immediately = 0x1
        if self.kernel32.LockFileEx(
            handle, fail_immediately, 0, 0xFFFFFFFF, 0xFFFFFFFF, self.ctypes.byref(overlapped)
        ):
            self.kernel32.UnlockFileEx(
                handle, 0, 0xFFFFFFFF, 0xFFFFFFFF, self.ctypes.byref(overlapped)
            )
            return True
        code = self.ctypes.get_last_error()  # type: ignore[attr-defined]
        if code == ERROR_LOCK_VIOLATION:
            return False
        raise self.ctypes.WinError(code)  # type: ignore[attr-defined]

    def _current_sid(self) -> Any:
        if self._me is None:
            token = self.wintypes.HANDLE()
            process = self.kernel32.GetCurrentProcess()
            if not self.advapi32.OpenProcessToken(process, 0x8, self.ctypes.byref(token)):
                raise self._error()
            size = self.wintypes.DWORD(0)
            self.advapi32.GetTokenInformation(token, 1, None, 0, self.ctypes.byref(size))
            self._token_buf = self.ctypes.create_string_buffer(size.value)
            ok = self.advapi32.GetTokenInformation(
                token, 1, self._token_buf, size, self.ctypes.byref(size)
            )
            self.kernel32.CloseHandle(token)
            if not ok:
                raise self._error()
            self._me = self.ctypes.c_void_p.from_buffer(self._token_buf).value
        return self._me

    def owner(self, handle: Any) -> tuple[str, bool]:
        """See `Win32Files`."""
        sid, descriptor = self.ctypes.c_void_p(), self.ctypes.c_void_p()
        se_file_object, owner_information = 1, 1
        code = self.advapi32.GetSecurityInfo(
            handle, se_file_object, owner_information, self.ctypes.byref(sid),
            None, None, None, self.ctypes.byref(descriptor),
        )  # fmt: skip
        if code:
            raise self.ctypes.WinError(code)  # type: ignore[attr-defined]
        try:
            mine = bool(self.advapi32.EqualSid(sid, self.ctypes.c_void_p(self._current_sid())))
            name = self.ctypes.create_unicode_buffer(256)
            domain = self.ctypes.create_unicode_buffer(256)
            name_len, domain_len = self.wintypes.DWORD(256), self.wintypes.DWORD(256)
            use = self.wintypes.DWORD()
            looked_up = self.advapi32.LookupAccountSidW(
                None, sid, name, self.ctypes.byref(name_len), domain,
                self.ctypes.byref(domain_len), self.ctypes.byref(use),
            )  # fmt: skip
            label = f"{domain.value}\\{name.value}" if looked_up else "unknown"
            return label, mine
        finally:
            self.kernel32.LocalFree(descriptor)

    def close(self, handle: Any) -> None:
        """See `Win32Files`."""
        self.kernel32.CloseHandle(handle)


class WindowsBackend(Backend):
    """The Windows backend. Holders and waiters are never visible on Windows: they are unknown."""

    def __init__(
        self,
        files: Win32Files | None = None,
        open_files: OpenFilesLister = psutil_open_files,
        processes: ProcessTable | None = None,
        lstat: Any = os.lstat,
        listdir: Any = os.listdir,
    ) -> None:
        self.files = files
        self.open_files = open_files
        self.processes = processes
        self.lstat = lstat
        self.listdir = listdir

    def _files(self) -> Win32Files:
        if self.files is None:
            self.files = Kernel32Files()
        return self.files

    def observe(self, directory: str, name: str) -> Observation | None:
        """lstat one entry and probe its lock through one handle. None if it vanished."""
        path = os.path.join(directory, name)
        try:
            st = self.lstat(path)
        except FileNotFoundError:
            return None
        mode = st.st_mode
        if getattr(st, "st_file_attributes", 0) & FILE_ATTRIBUTE_REPARSE_POINT:
            mode = stat.S_IFLNK | 0o666  # symlink or junction: never opened
        obs = Observation(
            directory=directory, name=name, mode=mode, size=st.st_size, nlink=st.st_nlink,
            mtime=st.st_mtime, dev=st.st_dev, ino=st.st_ino, uid=0, owner="unknown", mine=False,
        )  # fmt: skip
        if not stat.S_ISREG(mode):
            return obs
        files = self._files()
        try:
            handle = files.open(path)
        except FileNotFoundError:
            return None
        except OSError as err:
            obs.lock, obs.unreadable_reason = LockProbe.UNREADABLE, err.strerror or str(err)
            return obs
        try:
            serial, index = files.identity(handle)
            if (serial, index) != (st.st_dev & 0xFFFFFFFF, st.st_ino & 0xFFFFFFFFFFFFFFFF):
                obs.lock, obs.unreadable_reason = LockProbe.UNREADABLE, "replaced while checked"
                return obs
            obs.owner, obs.mine = files.owner(handle)
            obs.lock = LockProbe.FREE if files.try_lock_shared(handle) else LockProbe.HELD
        except OSError as err:
            obs.lock, obs.unreadable_reason = LockProbe.UNREADABLE, err.strerror or str(err)
        finally:
            files.close(handle)
        return obs

    def probe(self, dirs: Sequence[str]) -> ProbeResult:
        """See `Backend`."""
        result = ProbeResult(
            notes=["Windows does not show lock holders or waiters: they are unknown"]
        )
        observed: list[Observation] = []
        for directory in dirs:
            try:
                names = [n for n in self.listdir(directory) if is_lock_name(n)]
            except OSError as err:
                result.errors.append(ScanError(directory, err.strerror or str(err)))
                continue
            for name in names:
                try:
                    obs = self.observe(directory, name)
                except OSError as err:
                    result.errors.append(ScanError(os.path.join(directory, name), str(err)))
                    continue
                if obs is not None:
                    observed.append(obs)
        wanted = {
            os.path.normcase(obs.path): obs
            for obs in observed
            if stat.S_ISREG(obs.mode) and obs.lock is LockProbe.FREE
        }
        if wanted:
            table = self.processes = self.processes or ProcessTable(platform="win32")
            for pid, paths in self.open_files():
                if pid == os.getpid():
                    continue
                if paths is None:
                    result.hidden_processes += 1
                    continue
                for path in paths:
                    hit = wanted.get(os.path.normcase(path))
                    if hit is not None:
                        hit.openers.append(table.holder(pid))
        result.files = [classify(obs) for obs in observed]
        return result
