"""The uv gate: every live uv process of any user, judged active or parked, and what it cannot see.

`cleaner.running_uv()` (re-exported from here) is what the gate waits for: the *active* uv
processes. Parked ones (a `uv run`/`uvx` that has started its command and only waits for it, the
rules in `uvphase.py`) are listed but never waited for. Kept apart from the cleaner so `scan` can
say what the gate cannot see without importing the removal code.
"""
# ruff: noqa: PLC0415 - imports inside functions: only the path that needs a module pays for it

from __future__ import annotations

from uvsweep import system
from uvsweep.model import Record, plural
from uvsweep.processes import ProcessInfo, ProcessTable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from uvsweep.visibility import Visibility


class Gate(Record):
    """What the uv gate saw: every uv process but our ancestors, and what it could not see."""

    __slots__ = ("notes", "processes")
    processes: tuple[ProcessInfo, ...]  # active and parked, each with its phase and reason
    notes: tuple[str, ...]  # one line each: processes hidden from us (hidepid, PID namespaces)

    def __init__(self, processes: tuple[ProcessInfo, ...], notes: tuple[str, ...] = ()) -> None:
        self._init(processes=processes, notes=notes)

    @property
    def active(self) -> list[ProcessInfo]:
        """The ones the gate waits for."""
        return [proc for proc in self.processes if proc.active]

    @property
    def parked(self) -> list[ProcessInfo]:
        """The ones it lists but never waits for."""
        return [proc for proc in self.processes if not proc.active]


def uv_gate(processes: ProcessTable | None = None, seen: Visibility | None = None) -> Gate:
    """Every live uv process of any user (except this process's ancestors), judged active or
    parked, with a note for each kind of process the gate cannot see (`seen`: what
    `visibility.detect()` says, if the caller has it already)."""
    table = processes or ProcessTable()
    # our pid as /proc shows it: under a parent namespace's /proc, os.getpid() is not there
    own = seen.own_pid if seen is not None else None
    found = table.uv_processes(exclude=table.ancestors(own))
    return Gate(tuple(found), hidden_notes(table, seen=seen))


def running_uv(processes: ProcessTable | None = None) -> list[ProcessInfo]:
    """What the gate waits for: the *active* uv processes of any user, except this process's
    ancestors (parked ones: `uv_gate()`)."""
    return uv_gate(processes).active


def hidden_notes(
    table: ProcessTable,
    platform: str | None = None,
    proc: str = "/proc",
    seen: Visibility | None = None,
) -> tuple[str, ...]:
    """Why the gate may miss uv processes: hidepid, a child PID namespace, or (macOS, Windows)
    processes whose details the OS denied us."""
    import sys

    if system.is_linux(platform or sys.platform):
        from uvsweep import visibility

        seen = seen or visibility.detect(proc)
        notes = []
        if not seen.sees_all_users:
            notes.append(
                f"other users' uv processes are hidden (/proc hidepid={seen.hidepid}): the uv"
                " gate cannot wait for them (root can see them)"
            )
        if not seen.sees_all_namespaces:
            notes.append(
                "uv processes outside this PID namespace are hidden: the uv gate cannot wait for"
                " them"
            )
        return tuple(notes)
    if table.denied:
        count = len(table.denied)
        note = (
            f"the details of {plural(count, 'process', 'processes')} of other users"
            f" {'was' if count == 1 else 'were'} denied: the uv gate cannot tell whether"
            f" {'it is' if count == 1 else 'they are'} uv (an administrator can)"
        )
        return (note,)
    return ()
