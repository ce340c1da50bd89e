"""Red team: one read of `/proc/locks` is not one snapshot.

`/proc/locks` is a seq_file: each read() call re-finds its place by *position*, under the lock
tables' locks only for that call. `Syscalls.read` reads the whole file with a growing buffer, so a
big table (a cleaner's own batch holds up to 1,024 locks: ~46 KB) takes several calls, and a
lock released anywhere in the system between two of them shifts the positions: records the
reader has not printed yet are skipped. A skipped record is a held lock *with its whole tree of
waiters*: the one source a non-root cleaner has for another user's waiter.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.redteam.support import stop
from uvsweep.probe.linux import read_lock_table

pytestmark = [
    pytest.mark.linux,
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc"),
]

_HOLD_MANY = textwrap.dedent(
    """
    import fcntl, os, sys, time
    fds = []
    for index in range(1000):
        fd = os.open(f"{sys.argv[1]}/held-{index}", os.O_RDWR | os.O_CREAT, 0o666)
        fcntl.flock(fd, fcntl.LOCK_EX)
        fds.append(fd)
    print(" ".join(str(os.fstat(fd).st_ino) for fd in fds), flush=True)
    time.sleep(600)
    """
)

_CHURN = textwrap.dedent(
    """
    import fcntl, os, sys
    fd = os.open(sys.argv[1] + "/churn", os.O_RDWR | os.O_CREAT, 0o666)
    print("go", flush=True)
    while True:  # any program that takes and drops a lock now and then (sqlite, uv, cron...)
        fcntl.flock(fd, fcntl.LOCK_EX)
        fcntl.flock(fd, fcntl.LOCK_UN)
    """
)


@pytest.mark.xfail(
    strict=True,
    reason="R16: read_lock_table reads /proc/locks in several read() calls; a lock released"
    " elsewhere between two calls makes the kernel skip records, so held locks (and their"
    " waiters) are missing from the table (seen in 78 of 200 reads with one churning process)",
)
def test_every_lock_held_throughout_a_read_is_in_the_table(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_MANY, str(tmp_path)], stdout=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    churn = subprocess.Popen(
        [sys.executable, "-c", _CHURN, str(tmp_path)], stdout=subprocess.PIPE, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and churn.stdout is not None
        held = {int(ino) for ino in holder.stdout.readline().split()}
        assert len(held) == 1000 and churn.stdout.readline().strip() == "go"
        for attempt in range(300):
            table = read_lock_table("/proc", os.getpid())
            missing = held - set(table.others)
            assert not missing, f"read {attempt}: {len(missing)} held locks missing"
    finally:
        stop(churn)
        stop(holder)
