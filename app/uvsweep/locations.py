"""Where uv puts its temp-dir locks on this OS, and which dirs a scan looks at by default.

uv uses Rust's `std::env::temp_dir()`. The OS calls that need ctypes (macOS `confstr`, Windows
`GetTempPath2W`) sit behind small functions so their logic is tested on every OS.
"""
# ruff: noqa: PLC0415 - imports inside functions: only the path that needs a module pays for it

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Mapping

from uvsweep import system

_CS_DARWIN_USER_TEMP_DIR = 65537


def _darwin_user_temp_dir() -> str | None:
    """`confstr(_CS_DARWIN_USER_TEMP_DIR)`: the per-user `/var/folders/../T/` dir."""
    import ctypes  # only on macOS
    import ctypes.util

    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    libc.confstr.restype = ctypes.c_size_t  # size_t confstr(int, char *, size_t)
    libc.confstr.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_size_t)
    size = libc.confstr(_CS_DARWIN_USER_TEMP_DIR, None, 0)
    if size <= 0:
        return None
    buf = ctypes.create_string_buffer(size)
    libc.confstr(_CS_DARWIN_USER_TEMP_DIR, buf, size)
    return buf.value.decode("utf-8", "surrogateescape") or None


def _windows_temp_path() -> str | None:
    """`GetTempPath2W` if it exists (SYSTEM: `C:\\Windows\\SystemTemp`), else `GetTempPathW`."""
    import ctypes  # only on Windows

    from uvsweep import win32

    kernel32 = win32.load("kernel32")
    buf = ctypes.create_unicode_buffer(32768)
    func = getattr(kernel32, "GetTempPath2W", None) or kernel32.GetTempPathW
    length = func(len(buf), buf)
    return buf.value[:length] if length else None


def uv_temp_dir(
    platform: str = sys.platform,
    environ: Mapping[str, str] = os.environ,
    darwin_confstr: Callable[[], str | None] = _darwin_user_temp_dir,
    windows_temp_path: Callable[[], str | None] = _windows_temp_path,
) -> str:
    """The dir uv (Rust's `temp_dir()`) would use for lock files in this process's environment."""
    if system.is_windows(platform):
        found = windows_temp_path()
        if found:
            return found.rstrip("\\/") or found
        for name in ("TMP", "TEMP", "USERPROFILE"):
            if environ.get(name):
                return environ[name]
        return environ.get("SystemRoot", "C:\\Windows")
    tmpdir = environ.get("TMPDIR")
    if tmpdir:
        return tmpdir.rstrip("/") or "/"
    if system.is_macos(platform):
        found = darwin_confstr()
        if found:
            return found.rstrip("/") or "/"
    return "/tmp"  # noqa: S108 - this is exactly where uv puts them


def tmpdir_warning(
    platform: str = sys.platform, environ: Mapping[str, str] = os.environ
) -> str | None:
    """A warning when `TMPDIR` is set but empty or relative, else None.

    Rust's `temp_dir()` returns `$TMPDIR` as it is, so with `TMPDIR=""` uv's lock path is the
    bare file name and with `TMPDIR=tmp` it is relative: either way uv writes its locks into
    (a dir under) its own working dir, which no default scan looks at. Windows takes
    `GetTempPath2W`, which always answers with an absolute path.
    """
    if system.is_windows(platform) or "TMPDIR" not in environ:
        return None
    value = environ["TMPDIR"]
    if value == "":
        return (
            "TMPDIR is set but empty: uv then writes its lock files into its own working dir"
            " (not scanned; pass that dir with --dir)"
        )
    if not os.path.isabs(value):
        return (
            f"TMPDIR={value!r} is relative: uv then writes its lock files into {value!r} under"
            " its own working dir (not scanned; pass that dir with --dir)"
        )
    return None


def default_dirs(
    extra: Iterable[str] = (),
    platform: str = sys.platform,
    environ: Mapping[str, str] = os.environ,
    darwin_confstr: Callable[[], str | None] = _darwin_user_temp_dir,
    windows_temp_path: Callable[[], str | None] = _windows_temp_path,
) -> list[str]:
    """uv's temp dir for this user, `/tmp` on Unix when different, then `extra` (from settings)."""
    dirs = [uv_temp_dir(platform, environ, darwin_confstr, windows_temp_path)]
    if system.is_macos(platform):
        # Rust std's `env::temp_dir` (library/std/src/env.rs) on Darwin: `$TMPDIR`, else
        # `confstr(_CS_DARWIN_USER_TEMP_DIR)`, not `/tmp`. So a uv run without TMPDIR (sudo,
        # launchd) locks in this user's (root's, as root) per-user dir: scan it as well.
        found = darwin_confstr()
        if found:
            dirs.append(found.rstrip("/") or "/")
    if platform != "win32":
        dirs.append("/tmp")  # noqa: S108 - sudo, launchd jobs and Docker RUN steps use /tmp
    dirs.extend(extra)
    return unique_dirs(dirs)


def unique_dirs(dirs: Iterable[str]) -> list[str]:
    """Dirs in order, each once, compared by real path (`/tmp` and `/private/tmp` are one)."""
    seen: set[str] = set()
    out: list[str] = []
    for item in dirs:
        expanded = os.path.abspath(os.path.expanduser(item))
        key = os.path.normcase(os.path.realpath(expanded))
        if key in seen:
            continue
        seen.add(key)
        out.append(expanded)
    return out
