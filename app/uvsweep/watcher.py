"""The live watcher: decides *when* to rescan; what is true about a file stays the scanner's job.

Rescans are triggered by
- file system events on the temp dirs (created, deleted, renamed into place; on Linux also opened
  and closed-after-write, so a holder that exits or a uv that starts waiting shows at once),
- the exit of any active uv process the last scan saw (`procwait`: pidfd, kqueue or process
  handles); while one is active, a check of the uv processes alone (every second at first, up
  to every 8 s while nothing changes) rescans when it has parked (spawned its command),
- a slow safety rescan (default 60 s) for whatever events miss,
- polling (default every 2 s) only for dirs that cannot be watched (inotify limits reached) or
  read (permissions): a dir that becomes readable again is seen at the next poll,
- a check of each dir's identity, every second at first and then less often while nothing
  moves (up to every `IDENTITY_MOST` seconds): a dir that is (or becomes) a symlink is watched
  where it points, and watched again when the link changes or the dir is renamed away (a dir
  deleted or created is an event, seen at once).

The first file event after a quiet spell is acted on at once (leading edge): the file it names is
probed alone (a try-lock and one walk of the open files; the OS's lock table, slow to read on
Linux, only where those leave a doubt: `Backend.lazy_table`) and a snapshot with it is published,
so a new lock or a holder that dies shows within milliseconds. What follows is coalesced: a
full rescan starts once events have been quiet for `quiet` seconds, or `max_delay` after the
first one, so a burst of a thousand files costs a handful of snapshots and the last one is
exact (the full rescan always follows a leading probe).
The probe's own opens are told apart from other processes' (it announces each one through
`before_open`), so scanning never triggers another scan.

One worker thread does the scanning and calls the subscribers, except that a leading probe runs
on the thread that delivered its event when nothing else is scanning; one scan or probe runs at a
time, so subscribers are never called at once. `stop()` joins the worker, the watchdog threads
and the process waiter's thread.

The watcher only decides when to look: what each file is (and its label) is the scanner's to
say, and what to do about it is its subscribers' (automatic cleanup is one: `autoclean.py`).
"""
# ruff: noqa: PLC0415 - imports inside functions: only the path that needs a module pays for it

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from uvsweep import system
from uvsweep.model import Change, Snapshot, diff

TYPE_CHECKING = False
if TYPE_CHECKING:
    from uvsweep.fswatch import FsWatch
    from uvsweep.probe import Backend
    from uvsweep.processes import ProcessInfo, ProcessTable
    from uvsweep.procwait import ProcessWaiter
    from uvsweep.scanner import Labeller
    from uvsweep.settings import Settings

log = logging.getLogger("uvsweep.watcher")


#: Called with each new snapshot and what changed since the last one, one call at a time.
Subscriber = Callable[[Snapshot, Change], None]

#: The events the probe's own read-only open and close of a file cause.
_OWN_EVENTS = ("opened", "closed_no_write")
#: At most this many files are probed on the leading edge; later ones wait for the full rescan.
_LEADING_MOST = 8
#: The longest wait between two checks of the dirs' identity (seconds; see the module docstring):
#: an idle watcher wakes for it about once in this time, not every second.
IDENTITY_MOST = 8.0
_LIMIT_ERRNOS = {errno.ENOSPC: "inotify watch limit", errno.EMFILE: "inotify instance limit"}


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
        leading_edge: bool = True,
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
        # while an active uv runs: how soon to look whether it parked (1 s, doubling up to 8 s
        # while nothing changes: a uv that stays active for minutes costs little)
        self.uv_recheck = 1.0
        self._uv_recheck_now = self.uv_recheck
        self.label = label
        self.leading_edge = leading_edge
        self._fs_watch_factory = fs_watch
        self._waiter_factory = process_waiter
        self._subscribers: list[Subscriber] = []
        self._every_rescan: list[Subscriber] = []  # told of every full rescan, changed or not
        self._stop_hooks: list[Callable[[], float]] = []
        self._cond = threading.Condition()
        # held while a scan or a leading probe runs (the worker's or an event thread's): one at a
        # time, so snapshots are published in the order they were taken
        self._work_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._dirty_since: float | None = None  # first event not yet scanned
        self._last_event = 0.0
        self._full = False  # the next scan also rebuilds the label index
        # files named by the first events after a quiet spell, to probe at once (leading edge)
        self._leading: set[str] = set()
        self._probed = False  # a leading probe was taken since the last full rescan began
        self._last_file_event = 0.0
        self._fs: FsWatch | None = None
        self._waiter: ProcessWaiter | None = None
        # (event kind, path) -> when our probe caused such an event: an open, then a close
        self._own_events: dict[tuple[str, str], list[float]] = {}
        self._polled: dict[str, str] = {}  # dir -> why it is polled instead of watched
        self._missing: set[str] = set()  # dirs that do not exist (a parent watch waits)
        self._reattach: set[str] = set()  # dirs to attach again on the worker thread
        # dir -> (where it resolves to, dev, inode) when it was attached: changes mean reattach
        self._identity: dict[str, tuple[str, int, int]] = {}
        self.identity_interval = min(1.0, poll_interval)
        self._identity_every = self.identity_interval  # doubles while no dir moves
        self._labeller: Labeller | None = None
        self.snapshot: Snapshot | None = None
        self.uv_processes: list[ProcessInfo] = []
        self._next_uv_check = 0.0
        self.scans = 0  # full rescans
        self.probes = 0  # leading-edge probes of single files
        self.warnings: list[str] = []
        self.on_warning = on_warning  # called on the watcher's thread with each warning

    # ---- public API ---------------------------------------------------------------------------

    def subscribe(
        self, subscriber: Subscriber, *, every_rescan: bool = False
    ) -> Callable[[], None]:
        """Call `subscriber(snapshot, change)` after the first scan, and after every scan or
        leading probe that changed a file, the dir errors or the set of running uv processes
        (`uv_processes`), one call at a time (from the worker or an event thread).
        `every_rescan`: after every full rescan instead, changed or not, on the worker after the
        other subscribers, and never after a leading probe (a policy that looks at the whole
        picture as time passes: automatic cleanup). Returns a function that unsubscribes."""
        chosen = self._every_rescan if every_rescan else self._subscribers
        with self._cond:
            chosen.append(subscriber)

        def unsubscribe() -> None:
            with self._cond:
                if subscriber in chosen:
                    chosen.remove(subscriber)

        return unsubscribe

    def on_stop(self, hook: Callable[[], float]) -> None:
        """Call `hook()` first thing in `stop()`: it asks a subscriber to finish what it is
        doing, and returns how many more seconds `stop()` may wait for the worker thread."""
        with self._cond:
            self._stop_hooks.append(hook)

    def start(self) -> None:
        """Start watching (idempotent). The first snapshot follows at once."""
        with self._cond:
            if self._thread is not None:
                return
            self._stopping = False
            self._dirty_since = time.monotonic()
            self._full = True
            self._thread = threading.Thread(target=self._run, name="uvsweep-watcher", daemon=True)
        from uvsweep.locations import tmpdir_warning

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
            hooks = list(self._stop_hooks)
        deadline = time.monotonic() + timeout
        for hook in hooks:
            try:
                deadline += max(0.0, hook())
            except Exception:  # a bug in a subscriber must not keep the watcher running
                log.exception("a stop hook failed")
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

    @contextmanager
    def held_still(self) -> Iterator[None]:
        """No scan or probe of this watcher runs meanwhile (they wait, then run): for a cleanup
        in this process on another thread. A probe opens each file, and on Linux an open breaks
        the write lease the cleanup keeps on a file from before its unlink: the cleanup would
        then keep the file (as opened during removal) instead of removing it. A cleanup run by
        a subscriber (`autoclean`) runs inside a scan already; never call this from one."""
        with self._work_lock:
            yield

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
        here: set[str] = set()
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
            elif self.leading_edge and len(self._leading) < _LEADING_MOST:
                if self._leading or self._after_quiet_spell():
                    # the first event(s) after a quiet spell: this file is probed at once, here
                    # on the event's thread when nothing else is scanning (a hand-over to the
                    # worker can cost a loaded machine more than the probe), else by the worker
                    self._leading.add(path)
                    if not self._stopping and self._work_lock.acquire(blocking=False):
                        here, self._leading = self._leading, set()
                        self._probed = True
                self._last_file_event = time.monotonic()
            self._mark_dirty()
        if here:
            try:
                self._lead(here)
            finally:
                self._work_lock.release()

    def _after_quiet_spell(self) -> bool:
        """Whether no file event came for `quiet` seconds and no leading probe was taken since
        the last full rescan began (holding `_cond`): at most one probe between rescans."""
        return not self._probed and time.monotonic() - self._last_file_event >= self.quiet

    def _on_process_exit(self, _pid: int) -> None:
        with self._cond:
            self._mark_dirty()

    # ---- the worker ---------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            self._start_sources()
            next_safety = time.monotonic() + self.safety_interval
            next_poll = time.monotonic() + self.poll_interval
            next_identity = time.monotonic() + self.identity_interval
            while True:
                with self._cond:
                    work, next_identity = self._wait_for_work(next_safety, next_poll, next_identity)
                    if self._stopping:
                        return
                    if work == "leading":
                        leading, self._leading = self._leading, set()
                        self._probed = True
                    elif work == "scan":
                        self._dirty_since = None
                        self._leading.clear()  # the full scan sees those files too
                        self._probed = False
                        full, self._full = self._full, False
                        reattach, self._reattach = self._reattach, set()
                        reattach |= self._moved_dirs()
                if work == "uv":
                    self._recheck_uv()
                    continue
                if work == "leading":
                    with self._work_lock:
                        self._lead(leading)
                    continue
                now = time.monotonic()
                if now >= next_poll:
                    next_poll = now + self.poll_interval
                    reattach |= self._missing | set(self._polled)
                if full:
                    next_safety = now + self.safety_interval
                for directory in sorted(reattach):
                    self._attach(directory)
                try:
                    with self._work_lock:
                        self._scan(full)
                except Exception:  # a bug: say so, and keep watching
                    log.exception("a rescan failed; the next event or the safety rescan retries")
        except Exception:  # pragma: no cover - a bug outside the scan: say so
            log.exception("the watcher stopped on an unexpected error")
            raise

    def _wait_for_work(
        self, next_safety: float, next_poll: float, next_identity: float
    ) -> tuple[str, float]:
        """Wait (holding `_cond`) until there is something to do or we stop; (what to do:
        "leading" to probe the files `_leading` names, "uv" to look at the uv processes only,
        "scan" to rescan; the next time the dirs' identity is checked)."""
        while not self._stopping:
            if self._leading:
                return "leading", next_identity
            now = time.monotonic()
            if self._dirty_since is not None and (
                now - self._last_event >= self.quiet or now - self._dirty_since >= self.max_delay
            ):
                break
            if now >= next_safety:
                self._full = True
                break
            if (self._polled or self._missing) and now >= next_poll:
                break
            if self.uv_processes and now >= self._next_uv_check:
                return "uv", next_identity  # an active uv may have parked: the gate may open
            if now >= next_identity:
                moved = self._moved_dirs()
                self._identity_every = (
                    self.identity_interval if moved
                    else min(2 * self._identity_every, max(IDENTITY_MOST, self.identity_interval))
                )  # fmt: skip
                next_identity = now + self._identity_every
                if moved:
                    break
            deadline = min(next_safety, next_identity)
            if self.uv_processes:
                deadline = min(deadline, self._next_uv_check)
            if self._polled or self._missing:
                deadline = min(deadline, next_poll)
            if self._dirty_since is not None:
                deadline = min(
                    deadline, self._last_event + self.quiet, self._dirty_since + self.max_delay
                )
            self._cond.wait(max(0.0, deadline - now))
        return "scan", next_identity

    def _recheck_uv(self) -> None:
        """Only the uv processes: ask for a rescan if the active ones differ from the last
        scan's (one parked, or exited unseen)."""
        from uvsweep import uvgate

        self._uv_recheck_now = min(self._uv_recheck_now * 2, 8 * self.uv_recheck)
        self._next_uv_check = time.monotonic() + self._uv_recheck_now
        try:
            now_active = {proc.pid for proc in uvgate.running_uv()}
        except Exception:  # a bug: say so; the next event or safety rescan still comes
            log.exception("checking the uv processes failed")
            return
        if now_active != {proc.pid for proc in self.uv_processes}:
            with self._cond:
                self._mark_dirty()

    def _start_sources(self) -> None:
        from uvsweep import procwait

        waiter_factory = self._waiter_factory or procwait.for_platform
        self._waiter = waiter_factory(self._on_process_exit)
        self._waiter.start()
        for directory in self.dirs:
            self._attach(directory)

    @staticmethod
    def _identify(directory: str) -> tuple[str, int, int] | None:
        try:
            info = os.stat(directory)
        except OSError:
            return None
        return os.path.realpath(directory), info.st_dev, info.st_ino

    def _moved_dirs(self) -> set[str]:
        """Watched dirs that now resolve elsewhere (a symlink changed, the dir was replaced)."""
        return {d for d, known in self._identity.items() if self._identify(d) != known}

    def _fs_watch(self) -> FsWatch:
        if self._fs is None:
            if self._fs_watch_factory is not None:
                self._fs = self._fs_watch_factory()
            else:
                from uvsweep.fswatch import WatchdogFsWatch

                self._fs = WatchdogFsWatch()
        return self._fs

    def _attach(self, directory: str) -> None:
        """Watch `directory`; if it is missing, watch for it to appear; if the OS refuses, poll."""
        if self._stopping:
            return
        self._identity.pop(directory, None)
        try:
            fs = self._fs_watch()
            if os.path.isdir(directory):
                if not os.access(directory, os.R_OK | os.X_OK):
                    if directory in self._polled:
                        return  # polled already, and said so
                    # inotify refuses it too, and watchdog would say nothing: poll
                    raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), directory)
                identity = self._identify(directory)
                fs.attach(directory, self._on_fs_event)
                if identity is not None:
                    self._identity[directory] = identity
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
            why = f"{limit} reached ({system.reason(err)}); raise fs.inotify.max_user_" + (
                "watches" if err.errno == errno.ENOSPC else "instances"
            )
        else:
            why = system.reason(err)
        if self._polled.get(directory) != why:
            self._polled[directory] = why
            self._warn(f"{directory}: cannot watch it ({why}): polling every"
                       f" {self.poll_interval:g} s instead")  # fmt: skip

    def _warn(self, message: str) -> None:
        log.warning(message)
        self.warnings.append(message)
        if self.on_warning is not None:
            self.on_warning(message)

    def _backend(self, table: ProcessTable, *, leading: bool = False) -> Backend:
        from uvsweep import probe

        backend = probe.for_platform(processes=table)
        backend.before_open = self._before_open
        # a full rescan opens no file where the lock table decides; a leading probe opens its
        # few files and reads the lock table only where their try-locks leave a doubt
        backend.quiet = not leading
        backend.lazy_table = leading
        return backend

    def _lead(self, paths: set[str]) -> None:
        """Probe `paths` (holding `_work_lock`); a failure is logged: the full rescan follows."""
        try:
            self._probe_leading(paths)
        except Exception:  # a bug: say so; the full rescan that follows still comes
            log.exception("probing %s failed", sorted(paths))

    def _probe_leading(self, paths: set[str]) -> None:
        """Probe the files the first events named, alone, and publish the last snapshot with
        them as they are now (added, changed or gone); the full rescan follows regardless."""
        previous = self.snapshot
        if previous is None:
            return  # the first full scan is still due: it sees them
        ours = [path for path in paths if os.path.dirname(path) in self.dirs]
        if not ours:
            return
        from uvsweep import scanner
        from uvsweep.processes import ProcessTable

        table = ProcessTable()
        snapshot = scanner.rescan_files(previous, ours, backend=self._backend(table, leading=True),
                                        processes=table, labeller=self._labels())  # fmt: skip
        self.probes += 1
        change = diff(previous, snapshot)
        if not change and previous.errors == snapshot.errors:
            return
        self.snapshot = snapshot
        self._publish(snapshot, change)

    def _labels(self) -> Labeller | None:
        """The labeller kept between scans (None: labels are off)."""
        if not self.label:
            return None
        if self._labeller is None:
            from uvsweep.scanner import Labeller

            project_dirs = self.settings.project_dirs if self.settings else ()
            self._labeller = Labeller(project_dirs, retry=5.0)
        return self._labeller

    def _scan(self, full: bool) -> None:
        from uvsweep import scanner, uvgate
        from uvsweep.processes import ProcessTable

        table = ProcessTable()
        labeller = self._labels()
        if full and labeller is not None:
            labeller.forget()  # a full rescan also looks again for what each file guards
        snapshot = scanner.scan(self.dirs, settings=self.settings, backend=self._backend(table),
                                processes=table, label=self.label, labeller=labeller)  # fmt: skip
        self._poll_unreadable(snapshot)
        notes = tuple(f"{d}: polled ({why})" for d, why in sorted(self._polled.items()))
        if notes:
            snapshot = snapshot.replace(notes=snapshot.notes + notes)  # type: ignore[assignment]
        before = {p.pid for p in self.uv_processes}
        self.uv_processes = uvgate.running_uv(table)  # the active ones: what the gate waits for
        if before != {p.pid for p in self.uv_processes}:
            self._uv_recheck_now = self.uv_recheck
        self._next_uv_check = time.monotonic() + self._uv_recheck_now
        if self._waiter is not None:
            self._waiter.watch(p.pid for p in self.uv_processes)
        previous, self.snapshot = self.snapshot, snapshot
        self.scans += 1
        change = diff(previous, snapshot)
        uv_changed = before != {p.pid for p in self.uv_processes}
        if previous is None or change or uv_changed or previous.errors != snapshot.errors:
            self._publish(snapshot, change)
        self._publish(snapshot, change, self._every_rescan)

    def _poll_unreadable(self, snapshot: Snapshot) -> None:
        """A watched dir the scan could not read (chmod 000) is polled until it can: its
        watch may live on, but says nothing of the change that makes it readable again."""
        failed = {error.path: error.message for error in snapshot.errors}
        for directory in self.dirs:
            if directory in failed and directory not in self._missing | set(self._polled):
                self._polled[directory] = failed[directory]
                self._warn(f"{directory}: cannot read it ({failed[directory]}): polling every"
                           f" {self.poll_interval:g} s until it can be read")  # fmt: skip

    def _publish(
        self, snapshot: Snapshot, change: Change, to: list[Subscriber] | None = None
    ) -> None:
        with self._cond:
            subscribers = list(self._subscribers if to is None else to)
        for subscriber in subscribers:
            try:
                subscriber(snapshot, change)
            except Exception:  # one bad subscriber must not silence the others
                log.exception("a watcher subscriber failed")
