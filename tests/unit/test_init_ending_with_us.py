"""A cleaner run by its PID namespace's first process, where that process exits once it has
(red-team M3): `LinuxRemover.init_ending_with_us` decides whether the cleaner waits for its
keepers. Its OS reads are behind the remover's seams: a `/proc` of files made here, and the
parent's pid. `tests/redteam/test_sixth_review.py` runs the real thing in a namespace."""

from __future__ import annotations

import os
import sys
import time
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


def _proc(
    tmp_path: Path, namespace: int, parent: str | None, ppid: int = 4321,
    argv0: str | None = None, exe: str | None = None,
) -> str:  # fmt: skip
    """A `/proc` whose `self` is in PID namespace `namespace` (an inode), with parent `ppid`
    named `parent` (`comm`; None: no entry for it), its `argv[0]` and its executable."""
    proc = tmp_path / "proc"
    (proc / "self" / "ns").mkdir(parents=True)
    os.symlink(f"pid:[{namespace}]", proc / "self" / "ns" / "pid")
    (proc / "self" / "status").write_text(f"Name:\tuvsweep\nPid:\t77\nPPid:\t{ppid}\n")
    if parent is not None:
        (proc / str(ppid)).mkdir()
        (proc / str(ppid) / "comm").write_text(parent + "\n")
        if argv0 is not None:
            (proc / str(ppid) / "cmdline").write_bytes(argv0.encode() + b"\0-e\0")
        if exe is not None:
            os.symlink(exe, proc / str(ppid) / "exe")
    return str(proc)


CHILD = 4026532999  # any PID namespace but the initial one


@pytest.mark.parametrize(
    "init", ["sh", "dash", "bash", "zsh", "busybox", "tini", "docker-init", "dumb-init",
             "catatonit", "podman-init", "uv"],
)  # fmt: skip
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


def test_an_entrypoint_script_is_known_by_its_interpreter(tmp_path: Path) -> None:
    """`ENTRYPOINT ["/docker-entrypoint.sh"]`: a script run by its shebang has its own name as
    `comm` (cut to 15 bytes); its `argv[0]` is the shell's, and so is its executable."""
    from uvsweep.remove.posix import LinuxRemover

    proc = _proc(tmp_path, CHILD, "docker-entrypoi", argv0="/bin/sh", exe="/usr/bin/dash")
    assert LinuxRemover(proc=proc, calls=Calls(parent=1)).init_ending_with_us() == "sh"


def test_an_unreadable_argv_leaves_the_executable(tmp_path: Path) -> None:
    from uvsweep.remove.posix import LinuxRemover

    proc = _proc(tmp_path, CHILD, "docker-entrypoi", exe="/usr/bin/dash")
    assert LinuxRemover(proc=proc, calls=Calls(parent=1)).init_ending_with_us() == "dash"


def test_a_python_program_as_first_process_is_taken_to_stay(tmp_path: Path) -> None:
    from uvsweep.remove.posix import LinuxRemover

    proc = _proc(tmp_path, CHILD, "pytest", argv0="/venv/bin/python", exe="/usr/bin/python3.11")
    assert LinuxRemover(proc=proc, calls=Calls(parent=1)).init_ending_with_us() is None


def test_its_own_proc_shows_the_first_process_as_pid_1(tmp_path: Path) -> None:
    """`unshare --pid --fork --mount-proc`: `/proc` is the namespace's own, where our parent's
    pid is 1 (with the parent's `/proc`, its pid out there)."""
    from uvsweep.remove.posix import LinuxRemover

    proc = _proc(tmp_path, CHILD, "tini", ppid=1)
    assert LinuxRemover(proc=proc, calls=Calls(parent=1)).init_ending_with_us() == "tini"


def test_a_status_without_a_parent_is_not(tmp_path: Path) -> None:
    from uvsweep.remove.posix import LinuxRemover

    proc = _proc(tmp_path, CHILD, "sh")
    Path(proc, "self", "status").write_text("Name:\tuvsweep\n")
    assert LinuxRemover(proc=proc, calls=Calls(parent=1)).init_ending_with_us() is None


def test_no_namespaces_no_wait() -> None:
    from uvsweep.remove.posix import PosixRemover

    assert PosixRemover().init_ending_with_us() is None  # (macOS)


def test_a_zombie_that_is_not_our_child_has_ended() -> None:
    """A keeper that is not our child is reaped by its namespace's first process, which may be
    waiting for us, or by nobody: `kill(pid, 0)` succeeds on a zombie, so the wait at exit
    would never end (the review of M3's fix). Its pidfd says it has exited."""
    import subprocess

    from tests import procs
    from uvsweep.remove.handoff import _running

    # a parent that forks a child which exits at once, and never reaps it
    code = "import os, sys, time\npid = os.fork()\nif pid == 0:\n    os._exit(0)\n"
    code += "print(pid, flush=True)\ntime.sleep(60)\n"
    parent = procs.popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        zombie = int(parent.stdout.readline())
        deadline = time.monotonic() + 10
        while Path(f"/proc/{zombie}/stat").read_text().split()[2] != "Z":
            assert time.monotonic() < deadline, "the child never exited"
            time.sleep(0.01)
        os.kill(zombie, 0)  # (a zombie can be signalled: kill says it runs)
        assert not _running(zombie)
        assert _running(parent.pid)
    finally:
        procs.stop(parent, grace=0)
