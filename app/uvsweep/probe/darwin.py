"""macOS (and other Unixes without `/proc/locks`): flock try-lock plus psutil's open-file lists.

There is no lock table: a held file's holder and any waiters are "unknown". Open files come from
`psutil.Process.open_files()`, which needs permission: a process that refuses is counted as hidden,
never taken to mean "nobody".
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable

from uvsweep.probe import LockProbe, Observation, ProbeResult
from uvsweep.probe.posix import FileKey, PosixBackend, opened_key
from uvsweep.processes import ProcessTable

#: (pid, open paths or None when access was denied) for every process: the seam tests replace.
OpenFilesLister = Callable[[], Iterable[tuple[int, list[str] | None]]]


def psutil_open_files() -> Iterable[tuple[int, list[str] | None]]:
    """Every process's open regular files, through psutil."""
    import psutil  # noqa: PLC0415 - only where there is no /proc

    for proc in psutil.process_iter():
        try:
            yield proc.pid, [item.path for item in proc.open_files()]
        except psutil.AccessDenied:
            yield proc.pid, None
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue


class DarwinBackend(PosixBackend):
    """The macOS backend; also used for the BSDs."""

    def __init__(
        self,
        processes: ProcessTable | None = None,
        open_files: OpenFilesLister = psutil_open_files,
        stat: Callable[[str], os.stat_result] = os.stat,
    ) -> None:
        super().__init__(processes)
        self.open_files = open_files
        self.stat = stat

    def load_lock_table(self, result: ProbeResult) -> None:
        """See the base class: there is none, so say so once."""
        result.notes.append("this OS does not show lock holders or waiters: they are unknown")

    def lock_entries(self, obs: Observation, probe: LockProbe) -> None:
        """See the base class: nothing to add; a failed try-lock shows as an unknown holder."""

    def find_openers(
        self, wanted: dict[FileKey, Observation], result: ProbeResult
    ) -> dict[FileKey, list[int]]:
        """One pass over every process's open files, matched by name and then by inode."""
        names = {obs.name for obs in wanted.values()}
        me = os.getpid()
        found: dict[FileKey, list[int]] = {}
        for pid, paths in self.open_files():
            if pid == me:
                continue
            if paths is None:
                result.hidden_processes += 1
                continue
            for path in paths:
                key = opened_key(path, path, names, self.stat)
                if key in wanted:
                    found.setdefault(key, []).append(pid)
        return found
