"""Seeing mutual exclusion break, from outside: two holders of one lock name at once.

A lock file's name is what uv agrees on; a cleaner that removes a file while a uv is about to lock
it lets a second uv create a fresh file at the name and lock *that*. Both then "hold the lock",
on two inodes. `OverlapSampler` reads `/proc/locks` over and over while a test runs, finds each
exclusive flock holder's file by its fds (`/proc/<pid>/fd`, the name the kernel gives it, with
" (deleted)" for an unlinked one) and records every moment two different inodes under one name
in the watched dir are held at once. A cleaner's handoff does that on purpose (it holds the new
file while the old file's user holds the old one), so a test of uv itself counts only uv.
It needs to see other processes' fds: root, or the same user.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

DELETED = " (deleted)"


def comm(pid: int) -> str:
    """A process's name (`/proc/<pid>/comm`), or "" once it is gone."""
    try:
        with open(f"/proc/{pid}/comm", "rb") as handle:
            return handle.read().decode(errors="replace").strip()
    except OSError:
        return ""


def holders_by_name(
    directory: Path, counts: Callable[[int], bool] | None = None
) -> dict[str, set[tuple[int, int]]]:
    """Name (in `directory`) -> the (dev, ino) of every exclusive flock held on a file that has,
    or had, that name, as one read of `/proc/locks` and the holders' fds show it now.

    `counts(pid)` says which holders count (e.g. only uv itself: a cleaner handing a lock over
    holds the name's new file *on purpose* while the old file's user holds the old one)."""
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
        if counts is not None and not counts(pid):
            continue
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

    def __init__(self, directory: Path, counts: Callable[[int], bool] | None = None) -> None:
        self.directory = directory
        self.counts = counts
        self.samples = 0
        self.overlaps: list[tuple[str, set[tuple[int, int]]]] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._done.is_set():
            for name, keys in holders_by_name(self.directory, self.counts).items():
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
