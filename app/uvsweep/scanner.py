"""Dirs -> Snapshot: the one scan path the CLI, the watcher and the tray all use, and the one place
files are labelled (`Labeller`; the watcher keeps one between its scans).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Sequence

from uvsweep import locations, probe
from uvsweep.model import STATE_ORDER, LockFile, Snapshot
from uvsweep.processes import ProcessTable
from uvsweep.settings import Settings

TYPE_CHECKING = False
if TYPE_CHECKING:
    from uvsweep.labels import LabelIndex

_RANK = {state: rank for rank, state in enumerate(STATE_ORDER)}


def resolve_dirs(explicit: Sequence[str] | None, settings: Settings) -> list[str]:
    """`--dir` values replace the defaults; otherwise uv's temp dir, `/tmp`, and configured dirs."""
    if explicit:
        return locations.unique_dirs(explicit)
    return locations.default_dirs(settings.dirs)


def ordered(files: Iterable[LockFile]) -> list[LockFile]:
    """Files in display order: by state (what needs attention first), then by path."""
    return sorted(files, key=lambda item: (_RANK[item.state], item.path))


class Labeller:
    """Labels files through a label index, built when first needed and kept: a scan uses a new
    one; the watcher keeps one between its scans, `forget`s it at each full rescan and, while a
    file has no label, builds it again at most every `retry` seconds (a new environment)."""

    def __init__(self, project_dirs: Sequence[str] = (), retry: float | None = None) -> None:
        self.project_dirs = tuple(project_dirs)
        self.retry = retry
        self.index: LabelIndex | None = None
        self._built_at = 0.0

    def forget(self) -> None:
        """Build the index again at the next call (what each file guards may have changed)."""
        self.index = None

    def label(
        self, files: Sequence[LockFile], processes: ProcessTable, *, retry: bool = True
    ) -> list[LockFile]:
        """`files` with their labels (`retry`: a file left without one may build the index
        again, as `retry` allows)."""
        if not files:
            return list(files)
        from uvsweep import labels  # noqa: PLC0415 - only needed when there is something to label

        now = time.monotonic()
        if self.index is None:
            self.index, self._built_at = labels.build_index(self.project_dirs, processes), now
        labelled = [item.with_label(self.index.label_for(item.name)) for item in files]
        if (
            retry
            and self.retry is not None
            and any(item.label is None for item in labelled)
            and now - self._built_at > self.retry
        ):
            self.index, self._built_at = labels.build_index(self.project_dirs, processes), now
            labelled = [item.with_label(self.index.label_for(item.name)) for item in files]
        return labelled


def scan(
    dirs: Sequence[str],
    *,
    settings: Settings | None = None,
    backend: probe.Backend | None = None,
    processes: ProcessTable | None = None,
    label: bool = True,
    labeller: Labeller | None = None,
) -> Snapshot:
    """Observe, classify and label (through `labeller`, else a new one) every uv lock file
    directly inside `dirs`."""
    settings = settings or Settings()
    processes = processes or ProcessTable()
    backend = backend or probe.for_platform(processes=processes)
    result = backend.probe(dirs)
    files = result.files
    if files and label:
        files = (labeller or Labeller(settings.project_dirs)).label(files, processes)
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


def rescan_files(
    previous: Snapshot,
    paths: Iterable[str],
    *,
    backend: probe.Backend,
    processes: ProcessTable,
    labeller: Labeller | None = None,
) -> Snapshot:
    """`previous` with the files at `paths` (inside its dirs) looked at again, alone: each one
    added, changed or gone, with its errors; every other file and error as it was. Labelled
    through `labeller` (without building its index again for a file it cannot name)."""
    files = [(os.path.dirname(path), os.path.basename(path)) for path in sorted(paths)]
    result = backend.probe_files(files)
    found = result.files
    if labeller is not None:
        found = labeller.label(found, processes, retry=False)
    probed = {probe.entry_path(directory, name) for directory, name in files}
    kept = [item for item in previous.files if item.path not in probed]
    errors = [error for error in previous.errors if error.path not in probed]
    errors += [error for error in result.errors if error.path in probed]
    snapshot = previous.replace(
        files=tuple(ordered([*kept, *found])), errors=tuple(errors), taken_at=time.time()
    )
    assert isinstance(snapshot, Snapshot)
    return snapshot
