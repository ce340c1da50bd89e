"""Snapshot -> what people and machines read: the `scan --json` document and the text table."""
# ruff: noqa: PLC0415 - imports inside functions: only the path that needs a module pays for it

from __future__ import annotations

from uvsweep.model import LockFile, LockState, LockUser, Snapshot, format_age, plural

TYPE_CHECKING = False  # typing costs ~3 ms to import; annotations only need it for mypy
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any

    from uvsweep.model import Change, CleanResult, ProcessInfo

    #: colours a word by its role (a state's name, `error`...): `colour.painter`'s result
    Paint = Callable[[str, str], str]


JSON_VERSION = 1


def holder_json(holder: LockUser) -> dict[str, Any]:
    """One holder/waiter; null for whatever the OS hid."""
    return {
        "pid": holder.pid,
        "name": holder.name,
        "user": holder.user,
        "cmdline": list(holder.cmdline) if holder.cmdline is not None else None,
        "alive": holder.alive,
    }


def file_json(item: LockFile, now: float) -> dict[str, Any]:
    """One file, in the documented schema."""
    return {
        "path": item.path,
        "name": item.name,
        "state": item.state.value,
        "age_seconds": round(max(0.0, now - item.mtime), 3),
        "size": item.size,
        "owner": item.owner,
        "label": label_json(item),
        "holders": [holder_json(h) for h in item.holders],
        "waiters": [holder_json(h) for h in item.waiters],
        "reason": item.reason,
        "blocks_uv": item.blocks_uv if item.state is LockState.FOREIGN else None,
    }


def label_json(item: LockFile) -> dict[str, Any] | None:
    """`{"kind", "path"}`; `path` is null for a build lock whose source tree is gone."""
    if item.label is None:
        return None
    return {"kind": item.label.kind.value, "path": item.label.path or None}


def snapshot_json(snapshot: Snapshot, now: float, notes: Sequence[str] = ()) -> dict[str, Any]:
    """The whole `scan --json` document (schema version 1, documented in the README); `notes`
    (with the snapshot's own): what uvsweep could not see (hidden processes)."""
    return {
        "version": JSON_VERSION,
        "dirs": list(snapshot.dirs),
        "files": [file_json(item, now) for item in snapshot.files],
        "summary": snapshot.summary(),
        "errors": [{"path": err.path, "message": err.message} for err in snapshot.errors],
        "notes": [*snapshot.notes, *(note for note in notes if note not in snapshot.notes)],
    }


def _who(item: LockFile) -> str:
    if item.state is LockState.HELD:
        text = item.holders[0].describe() if item.holders else "unknown"
        if item.waiters:
            text += f", {len(item.waiters)} waiting"
        return text
    if item.state is LockState.WAITING:
        return "waiting: " + ", ".join(w.describe() for w in item.waiters)
    if item.state is LockState.OPEN and item.openers:
        return "open: " + item.openers[0].describe()
    return "-"


def label_text(item: LockFile) -> str:
    """What a file guards, in words: `project /x`, `build (source tree gone)`, `unknown`."""
    if item.label is None:
        return "unknown"
    return f"{item.label.kind.value} {item.label.path or '(source tree gone)'}"


def _names(items: Sequence[str]) -> str:
    """`/a`, `/a and /b`, `/a, /b and /c`."""
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def summary_line(snapshot: Snapshot) -> str:
    """`5 uv lock files in /tmp and /var/tmp: 3 orphaned, 1 held, 1 foreign`, naming the dirs
    that were scanned (not those that could not be: their errors say so); empty when none was."""
    failed = {err.path for err in snapshot.errors}
    scanned = [d for d in snapshot.dirs if d not in failed]
    if not scanned:
        return ""
    where = _names(scanned)
    total = len(snapshot.files)
    if not total:
        return f"No uv lock files in {where}."
    counts = ", ".join(f"{count} {state}" for state, count in snapshot.summary().items() if count)
    return f"{plural(total, 'uv lock file')} in {where}: {counts}."


def _painted(paint: Paint | None, text: str, role: str) -> str:
    return paint(text, role) if paint else text


def snapshot_text(snapshot: Snapshot, now: float, paint: Paint | None = None) -> str:
    """The table people read: state, age, what it guards, who holds it, where it is; `paint`
    colours the states (a terminal's)."""
    rows = [("STATE", "AGE", "GUARDS", "HOLDER", "PATH")]
    rows += [
        (item.state.value, format_age(now - item.mtime), label_text(item), _who(item), item.path)
        for item in snapshot.files
    ]
    lines = []
    if snapshot.files:
        widths = [max(len(row[col]) for row in rows) for col in range(4)]
        lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4]
                 for row in rows]  # fmt: skip
        if paint:  # after the padding: the escape codes take no columns
            lines = [lines[0]] + [
                paint(row[0], row[0]) + line[len(row[0]) :]
                for row, line in zip(rows[1:], lines[1:], strict=True)
            ]
        explained = [
            f for f in snapshot.files if f.state in (LockState.FOREIGN, LockState.SUSPICIOUS)
        ]
        if explained:
            lines.append("")
            lines += [f"{_painted(paint, item.state.value, item.state.value)}: {item.path}:"
                      f" {item.reason}" for item in explained]  # fmt: skip
        lines.append("")
    summary = summary_line(snapshot)
    if summary:
        lines.append(summary)
    return "\n".join(lines).rstrip("\n")


# ---- clean ------------------------------------------------------------------------------------


def process_json(proc: ProcessInfo, now: float) -> dict[str, Any]:
    """One running uv process, as `clean --json` lists it; null for whatever the OS hid."""
    return {
        "pid": proc.pid,
        "user": proc.user,
        "name": proc.name,
        "age_seconds": round(max(0.0, now - proc.started), 3) if proc.started else None,
        "cmdline": list(proc.cmdline) if proc.cmdline is not None else None,
        "phase": proc.phase,
        "phase_reason": proc.phase_reason,
    }


def clean_json(report: CleanResult, now: float) -> dict[str, Any]:
    """The `clean --json` document (version 1, documented in the README)."""
    return {
        "version": JSON_VERSION,
        "dry_run": report.dry_run,
        "removed": list(report.removed),
        "skipped": [
            {"path": s.path, "state": s.state.value, "reason": s.reason} for s in report.skipped
        ],
        "errors": [{"path": err.path, "message": err.message} for err in report.errors],
        "uv_processes": [process_json(p, now) for p in report.uv_processes],
        "handoffs": report.handoffs,
        "keepers": list(report.keepers),
        "hidden": report.blind or None,
        "notes": [*report.gate_notes, *report.notes],
    }


def process_line(proc: ProcessInfo, now: float) -> str:
    """`pid 4242  alice  3m  uv sync --project x` (cut to a readable length)."""
    age = format_age(now - proc.started) if proc.started else "?"
    command = " ".join(proc.cmdline) if proc.cmdline else (proc.name or "?")
    if len(command) > 100:
        command = command[:97] + "..."
    return f"pid {proc.pid}  {proc.user or '?'}  {age}  {command}"


def process_lines(procs: Sequence[ProcessInfo], now: float) -> list[str]:
    """Each uv process on a line (`process_line`), its phase and the reason on the next."""
    lines = []
    for proc in procs:
        lines.append(f"  {process_line(proc, now)}")
        lines.append(f"    {proc.phase}: {proc.phase_reason}" if proc.phase_reason else "")
    return [line for line in lines if line]


def parked_text(procs: Sequence[ProcessInfo], now: float) -> list[str]:
    """The parked uv processes, which the gate lists but never waits for."""
    parked = [proc for proc in procs if not proc.active]
    if not parked:
        return []
    noun = "process" if len(parked) == 1 else "processes"
    head = f"Not waited for: {len(parked)} parked uv {noun} (each only waits for its command):"
    return [head, *process_lines(parked, now)]


def _files(count: int) -> str:
    return f"{count} uv lock file" + ("" if count == 1 else "s")


def clean_text(report: CleanResult, now: float, paint: Paint | None = None) -> str:
    """What `clean` tells people: the uv processes in the way, or what went and what stayed."""
    lines: list[str] = []
    parked = parked_text(report.uv_processes, now)
    if report.active_uv:
        lines.append(
            "uv is running, so nothing was removed:"
            if not report.dry_run
            else "uv is running, so a real run would remove nothing now:"
        )
        lines += process_lines(report.active_uv, now)
        lines.append("Run again when it is done, or pass --wait to wait for it.")
        if not report.dry_run:
            return "\n".join([*lines, *parked])
        lines.append("")
    verb = "Would remove" if report.dry_run else "Removed"
    if report.removed:
        lines.append(f"{verb} {_files(len(report.removed))}:")
        lines += [f"  {path}" for path in report.removed]
    else:
        lines.append(f"{verb} nothing.")
    if report.skipped:
        lines.append(f"{'Would keep' if report.dry_run else 'Kept'} {len(report.skipped)}:")
        width = max(len(s.state.value) for s in report.skipped)
        lines += [
            f"  {_painted(paint, s.state.value, s.state.value)}{' ' * (width - len(s.state.value))}"
            f"  {s.path}: {s.reason}"
            for s in report.skipped
        ]
    if parked:
        lines += parked
    return "\n".join(lines)


# ---- watch ------------------------------------------------------------------------------------


def watch_events(
    snapshot: Snapshot, change: Change, previous: Snapshot | None, now: float
) -> list[dict[str, Any]]:
    """The `watch --json` lines for one new snapshot (schema version 1, in the README)."""
    base = {"version": JSON_VERSION, "time": round(now, 3)}
    errors = [{"path": err.path, "message": err.message} for err in snapshot.errors]
    if previous is None:
        return [
            {**base, "event": "initial", "dirs": list(snapshot.dirs),
             "summary": snapshot.summary(), "files": [file_json(f, now) for f in snapshot.files],
             "errors": errors},
        ]  # fmt: skip
    lines: list[dict[str, Any]] = []
    lines += [{**base, "event": "added", "file": file_json(f, now)} for f in change.added]
    lines += [
        {**base, "event": "changed", "previous_state": before.state.value,
         "file": file_json(after, now)}
        for before, after in change.changed
    ]  # fmt: skip
    lines += [{**base, "event": "updated", "file": file_json(after, now)}
              for _before, after in change.updated]  # fmt: skip
    lines += [
        {**base, "event": "removed", "path": f.path, "state": f.state.value} for f in change.removed
    ]
    if snapshot.errors != previous.errors:
        lines.append({**base, "event": "errors", "errors": errors})
    return lines


def watch_lines(
    snapshot: Snapshot, change: Change, previous: Snapshot | None, now: float
) -> list[str]:
    """The text `watch` prints for one new snapshot: a line per change."""
    import time

    if previous is None:
        summary = summary_line(snapshot)
        return ([summary] if summary else []) + [
            f"error: {err.path}: {err.message}" for err in snapshot.errors
        ]
    clock = time.strftime("%H:%M:%S", time.localtime(now))
    lines = [
        f"{clock} + {item.state.value:<10} {item.path}  ({label_text(item)})"
        for item in change.added
    ]
    for before, after in change.changed:
        who = _who(after)
        extra = f"  ({who})" if who != "-" else ""
        lines.append(f"{clock} ~ {before.state.value} -> {after.state.value}  {after.path}{extra}")
    for _before, after in change.updated:
        lines.append(f"{clock} ~ {after.state.value}  {after.path}  ({_who(after)})")
    lines += [f"{clock} - {item.path}" for item in change.removed]
    if snapshot.errors != previous.errors:
        lines += [f"{clock} ! {err.path}: {err.message}" for err in snapshot.errors]
        if not snapshot.errors:
            lines.append(f"{clock} ! every dir can be read again")
    return lines
