"""Red team: who has a lock file open, as `/proc/*/fd` shows it.

The fd walk stats only the links whose *basename* is the lock file's name. A process can have the
very inode open under another name that no longer exists, and then its link reads
`<dir>/<other name> (deleted)`: uv does exactly that when it creates a lock file where
`renameat2(RENAME_NOREPLACE)` is refused (NFS, 9p, some FUSE file systems): the tempfile crate
then hard-links `.tmpXXXXXX` to the name and unlinks the temp name, and only then takes the lock.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers import A
from tests.redteam.support import stop, two_holders
from uvsweep.remove import Policy
from uvsweep.remove.posix import LinuxRemover

pytestmark = [
    pytest.mark.linux,
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc"),
]

#: uv's lock-file creation through the link-then-unlink fallback, preempted before its flock.
_CREATE_BY_LINK = textwrap.dedent(
    """
    import os, sys, time
    directory, name = sys.argv[1], sys.argv[2]
    tmp = os.path.join(directory, ".tmpAbC123")
    fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o666)
    os.link(tmp, os.path.join(directory, name))  # fails if the name exists: no replace
    os.unlink(tmp)
    print("created", fd, flush=True)
    time.sleep(600)  # preempted here, before flock(LOCK_EX)
    """
)


# Fixed; it was R8: walk_fds stats only fd links whose basename is the lock name; a creator that
# used the link-then-unlink fallback shows `.tmpXXXXXX (deleted)`, is never seen, and the file it
# is about to lock is removed: it locks the unlinked inode, the next uv a new file
def test_a_creator_that_linked_its_temp_file_into_place_is_seen(lockdir: Path) -> None:
    creator = subprocess.Popen(
        [sys.executable, "-c", _CREATE_BY_LINK, str(lockdir), A], stdout=subprocess.PIPE,
        text=True, start_new_session=True,
    )  # fmt: skip
    try:
        assert creator.stdout is not None
        word, number = creator.stdout.readline().split()
        assert word == "created"
        assert os.stat(lockdir / A).st_nlink == 1
        result = LinuxRemover().remove([str(lockdir)], Policy())
        # the creator resumes and locks its file; a new uv at the name locks that
        fd = os.open(f"/proc/{creator.pid}/fd/{number}", os.O_RDONLY)
        try:
            assert not two_holders(fd, lockdir / A), f"two holders; removed: {result.removed}"
        finally:
            os.close(fd)
    finally:
        stop(creator)
