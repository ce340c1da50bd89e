"""After the unlink, a refused lease is asked again a few times before the file counts as open
(red-team L4, L6): a scan's or another cleaner's probe holds its description for microseconds,
and once it is let go nobody can open the unlinked file again. Real files, the real remover's
check after the unlink; the lease's answers given through the `Syscalls` seam."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.helpers import A
from uvsweep.model import CleanResult
from uvsweep.probe.posix import Syscalls
from uvsweep.remove import Policy
from uvsweep.remove.posix import LEASE_RETRIES, LinuxRemover

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc")


class Answers(Syscalls):
    """The real calls; `alone` answers False `refusals` times (another description, let go
    after that), then as the kernel does."""

    def __init__(self, refusals: int) -> None:
        self.refusals, self.asked, self.slept = refusals, 0, 0.0

    def alone(self, fd: int, keep: bool = False) -> bool | None:
        self.asked += 1
        if self.asked <= self.refusals:
            return False
        return super().alone(fd, keep)

    def sleep(self, seconds: float) -> None:
        self.slept += seconds
        super().sleep(seconds)


def _after_the_unlink(lockdir: Path, calls: Answers) -> dict[object, list[int]]:
    (lockdir / A).touch()
    remover = LinuxRemover(calls=calls)
    dir_fd = os.open(lockdir, os.O_RDONLY | os.O_DIRECTORY)
    result = CleanResult([str(lockdir)])
    try:
        target = remover.acquire(dir_fd, str(lockdir), A, Policy(), result)
        assert target is not None
        os.unlink(lockdir / A)
        target.unlinked = True
        try:
            return {"opened": remover.open_users([target], result).get(target, [])}
        finally:
            remover.release(target)
    finally:
        os.close(dir_fd)


@pytest.mark.parametrize("refusals", range(1, LEASE_RETRIES + 1))
def test_a_description_let_go_within_the_retries_is_nobody(lockdir: Path, refusals: int) -> None:
    calls = Answers(refusals)
    assert _after_the_unlink(lockdir, calls) == {"opened": []}
    assert calls.asked == refusals + 1 and calls.slept < 0.01


def test_a_description_kept_through_the_retries_is_an_opener(lockdir: Path) -> None:
    calls = Answers(LEASE_RETRIES + 1)
    assert _after_the_unlink(lockdir, calls) == {"opened": [0]}  # (pid 0: unseen)
    assert calls.asked == LEASE_RETRIES + 1
