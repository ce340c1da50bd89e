"""Fixtures the red-team tests share."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

import pytest

from tests.redteam.support import keeper_pids, kill_keepers


class _Stoppable(Protocol):
    def stop(self) -> None: ...


@pytest.fixture
def started() -> Iterator[list[_Stoppable]]:
    """Whatever a test starts (cleaners, uv-like children), stopped (whole groups) at its end;
    the keepers it left ended too."""
    before = set(keeper_pids())
    running: list[_Stoppable] = []
    yield running
    for item in running:
        item.stop()
    kill_keepers(before)
