"""The Windows keeper handover, on Linux with the OS calls injected.

The cleaner's side runs the real `WindowsRemover` against the model of the Windows file calls
(`tests/windows_model.py`: byte ranges per handle, an inherited handle holding none of the
parent's locks) with the keeper process replaced by a fake `Started` that does what a keeper
does to the model when asked for its `ready`. The keeper's side runs the real
`winkeeper.serve` against the same model. The interleavings of both, as separate processes on a
simulated kernel, are searched in `tests/sim/test_windows.py`.
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.psutil_double import FakeProcess, FakePsutil
from tests.windows_model import ME, WindowsModel
from uvsweep.model import LockUser
from uvsweep.probe import LockProbe, Observation, classify
from uvsweep.processes import ProcessTable
from uvsweep.remove import Policy
from uvsweep.remove.windows import WindowsRemover
from uvsweep.remove.winkeeper import (
    CLEANER_FENCE,
    KEEPER_FENCE,
    WinHandoff,
    WinKeeper,
    keeper_main,
    serve,
)

A = "uv-00000000000000aa.lock"
KEEPER_PID = 5151
UV_PID = 777


@pytest.fixture(autouse=True)
def _psutil_as_on_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    if sys.platform.startswith("linux"):
        procs = [FakeProcess(pid, name="uv.exe", username="HOST\\me") for pid in (UV_PID, 888)]
        keeper = FakeProcess(KEEPER_PID, name="python.exe", username="HOST\\me",
                             cmdline=tuple(WinKeeper().argv()))  # fmt: skip
        monkeypatch.setitem(sys.modules, "psutil", FakePsutil("win32", [*procs, keeper]))


class FakeClock:
    """The waits' clock: `sleep` only moves the time on (no test sleeps for real)."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        assert self.now < 3600, "still waiting after an hour"  # a wait that never ends fails


class FakeStarted:
    """A started keeper, as the cleaner sees it; `how` says what the keeper does."""

    pid = KEEPER_PID

    def __init__(self, keeper: FakeKeeper, handles: Sequence[Any], job: str) -> None:
        self.keeper, self.handles, self.job = keeper, handles, json.loads(job)
        self.own: list[int] = []  # the keeper's inherited handles (the model numbers them anew)

    def ready(self, timeout: float) -> bool:
        fs, how = self.keeper.fs, self.keeper.how
        self.keeper.waited.append(timeout)
        self.own = [fs.inherit(handle, KEEPER_PID) for handle in self.handles]
        if how == "silent":
            return False
        if how == "dies":
            for handle in self.own:
                fs.close_handle(handle)
            return False
        if how == "raises":
            raise OSError("the pipe broke")
        for item in self.job["handoffs"]:  # "ready": lock byte [1, 2) of each new file
            new = self.own[self.handles.index(item["new"])]
            assert fs.handles[new].file is fs.handles[item["new"]].file
            assert fs.identity(new) == tuple(item["new_id"])
            assert fs.lock_range(new, *KEEPER_FENCE)
        fs.log.append("ready")
        return True

    def kill(self) -> None:
        self.keeper.killed = True
        for handle in self.own:
            if handle in self.keeper.fs.handles:
                self.keeper.fs.close_handle(handle)


class FakeKeeper(WinKeeper):
    def __init__(self, fs: WindowsModel, how: str = "ready") -> None:
        self.fs, self.how = fs, how
        self.jobs: list[dict[str, Any]] = []
        self.waited: list[float] = []
        self.killed = False
        self.started: FakeStarted | None = None

    def start(self, handles: Sequence[Any], job: str) -> FakeStarted:
        self.jobs.append(json.loads(job))
        self.started = FakeStarted(self, handles, job)
        return self.started


def remover(fs: WindowsModel, keeper: WinKeeper, clock: FakeClock, wait: float = 2.0) -> Any:
    return WindowsRemover(
        files=fs, processes=ProcessTable(platform="win32"), lstat=fs.lstat,  # type: ignore[arg-type]
        listdir=fs.listdir, clock=lambda: 1000.0, is_admin=lambda: False, calls=clock,
        keeper=keeper, handoff_wait=wait,
    )  # fmt: skip


def late_opener(fs: WindowsModel) -> dict[str, int]:
    """uv opens the file between the cleaner's check and its rename, and keeps it open."""
    late: dict[str, int] = {}

    def uv_opens() -> None:
        late["handle"] = fs.uv_open(A, pid=UV_PID)

    fs.hooks["lstat " + fs.path(A)] = lambda: fs.hooks.__setitem__("lstat " + fs.path(A), uv_opens)
    return late


def test_a_long_handoff_goes_to_a_keeper_that_holds_its_byte_before_ours_goes() -> None:
    fs = WindowsModel()
    fs.add(A)
    late = late_opener(fs)
    keeper, clock = FakeKeeper(fs), FakeClock()
    said: list[str] = []
    cleaner = remover(fs, keeper, clock)
    cleaner.progress = said.append
    result = cleaner.remove([fs.DIR], Policy())
    assert result.keepers == [KEEPER_PID] and result.handoffs == 1
    assert f"keeper (pid {KEEPER_PID})" in result.skipped[0].reason
    assert 2.0 <= clock.now < 2.5  # the bounded wait, then the keeper
    assert fs.log.index("lock [1,2)") < fs.log.index("ready") < fs.log.index("unlock [0,1)")
    assert "lock [0,1)" in fs.log and fs.log.index("lock [0,1)") < fs.log.index("unlock")
    # the cleaner let everything go; the name's file is the keeper's, and uv is kept out
    assert fs.ours() == []
    assert fs.holder_of(fs.path(A)) == KEEPER_PID
    newcomer = fs.uv_open(A, pid=888)
    assert not fs.try_lock(newcomer)
    assert fs.handles[late["handle"]].file is not fs.handles[newcomer].file
    job = keeper.jobs[0]["handoffs"][0]
    assert job["path"] == fs.path(A) and job["new_id"][1] == fs.handles[newcomer].file.index
    assert any(f"keeper (pid {KEEPER_PID}) keeps the lock" in line for line in said), said


def test_a_keeper_without_ready_is_killed_and_the_cleaner_waits_itself() -> None:
    for how in ("silent", "dies", "raises"):
        fs = WindowsModel()
        fs.add(A)
        late = late_opener(fs)
        keeper, clock = FakeKeeper(fs, how), FakeClock()
        cleaner = remover(fs, keeper, clock)
        said: list[str] = []
        cleaner.progress = said.append
        polls = 0

        def pids(
            _number: int, fs: WindowsModel = fs, clock: FakeClock = clock, late: Any = late
        ) -> None:
            nonlocal polls
            polls += 1
            if clock.now > 30 and late["handle"] in fs.handles:
                fs.close_handle(late["handle"])  # uv is done with the old file at last
            fs.hooks["pids"] = pids

        fs.hooks["pids"] = pids
        result = cleaner.remove([fs.DIR], Policy())
        assert keeper.killed, how
        assert result.keepers == [], how
        assert result.handoffs == 1 and "keeper" not in result.skipped[0].reason, how
        assert clock.now > 30, how  # kept its byte and waited
        assert any("could not start a keeper" in line for line in said), (how, said)
        assert fs.ours() == [] and not any(h.ranges for h in fs.handles.values()), how


def test_ctrl_c_during_a_handoff_hands_over_at_once_and_stops() -> None:
    """Ctrl-C while a handoff waits: the keeper takes it now (not after the bounded wait), and
    `clean` stops (KeyboardInterrupt once the batch let go) within a second of it."""
    fs = WindowsModel()
    fs.add(A)
    late_opener(fs)
    keeper, clock = FakeKeeper(fs), FakeClock()
    cleaner = remover(fs, keeper, clock, wait=1000.0)
    asked_at: list[float] = []

    def pids(_number: int) -> None:
        if len(fs.log) > 12 and not asked_at:
            asked_at.append(clock.now)
            cleaner.interrupts.append(2)  # SIGINT, as deferred_interrupts records it
        fs.hooks["pids"] = pids

    fs.hooks["pids"] = pids
    with pytest.raises(KeyboardInterrupt):
        cleaner.remove([fs.DIR], Policy())
    assert asked_at and clock.now - asked_at[0] < 1.0
    assert keeper.jobs and fs.holder_of(fs.path(A)) == KEEPER_PID and fs.ours() == []


def test_ctrl_c_while_the_keeper_starts_finishes_the_handover_first() -> None:
    """A Ctrl-C that lands while the keeper is starting does not cut the handover in half:
    the cleaner's byte goes only after `ready`, then `clean` stops."""
    fs = WindowsModel()
    fs.add(A)
    late_opener(fs)
    clock = FakeClock()
    cleaner: Any = None

    class Interrupted(FakeKeeper):
        def start(self, handles: Sequence[Any], job: str) -> FakeStarted:
            cleaner.interrupts.append(2)  # SIGINT while CreateProcess and `ready` run
            return super().start(handles, job)

    keeper = Interrupted(fs)
    cleaner = remover(fs, keeper, clock)
    with pytest.raises(KeyboardInterrupt):
        cleaner.remove([fs.DIR], Policy())
    assert fs.log.index("ready") < fs.log.index("unlock [0,1)")
    assert fs.holder_of(fs.path(A)) == KEEPER_PID and fs.ours() == []


def test_a_keeper_gone_after_ready_lets_a_newcomer_in_while_the_old_file_is_used() -> None:
    """The documented limit: after `ready` the keeper is the only guard; if it is killed, its
    byte goes with it and a new uv locks the new file while the old file's user still has the
    old one (as with a Unix keeper killed by SIGKILL)."""
    fs = WindowsModel()
    fs.add(A)
    late = late_opener(fs)
    keeper = FakeKeeper(fs)
    remover(fs, keeper, FakeClock()).remove([fs.DIR], Policy())
    assert keeper.started is not None
    newcomer = fs.uv_open(A, pid=888)
    assert not fs.try_lock(newcomer)
    keeper.started.kill()  # Task Manager ends the keeper
    assert fs.try_lock(newcomer)
    assert late["handle"] in fs.handles  # the old file's user is still there


def test_a_quitting_tray_hands_over_at_once() -> None:
    fs = WindowsModel()
    fs.add(A)
    late_opener(fs)
    keeper, clock = FakeKeeper(fs), FakeClock()
    cleaner = remover(fs, keeper, clock, wait=1000.0)
    cleaner.stop_requests.append(1)  # request_stop() from the tray's quit
    result = cleaner.remove([fs.DIR], Policy())
    assert result.keepers == [KEEPER_PID] and clock.now < 1.0


def test_a_handoff_that_ends_in_time_needs_no_keeper() -> None:
    fs = WindowsModel()
    fs.add(A)
    late = late_opener(fs)
    keeper, clock = FakeKeeper(fs), FakeClock()
    polls = 0

    def pids(_number: int) -> None:
        nonlocal polls
        polls += 1
        if polls == 4:
            fs.close_handle(late["handle"])
        fs.hooks["pids"] = pids

    fs.hooks["pids"] = pids
    result = remover(fs, keeper, clock).remove([fs.DIR], Policy())
    assert keeper.jobs == [] and result.keepers == [] and result.handoffs == 1
    assert fs.log.count("unlock [0,1)") == 1 and fs.ours() == []


def test_take_kills_a_keeper_that_does_not_say_ready() -> None:
    fs = WindowsModel()
    fs.add(A)
    handle = fs.open_generation(fs.path(A))
    keeper = FakeKeeper(fs, "silent")
    with pytest.raises(OSError, match="did not take the lock over"):
        keeper.take([WinHandoff(fs.path(A), handle, handle, (7, 1), (7, 1))], None)
    assert keeper.killed and keeper.waited == [keeper.ready_timeout]


def test_the_default_keeper_starts_only_on_windows() -> None:
    if sys.platform == "win32":  # pragma: no cover
        pytest.skip("off Windows only")
    with pytest.raises(OSError, match="only on Windows"):
        WinKeeper().start([], "{}")


def test_the_keeper_command_line_is_recognised_by_scan() -> None:
    argv = WinKeeper().argv()
    assert argv[1:3] == ["-I", "-c"] and argv[-1] == "_winkeeper"
    keeper = LockUser(KEEPER_PID, "python.exe", "HOST\\me", tuple(argv))
    frozen = LockUser(KEEPER_PID, "uvsweep.exe", "HOST\\me",
                    ("C:\\Program Files\\uvsweep\\uvsweep.exe", "_winkeeper"))  # fmt: skip
    other = LockUser(888, "uv.exe", "HOST\\me", ("uv.exe", "_winkeeper"))
    for opener, expected in ((keeper, True), (frozen, True), (other, False)):
        obs = Observation("C:\\T", A, 0o100666, 0, 1, 0.0, 7, 1, 0, "HOST\\me", True)
        obs.lock = LockProbe.HELD
        obs.openers = [opener]
        reason = classify(obs).reason
        assert reason.startswith("held by a uvsweep keeper") == expected, (opener, reason)


def test_scan_shows_a_file_held_by_a_keeper() -> None:
    """The Windows probe asks a held file's own handle who has it open, so a keeper that
    holds the name's file is named (Windows shows no lock holder)."""
    from uvsweep.probe.windows import WindowsBackend

    fs = WindowsModel()
    fs.add(A)
    fs.add("uv-00000000000000bb.lock")
    kept = fs.inherit(fs.open_generation(fs.path(A)), KEEPER_PID)
    fs.close(next(h.number for h in fs.ours()))
    assert fs.lock_range(kept, *KEEPER_FENCE)
    fs.try_lock(fs.uv_open("uv-00000000000000bb.lock", pid=UV_PID))
    backend = WindowsBackend(files=fs, processes=ProcessTable(platform="win32"),  # type: ignore[arg-type]
                             lstat=fs.lstat, listdir=fs.listdir)  # fmt: skip
    found = {item.name: item for item in backend.probe([fs.DIR]).files}
    assert found[A].state.value == "held"
    assert found[A].reason.startswith("held by a uvsweep keeper")
    assert [h.pid for h in found[A].holders] == [KEEPER_PID]
    held_by_uv = found["uv-00000000000000bb.lock"]
    assert held_by_uv.reason == "locked by a process the OS does not show"
    assert [h.pid for h in held_by_uv.openers] == [UV_PID]


# ---- the keeper's side -------------------------------------------------------------------------


def _handed(fs: WindowsModel) -> tuple[int, int, int, str]:
    """A handoff as a cleaner leaves it: the old file renamed and used by uv, the new file at
    the name with the cleaner's byte; (old, new, uv's handle, job)."""
    fs.add(A)
    old = fs.open_for_delete(fs.path(A))
    uv = fs.uv_open(A, pid=UV_PID)
    fs.rename(old, A + ".x.uvsweep-removed")
    new = fs.open_generation(fs.path(A))
    assert fs.lock_range(new, *CLEANER_FENCE)
    handoff = WinHandoff(fs.path(A), old, new, fs.identity(old), fs.identity(new))
    return old, new, uv, json.dumps({"handoffs": [handoff.to_json()], "log": None})


def test_serve_says_ready_only_once_it_holds_its_byte_and_lets_go_when_the_old_file_is_free(
    tmp_path: Path,
) -> None:
    fs = WindowsModel()
    old, new, uv, job = _handed(fs)
    log = tmp_path / "keeper.log"
    job = job.replace('"log": null', json.dumps({"log": str(log)})[1:-1])
    rounds = 0

    def pids(_number: int) -> None:
        nonlocal rounds
        rounds += 1
        if rounds == 5:
            fs.close_handle(uv)  # the old file's user is done
        fs.hooks["pids"] = pids

    fs.hooks["pids"] = pids

    def ready() -> None:
        fs.log.append("ready")
        assert fs.holder_of(fs.path(A)) is not None
        fs.unlock_range(new, *CLEANER_FENCE)  # what the cleaner then does (in the model, the
        # keeper's and the cleaner's handles are one number: a byte each, as on Windows)

    assert serve(job, fs, ready, ME, FakeClock()) == 0  # type: ignore[arg-type]
    assert fs.log.index("lock [1,2)") < fs.log.index("ready") < fs.log.index("unlock [1,2)")
    assert rounds >= 5 and old not in fs.handles and new not in fs.handles
    text = log.read_text()
    assert "keeping the lock at" in text and "done with" in text


def test_serve_refuses_an_empty_job() -> None:
    said: list[str] = []
    job = '{"handoffs": [], "log": null}'
    assert serve(job, WindowsModel(), lambda: said.append("ready"), ME, FakeClock()) == 2  # type: ignore[arg-type]
    assert said == []


def test_serve_refuses_a_handle_that_is_not_the_file_named() -> None:
    fs = WindowsModel()
    _old, new, _uv, job = _handed(fs)
    wrong = json.loads(job)
    wrong["handoffs"][0]["new_id"] = [7, 999]
    said: list[str] = []
    assert serve(json.dumps(wrong), fs, lambda: said.append("ready"), ME, FakeClock()) == 2  # type: ignore[arg-type]
    assert said == [] and fs.handles[new].ranges == [CLEANER_FENCE]


def test_serve_gives_back_what_it_took_when_one_byte_cannot_be_had() -> None:
    fs = WindowsModel()
    _old, new, _uv, job = _handed(fs)
    item = json.loads(job)["handoffs"][0]
    fs.add("uv-00000000000000bb.lock")
    other = fs.open_generation(fs.path("uv-00000000000000bb.lock"))
    thief = fs.uv_open("uv-00000000000000bb.lock", pid=888)
    assert fs.try_lock(thief)  # a uv holds the second file's whole range
    second = {**item, "new": other, "old": other, "new_id": [7, fs.handles[other].file.index],
              "old_id": [7, fs.handles[other].file.index]}  # fmt: skip
    said: list[str] = []
    both = json.dumps({"handoffs": [item, second], "log": None})
    assert serve(both, fs, lambda: said.append("ready"), ME, FakeClock()) == 2  # type: ignore[arg-type]
    assert said == [] and fs.handles[new].ranges == [CLEANER_FENCE]  # its [1,2) given back


@pytest.mark.parametrize("job", [b"", b"{", b"[]", b'{"handoffs": [{"path": 1}]}',
                                 (b'{"handoffs": [{"path": "x", "old": "1", "new": 2,'
                                  b' "old_id": [1, 2], "new_id": [1, 2]}]}'),
                                 b'{"handoffs": [], "log": null}',
                                 (b'{"handoffs": [{"path": "x", "old": 1, "new": 2, "old_id":'
                                  b' [1, 2], "new_id": [1, 3]}], "log": 7}')])  # fmt: skip
def test_keeper_main_with_a_bad_job_exits_2_without_ready(job: bytes) -> None:
    out = io.BytesIO()
    assert keeper_main([], stdin=io.BytesIO(job), stdout=out) == 2
    assert out.getvalue() == b""


# ---- on Windows itself ---------------------------------------------------------------------------

#: A uv-like process that opens the lock file as uv does (read, write, sharing everything),
#: says "open", and keeps it until its stdin closes.
HOLD_OPEN = """
import ctypes, sys
from ctypes import wintypes
k = ctypes.WinDLL("kernel32", use_last_error=True)
k.CreateFileW.restype = wintypes.HANDLE
k.CreateFileW.argtypes = [wintypes.LPCWSTR, wintypes.DWORD, wintypes.DWORD, ctypes.c_void_p,
                          wintypes.DWORD, wintypes.DWORD, wintypes.HANDLE]
h = k.CreateFileW(sys.argv[1], 0xC0000000, 7, None, 4, 0, None)
assert h not in (None, ctypes.c_void_p(-1).value), ctypes.get_last_error()
print("open", flush=True)
sys.stdin.read()
"""

#: uv's lock, as Rust's `File::try_lock` takes it: `LockFileEx(EXCLUSIVE | FAIL_IMMEDIATELY)`,
#: offset 0, length u32::MAX:u32::MAX, tried every 50 ms; exit 0 once it has it (1 after 60 s).
WHOLE_FILE_LOCKER = """
import ctypes, sys, time
from ctypes import wintypes
k = ctypes.WinDLL("kernel32", use_last_error=True)
k.CreateFileW.restype = wintypes.HANDLE
k.CreateFileW.argtypes = [wintypes.LPCWSTR, wintypes.DWORD, wintypes.DWORD, ctypes.c_void_p,
                          wintypes.DWORD, wintypes.DWORD, wintypes.HANDLE]
k.LockFileEx.argtypes = [wintypes.HANDLE, wintypes.DWORD, wintypes.DWORD, wintypes.DWORD,
                         wintypes.DWORD, ctypes.c_void_p]


class OVERLAPPED(ctypes.Structure):
    _fields_ = [("internal", ctypes.c_void_p), ("internal_high", ctypes.c_void_p),
                ("offset", wintypes.DWORD), ("offset_high", wintypes.DWORD),
                ("event", wintypes.HANDLE)]


h = k.CreateFileW(sys.argv[1], 0xC0000000, 7, None, 4, 0, None)
overlapped = OVERLAPPED()  # offset 0
print("trying", flush=True)
end = time.monotonic() + 60
while time.monotonic() < end:
    if k.LockFileEx(h, 0x3, 0, 0xFFFFFFFF, 0xFFFFFFFF, ctypes.byref(overlapped)):
        print("locked", flush=True)
        sys.exit(0)
    time.sleep(0.05)
sys.exit(1)
"""


#: Another process holding byte [1, 2) of the file (as a keeper does) until its stdin closes.
BYTE_HOLDER = (
    WHOLE_FILE_LOCKER.split("h = k.CreateFileW", maxsplit=1)[0]
    + """
h = k.CreateFileW(sys.argv[1], 0xC0000000, 7, None, 4, 0, None)
overlapped = OVERLAPPED()
overlapped.offset = 1
assert k.LockFileEx(h, 0x3, 0, 1, 0, ctypes.byref(overlapped)), ctypes.get_last_error()
print("open", flush=True)
sys.stdin.read()
"""
)


def _child(code: str, *args: str) -> Any:
    import subprocess

    return subprocess.Popen(
        [sys.executable, "-c", code, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )


@pytest.mark.windows
@pytest.mark.skipif(sys.platform != "win32", reason="runs on Windows only")
def test_windows_real_keeper_keeps_uv_out_until_the_old_file_is_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:  # pragma: no cover
    """A real handoff on Windows: `clean` hands a late opener's file to a real keeper and
    returns; a real whole-file `LockFileEx` locker stays out until the old file's user exits;
    `scan` names the keeper meanwhile; the keeper logs and exits by itself."""
    import time

    import psutil

    from uvsweep.probe.windows import WindowsBackend

    lock = tmp_path / A
    lock.touch()
    user: list[Any] = []
    seen = 0

    def lstat(path: str) -> Any:  # the second lstat is the check right before the rename
        nonlocal seen
        if path == str(lock):
            seen += 1
            if seen == 2:
                user.append(_child(HOLD_OPEN, str(lock)))
                assert user[0].stdout.readline().strip() == b"open"
        return os.lstat(path)

    log = tmp_path / "keeper.log"
    children: list[Any] = []
    keeper_pid: int | None = None
    try:
        monkeypatch.setattr("uvsweep.remove.windows.keeper_log_path", lambda: str(log))
        cleaner = WindowsRemover(lstat=lstat, handoff_wait=0.5)
        began = time.monotonic()
        result = cleaner.remove([str(tmp_path)], Policy())
        assert time.monotonic() - began < 10
        assert result.handoffs == 1 and len(result.keepers) == 1, result.skipped
        keeper_pid = result.keepers[0]
        found = WindowsBackend().probe([str(tmp_path)]).files
        assert next(f.reason for f in found if f.name == A).startswith("held by a uvsweep keeper")
        locker = _child(WHOLE_FILE_LOCKER, str(lock))
        children.append(locker)
        assert locker.stdout.readline().strip() == b"trying"
        time.sleep(2.0)
        assert locker.poll() is None, "uv got the new file while the old one was in use"
        user[0].stdin.close()  # the old file's user exits
        user[0].wait(30)
        assert locker.wait(30) == 0
        psutil.Process(keeper_pid).wait(30)  # the keeper exits once it let go
        assert "done with" in log.read_text()
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("uv-")) == [A]
    finally:
        for child in [*user, *children]:
            if child.poll() is None:
                child.kill()
                child.wait()
        if keeper_pid is not None and psutil.pid_exists(keeper_pid):
            psutil.Process(keeper_pid).kill()


@pytest.mark.windows
@pytest.mark.skipif(sys.platform != "win32", reason="runs on Windows only")
def test_windows_real_fences_two_processes_a_byte_each(tmp_path: Path) -> None:  # pragma: no cover
    """What the handover rests on, on Windows itself: byte [0, 1) locked here and byte [1, 2)
    by another process at once; a whole-file locker is out while either is held."""
    from uvsweep.remove.windows import Kernel32Remove

    lock = tmp_path / A
    lock.touch()
    files = Kernel32Remove()
    mine = files.open_generation(str(lock))
    other = _child(BYTE_HOLDER, str(lock))
    try:
        assert other.stdout.readline().strip() == b"open"  # it holds [1, 2)
        assert files.lock_range(mine, *CLEANER_FENCE)
        assert not files.lock_range(mine, *KEEPER_FENCE)
        files.unlock_range(mine, *CLEANER_FENCE)
        locker = _child(WHOLE_FILE_LOCKER, str(lock))
        assert locker.stdout.readline().strip() == b"trying"
        import time

        time.sleep(1.0)
        assert locker.poll() is None  # the other process's byte keeps it out
        other.stdin.close()
        other.wait(30)
        assert locker.wait(30) == 0
    finally:
        for child in (other,):
            if child.poll() is None:
                child.kill()
        files.close(mine)


def test_doctor_lists_the_files_keepers_hold() -> None:
    from uvsweep.doctor import keepers

    obs = Observation("C:\\T", A, 0o100666, 0, 1, 0.0, 7, 1, 0, "HOST\\me", True)
    obs.lock = LockProbe.HELD
    obs.openers = [LockUser(KEEPER_PID, "python.exe", "HOST\\me", tuple(WinKeeper().argv()))]
    plain = Observation(
        "C:\\T", "uv-00000000000000bb.lock", 0o100666, 0, 1, 0.0, 7, 2, 0, "m", True
    )
    plain.lock = LockProbe.HELD
    assert keepers([classify(obs), classify(plain)]) == [f"C:\\T\\{A}: pid {KEEPER_PID}"]


@pytest.mark.parametrize(
    ("code", "said"),
    [
        ("import sys; sys.stdin.read(); print('ready', flush=True); sys.stdin.read()", True),
        ("import sys; sys.stdin.read(); print('no', flush=True)", False),  # a wrong word
        ("import sys; sys.exit(3)", False),  # exits first
        ("import time; time.sleep(60)", False),  # silent: killed after the timeout
    ],
    ids=["ready", "wrong-word", "exits", "silent"],
)
def test_the_ready_word_is_read_from_a_real_process(code: str, said: bool) -> None:
    """`_Process`, the cleaner's view of a started keeper, over a real child's stdout."""
    import subprocess
    import time

    from uvsweep.remove.winkeeper import _Process

    child = subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert child.stdin is not None
        child.stdin.close()  # the job was written: EOF
        started = _Process(child)
        began = time.monotonic()
        assert started.ready(0.5 if code.startswith("import time") else 30) is said
        if not said:
            started.kill()
            assert child.poll() is not None
        assert time.monotonic() - began < 30
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()
        for stream in (child.stdout,):
            if stream is not None:
                stream.close()
