"""The live watcher: decides *when* to rescan; what is true about a file stays the scanner's job.

Rescans are triggered by
- file system events on the temp dirs (created, deleted, renamed into place; on Linux also opened
  and closed-after-write, so a holder that exits or a uv that starts waiting shows at once),
- the exit of any uv process the last scan saw (`procwait`: pidfd, kqueue or process handles),
- a slow safety rescan (default 60 s) for whatever events miss,
- polling (default every 2 s) only for dirs the OS cannot watch (inotify limits reached).

Events are coalesced: a rescan starts once events have been quiet for `quiet` seconds, or
`max_delay` after the first one, so a burst of a thousand files costs a handful of scans and the
last one is exact. The probe's own opens are told apart from other processes' (it announces each
one through `before_open`), so scanning never triggers another scan.

One worker thread does the scanning and calls the subscribers; `stop()` joins it, the watchdog
threads and the process waiter's thread.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence

from uvsweep.model import LockFile, LockState, Record, Snapshot

TYPE_CHECKING = False
if TYPE_CHECKING:
    from uvsweep.cleaner import CleanReport
    from uvsweep.fswatch import FsWatch
    from uvsweep.labels import LabelIndex
    from uvsweep.processes import ProcessInfo, ProcessTable
    from uvsweep.procwait import ProcessWaiter
    from uvsweep.settings import Settings

log = logging.getLogger("uvsweep.watcher")


class Change(Record):
    """What differs between two snapshots, by path."""

    __slots__ = ("added", "changed", "removed", "updated")
    added: tuple[LockFile, ...]
    removed: tuple[LockFile, ...]
    changed: tuple[tuple[LockFile, LockFile], ...]  # (before, after): the state differs
    # (before, after): same state, but other holders or waiters, or another label
    updated: tuple[tuple[LockFile, LockFile], ...]

    def __init__(
        self,
        added: Sequence[LockFile] = (),
        removed: Sequence[LockFile] = (),
        changed: Sequence[tuple[LockFile, LockFile]] = (),
        updated: Sequence[tuple[LockFile, LockFile]] = (),
    ) -> None:
        self._init(
            added=tuple(added), removed=tuple(removed), changed=tuple(changed),
            updated=tuple(updated),
        )  # fmt: skip

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed or self.updated)


def _who(item: LockFile) -> tuple[object, ...]:
    return (
        tuple(h.pid for h in item.holders),
        tuple(h.pid for h in item.waiters),
        tuple(h.pid for h in item.openers),
        item.label,
    )


def diff(before: Snapshot | None, after: Snapshot) -> Change:
    """Files added, removed, whose state changed, and whose holders, waiters, openers or label
    changed, from `before` to `after`."""
    old = {item.path: item for item in before.files} if before else {}
    new = {item.path: item for item in after.files}
    both = [(old[path], item) for path, item in new.items() if path in old]
    return Change(
        added=[item for path, item in new.items() if path not in old],
        removed=[item for path, item in old.items() if path not in new],
        changed=[(was, now) for was, now in both if was.state is not now.state],
        updated=[
            (was, now) for was, now in both if was.state is now.state and _who(was) != _who(now)
        ],
    )


#: Called on the watcher's thread with each new snapshot and what changed since the last one.
Subscriber = Callable[[Snapshot, Change], None]
#: Runs a cleanup; given the dirs, returns its report (the tray's "clean when uv is idle").
Cleaner = Callable[[Sequence[str]], "CleanReport"]

#: The events the probe's own read-only open and close of a file cause.
_OWN_EVENTS = ("opened", "closed_no_write")
_LIMIT_ERRNOS = {errno.ENOSPC: "inotify watch limit", errno.EMFILE: "inotify instance limit"}


class AutoClean:
    """The policy "clean automatically when uv is idle" (off unless a watcher is given one).

    After a scan that shows orphaned files at least `min_age` old and no uv process running,
    the watcher runs `clean` (the safe cleanup, gate included) on its own thread.
    """

    def __init__(self, min_age: float = 0.0, clean: Cleaner | None = None) -> None:
        self.min_age = min_age
        self.clean = clean
        self.last_report: CleanReport | None = None

    def wanted(self, snapshot: Snapshot, uv_running: bool, now: float) -> bool:
        """Whether a cleanup is due now."""
        return not uv_running and any(
            item.state is LockState.ORPHANED and now - item.mtime >= self.min_age
            for item in snapshot.files
        )

    def run(self, dirs: Sequence[str]) -> CleanReport:
        """Clean, and remember the report."""
        if self.clean is None:
            from uvsweep import cleaner  # noqa: PLC0415

            self.last_report = cleaner.clean(dirs, min_age=self.min_age)
        else:
            self.last_report = self.clean(dirs)
        return self.last_report


class Watcher:
    """Keeps an up-to-date `Snapshot` of some dirs and tells subscribers what changed."""

    def __init__(
        self,
        dirs: Sequence[str],
        *,
        settings: Settings | None = None,
        safety_interval: float = 60.0,
        poll_interval: float = 2.0,
        quiet: float = 0.02,
        max_delay: float = 0.25,
        label: bool = True,
        auto_clean: AutoClean | None = None,
        fs_watch: Callable[[], FsWatch] | None = None,
        process_waiter: Callable[[Callable[[int], None]], ProcessWaiter] | None = None,
        on_warning: Callable[[str], None] | None = None,
    ) -> None:
        self.dirs = [os.path.normpath(d) for d in dirs]
        self.settings = settings
        self.safety_interval = safety_interval
        self.poll_interval = poll_interval
        self.quiet = quiet
        self.max_delay = max_delay
        self.label = label
        self.auto_clean = auto_clean
        self._fs_watch_factory = fs_watch
        self._waiter_factory = process_waiter
        self._subscribers: list[Subscriber] = []
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._dirty_since: float | None = None  # first event not yet scanned
        self._last_event = 0.0
        self._full = False  # the next scan also rebuilds the label index
        self._fs: FsWatch | None = None
        self._waiter: ProcessWaiter | None = None
        # (event kind, path) -> when our probe caused such an event: an open, then a close
        self._own_events: dict[tuple[str, str], list[float]] = {}
        self._polled: dict[str, str] = {}  # dir -> why it is polled instead of watched
        self._missing: set[str] = set()  # dirs that do not exist (a parent watch waits)
        self._reattach: set[str] = set()  # dirs to attach again on the worker thread
        self._index: LabelIndex | None = None
        self._index_at = 0.0
        self.snapshot: Snapshot | None = None
        self.uv_processes: list[ProcessInfo] = []
        self.scans = 0
        self.warnings: list[str] = []
        self.on_warning = on_warning  # called on the watcher's thread with each warning

    # ---- public API ---------------------------------------------------------------------------

    def subscribe(self, subscriber: Subscriber) -> Callable[[], None]:
        """Call `subscriber(snapshot, change)` after the first scan, and after every scan that
        changed a file, the dir errors or the set of running uv processes (`uv_processes`).
        Returns a function that unsubscribes."""
        with self._cond:
            self._subscribers.append(subscriber)

        def unsubscribe() -> None:
            with self._cond:
                if subscriber in self._subscribers:
                    self._subscribers.remove(subscriber)

        return unsubscribe

    def start(self) -> None:
        """Start watching (idempotent). The first snapshot follows at once."""
        with self._cond:
            if self._thread is not None:
                return
            self._stopping = False
            self._dirty_since = time.monotonic()
            self._full = True
            self._thread = threading.Thread(target=self._run, name="uvsweep-watcher", daemon=True)
        from uvsweep.locations import tmpdir_warning  # noqa: PLC0415

        warning = tmpdir_warning()
        if warning:  # the tray and `watch` read warnings here (TMPDIR empty or relative)
            self._warn(warning)
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        """Stop and join every thread the watcher started (idempotent)."""
        with self._cond:
            thread = self._thread
            if thread is None:
                return
            self._stopping = True
            self._cond.notify_all()
        deadline = time.monotonic() + timeout
        thread.join(max(0.0, deadline - time.monotonic()))
        self._thread = None
        if self._waiter is not None:
            self._waiter.stop(max(0.0, deadline - time.monotonic()))
            self._waiter = None
        if self._fs is not None:
            self._fs.close(max(0.0, deadline - time.monotonic()))
            self._fs = None

    def rescan(self, *, full: bool = False) -> None:
        """Ask for a rescan now (`full`: also look again for what each file guards)."""
        with self._cond:
            self._full = self._full or full
            self._mark_dirty()

    @property
    def polled_dirs(self) -> dict[str, str]:
        """Dirs watched by polling, with the reason."""
        return dict(self._polled)

    # ---- events -------------------------------------------------------------------------------

    def _mark_dirty(self) -> None:
        now = time.monotonic()
        self._last_event = now
        if self._dirty_since is None:
            self._dirty_since = now
        self._cond.notify_all()

    def _before_open(self, path: str) -> None:
        now, path = time.monotonic(), os.path.normpath(path)
        with self._cond:
            for kind in _OWN_EVENTS:
                self._own_events.setdefault((kind, path), []).append(now)

    def _on_fs_event(self, kind: str, path: str) -> None:
        with self._cond:
            if kind in _OWN_EVENTS:
                stamps = self._own_events.get((kind, path))
                now = time.monotonic()
                while stamps and now - stamps[0] > 1.0:
                    stamps.pop(0)  # announced, but its event never came (the open failed)
                if stamps:
                    stamps.pop(0)  # our own probe's open or close
                    return
            elif kind == "dir-deleted":
                self._missing.add(path)
                self._reattach.add(path)  # to watch its parent for its return
            elif kind == "dir-created":
                self._missing.discard(path)
                self._polled.pop(path, None)
                self._reattach.add(path)
            self._mark_dirty()

    def _on_process_exit(self, _pid: int) -> None:
        with self._cond:
            self._mark_dirty()

    # ---- the worker ---------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._start_sources()
            next_safety = time.monotonic() + self.safety_interval
            next_poll = time.monotonic() + self.poll_interval
            while True:
                with self._cond:
                    while not self._stopping:
                        now = time.monotonic()
                        if self._dirty_since is not None and (
                            now - self._last_event >= self.quiet
                            or now - self._dirty_since >= self.max_delay
                        ):
                            break
                        if now >= next_safety:
                            self._full = True
                            break
                        if (self._polled or self._missing) and now >= next_poll:
                            break
                        deadline = next_safety
                        if self._polled or self._missing:
                            deadline = min(deadline, next_poll)
                        if self._dirty_since is not None:
                            deadline = min(
                                deadline,
                                self._last_event + self.quiet,
                                self._dirty_since + self.max_delay,
                            )
                        self._cond.wait(max(0.0, deadline - now))
                    if self._stopping:
                        return
                    self._dirty_since = None
                    full, self._full = self._full, False
                    reattach, self._reattach = self._reattach, set()
                now = time.monotonic()
                if now >= next_poll:
                    next_poll = now + self.poll_interval
                    reattach |= self._missing | set(self._polled)
                if full:
                    next_safety = now + self.safety_interval
                for directory in sorted(reattach):
                    self._attach(directory)
                try:
                    self._scan(full)
                except Exception:  # a bug: say so, and keep watching
                    log.exception("a rescan failed; the next event or the safety rescan retries")
        except Exception:  # pragma: no cover - a bug outside the scan: say so
            log.exception("the watcher stopped on an unexpected error")
            raise

    def _start_sources(self) -> None:
        from uvsweep import procwait  # noqa: PLC0415

        waiter_factory = self._waiter_factory or procwait.for_platform
        self._waiter = waiter_factory(self._on_process_exit)
        self._waiter.start()
        for directory in self.dirs:
            self._attach(directory)

    def _fs_watch(self) -> FsWatch:
        if self._fs is None:
            if self._fs_watch_factory is not None:
                self._fs = self._fs_watch_factory()
            else:
                from uvsweep.fswatch import WatchdogFsWatch  # noqa: PLC0415

                self._fs = WatchdogFsWatch()
        return self._fs

    def _attach(self, directory: str) -> None:
        """Watch `directory`; if it is missing, watch for it to appear; if the OS refuses, poll."""
        if self._stopping:
            return
        try:
            fs = self._fs_watch()
            if os.path.isdir(directory):
                if not os.access(directory, os.R_OK | os.X_OK):
                    # inotify refuses it too, and watchdog would say nothing: poll
                    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), directory)
                fs.attach(directory, self._on_fs_event)
                self._missing.discard(directory)
                if self._polled.pop(directory, None):
                    self._warn(f"{directory}: watched by events again")
                return
            self._missing.add(directory)
            if os.path.isdir(os.path.dirname(directory) or "/"):
                fs.attach_parent(directory, self._on_fs_event)
        except OSError as err:
            self._degrade(directory, err)
        except ImportError as err:  # a broken install: still useful, by polling
            self._degrade(directory, OSError(f"watchdog cannot be imported: {err}"))

    def _degrade(self, directory: str, err: OSError) -> None:
        limit = _LIMIT_ERRNOS.get(err.errno or 0)
        if limit:
            why = f"{limit} reached ({err.strerror or err}); raise fs.inotify.max_user_" + (
                "watches" if err.errno == errno.ENOSPC else "instances"
            )
        else:
            why = err.strerror or str(err)
        if self._polled.get(directory) != why:
            self._polled[directory] = why
            self._warn(f"{directory}: cannot watch it ({why}): polling every"
                       f" {self.poll_interval:g} s instead")  # fmt: skip

    def _warn(self, message: str) -> None:
        log.warning(message)
        self.warnings.append(message)
        if self.on_warning is not None:
            self.on_warning(message)

    def _scan(self, full: bool) -> None:
        from uvsweep import cleaner, probe, scanner  # noqa: PLC0415
        from uvsweep.processes import ProcessTable  # noqa: PLC0415

        table = ProcessTable()
        backend = probe.for_platform(processes=table)
        if hasattr(backend, "before_open"):
            backend.before_open = self._before_open
        if hasattr(backend, "quiet"):
            backend.quiet = True  # no opens of our own where /proc/locks decides
        snapshot = scanner.scan(self.dirs, settings=self.settings, backend=backend,
                                processes=table, label=False)  # fmt: skip
        if self.label and snapshot.files:
            snapshot = self._labelled(snapshot, table, rebuild=full)
        notes = tuple(f"{d}: polled ({why})" for d, why in sorted(self._polled.items()))
        if notes:
            snapshot = snapshot.replace(notes=snapshot.notes + notes)  # type: ignore[assignment]
        before = {p.pid for p in self.uv_processes}
        self.uv_processes = cleaner.running_uv(table)
        if self._waiter is not None:
            self._waiter.watch(p.pid for p in self.uv_processes)
        previous, self.snapshot = self.snapshot, snapshot
        self.scans += 1
        change = diff(previous, snapshot)
        uv_changed = before != {p.pid for p in self.uv_processes}
        if previous is None or change or uv_changed or previous.errors != snapshot.errors:
            self._publish(snapshot, change)
        policy = self.auto_clean
        if policy is not None and policy.wanted(snapshot, bool(self.uv_processes), time.time()):
            try:
                policy.run(self.dirs)
            except Exception:  # a cleanup that fails must not take the watcher down
                log.exception("automatic cleanup failed")

    def _labelled(self, snapshot: Snapshot, table: ProcessTable, *, rebuild: bool) -> Snapshot:
        from uvsweep import labels  # noqa: PLC0415

        project_dirs = self.settings.project_dirs if self.settings else ()
        index, now = self._index, time.monotonic()
        if index is None or rebuild:
            index, self._index_at = labels.build_index(project_dirs, table), now
        files = [item.with_label(index.label_for(item.name)) for item in snapshot.files]
        if any(item.label is None for item in files) and now - self._index_at > 5.0:
            # a new environment: look again, at most every 5 s
            index, self._index_at = labels.build_index(project_dirs, table), now
            files = [item.with_label(index.label_for(item.name)) for item in snapshot.files]
        self._index = index
        return snapshot.replace(files=tuple(files))  # type: ignore[return-value]

    def _publish(self, snapshot: Snapshot, change: Change) -> None:
        with self._cond:
            subscribers = list(self._subscribers)
        for subscriber in subscribers:
            try:
                subscriber(snapshot, change)
            except Exception:  # one bad subscriber must not silence the others
                log.exception("a watcher subscriber failed")
