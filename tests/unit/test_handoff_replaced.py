"""What a handoff keeps of next generations that left the name (red-team P2): real files, real
flock, real processes as the files' other users, and the Linux remover's own look (fd walk, lock
table) where a rule needs it.

A handoff is built as `LinuxRemover` builds one after an unlink: the old file locked by us and
unlinked; `step(used=True)` is one round in which the old file is still in use. The old file
here has no other user: `used` is what the test says.
"""

from __future__ import annotations

import errno
import fcntl
import os
import select
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import procs
from tests.conftest import Holder, flock_held, lock_free
from tests.helpers import A
from uvsweep.probe.posix import Syscalls
from uvsweep.remove.handoff import DONE, MAX_RETAKES, NEW, Handoff
from uvsweep.remove.posix import LinuxRemover

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc")

said: list[str] = []


@pytest.fixture(autouse=True)
def _fresh_warnings() -> Iterator[None]:
    said.clear()
    yield
    said.clear()


def handoff_in_new(directory: Path, look: bool = True) -> Handoff:
    """Our own next generation at `directory/A`, locked; the old file unlinked, unlocked.
    `look`: with the Linux remover's look at replaced files (else: every one counts as used)."""
    path = directory / A
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    fcntl.flock(fd, fcntl.LOCK_EX)
    st = os.fstat(fd)
    os.unlink(path)
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    handoff = Handoff(Syscalls(), dir_fd, str(directory), A, fd, (st.st_dev, st.st_ino),
                      lambda _h: True)  # fmt: skip
    handoff.warn = said.append
    if look:
        handoff.replaced_in_use = LinuxRemover().replaced_in_use
    handoff.step(used=True)
    assert handoff.state == NEW and handoff.new_fd is not None and flock_held(path)
    return handoff


def done_with(handoff: Handoff) -> None:
    handoff.close()
    os.close(handoff.dir_fd)


def replace(path: Path) -> None:
    """A fresh file renamed over `path` (the name is never free: P2's planter)."""
    fresh = path.with_name(".fresh")
    os.close(os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    os.rename(fresh, path)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


#: A process that opens the file and keeps it open without locking it (yet): uv between its
#: open and its flock.
OPENER = (
    "import os, sys, time\n"
    "fd = os.open(sys.argv[1], os.O_RDWR)\n"
    "print('opened', flush=True)\n"
    "time.sleep(600)\n"
)


@pytest.fixture
def opener() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        procs.stop(proc, grace=0)


def open_in_another_process(path: Path, started: list[subprocess.Popen[str]]) -> None:
    proc: subprocess.Popen[str] = procs.popen(
        [sys.executable, "-c", OPENER, str(path)], stdout=subprocess.PIPE, text=True, lasting=True
    )
    started.append(proc)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "opened"


# ---- a replaced file nothing can reach is closed at once ----------------------------------------


def test_a_replaced_file_nobody_else_has_open_is_closed_at_once(lockdir: Path) -> None:
    handoff = handoff_in_new(lockdir)
    # ours, to look with afterwards: O_PATH, no open file description the kernel's lease counts
    # (a walk refused some process's links asks it: the test's own look would be a user)
    first = os.open(lockdir / A, os.O_PATH)
    try:
        before = open_fds()
        os.unlink(lockdir / A)  # removed by whoever may (root's tmp cleaner, the dir's owner)
        handoff.step(used=True)
        assert handoff.state == NEW and flock_held(lockdir / A)  # the name is ours again
        assert handoff.replaced == [] and handoff.retakes == 1
        look = os.open(f"/proc/self/fd/{first}", os.O_RDONLY)
        try:
            assert lock_free(look), "the replaced file nobody could reach is still locked"
        finally:
            os.close(look)
        assert open_fds() == before  # one fd for the new file, one less for the replaced
    finally:
        os.close(first)
        done_with(handoff)


@pytest.mark.parametrize("how", ["waits on it", "has it open"])
def test_a_replaced_file_another_process_uses_stays_locked(
    lockdir: Path, hold: type[Holder], opener: list[subprocess.Popen[str]], how: str
) -> None:
    handoff = handoff_in_new(lockdir)
    first = os.open(lockdir / A, os.O_RDONLY)
    try:
        if how == "waits on it":  # a uv that opened our next generation, waiting behind us
            waiter = hold(lockdir / A, wait=True)
        else:  # a uv between its open and its flock
            open_in_another_process(lockdir / A, opener)
        os.unlink(lockdir / A)
        handoff.step(used=True)
        assert handoff.replaced and flock_held(lockdir / A)
        assert not lock_free(first), "a replaced file in use was let go beside the old file's users"
        if how == "waits on it":
            out = waiter.proc.stdout
            assert out is not None and not select.select([out], [], [], 0.3)[0]  # still waits
    finally:
        os.close(first)
        done_with(handoff)


def test_a_replaced_file_with_a_name_elsewhere_stays_locked(lockdir: Path) -> None:
    handoff = handoff_in_new(lockdir)
    first = os.open(lockdir / A, os.O_RDONLY)
    try:
        os.rename(lockdir / A, lockdir / "elsewhere")  # anyone may open it anew there
        handoff.step(used=True)
        assert handoff.replaced and not lock_free(first)
    finally:
        os.close(first)
        done_with(handoff)


@pytest.mark.parametrize("look", ["none", "fails"])
def test_a_replaced_file_is_kept_when_nobody_can_say_who_uses_it(lockdir: Path, look: str) -> None:
    handoff = handoff_in_new(lockdir, look=False)  # "none": no remover's look (every one used)
    if look == "fails":

        def no_fds(_handoff: Handoff, _keys: list[tuple[int, int]]) -> set[tuple[int, int]]:
            raise OSError(errno.EMFILE, "Too many open files")

        handoff.replaced_in_use = no_fds
    first = os.open(lockdir / A, os.O_RDONLY)
    try:
        os.unlink(lockdir / A)
        handoff.step(used=True)
        assert handoff.replaced and not lock_free(first) and flock_held(lockdir / A)
    finally:
        os.close(first)
        done_with(handoff)


# ---- the name is re-taken MAX_RETAKES times at most ---------------------------------------------


def test_the_name_is_taken_again_at_most_max_retakes_times_then_left_with_one_warning(
    lockdir: Path,
) -> None:
    handoff = handoff_in_new(lockdir, look=False)  # the worst case: every replaced file kept
    held: list[int] = []
    try:
        before = open_fds()
        for _ in range(MAX_RETAKES + 4):
            replace(lockdir / A)
            handoff.step(used=True)
        taken = [line for line in said if "taken again" in line]
        left = [line for line in said if "left to whoever" in line]
        assert len(taken) == MAX_RETAKES and len(left) == 1, said
        assert f"{MAX_RETAKES + 1} times" in left[0]
        assert handoff.retakes == MAX_RETAKES and handoff.new_fd is None
        assert not flock_held(lockdir / A)  # the name is left to whoever changes it
        assert len(handoff.replaced) == MAX_RETAKES + 1  # each kept locked for its users
        assert open_fds() - before == MAX_RETAKES  # new_fd's place taken by the last one
        for fd in handoff.replaced:
            held.append(os.open(f"/proc/self/fd/{fd}", os.O_RDONLY))
        assert not any(lock_free(fd) for fd in held)
        for _ in range(2 * len(handoff.replaced) + 2):  # the old file's users are done
            if handoff.step(used=False):
                break
        assert handoff.state == DONE and not handoff.replaced
        assert all(lock_free(fd) for fd in held)  # every kept file let go in its turn
    finally:
        for fd in held:
            os.close(fd)
        done_with(handoff)


def test_a_replaced_file_is_set_aside_when_the_name_is_left_too(lockdir: Path) -> None:
    handoff = handoff_in_new(lockdir)  # with the look: each replaced file is closed at once
    try:
        before = open_fds()
        for _ in range(MAX_RETAKES + 1):
            os.unlink(lockdir / A)
            handoff.step(used=True)
        assert handoff.new_fd is None and handoff.replaced == []
        assert open_fds() - before == -1  # nothing at or beside the name any more
    finally:
        done_with(handoff)


def test_a_keeper_goes_on_counting_the_retakes(lockdir: Path) -> None:
    handoff = handoff_in_new(lockdir, look=False)
    try:
        os.unlink(lockdir / A)
        handoff.step(used=True)
        item = handoff.to_json()
        assert item["retakes"] == 1
        remover = LinuxRemover()
        resumed = remover.resume_handoff(item)
        assert resumed.retakes == 1
        assert resumed.replaced_in_use == remover.replaced_in_use  # the keeper's own look
        older = dict(item)
        del older["retakes"]  # a job from a cleaner before P2's fix
        assert remover.resume_handoff(older).retakes == 0
    finally:
        done_with(handoff)


# ---- the Linux remover's look at replaced files (`LinuxRemover.replaced_in_use`) ---------------


class Look(Syscalls):
    """The real calls, but what the look reads can be made to fail or to see nobody."""

    def __init__(
        self, *, pids: bool = True, table: bytes | OSError | None = None, walk: bool = True
    ) -> None:
        self.pids, self.table, self.walk = pids, table, walk

    def list_dir(self, where: int | str) -> list[str]:
        if where == "/proc" and not self.pids:
            return []  # a walk that sees no process (as one that may look at none)
        if where == "/proc" and not self.walk:
            return ["self", "999999"]  # one process besides us, even alone in a PID namespace
        if isinstance(where, str) and where.endswith("/fd") and not self.walk:
            raise OSError(errno.EMFILE, "Too many open files")  # no fd left to list its fds
        return super().list_dir(where)

    def read(self, path: str) -> bytes:
        if path == "/proc/locks" and self.table is not None:
            if isinstance(self.table, OSError):
                raise self.table
            return self.table
        return super().read(path)


def fd(handoff: Handoff) -> int:
    """Our fd on the file `set_aside` set aside (the handoff's next generation)."""
    assert handoff.new_fd is not None
    return handoff.new_fd


def aside(
    handoff: Handoff, key: tuple[int, int]
) -> tuple[Handoff, list[tuple[int, int]], list[int]]:
    """`replaced_in_use`'s arguments for the file `set_aside` set aside."""
    return handoff, [key], [fd(handoff)]


def set_aside(directory: Path) -> tuple[Handoff, tuple[int, int]]:
    """A handoff whose next generation has just left the name (the handoff still holds it)."""
    handoff = handoff_in_new(directory, look=False)
    st = os.fstat(handoff.new_fd or -1)
    return handoff, (st.st_dev, st.st_ino)


def test_the_look_sees_a_waiter_in_the_lock_table_alone(lockdir: Path, hold: type[Holder]) -> None:
    handoff, key = set_aside(lockdir)
    try:
        hold(lockdir / A, wait=True)  # another user's uv, say: its fds are hidden from us
        os.unlink(lockdir / A)
        assert LinuxRemover(calls=Look(pids=False)).replaced_in_use(
            handoff, [key], [fd(handoff)]
        ) == {key}
        assert LinuxRemover().replaced_in_use(*aside(handoff, key)) == {key}
    finally:
        done_with(handoff)


def test_the_look_counts_a_replaced_file_as_used_when_our_own_record_never_shows(
    lockdir: Path,
) -> None:
    handoff, key = set_aside(lockdir)
    try:
        os.unlink(lockdir / A)
        assert LinuxRemover().replaced_in_use(*aside(handoff, key)) == set()  # nobody: it may go
        # the table read (thrice) never shows our own lock: whoever waits behind it is unknown
        assert LinuxRemover(calls=Look(table=b"")).replaced_in_use(
            handoff, [key], [fd(handoff)]
        ) == {key}
    finally:
        done_with(handoff)


def test_the_look_counts_every_file_as_used_when_the_walk_fails(lockdir: Path) -> None:
    handoff, key = set_aside(lockdir)
    try:
        os.unlink(lockdir / A)
        assert LinuxRemover(calls=Look(walk=False)).replaced_in_use(
            handoff, [key], [fd(handoff)]
        ) == {key}
        assert LinuxRemover().replaced_in_use(handoff, [], []) == set()
    finally:
        done_with(handoff)


def test_an_unreadable_lock_table_is_unknown_once_it_was_read(lockdir: Path) -> None:
    handoff, key = set_aside(lockdir)
    try:
        os.unlink(lockdir / A)
        remover = LinuxRemover(calls=Look(table=PermissionError(errno.EACCES, "denied")))
        # never readable (R13's rule keeps such runs to private dirs): the walk decides
        assert remover.replaced_in_use(*aside(handoff, key)) == set()
        remover._table_ever_read = True  # it was readable a moment ago: unknown, so used
        assert remover.replaced_in_use(*aside(handoff, key)) == {key}
    finally:
        done_with(handoff)


def test_the_readme_states_the_cap_and_the_bound_the_code_has() -> None:
    text = " ".join((Path(__file__).parents[2] / "README.md").read_text().split())
    assert f"the name is taken again at most {MAX_RETAKES} times in one handoff" in text
    assert f"a handoff holds at most {MAX_RETAKES + 4} files open" in text


def test_a_cleaners_handoff_looks_with_its_remover(lockdir: Path) -> None:
    from uvsweep.remove import Target

    path = lockdir / A
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    st = os.fstat(fd)
    dir_fd = os.open(lockdir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    remover = LinuxRemover()
    target = Target(str(lockdir), A, str(path), st.st_dev, st.st_ino, fd, dir_fd)
    handoff = remover._handoff(target)
    try:
        assert handoff.replaced_in_use == remover.replaced_in_use
    finally:
        done_with(handoff)


class OneHidden(Syscalls):
    """The real calls, but one process's fds may not be looked at (a root cleaner without the
    right to look, in some sandbox)."""

    def __init__(self, pid: int, leases: bool = True) -> None:
        self.pid, self.leases = pid, leases

    def alone(self, fd: int) -> bool | None:
        return super().alone(fd) if self.leases else None

    def list_dir(self, where: int | str) -> list[str]:
        if where == f"/proc/{self.pid}/fd":
            raise PermissionError(errno.EACCES, "Permission denied")
        return super().list_dir(where)


def test_one_process_whose_fds_cannot_be_seen_keeps_a_replaced_file_it_has_open(
    lockdir: Path,
) -> None:
    """Red-team Q1, run 5d (`hidden > 0` -> `> 1`): a single process the walk could not look
    into may be a uv between its open and its flock on the replaced file; the kernel's lease
    then says whether it (or anybody) has the file open (B2)."""
    handoff, key = set_aside(lockdir)
    opener = procs.popen([sys.executable, "-c", OPENER, str(lockdir / A)],
                         stdout=subprocess.PIPE, text=True, lasting=True)  # fmt: skip
    try:
        assert opener.stdout is not None and opener.stdout.readline() == "opened\n"
        os.unlink(lockdir / A)
        look = LinuxRemover(calls=OneHidden(opener.pid)).replaced_in_use
        assert look(handoff, [key], [fd(handoff)]) == {key}
        assert look(handoff, [key], []) == {key}  # no fd to ask the lease through: used
        # where no lease can be taken (NFS, say), nobody can tell: used
        unsure = LinuxRemover(calls=OneHidden(opener.pid, leases=False)).replaced_in_use
        assert unsure(handoff, [key], [fd(handoff)]) == {key}
        sleeper = procs.popen([sys.executable, "-c", "import time; time.sleep(600)"], lasting=True)
        try:
            procs.stop(opener, grace=0)
            hidden = LinuxRemover(calls=OneHidden(sleeper.pid)).replaced_in_use
            assert hidden(handoff, [key], [fd(handoff)]) == set()  # nobody else has it open
        finally:
            procs.stop(sleeper, grace=0)
    finally:
        procs.stop(opener, grace=0)
        done_with(handoff)


class LstatFails(Syscalls):
    """The real calls, but the name's lstat fails for another reason than a missing name."""

    def lstat(self, name: str, dir_fd: int) -> os.stat_result:
        raise PermissionError(errno.EACCES, "Permission denied")


def test_a_name_that_cannot_be_looked_at_leaves_the_handoff_as_it_was(lockdir: Path) -> None:
    """Run 5e (`_keep_the_name`'s `except OSError` narrowed): unknown is "keep what we hold and
    ask again next round", never an error out of the handoff's round."""
    handoff = handoff_in_new(lockdir)
    try:
        new_fd = handoff.new_fd
        handoff.calls = LstatFails()
        assert handoff.step(used=True) is False
        assert handoff.state == NEW and handoff.new_fd == new_fd and handoff.replaced == []
        assert handoff.retakes == 0 and flock_held(lockdir / A)
    finally:
        handoff.calls = Syscalls()
        done_with(handoff)


def test_the_name_lost_again_after_a_retake_is_said_again(lockdir: Path) -> None:
    """Run 5e (`self.name_lost = False` after a re-take -> `True`): "cannot be locked" is said
    once for each time the name is lost, not once a handoff."""
    path = lockdir / A
    handoff = handoff_in_new(lockdir)
    try:
        lost = "cannot be locked"
        for round_ in range(2):
            os.unlink(path)
            path.mkdir()  # what is at the name cannot be locked
            handoff.step(used=True)
            handoff.step(used=True)  # said once, not every round
            assert sum(lost in line for line in said) == round_ + 1, said
            path.rmdir()
            handoff.step(used=True)  # the name is free: taken again
            assert flock_held(path) and not handoff.name_lost
    finally:
        done_with(handoff)
