"""Files that change while a scan looks at them: nothing crashes, nothing is misreported."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.helpers import A, B
from uvsweep.model import LockState
from uvsweep.probe import posix
from uvsweep.probe.linux import LinuxBackend


def test_a_file_removed_between_lstat_and_open_drops_out(
    lockdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (lockdir / A).touch()
    (lockdir / B).touch()
    real = posix.try_lock

    def racing(dir_fd: int, name: str, dev: int, ino: int) -> tuple[posix.LockProbe, str]:
        if name == A:
            os.unlink(name, dir_fd=dir_fd)  # someone else cleans it up right now
        return real(dir_fd, name, dev, ino)

    monkeypatch.setattr(posix, "try_lock", racing)
    result = LinuxBackend().probe([str(lockdir)])
    assert [(f.name, f.state) for f in result.files] == [(B, LockState.ORPHANED)]
    assert result.errors == []


def test_a_file_swapped_between_lstat_and_open_is_not_trusted(
    lockdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (lockdir / A).touch()
    real = posix.try_lock

    def swapping(dir_fd: int, name: str, dev: int, ino: int) -> tuple[posix.LockProbe, str]:
        (lockdir / "other").write_text("")  # made while the original exists: a different inode
        os.rename(lockdir / "other", lockdir / name)  # now under the same name
        return real(dir_fd, name, dev, ino)

    monkeypatch.setattr(posix, "try_lock", swapping)
    (item,) = LinuxBackend().probe([str(lockdir)]).files
    assert item.state is LockState.SUSPICIOUS
    assert "replaced" in item.reason


def test_a_symlink_swapped_in_after_lstat_is_refused_by_o_nofollow(
    lockdir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "target"
    target.write_text("x")
    (lockdir / A).touch()
    real = posix.try_lock

    def swapping(dir_fd: int, name: str, dev: int, ino: int) -> tuple[posix.LockProbe, str]:
        os.unlink(name, dir_fd=dir_fd)
        os.symlink(target, name, dir_fd=dir_fd)
        return real(dir_fd, name, dev, ino)

    monkeypatch.setattr(posix, "try_lock", swapping)
    (item,) = LinuxBackend().probe([str(lockdir)]).files
    assert item.state is LockState.SUSPICIOUS
    assert target.read_text() == "x"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="leases are Linux's")
def test_a_file_another_cleaner_holds_the_lease_of_is_held_not_unreadable(lockdir: Path) -> None:
    """A cleaner takes the write lease on each file it is removing before its unlink: the scan's
    `O_NONBLOCK` open fails with EWOULDBLOCK then. That file is held (by that cleaner), not
    unreadable."""
    (lockdir / A).touch()
    (lockdir / B).touch()
    fd = os.open(lockdir / A, posix.OPEN_FLAGS)
    try:
        assert posix.SYSCALLS.alone(fd, keep=True) is True  # kept, as the cleaner keeps it
        st = os.stat(lockdir / A)
        dir_fd = os.open(lockdir, posix.DIR_FLAGS)
        try:
            # the probe itself (the lock table, which shows the lease, may decide first)
            assert posix.try_lock(dir_fd, A, st.st_dev, st.st_ino) == (posix.LockProbe.HELD, "")
        finally:
            os.close(dir_fd)
        assert posix.SYSCALLS.lease_broken(fd)  # the probe's open broke it (and it is given up)
        assert posix.SYSCALLS.alone(fd, keep=True) is True
        result = LinuxBackend().probe([str(lockdir)])
    finally:
        os.close(fd)
    states = {f.name: (f.state, f.reason) for f in result.files}
    assert states[A][0] is LockState.HELD, states
    assert "unavailable" not in states[A][1]
    assert states[B][0] is LockState.ORPHANED
    assert result.errors == []
