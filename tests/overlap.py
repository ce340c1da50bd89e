"""Seeing mutual exclusion break, from outside: two holders of one lock name at once.

A lock file's name is what uv agrees on; a cleaner that removes a file while a uv is about to lock
it lets a second uv create a fresh file at the name and lock *that*. Both then "hold the lock",
on two inodes. `OverlapSampler` reads `/proc/locks` over and over while a test runs, finds each
exclusive flock holder's file by its fds (`/proc/<pid>/fd`, the name the kernel gives it, with
" (deleted)" for an unlinked one) and records every moment two different inodes under one name
in the watched dir are held at once. It needs to see other processes' fds: root, or the same user.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from pathlib import Path

DELETED = " (deleted)"


def holders_by_name(directory: Path) -> dict[str, set[tuple[int, int]]]:
    """Name (in `directory`) -> the (dev, ino) of every exclusive flock held on a file that has,
    or had, that name, as one read of `/proc/locks` and the holders' fds show it now."""
    prefix = str(directory).rstrip("/") + "/"
    wanted: dict[int, set[int]] = {}  # pid -> inode numbers it holds
    with open("/proc/locks", "rb") as handle:
        for raw in handle.read().decode("latin-1").splitlines():
            parts = raw.split()
            if len(parts) < 6 or parts[1] != "FLOCK" or parts[3] != "WRITE":  # no "->" waiters
                continue
            with contextlib.suppress(ValueError, IndexError):
                wanted.setdefault(int(parts[4]), set()).add(int(parts[5].split(":")[2]))
    found: dict[str, set[tuple[int, int]]] = {}
    for pid, inodes in wanted.items():
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            link = f"/proc/{pid}/fd/{fd}"
            try:
                target = os.readlink(link)
                if not target.startswith(prefix):
                    continue
                st = os.stat(link)
            except OSError:
                continue
            if st.st_ino in inodes:
                name = target[len(prefix) :].removesuffix(DELETED)
                found.setdefault(name, set()).add((st.st_dev, st.st_ino))
    return found


class OverlapSampler:
    """Samples `holders_by_name` in a thread until `stop()`; `overlaps` lists what it saw."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.samples = 0
        self.overlaps: list[tuple[str, set[tuple[int, int]]]] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._done.is_set():
            for name, keys in holders_by_name(self.directory).items():
                if len(keys) > 1:
                    self.overlaps.append((name, keys))
            self.samples += 1
            time.sleep(0.001)

    def __enter__(self) -> OverlapSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop sampling (idempotent)."""
        self._done.set()
        if self._thread.is_alive():
            self._thread.join(timeout=10)
