"""`watch`: a line per change to the lock files, until Ctrl-C or SIGTERM."""
# ruff: noqa: PLC0415 - each command imports what it alone needs (start-up time)

from __future__ import annotations

import time

from uvsweep.cli.main import Console, ExitStatus

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    import threading
    from collections.abc import Sequence
    from typing import Any


class WatchOutput:
    """What `watch` prints: text lines or JSON lines, flushed as they come."""

    def __init__(
        self, console: Console, as_json: bool, done: threading.Event, min_age: float | None
    ) -> None:
        self.console = console
        self.as_json = as_json
        self.done = done  # set when the reader goes away
        self.min_age = min_age
        self.previous: Any = None

    def emit(self, lines: list[str]) -> None:
        try:
            for line in lines:
                self.console.stdout.write(line + "\n")
            self.console.stdout.flush()
        except BrokenPipeError:
            self.done.set()  # the reader left: stop quietly

    def event(self, kind: str, **fields: Any) -> None:
        import json

        line = {"version": 1, "time": round(time.time(), 3), "event": kind, **fields}
        self.emit([json.dumps(line)])

    def on_change(self, snapshot: Any, change: Any) -> None:
        import json

        from uvsweep import report

        now = time.time()
        if self.as_json:
            events = report.watch_events(snapshot, change, self.previous, now)
            self.emit([json.dumps(event) for event in events])
        else:
            self.emit(report.watch_lines(snapshot, change, self.previous, now))
        self.previous = snapshot

    def on_warning(self, message: str) -> None:
        if self.as_json:
            self.event("warning", message=message)
        else:
            self.console.note(f"warning: {message}")

    def run_clean(self, where: Sequence[str]) -> Any:
        from uvsweep import cleaner, report

        outcome = cleaner.clean(where, min_age=self.min_age or 0.0)
        if self.as_json:
            self.event("cleaned", **report.clean_json(outcome, time.time()))
        elif outcome.removed:
            clock = time.strftime("%H:%M:%S")
            removed, kept = len(outcome.removed), len(outcome.skipped)
            self.emit([f"{clock} cleaned: removed {removed}, kept {kept}"])
        return outcome


def cmd_watch(args: argparse.Namespace, console: Console) -> ExitStatus:
    """Print a line for every change to the uv lock files, until Ctrl-C or SIGTERM."""
    import signal
    import threading

    from uvsweep import autoclean, scanner, settings, watcher

    config = settings.load()
    console.notes(config.warnings)
    dirs = scanner.resolve_dirs(args.dirs, config)
    done = threading.Event()
    output = WatchOutput(console, args.json, done, args.clean_when_idle)
    live = watcher.Watcher(
        dirs,
        settings=config,
        safety_interval=args.safety_interval or config.safety_rescan,
        label=not args.no_labels,
        on_warning=output.on_warning,
    )
    if args.clean_when_idle is not None:
        autoclean.AutoClean(min_age=args.clean_when_idle, clean=output.run_clean).attach(live)
    live.subscribe(output.on_change)

    def stop(_signum: int, _frame: object) -> None:
        done.set()

    previous_handlers = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        live.start()
        done.wait()  # a signal interrupts this wait on the main thread
    finally:
        live.stop()
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)
    return ExitStatus.OK
