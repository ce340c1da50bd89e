"""DLL functions as ctypes calls them, for fakes: declared prototypes or nothing."""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import Any

from uvsweep import win32


class StrictFunction:
    """A DLL function as ctypes calls it: every argument through its declared argtype."""

    def __init__(self, name: str, impl: Callable[..., Any]) -> None:
        self.name, self.impl = name, impl
        self.argtypes: Any = None
        self.restype: Any = None

    def __call__(self, *args: Any) -> Any:
        assert self.argtypes is not None, f"{self.name} called without argtypes"
        assert len(args) == len(self.argtypes), f"{self.name}: {len(args)} arguments"
        passed = []
        for argtype, arg in zip(self.argtypes, args, strict=True):
            argtype.from_param(arg)  # raises as ctypes would on a wrong type
            # what the C function receives: a number for a simple value, else the pointer
            value = arg.value if isinstance(arg, ctypes._SimpleCData) else arg
            if isinstance(value, int) and argtype in (ctypes.c_void_p,):
                value &= (1 << (8 * ctypes.sizeof(ctypes.c_void_p))) - 1  # pointer-sized
            passed.append(value)
        result = self.impl(*passed)
        if isinstance(self.restype, type) and issubclass(self.restype, ctypes._SimpleCData):
            return self.restype(result if result is not None else 0).value  # NULL is None
        return result


def strict_library(impls: object, name: str, prototypes: dict[str, Any]) -> Any:
    """`win32.Library` over `impls`' methods, each a `StrictFunction`."""
    dll = type("Dll", (), {})()
    for function in prototypes:
        impl = getattr(impls, function, None)
        if impl is not None:
            setattr(dll, function, StrictFunction(function, impl))
    return win32.Library(dll, name, prototypes)
