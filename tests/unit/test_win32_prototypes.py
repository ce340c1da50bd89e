"""Every Win32 function uvsweep calls through ctypes has its argtypes and restype declared.

Finding 4: `OpenProcessToken(GetCurrentProcess(), ...)` without prototypes passes the pseudo-handle
-1 as a 32-bit int, which libffi zero-extends on Win64: the owner check fails for every file.
"""

from __future__ import annotations

import ast
import ctypes
from pathlib import Path
from typing import Any

import pytest

from uvsweep import win32

APP = Path(__file__).resolve().parents[2] / "app" / "uvsweep"
#: the names the code gives its loaded DLLs
BOUND = {"kernel32": "kernel32", "_k32": "kernel32", "advapi32": "advapi32", "ntdll": "ntdll",
         "shell32": "shell32", "user32": "user32"}  # fmt: skip


def _dll_of(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name) and node.id in BOUND:
        return BOUND[node.id]
    if isinstance(node, ast.Attribute) and node.attr in BOUND:
        return BOUND[node.attr]
    if (  # win32.load("user32").GetSystemMetrics(...)
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "load"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    ):
        return str(node.args[0].value)
    return None


def win32_calls() -> list[tuple[str, str, str]]:
    """(file:line, dll, function) for every Win32 function the app reaches."""
    found = []
    for path in sorted(APP.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            where = f"{path.relative_to(APP)}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Attribute) and node.attr[:1].isupper():
                dll = _dll_of(node.value)
                if dll is not None:
                    found.append((where, dll, node.attr))
            if (  # getattr(kernel32, "GetTempPath2W", None)
                isinstance(node, ast.Call)
                and getattr(node.func, "id", None) == "getattr"
                and len(node.args) >= 2
                and isinstance(node.args[1], ast.Constant)
            ):
                dll = _dll_of(node.args[0])
                if dll is not None:
                    found.append((where, dll, str(node.args[1].value)))
    return found


def test_the_scan_sees_the_calls_we_know_of() -> None:
    names = {(dll, fn) for _where, dll, fn in win32_calls()}
    for known in [("kernel32", "CreateFileW"), ("advapi32", "OpenProcessToken"),
                  ("kernel32", "GetCurrentProcess"), ("ntdll", "NtQueryInformationFile"),
                  ("kernel32", "WaitForMultipleObjects"), ("kernel32", "GetTempPath2W"),
                  ("user32", "GetSystemMetrics"), ("shell32", "IsUserAnAdmin")]:  # fmt: skip
        assert known in names


def test_every_win32_call_has_a_declared_prototype() -> None:
    missing = [
        f"{where}: {dll}.{fn}"
        for where, dll, fn in win32_calls()
        if fn not in win32.PROTOTYPES.get(dll, {})
    ]
    assert missing == []


def test_no_dll_is_loaded_around_the_declarations() -> None:
    """Only `uvsweep.win32` loads Windows DLLs, so nothing reaches an undeclared function."""
    offenders = []
    for path in sorted(APP.rglob("*.py")):
        if path.name == "win32.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in ("WinDLL", "windll", "OleDLL"):
                offenders.append(f"{path.relative_to(APP)}:{node.lineno}")
    assert offenders == []


class FakeFunction:
    argtypes: Any = None
    restype: Any = "unset"


class FakeDll:
    def __init__(self, names: list[str]) -> None:
        for name in names:
            setattr(self, name, FakeFunction())


@pytest.mark.parametrize("dll", sorted(win32.PROTOTYPES))
def test_library_declares_every_function_and_refuses_others(dll: str) -> None:
    names = list(win32.PROTOTYPES[dll])
    fake = FakeDll(names)
    lib = win32.Library(fake, dll, win32.PROTOTYPES[dll])
    for name in names:
        function = getattr(lib, name)
        assert function.argtypes is not None and function.restype != "unset", name
        for argtype in function.argtypes:
            assert isinstance(argtype, type) and issubclass(
                argtype, ctypes._SimpleCData | ctypes._Pointer
            ), (name, argtype)  # type: ignore[attr-defined]
    with pytest.raises(AttributeError, match="no declared prototype"):
        _ = lib.ReadProcessMemory


def test_handles_are_pointer_sized_in_and_out() -> None:
    """The finding itself: GetCurrentProcess's -1 must reach OpenProcessToken as 64 bits."""
    kernel32, advapi32 = win32.PROTOTYPES["kernel32"], win32.PROTOTYPES["advapi32"]
    pointer = ctypes.sizeof(ctypes.c_void_p)
    for name in ("GetCurrentProcess", "CreateFileW", "OpenProcess", "CreateEventW"):
        assert ctypes.sizeof(kernel32[name][0]) == pointer, name
    assert ctypes.sizeof(advapi32["OpenProcessToken"][1][0]) == pointer
    # what the declared types make of the pseudo-handle: all 64 bits set, not 0x00000000FFFFFFFF
    restype = kernel32["GetCurrentProcess"][0]
    assert restype(-1).value == (1 << (8 * pointer)) - 1
    assert ctypes.c_int(-1).value & 0xFFFFFFFF == 0xFFFFFFFF  # what an undeclared int carries


def test_a_version_without_a_function_leaves_it_out() -> None:
    fake = FakeDll(["GetTempPathW"])
    lib = win32.Library(fake, "kernel32", win32.PROTOTYPES["kernel32"])
    assert getattr(lib, "GetTempPath2W", None) is None
    assert lib.GetTempPathW.argtypes is not None
