"""The removal primitives on macOS and the BSDs: flock, a dir fd, and who has which inode open.

There is no lock table. Who has a file open is matched by device and inode (libproc on macOS,
see `uvsweep.probe.darwin`), never by path: the kernel reports `/private/var/...` where `$TMPDIR`
says `/var/...`, and after the unlink only the inode still names the old file, so the handoff
sees every process that still uses it.
"""

from __future__ import annotations

from collections.abc import Sequence

from uvsweep.model import CleanResult
from uvsweep.probe.darwin import OpenFilesLister, default_open_files, users_of
from uvsweep.remove import Target
from uvsweep.remove.posix import PosixRemover

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class DarwinRemover(PosixRemover):
    """macOS and the BSDs: no lock table; open files by (dev, ino)."""

    def __init__(self, open_files: OpenFilesLister | None = None, **seams: Any) -> None:
        """`seams` are `PosixRemover`'s; `open_files` lists every process's open files."""
        super().__init__(**seams)
        if open_files is None:
            open_files, note = default_open_files()
            if note:
                self.notes.append(note)
        self.open_files = open_files

    def open_users(self, targets: Sequence[Target], result: CleanResult) -> dict[Target, list[int]]:
        """See `PosixRemover`: one pass over every process's open files for the whole batch."""
        by_key = {(t.dev, t.ino): t for t in targets}
        found, hidden = users_of(self.open_files, by_key, exclude=self.calls.getpid())
        result.hidden_processes = max(result.hidden_processes, hidden)
        return {by_key[key]: pids for key, pids in found.items()}

    def view(self) -> dict[str, Any]:
        """See `PosixRemover`: what a keeper needs to build the same remover."""
        return {"platform": "darwin"}

    def old_in_use(self, dev: int, ino: int, path: str) -> bool:
        """See `PosixRemover`: any process but us still has the old inode open (read afresh)."""
        found, _hidden = users_of(self.open_files, [(dev, ino)], exclude=self.calls.getpid())
        return bool(found)
