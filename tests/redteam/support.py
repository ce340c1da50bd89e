"""Shared pieces of the red-team tests: uv-like processes, a cleaner process with a latecomer.

A *latecomer* is what the handoff exists for: a uv process that opened a lock file between the
cleaner's last check and its unlink, and was preempted before its `flock`. It keeps the old,
unlinked inode open; whenever it resumes, it locks that inode. Mutual exclusion then holds only
while the name's next generation stays locked until the latecomer is done with the old inode.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from tests import procs
from tests.conftest import APP_DIR
from tests.helpers import A
from tests.mutex_harness import lease_breaking
from uvsweep.probe.posix import Syscalls
from uvsweep.remove.handoff import Handoff
from uvsweep.remove.posix import LinuxRemover

#: A latecomer: opens the file (read-only is enough to lock it), says so, then sleeps until
#: killed. The test decides when it "resumes" by locking the same inode itself (`lock_old`).
LATECOMER = (
    "import os, sys, time\n"
    "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
    "print('opened', os.fstat(fd).st_ino, flush=True)\n"
    "time.sleep(600)\n"
)


def start_latecomer(path: str | Path, argv_prefix: list[str] | None = None) -> (
    subprocess.Popen[str]
):  # fmt: skip
    """A process that has `path` open and has not locked it (killed by `stop`), or whose open
    of it waits on a cleaner's write lease (taken before its unlink, kept to its close): that
    open completes, on the inode it resolved, when the cleaner gives the lease up (`let_go`,
    which hands the file over) or closes the file."""
    ino = os.stat(path).st_ino
    child: subprocess.Popen[str] = procs.popen(
        [*(argv_prefix or []), sys.executable, "-c", LATECOMER, str(path)],
        stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True,
        start_new_session=True,
    )  # fmt: skip
    assert child.stdout is not None
    deadline = time.monotonic() + 30
    while not select.select([child.stdout], [], [], 0.01)[0]:
        if lease_breaking(ino):
            return child  # its open waits on the lease
        assert time.monotonic() < deadline, "the latecomer neither opened nor waits"
    assert child.stdout.readline().startswith("opened")
    return child


def no_lease_before_the_unlink(remover: LinuxRemover, target: object) -> None:
    """Give up the write lease `users_before_unlink` keeps on `target`, as where none could be
    taken before the unlink: a process the test starts now opens the file at once, as it did
    before that lease, instead of waiting on it in open() (that path, the opener waiting on
    the lease, is `test_lease_before_unlink.py`'s)."""
    if target in remover._leased:
        remover._leased.discard(target)  # type: ignore[arg-type]
        fcntl.fcntl(target.handle, fcntl.F_SETLEASE, fcntl.F_UNLCK)  # type: ignore[attr-defined]


def stop(child: subprocess.Popen[str] | None) -> None:
    """Kill a child's whole process group and reap it."""
    if child is not None:
        procs.stop(child, grace=0)


def keeper_pids(forked: bool = True) -> list[int]:
    """Live `uvsweep _keeper` processes (and, with `forked`, keepers forked from a cleaner)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                argv = handle.read().split(b"\0")
            with open(f"/proc/{entry}/comm", "rb") as handle:
                comm = handle.read().strip()
        except OSError:
            continue
        # `uvsweep _keeper`, or the interpreter's `-I -c ... keeper_main(...)`
        started = b"_keeper" in argv or any(b"import keeper_main" in arg for arg in argv)
        if (started or (forked and comm == b"uvsweep-keeper")) and procs.alive(
            int(entry)
        ):  # a zombie is no keeper (the suite may be its namespace's init, which reaps nobody)
            found.append(int(entry))
    return found


def forked_keeper_pids() -> list[int]:
    """Live keepers forked from a cleaner (`Keeper.fork`)."""
    return sorted(set(keeper_pids()) - set(keeper_pids(forked=False)))


def kill_keepers(before: set[int], wait: float = 5.0) -> None:
    """End the keepers a test started (those not in `before`): they end themselves once their
    old files are free (the test has let go of them first), so give them `wait` seconds; kill
    the rest (a failed test's keepers may still hold what the test kept open)."""
    procs.end(procs.wait_gone(set(keeper_pids()) - before, wait))


def wait_for(predicate: object, timeout: float = 20.0, what: str = "") -> None:
    """Poll `predicate()` until it is true (generous: the machine is shared and loaded)."""
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def two_holders(old_fd: int, path: Path) -> bool:
    """Whether the old inode (through `old_fd`, the latecomer's file) and the file now at the
    name can both be locked exclusively at once: two uv processes in the critical section."""
    try:
        fcntl.flock(old_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    try:
        return new_uv_locks(path)  # a new uv at the name
    except OSError:
        return False


#: A cleaner process whose unlink of `A` waits for the test (which starts a latecomer then):
#: the unluckiest schedule, made deterministic. argv: the uvsweep command line.
CLEANER_WITH_PAUSE = textwrap.dedent(
    """
    import fcntl, sys
    from uvsweep import cleaner, cli
    from uvsweep.remove.posix import LinuxRemover

    # the latecomer is a uv that starts after the gate looked (the gate is not under test)
    cleaner.running_uv = lambda processes=None: []
    real_unlink = LinuxRemover.unlink

    def unlink(self, target):
        # as where no lease could be taken before the unlink: the latecomer's open, made now,
        # goes on at once (one waiting on the lease is test_lease_before_unlink.py's)
        if target in self._leased:
            self._leased.discard(target)
            fcntl.fcntl(target.handle, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        print("unlinking", target.path, flush=True)
        sys.stdin.readline()  # the test has started its latecomer
        real_unlink(self, target)

    LinuxRemover.unlink = unlink
    sys.exit(cli.main(sys.argv[1:]))
    """
)


def cleaner_env() -> dict[str, str]:
    """The environment for a cleaner process: this checkout's uvsweep."""
    return {**os.environ, "PYTHONPATH": APP_DIR}


#: A cleaner process whose unlink of each file first starts a latecomer on it (its pid is
#: appended to the file named by $REDTEAM_LATECOMERS), then unlinks. argv: the uvsweep command.
CLEANER_WITH_LATECOMER = textwrap.dedent(
    """
    import os, select, subprocess, sys
    from uvsweep import cleaner, cli
    from uvsweep.remove.posix import LinuxRemover

    cleaner.running_uv = lambda processes=None: []  # the latecomer started after the gate
    real_unlink = LinuxRemover.unlink
    LATECOMER = {latecomer!r}

    def breaking(ino):  # the latecomer's open waits on our lease (taken before the unlink)
        with open("/proc/locks") as handle:
            return any("LEASE" in line and "BREAK" in line
                       and line.split()[-3].endswith(f":{{ino}}") for line in handle)

    def unlink(self, target):
        child = subprocess.Popen(
            [sys.executable, "-c", LATECOMER, target.path], stdout=subprocess.PIPE,
            stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        while not select.select([child.stdout], [], [], 0.01)[0]:
            if breaking(target.ino):
                break
        else:
            child.stdout.readline()
        with open(os.environ["REDTEAM_LATECOMERS"], "a") as handle:
            handle.write(f"{{child.pid}}\\n")
        real_unlink(self, target)

    LinuxRemover.unlink = unlink
    if os.environ.get("REDTEAM_CLOSED_STDIO"):
        # a process started with stdin, stdout and stderr closed (a daemon, a session's
        # autostart) that cleans through the library, as the tray does: argv is the dirs
        report = cleaner.clean(sys.argv[1:], gate=False)
        with open(os.environ["REDTEAM_CLOSED_STDIO"], "w") as handle:
            handle.write(f"{{report.handoffs}} {{report.keepers}}\\n")
        sys.exit(0)
    sys.exit(cli.main(sys.argv[1:]))
    """
).format(latecomer=LATECOMER)


def old_inode_fd(pid: int, name: str, wait: float = 10.0) -> int:
    """A new open of the unlinked file process `pid` has open (through its /proc fd link); its
    own open may still be completing (it waited on the cleaner's lease: `start_latecomer`)."""
    fd_dir = f"/proc/{pid}/fd"
    deadline = time.monotonic() + wait
    while True:
        for entry in os.listdir(fd_dir):
            try:
                target = os.readlink(f"{fd_dir}/{entry}")
            except OSError:
                continue
            if target.endswith(f"/{name} (deleted)"):
                return os.open(f"{fd_dir}/{entry}", os.O_RDONLY)
        if time.monotonic() > deadline:
            raise AssertionError(f"pid {pid} has no unlinked {name} open")
        time.sleep(0.01)


def read_pids(path: Path) -> list[int]:
    """The pids a cleaner process wrote, one a line."""
    if not path.exists():
        return []
    return [int(line) for line in path.read_text().split()]


def handoff_after_unlink(directory: Path, calls: Syscalls) -> tuple[Handoff, subprocess.Popen[str]]:
    """As `LinuxRemover` leaves it after an unlink: the old file at `directory/A` locked by us,
    opened by a latecomer (not locked yet), unlinked. The handoff asks the real lock table and
    fd walk whether the old file is in use."""
    path = directory / A
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    os.fchmod(fd, 0o666)
    fcntl.flock(fd, fcntl.LOCK_EX)
    latecomer = start_latecomer(path)
    st = os.fstat(fd)
    os.unlink(path)
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    remover = LinuxRemover()
    handoff = Handoff(calls, dir_fd, str(directory), A, fd, (st.st_dev, st.st_ino),
                      remover._handoff_in_use)  # fmt: skip
    handoff.warn = lambda _message: None
    return handoff, latecomer


# ---- uv-like children and lock files (the fourth and fifth reviews' tests) --------------------

#: root without CAP_SYS_PTRACE (Docker's default set): `/proc/PID/fd` of another user's process
#: (or of a process with capabilities the cleaner lacks) lists, but its links cannot be read
NO_PTRACE = ["setpriv", "--inh-caps=-sys_ptrace", "--bounding-set=-sys_ptrace"]


def leased(path: Path) -> bool:
    """Whether the kernel grants a write lease on `path` through a fresh fd of ours (given back
    at once): whether nobody else has the file open."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        fcntl.fcntl(fd, fcntl.F_SETSIG, signal.SIGURG)
        try:
            fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_WRLCK)
        except BlockingIOError:
            return False
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        return True
    finally:
        os.close(fd)


#: The marks of a red-team file that runs real processes against Linux's `/proc`, flock and
#: leases (`pytestmark = LINUX_REAL`).
LINUX_REAL = [
    pytest.mark.linux,
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc and leases"),
]


#: a uv-like process that keeps the file by a description the kernel's lease does not count
#: (argv[2]: "path", `O_PATH`; "none", access mode 3: neither read nor write, an ioctl-only
#: open), says so, and on a line reopens it through its own `/proc/self/fd` link (the unlinked
#: inode too) and locks that (flock refuses both kinds of description themselves)
UNCOUNTED = textwrap.dedent(
    """
    import fcntl, os, sys
    flags = os.O_PATH if sys.argv[2] == "path" else 3
    kept = os.open(sys.argv[1], flags)
    print("opened", flush=True)
    sys.stdin.readline()
    fd = os.open(f"/proc/self/fd/{kept}", os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("locked", flush=True)
    sys.stdin.readline()
    """
)


#: a uv preempted between its open and its flock: open, say so, wait for a line, flock
#: (blocking), say so, hold until the next line
PREEMPTED = (
    "import fcntl, os, sys\n"
    "fd = os.open(sys.argv[1], os.O_RDONLY)\n"
    "print('opened', flush=True)\n"
    "sys.stdin.readline()\n"  # preempted between its open and its flock
    "fcntl.flock(fd, fcntl.LOCK_EX)\n"
    "print('locked', flush=True)\n"
    "sys.stdin.readline()\n"
)


def stop_group(proc: subprocess.Popen[str]) -> None:
    """`procs.stop`, after a SIGKILL to the group while the process is not reaped: a process
    whose main thread has exited is a zombie to `procs.alive` (never signalled there) while its
    other threads run on, and `wait` would wait for them for ever."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    procs.stop(proc, grace=0)


class Child:
    """A uv-like process of the test's (its lines read one at a time)."""

    def __init__(self, argv: list[str]) -> None:
        self.proc: subprocess.Popen[str] = procs.popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, lasting=True,
        )  # fmt: skip

    @property
    def pid(self) -> int:
        return self.proc.pid

    def expect(self, word: str) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        assert line.startswith(word), f"expected {word!r}, got {line!r}"
        return line

    def tell(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        stop_group(self.proc)


def lock_file(directory: Path) -> tuple[Path, int]:
    """A lock file as uv makes it (0666, empty) in `directory`; its path and inode."""
    path = directory / A
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    os.fchmod(fd, 0o666)
    os.close(fd)
    return path, os.stat(path).st_ino


def new_uv_locks(path: Path) -> bool:
    """Whether a new uv at the name gets the lock now (creating the file if it is gone)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        os.close(fd)
    return True


class ScriptedCleaner:
    """A cleaner process running `code` (`python -c code directory *args`) that pauses at
    words it prints until `go()`; `next()` is its next word, and its `result {json}` line
    ends it (`result`)."""

    def __init__(
        self, code: str, directory: Path, prefix: list[str], python: str = sys.executable,
        args: tuple[str, ...] = (),
    ) -> None:  # fmt: skip
        env = {**os.environ, "PYTHONPATH": APP_DIR}
        self.proc: subprocess.Popen[str] = procs.popen(
            [*prefix, python, "-c", code, str(directory), *args], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, lasting=True,
        )  # fmt: skip
        self.result: dict[str, object] = {}

    def next(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            assert self.proc.stderr is not None
            raise AssertionError(f"the cleaner ended: {self.proc.stderr.read()[-2000:]}")
        word, _, rest = line.strip().partition(" ")
        if word == "result":
            self.result = json.loads(rest)
        return word

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        stop_group(self.proc)


def links_to(pid: int, ino: int) -> bool:
    """Whether any fd link of `pid` (read as root with every capability) is the inode."""
    for entry in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.stat(f"/proc/{pid}/fd/{entry}").st_ino == ino:
                return True
        except OSError:
            continue
    return False


def keepers_end(result: dict[str, object]) -> None:
    """Wait until the keepers a cleaner's `result` names have exited (their handoffs over)."""
    keepers = result["keepers"]
    assert isinstance(keepers, list)
    wait_for(lambda: not any(procs.alive(pid) for pid in keepers), what="the keeper to end")
