"""Which OS this is, decided once, and what an OSError says in words.

Code that can be tested for another OS takes a `platform` string (default `sys.platform`) and
asks `family(platform)`; code that only ever asks about the running OS reads the flags. Every
message made from an OSError goes through `reason`.
"""

from __future__ import annotations

import errno
import os
import sys

#: The OS families uvsweep tells apart.
LINUX_FAMILY, WINDOWS_FAMILY, MACOS_FAMILY, BSD_FAMILY, OTHER_FAMILY = (
    "linux", "windows", "macos", "bsd", "other",
)  # fmt: skip


def family(platform: str = sys.platform) -> str:
    """`sys.platform` (or another OS's value of it) -> one of the families above."""
    if platform.startswith("linux"):
        return LINUX_FAMILY
    if platform in ("win32", "cygwin"):
        return WINDOWS_FAMILY if platform == "win32" else OTHER_FAMILY
    if platform == "darwin":
        return MACOS_FAMILY
    if platform.startswith(("freebsd", "openbsd", "netbsd")):
        return BSD_FAMILY
    return OTHER_FAMILY


def is_linux(platform: str) -> bool:
    return family(platform) == LINUX_FAMILY


def is_windows(platform: str) -> bool:
    return family(platform) == WINDOWS_FAMILY


def is_macos(platform: str) -> bool:
    return family(platform) == MACOS_FAMILY


def is_xdg(platform: str) -> bool:
    """A desktop that follows freedesktop.org's conventions (XDG dirs, .desktop entries)."""
    return family(platform) in (LINUX_FAMILY, BSD_FAMILY)


FAMILY = family()
LINUX = FAMILY == LINUX_FAMILY
WINDOWS = FAMILY == WINDOWS_FAMILY
MACOS = FAMILY == MACOS_FAMILY
XDG = is_xdg(sys.platform)
POSIX = os.name == "posix"


def reason(err: OSError) -> str:
    """What went wrong, in the OS's words: `Permission denied`, not `[Errno 13] ...: 'path'`
    (the caller names the path); the whole text when the OS gave no words."""
    return err.strerror or str(err)


def dir_reason(err: OSError) -> str:
    """Why a dir cannot be scanned or cleaned, in one line a user can act on."""
    if err.errno == errno.ENOENT:
        return "no such directory"
    if err.errno == errno.ENOTDIR:
        return "not a directory"
    if err.errno in (errno.EACCES, errno.EPERM):
        return "permission denied (cannot list it)"
    return reason(err)
