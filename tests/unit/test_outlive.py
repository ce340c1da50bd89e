"""A cleaner that is the first process of its PID namespace waits, as it exits, for the keepers
it started (red-team L8): `handoff.outlive` and the wait at exit, with real child processes in
place of keepers. The whole path, in a real PID namespace, is
`tests/redteam/test_lease_review.py::test_a_handoff_outlives_a_cleaner_that_is_its_pid_namespaces_first_process`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests import procs
from uvsweep.remove import handoff

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX processes")


@pytest.fixture
def outlived(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The list of keepers to outlive, fresh, with no exit hook registered for the test's."""
    monkeypatch.setattr(handoff, "_OUTLIVED", [])
    import atexit

    monkeypatch.setattr(atexit, "register", lambda _func: None)
    return handoff._OUTLIVED


def _sleeper(seconds: float) -> subprocess.Popen[bytes]:
    return procs.popen([sys.executable, "-c", f"import time; time.sleep({seconds})"])


def test_the_exit_waits_until_the_keeper_has_ended(outlived: list[int]) -> None:
    keeper = _sleeper(0.6)
    handoff.outlive(keeper.pid)
    said: list[str] = []
    started = time.monotonic()
    handoff._await_outlived(said.append)
    assert time.monotonic() - started >= 0.4, "it returned before the keeper ended"
    assert said and f"waiting for keeper {keeper.pid} " in said[0], said
    assert keeper.poll() is not None or not os.path.exists(f"/proc/{keeper.pid}")
    assert outlived == []


def test_an_ended_keeper_is_not_waited_for(outlived: list[int]) -> None:
    keeper = _sleeper(0)
    keeper.wait()
    handoff.outlive(keeper.pid)
    said: list[str] = []
    handoff._await_outlived(said.append)
    assert said == []


def test_a_zombie_keeper_is_reaped_and_not_waited_for(outlived: list[int]) -> None:
    """A keeper that has exited unreaped (our child, as every orphan of the namespace is its
    first process's) is a zombie: alive to a signal, ended to the wait."""
    keeper = _sleeper(0)
    while Path(f"/proc/{keeper.pid}/stat").read_text().split(") ")[1][0] != "Z":
        time.sleep(0.01)
    handoff.outlive(keeper.pid)
    said: list[str] = []
    handoff._await_outlived(said.append)
    assert said == []
    assert not os.path.exists(f"/proc/{keeper.pid}"), "reaped"
    keeper.returncode = 0  # (reaped above: Popen must not wait for it again)


def test_ctrl_c_twice_gives_up_the_wait_says_so_and_exits_interrupted(
    outlived: list[int],
) -> None:
    """The wait counts Ctrl-C with a handler of its own (red-team M4), and after giving up
    ends the process with status 130, interrupted (M2); Python's handler is back after it."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    keeper = _sleeper(60)
    try:
        handoff.outlive(keeper.pid)
        said: list[str] = []

        def interrupt() -> None:
            for _ in range(2):
                time.sleep(0.3)
                os.kill(os.getpid(), signal.SIGINT)

        threading.Thread(target=interrupt, daemon=True).start()
        started = time.monotonic()
        ended: list[int] = []
        handoff._await_outlived(said.append, end=lambda: ended.append(130))
        assert time.monotonic() - started < 30
        assert len(said) == 3, said
        assert "Ctrl-C again gives up" in said[1] and "gave up waiting" in said[2], said
        assert ended == [130], "the process ends, interrupted"
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert keeper.poll() is None, "the keeper itself is left alone"
    finally:
        signal.signal(signal.SIGINT, previous)
        procs.stop(keeper, grace=0)


def test_a_keeper_whose_state_cannot_be_read_is_waited_for(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Anything unknown keeps the wait going: `waitpid` failing other than with ECHILD, or a
    signal refused (EPERM: alive, another user's), say the keeper may still run. (The signal
    is asked only where no pidfd can be: before Linux 5.3, off Linux.)"""
    import errno

    keeper = _sleeper(60)
    try:
        real_kill = os.kill
        monkeypatch.delattr(os, "pidfd_open", raising=False)

        def refused(pid: int, sig: int) -> None:
            if sig == 0 and pid == keeper.pid:
                raise PermissionError(errno.EPERM, "Operation not permitted")
            real_kill(pid, sig)

        def failing(pid: int, options: int) -> tuple[int, int]:
            raise OSError(errno.EINVAL, "Invalid argument")

        with monkeypatch.context() as patch:
            patch.setattr(os, "kill", refused)
            assert handoff._running(keeper.pid)
        with monkeypatch.context() as patch:
            patch.setattr(os, "waitpid", failing)
            assert handoff._running(keeper.pid)
    finally:
        procs.stop(keeper, grace=0)


def test_a_keeper_that_is_not_our_child_is_waited_for_until_it_ends(outlived: list[int]) -> None:
    """Until its launcher has exited, a keeper is not the cleaner's child (no `waitpid` for it):
    a signal 0 says whether it still runs."""
    launcher = procs.popen(
        ["sh", "-c", "sleep 0.6 & echo $!; wait"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert launcher.stdout is not None
        keeper = int(launcher.stdout.readline())
        handoff.outlive(keeper)
        said: list[str] = []
        waiting = threading.Thread(target=handoff._await_outlived, args=(said.append,), daemon=True)
        started = time.monotonic()
        waiting.start()
        waiting.join(timeout=20)
        assert not waiting.is_alive(), "still waiting for a keeper that has ended"
        assert time.monotonic() - started >= 0.3, "it returned while the keeper ran"
        assert said and f"waiting for keeper {keeper} " in said[0], said
    finally:
        procs.stop(launcher, grace=0)
