"""File system events for the watcher, through watchdog, reduced to what matters: a path changed.

One `FsWatch` serves one watcher. Each temp dir gets a non-recursive watch whose events are
filtered to uv lock names. On Linux it also listens for opens and close-after-write: a holder
that exits closes its file (the kernel does it for a killed process, and uv's read-write close is
a close-after-write; other tools may hold a read-only one), and a uv that starts waiting has just
opened it. The dir's parent is watched while the dir itself is missing, so it
is re-attached the moment it comes back. A symlinked dir is watched where it points.

On Linux uvsweep gives watchdog an inotify instance of its own, so closing the watch stops every
thread it started.
"""
# ruff: noqa: PLC0415 - imports inside functions: only the path that needs a module pays for it

from __future__ import annotations

import os
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable

from uvsweep import system
from uvsweep.naming import is_lock_name

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: (kind, path): kind is created, deleted, moved, opened, closed, closed_no_write, dir-created
#: or dir-deleted.
OnEvent = Callable[[str, str], None]


class FsWatch(ABC):
    """The seam: attach a dir (OSError if the OS refuses), close everything."""

    @abstractmethod
    def attach(self, directory: str, on_event: OnEvent) -> None:
        """Report events for uv lock names directly inside `directory`, and its own deletion."""

    @abstractmethod
    def attach_parent(self, directory: str, on_event: OnEvent) -> None:
        """Report `dir-created` when `directory` appears inside its (existing) parent."""

    @abstractmethod
    def detach(self, directory: str) -> None:
        """Stop the watches for `directory` (and its parent watch), if any."""

    @abstractmethod
    def close(self, timeout: float = 1.0) -> None:
        """Stop and join every thread."""


def _norm(path: str) -> str:
    return os.path.normpath(path)


class WatchdogFsWatch(FsWatch):
    """`FsWatch` over a watchdog observer."""

    def __init__(self, platform: str = sys.platform) -> None:
        from watchdog import events  # only the watcher needs watchdog

        self._events = events
        self._linux = system.is_linux(platform)
        self._observer: Any = None
        self._inotify: Any = None
        # per watched dir: (what was scheduled, the watch, our handler on it)
        self._watches: dict[str, list[tuple[tuple[str, bool], Any, Any]]] = {}
        # watchdog shares one watch between equal schedules: count our handlers on each
        self._users: dict[tuple[str, bool], int] = {}
        self._lock = threading.Lock()

    def _ensure_observer(self) -> Any:
        if self._observer is not None:
            return self._observer
        if self._linux:
            from functools import partial

            from watchdog.observers.api import BaseObserver
            from watchdog.observers.inotify import InotifyEmitter
            from watchdog.observers.inotify_c import InotifyFD

            inotify = InotifyFD()  # raises OSError(EMFILE) at the instance limit
            inotify.start()
            self._inotify = inotify
            emitter = partial(InotifyEmitter, inotify_fd=inotify)
            observer = BaseObserver(emitter_class=emitter)  # type: ignore[arg-type]
        else:
            from watchdog.observers import Observer

            observer = Observer()
        observer.start()
        self._observer = observer
        return observer

    def _handler(self, directory: str, on_event: OnEvent, *, parent: bool,
                 real: str = "") -> Any:  # fmt: skip
        """`real`: the resolved dir the watch is on; its events are told in `directory`'s terms
        (the watcher matches its probe's own opens by path)."""
        events = self._events
        directory = _norm(directory)
        real = _norm(real or directory)

        def ours(path: str) -> str:
            path = _norm(path)
            if real != directory and os.path.dirname(path) == real:
                return os.path.join(directory, os.path.basename(path))
            return directory if path == real else path

        base: Any = events.FileSystemEventHandler

        class Handler(base):  # type: ignore[misc]
            def dispatch(self, event: Any) -> None:
                paths = [ours(os.fsdecode(event.src_path))]
                if getattr(event, "dest_path", ""):
                    paths.append(ours(os.fsdecode(event.dest_path)))
                if parent:
                    if event.is_directory and directory in map(_norm, paths):
                        on_event("dir-created", directory)
                    return
                if event.is_directory:
                    if event.event_type == "deleted" and _norm(paths[0]) == directory:
                        on_event("dir-deleted", directory)
                    return
                for path in paths:
                    if is_lock_name(os.path.basename(path)):
                        on_event(event.event_type, _norm(path))

        return Handler()

    def _filters(self, parent: bool) -> list[Any]:
        e = self._events
        if parent:
            return [e.DirCreatedEvent, e.DirMovedEvent]
        wanted = [e.FileCreatedEvent, e.FileDeletedEvent, e.FileMovedEvent, e.DirDeletedEvent]
        if self._linux:
            wanted += [e.FileOpenedEvent, e.FileClosedEvent, e.FileClosedNoWriteEvent]
        return wanted

    def _schedule(self, key: str, path: str, handler: Any, parent: bool) -> None:
        with self._lock:
            observer = self._ensure_observer()
            watch = observer.schedule(
                handler, path, recursive=False, event_filter=self._filters(parent)
            )
            scheduled = (_norm(path), parent)
            self._users[scheduled] = self._users.get(scheduled, 0) + 1
            self._watches.setdefault(key, []).append((scheduled, watch, handler))

    def attach(self, directory: str, on_event: OnEvent) -> None:
        """See `FsWatch`. A symlinked dir is watched where it points (watchdog's inotify
        watches use IN_DONT_FOLLOW, which would watch the link itself and miss every file);
        the watcher attaches again when the link changes."""
        self.detach(directory)
        real = os.path.realpath(directory)
        self._schedule(_norm(directory), real, self._handler(directory, on_event, parent=False,
                       real=real), parent=False)  # fmt: skip

    def attach_parent(self, directory: str, on_event: OnEvent) -> None:
        """See `FsWatch`."""
        self.detach(directory)
        parent = os.path.dirname(_norm(directory)) or "/"
        self._schedule(_norm(directory), parent, self._handler(directory, on_event, parent=True),
                       parent=True)  # fmt: skip

    def detach(self, directory: str) -> None:
        """See `FsWatch`."""
        with self._lock:
            for scheduled, watch, handler in self._watches.pop(_norm(directory), []):
                self._users[scheduled] -= 1
                try:
                    if self._users[scheduled]:
                        self._observer.remove_handler_for_watch(handler, watch)
                    else:
                        del self._users[scheduled]
                        self._observer.unschedule(watch)
                except (KeyError, OSError, AttributeError):
                    pass  # already gone with its dir

    def close(self, timeout: float = 1.0) -> None:
        """See `FsWatch`."""
        with self._lock:
            observer, self._observer = self._observer, None
            inotify, self._inotify = self._inotify, None
            self._watches.clear()
            self._users.clear()
        if observer is not None:
            observer.stop()
            observer.join(timeout)
        if inotify is not None:
            inotify.stop()
            inotify.join(timeout)
