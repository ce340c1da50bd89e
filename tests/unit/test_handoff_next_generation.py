"""Which file a handoff takes as the next generation of a lock, and how it keeps the name
(red-team F5): real files, real flock, real owners (chown needs root), a clock of our own.

A handoff is built here as `LinuxRemover` builds one after an unlink: the old file locked by us
and unlinked. `step(used=True)` is one round in which the old file is still in use.
"""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import flock_held, need
from tests.helpers import A
from uvsweep.probe.posix import Syscalls
from uvsweep.remove.handoff import DONE, FOREIGN_PATIENCE, NEW, OLD, Handoff

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX files and flock")

NOBODY = 65534
OTHER = 4321


class Clock(Syscalls):
    """The real calls, with a monotonic clock the test moves (and a hook on try-locks)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.before_trylock: list[object] = []  # callables run once, before the next try-lock

    def monotonic(self) -> float:
        return self.now

    def flock(self, fd: int, operation: int) -> None:
        if operation == fcntl.LOCK_EX | fcntl.LOCK_NB and self.before_trylock:
            self.before_trylock.pop(0)()  # type: ignore[operator]
        super().flock(fd, operation)


@pytest.fixture
def root() -> None:
    need(os.geteuid() == 0, "root, to give files to other owners (chown)")


@pytest.fixture
def sticky(tmp_path: Path, root: None) -> Path:
    path = tmp_path / "tmp"
    path.mkdir()
    path.chmod(0o1777)  # like /tmp
    return path


def handoff_in_old(directory: Path, calls: Syscalls, old_owner: int = 0) -> Handoff:
    """The old file at `directory/A`, locked by us, unlinked: a handoff in OLD."""
    path = directory / A
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    os.fchown(fd, old_owner, -1)
    fcntl.flock(fd, fcntl.LOCK_EX)
    st = os.fstat(fd)
    os.unlink(path)
    dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    handoff = Handoff(calls, dir_fd, str(directory), A, fd, (st.st_dev, st.st_ino), lambda _h: True)
    handoff.warn = warnings.append
    return handoff


warnings: list[str] = []


@pytest.fixture(autouse=True)
def _fresh_warnings() -> Iterator[None]:
    warnings.clear()
    yield
    warnings.clear()


def plant(path: Path, owner: int) -> int:
    """A regular file at `path` owned by `owner`; its inode number."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    os.fchown(fd, owner, -1)
    ino = os.fstat(fd).st_ino
    os.close(fd)
    return ino


def done_with(handoff: Handoff) -> None:
    handoff.close()
    os.close(handoff.dir_fd)


def new_ino(handoff: Handoff) -> int:
    assert handoff.new_fd is not None
    return os.fstat(handoff.new_fd).st_ino


# ---- the acceptance rule -----------------------------------------------------------------------


@pytest.mark.parametrize("who", ["ours", "root", "the old file's owner", "the dir's owner"])
def test_a_trusted_owners_file_is_taken_at_once(sticky: Path, who: str) -> None:
    owner = {"ours": os.geteuid(), "root": 0, "the old file's owner": OTHER,
             "the dir's owner": NOBODY}[who]  # fmt: skip
    if who == "the dir's owner":
        os.chown(sticky, NOBODY, -1)
    handoff = handoff_in_old(sticky, Clock(), old_owner=OTHER)
    ino = plant(sticky / A, owner)
    try:
        handoff.step(used=True)
        assert handoff.state == NEW
        assert new_ino(handoff) == ino and flock_held(sticky / A)
        assert not warnings
    finally:
        done_with(handoff)


def test_any_owners_file_is_taken_at_once_in_a_dir_without_the_sticky_bit(sticky: Path) -> None:
    sticky.chmod(0o777)  # anyone who may write it removes any file, the old one too
    handoff = handoff_in_old(sticky, Clock())
    ino = plant(sticky / A, NOBODY)
    try:
        handoff.step(used=True)
        assert handoff.state == NEW and new_ino(handoff) == ino
    finally:
        done_with(handoff)


def test_another_users_file_in_a_sticky_dir_is_taken_only_after_the_patience(
    sticky: Path,
) -> None:
    clock = Clock()
    handoff = handoff_in_old(sticky, clock)
    ino = plant(sticky / A, NOBODY)
    try:
        handoff.step(used=True)
        assert handoff.state == OLD and not flock_held(sticky / A)  # tried, found free, let go
        clock.now += FOREIGN_PATIENCE - 0.01
        handoff.step(used=True)
        assert handoff.state == OLD and not warnings
        # another file of nobody's in its place starts the count again
        ino = plant(sticky / "other", NOBODY)
        os.rename(sticky / "other", sticky / A)
        clock.now += 1.0
        handoff.step(used=True)
        clock.now += FOREIGN_PATIENCE - 0.01
        handoff.step(used=True)
        assert handoff.state == OLD
        clock.now += 0.02
        handoff.step(used=True)
        assert handoff.state == NEW and new_ino(handoff) == ino and flock_held(sticky / A)
        assert len(warnings) == 1 and f"uid {NOBODY}'s file" in warnings[0]
    finally:
        done_with(handoff)


def test_the_old_lock_is_kept_while_another_users_file_waits_for_its_patience(
    sticky: Path,
) -> None:
    handoff = handoff_in_old(sticky, Clock())
    plant(sticky / A, NOBODY)
    try:
        handoff.step(used=True)
        assert handoff.old_fd is not None
        other = os.open(f"/proc/self/fd/{handoff.old_fd}", os.O_RDONLY)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(other, fcntl.LOCK_SH | fcntl.LOCK_NB)
        finally:
            os.close(other)
    finally:
        done_with(handoff)


def test_a_file_with_a_second_link_is_not_taken(sticky: Path) -> None:
    handoff = handoff_in_old(sticky, Clock())
    plant(sticky / A, 0)
    os.link(sticky / A, sticky / "elsewhere")  # whoever has the other name can free this one
    try:
        handoff.step(used=True)
        assert handoff.state == OLD and not flock_held(sticky / A)
        os.unlink(sticky / "elsewhere")
        handoff.step(used=True)
        assert handoff.state == NEW
    finally:
        done_with(handoff)


def test_a_file_swapped_in_between_our_open_and_our_lock_is_not_taken(sticky: Path) -> None:
    clock = Clock()
    handoff = handoff_in_old(sticky, clock)
    plant(sticky / A, 0)
    plant(sticky / "swap", NOBODY)
    # the file we opened is replaced by nobody's just before our try-lock: we would lock a
    # file that is no longer at the name
    clock.before_trylock.append(lambda: os.rename(sticky / "swap", sticky / A))
    try:
        handoff.step(used=True)
        assert handoff.state == OLD and handoff.new_fd is None
        assert not flock_held(sticky / A)
    finally:
        done_with(handoff)


@pytest.mark.parametrize("kind", ["fifo", "dir"])
def test_a_fifo_or_a_dir_at_the_name_is_not_taken(sticky: Path, kind: str) -> None:
    handoff = handoff_in_old(sticky, Clock())
    (os.mkfifo if kind == "fifo" else os.mkdir)(sticky / A)
    try:
        handoff.step(used=True)
        assert handoff.state == OLD and handoff.new_fd is None
    finally:
        done_with(handoff)


# ---- the NEW round keeps the name --------------------------------------------------------------


def handoff_in_new(directory: Path, clock: Clock) -> tuple[Handoff, int]:
    """A handoff that has made its own next generation; an fd of that file (for checks)."""
    handoff = handoff_in_old(directory, clock)
    handoff.step(used=True)
    assert handoff.state == NEW and handoff.new_fd is not None
    return handoff, os.open(directory / A, os.O_RDONLY)


def test_a_next_generation_removed_from_the_name_is_replaced_by_ours_at_once(
    sticky: Path,
) -> None:
    handoff, first = handoff_in_new(sticky, Clock())
    try:
        os.unlink(sticky / A)  # its owner (or root, or the dir's owner) removed it
        handoff.step(used=True)
        assert handoff.state == NEW  # never over because the name changed
        assert (sticky / A).exists() and flock_held(sticky / A)
        assert new_ino(handoff) == os.stat(sticky / A).st_ino != os.fstat(first).st_ino
        with pytest.raises(BlockingIOError):  # the removed one stays locked: it may have waiters
            fcntl.flock(first, fcntl.LOCK_SH | fcntl.LOCK_NB)
        assert len(warnings) == 1 and "removed or replaced" in warnings[0]
        handoff.step(used=True)
        assert len(warnings) == 1  # the name is ours again: nothing more to say
        handoff.step(used=False)  # the old file's last user is done: the removed one's turn
        assert handoff.state == NEW and flock_held(sticky / A)  # the name stays ours
        fcntl.flock(first, fcntl.LOCK_SH | fcntl.LOCK_NB)  # its users may lock it now
        fcntl.flock(first, fcntl.LOCK_UN)
        handoff.step(used=False)  # and its last user is done too
        assert handoff.state == DONE and not flock_held(sticky / A)
    finally:
        os.close(first)
        done_with(handoff)


def test_a_next_generation_replaced_by_a_free_file_gets_that_file_locked_at_once(
    sticky: Path,
) -> None:
    handoff, first = handoff_in_new(sticky, Clock())
    try:
        plant(sticky / "other", NOBODY)
        os.rename(sticky / "other", sticky / A)  # anybody's: the name no longer protects
        handoff.step(used=True)
        assert handoff.state == NEW
        assert new_ino(handoff) == os.stat(sticky / A).st_ino and flock_held(sticky / A)
    finally:
        os.close(first)
        done_with(handoff)


def test_a_next_generation_replaced_by_a_held_file_keeps_trying_and_never_ends_the_handoff(
    sticky: Path,
) -> None:
    handoff, first = handoff_in_new(sticky, Clock())
    holder = -1
    try:
        plant(sticky / "other", 0)
        holder = os.open(sticky / "other", os.O_RDONLY)
        fcntl.flock(holder, fcntl.LOCK_EX)  # a uv that locked it (not through the name)
        os.rename(sticky / "other", sticky / A)
        mine = new_ino(handoff)
        for _ in range(3):
            handoff.step(used=True)
            assert handoff.state == NEW and new_ino(handoff) == mine
        assert len(warnings) == 1 and "cannot be locked" in warnings[0]  # said once
        fcntl.flock(holder, fcntl.LOCK_UN)
        handoff.step(used=True)
        assert new_ino(handoff) == os.fstat(holder).st_ino and handoff.state == NEW
    finally:
        if holder >= 0:
            os.close(holder)
        os.close(first)
        done_with(handoff)


def test_the_kept_files_go_to_a_keeper_with_the_rest(sticky: Path) -> None:
    handoff, first = handoff_in_new(sticky, Clock())
    try:
        os.unlink(sticky / A)
        handoff.step(used=True)
        assert handoff.new_fd is not None and handoff.old_fd is not None
        kept = handoff.replaced[0]
        assert set(handoff.fds()) == {handoff.dir_fd, handoff.old_fd, handoff.new_fd, kept}
        assert handoff.to_json()["replaced"] == [kept]
    finally:
        os.close(first)
        done_with(handoff)
