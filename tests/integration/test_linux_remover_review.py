"""Review findings on the Linux remover (issue 12's exact lock matching, keepers' own locks).

Real files and real flock; where the kernel's paging of `/proc/locks` must skip a record (it
does so only when some lock elsewhere is released mid-read), the skip is made through the
`Syscalls.read` seam on the real table's text.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from uvsweep.model import LockState
from uvsweep.probe.linux import ANCHORED_READS
from uvsweep.probe.posix import SYSCALLS, Syscalls
from uvsweep.remove import Policy
from uvsweep.remove.handoff import NEW, Handoff
from uvsweep.remove.handoff import run as run_handoffs
from uvsweep.remove.posix import LinuxRemover

pytestmark = [
    pytest.mark.linux,
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc"),
]

A = "uv-00000000000000aa.lock"


def _key(st: os.stat_result, major_shift: int = 0) -> str:
    return f"{os.major(st.st_dev) + major_shift:02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"


class _SkippedRecord(Syscalls):
    """The real `/proc/locks`, except that the first read made while we hold the file skips our
    own record (and with it the waiter queued behind it, as the kernel's paging does) and
    shows `decoy` instead; every later read shows our record with that waiter behind it."""

    def __init__(self, st: os.stat_result, decoy: str, waiter_pid: int) -> None:
        self.key, self.decoy, self.waiter_pid = _key(st), decoy, waiter_pid
        self.held_reads = 0

    def alone(self, fd: int, keep: bool = False) -> bool | None:
        return False  # the waiter it shows has the file open: the kernel refuses the lease

    def read(self, path: str) -> bytes:
        data = super().read(path)
        if not path.endswith("/locks"):
            return data
        lines = data.decode("latin-1").splitlines()
        ours = [line for line in lines if self.key in line.split()]
        if not ours:
            return data
        self.held_reads += 1
        if self.held_reads == 1:
            kept = [line for line in lines if line not in ours]
            return "\n".join([*kept, self.decoy, ""]).encode()
        waiter = (
            f"{ours[0].split()[0]} -> FLOCK  ADVISORY  WRITE {self.waiter_pid} {self.key} 0 EOF"
        )
        return "\n".join([*lines, waiter, ""]).encode()


@pytest.mark.parametrize("decoy", ["same inode, another device", "a POSIX lock of ours"])
def test_only_our_own_flock_record_on_the_very_file_anchors_a_read(
    lockdir: Path, decoy: str
) -> None:
    """A read that skipped our record must be read again, even when it shows a record of our
    pid on the same inode number of another device, or a POSIX lock of ours on the file: those
    say nothing of the waiters behind our flock (before the fix, either one let the read stand,
    the waiter went unseen and the file was unlinked under it)."""
    path = lockdir / A
    path.touch()
    st = os.stat(path)
    me = os.getpid()
    line = {
        "same inode, another device": f"90: FLOCK  ADVISORY  WRITE {me} {_key(st, 1)} 0 EOF",
        "a POSIX lock of ours": f"90: POSIX  ADVISORY  WRITE {me} {_key(st)} 0 EOF",
    }[decoy]
    calls = _SkippedRecord(st, line, os.getppid())
    result = LinuxRemover(calls=calls).remove([str(lockdir)], Policy())
    assert calls.held_reads >= 2, "the read that skipped our record was trusted"
    assert result.removed == [] and result.handoffs == 0, "the file was unlinked under a waiter"
    assert os.stat(path).st_ino == st.st_ino
    assert [s.state for s in result.skipped] == [LockState.WAITING]


class _CountedReads(Syscalls):
    def __init__(self) -> None:
        self.reads = 0

    def read(self, path: str) -> bytes:
        if path.endswith("/locks"):
            self.reads += 1
        return super().read(path)


def _in_child(body: object, hand_over: Sequence[int]) -> str:
    """Run `body()` (returning a str) in a forked child once this process has closed its
    copies of `hand_over` (as a cleaner does once its keeper has the fds); its answer."""
    read_end, write_end = os.pipe()
    go_read, go_write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(read_end)
            os.close(go_write)
            os.read(go_read, 1)
            os.write(write_end, str(body()).encode())  # type: ignore[operator]
        finally:
            os._exit(0)
    os.close(write_end)
    os.close(go_read)
    for fd in hand_over:
        os.close(fd)
    os.write(go_write, b"g")
    os.close(go_write)
    try:
        with os.fdopen(read_end, "rb") as stream:
            return stream.read().decode()
    finally:
        os.waitpid(pid, 0)


def test_a_keeper_knows_the_lock_it_inherited_as_its_own(lockdir: Path) -> None:
    """In a keeper, the lock it inherited is printed with the cleaner's pid, not its own. Before
    the fix it never found "its" record: every OLD round read the table 25 times (the CPU of a
    keeper waiting for hours) and counted its own lock as another process's."""
    path = lockdir / A
    path.touch()
    dir_fd = os.open(lockdir, os.O_RDONLY | os.O_DIRECTORY)
    old_fd = os.open(path, os.O_RDONLY)
    fcntl.flock(old_fd, fcntl.LOCK_EX)  # taken by this process, as the cleaner takes it
    st = os.fstat(old_fd)
    os.unlink(path)  # the old generation, nobody else uses it

    def keeper_round() -> str:
        calls = _CountedReads()
        remover = LinuxRemover(calls=calls)
        assert remover.own_pid != os.getppid()
        handoff = Handoff(
            calls, dir_fd, str(lockdir), A, old_fd, (st.st_dev, st.st_ino),
            remover._handoff_in_use,
        )  # fmt: skip
        cpu = time.process_time()
        used = remover.handoffs_in_use([handoff])
        return f"{calls.reads} {bool(used)} {time.process_time() - cpu:.4f}"

    reads, used, cpu = _in_child(keeper_round, [old_fd, dir_fd]).split()
    print(f"one keeper round: {reads} reads of /proc/locks, {float(cpu) * 1000:.1f} ms CPU")
    assert int(reads) < ANCHORED_READS and reads == "1", "the keeper's own record was not seen"
    assert used == "False", "the keeper's inherited lock was counted as another process's"


def _stale_lock(fd: int) -> int:
    """Lock the description of `fd` from a child that then exits (a keeper killed right after
    it took the lock): the lock stays on the description, printed with a dead pid."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    return pid


def _new_generation(dir_fd: int) -> int:
    fd = os.open(A, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666, dir_fd=dir_fd)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


@pytest.mark.parametrize("with_waiter", [False, True])
def test_a_handoff_ends_when_its_old_description_was_left_locked_by_a_killed_keeper(
    lockdir: Path, with_waiter: bool
) -> None:
    """A keeper killed after it took over a NEW handoff's try-lock leaves the old description
    locked, with nobody but us to unlock it, printed under a dead pid. Before the fix the
    handoff counted that lock as somebody's for ever (and a uv queued behind it waited for
    ever too)."""
    if with_waiter and not _names_the_dead():
        pytest.skip("in a child PID namespace /proc/locks leaves out a lock whose owner is dead,"
                    " and its waiters: the setup cannot be seen")  # fmt: skip
    waiter: subprocess.Popen[str] | None = None
    (lockdir / A).touch()
    dir_fd = os.open(lockdir, os.O_RDONLY | os.O_DIRECTORY)
    old_fd = os.open(lockdir / A, os.O_RDONLY)
    st = os.fstat(old_fd)
    handoff: Handoff | None = None
    try:
        if with_waiter:  # a uv that opened the file before the unlink
            code = (
                "import fcntl, os, sys, time\n"
                "fd = os.open(sys.argv[1], os.O_RDWR)\n"
                "print('opened', flush=True); sys.stdin.readline()\n"
                "fcntl.flock(fd, fcntl.LOCK_EX)\n"
                "print('locked', flush=True); time.sleep(0.3)\n"
            )
            waiter = subprocess.Popen(
                [sys.executable, "-c", code, str(lockdir / A)], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, text=True, start_new_session=True,
            )  # fmt: skip
            assert waiter.stdout is not None and waiter.stdin is not None
            assert waiter.stdout.readline().strip() == "opened"
        dead = _stale_lock(old_fd)
        os.unlink(A, dir_fd=dir_fd)
        new_fd = _new_generation(dir_fd)
        try:
            if waiter is not None:
                assert waiter.stdin is not None
                waiter.stdin.write("go\n")
                waiter.stdin.flush()
                deadline = time.monotonic() + 10
                while not _waits(st.st_ino) and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert _waits(st.st_ino), "the waiter never queued behind the stale lock"
            # the stale lock, printed under its dead pid; in a child PID namespace with its own
            # /proc, the kernel leaves out a record whose pid it cannot name there (a dead one)
            assert _holders(st.st_ino) == ([dead] if _names_the_dead() else [])
            remover = LinuxRemover()
            handoff = Handoff(
                SYSCALLS, dir_fd, str(lockdir), A, old_fd, (st.st_dev, st.st_ino),
                remover._handoff_in_use,
            )  # fmt: skip
            handoff.state, handoff.new_fd = NEW, new_fd
            left = run_handoffs([handoff], SYSCALLS, 5.0, check=remover.handoffs_in_use)
            assert left == [], "the handoff never ended: its own stale lock kept it going"
            if waiter is not None:
                assert waiter.stdout is not None
                assert waiter.stdout.readline().strip() == "locked"
                assert waiter.wait(10) == 0
        finally:
            if handoff is None:
                os.close(new_fd)
            else:
                handoff.close()  # whatever it still holds
            if waiter is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(waiter.pid, signal.SIGKILL)
                waiter.communicate()
    finally:
        if handoff is None:
            os.close(old_fd)
        os.close(dir_fd)


def _lines(ino: int) -> list[list[str]]:
    return [
        line.split()
        for line in Path("/proc/locks").read_text().splitlines()
        if line.split()[-3].endswith(f":{ino}")
    ]


def _names_the_dead() -> bool:
    """Whether /proc/locks here prints a lock whose owner has exited: not inside a child PID
    namespace, where the kernel cannot translate the dead pid and skips the record."""
    from uvsweep import visibility

    return visibility.detect().sees_all_namespaces


def _waits(ino: int) -> bool:
    return any(parts[1] == "->" for parts in _lines(ino))


def _holders(ino: int) -> list[int]:
    return [int(parts[4]) for parts in _lines(ino) if parts[1] != "->"]


def _children_of(pid: int) -> list[tuple[int, str]]:
    """(pid, state) of the processes whose parent is `pid`, zombies included."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{entry}/stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                found.append((int(entry), fields[0]))
    return found


def test_a_forked_keeper_leaves_no_zombie_in_a_long_lived_process(lockdir: Path) -> None:
    """A tray cleans for weeks: a keeper it forked must never stay behind as its zombie once
    the handoffs are over (before the fix it was reaped only at the next fork)."""
    from uvsweep.remove.handoff import Keeper

    if os.getpid() == 1:
        pytest.skip("the suite is its PID namespace's init: every orphan is reparented to it")
    (lockdir / A).touch()
    dir_fd = os.open(lockdir, os.O_RDONLY | os.O_DIRECTORY)
    old_fd = os.open(lockdir / A, os.O_RDONLY)
    fcntl.flock(old_fd, fcntl.LOCK_EX)
    st = os.fstat(old_fd)
    os.unlink(lockdir / A)
    remover = LinuxRemover()
    handoff = Handoff(
        SYSCALLS, dir_fd, str(lockdir), A, old_fd, (st.st_dev, st.st_ino), remover._handoff_in_use
    )
    try:
        pid = Keeper().fork([handoff], remover.view())
    finally:
        handoff.close()
        os.close(dir_fd)
    deadline = time.monotonic() + 20
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        if (pid, "Z") in _children_of(os.getpid()):
            break  # ended, and left to us to reap
        time.sleep(0.02)
    zombies = [p for p, state in _children_of(os.getpid()) if state == "Z"]
    with contextlib.suppress(ChildProcessError):
        for zombie in zombies:
            os.waitpid(zombie, 0)
    assert pid not in zombies, "the forked keeper is a zombie of ours"
    assert not Path(f"/proc/{pid}").exists(), "the forked keeper never ended"


def test_a_keeper_takes_no_step_before_the_cleaner_lets_go(
    lockdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A keeper's "ready" can come just as the cleaner gives up waiting for it: the cleaner
    kills it and goes on with the same open descriptions (a forked keeper, or its own wait).
    Before the fix the keeper began its rounds at once, and here it let the old lock go (nobody
    else uses the file) while the cleaner still counted on holding it."""
    import signal as signals

    from uvsweep.remove import handoff as handoff_module

    def too_late(ready_r: int, pid: int, who: str) -> None:
        time.sleep(1.5)  # the word came, but after the cleaner stopped waiting
        os.kill(pid, signals.SIGKILL)
        raise OSError(f"{who} did not take over the locks in time")

    monkeypatch.setattr(handoff_module, "_await_ready", too_late)
    (lockdir / A).touch()
    dir_fd = os.open(lockdir, os.O_RDONLY | os.O_DIRECTORY)
    old_fd = os.open(lockdir / A, os.O_RDONLY)
    fcntl.flock(old_fd, fcntl.LOCK_EX)
    st = os.fstat(old_fd)
    os.unlink(lockdir / A)
    remover = LinuxRemover()
    handoff = Handoff(
        SYSCALLS, dir_fd, str(lockdir), A, old_fd, (st.st_dev, st.st_ino), remover._handoff_in_use
    )
    try:
        with pytest.raises(OSError, match="did not take over"):
            handoff_module.Keeper().take([handoff], remover.view())
        other = os.open(f"/proc/self/fd/{old_fd}", os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):  # still ours: the late keeper did nothing
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(other)
    finally:
        handoff.close()
        os.close(dir_fd)


AT_THE_LIMIT = """
import fcntl, os, resource, subprocess, sys
from uvsweep.probe.posix import SYSCALLS
from uvsweep.remove.handoff import NEW, Handoff, Keeper
from uvsweep.remove.posix import LinuxRemover, batch_size_for

limit = int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
remover = LinuxRemover()  # raises the soft limit no further than asked: it is the hard one here
count = batch_size_for(limit)
directory = sys.argv[1]
dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
handoffs = []
for index in range(count):  # a whole batch in NEW: the old file and the new one, both open
    name = f"uv-{index:016x}.lock"
    old = os.open(os.path.join(directory, name), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    os.unlink(name, dir_fd=dir_fd)
    new = os.open(os.path.join(directory, name), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    fcntl.flock(new, fcntl.LOCK_EX)
    st = os.fstat(old)
    handoff = Handoff(SYSCALLS, dir_fd, directory, name, old, (st.st_dev, st.st_ino),
                      remover._handoff_in_use)
    handoff.new_fd, handoff.state = new, NEW
    handoffs.append(handoff)
# a user of every old file, so that the keeper must go on holding the new ones
user = subprocess.Popen(
    [sys.executable, "-c", "import time; time.sleep(600)"], pass_fds=[h.old_fd for h in handoffs],
    start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
)
how = "take"
try:
    pid = Keeper().take(handoffs, remover.view())
except OSError as err:
    how = f"fork ({err})"
    pid = Keeper().fork(handoffs, remover.view())
for handoff in handoffs:
    handoff.close()
print(user.pid, count, pid, how, flush=True)
"""


@pytest.mark.parametrize("limit", [2100, 64])
def test_a_whole_batch_of_handoffs_is_kept_at_the_fd_limit(lockdir: Path, limit: int) -> None:
    """A handoff in NEW keeps two fds (the old file and the new one): a batch is sized for
    that, and at the fd limit (the keeper program's copies of every fd do not fit) a forked
    keeper still takes every one of them over."""
    from tests.redteam.support import keeper_pids, kill_keepers

    before = set(keeper_pids())
    user = 0
    try:
        out = subprocess.run(
            [sys.executable, "-c", AT_THE_LIMIT, str(lockdir), str(limit)],
            capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr
        user_pid, count, pid, how = out.stdout.split(maxsplit=3)
        user = int(user_pid)
        print(f"limit {limit}: {count} handoffs, kept by {how.strip()}")
        assert int(pid) in keeper_pids(), "no keeper holds the handed-over files"
        names = sorted(os.listdir(lockdir))
        assert len(names) == int(count) > 0
        for name in names:  # every new file still locked: by the keeper alone now
            fd = os.open(lockdir / name, os.O_RDONLY)
            try:
                with pytest.raises(BlockingIOError):
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            finally:
                os.close(fd)
    finally:
        if user:
            os.killpg(user, signal.SIGKILL)
        kill_keepers(before)


def test_a_keeper_the_cleaner_gave_up_on_touches_nothing(lockdir: Path) -> None:
    """Should a keeper outlive the kill of a cleaner that gave up waiting for it, the cleaner's
    `STOP` word makes it end having touched nothing (the end of the pipe alone means the cleaner
    is gone, and then the keeper goes on: it alone holds the files)."""
    import json

    from uvsweep.remove.handoff import STOP, keeper_argv

    (lockdir / A).touch()
    dir_fd = os.open(lockdir, os.O_RDONLY | os.O_DIRECTORY)
    old_fd = os.open(lockdir / A, os.O_RDONLY)
    fcntl.flock(old_fd, fcntl.LOCK_EX)
    st = os.fstat(old_fd)
    os.unlink(lockdir / A)  # nobody else uses it: a keeper that went on would let it go
    remover = LinuxRemover()
    handoff = Handoff(
        SYSCALLS, dir_fd, str(lockdir), A, old_fd, (st.st_dev, st.st_ino), remover._handoff_in_use
    )
    job = json.dumps({"view": remover.view(), "handoffs": [handoff.to_json()]}).encode()
    job_file = os.memfd_create("job")
    os.write(job_file, job + b"\n")
    os.lseek(job_file, 0, os.SEEK_SET)
    job_r, job_w = os.pipe()  # the GO/STOP pipe
    ready_r, ready_w = os.pipe()
    keeper = subprocess.Popen(
        keeper_argv(job_file, ready_w, job_r),
        pass_fds=(job_file, job_r, ready_w, dir_fd, old_fd), start_new_session=True,
    )  # fmt: skip
    os.close(job_file)
    os.close(job_r)
    os.close(ready_w)
    try:
        with os.fdopen(ready_r, "rb") as ready:
            assert ready.readline() == b"ready\n"
        os.write(job_w, STOP)
        os.close(job_w)
        job_w = -1
        assert keeper.wait(30) == 3
        other = os.open(f"/proc/self/fd/{old_fd}", os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):  # still ours: the keeper let nothing go
                fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(other)
    finally:
        if keeper.poll() is None:
            keeper.kill()
            keeper.wait()
        if job_w >= 0:
            os.close(job_w)
        handoff.close()
        os.close(dir_fd)


_LATECOMER = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)  # a uv that opened the file before the unlink
print("opened", flush=True)
sys.stdin.readline()
fcntl.flock(fd, fcntl.LOCK_EX)
print("locked", flush=True)
sys.stdin.readline()  # in its critical section until told
"""


def _keeper_program_pids() -> set[int]:
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
                if b"_keeper" in argv and not argv[0].endswith(b"sh"):  # not its launcher
                    found.add(int(entry))
    return found


def test_a_keeper_whose_cleaner_died_before_it_heard_ready_keeps_the_name(lockdir: Path) -> None:
    """Red-team F2: the cleaner is killed (OOM, SIGKILL) after starting its keeper and before
    reading its "ready". The keeper's "ready" then meets a pipe nobody reads: it took that for
    a failed start and exited, so the new file at the name was free while the old file's user
    was still in its critical section, and the next uv locked it (two holders)."""
    from tests import procs
    from uvsweep.remove.handoff import Keeper

    (lockdir / A).touch()
    os.chmod(lockdir / A, 0o666)
    latecomer = procs.popen([sys.executable, "-c", _LATECOMER, str(lockdir / A)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert latecomer.stdin is not None and latecomer.stdout is not None
    assert latecomer.stdout.readline().strip() == "opened"
    before = _keeper_program_pids()
    ready_r, ready_w = os.pipe()
    cleaner = os.fork()
    if cleaner == 0:  # pragma: no cover - the cleaner, killed below
        try:
            os.close(ready_r)
            dir_fd = os.open(lockdir, os.O_RDONLY | os.O_DIRECTORY)
            old = os.open(A, os.O_RDWR, dir_fd=dir_fd)
            fcntl.flock(old, fcntl.LOCK_EX)
            st = os.fstat(old)
            os.unlink(A, dir_fd=dir_fd)
            new = _new_generation(dir_fd)
            fcntl.flock(old, fcntl.LOCK_UN)  # NEW: the latecomer goes on with the old file
            remover = LinuxRemover()
            handoff = Handoff(SYSCALLS, dir_fd, str(lockdir), A, old, (st.st_dev, st.st_ino),
                              remover._handoff_in_use)  # fmt: skip
            handoff.state, handoff.new_fd = NEW, new
            os.write(ready_w, b"x")
            Keeper().take([handoff], remover.view())
            time.sleep(60)
        finally:
            os._exit(0)
    os.close(ready_w)
    keeper = None
    try:
        assert os.read(ready_r, 1) == b"x"
        latecomer.stdin.write("go\n")
        latecomer.stdin.flush()
        assert latecomer.stdout.readline().strip() == "locked"  # in its critical section
        deadline = time.monotonic() + 20
        while keeper is None and time.monotonic() < deadline:
            keeper = next(iter(_keeper_program_pids() - before), None)
        assert keeper is not None, "no keeper program started"
        os.kill(cleaner, signal.SIGKILL)  # before it could read the keeper's "ready"
        os.waitpid(cleaner, 0)
        time.sleep(1.5)  # the keeper has started, said its word into the void, and acted
        fd = os.open(lockdir / A, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):  # the name stays locked: the next uv waits
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
        assert procs.alive(keeper), "the keeper let the files go"
    finally:
        os.close(ready_r)
        with contextlib.suppress(ChildProcessError, ProcessLookupError):
            os.kill(cleaner, signal.SIGKILL)
            os.waitpid(cleaner, 0)
        with contextlib.suppress(OSError, ValueError):
            latecomer.stdin.write("done\n")
            latecomer.stdin.flush()
        latecomer.wait(10)
        latecomer.stdin.close()
        latecomer.stdout.close()
    if keeper is not None:  # it ends once the old file's last user is done
        from tests.helpers import wait_keepers_gone

        wait_keepers_gone([keeper])


def test_a_lock_of_ours_on_another_file_system_never_teaches_a_device() -> None:
    """Red-team F1: our lock on a file of another file system that only shares the inode number
    (a keeper's new file, printed with our pid) taught `known` the wrong device for this one,
    over the device learned exactly from our fd's fdinfo: this file system's holders and waiters
    then went unseen, and a keeper's anchor never showed (it ran for ever)."""
    from uvsweep.probe.linux import parse_lock_table

    here = os.makedev(0, 0x30)  # printed 00:30; our lock is on 00:31, another file system
    me = 4242
    text = "\n".join([
        f"1: FLOCK  ADVISORY  WRITE {me} 00:31:7 0 EOF",  # ours, on the other file system
        "1: -> FLOCK  ADVISORY  WRITE 999 00:31:7 0 EOF",
        "2: FLOCK  ADVISORY  WRITE 555 00:30:7 0 EOF",  # a uv holding this file system's ino 7
        "3: FLOCK  ADVISORY  WRITE 557 00:30:9 0 EOF",  # and another holding its ino 9
        "3: -> FLOCK  ADVISORY  WRITE 556 00:30:9 0 EOF",
    ])  # fmt: skip
    known = {here: (0, 0x30)}  # learned from fdinfo
    table = parse_lock_table(text, me)
    remover = LinuxRemover()
    remover.known = known
    remover._table = table
    held = remover.busy_use(here, 7)
    assert held is not None and [h.pid for h in held.holders] == [555]
    assert known == {here: (0, 0x30)}, "a device was learned from another file's lock"
    assert remover.pre_lock_use(here, 9) is not None  # 557 and its waiter are still seen
