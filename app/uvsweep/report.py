"""Snapshot -> what people and machines read: the `scan --json` document and the text table."""

from __future__ import annotations

from uvsweep.model import Holder, LockFile, LockState, Snapshot

TYPE_CHECKING = False  # typing costs ~3 ms to import; annotations only need it for mypy
if TYPE_CHECKING:
    from typing import Any

JSON_VERSION = 1


def format_age(seconds: float) -> str:
    """A short age: `42s`, `5m`, `3h`, `12d`."""
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def holder_json(holder: Holder) -> dict[str, Any]:
    """One holder/waiter; null for whatever the OS hid."""
    return {
        "pid": holder.pid,
        "name": holder.name,
        "user": holder.user,
        "cmdline": list(holder.cmdline) if holder.cmdline is not None else None,
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
        "label": {"kind": item.label.kind.value, "path": item.label.path} if item.label else None,
        "holders": [holder_json(h) for h in item.holders],
        "waiters": [holder_json(h) for h in item.waiters],
    }


def snapshot_json(snapshot: Snapshot, now: float) -> dict[str, Any]:
    """The whole `scan --json` document (schema version 1, documented in the README)."""
    return {
        "version": JSON_VERSION,
        "dirs": list(snapshot.dirs),
        "files": [file_json(item, now) for item in snapshot.files],
        "summary": snapshot.summary(),
        "errors": [{"path": err.path, "message": err.message} for err in snapshot.errors],
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


def _label(item: LockFile) -> str:
    return f"{item.label.kind.value} {item.label.path}" if item.label else "unknown"


def summary_line(snapshot: Snapshot) -> str:
    """`5 uv lock files in 2 dirs: 3 orphaned, 1 held, 1 foreign`."""
    where = snapshot.dirs[0] if len(snapshot.dirs) == 1 else f"{len(snapshot.dirs)} dirs"
    total = len(snapshot.files)
    if not total:
        return f"No uv lock files in {where}."
    counts = ", ".join(f"{count} {state}" for state, count in snapshot.summary().items() if count)
    noun = "file" if total == 1 else "files"
    return f"{total} uv lock {noun} in {where}: {counts}."


def snapshot_text(snapshot: Snapshot, now: float) -> str:
    """The table people read: state, age, what it guards, who holds it, where it is."""
    rows = [("STATE", "AGE", "GUARDS", "HOLDER", "PATH")]
    rows += [
        (item.state.value, format_age(now - item.mtime), _label(item), _who(item), item.path)
        for item in snapshot.files
    ]
    lines = []
    if snapshot.files:
        widths = [max(len(row[col]) for row in rows) for col in range(4)]
        lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4]
                 for row in rows]  # fmt: skip
        explained = [
            f for f in snapshot.files if f.state in (LockState.FOREIGN, LockState.SUSPICIOUS)
        ]
        if explained:
            lines.append("")
            lines += [f"{item.state.value}: {item.path}: {item.reason}" for item in explained]
        lines.append("")
    lines.append(summary_line(snapshot))
    return "\n".join(lines)
