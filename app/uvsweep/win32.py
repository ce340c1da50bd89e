"""Win32 through ctypes, with every function's prototype declared before it can be called.

Without `argtypes` and `restype`, ctypes passes a Python int as a 32-bit C int and reads every
result as one: a handle comes back truncated, and the pseudo-handle -1 of `GetCurrentProcess()`
goes to the next call zero-extended on 64-bit Windows. So each DLL is reached only through
`load()`, which declares every function in `PROTOTYPES` and refuses any other name.

This module imports on every OS (`ctypes.wintypes` does); only `load()` needs Windows.
"""

from __future__ import annotations

import ctypes
from ctypes import wintypes
from typing import Any

_H = wintypes.HANDLE  # pointer-sized
_P = ctypes.c_void_p
_DW = wintypes.DWORD
_BOOL = wintypes.BOOL
_PDW = ctypes.POINTER(wintypes.DWORD)
_PH = ctypes.POINTER(wintypes.HANDLE)
_PP = ctypes.POINTER(ctypes.c_void_p)
_INT = ctypes.c_int

#: dll -> function -> (restype, argtypes)
PROTOTYPES: dict[str, dict[str, tuple[Any, tuple[Any, ...]]]] = {
    "kernel32": {
        "CreateFileW": (_H, (wintypes.LPCWSTR, _DW, _DW, _P, _DW, _DW, _H)),
        "GetFileInformationByHandle": (_BOOL, (_H, _P)),
        "LockFileEx": (_BOOL, (_H, _DW, _DW, _DW, _DW, _P)),
        "UnlockFileEx": (_BOOL, (_H, _DW, _DW, _DW, _P)),
        "SetFileInformationByHandle": (_BOOL, (_H, _INT, _P, _DW)),
        "GetCurrentProcess": (_H, ()),
        "CloseHandle": (_BOOL, (_H,)),
        "LocalFree": (_P, (_P,)),
        "OpenProcess": (_H, (_DW, _BOOL, _DW)),
        "CreateEventW": (_H, (_P, _BOOL, _BOOL, wintypes.LPCWSTR)),
        "SetEvent": (_BOOL, (_H,)),
        "WaitForMultipleObjects": (_DW, (_DW, _PH, _BOOL, _DW)),
        "GetTempPath2W": (_DW, (_DW, wintypes.LPWSTR)),  # Windows 11 and Server 2022 only
        "GetTempPathW": (_DW, (_DW, wintypes.LPWSTR)),
    },
    "advapi32": {
        "OpenProcessToken": (_BOOL, (_H, _DW, _PH)),
        "GetTokenInformation": (_BOOL, (_H, _INT, _P, _DW, _PDW)),
        "GetSecurityInfo": (_DW, (_H, _INT, _DW, _PP, _PP, _PP, _PP, _PP)),
        "EqualSid": (_BOOL, (_P, _P)),
        "LookupAccountSidW": (
            _BOOL,
            (wintypes.LPCWSTR, _P, wintypes.LPWSTR, _PDW, wintypes.LPWSTR, _PDW, _PDW),
        ),
    },
    "ntdll": {
        "NtQueryInformationFile": (wintypes.LONG, (_H, _P, _P, wintypes.ULONG, _INT)),
    },
    "shell32": {
        "IsUserAnAdmin": (_BOOL, ()),
    },
    "user32": {
        "GetSystemMetrics": (_INT, (_INT,)),
    },
}


class Library:
    """A loaded DLL's declared functions; any other name is an AttributeError, on every OS.

    `dll` is what ctypes loaded (`WinDLL`, `CDLL`, or a test's fake); `prototypes` maps each
    function to (restype, argtypes).
    """

    def __init__(self, dll: Any, name: str, prototypes: dict[str, tuple[Any, tuple[Any, ...]]]):
        self._name = name
        for function, (restype, argtypes) in prototypes.items():
            found = getattr(dll, function, None)
            if found is None:
                continue  # not in this OS version (GetTempPath2W): callers ask with getattr
            found.restype = restype
            found.argtypes = argtypes
            setattr(self, function, found)

    def __getattr__(self, function: str) -> Any:
        raise AttributeError(f"{self._name}.{function} has no declared prototype")


_loaded: dict[str, Library] = {}


def load(name: str) -> Library:
    """The DLL `name` with every function of `PROTOTYPES[name]` declared (Windows only)."""
    if name not in _loaded:
        dll = ctypes.WinDLL(name, use_last_error=True)  # type: ignore[attr-defined]
        _loaded[name] = Library(dll, name, PROTOTYPES[name])
    return _loaded[name]


def last_error() -> OSError:
    """The calling thread's last Win32 error as an OSError (Windows only)."""
    return ctypes.WinError(ctypes.get_last_error())  # type: ignore[attr-defined,no-any-return]
