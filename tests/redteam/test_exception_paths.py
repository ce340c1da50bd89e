"""Red team: an OS error in the check *after* the unlink closes the locked fds on the way out.

`Remover._batch` releases every target in its `finally`. If the second `users()` pass (after the
unlink, before any handoff) raises, for example EMFILE while another thread of the tray holds
many fds, or ENOMEM, the locks on the unlinked files are dropped with no handoff and no look at
who opened them: a latecomer then locks the old inode while the next uv locks a new file.
"""

from __future__ import annotations

import contextlib
import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import A
from tests.redteam.support import old_inode_fd, start_latecomer, stop, two_holders
from uvsweep.probe.posix import Syscalls
from uvsweep.remove import Policy, Target
from uvsweep.remove.posix import LinuxRemover

pytestmark = [
    pytest.mark.linux,
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc"),
]


class _FailingAfterUnlink(Syscalls):
    """The real OS, except that listing /proc fails once the unlink is done (EMFILE)."""

    def __init__(self) -> None:
        self.unlinked = False

    def unlink(self, name: str, dir_fd: int) -> None:
        super().unlink(name, dir_fd)
        self.unlinked = True

    def list_dir(self, where: int | str) -> list[str]:
        if where == "/proc" and self.unlinked:
            raise OSError(errno.EMFILE, "Too many open files")
        return super().list_dir(where)


class _LatecomerAtUnlink(LinuxRemover):
    def __init__(self, calls: Syscalls) -> None:
        super().__init__(calls=calls)
        self.latecomer: subprocess.Popen[str] | None = None

    def unlink(self, target: Target) -> None:
        self.latecomer = start_latecomer(target.path)
        super().unlink(target)


# Fixed; it was R18: an OSError in the users() pass after the unlink leaves _batch through its
# finally, which closes the unlinked files' locked fds without a handoff: the latecomer and the
# next uv both hold
def test_an_error_after_the_unlink_never_drops_the_lock_unchecked(lockdir: Path) -> None:
    path = lockdir / A
    path.touch()
    remover = _LatecomerAtUnlink(_FailingAfterUnlink())
    old_fd = -1
    try:
        with contextlib.suppress(OSError):  # an error may end the run, but not the exclusion
            remover.remove([str(lockdir)], Policy())
        assert remover.latecomer is not None
        old_fd = old_inode_fd(remover.latecomer.pid, A)
        assert os.fstat(old_fd).st_nlink == 0, "the latecomer has the old, unlinked file"
        assert not two_holders(old_fd, path), "two processes hold the lock at once"
    finally:
        if old_fd >= 0:
            os.close(old_fd)
        stop(remover.latecomer)
