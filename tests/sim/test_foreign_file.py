"""Red-team F5 on the simulated kernel: another local user plants a file at the lock name.

The planter (`world.planter`, uid 65534 in the sticky temp dir) creates a regular file at the
name as soon as the remover's unlink frees it, and removes it again later (a sticky dir lets a
file's owner do that). W1 opened the old file before the unlink and waits on it. Before the fix
the remover took the planted file as the next generation at once and let the old lock go: W1
locked the old inode, the planter removed its file, and W2 created and locked a fresh one.

Overlaps where one holder holds the planter's own file are not counted (`Actor.enter_critical`):
that file's owner can break uv's mutual exclusion with or without uvsweep.
"""

from __future__ import annotations

import pytest

from tests.sim.explore import (
    Directive,
    Step,
    before,
    blocked,
    dfs,
    done,
    encode,
    in_critical,
    prefix_of,
    run,
    scripted,
)
from tests.sim.world import PLANTER_UID, Actor, Scenario
from uvsweep.remove import handoff

SCENARIO = Scenario(uv=2, planters=1)

#: The attacker's moment: W1 waits on the old file; right after the unlink, before the
#: remover makes its next generation, the planter creates its file at the name.
PLANTED: list[Directive] = [
    ("R", before("unlink")),  # every check passed; the lock is held
    ("W1", blocked),  # opens the name (still the old file) and waits in flock
    ("R", before("open")),  # unlinks, sees W1: about to make the next generation
    ("P", before("close")),  # the planter's file is at the name
]

#: The counterexample the search found on the code before the fix, as directives.
F5: list[Directive] = [
    *PLANTED,
    ("R", before("sleep")),  # its round: before the fix, took the planted file, let W1 go
    ("P", done),  # the planter removes its file
    ("W1", in_critical),  # locks the old inode (if the remover let it go)
    ("W2", in_critical),  # a newcomer creates a fresh file at the name and locks it
]


def _planted_file_taken(step: Step) -> bool:
    """The planter's file is locked and the old lock gone (W1 may lock the old inode): the next
    generation. (W1 may wait in its open, on the remover's lease, rather than behind its lock.)"""
    kernel = step.world.kernel
    planted = any(lock.ofd.inode.uid == PLANTER_UID for lock in kernel.locks)
    old_held = any(
        lock.ofd.inode.nlink == 0 and lock.ofd.inode.uid != PLANTER_UID for lock in kernel.locks
    )
    return planted and not old_held and step.world.by_name("W1").runnable()


@pytest.mark.parametrize("timeouts", [False, True], ids=["no-pauses", "long-pauses"])
def test_a_planted_file_is_not_the_next_generation(
    monkeypatch: pytest.MonkeyPatch, timeouts: bool
) -> None:
    monkeypatch.setattr(handoff, "FOREIGN_PATIENCE", 60.0, raising=False)
    out = run(SCENARIO, scripted(F5), timeouts=timeouts)
    assert out.failure is None, f"{out.failure}\nschedule: {encode(out.schedule)}\n{out.describe()}"
    assert out.critical_sections == 2
    assert out.results["P"] is True  # it did plant (and remove) its file
    assert out.handoffs == 1


def test_every_schedule_after_a_file_is_planted_within_two_more_preemptions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the patience is set beyond the virtual time this bound can reach (each preemption that
    # is a timeout adds 5 s): within the patience, no schedule may overlap. Before the fix
    # this finds the overlap after 309 runs (2.1 s): R*14 W1*3 R*15 P R*5 P*2 W1 R*8 W2*5
    monkeypatch.setattr(handoff, "FOREIGN_PATIENCE", 60.0, raising=False)
    prefix = prefix_of(SCENARIO, PLANTED)
    report = dfs(SCENARIO, bound=4, prefix=prefix)  # the prefix has used two
    summary = f"{SCENARIO.describe()}, after {encode(prefix)}: {report.summary()}"
    print(summary)
    assert report.failure is None, f"{summary}\n{report.failure and report.failure.describe()}"
    assert report.complete
    assert report.states > 1000 and report.handoffs > 100 and report.keepers > 100


def test_after_the_patience_the_planted_file_is_taken_and_its_owner_can_break_the_lock() -> None:
    """The documented residual risk: a planter who leaves its file at the name for
    FOREIGN_PATIENCE seconds and removes it once the remover (or its keeper) took it can still
    let W2 in beside W1. Never sooner: the remover takes the file only after the patience."""
    times: dict[str, float] = {}
    script = scripted(PLANTED, then=lambda _step: None)
    after = scripted([("P", before("unlink")), ("W1", in_critical), ("P", done),
                      ("W2", in_critical)])  # fmt: skip

    def choose(step: Step) -> Actor | None:
        actor = script(step)
        if actor is not None:
            return actor
        times.setdefault("planted", step.world.kernel.now)
        if "taken" not in times:
            if _planted_file_taken(step):
                times["taken"] = step.world.kernel.now
            else:  # only the remover and its keeper run (a long pause for everybody else)
                mine = [a for a in step.runnable if a.name == "R" or a.kind == "keeper"]
                awake = [a for a in mine if a not in step.timeouts]
                return (awake or mine)[0]
        return after(step)

    out = run(SCENARIO, choose)
    assert "taken" in times, out.describe()
    assert times["taken"] - times["planted"] >= handoff.FOREIGN_PATIENCE
    assert out.violation is not None, out.describe()  # W1 on the old inode, W2 on a new file
