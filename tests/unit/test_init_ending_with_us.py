"""A cleaner run by its PID namespace's first process, where that process exits once it has
(red-team M3): `LinuxRemover.init_ending_with_us` decides whether the cleaner waits for its
keepers. Its OS reads are behind the remover's seams: a `/proc` of files made here, and the
parent's pid. `tests/redteam/test_sixth_review.py` runs the real thing in a namespace."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from uvsweep.probe.posix import Syscalls
from uvsweep.visibility import INITIAL_PID_NS_INODE

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="PID namespaces are Linux's")


class Calls(Syscalls):
    """The real calls, but our parent's pid is `parent`."""

    def __init__(self, parent: int) -> None:
        self.parent = parent

    def getppid(self) -> int:
        return self.parent


def _proc(tmp_path: Path, namespace: int, parent: str | None, ppid: int = 4321) -> str:
    """A `/proc` whose `self` is in PID namespace `namespace` (an inode), with parent `ppid`
    named `parent` (None: no entry for it)."""
    proc = tmp_path / "proc"
    (proc / "self" / "ns").mkdir(parents=True)
    os.symlink(f"pid:[{namespace}]", proc / "self" / "ns" / "pid")
    (proc / "self" / "status").write_text(f"Name:\tuvsweep\nPid:\t77\nPPid:\t{ppid}\n")
    if parent is not None:
        (proc / str(ppid)).mkdir()
        (proc / str(ppid) / "comm").write_text(parent + "\n")
    return str(proc)


CHILD = 4026532999  # any PID namespace but the initial one


@pytest.mark.parametrize("init", ["sh", "dash", "bash", "tini", "docker-init", "dumb-init"])
def test_a_shell_or_minimal_init_as_our_namespaces_first_process_ends_with_us(
    tmp_path: Path, init: str
) -> None:
    from uvsweep.remove.posix import LinuxRemover

    remover = LinuxRemover(proc=_proc(tmp_path, CHILD, init), calls=Calls(parent=1))
    assert remover.init_ending_with_us() == init


@pytest.mark.parametrize(
    ("namespace", "parent", "name", "why"),
    [
        (CHILD, 1, "python3", "a first process that outlives its command (the test runner)"),
        (CHILD, 1, "s6-svscan", "a supervisor"),
        (CHILD, 7, "sh", "a parent that is not the namespace's first process"),
        (CHILD, 0, "sh", "a parent outside the namespace: we are its first process (L8)"),
        (INITIAL_PID_NS_INODE, 1, "sh", "pid 1 of the initial namespace stays (systemd)"),
        (CHILD, 1, None, "a parent whose name cannot be read"),
    ],
)
def test_anything_else_is_not(
    tmp_path: Path, namespace: int, parent: int, name: str | None, why: str
) -> None:
    from uvsweep.remove.posix import LinuxRemover

    remover = LinuxRemover(proc=_proc(tmp_path, namespace, name), calls=Calls(parent=parent))
    assert remover.init_ending_with_us() is None, why


def test_a_status_without_a_parent_is_not(tmp_path: Path) -> None:
    from uvsweep.remove.posix import LinuxRemover

    proc = _proc(tmp_path, CHILD, "sh")
    Path(proc, "self", "status").write_text("Name:\tuvsweep\n")
    assert LinuxRemover(proc=proc, calls=Calls(parent=1)).init_ending_with_us() is None


def test_no_namespaces_no_wait() -> None:
    from uvsweep.remove.posix import PosixRemover

    assert PosixRemover().init_ending_with_us() is None  # (macOS)
