"""Tests of `cleaner.clean` that kill mutants of `cleaner.py` (tests/MUTATION.md).

Real files in a dir of our own; what the process can see of others (`visibility`) is given, as
`clean` takes it, so that a blind spot can be had without a PID namespace or a hidepid mount.
"""

from __future__ import annotations

import os
import pwd
import sys
from pathlib import Path

import pytest

from tests.conftest import Holder, need
from tests.fake_proc import FakeProc
from uvsweep import cleaner
from uvsweep.model import LockState
from uvsweep.processes import ProcessTable
from uvsweep.visibility import Visibility

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX files and owners"),
]

A = "uv-00000000000000aa.lock"
B = "uv-00000000000000bb.lock"
C = "uv-00000000000000cc.lock"

#: the /proc of a child PID namespace: processes outside it are hidden
BLIND = Visibility(
    own_pid=os.getpid(), pid_namespace="child", hidepid=None, sees_all_users=True,
    sees_all_namespaces=False, notes=("processes outside this PID namespace are hidden",),
)  # fmt: skip
#: a /proc that shows every process
SEES_ALL = Visibility(
    own_pid=os.getpid(), pid_namespace="initial", hidepid=None, sees_all_users=True,
    sees_all_namespaces=True,
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
    """Kills `CleanReport.hidden_processes = 0` -> `1` and `handoffs = 0` -> `1`: a run that
    stops before looking at any file inspected no process and handed nothing over, so `clean`
    must not say that one process of another user could not be inspected (the CLI's note
    whenever the count is not 0), nor count a handoff (`clean --json`)."""
    (lockdir / A).touch()
    report = cleaner.clean([str(lockdir)], gate=False, accept_hidden=False, seen=BLIND)
    assert report.blind and report.removed == [] and (lockdir / A).exists()
    assert report.hidden_processes == 0 and report.handoffs == 0 and report.keepers == []


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


def test_a_dry_run_names_what_the_real_run_removes_and_other_users_files_only_with_all_users(
    lockdir: Path, hold: type[Holder]
) -> None:
    """Kills, in the dry run, `item.state is LockState.FOREIGN and may_take_foreign` with `is
    not` or `or` (a held file listed as removable with `--all-users`), and `clean`'s default
    `all_users=False` -> `True` (another user's file taken unasked). Each dry run is checked
    against the real run it describes."""
    need(os.geteuid() == 0, "another user's file needs root to make (run the suite as root)")
    nobody = pwd.getpwnam("nobody").pw_uid
    for name in (A, B, C):
        (lockdir / name).touch()
    os.chown(lockdir / B, nobody, -1)
    holder = hold(lockdir / C)
    dirs = [str(lockdir)]

    def outcome(**options: bool) -> tuple[list[str], list[tuple[str, LockState]]]:
        report = cleaner.clean(dirs, gate=False, accept_hidden=True, seen=SEES_ALL, **options)
        assert report.errors == []
        names = [os.path.basename(path) for path in report.removed]
        return names, [(os.path.basename(s.path), s.state) for s in report.skipped]

    kept = [(C, LockState.HELD)]
    assert outcome(dry_run=True) == ([A], [(B, LockState.FOREIGN), *kept])
    assert outcome(dry_run=True, all_users=True) == ([A, B], kept)
    assert outcome() == ([A], [(B, LockState.FOREIGN), *kept])
    assert outcome(all_users=True) == ([B], kept)
    assert sorted(os.listdir(lockdir)) == [C] and holder.proc.poll() is None


def test_clean_asks_the_process_table_it_is_given(lockdir: Path, tmp_path: Path) -> None:
    """Kills `processes = processes or ProcessTable()` -> `and` (the table given, here a /proc
    written by the test that shows an active uv, was replaced by the real one)."""
    proc = FakeProc(tmp_path / "proc")
    proc.add(30, ("/opt/uv", "sync"))
    (lockdir / A).touch()
    table = ProcessTable(platform="linux", proc=str(proc.root))
    report = cleaner.clean([str(lockdir)], processes=table, accept_hidden=True, seen=SEES_ALL)
    assert report.busy and [p.pid for p in report.active_uv] == [30]
    assert report.removed == [] and (lockdir / A).exists()
