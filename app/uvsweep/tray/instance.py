"""One tray app per user: an exclusive lock on a file in the user's runtime dir.

The lock goes with the process (even a killed one), so a stale file never blocks a new start.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile


def default_path() -> str:
    """`$XDG_RUNTIME_DIR/uvsweep.lock` where it exists, else a per-user file in the temp dir."""
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.isdir(runtime):
        return os.path.join(runtime, "uvsweep.lock")
    user = str(os.getuid()) if hasattr(os, "getuid") else os.environ.get("USERNAME", "user")
    return os.path.join(tempfile.gettempdir(), f"uvsweep-tray-{user}.lock")


class SingleInstance:
    """Hold the per-user tray lock for as long as this process runs the tray."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path or default_path()
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock; False if another uvsweep tray holds it."""
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(self.path, flags, 0o600)
        try:
            if sys.platform == "win32":  # pragma: no cover - Windows
                import msvcrt  # noqa: PLC0415

                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined,unused-ignore]
            else:
                import fcntl  # noqa: PLC0415

                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def holder(self) -> int | None:
        """The pid the running instance wrote, if it can be read."""
        with contextlib.suppress(OSError, ValueError, IndexError), open(self.path, "rb") as handle:
            return int(handle.read().split()[0])
        return None

    def release(self) -> None:
        """Let go (closing the file drops the lock)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
