"""Named schedules of the simulated kernel that more than one test module runs."""

from __future__ import annotations

from tests.sim.explore import Directive, before, blocked, done, in_critical
from tests.sim.world import Actor


def _until_it_cannot_run(_actor: Actor) -> bool:
    return False


#: Issue 12, finding 1 (see test_finding1.py).
FINDING_1: list[Directive] = [
    ("R", before("unlink")),  # every check passed; the lock is held
    ("W1", blocked),  # opens the name (still the old file) and waits in flock
    ("W2", before("flock")),  # opens it too, then is paused before its flock
    ("R", _until_it_cannot_run),  # unlink, handoff, waits for the users it follows
    ("W1", done),  # gets the old lock, its critical section, unlock, close
    ("R", done),  # as far as it gets
    ("W2", in_critical),  # resumes: flock on the old (unlinked) inode
    ("W3", in_critical),  # a newcomer: opens the name, the new file
]


#: uv's create race (see test_uv_create_race.py).
CREATE_RACE: list[Directive] = [
    ("W1", before("rename_noreplace")),  # no file at the name: a temp file, fchmod 0666
    ("W2", done),  # meanwhile W2 creates the file the same way, and is done with it
    ("W1", before("open")),  # W1's rename fails (EEXIST); paused before it opens the name
    ("R", done),  # the file is an orphan: removed
    ("W1", in_critical),  # the open fails: uv goes on without the lock
    ("W3", in_critical),  # a newcomer creates a fresh file and locks it
]
