"""Red team: the F5 fix (whose file may be a handoff's next generation, the re-take of the name,
`Handoff.replaced`), attacked with real files, real flock and real processes (`nobody` as the
hostile user). Each test reproduces a finding of "Review of the F5 fix" in FINDINGS.md and is
`xfail(strict=True)` with its id until fixed.
"""

from __future__ import annotations

import fcntl
import os
import select
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import procs
from tests.conftest import Holder, flock_held, need, other_user_python
from tests.helpers import A
from tests.redteam.support import (
    CLEANER_WITH_PAUSE,
    cleaner_env,
    handoff_after_unlink,
    keeper_pids,
    kill_keepers,
    old_inode_fd,
    stop,
    two_holders,
    wait_for,
)
from uvsweep.probe.posix import Syscalls
from uvsweep.remove.handoff import (
    DONE,
    FOREIGN_PATIENCE,
    MAX_RETAKES,
    NEW,
    OLD,
    Handoff,
    Keeper,
    run,
)
from uvsweep.remove.posix import LinuxRemover

pytestmark = [
    pytest.mark.linux,
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc"),
]


class Clock(Syscalls):
    """The real calls, with a monotonic clock the test moves (FOREIGN_PATIENCE without sleeping)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


def _done(handoff: Handoff) -> None:
    handoff.close()
    os.close(handoff.dir_fd)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.fixture
def nobody() -> list[str]:
    found = other_user_python()
    need(found is not None, "root and the user nobody (setpriv, util-linux) to run as another user")
    assert found is not None
    uid, gid, _python = found
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"]


#: `nobody`'s planter: at each line on stdin, a fresh file of its own renamed over the name
#: (atomic: the name is never absent, and in a sticky dir nobody may replace its own file).
PLANTER = (
    "import os, sys\n"
    "d, name = sys.argv[1], sys.argv[2]\n"
    "for n, _ in enumerate(sys.stdin):\n"
    "    tmp = os.path.join(d, f'.plant-{n}')\n"
    "    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))\n"
    "    os.rename(tmp, os.path.join(d, name))\n"
    "    print('planted', flush=True)\n"
)


@pytest.fixture
def planter(nobody: list[str], shared_tmp: Path) -> Iterator[subprocess.Popen[str]]:
    shared_tmp.chmod(0o1777)  # like /tmp: anybody may create a name, only its owner remove it
    child: subprocess.Popen[str] = procs.popen(
        [*nobody, sys.executable, "-c", PLANTER, str(shared_tmp), A], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, text=True, start_new_session=True, lasting=True,
    )  # fmt: skip
    try:
        yield child
    finally:
        stop(child)


def _plant(planter: subprocess.Popen[str]) -> None:
    assert planter.stdin is not None and planter.stdout is not None
    planter.stdin.write("\n")
    planter.stdin.flush()
    assert planter.stdout.readline().strip() == "planted"


def _taken_after_the_patience(handoff: Handoff, calls: Clock) -> None:
    """nobody's file, at the name since the handoff began, is free: taken once the patience
    has passed (as the fix intends: a warning, and the name's owner could remove it)."""
    handoff.step(used=True)
    assert handoff.state == OLD  # within the patience: refused
    calls.now += FOREIGN_PATIENCE + 1
    handoff.step(used=True)
    assert handoff.state == NEW


# ---- P1: a replaced next generation's waiters are let go with the rest -------------------------


def _says(holder: Holder, word: str, timeout: float) -> bool:
    out = holder.proc.stdout
    assert out is not None
    if not select.select([out], [], [], timeout)[0]:
        return False
    return out.readline().strip() == word


# Fixed; it was P1.
def test_a_waiter_on_a_replaced_next_generation_never_holds_beside_the_name(
    lockdir: Path, hold: type[Holder]
) -> None:
    path = lockdir / A
    handoff, latecomer = handoff_after_unlink(lockdir, Syscalls())
    try:
        handoff.step(used=True)
        assert handoff.state == NEW and flock_held(path)
        waiter = hold(path, wait=True)  # a second uv: opened the next generation, waits on us
        os.unlink(path)  # removed by whoever may (root's tmp cleaner, the dir's owner)
        handoff.step(used=True)
        assert handoff.replaced and flock_held(path)  # re-taken: a file of ours at the name
        stop(latecomer)  # the old file's user is done
        deadline = time.monotonic() + 10.0
        while not handoff.step() and time.monotonic() < deadline:
            time.sleep(0.05)
        if _says(waiter, "locked", 2.0):  # the waiter is in its critical section, on R ...
            # ... and a new uv at the name must wait for it
            assert flock_held(path), (
                f"two holders: the waiter on the replaced file (handoff {handoff.state}) and"
                " a new uv on the file at the name"
            )
    finally:
        stop(latecomer)
        _done(handoff)


# ---- P2: `replaced` grows without bound ---------------------------------------------------------


# Fixed; it was P2: every replacement of the next generation kept one more fd for the whole
# handoff (60 renames: 60 more fds). Now the name is re-taken at most MAX_RETAKES times, then left
# to whoever changes it, with one warning (here the handoff has no remover's look: every replaced
# file counts as used, the worst case for the bound)
def test_a_planter_renaming_files_over_the_name_cannot_exhaust_the_cleaners_fds(
    shared_tmp: Path, planter: subprocess.Popen[str]
) -> None:
    calls = Clock()
    handoff, latecomer = handoff_after_unlink(shared_tmp, calls)
    said: list[str] = []
    handoff.warn = said.append
    try:
        _plant(planter)  # nobody's file at the name, right after the unlink
        _taken_after_the_patience(handoff, calls)
        before = _open_fds()
        for _ in range(60):
            _plant(planter)  # nobody replaces its own next generation (allowed in /tmp) ...
            handoff.step(used=True)  # ... and each round re-takes the name: one more fd held
        grown = _open_fds() - before
        assert grown <= 8, (
            f"{grown} more fds held for one handoff ({len(handoff.replaced)} replaced files)"
        )
        retaken = [line for line in said if "taken again" in line]
        left = [line for line in said if "left to whoever" in line]
        assert len(retaken) == MAX_RETAKES and len(left) == 1, said  # said once, not per round
        assert handoff.state == NEW  # the old file's user is still followed
        stop(latecomer)
        deadline = time.monotonic() + 10.0
        while not handoff.step() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert handoff.state == DONE and not handoff.replaced  # every kept file let go in turn
    finally:
        stop(latecomer)
        _done(handoff)


def test_a_replaced_file_nobody_else_has_open_is_closed_in_the_round_that_replaces_it(
    shared_tmp: Path, planter: subprocess.Popen[str]
) -> None:
    """P2's first rule, with the remover's own look (fd walk, lock table): the planter closes
    each file it renames over the name, so each file it replaces is closed at once."""
    calls = Clock()
    handoff, latecomer = handoff_after_unlink(shared_tmp, calls)
    handoff.replaced_in_use = LinuxRemover().replaced_in_use
    try:
        _plant(planter)
        _taken_after_the_patience(handoff, calls)
        before = _open_fds()
        for _ in range(MAX_RETAKES):
            taken = handoff.new_fd
            _plant(planter)
            handoff.step(used=True)
            assert handoff.new_fd != taken and flock_held(shared_tmp / A)  # re-taken
            assert not handoff.replaced  # the replaced one is closed, not kept
        assert _open_fds() - before <= 0
    finally:
        stop(latecomer)
        _done(handoff)


# ---- P3: a hard-linked plant stalls the old file's user for ever --------------------------------


# Fixed; it was P3.
def test_a_hard_linked_plant_stalls_the_latecomer_no_longer_than_the_patience(
    shared_tmp: Path, nobody: list[str]
) -> None:
    shared_tmp.chmod(0o1777)
    calls = Clock()
    handoff, latecomer = handoff_after_unlink(shared_tmp, calls)
    try:
        own = shared_tmp / ".nobodys"
        subprocess.run([*nobody, "touch", str(own)], check=True)
        subprocess.run([*nobody, "ln", str(own), str(shared_tmp / A)], check=True)
        handoff.step(used=True)
        assert handoff.state == OLD
        calls.now += FOREIGN_PATIENCE + 1
        for _ in range(20):  # the patience is long over
            handoff.step(used=True)
            calls.now += 1.0
        old_fd = old_inode_fd(latecomer.pid, A)
        try:
            stalled = True
            try:
                fcntl.flock(old_fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
                stalled = False
            except BlockingIOError:
                pass
        finally:
            os.close(old_fd)
        assert not stalled, (
            f"after {FOREIGN_PATIENCE + 20:.0f} s the old file's user still waits on our lock"
            f" (handoff {handoff.state}): nobody's hard-linked file at the name is never taken"
        )
    finally:
        stop(latecomer)
        _done(handoff)


# ---- P4: a forked keeper's warnings go to the cleaner's (closed) output -------------------------


# Fixed; it was P4.
def test_a_forked_keeper_logs_that_it_took_another_users_file(
    shared_tmp: Path, nobody: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    log = tmp_path / "state" / "uvsweep" / "keeper.log"
    shared_tmp.chmod(0o1777)
    handoff, latecomer = handoff_after_unlink(shared_tmp, Syscalls())
    # as `clean` passes it (its stderr); in the forked keeper, fd 2 is /dev/null
    handoff.warn = lambda message: os.write(2, f"{message}\n".encode()) and None
    before = set(keeper_pids())
    try:
        subprocess.run([*nobody, "touch", str(shared_tmp / A)], check=True)
        handoff.step(used=True)
        assert handoff.state == OLD  # nobody's file seen: the patience runs from now
        Keeper().fork([handoff], LinuxRemover().view())
        handoff.close()  # the forked keeper holds the same locks
        deadline = time.monotonic() + FOREIGN_PATIENCE + 30.0  # a loaded machine: rounds are slow

        def warned() -> bool:
            return log.exists() and "'s file at the name" in log.read_text()

        # (each round before the patience is out, the keeper try-locks the planted file and
        # lets it go again: a hold seen then is not yet the keeper's, only one after its warning)
        while time.monotonic() < deadline and not (
            warned() and flock_held_by_keeper(shared_tmp / A)
        ):
            time.sleep(0.1)
        text = log.read_text() if log.exists() else ""
        assert "'s file at the name" in text, f"no warning in the keeper log:\n{text}"
        assert flock_held_by_keeper(shared_tmp / A), "the keeper never took the planted file"
    finally:
        stop(latecomer)
        kill_keepers(before)
        os.close(handoff.dir_fd)


def flock_held_by_keeper(path: Path) -> bool:
    return path.exists() and flock_held(path)


# ---- P5: a warning that cannot be written ends the handoff's wait with an exception ------------


def _broken_pipe(_message: str) -> None:
    raise BrokenPipeError(32, "Broken pipe")  # `Console.note` with stderr a closed pipe


# Fixed; it was P5.
def test_a_warning_that_cannot_be_written_never_ends_the_handoff(lockdir: Path) -> None:
    path = lockdir / A
    handoff, latecomer = handoff_after_unlink(lockdir, Syscalls())
    handoff.warn = _broken_pipe
    try:
        handoff.step(used=True)
        assert handoff.state == NEW
        os.unlink(path)  # our next generation removed (root's tmp cleaner, the dir's owner)
        run([handoff], Syscalls(), wait=1.0, check=set)
        assert handoff.state == NEW and handoff.replaced and flock_held(path)
    finally:
        stop(latecomer)
        _done(handoff)


# Fixed; it was P5.
def test_clean_with_a_closed_stderr_never_leaves_two_holders(lockdir: Path) -> None:
    path = lockdir / A
    path.touch()
    before = set(keeper_pids())
    cleaner = subprocess.Popen(
        [sys.executable, "-c", CLEANER_WITH_PAUSE, "clean", "--dir", str(lockdir),
         "--ignore-running-uv"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env=cleaner_env(), start_new_session=True,
    )  # fmt: skip
    old_fd = -1
    try:
        assert cleaner.stdout is not None and cleaner.stdin is not None
        assert cleaner.stderr is not None
        while not cleaner.stdout.readline().startswith("unlinking"):
            assert cleaner.poll() is None, "the cleaner ended before it removed anything"
        old_fd = os.open(path, os.O_RDONLY)  # the latecomer (this process), not locked yet
        old_ino = os.fstat(old_fd).st_ino
        cleaner.stdin.write("\n")
        cleaner.stdin.flush()
        wait_for(lambda: _locked_next_generation(path, old_ino), what="the handoff")
        cleaner.stderr.close()  # `clean ... 2>&1 | head -1`, a supervisor's log pipe gone
        os.unlink(path)  # our next generation removed (root's tmp cleaner, the dir's owner)
        cleaner.wait(30)
        assert not two_holders(old_fd, path), "two processes hold the lock at once"
    finally:
        if old_fd >= 0:
            os.close(old_fd)
        stop(cleaner)
        kill_keepers(before)


def _locked_next_generation(path: Path, old_ino: int) -> bool:
    try:
        return os.lstat(path).st_ino != old_ino and flock_held(path)
    except FileNotFoundError:
        return False
