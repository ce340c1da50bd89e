"""`clean`: the gate, the wait for idle uv, and the report of what was removed and kept."""
# ruff: noqa: PLC0415 - each command imports what it alone needs (start-up time)

from __future__ import annotations

import os
import time

from uvsweep.cli.main import Console, ExitStatus, UsageError
from uvsweep.model import hidden_processes_text

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse


class Status:
    """One line of progress on stderr: rewritten in place on a terminal, else printed sparingly."""

    def __init__(self, console: Console) -> None:
        self.console = console
        try:
            self.tty = console.stderr.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        self.last = ""
        self.key: object = None
        self.printed_at = 0.0

    def show(self, message: str, key: object) -> None:
        """Show `message`; off a terminal, only when `key` changes or every 30 s."""
        if self.console.quiet:
            return
        stream = self.console.stderr
        if self.tty:
            stream.write("\r\x1b[K" + message)
            stream.flush()
        elif key != self.key or time.monotonic() - self.printed_at > 30:
            stream.write(message + "\n")
            stream.flush()
            self.printed_at = time.monotonic()
        self.key = key
        self.last = message

    def done(self) -> None:
        if self.tty and self.last:
            self.console.stderr.write("\r\x1b[K")
            self.console.stderr.flush()
        self.last = ""


def wait_for_idle(limit: float | None, status: Status) -> bool:
    """Wait until no *active* uv process is alive (parked ones only wait for the command they
    run, and are never waited for); False if `limit` seconds pass first."""
    from uvsweep import cleaner
    from uvsweep.report import process_line

    began = time.monotonic()
    try:
        while True:
            running = cleaner.running_uv()
            if not running:
                return True
            waited = time.monotonic() - began
            if limit is not None and waited >= limit:
                return False
            first = process_line(running[0], time.time())
            more = f" and {len(running) - 1} more" if len(running) > 1 else ""
            status.show(
                f"waiting for uv to finish: {first}{more} [{int(waited)}s]",
                key=frozenset(proc.pid for proc in running),
            )
            time.sleep(0.25)
    finally:
        status.done()


def cmd_clean(args: argparse.Namespace, console: Console) -> ExitStatus:
    """Safely remove orphaned uv lock files."""
    from uvsweep import cleaner, report, scanner, settings
    from uvsweep.probe.posix import ignore_lease_breaks

    ignore_lease_breaks()  # this process's removals' leases then need no signal of their own
    if args.all_users and hasattr(os, "geteuid") and os.geteuid() != 0:
        raise UsageError(
            "--all-users needs root: other users' lock files can only be removed by root "
            "(without it, your own orphaned files are removed)"
        )
    config = settings.load()
    console.notes(config.warnings)
    dirs = scanner.resolve_dirs(args.dirs, config)
    status = Status(console)
    waiting = args.wait is not None
    limit = None if args.wait in (None, float("inf")) else args.wait
    began = time.monotonic()
    while True:
        outcome = cleaner.clean(
            dirs,
            min_age=args.min_age,
            all_users=args.all_users,
            dry_run=args.dry_run,
            gate=not args.ignore_running_uv,
            progress=console.note,
            accept_hidden=args.accept_hidden_processes or None,
        )
        if not (outcome.busy and waiting and not args.dry_run):
            break
        remaining = None if limit is None else max(0.0, limit - (time.monotonic() - began))
        if (remaining is not None and remaining <= 0) or not wait_for_idle(remaining, status):
            break  # still busy after --wait's limit: report it below
    now = time.time()
    console.errors(outcome.errors)
    colours = console.painter()
    console.report(args.json, lambda: report.clean_json(outcome, now),
                   lambda: report.clean_text(outcome, now, paint=colours))  # fmt: skip
    console.notes([*outcome.gate_notes, *outcome.notes], prefix="note: ")
    if outcome.hidden_processes and not outcome.busy:
        hidden = hidden_processes_text(outcome.hidden_processes, os.geteuid() == 0)
        console.note(
            f"note: the open files of {hidden} could not be inspected; every user's locks, waits"
            " and uv processes were, and the kernel's write lease was asked about each removed"
            " file (a note says where it could not be)"
        )
    if outcome.keepers:
        pids = ", ".join(str(pid) for pid in outcome.keepers)
        console.note(
            f"note: a uvsweep keeper (pid {pids}) holds the lock at the names of files a process"
            " opened during removal, until that process is done with the old file"
        )
    if outcome.busy:
        return ExitStatus.BUSY
    if outcome.blind:
        console.err(f"nothing removed: {outcome.blind} (--accept-hidden-processes to clean"
                    " anyway)")  # fmt: skip
        return ExitStatus.HIDDEN
    if outcome.errors:
        return ExitStatus.PARTIAL
    return ExitStatus.OK
