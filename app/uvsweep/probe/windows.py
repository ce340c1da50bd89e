"""Windows: a `LockFileEx` probe and a who-has-it-open query through one shared-everything handle.

The Win32 calls live in `Kernel32Files` (ctypes, imported inside its methods) so this module
imports on every OS and `WindowsBackend`'s logic is tested anywhere with a fake `Win32Files`.
"""
# ruff: noqa: PLC0415 - imports inside functions: only the path that needs a module pays for it

from __future__ import annotations

import ntpath
import os
import stat
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from uvsweep import system, win32
from uvsweep.model import LockUser, ScanError
from uvsweep.naming import is_lock_name
from uvsweep.probe import Backend, LockProbe, Observation, ProbeResult, classify
from uvsweep.processes import ProcessTable

FILE_ATTRIBUTE_REPARSE_POINT = 0x400
ERROR_LOCK_VIOLATION = 33
ERROR_SHARING_VIOLATION = 32
GENERIC_READ, GENERIC_WRITE, DELETE, READ_CONTROL = 0x80000000, 0x40000000, 0x00010000, 0x00020000
OPEN_EXISTING, OPEN_ALWAYS = 3, 4
STATUS_INFO_LENGTH_MISMATCH = 0xC0000004
FILE_PROCESS_IDS_USING_FILE_INFORMATION = 47


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

    def pids_using(self, handle: Any) -> list[int]:
        """Every process with a handle on the file, ours included (waiters have one too)."""

    def close(self, handle: Any) -> None:
        """`CloseHandle`."""


class Kernel32Files:
    """`Win32Files` through ctypes (every prototype declared, see `uvsweep.win32`); Windows only.

    `libraries` loads a DLL by name: the seam tests use to run this class against a fake.
    """

    def __init__(self, libraries: Callable[[str], Any] = win32.load) -> None:
        import ctypes
        from ctypes import wintypes

        self.ctypes = ctypes
        self.wintypes = wintypes
        self.kernel32 = libraries("kernel32")
        self.advapi32 = libraries("advapi32")
        self.ntdll = libraries("ntdll")
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
        return win32.last_error()

    def _create(self, path: str, access: int, disposition: int) -> Any:
        share_all = 0x1 | 0x2 | 0x4  # read, write, delete: what uv's own handles share
        open_reparse_point = 0x00200000  # never follow a symlink or junction
        handle = self.kernel32.CreateFileW(
            path, access, share_all, None, disposition, open_reparse_point, None
        )
        if handle in (None, self.ctypes.c_void_p(-1).value):  # INVALID_HANDLE_VALUE
            raise self._error()
        return handle

    def open(self, path: str) -> Any:
        """See `Win32Files`."""
        return self._create(path, GENERIC_READ | READ_CONTROL, OPEN_EXISTING)

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

    def pids_using(self, handle: Any) -> list[int]:
        """See `Win32Files`: `NtQueryInformationFile(FileProcessIdsUsingFileInformation)`."""
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
    """The Windows backend. Holders and waiters are never told apart from openers on Windows.

    Who uses a file comes from that file's own handle (`FileProcessIdsUsingFileInformation`):
    one query per free lock file, exact, and blind to path spellings (8.3 names, long-path
    prefixes), instead of a walk over every process's open files.
    """

    def __init__(
        self,
        files: Win32Files | None = None,
        processes: ProcessTable | None = None,
        lstat: Any = os.lstat,
        listdir: Any = os.listdir,
    ) -> None:
        self.files = files
        self.processes = processes
        self.lstat = lstat
        self.listdir = listdir

    def _files(self) -> Win32Files:
        if self.files is None:
            self.files = Kernel32Files()
        return self.files

    def _holder(self, pid: int) -> LockUser:
        self.processes = self.processes or ProcessTable(platform="win32")
        return self.processes.holder(pid)

    def observe(self, directory: str, name: str) -> Observation | None:
        """lstat one entry, probe its lock and ask who has it open, through one handle.

        None if it vanished.
        """
        path = ntpath.join(directory, name)
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
            obs.lock, obs.unreadable_reason = LockProbe.UNREADABLE, system.reason(err)
            return obs
        try:
            serial, index = files.identity(handle)
            if (serial, index) != (st.st_dev & 0xFFFFFFFF, st.st_ino & 0xFFFFFFFFFFFFFFFF):
                obs.lock, obs.unreadable_reason = LockProbe.UNREADABLE, "replaced while checked"
                return obs
            obs.owner, obs.mine = files.owner(handle)
            obs.lock = LockProbe.FREE if files.try_lock_shared(handle) else LockProbe.HELD
            # held or not: who has it open (a held file's openers name a uvsweep keeper that
            # holds it, see `remove.winkeeper`; Windows names no lock holder)
            self._openers(files, handle, obs)
        except OSError as err:
            obs.lock, obs.unreadable_reason = LockProbe.UNREADABLE, system.reason(err)
        finally:
            files.close(handle)
        return obs

    def _openers(self, files: Win32Files, handle: Any, obs: Observation) -> None:
        try:
            pids = files.pids_using(handle)
        except OSError:
            obs.openers.append(LockUser(pid=None))  # unknown is not "nobody"
            return
        me = os.getpid()
        obs.openers.extend(self._holder(pid) for pid in sorted(set(pids)) if pid != me)

    def probe(self, dirs: Sequence[str]) -> ProbeResult:
        """See `Backend`."""
        result = ProbeResult(
            notes=["Windows does not show lock holders or waiters: they are unknown"]
        )
        for directory in dirs:
            try:
                names = [n for n in self.listdir(directory) if is_lock_name(n)]
            except OSError as err:
                result.errors.append(ScanError(directory, system.reason(err)))
                continue
            for name in names:
                try:
                    obs = self.observe(directory, name)
                except OSError as err:
                    result.errors.append(ScanError(ntpath.join(directory, name), str(err)))
                    continue
                if obs is not None:
                    result.files.append(classify(obs))
        return result
