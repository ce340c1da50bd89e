"""Issue 12, finding 1, as a schedule of the simulated kernel running the real remover.

During the unlink window W1 opens the file and waits in flock, and W2 opens it but is paused
before its flock. The remover sees the waiter, hands the lock over to a new file, follows only
W1, and drops the new file's lock once W1 is done. W2 then locks the unlinked inode while W3, a
newcomer, locks the new file at the name: two holders of "the" lock.

The schedule is written as directives about what each actor is doing, not as step counts, so it
means the same thing when the remover's code changes (more checks, a keeper process): after the
fix the remover must keep the new file locked until W2, too, is done with the old one.
"""

from __future__ import annotations

import pytest

from tests.sim.explore import (
    encode,
    run,
    scripted,
)
from tests.sim.scenarios import FINDING_1
from tests.sim.world import LOCK_PATH, Scenario


@pytest.mark.parametrize(
    "slow_uv",
    [True, False],
    ids=["W2-paused-long-enough-for-a-keeper", "W2-resumes-while-clean-waits"],
)
def test_finding_1_no_two_holders_after_a_handoff(slow_uv: bool) -> None:
    # slow_uv: while W2 is paused, time passes (`clean` gives up waiting after 2 s and a keeper
    # takes the handoff over); otherwise the remover waits in-process for everybody
    out = run(Scenario(uv=3), scripted(FINDING_1), timeouts=slow_uv)
    assert out.critical_sections == 3, out.describe()
    assert out.failure is None, f"{out.failure}\nschedule: {encode(out.schedule)}\n{out.describe()}"
    kept = out.results["R"].skipped
    assert [skip.path for skip in kept] == [LOCK_PATH]  # handed over, not removed
    keepers = [actor for actor in out.schedule if actor.startswith("K")]
    assert bool(keepers) == slow_uv
