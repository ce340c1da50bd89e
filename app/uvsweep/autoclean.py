"""Automatic cleanup, "clean when uv is idle": a subscriber to the watcher's rescans.

The watcher only decides when to look again. After each of its full rescans, `AutoClean` decides
whether a cleanup is due: orphaned files at least `min_age` old, and no active uv process (the
watcher's `uv_processes`: what the cleaner's gate waits for). Then it runs the safe cleanup (gate
included) on the watcher's worker, so no rescan runs meanwhile and the next one sees what it
removed. The tray ("Clean automatically") and `watch --clean-when-idle` attach one.
"""
# ruff: noqa: PLC0415 - imports inside functions: only the path that needs a module pays for it

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

from uvsweep.model import Change, CleanResult, LockState, Snapshot

TYPE_CHECKING = False
if TYPE_CHECKING:
    from uvsweep.watcher import Watcher

log = logging.getLogger("uvsweep.autoclean")

#: Runs a cleanup; given the dirs, returns its report.
Cleaner = Callable[[Sequence[str]], CleanResult]

#: How long a file a cleanup kept though nobody uses it (in a dir where only private files may
#: go, an unlink the OS refused: `orphaned` in the next scan all the same) is left out of
#: `wanted` (seconds). Retrying at every rescan would clean in a loop: a cleanup's own opens
#: and locks are file events that bring the next rescan.
RETRY_KEPT = 300.0

#: How much longer a watcher's `stop()` waits for a cleanup that is handing its locks to a keeper.
HANDOFF_GRACE = 20.0


class AutoClean:
    """The policy "clean automatically when uv is idle", for the watcher it is attached to.

    `clean` runs the cleanup (default: `cleaner.clean` with `min_age`); `enabled` turns the
    policy off and on while it stays attached (the tray's menu toggle).
    """

    def __init__(self, min_age: float = 0.0, clean: Cleaner | None = None) -> None:
        self.min_age = min_age
        self.clean = clean
        self.enabled = True
        self.last_report: CleanResult | None = None
        self._kept: dict[str, float] = {}  # path: when the last cleanup kept it as orphaned

    def wanted(self, snapshot: Snapshot, uv_running: bool, now: float) -> bool:
        """Whether a cleanup is due now."""
        return not uv_running and any(
            item.state is LockState.ORPHANED
            and now - item.mtime >= self.min_age
            and now - self._kept.get(item.path, now - RETRY_KEPT) >= RETRY_KEPT
            for item in snapshot.files
        )

    def run(self, dirs: Sequence[str]) -> CleanResult:
        """Clean, and remember the report."""
        if self.clean is None:
            from uvsweep import cleaner  # the removal code, only when it runs

            self.last_report = cleaner.clean(dirs, min_age=self.min_age)
        else:
            self.last_report = self.clean(dirs)
        now = time.time()
        self._kept = {
            skip.path: now for skip in self.last_report.skipped
            if skip.state is LockState.ORPHANED
        }  # fmt: skip
        return self.last_report

    def attach(self, watcher: Watcher) -> Callable[[], None]:
        """Look at every full rescan of `watcher` from now on, and let its `stop()` hand a
        cleanup's locks over to a keeper first. Returns a function that detaches."""

        def on_rescan(snapshot: Snapshot, _change: Change) -> None:
            if not self.enabled or not self.wanted(
                snapshot, bool(watcher.uv_processes), time.time()
            ):
                return
            try:
                self.run(watcher.dirs)
            except Exception:  # a cleanup that fails must not take the watcher down
                log.exception("automatic cleanup failed")

        watcher.on_stop(_stop_removals)
        return watcher.subscribe(on_rescan, every_rescan=True)


def _stop_removals() -> float:
    """Ask a cleanup under way to hand its locks to a keeper at once; the extra seconds its
    watcher's `stop()` may then wait for it."""
    from uvsweep import remove  # imported by the cleaner already

    return HANDOFF_GRACE if remove.request_stop() else 0.0
