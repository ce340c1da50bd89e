"""One tray app per user: an exclusive lock on a file in the user's runtime dir, and a channel
to the running one.

The lock goes with the process (even a killed one), so a stale file never blocks a new start.
The running tray also listens on a Unix socket beside the lock (`uvsweep.sock`, 0600): a second
`uvsweep` asks it to show its icon again (re-register with the panel, dock again) through it,
instead of only saying that one is running. Where there are no Unix sockets, it only says so.
"""
# ruff: noqa: PLC0415 - imports inside functions: only the path that needs a module pays for it

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import threading
from collections.abc import Callable

from uvsweep import system

#: The request a second instance sends, and the start of the answer.
SHOW = b"show\n"
SHOWN = b"shown"


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
        self.socket_path = os.path.splitext(self.path)[0] + ".sock"
        self._fd: int | None = None
        self._server: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def acquire(self) -> bool:
        """Take the lock; False if another uvsweep tray holds it."""
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
        fd = os.open(self.path, flags, 0o600)
        try:
            if system.WINDOWS:  # pragma: no cover - Windows
                import msvcrt

                msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined,unused-ignore]
            else:
                import fcntl

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

    def serve(self, on_show: Callable[[], None]) -> bool:
        """While holding the lock, run `on_show()` (on a thread of its own) whenever a second
        instance asks; whether the channel could be opened."""
        if self._fd is None or not hasattr(socket, "AF_UNIX") or self._thread is not None:
            return False
        try:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.socket_path)  # we hold the lock: any socket here is stale
            server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            old_mask = os.umask(0o177)
            try:
                server.bind(self.socket_path)
            finally:
                os.umask(old_mask)
            server.listen(4)
        except OSError:
            with contextlib.suppress(UnboundLocalError, OSError):
                server.close()
            return False
        self._server = server
        self._stop.clear()
        self._thread = threading.Thread(target=self._listen, args=(server, on_show),
                                        name="uvsweep-instance", daemon=True)  # fmt: skip
        self._thread.start()
        return True

    def _listen(self, server: socket.socket, on_show: Callable[[], None]) -> None:
        while not self._stop.is_set():
            try:
                peer, _address = server.accept()  # blocks: no wakeups while idle
            except OSError:  # shut down by release()
                return
            with peer:
                try:
                    peer.settimeout(1.0)
                    if peer.recv(64) != SHOW:
                        continue
                    on_show()
                    peer.sendall(SHOWN + f" {os.getpid()}\n".encode())
                except Exception:  # noqa: BLE001, S112 - a bad peer never stops the channel
                    continue

    def ask_to_show(self, timeout: float = 3.0) -> bool:
        """Ask the running instance to show its icon again; whether it said it did."""
        if not hasattr(socket, "AF_UNIX"):
            return False
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as peer:
                peer.settimeout(timeout)
                peer.connect(self.socket_path)
                peer.sendall(SHOW)
                return peer.recv(64).startswith(SHOWN)
        except OSError:
            return False

    def release(self) -> None:
        """Let go (closing the file drops the lock) and close the channel."""
        self._stop.set()
        server, self._server = self._server, None
        thread, self._thread = self._thread, None
        if server is not None:
            with contextlib.suppress(OSError):
                server.shutdown(socket.SHUT_RDWR)  # wakes the accept() above
        if thread is not None:
            thread.join(2)
        if server is not None:
            server.close()
            with contextlib.suppress(OSError):
                os.unlink(self.socket_path)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
