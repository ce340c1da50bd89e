"""Import asyncio and hashlib without OpenSSL, for the long-running tray (the SNI backend).

The tray speaks D-Bus over a local socket: it never uses TLS, and hashes only where dbus-fast
keys its introspection cache with `hashlib.sha256`. Yet `import asyncio` imports `ssl`, and
`import hashlib` loads `_hashlib`; both map OpenSSL's libcrypto (and `ssl` libssl too), about
5 MB of the idle tray's resident memory on Linux, for nothing it does.

`without_openssl()` makes `ssl`, `_ssl` and `_hashlib` unimportable while the modules inside it
import, so asyncio records that it has no TLS (as it does on a Python built without it) and
hashlib uses CPython's own SHA-2 code, which gives the same digests. Afterwards the three can be
imported again as usual, by anything that does need TLS. It changes nothing for a module
already imported (the process has paid for OpenSSL then), and leaves `_hashlib` alone when this
Python has no SHA-256 of its own (some distributions build it so). Use it before other threads
start: one importing `ssl` meanwhile would be told there is none.
"""
# ruff: noqa: PLC0415 - imports inside functions: only the path that needs a module pays for it

from __future__ import annotations

import contextlib
import importlib.util
import sys
from collections.abc import Iterator

from uvsweep import system


def _builtin_sha256() -> bool:
    """Whether hashlib has SHA-256 without OpenSSL (`_sha256`, or `_sha2` from Python 3.12)."""
    return any(importlib.util.find_spec(name) is not None for name in ("_sha2", "_sha256"))


@contextlib.contextmanager
def without_openssl() -> Iterator[list[str]]:
    """Import asyncio and hashlib with `ssl`, `_ssl` and `_hashlib` unimportable; yields the
    names it kept out (none when asyncio and hashlib were imported already)."""
    blocked = []
    if not {"asyncio", "ssl", "_ssl"} & sys.modules.keys():
        blocked += ["ssl", "_ssl"]
    if not {"hashlib", "_hashlib"} & sys.modules.keys() and _builtin_sha256():
        blocked.append("_hashlib")
    for name in blocked:
        sys.modules[name] = None  # type: ignore[assignment]  # the import system's "not there"
    try:
        import asyncio  # noqa: F401
        import hashlib  # noqa: F401

        yield blocked
    finally:
        for name in blocked:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]


#: glibc's mallopt() parameter for the most malloc arenas (malloc.h).
M_ARENA_MAX = -8


def one_malloc_arena() -> bool:
    """glibc: every thread allocates from the one main arena; whether that was set.

    By default glibc gives each thread that allocates an arena of its own (up to 8 per core),
    and what a thread freed stays in its arena: after a burst of lock files the watcher's and
    the bus loop's arenas held about 2 MB the tray no longer used. With one arena the freed
    memory is found again and the top of the heap goes back to the system. The tray's threads
    are idle nearly all the time and allocate under the GIL besides, so they hardly ever wait
    for each other's malloc. Call it before threads start (arenas already made stay). Does
    nothing elsewhere (musl's mallopt accepts nothing and says so).
    """
    if not system.LINUX:
        return False
    import ctypes  # watchdog loads it in the tray anyway

    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_ARENA_MAX, 1))
