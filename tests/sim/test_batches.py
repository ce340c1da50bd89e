"""The interleaving search over a removal of two files, one a batch.

The other searches hold one name in one batch. Here the real remover takes each file in a batch
of its own (the fd table's and the lock table's state carried from the first batch to the
second: learned devices, the warmed table, a handoff's keeper), against uv actors that open,
wait on and lock both names in every order the bound allows.
"""

from __future__ import annotations

from typing import Any

from tests.sim.explore import dfs, random_runs
from tests.sim.world import Scenario, remover_run


def _one_a_batch() -> Any:
    return remover_run(batch_size=1)


def test_every_schedule_of_two_files_in_two_batches_within_one_preemption() -> None:
    report = dfs(Scenario(uv=2, files=2, remover=_one_a_batch), bound=1)
    print(report.summary())
    assert report.failure is None, report.failure.describe()
    assert report.complete


def test_every_schedule_of_two_files_in_two_batches_within_two_preemptions() -> None:
    report = dfs(Scenario(uv=2, files=2, remover=_one_a_batch), bound=2)
    print(report.summary())
    assert report.failure is None, report.failure.describe()
    assert report.complete
    assert report.states > 10_000  # it did explore (15,807 distinct states when written)


def test_random_schedules_of_three_uv_actors_on_two_files_in_two_batches() -> None:
    report = random_runs(Scenario(uv=3, files=2, remover=_one_a_batch), seed=7, runs=300)
    print(report.summary())
    assert report.failure is None, report.failure.describe()
