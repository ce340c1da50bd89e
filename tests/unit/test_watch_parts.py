"""The watcher's pure parts and its process waiters."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from uvsweep import procwait, settings
from uvsweep.model import Label, LabelKind, LockFile, LockState, LockUser, Snapshot
from uvsweep.watcher import diff


def item(
    name: str, state: LockState, holders: tuple[LockUser, ...] = (), label: Label | None = None
) -> LockFile:
    return LockFile(
        path=f"/tmp/{name}", name=name, state=state, mtime=0.0, size=0, uid=0, owner="me",
        holders=holders, waiters=(), openers=(), reason="", blocks_uv=False, dev=1, ino=1,
    ).with_label(label)  # fmt: skip


def snap(*files: LockFile) -> Snapshot:
    return Snapshot(
        dirs=("/tmp",), files=files, errors=(), taken_at=0.0, hidden_processes=0, notes=()
    )


def test_diff() -> None:
    a, b, c = "uv-000000000000000a.lock", "uv-000000000000000b.lock", "uv-000000000000000c.lock"
    before = snap(item(a, LockState.ORPHANED), item(b, LockState.HELD, (LockUser(pid=1),)),
                  item(c, LockState.HELD, (LockUser(pid=2),)))  # fmt: skip
    after = snap(item(b, LockState.ORPHANED), item(c, LockState.HELD, (LockUser(pid=3),)),
                 item("uv-000000000000000d.lock", LockState.ORPHANED))  # fmt: skip
    change = diff(before, after)
    assert [f.name for f in change.added] == ["uv-000000000000000d.lock"]
    assert [f.name for f in change.removed] == [a]
    assert [(x.state, y.state) for x, y in change.changed] == [(LockState.HELD, LockState.ORPHANED)]
    assert [(x.holders[0].pid, y.holders[0].pid) for x, y in change.updated] == [(2, 3)]
    assert not diff(after, after)
    assert [f.name for f in diff(None, after).added] == [f.name for f in after.files]
    relabelled = snap(item(b, LockState.ORPHANED, label=Label(LabelKind.PROJECT, "/p")),
                      *after.files[1:])  # fmt: skip
    assert len(diff(after, relabelled).updated) == 1


@pytest.mark.parametrize("kind", [procwait.PidfdWaiter, procwait.PollingWaiter])
def test_waiters_report_each_exit_once(kind: type[procwait.ProcessWaiter]) -> None:
    if kind is procwait.PidfdWaiter and not sys.platform.startswith("linux"):
        pytest.skip("pidfd is Linux")
    exited: list[int] = []
    seen = threading.Event()

    def on_exit(pid: int) -> None:
        exited.append(pid)
        seen.set()

    waiter = kind(on_exit)
    waiter.start()
    waiter.start()  # idempotent
    quick = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(0.2)"])
    slow = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        waiter.watch([quick.pid, slow.pid])
        quick.wait()
        assert seen.wait(3)
        time.sleep(0.1)
        assert exited == [quick.pid]
        waiter.watch([])  # no longer interested in the slow one
        slow.kill()
        slow.wait()
        time.sleep(0.2)
        assert exited == [quick.pid]
        waiter.watch([2**22 + 12345])  # no such process: reported at once
        deadline = time.monotonic() + 3
        while len(exited) < 2:
            assert time.monotonic() < deadline
            time.sleep(0.01)
    finally:
        slow.kill()
        slow.wait()
        waiter.stop()
        waiter.stop()
    assert exited[1] == 2**22 + 12345
    assert not [t for t in threading.enumerate() if t.name == "uvsweep-procwait"]


def test_the_chooser_picks_a_waiter_per_os() -> None:
    assert isinstance(procwait.for_platform(print, "win32"), procwait.WindowsWaiter)
    if sys.platform.startswith("linux"):
        assert isinstance(procwait.for_platform(print, "linux"), procwait.PidfdWaiter)


def test_safety_rescan_setting(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text("safety_rescan = 15\n")
    assert settings.load(str(path)).safety_rescan == 15.0
    path.write_text('safety_rescan = "often"\n')
    loaded = settings.load(str(path))
    assert loaded.safety_rescan == 60.0
    assert "safety_rescan" in loaded.warnings[0]
    assert path.read_text() == 'safety_rescan = "often"\n'  # never rewritten
