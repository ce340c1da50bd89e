"""Every point at which uv can arrive during a Windows removal, against the Windows model.

Two uv processes arrive at any two of the remover's calls (every pair). Each opens the lock file
as uv does (`OPEN_ALWAYS`), waits for its exclusive lock (a step per call the remover makes),
works a couple of steps, and closes. The invariants, checked at every step:
- uv's open never fails: a delete-pending name makes uv >= 0.7.19 run without its lock;
- at no moment do two uv processes both hold a lock, whichever file each got at the name.

(The shared interleaving search over a simulated kernel does not cover Windows yet; this covers
the Windows remover's own steps.)
"""

from __future__ import annotations

import itertools
import sys

import pytest

from tests.helpers import A, B
from tests.psutil_double import FakeProcess, FakePsutil
from tests.windows_model import WindowsModel
from uvsweep.processes import ProcessTable
from uvsweep.remove import Policy
from uvsweep.remove.windows import WindowsRemover

WORK_STEPS = 2


class Uv:
    """One uv process: open the name, wait for the lock, work, close."""

    def __init__(self, fs: WindowsModel, pid: int) -> None:
        self.fs, self.pid = fs, pid
        self.handle: int | None = None
        self.state = "new"
        self.worked = 0

    def step(self) -> None:
        fs = self.fs
        if self.state == "new":
            try:
                self.handle = fs.uv_open(A, self.pid)
            except PermissionError as err:
                raise AssertionError(f"uv {self.pid} could not open the lock file: {err}") from err
            self.state = "waiting"
        if self.state == "waiting" and fs.try_lock(self.handle):  # type: ignore[arg-type]
            self.state = "holding"
            return
        if self.state == "holding":
            self.worked += 1
            if self.worked >= WORK_STEPS:
                fs.close_handle(self.handle)  # type: ignore[arg-type]
                self.state = "done"


def holders(fs: WindowsModel, uvs: list[Uv]) -> list[int]:
    return [u.pid for u in uvs if u.state == "holding"]


def run(arrivals: tuple[int, int] | None) -> tuple[int, list[str]]:
    """Remove A and B with uv arriving at the given calls; returns (calls made, removed)."""
    fs = WindowsModel()
    fs.add(A)
    fs.add(B)
    uvs: list[Uv] = []
    calls = 0

    def on_call(_name: str) -> None:
        nonlocal calls
        calls += 1
        for pid, at in zip((1001, 1002), arrivals or (), strict=False):
            if at == calls:
                uvs.append(Uv(fs, pid))
        for uv in uvs:
            if uv.state != "done":
                uv.step()
        assert len(holders(fs, uvs)) <= 1, f"two uv hold a lock: {holders(fs, uvs)}"

    fs.on_call = on_call
    remover = WindowsRemover(
        files=fs, processes=ProcessTable(platform="win32"), lstat=fs.lstat,  # type: ignore[arg-type]
        listdir=fs.listdir, clock=lambda: 1000.0,
    )  # fmt: skip
    result = remover.remove([fs.DIR], Policy())
    fs.on_call = None
    for _ in range(20):  # the uv processes finish among themselves
        for uv in uvs:
            if uv.state != "done":
                uv.step()
        assert len(holders(fs, uvs)) <= 1
    assert all(uv.state == "done" for uv in uvs)
    assert [h for h in fs.handles.values() if h.pid not in (1001, 1002)] == []
    return calls, [path.rsplit("\\", 1)[1] for path in result.removed]


@pytest.fixture(autouse=True)
def _psutil_as_on_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    procs = [FakeProcess(pid, name="uv.exe", username="HOST\\me") for pid in (1001, 1002)]
    monkeypatch.setitem(sys.modules, "psutil", FakePsutil("win32", procs))


def test_uv_arriving_at_any_two_calls_keeps_mutual_exclusion() -> None:
    calls, removed = run(None)
    assert removed == [A, B]
    tried = 0
    for first, second in itertools.combinations_with_replacement(range(1, calls + 1), 2):
        run((first, second))
        tried += 1
    assert tried == calls * (calls + 1) // 2 > 50
