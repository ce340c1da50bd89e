"""Dirs -> Snapshot: the one scan path the CLI, the watcher and the tray all use."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from uvsweep import locations, probe
from uvsweep.model import STATE_ORDER, LockFile, Snapshot
from uvsweep.processes import ProcessTable
from uvsweep.settings import Settings

_RANK = {state: rank for rank, state in enumerate(STATE_ORDER)}


def resolve_dirs(explicit: Sequence[str] | None, settings: Settings) -> list[str]:
    """`--dir` values replace the defaults; otherwise uv's temp dir, `/tmp`, and configured dirs."""
    if explicit:
        return locations.unique_dirs(explicit)
    return locations.default_dirs(settings.dirs)


def ordered(files: Iterable[LockFile]) -> list[LockFile]:
    """Files in display order: by state (what needs attention first), then by path."""
    return sorted(files, key=lambda item: (_RANK[item.state], item.path))


def scan(
    dirs: Sequence[str],
    *,
    settings: Settings | None = None,
    backend: probe.Backend | None = None,
    processes: ProcessTable | None = None,
    label: bool = True,
) -> Snapshot:
    """Observe, classify and label every uv lock file directly inside `dirs`."""
    settings = settings or Settings()
    processes = processes or ProcessTable()
    backend = backend or probe.for_platform(processes=processes)
    result = backend.probe(dirs)
    files = result.files
    if files and label:
        from uvsweep import labels  # noqa: PLC0415 - only needed when there is something to label

        index = labels.build_index(settings.project_dirs, processes)
        files = [item.with_label(index.label_for(item.name)) for item in files]
    files = ordered(files)
    notes = tuple(result.notes)
    warning = locations.tmpdir_warning()
    if warning:
        notes += (warning,)
    return Snapshot(
        dirs=tuple(dirs),
        files=tuple(files),
        errors=tuple(result.errors),
        taken_at=time.time(),
        hidden_processes=result.hidden_processes,
        notes=notes,
    )
