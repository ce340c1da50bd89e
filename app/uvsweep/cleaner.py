"""Safe cleanup: the uv process gate, then the removal protocol (or, dry, what it would do).

The gate comes first: while an *active* uv process of any user is alive, nothing is removed,
because a uv that is about to take a lock is invisible to every per-file check. A *parked* uv (one
that has spawned the command it runs and only waits for it: `uv run`, `uvx`...) takes no temp-dir
lock again, so it is listed but never waited for (the rules and uv's source: `uvphase.py`).
uvsweep's own ancestors (`uv run uvsweep clean`, `uvx uvsweep clean`) do not count; the files
they use are still protected by the per-file checks like any other.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from uvsweep.model import LockState, ScanError
from uvsweep.processes import ProcessInfo, ProcessTable
from uvsweep.remove import Policy, Progress, Remover, Skipped
from uvsweep.uvgate import Gate, hidden_notes, running_uv, uv_gate

__all__ = ["REMOVABLE", "CleanReport", "Gate", "clean", "hidden_notes", "running_uv", "uv_gate"]

#: States a run may remove: orphaned always, foreign only in an all-users run.
REMOVABLE = frozenset({LockState.ORPHANED})


class CleanReport:
    """The outcome of one `clean` (mutable while it runs)."""

    def __init__(self, dirs: Sequence[str], dry_run: bool) -> None:
        self.dirs = tuple(dirs)
        self.dry_run = dry_run
        self.removed: list[str] = []  # with dry_run: what would be removed
        self.skipped: list[Skipped] = []
        self.errors: list[ScanError] = []
        self.uv_processes: list[ProcessInfo] = []  # every uv process, active and parked
        self.busy = False  # active uv processes were running, so nothing was removed
        self.gate_notes: list[str] = []  # what the gate could not see (hidden processes)
        self.hidden_processes = 0
        self.handoffs = 0
        self.notes: list[str] = []

    @property
    def active_uv(self) -> list[ProcessInfo]:
        """The uv processes the gate waited for (`busy`)."""
        return [proc for proc in self.uv_processes if proc.active]


def clean(
    dirs: Sequence[str],
    *,
    min_age: float = 0.0,
    all_users: bool = False,
    dry_run: bool = False,
    gate: bool = True,
    processes: ProcessTable | None = None,
    remover: Remover | None = None,
    progress: Progress | None = None,
) -> CleanReport:
    """Remove the orphaned uv lock files in `dirs` that `min_age`/`all_users` allow.

    `gate=False` skips the uv process check (the per-file protocol still applies to each file).
    """
    report = CleanReport(dirs, dry_run)
    processes = processes or ProcessTable()
    if gate:
        seen = uv_gate(processes)
        report.uv_processes = list(seen.processes)
        report.gate_notes = list(seen.notes)
        report.busy = bool(seen.active)
    if dry_run:
        _dry_run(report, dirs, min_age, all_users, processes)
        return report
    if report.busy:
        return report
    if remover is None:
        from uvsweep import remove  # noqa: PLC0415

        remover = remove.for_platform(progress=progress, processes=processes)
    result = remover.remove(dirs, Policy(min_age=min_age, all_users=all_users))
    report.removed = result.removed
    report.skipped = sorted(result.skipped, key=lambda s: s.path)
    report.errors = result.errors
    report.hidden_processes = result.hidden_processes
    report.handoffs = result.handoffs
    report.notes = result.notes
    return report


def _dry_run(
    report: CleanReport,
    dirs: Sequence[str],
    min_age: float,
    all_users: bool,
    processes: ProcessTable,
) -> None:
    """What a real run would remove now (if uv were idle), and why the rest would stay."""
    import os  # noqa: PLC0415

    from uvsweep import scanner  # noqa: PLC0415

    snapshot = scanner.scan(dirs, processes=processes, label=False)
    report.errors = list(snapshot.errors)
    report.hidden_processes = snapshot.hidden_processes
    report.notes = list(snapshot.notes)
    may_take_foreign = all_users and getattr(os, "geteuid", lambda: 0)() == 0
    now = time.time()
    policy = Policy(min_age=min_age, all_users=all_users)
    for item in sorted(snapshot.files, key=lambda f: f.path):
        removable = item.state in REMOVABLE or (
            item.state is LockState.FOREIGN and may_take_foreign
        )
        young = policy.too_young(now - item.mtime)
        if not removable:
            report.skipped.append(Skipped(item.path, item.state, item.reason))
        elif young:
            report.skipped.append(Skipped(item.path, item.state, young))
        else:
            report.removed.append(item.path)
