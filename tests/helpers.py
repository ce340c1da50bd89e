"""Helpers shared by test modules (a test module never imports another test module).

- `A`, `B`: two uv lock file names (the one definition).
- `uvsweep(*args, env=None)`: run the CLI as a user would, in a process group of its own.
- `AS_NOBODY`: the skip reason of the tests that run uvsweep as `nobody`.
- `eventually(predicate, timeout)`: poll until true; returns the true value.
- `wait_for(what, check, timeout)`: poll a fact the test reads itself; fails naming `what`.
- `wait_keepers_gone(pids)`: detached keepers must end once their old files are free.
- `FakeUv`, `StartFakeUv`: a process named `uv` (the `fake_uv` fixture's type).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest

from tests import procs

A = "uv-00000000000000aa.lock"
B = "uv-00000000000000bb.lock"

AS_NOBODY = "running uvsweep as `nobody` needs root, setpriv (util-linux) and /usr/bin/python3"

T = TypeVar("T")


def uvsweep(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`uvsweep ARGS` (the venv's script, else `python -m uvsweep`), output captured."""
    exe = os.path.join(sysconfig.get_path("scripts"), "uvsweep")
    command = [exe] if os.path.exists(exe) else [sys.executable, "-m", "uvsweep"]
    return procs.run(
        [*command, *args], capture_output=True, text=True, timeout=60,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


def eventually(predicate: Callable[[], T], timeout: float = 30.0) -> T:
    """Poll `predicate()` until it returns something true; that value. The limit only bounds a
    failure: a loaded machine (CI beside other work) took over 10 s for a tray's first snapshot
    to reach a panel, which no test here is about."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def wait_for(what: str, check: Callable[[], Any], timeout: float = 60.0) -> None:
    """Wait until `check()` (a fact the test reads itself, never uvsweep's verdict)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def wait_keepers_gone(pids: Iterable[int], timeout: float = 15.0) -> None:
    """Keepers are detached: wait until they have exited (they must, once their old files'
    users are gone); one still running is killed and the test fails."""
    left = procs.wait_gone(pids, timeout)
    if left:
        said = procs.end(left)
        pytest.fail(f"keepers outlived the users of their old files: {said}")


class FakeUv:
    """A real process whose executable is called `uv` (a copy of `sleep`), as the gate sees uv."""

    def __init__(self, directory: Path, seconds: float) -> None:
        exe = directory / "uv"
        if not exe.exists():
            shutil.copy(shutil.which("sleep") or "/bin/sleep", exe)
        self.proc: subprocess.Popen[bytes] = procs.popen([str(exe), str(seconds)], lasting=True)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # until the kernel shows its new name
            comm = Path(f"/proc/{self.proc.pid}/comm")
            if comm.exists() and comm.read_text().strip() == "uv":
                break
            time.sleep(0.01)

    @property
    def pid(self) -> int:
        return self.proc.pid


class StartFakeUv(Protocol):
    """The `fake_uv` fixture: start a fake uv that runs for `seconds` (ended after the test)."""

    def __call__(self, seconds: float = 60) -> FakeUv: ...
