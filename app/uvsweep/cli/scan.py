"""`scan` and `doctor`: what is in the temp dirs, and what uvsweep sees of this machine."""
# ruff: noqa: PLC0415 - each command imports what it alone needs (start-up time)

from __future__ import annotations

import os
import time

from uvsweep.cli.main import Console, ExitStatus, UsageError
from uvsweep.model import LockState, hidden_processes_text

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence


def parse_states(values: Sequence[str]) -> frozenset[LockState]:
    """`--fail-on` values (repeatable, comma-separated) -> the states they name."""
    states = set()
    for value in values:
        if not value.strip(" ,"):
            raise UsageError("--fail-on: name at least one state (e.g. --fail-on orphaned)")
        for raw in value.split(","):
            word = raw.strip().lower()
            if not word:
                continue
            try:
                states.add(LockState(word))
            except ValueError:
                choices = ", ".join(s.value for s in LockState)
                raise UsageError(
                    f"--fail-on: unknown state {word!r} (choose from {choices})"
                ) from None
    return frozenset(states)


def cmd_scan(args: argparse.Namespace, console: Console) -> ExitStatus:
    """List every uv lock file in the temp dirs with its state."""
    from uvsweep import report, scanner, settings
    from uvsweep.locations import tmpdir_warning

    fail_on = parse_states(args.fail_on or ())
    config = settings.load()
    console.notes(config.warnings)
    dirs = scanner.resolve_dirs(args.dirs, config)
    snapshot = scanner.scan(dirs, settings=config, label=not args.no_labels)
    now = time.time()
    tmp_warning = tmpdir_warning()
    if tmp_warning:
        console.note(f"warning: {tmp_warning}")
    notes = gate_notes()
    console.errors(snapshot.errors)
    colours = console.painter()
    console.report(args.json, lambda: report.snapshot_json(snapshot, now, notes=notes),
                   lambda: report.snapshot_text(snapshot, now, paint=colours))  # fmt: skip
    if not args.json:
        console.notes(notes, prefix="note: ")
    if not args.json and snapshot.hidden_processes and snapshot.files:
        hidden = hidden_processes_text(snapshot.hidden_processes, os.geteuid() == 0)
        console.note(f"note: the open files of {hidden} could not be inspected.")
    if fail_on and snapshot.in_states(fail_on):
        return ExitStatus.FOUND
    if snapshot.errors:
        return ExitStatus.PARTIAL
    return ExitStatus.OK


def gate_notes() -> tuple[str, ...]:
    """What the uv gate cannot see here (hidepid, a child PID namespace), without a process
    walk."""
    from uvsweep import uvgate  # not the cleaner: scan stays light
    from uvsweep.processes import ProcessTable

    return uvgate.hidden_notes(ProcessTable())


def cmd_doctor(args: argparse.Namespace, console: Console) -> ExitStatus:
    """Say what uvsweep sees of this machine and why it chose what it chose."""
    from uvsweep import doctor

    info = doctor.report()
    console.report(args.json, lambda: info, lambda: doctor.text(info))
    return ExitStatus.OK
