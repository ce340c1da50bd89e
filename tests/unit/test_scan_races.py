"""Files that change while a scan looks at them: nothing crashes, nothing is misreported."""

from __future__ import annotations

import os
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
