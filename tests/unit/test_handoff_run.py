"""`remove.handoff.run`: the rounds that step every handoff, and how they stop (red-team Q5,
mutation run 5d). The handoffs here only record their steps: what a step does is tested with
real files elsewhere."""

from __future__ import annotations

from collections.abc import Sequence

from uvsweep.probe.posix import Syscalls
from uvsweep.remove.handoff import Handoff, run


class Clock(Syscalls):
    """Time that moves only when the rounds sleep."""

    def __init__(self) -> None:
        self.now = 100.0  # (not 0: an elapsed time is a difference)

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


class Recorded:
    """A handoff that records its steps and is over after `steps` of them."""

    def __init__(self, log: list[str], name: str, steps: int = 1) -> None:
        self.log, self.name, self.left = log, name, steps

    def step(self, used: bool | None = None) -> bool:
        self.log.append(self.name)
        self.left -= 1
        return self.left <= 0


def _as_handoffs(items: Sequence[Recorded]) -> list[Handoff]:
    return list(items)  # type: ignore[arg-type]


def test_one_round_steps_every_handoff_while_there_is_time() -> None:
    log: list[str] = []
    rounds: list[int] = []

    def check(pending: Sequence[Handoff]) -> set[Handoff]:
        rounds.append(len(pending))
        return set()

    handoffs = _as_handoffs([Recorded(log, name) for name in "abc"])
    assert run(handoffs, Clock(), wait=2.0, check=check) == []
    assert rounds == [3] and log == ["a", "b", "c"]  # one round, one look, every step


def test_a_stop_between_two_steps_leaves_the_rest_as_they_were_and_unfinished() -> None:
    log: list[str] = []
    handoffs = _as_handoffs([Recorded(log, name) for name in "abc"])
    left = run(handoffs, Clock(), wait=2.0, stop=lambda: bool(log))
    assert log == ["a"]  # b and c were not stepped
    assert left == handoffs[1:]  # each once, in order


def test_the_wait_is_heeded_between_two_steps_too() -> None:
    log: list[str] = []
    clock = Clock()

    class Slow(Recorded):
        def step(self, used: bool | None = None) -> bool:
            clock.now += 1.5  # a step that took its time (a look at /proc)
            return super().step(used)

    handoffs = _as_handoffs([Slow(log, name, steps=5) for name in "abc"])
    left = run(handoffs, clock, wait=2.0)
    assert log == ["a", "b"]  # 3 s gone after b: c is left for the keeper, unstepped
    assert left == handoffs
