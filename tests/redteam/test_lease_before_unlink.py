"""The write lease taken before the unlink (`LinuxRemover.users_before_unlink`), attacked with
real processes, real files, real flock and real leases.

The cleaner takes the kernel's write lease on every file of its batch right after locking it,
and keeps it through the unlink to the close. A uv that opens the file after the grant (without
`O_NONBLOCK`, as uv does) breaks the lease and waits in open(); it then completes its open on
the inode it resolved, even once that inode is unlinked. "Two holders": that uv has taken the
exclusive flock it asked for on the old inode while a new uv at the name takes the file there.
"""

from __future__ import annotations

import contextlib
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.redteam.support import (
    LINUX_REAL,
    Child,
    ScriptedCleaner,
    keepers_end,
    lease_breaking,
    lock_file,
    new_uv_locks,
    wait_for,
)

pytestmark = LINUX_REAL

#: The cleaner as `clean` runs it (`SIGIO` ignored: the kept leases' fast path), pausing with
#: argv[2]: "after-grant", once the batch's leases are granted (before the walk, the table and
#: the check of the leases before the unlink), "before-unlink", once the look before the
#: unlink is over (the leases checked: the unlink comes next), or "after-unlink-unasked", where
#: the lease cannot be asked before the unlink (as on a file system without leases), once the
#: look after the unlink is over (it was granted then, and is kept). It says `paused`, waits
#: for a line, and ends with `result {json}`.
CLEANER = textwrap.dedent(
    """
    import json, sys
    from uvsweep.probe.posix import Syscalls, ignore_lease_breaks
    from uvsweep.remove import Policy
    from uvsweep.remove.posix import LinuxRemover

    ignore_lease_breaks()
    where, paused = sys.argv[2], []

    def pause():
        if not paused:
            paused.append(1)
            print("paused", flush=True)
            sys.stdin.readline()

    class Calls(Syscalls):
        asked = 0

        def alone_all(self, fds, keep=False):
            self.asked += 1
            if where == "after-unlink-unasked" and self.asked == 1:
                return [None] * len(fds)  # as where the lease cannot be asked before the unlink
            said = super().alone_all(fds, keep)
            if where == "after-grant":
                pause()
            return said

    real_before, real_after = LinuxRemover.users_before_unlink, LinuxRemover.users_after_unlink

    def before(self, targets, result):
        found = real_before(self, targets, result)
        if where == "before-unlink":
            pause()
        return found

    def after(self, targets, result):
        found = real_after(self, targets, result)
        if where == "after-unlink-unasked":
            pause()
        return found

    LinuxRemover.users_before_unlink = before
    LinuxRemover.users_after_unlink = after
    result = LinuxRemover(calls=Calls()).remove([sys.argv[1]], Policy())
    print("result", json.dumps({
        "removed": result.removed, "handoffs": result.handoffs, "keepers": result.keepers,
        "skipped": [[s.path, s.state.name, s.reason] for s in result.skipped],
    }), flush=True)
    """
)

#: a uv: on a line, opens the lock file (`O_RDWR`, blocking, as uv does), says so with the
#: inode and its link count, takes its flock (blocking), says so, holds until the next line
OPENER = textwrap.dedent(
    """
    import fcntl, os, sys
    print("ready", flush=True)
    sys.stdin.readline()
    fd = os.open(sys.argv[1], os.O_RDWR)
    st = os.fstat(fd)
    print("opened", st.st_ino, st.st_nlink, flush=True)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("locked", flush=True)
    sys.stdin.readline()
    """
)


@pytest.fixture
def started() -> Iterator[list[object]]:
    """Processes a test starts: every one is stopped at its end (whole process groups)."""
    running: list[object] = []
    try:
        yield running
    finally:
        for child in running:
            child.stop()  # type: ignore[attr-defined]


def _fd_link(cleaner: ScriptedCleaner, ino: int) -> str:
    """The cleaner's `/proc/PID/fd/N` link to inode `ino`."""
    fds = f"/proc/{cleaner.proc.pid}/fd"
    for entry in os.listdir(fds):
        with contextlib.suppress(OSError):
            if os.stat(f"{fds}/{entry}").st_ino == ino:
                return f"{fds}/{entry}"
    raise AssertionError(f"the cleaner has no fd on inode {ino}")


@pytest.mark.parametrize("where", ["after-grant", "before-unlink", "after-unlink-unasked"])
def test_an_opener_waiting_on_the_lease_before_the_unlink_never_ends_beside_a_new_uv(
    tmp_path: Path, started: list[object], where: str
) -> None:
    """A uv opens the file after the cleaner's lease was granted and before its unlink: its
    open breaks the lease and waits. Met before the unlink (the cleaner asks `F_GETLEASE`
    right before it), the file is kept: the lease is given up, the uv's open goes on, on the
    file at the name, and it queues for the lock. Met after that check (the unlink comes
    next), the uv would get the unlinked inode at the close: `let_go` sees the broken lease
    and hands the file over. Either way one holder at a time."""
    path, ino = lock_file(tmp_path)
    cleaner = ScriptedCleaner(CLEANER, tmp_path, [], args=(where,))
    started.append(cleaner)
    assert cleaner.next() == "paused"  # the batch locked, its lease granted and kept
    # a uv that resolved the name before the unlink (in the second case, where the name is gone
    # by now, its open comes through the cleaner's own fd link: the same inode, as M6's FUSE
    # opener held between its lookup and its count gets it)
    where_from = str(path) if where != "after-unlink-unasked" else _fd_link(cleaner, ino)
    opener = Child([sys.executable, "-c", OPENER, where_from])
    started.append(opener)
    opener.expect("ready")
    opener.tell()
    wait_for(lambda: lease_breaking(ino), what="the open to break the cleaner's lease")
    cleaner.go()
    assert cleaner.next() == "result"
    result = cleaner.result
    got_ino, links = map(int, opener.expect("opened").split()[1:])
    assert got_ino == ino
    opener.expect("locked")
    assert not new_uv_locks(path), f"two holders: the opener and a new uv; cleaner: {result}"
    if where == "after-grant":
        # kept, the name still leading to it: no handoff was needed
        assert links == 1, result
        assert result["handoffs"] == 0 and result["removed"] == [], result
        assert result["skipped"] == [
            [str(path), "OPEN", ("a process opened it during removal: a process the OS does"
             " not show")]
        ]  # fmt: skip
    else:  # (M6, for a lease granted before or after the unlink)
        assert links == 0, result  # it got the unlinked inode: handed over
        assert result["handoffs"] == 1, result
    opener.tell()  # done: a keeper (had there been one) ends with it
    keepers_end(result)
