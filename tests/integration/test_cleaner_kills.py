"""Tests of `cleaner.clean` that kill mutants of `cleaner.py` (tests/MUTATION.md).

Real files in a dir of our own; what the process can see of others (`visibility`) is given, as
`clean` takes it, so that a blind spot can be had without a PID namespace or a hidepid mount.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from uvsweep import cleaner
from uvsweep.model import LockState
from uvsweep.visibility import Visibility

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX files and owners"),
]

A = "uv-00000000000000aa.lock"

#: the /proc of a child PID namespace: processes outside it are hidden
BLIND = Visibility(
    own_pid=os.getpid(), pid_namespace="child", hidepid=None, sees_all_users=True,
    sees_all_namespaces=False, notes=("processes outside this PID namespace are hidden",),
)  # fmt: skip


def test_a_dry_run_that_cannot_see_every_namespace_keeps_each_file_and_says_why(
    lockdir: Path,
) -> None:
    """Kills `young or hidden or report.blind` -> `young or hidden and report.blind` (the
    skip reason of a file a blind run keeps was empty)."""
    (lockdir / A).touch()
    report = cleaner.clean(
        [str(lockdir)], dry_run=True, gate=False, accept_hidden=False, seen=BLIND
    )
    assert report.removed == []
    (skipped,) = report.skipped
    assert skipped.path == str(lockdir / A) and skipped.state is LockState.ORPHANED
    assert skipped.reason == report.blind and "PID namespace" in skipped.reason


def test_a_run_that_removes_nothing_because_it_is_blind_counts_no_hidden_processes(
    lockdir: Path,
) -> None:
    """Kills `CleanReport.hidden_processes = 0` -> `1`: a run that stops before looking at any
    file inspected no process, so `clean` must not say that one process of another user could
    not be inspected (the CLI's note whenever the count is not 0)."""
    (lockdir / A).touch()
    report = cleaner.clean([str(lockdir)], gate=False, accept_hidden=False, seen=BLIND)
    assert report.blind and report.removed == [] and (lockdir / A).exists()
    assert report.hidden_processes == 0


def test_under_hidepid_only_files_in_dirs_no_one_else_may_enter_go(lockdir: Path) -> None:
    """Kills `elif not seen.sees_all_users` -> `elif seen.sees_all_users`: with hidepid (other
    users' processes hidden) a file in a dir others may enter stays and one in a private dir
    goes; seeing every user, a shared dir's file goes too."""
    hidepid = Visibility(
        own_pid=os.getpid(), pid_namespace="initial", hidepid="invisible", sees_all_users=False,
        sees_all_namespaces=True,
    )  # fmt: skip
    sees_all = Visibility(
        own_pid=os.getpid(), pid_namespace="initial", hidepid=None, sees_all_users=True,
        sees_all_namespaces=True,
    )  # fmt: skip
    private = lockdir.parent / "private"
    private.mkdir(mode=0o700)
    lockdir.chmod(0o755)
    shared_file, private_file = lockdir / A, private / A
    shared_file.touch()
    private_file.touch()
    report = cleaner.clean(
        [str(lockdir), str(private)], gate=False, accept_hidden=False, seen=hidepid
    )
    assert report.removed == [str(private_file)] and shared_file.exists()
    (skipped,) = report.skipped
    assert skipped.path == str(shared_file) and "hidepid=invisible" in skipped.reason
    report = cleaner.clean([str(lockdir)], gate=False, accept_hidden=False, seen=sees_all)
    assert report.removed == [str(shared_file)] and report.skipped == []
