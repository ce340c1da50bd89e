"""Safe cleanup: the uv process gate, then the removal protocol (or, dry, what it would do).

The gate comes first: while any uv process of any user is alive, nothing is removed, because a uv
that is about to take a lock is invisible to every per-file check. uvsweep's own ancestors (`uv run
uvsweep clean`, `uvx uvsweep clean`) do not count; the files they use are still protected by the
per-file checks like any other.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from uvsweep import visibility
from uvsweep.model import LockState, ScanError
from uvsweep.processes import ProcessInfo, ProcessTable
from uvsweep.remove import Policy, Progress, Remover, Skipped
from uvsweep.visibility import Visibility

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
        self.uv_processes: list[ProcessInfo] = []
        self.busy = False  # uv processes were running, so nothing was removed
        self.hidden_processes = 0
        self.handoffs = 0
        self.keepers: list[int] = []  # keeper processes that finish this run's handoffs
        self.blind = ""  # why nothing was removed: processes that could use them are hidden
        self.notes: list[str] = []


def accepts_hidden_processes() -> bool:
    """`UVSWEEP_ACCEPT_HIDDEN_PROCESSES=1`: the user accepts that hidden processes go unseen
    (as `clean --accept-hidden-processes`; for containers, where it is set once in the image)."""
    import os  # noqa: PLC0415

    return os.environ.get("UVSWEEP_ACCEPT_HIDDEN_PROCESSES") == "1"


def running_uv(processes: ProcessTable | None = None) -> list[ProcessInfo]:
    """Live uv processes of any user, except this process's own ancestors."""
    table = processes or ProcessTable()
    return table.uv_processes(exclude=table.ancestors())


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
    accept_hidden: bool | None = None,
    seen: Visibility | None = None,
) -> CleanReport:
    """Remove the orphaned uv lock files in `dirs` that `min_age`/`all_users` allow.

    `gate=False` skips the uv process check (the per-file protocol still applies to each file).
    Where processes are hidden from us (`visibility`), a child PID namespace's /proc removes
    nothing and hidepid removes only files in dirs no other user can enter, unless
    `accept_hidden`.
    """
    report = CleanReport(dirs, dry_run)
    processes = processes or ProcessTable()
    if accept_hidden is None:
        accept_hidden = accepts_hidden_processes()
    seen = seen or visibility.detect()
    report.notes.extend(seen.notes)
    policy = Policy(min_age=min_age, all_users=all_users)
    if not accept_hidden:
        if not seen.sees_all_namespaces:
            report.blind = (
                "processes outside this PID namespace are hidden, and any of them could have a"
                " file open"
            )
        elif not seen.sees_all_users:
            policy.private_dirs_only = (
                f"/proc's hidepid={seen.hidepid} hides other users' processes"
            )
    if gate:
        report.uv_processes = running_uv(processes)
        report.busy = bool(report.uv_processes)
    if dry_run:
        _dry_run(report, dirs, policy, processes)
        return report
    if report.busy or report.blind:
        return report
    if remover is None:
        from uvsweep import remove  # noqa: PLC0415

        remover = remove.for_platform(progress=progress, processes=processes)
    result = remover.remove(dirs, policy)
    report.removed = result.removed
    report.skipped = sorted(result.skipped, key=lambda s: s.path)
    report.errors = result.errors
    report.hidden_processes = result.hidden_processes
    report.handoffs = result.handoffs
    report.keepers = result.keepers
    report.notes.extend(note for note in result.notes if note not in report.notes)
    return report


def _dry_run(
    report: CleanReport, dirs: Sequence[str], policy: Policy, processes: ProcessTable
) -> None:
    """What a real run would remove now (if uv were idle), and why the rest would stay."""
    import os  # noqa: PLC0415

    from uvsweep import scanner  # noqa: PLC0415

    snapshot = scanner.scan(dirs, processes=processes, label=False)
    report.errors = list(snapshot.errors)
    report.hidden_processes = snapshot.hidden_processes
    report.notes.extend(note for note in snapshot.notes if note not in report.notes)
    may_take_foreign = policy.all_users and getattr(os, "geteuid", lambda: 0)() == 0
    now = time.time()
    for item in sorted(snapshot.files, key=lambda f: f.path):
        removable = item.state in REMOVABLE or (
            item.state is LockState.FOREIGN and may_take_foreign
        )
        young = policy.too_young(now - item.mtime)
        hidden = policy.kept_by_visibility(os.path.dirname(item.path), None)
        if not removable:
            report.skipped.append(Skipped(item.path, item.state, item.reason))
        elif young or hidden or report.blind:
            report.skipped.append(Skipped(item.path, item.state, young or hidden or report.blind))
        else:
            report.removed.append(item.path)
