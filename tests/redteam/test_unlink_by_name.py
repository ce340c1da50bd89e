"""Red team: the unlink is by name, so it removes whatever is at the name by then.

`changed()` checks (lstat) that the name is still the file we hold, then `unlink(name)` follows.
In between, a naive deleter (`rm -f /tmp/uv-*.lock`, tmpreaper: no lock check) can remove our
file, and a new uv can create and lock a fresh one at the name. uvsweep then unlinks *that*
file, which it never checked and which uv holds; the after-check looks only at our inode, so
nothing is handed over and the file is reported as removed. The next uv creates yet another
file and locks it while the first still holds the unlinked one.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers import A
from tests.redteam.support import new_uv_locks, stop
from uvsweep.remove import Policy, Target
from uvsweep.remove.posix import LinuxRemover

pytestmark = [
    pytest.mark.linux,
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc"),
]

#: A new uv: creates the lock file (the name is free), locks it, and works for a while.
_NEW_UV = textwrap.dedent(
    """
    import fcntl, os, sys, time
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("locked", fd, flush=True)
    time.sleep(600)
    """
)


class _RacedUnlink(LinuxRemover):
    """Right before our unlink (after every check): `rm -f` by someone else, then a new uv."""

    def __init__(self) -> None:
        super().__init__()
        self.new_uv: subprocess.Popen[str] | None = None
        self.new_fd = -1

    def unlink(self, target: Target) -> None:
        os.unlink(target.path)  # a naive deleter: no lock check
        self.new_uv = subprocess.Popen(
            [sys.executable, "-c", _NEW_UV, target.path], stdout=subprocess.PIPE, text=True,
            start_new_session=True,
        )  # fmt: skip
        assert self.new_uv.stdout is not None
        word, number = self.new_uv.stdout.readline().split()
        assert word == "locked"
        self.new_fd = int(number)
        super().unlink(target)


@pytest.mark.xfail(
    strict=True,
    reason="R11: between changed()'s checks and unlink(name), another deleter removes our file"
    " and a new uv creates and locks a fresh one; unlinkat removes the new uv's locked file,"
    " unchecked, reports it removed, and the next uv locks a third file beside it",
)
def test_a_file_created_at_the_name_after_the_last_check_is_never_removed(lockdir: Path) -> None:
    path = lockdir / A
    path.touch()
    remover = _RacedUnlink()
    try:
        result = remover.remove([str(lockdir)], Policy())
        assert remover.new_uv is not None
        # the new uv is in its critical section, on its own file: can the next uv get in?
        held = os.open(f"/proc/{remover.new_uv.pid}/fd/{remover.new_fd}", os.O_RDONLY)
        try:
            assert not _next_uv_gets_in(path), (
                f"the new uv's locked file was removed (reported as removed: {result.removed})"
            )
        finally:
            os.close(held)
    finally:
        stop(remover.new_uv)


def _next_uv_gets_in(path: Path) -> bool:
    try:
        return new_uv_locks(path)
    except OSError:  # it cannot even open the name: it holds nothing
        return False
