"""The cyclic garbage collector is off while a removal runs, and as it was once the last is over
(`remove._collector_paused`): a 10,000-file removal spent 8% of its time in collections that
freed nothing."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from uvsweep.remove import Policy, _collector_paused
from uvsweep.remove.posix import LinuxRemover


class _Watching(Policy):
    """A policy that notes whether the collector was on each time a file was judged."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[bool] = []

    def may_remove(self, *, mine: bool, privileged: bool, age: float, directory: str) -> str | None:
        self.seen.append(gc.isenabled())
        return super().may_remove(mine=mine, privileged=privileged, age=age, directory=directory)


@pytest.fixture
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def _orphans(directory: Path, count: int) -> None:
    for index in range(count):
        (directory / f"uv-{index:016x}.lock").touch()


def test_the_collector_is_off_during_a_removal_and_on_again_after(
    tmp_path: Path, collector_on: None
) -> None:
    _orphans(tmp_path, 3)
    policy = _Watching()
    result = LinuxRemover().remove([str(tmp_path)], policy)
    assert len(result.removed) == 3
    assert policy.seen == [False, False, False]
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off(tmp_path: Path, collector_on: None) -> None:
    _orphans(tmp_path, 1)
    gc.disable()
    LinuxRemover().remove([str(tmp_path)], Policy())
    assert not gc.isenabled()


def test_a_removal_that_fails_turns_the_collector_on_again(
    tmp_path: Path, collector_on: None
) -> None:
    class Failing(Policy):
        def may_remove(self, **_facts: object) -> str | None:  # type: ignore[override]
            raise RuntimeError("a bug in a policy")

    _orphans(tmp_path, 1)
    with pytest.raises(RuntimeError):
        LinuxRemover().remove([str(tmp_path)], Failing())
    assert gc.isenabled()
    assert (tmp_path / f"uv-{0:016x}.lock").exists()


def test_with_two_removals_at_once_the_collector_waits_for_the_last(collector_on: None) -> None:
    first_in, second_in, first_may_go = threading.Event(), threading.Event(), threading.Event()
    during: list[bool] = []

    def first() -> None:
        with _collector_paused():
            first_in.set()
            second_in.wait(10)
            first_may_go.wait(10)
            during.append(gc.isenabled())

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert first_in.wait(10)
        with _collector_paused():
            second_in.set()
        during.append(gc.isenabled())  # the second is over, the first is not
        first_may_go.set()
    finally:
        first_may_go.set()
        second_in.set()
        thread.join(10)
    assert during == [False, False]
    assert gc.isenabled()
