"""Red team: the P2 fix (`Handoff._set_aside`, `MAX_RETAKES`, `LinuxRemover.replaced_in_use`),
attacked with real files, real flock and real processes. Each test reproduces a finding of
"Third review: the P2 fix" in FINDINGS.md (Q1 to Q5). Each was `xfail(strict=True)` and failed
on the P2 fix as it was (`10c08a3`); each passes with its fix.

The handoff runs in a process of its own as `nobody` (a cleaner that is not root: the P2 fix
closes a replaced file on what its remover can see, and `nobody` cannot see root's fds); root
processes play the other user's uv. The handoff process is the real `Handoff` with the real
`LinuxRemover` look, driven line by line (`HANDOFF`); `nobody` owns the next generation it
made, so it may rename a fresh file over it in a sticky dir, as the P2 planter does. Q3, Q4
and Q5 hold for a root cleaner too: their handoffs run in the test process. Q2 is also played
with the waiter as pid 1 of the handoff process's own PID namespace (a mutant of the look that
dropped pid 1 survived every other test), and so is the old file's waiter seen behind the
remover's confirming try-lock (`waiting_behind_us`; the same mutant there, run 6).

Every check is exclusive try-locks held at once on the files uv processes would lock (all free:
as many uv processes in their critical sections), never a wait for a child's word, so a loaded
machine changes nothing but the time taken.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import shutil
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import procs
from tests.conftest import APP_DIR, flock_held, need, other_user_python
from tests.helpers import A
from tests.redteam.support import handoff_after_unlink, stop, wait_for
from uvsweep.probe.posix import Syscalls
from uvsweep.remove.handoff import NEW, Handoff, run
from uvsweep.remove.posix import LinuxRemover

pytestmark = [
    pytest.mark.linux,
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc"),
]

#: A handoff as `LinuxRemover` leaves it after an unlink (the old file locked by us, unlinked),
#: run by a cleaner that is not root. It says `new PID OLD_FD` once in NEW (a file of its own
#: locked at the name). Then, per line on stdin:
#: - `replace`: a fresh file of its own is renamed over the name (the P2 planter: nobody owns
#:   the file it replaces) and one round runs with the old file still in use; it says how many
#:   replaced files it keeps and whether it holds the name;
#: - `finish SECONDS`: the old file's user is done; rounds run with the remover's own look (the
#:   lock table, the fd walk, the confirming try-lock) for at most SECONDS; it says its state.
HANDOFF = textwrap.dedent(
    """
    import fcntl, os, sys
    sys.path.insert(0, sys.argv[3])
    from uvsweep.probe.posix import Syscalls
    from uvsweep.remove.handoff import Handoff, run
    from uvsweep.remove.posix import LinuxRemover

    directory, name = sys.argv[1], sys.argv[2]
    path = os.path.join(directory, name)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    fcntl.flock(fd, fcntl.LOCK_EX)
    st = os.fstat(fd)
    os.unlink(path)
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    remover = LinuxRemover()
    handoff = Handoff(Syscalls(), dir_fd, directory, name, fd, (st.st_dev, st.st_ino),
                      remover._handoff_in_use)
    handoff.replaced_in_use = remover.replaced_in_use  # as `LinuxRemover._handoff` passes it
    handoff.warn = lambda message: None
    handoff.step(used=True)  # a latecomer has the old file: the next generation is ours
    print("new", os.getpid(), fd, handoff.state, flush=True)
    for n, line in enumerate(sys.stdin):
        word = line.split()
        if word[0] == "replace":
            fresh = os.path.join(directory, f".fresh-{n}")
            os.close(os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            os.rename(fresh, path)
            handoff.step(used=True)
            print(len(handoff.replaced), handoff.new_fd is not None, flush=True)
        elif word[0] == "finish":
            run([handoff], Syscalls(), wait=float(word[1]), check=remover.handoffs_in_use)
            print(handoff.state, flush=True)
    """
)

#: Another user's uv (root here): opens the name, says `opened INO FD`, and takes its blocking
#: `flock` at the first line on stdin (at once with `now`), saying `locked` when it has it.
UV = textwrap.dedent(
    """
    import fcntl, os, sys, time
    fd = os.open(sys.argv[1], os.O_RDWR)
    print("opened", os.fstat(fd).st_ino, fd, flush=True)
    if sys.argv[2] != "now":
        sys.stdin.readline()  # preempted between its open and its flock
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("locked", flush=True)
    time.sleep(600)
    """
)


class Driven:
    """A child process spoken to by lines."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.link = ""  # a uv's open lock file, as a /proc fd link (`start_uv`)

    def say(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def hear(self, timeout: float = 30.0) -> str | None:
        """Its next line, or None if none comes within `timeout` (or it ended)."""
        out = self.proc.stdout
        assert out is not None
        if not select.select([out], [], [], timeout)[0]:
            return None
        return out.readline().strip() or None


@pytest.fixture
def sticky(shared_tmp: Path) -> Path:
    need(
        other_user_python() is not None,
        "root and the user nobody (setpriv, util-linux) to run as another user",
    )
    shared_tmp.chmod(0o1777)  # like /tmp: anybody may create a name, only its owner remove it
    return shared_tmp


#: How the handoff process's `/proc` is mounted: as the host's, or `hidepid=2` (a new proc
#: instance in a mount namespace of its own), where other users' processes are not even listed
#: (`walk_fds` then counts none of them as hidden).
PROCS = ["plain", "hidepid=2"]


@pytest.fixture
def handoff(sticky: Path, request: pytest.FixtureRequest) -> Iterator[Driven]:
    found = other_user_python()
    assert found is not None
    uid, gid, python = found
    as_nobody = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"]
    argv = [*as_nobody, python, "-c", HANDOFF, str(sticky), A, APP_DIR]
    proc = getattr(request, "param", "plain")
    if proc != "plain":
        script = f'mount -t proc -o {proc} proc /proc || exit 99; exec "$@"'
        argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", *argv]
    child: subprocess.Popen[str] = procs.popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, lasting=True,
        env=procs.marked_env({"PATH": "/usr/bin:/bin"}),
    )  # fmt: skip
    try:
        if proc != "plain" and child.stdout is not None:
            ready = select.select([child.stdout], [], [], 30.0)[0]
            need(bool(ready) and child.poll() != 99, f"a proc mount with {proc} (root, unshare)")
        yield Driven(child)
    finally:
        stop(child)


@pytest.fixture
def uvs() -> Iterator[list[Driven]]:
    """Root's uv processes a test starts (`start_uv`); all killed at the end."""
    started: list[Driven] = []
    yield started
    for one in started:
        if one.proc.poll() is None:
            os.killpg(one.proc.pid, signal.SIGCONT)  # a stopped one, too, goes at once
        stop(one.proc)


def start_uv(started: list[Driven], path: Path, *, now: bool) -> Driven:
    child: subprocess.Popen[str] = procs.popen(
        [sys.executable, "-c", UV, str(path), "now" if now else "later"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, lasting=True,
    )  # fmt: skip
    one = Driven(child)
    started.append(one)
    said = one.hear()
    assert said is not None and said.startswith("opened"), said
    one.link = f"/proc/{child.pid}/fd/{said.split()[2]}"  # its open file, as it sees it
    return one


def _in_new(handoff: Driven) -> tuple[int, int]:
    said = handoff.hear()
    assert said is not None, "the handoff process said nothing"
    word, pid, old_fd, state = said.split()
    assert (word, state) == ("new", "new"), said
    return int(pid), int(old_fd)


def _waiting_on(ino: int) -> bool:
    """Whether `/proc/locks` shows a waiter on inode `ino` (any device)."""
    text = Path("/proc/locks").read_text()
    return any("->" in line and line.split()[-3].endswith(f":{ino}") for line in text.splitlines())


def two_in(*links: str) -> bool:
    """Whether every one of these files (each through a /proc fd link: a process's own open
    file, as it sees it) can be locked exclusively at once: as many processes in their critical
    sections of the one lock. The test's own locks go with its opens, at once."""
    fds: list[int] = []
    try:
        for link in links:
            fds.append(os.open(link, os.O_RDONLY))
            fcntl.flock(fds[-1], fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    finally:
        for fd in fds:
            os.close(fd)
    return True


def _deleted_link(pid: int) -> str:
    """The /proc fd link of the unlinked lock file process `pid` has open."""
    for entry in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/fd/{entry}").endswith(f"/{A} (deleted)"):
                return f"/proc/{pid}/fd/{entry}"
    raise AssertionError(f"pid {pid} has no unlinked {A} open")


# ---- Q1: a hidden opener of the replaced file ------------------------------------------------


@pytest.mark.parametrize("handoff", PROCS, indirect=True)
def test_a_replaced_file_another_users_uv_has_open_stays_locked(
    sticky: Path, handoff: Driven, uvs: list[Driven]
) -> None:
    path = sticky / A
    pid, old_fd = _in_new(handoff)
    assert flock_held(path)  # the next generation, nobody's own file, is locked at the name
    opener = start_uv(uvs, path, now=False)  # root's uv opened it; preempted before its flock
    handoff.say("replace")  # nobody renames a fresh file over the name: re-taken
    kept, named = (handoff.hear() or "? ?").split()
    assert named == "True" and flock_held(path)
    # when root's uv runs again, its flock must wait behind the handoff's lock on the file it
    # opened: the handoff is still in NEW, the old file its latecomer's, one at a time
    assert not two_in(opener.link, f"/proc/{pid}/fd/{old_fd}"), (
        f"two holders: root's uv can lock the replaced file it opened ({kept} kept: it was"
        " closed) while the old file's user can lock the old inode"
    )


# ---- Q2: a replaced file's waiter, seen once, is forgotten at its turn ----------------------


def test_a_waiter_seen_on_a_replaced_file_is_followed_in_its_turn(
    sticky: Path, handoff: Driven, uvs: list[Driven]
) -> None:
    path = sticky / A
    _in_new(handoff)
    ino = path.stat().st_ino
    waiter = start_uv(uvs, path, now=True)  # root's uv waits behind the handoff's lock
    wait_for(lambda: _waiting_on(ino), what="root's uv waiting on the next generation")
    handoff.say("replace")
    assert handoff.hear() == "1 True"  # seen waiting: kept, as the P2 fix intends
    os.kill(waiter.proc.pid, signal.SIGSTOP)  # its user presses Ctrl-Z while it waits
    wait_for(lambda: not _waiting_on(ino), what="the stopped waiter out of the lock table")
    handoff.say("finish 3")  # the old file's user is done: the replaced file's turn
    state = handoff.hear()
    # `fg`: it waits again on the replaced file, which must not be free while a new uv can
    # lock the file at the name
    assert not two_in(waiter.link, str(path)), (
        f"two holders: the replaced file root's uv waits on and the file at the name are both"
        f" free (handoff {state})"
    )


#: The init (pid 1) of a PID namespace of its own, as root, with its namespace's proc at /proc:
#: it starts the handoff process (argv[3:], as nobody, on its own stdin and stdout), then, at a
#: line on fd argv[1], opens argv[2] and waits in a blocking `flock` there: root's uv waiting
#: on the next generation, as pid 1 of the namespace the cleaner runs in. At the end of that fd
#: it exits, and the kernel ends everything in its namespace.
INIT = textwrap.dedent(
    """
    import fcntl, os, subprocess, sys, time
    subprocess.Popen(sys.argv[3:])
    with os.fdopen(int(sys.argv[1])) as told:
        if not told.readline():
            sys.exit(0)
    fd = os.open(sys.argv[2], os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    time.sleep(600)
    """
)


class InitWaits:
    """`HANDOFF` (as nobody) in a PID namespace whose init is root's uv (`INIT`)."""

    def __init__(self, proc: subprocess.Popen[str], told: int) -> None:
        self.handoff = Driven(proc)  # unshare's stdin and stdout: the handoff's
        self.proc, self.told = proc, told

    def init_pid(self) -> int:
        """The init's pid as this process sees it (the only child of `unshare --fork`)."""
        for pid in procs.pids():
            status = procs.read(pid, "status").decode(errors="replace").splitlines()
            fields = dict(line.split(":", 1) for line in status if ":" in line)
            if fields.get("PPid", "").strip() == str(self.proc.pid):
                assert fields.get("NSpid", "").split()[-1:] == ["1"], fields.get("NSpid")
                return pid
        raise AssertionError("the namespace's init is not running")

    def wait_on(self, path: Path) -> str:
        """The init opens `path` (the file at the name now) and waits on it; the /proc link of
        its open file, once its namespace's lock table (the one the handoff reads) shows a
        waiter with pid 1 on that file."""
        named = path.stat()
        key, ino = (named.st_dev, named.st_ino), named.st_ino
        os.write(self.told, b"wait\n")
        pid = self.init_pid()
        locks = Path(f"/proc/{pid}/root/proc/locks")  # its proc, in its mount namespace

        def waiting() -> bool:
            return any(
                parts[1:2] == ["->"] and parts[5] == "1" and parts[6].endswith(f":{ino}")
                for parts in (line.split() for line in locks.read_text().splitlines())
            )

        wait_for(waiting, what="the namespace's init (pid 1 there) waiting on the next generation")
        for fd in os.listdir(f"/proc/{pid}/fd"):
            link = f"/proc/{pid}/fd/{fd}"
            with contextlib.suppress(OSError):
                opened = os.stat(link)
                if (opened.st_dev, opened.st_ino) == key:
                    return link
        raise AssertionError("the init has not the next generation open")


@pytest.fixture
def init_waits(sticky: Path) -> Iterator[InitWaits]:
    need(shutil.which("unshare") is not None, "unshare (Debian package util-linux)")
    argv = ["unshare", "--pid", "--fork", "--mount-proc", "true"]
    probe = procs.run(argv, capture_output=True, timeout=30)
    need(probe.returncode == 0, "unshare --pid --fork --mount-proc (util-linux; root)")
    found = other_user_python()
    assert found is not None
    uid, gid, python = found
    as_nobody = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"]
    argv = [*as_nobody, python, "-c", HANDOFF, str(sticky), A, APP_DIR]
    read_end, told = os.pipe()
    try:
        child: subprocess.Popen[str] = procs.popen(
            ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", INIT,
             str(read_end), str(sticky / A), *argv],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, lasting=True,
            pass_fds=[read_end], env=procs.marked_env({"PATH": "/usr/bin:/bin"}),
        )  # fmt: skip
    finally:
        os.close(read_end)
    try:
        yield InitWaits(child, told)
    finally:
        os.close(told)
        stop(child)  # SIGKILL reaches an init from here even while it is stopped: all of it ends


def test_a_waiter_seen_on_a_replaced_file_is_followed_in_its_turn_even_as_pid_1(
    sticky: Path, init_waits: InitWaits
) -> None:
    """Q2 with the waiter as its namespace's init: pid 1 is a pid like any other (the look
    keeps every pid above 0; 0 is a process of another namespace)."""
    path = sticky / A
    handoff = init_waits.handoff
    _in_new(handoff)
    waiter = init_waits.wait_on(path)  # root's uv waits behind the handoff's lock, as pid 1
    handoff.say("replace")
    assert handoff.hear() == "1 True"  # seen waiting: kept, as the P2 fix intends
    init = init_waits.init_pid()
    os.kill(init, signal.SIGSTOP)  # Ctrl-Z while it waits (SIGSTOP reaches an init from here)
    ino = os.stat(waiter).st_ino
    wait_for(lambda: not _waiting_on(ino), what="the stopped waiter out of the lock table")
    handoff.say("finish 3")  # the old file's user is done: the replaced file's turn
    state = handoff.hear()
    # `fg`: it waits again on the replaced file, which must not be free while a new uv can
    # lock the file at the name
    assert not two_in(waiter, str(path)), (
        f"two holders: the replaced file the namespace's init (pid 1) waits on and the file at"
        f" the name are both free (handoff {state})"
    )


# ---- Q3: a replaced file renamed away before it was unlinked --------------------------------


def test_a_replaced_file_renamed_away_and_unlinked_is_closed_only_if_nobody_has_it_open(
    lockdir: Path, uvs: list[Driven]
) -> None:
    path = lockdir / A
    handoff, latecomer = handoff_after_unlink(lockdir, Syscalls())
    handoff.replaced_in_use = LinuxRemover().replaced_in_use  # as a cleaner's handoff has it
    try:
        handoff.step(used=True)
        assert handoff.state == NEW and flock_held(path)
        opener = start_uv(uvs, path, now=False)  # a uv opened the next generation, preempted
        # whoever may (its owner, the dir's owner, root) moves it away and then removes it, and
        # a fresh file is put at the name
        away = lockdir / ".moved"
        os.rename(path, away)
        os.unlink(away)
        path.touch()
        handoff.step(used=True)  # re-taken: the file at the name is ours again
        assert flock_held(path)
        # when the opener runs again, its flock must wait behind our lock on the file it opened
        assert not two_in(opener.link, _deleted_link(latecomer.pid)), (
            f"two holders: the opener can lock the replaced file ({len(handoff.replaced)} kept:"
            " it was closed) while the old file's user can lock the old inode"
        )
    finally:
        stop(latecomer)
        handoff.close()
        os.close(handoff.dir_fd)


# ---- Q4: a replaced file with a name elsewhere, in its turn ----------------------------------


def test_a_replaced_file_renamed_away_is_followed_in_its_turn(
    lockdir: Path, uvs: list[Driven]
) -> None:
    path = lockdir / A
    handoff, latecomer = handoff_after_unlink(lockdir, Syscalls())
    remover = LinuxRemover()
    handoff.replaced_in_use = remover.replaced_in_use  # as a cleaner's handoff has it
    try:
        handoff.step(used=True)
        assert handoff.state == NEW and flock_held(path)
        opener = start_uv(uvs, path, now=False)  # a uv opened the next generation, preempted
        os.rename(path, lockdir / ".moved")  # moved away by whoever may (owner, dir owner, root)
        path.touch()  # and a fresh file put at the name
        handoff.step(used=True)
        assert len(handoff.replaced) == 1 and flock_held(path)  # kept: it has a name
        stop(latecomer)  # the old file's user is done: the replaced file's turn
        run([handoff], Syscalls(), wait=2.0, check=remover.handoffs_in_use)
        # when the opener runs again, a new uv at the name must still wait
        assert not two_in(opener.link, str(path)), (
            f"two holders: the replaced file the opener has open and the file at the name are"
            f" both free (handoff {handoff.state})"
        )
    finally:
        stop(latecomer)
        handoff.close()
        os.close(handoff.dir_fd)


# ---- Q5: one look per replaced file, inside the round ------------------------------------------


class _Walks(Syscalls):
    """The real OS calls; counts the walks of /proc, and asks to stop (a Ctrl-C) at the first
    one once `armed`."""

    def __init__(self) -> None:
        self.walks = 0
        self.armed = False
        self.at_stop = -1

    def list_dir(self, where: int | str) -> list[str]:
        if where == "/proc":
            self.walks += 1
            if self.armed and self.at_stop < 0:
                self.at_stop = self.walks
        return super().list_dir(where)


def test_ctrl_c_is_honoured_after_one_pass_when_every_next_generation_is_removed(
    lockdir: Path,
) -> None:
    count = 50
    calls = _Walks()
    remover = LinuxRemover(calls=calls)
    handoffs: list[Handoff] = []
    dir_fd = os.open(lockdir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for index in range(count):
            name = f"uv-{index:016x}.lock"
            fd = os.open(lockdir / name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
            fcntl.flock(fd, fcntl.LOCK_EX)
            st = os.fstat(fd)
            os.unlink(lockdir / name)
            handoff = Handoff(calls, dir_fd, str(lockdir), name, fd, (st.st_dev, st.st_ino),
                              remover._handoff_in_use)  # fmt: skip
            handoff.replaced_in_use = remover.replaced_in_use  # as `LinuxRemover._handoff`
            handoff.warn = lambda _message: None
            handoff.step(used=True)  # each old file has a latecomer: NEW, ours at each name
            handoffs.append(handoff)
        assert all(h.state == NEW for h in handoffs)
        for index in range(count):  # a tmp cleaner: `rm -f /tmp/uv-*.lock`
            os.unlink(lockdir / f"uv-{index:016x}.lock")
        calls.armed = True  # and Ctrl-C comes with the next look at /proc
        before = calls.walks
        run(handoffs, calls, wait=None, stop=lambda: calls.at_stop > 0,
            check=set)  # fmt: skip
        assert calls.walks > before  # the re-takes looked (the P2 rule)
        after = calls.walks - calls.at_stop
        assert after <= 10, f"{after} walks of /proc after Ctrl-C, for {count} handoffs"
    finally:
        for handoff in handoffs:
            handoff.close()
        os.close(dir_fd)


# ---- run 6: the old file's waiter behind our confirming try-lock, as pid 1 -------------------

#: A handoff as in `HANDOFF`, in NEW (`new PID OLD_FD INO`), whose remover's calls stop twice
#: for a line on stdin: once its confirming try-lock of the old file is taken (`confirming`:
#: the test starts a waiter behind it), and before that lock's unlock (`unlocking`). At a line
#: it runs rounds with the remover's own look for 3 s and says its state.
CONFIRMING = textwrap.dedent(
    """
    import fcntl, os, sys
    sys.path.insert(0, sys.argv[3])
    from uvsweep.probe.posix import LOCK_EX, LOCK_NB, LOCK_UN, Syscalls
    from uvsweep.remove.handoff import Handoff, run
    from uvsweep.remove.posix import LinuxRemover

    class Stops(Syscalls):
        stops = ["confirming", "unlocking"]

        def flock(self, fd, operation):
            if fd == old and operation == LOCK_UN and self.stops[:1] == ["unlocking"]:
                print(self.stops.pop(0), flush=True)
                sys.stdin.readline()
            super().flock(fd, operation)
            if fd == old and operation == LOCK_EX | LOCK_NB and self.stops[:1] == ["confirming"]:
                print(self.stops.pop(0), flush=True)
                sys.stdin.readline()

    directory, name = sys.argv[1], sys.argv[2]
    path = os.path.join(directory, name)
    old = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    fcntl.flock(old, fcntl.LOCK_EX)
    st = os.fstat(old)
    os.unlink(path)
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    remover = LinuxRemover(calls=Stops())
    handoff = Handoff(Syscalls(), dir_fd, directory, name, old, (st.st_dev, st.st_ino),
                      remover._handoff_in_use)
    handoff.replaced_in_use = remover.replaced_in_use
    handoff.warn = lambda message: None
    handoff.step(used=True)  # a latecomer had the old file: the next generation is ours
    print("new", os.getpid(), old, st.st_ino, handoff.state, flush=True)
    sys.stdin.readline()
    run([handoff], Syscalls(), wait=3.0, check=remover.handoffs_in_use)
    print(handoff.state, flush=True)
    sys.stdin.readline()
    """
)

#: As `INIT`, but the file it opens and waits on is the line it is told.
INIT_TOLD = textwrap.dedent(
    """
    import fcntl, os, subprocess, sys, time
    subprocess.Popen(sys.argv[2:])
    with os.fdopen(int(sys.argv[1])) as told:
        path = told.readline().strip()
    if not path:
        sys.exit(0)
    fd = os.open(path, os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    time.sleep(600)
    """
)


def test_the_old_files_waiter_seen_behind_our_confirming_lock_is_followed_even_as_pid_1(
    sticky: Path,
) -> None:
    """Kills `waiting_behind_us`' waiter pids `e.pid > 0` -> `> 1` (run 6): a cleaner that is
    not root confirms the old file free with its own try-lock; root's uv, pid 1 of the
    cleaner's PID namespace, opens the old file and waits behind that lock, and is stopped
    (Ctrl-Z) before the unlock, out of the lock table, its fds hidden. Followed, it keeps the
    next generation locked; not followed, the handoff ends and, at `fg`, root's uv locks the old
    inode while a new uv can lock the file at the name."""
    need(shutil.which("unshare") is not None, "unshare (Debian package util-linux)")
    probe = procs.run(["unshare", "--pid", "--fork", "--mount-proc", "true"], timeout=30)
    need(probe.returncode == 0, "unshare --pid --fork --mount-proc (util-linux; root)")
    found = other_user_python()
    assert found is not None
    uid, gid, python = found
    as_nobody = ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups"]
    argv = [*as_nobody, python, "-c", CONFIRMING, str(sticky), A, APP_DIR]
    read_end, told = os.pipe()
    try:
        child: subprocess.Popen[str] = procs.popen(
            ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", INIT_TOLD,
             str(read_end), *argv],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, lasting=True,
            pass_fds=[read_end], env=procs.marked_env({"PATH": "/usr/bin:/bin"}),
        )  # fmt: skip
    finally:
        os.close(read_end)
    namespace = InitWaits(child, told)
    handoff = namespace.handoff
    try:
        said = (handoff.hear() or "").split()
        assert said[:1] == ["new"] and said[-1:] == ["new"], said
        pid, old_fd, ino = said[1:4]
        handoff.say("finish")
        assert handoff.hear() == "confirming"  # the old file free: our try-lock holds it
        os.write(told, f"/proc/{pid}/fd/{old_fd}\n".encode())  # root's uv opens it, waits
        init = namespace.init_pid()
        locks = Path(f"/proc/{init}/root/proc/locks")  # the lock table the handoff reads

        def waiting_as_pid_1() -> bool:
            return any(
                parts[1:2] == ["->"] and parts[5] == "1" and parts[6].endswith(f":{ino}")
                for parts in (line.split() for line in locks.read_text().splitlines())
            )

        wait_for(waiting_as_pid_1, what="the namespace's init (pid 1) waiting on the old file")
        waiter = next(
            link for link in (f"/proc/{init}/fd/{fd}" for fd in os.listdir(f"/proc/{init}/fd"))
            if os.path.exists(link) and str(os.stat(link).st_ino) == ino
        )  # fmt: skip
        handoff.say("go")  # the remover reads the table behind its lock: pid 1 waits there
        assert handoff.hear() == "unlocking"
        os.kill(init, signal.SIGSTOP)  # Ctrl-Z while it waits
        wait_for(lambda: not _waiting_on(int(ino)), what="the stopped waiter out of the table")
        handoff.say("go")
        state = handoff.hear()
        # `fg`: it waits again on the old file, which our unlock left free: the file at the
        # name must not be free too
        assert not two_in(waiter, str(sticky / A)), (
            f"two holders: the old file the namespace's init (pid 1) waits on and the file at"
            f" the name are both free (handoff {state})"
        )
    finally:
        os.close(told)
        stop(child)  # SIGKILL reaches an init from here even while it is stopped: all of it ends
