"""Safe cleanup: the uv process gate, then the removal protocol (or, dry, what it would do).

The gate comes first: while an *active* uv process of any user is alive, nothing is removed,
because a uv that is about to take a lock is invisible to every per-file check. A *parked* uv (one
that has spawned the command it runs and only waits for it: `uv run`, `uvx`...) takes no temp-dir
lock again, so it is listed but never waited for (the gate: `uvgate.py`; the rules and uv's
source: `uvphase.py`). uvsweep's own ancestors (`uv run uvsweep clean`, `uvx uvsweep clean`) do
not count; the files they use are still protected by the per-file checks like any other.
"""
# ruff: noqa: PLC0415 - imports inside functions: only the path that needs a module pays for it

from __future__ import annotations

import time
from collections.abc import Sequence

from uvsweep import visibility
from uvsweep.model import CleanResult, LockState
from uvsweep.processes import ProcessTable
from uvsweep.remove import FOREIGN_FILE, Policy, Progress, Remover
from uvsweep.uvgate import Gate, hidden_notes, running_uv, uv_gate
from uvsweep.visibility import Visibility

TYPE_CHECKING = False
if TYPE_CHECKING:
    from uvsweep.probe import Backend

__all__ = [
    "CleanResult", "Gate", "accepts_hidden_processes", "clean", "hidden_notes",
    "running_uv", "uv_gate",
]  # fmt: skip


def accepts_hidden_processes() -> bool:
    """`UVSWEEP_ACCEPT_HIDDEN_PROCESSES=1`: the user accepts that hidden processes go unseen
    (as `clean --accept-hidden-processes`; for containers, where it is set once in the image)."""
    import os

    return os.environ.get("UVSWEEP_ACCEPT_HIDDEN_PROCESSES") == "1"


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
    backend: Backend | None = None,
) -> CleanResult:
    """Remove the orphaned uv lock files in `dirs` that `min_age`/`all_users` allow.

    `gate=False` skips the uv process check (the per-file protocol still applies to each file).
    Where processes are hidden from us (`visibility`), a child PID namespace's /proc removes
    nothing and hidepid removes only files in dirs no other user can enter, unless
    `accept_hidden`. `processes`, `remover`, `seen` and `backend` (the dry run's probe) are
    the OS seams: tests give another OS's.
    """
    report = CleanResult(dirs, dry_run)
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
        found = uv_gate(processes, seen)
        report.uv_processes = list(found.processes)
        report.gate_notes = list(found.notes)
        report.busy = bool(found.active)
    if dry_run:
        _dry_run(report, dirs, policy, processes, remover, backend)
        return report
    if report.busy or report.blind:
        return report
    if remover is None:
        from uvsweep import remove

        remover = remove.for_platform(progress=progress, processes=processes)
    remover.remove(dirs, policy, report)
    report.skipped.sort(key=lambda skipped: skipped.path)
    return report


def _dry_run(
    report: CleanResult,
    dirs: Sequence[str],
    policy: Policy,
    processes: ProcessTable,
    remover: Remover | None,
    backend: Backend | None,
) -> None:
    """What a real run would remove now (if uv were idle), and why the rest would stay: the
    scan's states, then the policy's rule (`Policy.may_remove`), as the remover applies them."""
    import os

    from uvsweep import scanner

    snapshot = scanner.scan(dirs, processes=processes, label=False, backend=backend)
    report.errors = list(snapshot.errors)
    report.hidden_processes = snapshot.hidden_processes
    for note in snapshot.notes:
        report.note(note)
    if remover is None:
        from uvsweep import remove

        remover = remove.for_platform(processes=processes)
    privileged = remover.privileged()
    now = time.time()
    for item in sorted(snapshot.files, key=lambda f: f.path):
        if item.state not in (LockState.ORPHANED, LockState.FOREIGN):
            report.skip(item.path, item.state, item.reason)  # in use, or odd: never touched
            continue
        why = policy.may_remove(
            mine=item.state is LockState.ORPHANED, privileged=privileged,
            age=now - item.mtime, directory=os.path.dirname(item.path),
        )  # fmt: skip
        if why == FOREIGN_FILE:
            report.skip(item.path, item.state, item.reason)
        elif why or report.blind:
            report.skip(item.path, item.state, why or report.blind)
        else:
            report.removed.append(item.path)
