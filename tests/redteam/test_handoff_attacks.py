"""Red team: the handoff after an unlink, and the keeper that finishes it, on real processes.

Every test here is a reproduction of a way mutual exclusion (or a promise of the README) still
breaks on the current code. Each is `xfail(strict=False)`: it must fail today, and it turns into
an unexpected pass, failing the suite, the day the bug is fixed (then drop the mark).
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests import procs
from tests.conftest import flock_held, lock_free, need, other_user_python
from tests.helpers import A
from tests.redteam.support import (
    CLEANER_WITH_LATECOMER,
    CLEANER_WITH_PAUSE,
    cleaner_env,
    forked_keeper_pids,
    handoff_after_unlink,
    keeper_pids,
    kill_keepers,
    no_lease_before_the_unlink,
    old_inode_fd,
    read_pids,
    start_latecomer,
    stop,
    two_holders,
    wait_for,
)
from uvsweep.model import CleanResult, LockState
from uvsweep.probe.posix import SYSCALLS, Syscalls
from uvsweep.remove import Policy, Target
from uvsweep.remove.handoff import NEW, Handoff, Keeper
from uvsweep.remove.posix import LinuxRemover

pytestmark = [
    pytest.mark.linux,
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc"),
]


def _next_generation_locked(path: Path, old_ino: int) -> bool:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return False
    return st.st_ino != old_ino and flock_held(path)


# ---- R1: a signal that ends the process drops the next generation's lock ---------------------


# Fixed; it was R1: SIGTERM (timeout, systemd, docker stop; SIGINT/SIGTERM for watch and the tray,
# whose cleanup runs on a daemon thread) ends the process during the handoff wait, closing the next
# generation's locked fd before a keeper has it: two holders
@pytest.mark.parametrize("command", ["clean", "watch"])
def test_a_terminated_cleaner_never_leaves_two_holders(lockdir: Path, command: str) -> None:
    path = lockdir / A
    path.touch()
    args = {
        "clean": ["clean", "--dir", str(lockdir), "--ignore-running-uv"],
        "watch": ["watch", "--dir", str(lockdir), "--clean-when-idle", "0"],
    }[command]
    before = set(keeper_pids())
    cleaner = subprocess.Popen(
        [sys.executable, "-c", CLEANER_WITH_PAUSE, *args], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=cleaner_env(),
        start_new_session=True,
    )  # fmt: skip
    old_fd = -1
    try:
        assert cleaner.stdout is not None and cleaner.stdin is not None
        while not cleaner.stdout.readline().startswith("unlinking"):
            assert cleaner.poll() is None, "the cleaner ended before it removed anything"
        # the latecomer (this process): opened the file, not locked yet
        old_fd = os.open(path, os.O_RDONLY)
        old_ino = os.fstat(old_fd).st_ino
        cleaner.stdin.write("\n")
        cleaner.stdin.flush()
        wait_for(lambda: _next_generation_locked(path, old_ino), what="the handoff")
        cleaner.send_signal(signal.SIGTERM)
        cleaner.wait(30)
        # the latecomer resumes and locks the old inode; a new uv locks the name
        assert not two_holders(old_fd, path), "two processes hold the lock at once"
    finally:
        if old_fd >= 0:
            os.close(old_fd)
        stop(cleaner)
        kill_keepers(before)


# ---- R2: the keeper is imported from the cleaner's working directory -------------------------


# Fixed; it was R2: the keeper is started as `python -m uvsweep`, which puts the cleaner's cwd
# first on sys.path: a `uvsweep` package in the cwd (e.g. planted in /tmp) runs as the cleaner's
# user (root), and can say 'ready' and exit, dropping the handed-over locks
def test_the_keeper_never_runs_code_from_the_cleaners_working_directory(tmp_path: Path) -> None:
    lockdir = tmp_path / "locks"
    lockdir.mkdir()
    (lockdir / A).touch()
    hostile = tmp_path / "cwd"  # think /tmp, where anybody may create `uvsweep/`
    (hostile / "uvsweep").mkdir(parents=True)
    marker = tmp_path / "ran-from-cwd"
    (hostile / "uvsweep" / "__init__.py").write_text("")
    (hostile / "uvsweep" / "__main__.py").write_text(
        "import json, os, sys\n"
        f"open({str(marker)!r}, 'w').write(str(os.getuid()))\n"
        "os.write(json.loads(sys.argv[2])['ready_fd'], b'ready\\n')  # and drop the locks\n"
    )
    # the cleaner as an installed `uvsweep` script runs: sys.path[0] is the script's dir
    script = tmp_path / "bin" / "uvsweep-clean.py"
    script.parent.mkdir()
    script.write_text(CLEANER_WITH_LATECOMER)
    latecomers = tmp_path / "latecomers"
    before = set(keeper_pids())
    try:
        out = subprocess.run(
            [sys.executable, str(script), "clean", "--dir", str(lockdir), "--ignore-running-uv",
             "--json"],
            cwd=hostile, capture_output=True, text=True, check=False, timeout=120,
            env={**cleaner_env(), "REDTEAM_LATECOMERS": str(latecomers)},
        )  # fmt: skip
        assert json.loads(out.stdout)["handoffs"] == 1, out.stdout + out.stderr
        assert not marker.exists(), "code from the cleaner's cwd ran as the keeper"
        assert flock_held(lockdir / A), "the latecomer still has the old inode: name unlocked"
    finally:
        for pid in read_pids(latecomers):
            os.kill(pid, signal.SIGKILL)
        kill_keepers(before)


# ---- R3: stdio closed at start: the keeper's inherited fds 0-2 are replaced by /dev/null -----


# Fixed; it was R3: started with fds 0-2 closed (a daemon or autostart cleaning as the tray does),
# the next generation's locked fd is 0, 1 or 2; the keeper launcher's stdio redirections replace it
# with /dev/null, the cleaner closes its copy, and the lock is gone while the keeper lives
def test_a_cleaner_started_with_closed_stdio_still_hands_its_locks_to_the_keeper(
    tmp_path: Path,
) -> None:
    lockdir = tmp_path / "locks"
    lockdir.mkdir()
    path = lockdir / A
    path.touch()
    latecomers = tmp_path / "latecomers"
    before = set(keeper_pids())
    try:
        report = tmp_path / "report"
        out = subprocess.run(
            ["/bin/sh", "-c", 'exec "$@" <&- >&- 2>&-', "sh", sys.executable, "-c",
             CLEANER_WITH_LATECOMER, str(lockdir)],
            capture_output=True, text=True, check=False, timeout=120,
            env={**cleaner_env(), "REDTEAM_LATECOMERS": str(latecomers),
                 "REDTEAM_CLOSED_STDIO": str(report)},
        )  # fmt: skip
        text = report.read_text()
        assert text.startswith("1 ["), f"one handoff, passed to a keeper: {text}"
        (latecomer,) = read_pids(latecomers)
        assert out.returncode == 0
        assert set(keeper_pids()) - before, "a keeper finishes the handoff"
        old_fd = old_inode_fd(latecomer, A)
        try:
            assert not two_holders(old_fd, path), "two processes hold the lock at once"
        finally:
            os.close(old_fd)
    finally:
        for pid in read_pids(latecomers):
            os.kill(pid, signal.SIGKILL)
        kill_keepers(before)


# ---- R4: a directory (or FIFO, or anybody's file) at the name becomes "the next generation" --


class _PlantAfterUnlink(LinuxRemover):
    """During the unlink of A: a latecomer opens it; right after, an attacker (a hostile user
    watching the sticky dir with inotify) plants something at the name: `plant` + the path."""

    def __init__(self, plant: list[str], **seams: object) -> None:
        super().__init__(**seams)  # type: ignore[arg-type]
        self.plant = plant
        self.latecomer: subprocess.Popen[str] | None = None
        self.handoffs: list[Handoff] = []

    def unlink(self, target: Target) -> None:
        no_lease_before_the_unlink(self, target)  # (the latecomer opens at once, as before)
        self.latecomer = start_latecomer(target.path)
        super().unlink(target)
        subprocess.run([*self.plant, target.path], check=True)  # inotify saw IN_DELETE

    def _handoff(self, target: Target) -> Handoff:
        handoff = super()._handoff(target)
        self.handoffs.append(handoff)
        return handoff


def _nobody_and_a_sticky_dir(shared_tmp: Path) -> tuple[int, list[str], Path]:
    """(nobody's uid, the command prefix that runs as nobody, A's path in `shared_tmp` made
    like /tmp: anybody may create a name, only its owner remove it)."""
    found = other_user_python()
    need(found is not None, "root and the user nobody (setpriv, util-linux) to run as another user")
    assert found is not None
    uid, gid, _python = found
    shared_tmp.chmod(0o1777)
    path = shared_tmp / A
    path.touch()
    return uid, ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"], path


# Fixed; it was R4: Handoff._next_generation opens and flocks whatever is at the name (a directory,
# a FIFO, another user's file) as the next generation; its owner removes it and a new uv creates
# the real file at the name while the latecomer locks the old inode
def test_a_directory_planted_at_the_name_is_never_taken_for_the_next_generation(
    shared_tmp: Path,
) -> None:
    _uid, nobody, path = _nobody_and_a_sticky_dir(shared_tmp)
    remover = _PlantAfterUnlink([*nobody, "mkdir"], handoff_wait=30.0)
    done: list[CleanResult] = []
    thread = threading.Thread(target=lambda: done.append(remover.remove([str(shared_tmp)],
                                                                          Policy())))  # fmt: skip
    thread.start()
    old_fd = -1
    try:
        # today the handoff locks the dir as its next generation within a few steps; a fixed
        # one never does, so give it a while and go on either way
        deadline = time.monotonic() + 5.0
        while not (path.is_dir() and flock_held(path)) and time.monotonic() < deadline:
            time.sleep(0.01)
        subprocess.run([*nobody, "rmdir", str(path)], check=True)  # the attacker's own dir
        assert remover.latecomer is not None
        old_fd = old_inode_fd(remover.latecomer.pid, A)
        assert not two_holders(old_fd, path), "two processes hold the lock at once"
    finally:
        if old_fd >= 0:
            os.close(old_fd)
        stop(remover.latecomer)
        thread.join(60)
    assert not thread.is_alive()


# ---- F5: another user's regular file at the name becomes "the next generation" ---------------


# Fixed; it was F5: `_next_generation` took any user's regular file at the name at once; in a
# sticky dir its owner may remove it, and a new uv then creates and locks a fresh file at the
# name while the latecomer locks the old inode. Now such a file is taken only after it has been
# there, free, for FOREIGN_PATIENCE seconds (with a warning), and a removed next generation is
# replaced by ours within a round
def test_another_users_file_at_the_name_is_not_the_next_generation_within_the_patience(
    shared_tmp: Path,
) -> None:
    from uvsweep.remove.handoff import FOREIGN_PATIENCE, OLD

    uid, nobody, path = _nobody_and_a_sticky_dir(shared_tmp)
    said: list[str] = []
    remover = _PlantAfterUnlink([*nobody, "touch"], handoff_wait=60.0, progress=said.append)
    done: list[CleanResult] = []
    thread = threading.Thread(target=lambda: done.append(remover.remove([str(shared_tmp)],
                                                                          Policy())))  # fmt: skip
    thread.start()
    old_fd = -1
    try:
        wait_for(lambda: remover.handoffs and path.exists() and path.stat().st_uid == uid,
                 what="nobody's file at the name during the handoff")  # fmt: skip
        # when nobody's file was made (the cleaner cannot have seen it earlier), on the
        # monotonic clock the patience runs on: a test thread that notices late (a loaded
        # machine) must not count the patience from its own late sight
        planted = time.monotonic() - max(0.0, time.time() - path.stat().st_ctime)
        (handoff,) = remover.handoffs
        assert remover.latecomer is not None
        old_fd = old_inode_fd(remover.latecomer.pid, A)
        # well within the patience (counted from the cleaner's first sight of the file, which
        # is after `planted`): the old lock is ours, nobody's file is not the next generation
        while time.monotonic() - planted < FOREIGN_PATIENCE / 2:
            assert handoff.state == OLD, "another user's file was taken as the next generation"
            with pytest.raises(BlockingIOError):
                fcntl.flock(old_fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # still held by the cleaner
            assert path.stat().st_uid == uid
            time.sleep(0.02)
        # after the patience it is taken, with a warning; its owner removes it: at once a file
        # of ours is locked at the name again, and the latecomer still cannot get the old inode
        wait_for(lambda: handoff.state == NEW, what="the file taken after the patience")
        # (the handoff records its state before it says anything, on the cleaner's thread)
        wait_for(lambda: any(f"uid {uid}'s file" in line for line in said), what=f"{said}")
        planted_ino = path.stat().st_ino
        subprocess.run([*nobody, "rm", "-f", str(path)], check=True)
        wait_for(
            lambda: path.exists() and path.stat().st_ino != planted_ino and flock_held(path),
            what="a new file of ours locked at the name",
        )
        assert path.stat().st_uid == 0
        assert not two_holders(old_fd, path), "two processes hold the lock at once"
        assert handoff.state == NEW  # never over because the name changed
        # (said after the new file is made and locked, as every warning is said after the state)
        wait_for(lambda: any("removed or replaced" in line for line in said), what=f"{said}")
    finally:
        if old_fd >= 0:
            os.close(old_fd)
        stop(remover.latecomer)
        thread.join(60)
    assert not thread.is_alive()
    assert done and [skip.path for skip in done[0].skipped] == [str(path)]


def test_a_keeper_keeps_a_replaced_next_generation_locked_too(lockdir: Path) -> None:
    """After the name was re-taken in NEW, a keeper inherits the removed next generation as
    well (it may have waiters): it lets that file's users go on only once the old file is
    free, and the name only once they are done too (P1: each inode in its turn)."""
    path = lockdir / A
    handoff, latecomer = handoff_after_unlink(lockdir, SYSCALLS)
    before = set(keeper_pids())
    first = -1
    try:
        handoff.step(used=True)
        assert handoff.state == NEW
        first = os.open(path, os.O_RDONLY | os.O_CLOEXEC)  # the first next generation
        os.unlink(path)  # removed by its owner (or root)
        handoff.step(used=True)
        assert handoff.replaced and flock_held(path)
        Keeper().take([handoff], LinuxRemover().view())
        handoff.close()
        os.close(handoff.dir_fd)
        with pytest.raises(BlockingIOError):  # still locked, now by the keeper
            fcntl.flock(first, fcntl.LOCK_SH | fcntl.LOCK_NB)
        assert flock_held(path)
        stop(latecomer)  # the old file's user is done: the replaced file's users' turn
        wait_for(lambda: lock_free(first), what="the keeper to let the replaced file go")
        assert flock_held(path), "the name must stay locked while the replaced file is used"
        os.close(first)  # its last user (this test) is done with it
        first = -1
        wait_for(lambda: not flock_held(path), what="the keeper to let the name go")
    finally:
        if first >= 0:
            os.close(first)
        stop(latecomer)
        kill_keepers(before)


# ---- R5: many handoffs: the keeper cannot be started, and the wait is not bounded -------------


def _locked_handoffs(lockdir: Path, count: int) -> tuple[int, list[Handoff]]:
    dir_fd = os.open(lockdir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    handoffs = []
    for index in range(count):
        name = f"uv-{index:016x}.lock"
        fd = os.open(lockdir / name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        fcntl.flock(fd, fcntl.LOCK_EX)
        handoff = Handoff(SYSCALLS, dir_fd, str(lockdir), name, -1, (0, 0), lambda _h: False)
        handoff.old_fd, handoff.new_fd, handoff.state = None, fd, NEW
        handoffs.append(handoff)
    return dir_fd, handoffs


# Fixed; it was R5: a keeper for 1,000 handoffs could not be started (first the job in one argv
# string, E2BIG; then select() on a pipe numbered past 1024), and `undo_all` fell back to waiting
# in-process without bound
def test_a_keeper_takes_over_a_thousand_handoffs(lockdir: Path) -> None:
    dir_fd, handoffs = _locked_handoffs(lockdir, 1000)
    before = set(keeper_pids())
    try:
        view = LinuxRemover().view()
        try:
            pid = Keeper().take(handoffs, view)
        except OSError as err:
            pytest.fail(f"no keeper: {err}")
        assert pid in keeper_pids()
    finally:
        for handoff in handoffs:
            handoff.close()
        os.close(dir_fd)
        kill_keepers(before)


# Fixed; it was R5: when no keeper program could start (here: too few fds for its pipes; also no
# /bin/sh in a distroless image, a keeper that cannot import uvsweep), `undo_all` waited in-process
# for the old file's users without bound and held Ctrl-C back. A forked copy keeps it now.
def test_ctrl_c_stops_clean_even_when_no_keeper_can_start(lockdir: Path) -> None:
    need(shutil.which("prlimit") is not None, "prlimit (Debian package util-linux)")
    for index in range(4):
        (lockdir / f"uv-{index:016x}.lock").touch()
    path = lockdir / A
    path.touch()
    cleaner: subprocess.Popen[str] = procs.popen(
        ["prlimit", "--nofile=10", sys.executable, "-c", CLEANER_WITH_PAUSE, "clean", "--dir",
         str(lockdir), "--ignore-running-uv"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=cleaner_env(), start_new_session=True,
    )  # fmt: skip
    old_fd = -1
    before = set(keeper_pids())
    try:
        assert cleaner.stdout is not None and cleaner.stdin is not None
        while True:
            line = cleaner.stdout.readline()
            assert line, "the cleaner ended before it reached the file"
            if line.startswith("unlinking") and line.split()[1] == str(path):
                old_fd = os.open(path, os.O_RDONLY)  # the latecomer: this process
            if line.startswith("unlinking"):
                cleaner.stdin.write("\n")
                cleaner.stdin.flush()
            if old_fd >= 0:
                break
        time.sleep(4)  # the handoff's own 2 s, and then some
        cleaner.send_signal(signal.SIGINT)
        try:
            cleaner.wait(10)
        except subprocess.TimeoutExpired:
            pytest.fail("clean ignored Ctrl-C while the old file's user kept it open")
        # stopping must not cost mutual exclusion: the name stays locked meanwhile, by a copy
        assert not two_holders(old_fd, path), "two processes hold the lock at once"
        assert set(forked_keeper_pids()) - before, "no forked keeper holds the name"
    finally:
        if old_fd >= 0:
            os.close(old_fd)
        stop(cleaner)
        kill_keepers(before)


class _CountingCalls(Syscalls):
    """The real OS calls; counts the walks of /proc (each costs a pass over every process)."""

    def __init__(self) -> None:
        self.walks = 0

    def list_dir(self, where: int | str) -> list[str]:
        if where == "/proc":
            self.walks += 1
        return super().list_dir(where)


class _ManyLatecomers(LinuxRemover):
    """Every unlink has a latecomer (one process keeps them all open); Ctrl-C after the last."""

    def __init__(self, helper: subprocess.Popen[str], last: str, **seams: object) -> None:
        super().__init__(**seams)  # type: ignore[arg-type]
        self.helper, self.last = helper, last
        self.walks_at_sigint = -1

    def unlink(self, target: Target) -> None:
        no_lease_before_the_unlink(self, target)  # (the helper's opens would wait on it)
        assert self.helper.stdin is not None and self.helper.stdout is not None
        self.helper.stdin.write(target.path + "\n")
        self.helper.stdin.flush()
        assert self.helper.stdout.readline().strip() == "ok"
        super().unlink(target)
        if target.name == self.last:
            assert isinstance(self.calls, _CountingCalls)
            self.walks_at_sigint = self.calls.walks
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C right after the last removal


_HOLD_ALL = (
    "import os, sys\nfds = []\n"
    "for line in sys.stdin:\n"
    "    fds.append(os.open(line.strip(), os.O_RDONLY))\n"
    "    print('ok', flush=True)\n"
)


# Fixed; it was R6: every handoff re-reads /proc/locks and walks every process's fds on its own
# (twice in its first step), and the wait and Ctrl-C are checked only after a whole round: 200
# latecomers cost 401 walks after Ctrl-C (0.12 s each with 150 processes: 1,000, 4 minutes)
def test_ctrl_c_is_honoured_after_one_pass_however_many_handoffs(lockdir: Path) -> None:
    count = 200
    for index in range(count):
        (lockdir / f"uv-{index:016x}.lock").touch()
    helper = subprocess.Popen(
        [sys.executable, "-c", _HOLD_ALL], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        text=True, start_new_session=True,
    )  # fmt: skip
    calls = _CountingCalls()
    remover = _ManyLatecomers(helper, f"uv-{count - 1:016x}.lock", calls=calls)
    before = set(keeper_pids())
    began = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            remover.remove([str(lockdir)], Policy())
        took = time.monotonic() - began
        walks = calls.walks - remover.walks_at_sigint
        assert walks <= 10, f"{walks} walks of /proc after Ctrl-C ({took:.1f}s in all)"
    finally:
        stop(helper)
        kill_keepers(before)


# ---- R7: scan names the exited cleaner, not the keeper, as the holder ------------------------


# Fixed; it was R7: /proc/locks names the process that *took* a flock; the cleaner took the next
# generation's lock and exited, so scan showed 'locked by a running process' with the dead
# cleaner's pid, never the README's 'held by a uvsweep keeper'
def test_scan_names_the_keeper_that_holds_a_handed_over_file(tmp_path: Path) -> None:
    from uvsweep import scanner

    lockdir = tmp_path / "locks"
    lockdir.mkdir()
    (lockdir / A).touch()
    latecomers = tmp_path / "latecomers"
    before = set(keeper_pids())
    try:
        out = subprocess.run(
            [sys.executable, "-c", CLEANER_WITH_LATECOMER, "clean", "--dir", str(lockdir),
             "--ignore-running-uv", "--json"],
            capture_output=True, text=True, check=False, timeout=120,
            env={**cleaner_env(), "REDTEAM_LATECOMERS": str(latecomers)},
        )  # fmt: skip
        assert json.loads(out.stdout)["keepers"], out.stdout + out.stderr
        (item,) = scanner.scan([str(lockdir)], label=False).files
        assert item.state is LockState.HELD
        assert "keeper" in item.reason, f"{item.reason}: {[h.describe() for h in item.holders]}"
    finally:
        for pid in read_pids(latecomers):
            os.kill(pid, signal.SIGKILL)
        kill_keepers(before)


class _LatecomerAtUnlink(LinuxRemover):
    """A latecomer opens each file as it is unlinked (killed by `stop`)."""

    latecomer: subprocess.Popen[str] | None = None

    def unlink(self, target: Target) -> None:
        no_lease_before_the_unlink(self, target)  # (the latecomer opens at once, as before)
        self.latecomer = start_latecomer(target.path)
        super().unlink(target)


# Fixed; it was F6's wording: a process that started a keeper (a long-lived tray) and cleans
# again found the keeper's file held by "a process the OS does not show": /proc/locks prints the
# keeper's inherited lock with the pid of the process that took it, our own
def test_a_second_clean_in_the_same_process_names_its_own_keeper(lockdir: Path) -> None:
    from uvsweep.remove.posix import HELD_BY_US

    (lockdir / A).touch()
    before = set(keeper_pids())
    first = _LatecomerAtUnlink(handoff_wait=0.0)
    try:
        assert first.remove([str(lockdir)], Policy()).keepers
        (skip,) = LinuxRemover().remove([str(lockdir)], Policy()).skipped
        assert skip.path == str(lockdir / A) and skip.state is LockState.HELD
        assert skip.reason == HELD_BY_US, skip.reason
    finally:
        stop(first.latecomer)
        kill_keepers(before)


def test_a_forked_keeper_holds_the_names_and_nothing_else(lockdir: Path) -> None:
    """`Keeper.fork`, the fallback: the copy holds the handed-over locks after we close ours
    while the old files are in use, keeps none of our other fds (a tray's display or bus
    connection), says who it is, and ends once the old files are let go."""
    from uvsweep import scanner

    users = []  # this process plays the old files' users: it has each old inode open
    for index in range(3):
        old = lockdir / f"uv-{index:016x}.lock"
        old.touch()
        users.append(os.open(old, os.O_RDONLY))
        old.unlink()  # the cleaner's unlink; the next generation is made below
    dir_fd, handoffs = _locked_handoffs(lockdir, 3)
    for handoff, fd in zip(handoffs, users, strict=True):
        handoff.old_fd = os.dup(fd)
        st = os.fstat(fd)
        handoff.old_key = (st.st_dev, st.st_ino)
    read_end, write_end = os.pipe()  # any other fd of ours: the copy must not keep it
    before = set(keeper_pids())
    try:
        pid = Keeper().fork(handoffs, LinuxRemover().view())
        for handoff in handoffs:
            handoff.close()
        os.close(write_end)
        assert os.read(read_end, 1) == b"", "the forked keeper kept our other fds"
        wait_for(lambda: pid in forked_keeper_pids(), what="the copy to name itself")
        for index in range(3):  # a new uv at each name still waits: the copy holds them
            fd = os.open(lockdir / f"uv-{index:016x}.lock", os.O_RDONLY)
            try:
                with pytest.raises(BlockingIOError):
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            finally:
                os.close(fd)
        item = next(f for f in scanner.scan([str(lockdir)], label=False).files)
        assert item.reason.startswith("held by a uvsweep keeper"), item.reason
        for fd in users:
            os.close(fd)
        users.clear()
        # not our child (forked twice: a long-lived tray keeps no zombie): it ends once nobody
        # uses the old files
        wait_for(lambda: pid not in forked_keeper_pids(), what="the copy to end")
        fd = os.open(lockdir / "uv-0000000000000000.lock", os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again
        finally:
            os.close(fd)
    finally:
        for fd in users:
            os.close(fd)
        os.close(read_end)
        os.close(dir_fd)
        kill_keepers(before)


def test_a_forked_keeper_that_cannot_build_its_remover_is_not_trusted(lockdir: Path) -> None:
    """The copy says "ready" only once it can run the handoffs; one that fails before that
    ends, `fork` raises, and the caller still holds the locks (it waits itself)."""
    dir_fd, handoffs = _locked_handoffs(lockdir, 1)
    before = set(keeper_pids())
    try:
        with pytest.raises(OSError, match="did not take over"):
            Keeper().fork(handoffs, {"platform": "win32"})  # no Unix handoffs there
        fd = os.open(lockdir / "uv-0000000000000000.lock", os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):  # ours still: nothing was let go
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
    finally:
        for handoff in handoffs:
            handoff.close()
        os.close(dir_fd)
        kill_keepers(before)
