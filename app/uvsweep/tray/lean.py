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
Python has no SHA-256 of its own (some distributions build it so).
"""

from __future__ import annotations

import contextlib
import importlib.util
import sys
from collections.abc import Iterator


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
        import asyncio  # noqa: F401, PLC0415
        import hashlib  # noqa: F401, PLC0415

        yield blocked
    finally:
        for name in blocked:
            if name in sys.modules and sys.modules[name] is None:
                del sys.modules[name]
