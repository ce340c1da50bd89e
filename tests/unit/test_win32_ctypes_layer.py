"""The ctypes layer of the Windows probe and remover, on Linux, against DLLs that act as Windows.

Each fake function takes its arguments through the declared `argtypes` exactly as ctypes would
(`argtype.from_param(arg)`: a wrong type fails here as it would there), reads and writes the
caller's structures and buffers byte for byte, and answers from the Windows file-call model.
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

import pytest

from tests.ctypes_strict import strict_library
from tests.windows_model import ME, WindowsModel
from uvsweep import win32
from uvsweep.probe.windows import Kernel32Files
from uvsweep.remove.windows import Kernel32Remove

PSEUDO_HANDLE = ctypes.c_void_p(-1).value  # GetCurrentProcess(), as the declared restype gives it
INVALID_HANDLE_VALUE = ctypes.c_void_p(-1).value
MY_SID, BOBS_SID = 0x5000, 0x6000


def target(arg: Any) -> Any:
    """The object a `byref()` argument points at."""
    return arg._obj


class Kernel:
    """The Win32 side: the file model, the last error, and which token is ours."""

    def __init__(self, fs: WindowsModel) -> None:
        self.fs = fs
        self.error = 0
        self.tokens: set[int] = set()
        self.token_buffers: list[Any] = []
        self.ranges: list[tuple[int, int]] = []  # every (offset, length) LockFileEx was given

    def fail(self, code: int, value: Any = 0) -> Any:
        self.error = code
        return value

    # kernel32
    def CreateFileW(self, path: str, access: int, share: int, sa: Any, disposition: int,
                    flags: int, template: Any) -> Any:  # fmt: skip
        assert flags & 0x00200000, "always FILE_FLAG_OPEN_REPARSE_POINT"
        try:
            return self.fs.create_file(path, ME, access, share, create=disposition == 4)
        except FileNotFoundError:
            return self.fail(2, INVALID_HANDLE_VALUE)
        except PermissionError as err:
            return self.fail(err.winerror, INVALID_HANDLE_VALUE)  # type: ignore[attr-defined]

    def GetFileInformationByHandle(self, handle: int, info: Any) -> int:
        f = self.fs.handles[handle].file
        fields = target(info)
        fields.serial, fields.attributes, fields.links = 7, f.attrs or 0x80, 1
        fields.index_high, fields.index_low = f.index >> 32, f.index & 0xFFFFFFFF
        return 1

    def LockFileEx(self, handle: int, flags: int, reserved: int, low: int, high: int,
                   overlapped: Any) -> int:  # fmt: skip
        assert flags & 0x1, "never a blocking lock"
        assert reserved == 0
        at = target(overlapped)
        offset, length = (at.offset_high << 32) | at.offset, (high << 32) | low
        self.ranges.append((offset, length))
        if (offset, length) == (0, (1 << 64) - 1):  # the whole range, as uv locks it
            return 1 if self.fs.try_lock(handle, exclusive=bool(flags & 0x2)) else self.fail(33)
        assert flags & 0x2, "a byte is only ever locked exclusively"
        return 1 if self.fs.lock_range(handle, offset, length) else self.fail(33)

    def UnlockFileEx(self, handle: int, reserved: int, low: int, high: int, overlapped: Any) -> int:
        assert reserved == 0
        at = target(overlapped)
        offset, length = (at.offset_high << 32) | at.offset, (high << 32) | low
        if (offset, length) == (0, (1 << 64) - 1):
            self.fs.handles[handle].lock = None
            return 1
        try:
            self.fs.unlock_range(handle, offset, length)
        except PermissionError as err:
            return self.fail(err.winerror)  # type: ignore[attr-defined]
        return 1

    def SetFileInformationByHandle(self, handle: int, kind: int, info: Any, size: int) -> int:
        data = target(info)
        if kind == 22:  # FileRenameInfoEx
            assert size == ctypes.sizeof(data)
            assert data.flags == 0x2 and data.root is None  # POSIX semantics, no replace
            assert data.length == 2 * len(data.name)
            try:
                self.fs.rename(handle, data.name)
            except FileExistsError:
                return self.fail(183)
            return 1
        if kind == 21:  # FileDispositionInfoEx
            assert data.value == 0x1 | 0x2  # DELETE | POSIX_SEMANTICS
            self.fs.set_delete(handle)
            return 1
        return self.fail(87)

    def GetCurrentProcess(self) -> int:
        return PSEUDO_HANDLE  # type: ignore[return-value]

    def CloseHandle(self, handle: int) -> int:
        if handle in self.tokens:
            self.tokens.discard(handle)
        else:
            self.fs.close_handle(handle)
        return 1

    def LocalFree(self, memory: Any) -> None:
        return None

    # advapi32
    def OpenProcessToken(self, process: Any, access: int, token: Any) -> int:
        if process != PSEUDO_HANDLE:  # a truncated pseudo-handle names no process
            return self.fail(6)
        target(token).value = 0x7777
        self.tokens.add(0x7777)
        return 1

    def GetTokenInformation(self, token: Any, kind: int, buffer: Any, size: int,
                            needed: Any) -> int:  # fmt: skip
        assert kind == 1  # TokenUser
        if buffer is None:
            target(needed).value = 16
            return self.fail(122)  # ERROR_INSUFFICIENT_BUFFER
        ctypes.c_void_p.from_buffer(buffer).value = MY_SID
        return 1

    def GetSecurityInfo(self, handle: int, kind: int, what: int, owner: Any, group: Any,
                        dacl: Any, sacl: Any, descriptor: Any) -> int:  # fmt: skip
        assert (kind, what) == (1, 1)  # SE_FILE_OBJECT, OWNER_SECURITY_INFORMATION
        target(owner).value = MY_SID if self.fs.handles[handle].file.mine else BOBS_SID
        target(descriptor).value = 0x9999
        return 0

    def EqualSid(self, a: int, b: int) -> int:
        return int(a == b)

    def LookupAccountSidW(self, system: Any, sid: Any, name: Any, name_len: Any, domain: Any,
                          domain_len: Any, use: Any) -> int:  # fmt: skip
        name.value = "me" if sid == MY_SID else "bob"
        domain.value = "HOST"
        return 1

    # ntdll
    def NtQueryInformationFile(self, handle: int, status: Any, buffer: Any, size: int,
                               kind: int) -> int:  # fmt: skip
        assert kind == 47  # FileProcessIdsUsingFileInformation
        pids = self.fs.pids_using(handle)
        offset = ctypes.sizeof(ctypes.c_void_p)
        if offset + len(pids) * ctypes.sizeof(ctypes.c_size_t) > size:
            return 0xC0000004 - (1 << 32)  # STATUS_INFO_LENGTH_MISMATCH, as a LONG
        ctypes.c_ulong.from_buffer(buffer, 0).value = len(pids)
        (ctypes.c_size_t * len(pids)).from_buffer(buffer, offset)[:] = pids
        return 0


def libraries(kernel: Kernel) -> Callable[[str], Any]:
    return lambda name: strict_library(kernel, name, win32.PROTOTYPES[name])


@pytest.fixture
def kernel(monkeypatch: pytest.MonkeyPatch) -> Kernel:
    fs = WindowsModel()
    k = Kernel(fs)
    monkeypatch.setattr(ctypes, "get_last_error", lambda: k.error, raising=False)
    monkeypatch.setattr(ctypes, "WinError", lambda code: OSError(code, f"WinError {code}"),
                        raising=False)  # fmt: skip
    return k


def test_the_probes_calls(kernel: Kernel) -> None:
    fs = kernel.fs
    fs.add("uv-00000000000000aa.lock")
    fs.add("uv-00000000000000bb.lock", mine=False)
    files = Kernel32Files(libraries(kernel))
    handle = files.open(fs.path("uv-00000000000000aa.lock"))
    assert files.identity(handle) == (7, 1)
    assert files.owner(handle) == ("HOST\\me", True)  # the pseudo-handle reached OpenProcessToken
    assert files.try_lock_shared(handle)
    uv = fs.uv_open("uv-00000000000000aa.lock", pid=4242)
    assert fs.try_lock(uv)
    assert not files.try_lock_shared(handle)
    assert sorted(files.pids_using(handle)) == sorted([ME, 4242])
    files.close(handle)
    other = files.open(fs.path("uv-00000000000000bb.lock"))
    assert files.owner(other) == ("HOST\\bob", False)
    files.close(other)
    with pytest.raises(FileNotFoundError):
        files.open(fs.path("uv-00000000000000cc.lock"))


def test_the_removers_calls(kernel: Kernel) -> None:
    fs = kernel.fs
    fs.add("uv-00000000000000aa.lock")
    files = Kernel32Remove(libraries(kernel))
    handle = files.open_for_delete(fs.path("uv-00000000000000aa.lock"))
    assert files.lock_exclusive(handle)
    files.rename(handle, "uv-00000000000000aa.lock.0123.uvsweep-removed")
    assert list(fs.names) == [fs.path("uv-00000000000000aa.lock.0123.uvsweep-removed")]
    files.set_delete(handle)
    new = files.open_generation(fs.path("uv-00000000000000aa.lock"))  # the name is free
    assert files.lock_exclusive(new)
    files.unlock(handle)
    files.close(handle)
    assert list(fs.names) == [fs.path("uv-00000000000000aa.lock")]  # the renamed file went
    files.unlock(new)
    files.close(new)
    assert fs.handles == {}


def test_the_handoffs_byte_ranges(kernel: Kernel) -> None:
    """`lock_range`/`unlock_range` pass the offset in the OVERLAPPED and the length in two
    DWORDs; a byte keeps uv's whole-range lock out; an unlock of another range fails."""
    fs = kernel.fs
    fs.add("uv-00000000000000aa.lock")
    files = Kernel32Remove(libraries(kernel))
    new = files.open_generation(fs.path("uv-00000000000000aa.lock"))
    assert files.lock_range(new, 0, 1)
    uv = fs.uv_open("uv-00000000000000aa.lock", pid=4242)
    assert not fs.try_lock(uv)
    assert not files.lock_range(new, 0, 1)  # an exclusive request meets its own byte
    far = (2 << 32) | 5
    assert files.lock_range(new, far, (1 << 32) | 1)
    assert kernel.ranges[-1] == (far, (1 << 32) | 1)
    with pytest.raises(OSError) as refused:
        files.unlock_range(new, 0, 2)  # not the range that was locked
    assert refused.value.errno == 158  # ERROR_NOT_LOCKED, through this test's WinError
    files.unlock_range(new, far, (1 << 32) | 1)
    files.unlock_range(new, 0, 1)
    assert fs.try_lock(uv)  # nothing of ours is left
    files.close(new)


def test_many_users_need_a_bigger_buffer(kernel: Kernel) -> None:
    fs = kernel.fs
    fs.add("uv-00000000000000aa.lock")
    others = [pid for pid in range(1000, 1701) if pid != ME][:700]  # never our own pid
    for pid in others:
        fs.uv_open("uv-00000000000000aa.lock", pid=pid)
    files = Kernel32Files(libraries(kernel))
    handle = files.open(fs.path("uv-00000000000000aa.lock"))
    assert files.pids_using(handle) == sorted([ME, *others])
