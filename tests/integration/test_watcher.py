"""The live watcher on real files, real locks, real processes and real inotify (Linux)."""

from __future__ import annotations

import errno
import itertools
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests import procs
from tests.conftest import APP_DIR, Holder, child_with_file, make_project, need, other_user_python
from tests.helpers import AS_NOBODY, A, B, StartFakeUv
from uvsweep import scanner
from uvsweep.autoclean import AutoClean
from uvsweep.fswatch import FsWatch, OnEvent
from uvsweep.model import Change, CleanResult, LockState, Snapshot
from uvsweep.settings import Settings
from uvsweep.watcher import Watcher

pytestmark = [
    pytest.mark.integration,
    pytest.mark.linux,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify and /proc"),
]


class Recorder:
    """A subscriber that keeps every (snapshot, change) and lets a test wait for a condition."""

    def __init__(self) -> None:
        self.calls: list[tuple[Snapshot, Change]] = []
        self.cond = threading.Condition()

    def __call__(self, snapshot: Snapshot, change: Change) -> None:
        with self.cond:
            self.calls.append((snapshot, change))
            self.cond.notify_all()

    @property
    def last(self) -> Snapshot:
        return self.calls[-1][0]

    def wait(self, predicate: Callable[[Snapshot], bool], timeout: float = 5.0) -> Snapshot:
        deadline = time.monotonic() + timeout
        with self.cond:
            while not (self.calls and predicate(self.last)):
                left = deadline - time.monotonic()
                assert left > 0, (
                    f"timed out; last snapshot: {self.calls[-1][0] if self.calls else None}"
                )
                self.cond.wait(left)
            return self.last


def states(snapshot: Snapshot) -> dict[str, LockState]:
    return {Path(item.path).name: item.state for item in snapshot.files}


@pytest.fixture
def watch(lockdir: Path) -> Iterator[Callable[..., tuple[Watcher, Recorder]]]:
    started: list[Watcher] = []

    def start(*dirs: Path, **options: object) -> tuple[Watcher, Recorder]:
        watcher = Watcher([str(d) for d in (dirs or (lockdir,))], **options)  # type: ignore[arg-type]
        recorder = Recorder()
        watcher.subscribe(recorder)
        watcher.start()
        started.append(watcher)
        recorder.wait(lambda _s: True)  # the first snapshot
        return watcher, recorder

    yield start
    for watcher in started:
        watcher.stop()


def test_files_appearing_and_going(
    lockdir: Path, watch: Callable[..., tuple[Watcher, Recorder]]
) -> None:
    _, rec = watch()
    assert rec.last.files == ()
    (lockdir / A).touch()
    rec.wait(lambda s: states(s) == {A: LockState.ORPHANED})
    assert [Path(f.path).name for f in rec.calls[-1][1].added] == [A]
    (lockdir / A).unlink()
    rec.wait(lambda s: s.files == ())
    assert [Path(f.path).name for f in rec.calls[-1][1].removed] == [A]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_holder_shows_orphaned_at_once(
    lockdir: Path, watch: Callable[..., tuple[Watcher, Recorder]], hold: type[Holder], sig: int
) -> None:
    path = lockdir / A
    path.touch()
    _, rec = watch(safety_interval=3600)
    holder = hold(path)
    rec.wait(lambda s: states(s) == {A: LockState.HELD})
    assert rec.last.files[0].holders[0].pid == holder.pid
    began = time.monotonic()
    holder.proc.send_signal(sig)
    rec.wait(lambda s: states(s) == {A: LockState.ORPHANED})
    assert time.monotonic() - began < 2.0  # events, not the (hour-long) safety rescan
    ((before, after),) = rec.calls[-1][1].changed
    assert (before.state, after.state) == (LockState.HELD, LockState.ORPHANED)


def test_a_waiter_takes_over_when_the_holder_dies(
    lockdir: Path, watch: Callable[..., tuple[Watcher, Recorder]], hold: type[Holder]
) -> None:
    path = lockdir / A
    path.touch()
    _, rec = watch(safety_interval=3600)
    first = hold(path)
    second = hold(path, wait=True)
    rec.wait(lambda s: bool(s.files) and len(s.files[0].waiters) == 1)
    first.stop()
    # a snapshot may land in the hand-over itself (the first's lock gone, the second's not yet
    # granted: the file only open): wait for where it settles
    snapshot = rec.wait(
        lambda s: bool(s.files) and not s.files[0].waiters and s.files[0].state is LockState.HELD
    )
    assert snapshot.files[0].holders[0].pid == second.pid


def test_the_probe_never_triggers_itself(
    lockdir: Path, watch: Callable[..., tuple[Watcher, Recorder]]
) -> None:
    for index in range(50):
        (lockdir / f"uv-{index:016x}.lock").touch()
    watcher, rec = watch(safety_interval=3600)
    assert len(rec.last.files) == 50
    time.sleep(1.5)
    assert watcher.scans == 1, "opening the files to probe them must not cause rescans"
    assert watcher.probes == 0, "nor probes of single files"


def test_real_uv_creates_a_labelled_lock(
    tmp_path: Path, lockdir: Path, uv: str, uv_env: dict[str, str],
    watch: Callable[..., tuple[Watcher, Recorder]],
) -> None:  # fmt: skip
    project = make_project(tmp_path / "proj")
    _, rec = watch(settings=Settings(project_dirs=(str(project),)))
    done = subprocess.run([uv, "sync"], cwd=project, env=uv_env, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    snapshot = rec.wait(lambda s: len(s.files) == 1 and s.files[0].state is LockState.ORPHANED)
    label = snapshot.files[0].label
    assert label is not None and label.path == str(project.resolve())


def test_a_deleted_dir_is_reported_and_reattached_when_it_returns(
    tmp_path: Path, watch: Callable[..., tuple[Watcher, Recorder]]
) -> None:
    directory = tmp_path / "tmpdir"
    directory.mkdir()
    watcher, rec = watch(directory, poll_interval=3600, safety_interval=3600)
    shutil.rmtree(directory)
    rec.wait(lambda s: [e.message for e in s.errors] == ["no such directory"])
    directory.mkdir()
    rec.wait(lambda s: s.errors == ())
    (directory / A).touch()  # seen through the re-attached watch: nothing polls here
    rec.wait(lambda s: states(s) == {A: LockState.ORPHANED}, timeout=2)
    assert watcher.polled_dirs == {}


def test_a_dir_missing_from_the_start_is_picked_up(
    tmp_path: Path, watch: Callable[..., tuple[Watcher, Recorder]]
) -> None:
    directory = tmp_path / "later"
    _, rec = watch(directory, poll_interval=3600, safety_interval=3600)
    assert [e.message for e in rec.last.errors] == ["no such directory"]
    directory.mkdir()
    (directory / A).touch()
    rec.wait(lambda s: states(s) == {A: LockState.ORPHANED}, timeout=2)


class RefusingFsWatch(FsWatch):
    """An OS that will not add inotify watches (max_user_watches reached)."""

    def attach(self, directory: str, on_event: OnEvent) -> None:
        raise OSError(errno.ENOSPC, "inotify watch limit reached")

    def attach_parent(self, directory: str, on_event: OnEvent) -> None:
        raise OSError(errno.ENOSPC, "inotify watch limit reached")

    def detach(self, directory: str) -> None:
        pass

    def close(self, timeout: float = 1.0) -> None:
        pass


def test_watch_limit_falls_back_to_polling(
    lockdir: Path, watch: Callable[..., tuple[Watcher, Recorder]]
) -> None:
    warnings: list[str] = []
    watcher, rec = watch(fs_watch=RefusingFsWatch, poll_interval=0.2, on_warning=warnings.append)
    assert "inotify watch limit reached" in watcher.polled_dirs[str(lockdir)]
    assert any("polling every 0.2 s" in w for w in warnings)
    assert any("polled" in note for note in rec.last.notes)
    (lockdir / A).touch()
    rec.wait(lambda s: states(s) == {A: LockState.ORPHANED}, timeout=3)


def test_burst_of_a_thousand_files(
    lockdir: Path, watch: Callable[..., tuple[Watcher, Recorder]]
) -> None:
    watcher, rec = watch(safety_interval=3600)
    before = len(rec.calls)
    began = time.monotonic()
    for chunk in range(10):
        for index in range(100):
            (lockdir / f"uv-{chunk * 100 + index:016x}.lock").touch()
        time.sleep(0.1)
    duration = time.monotonic() - began
    rec.wait(lambda s: len(s.files) == 1000)
    time.sleep(0.5)
    published = len(rec.calls) - before
    # coalesced: per chunk (the 0.1 s gaps are longer than `quiet`) a leading-edge probe and one
    # scan, at most one more per `max_delay` of the burst as it really took (longer on a loaded
    # machine), and the first and the final exact one; never one per file
    limit = 2 * 10 + math.ceil(duration / watcher.max_delay) + 2
    assert published <= limit, f"a burst must be coalesced, got {published} (limit {limit})"
    assert rec.last.count(LockState.ORPHANED) == 1000


def test_a_burst_at_once_gives_a_handful_of_snapshots_the_last_exact(
    lockdir: Path, watch: Callable[..., tuple[Watcher, Recorder]]
) -> None:
    watcher, rec = watch(safety_interval=3600)
    before, scans, probes = len(rec.calls), watcher.scans, watcher.probes
    began = time.monotonic()
    for index in range(1000):
        (lockdir / f"uv-{index:016x}.lock").touch()
    rec.wait(lambda s: len(s.files) == 1000)
    duration = time.monotonic() - began
    time.sleep(0.5)  # anything still to come
    published = len(rec.calls) - before
    scans, probes = watcher.scans - scans, watcher.probes - probes
    # a leading-edge probe only after a quiet spell, and a full rescan after each: between two
    # rescans (at most `max_delay` apart while events keep coming, as the burst really took on
    # this machine) at most one probe and one rescan publish; never one per file
    assert 1 <= probes <= scans
    limit = 2 * (math.ceil(duration / watcher.max_delay) + 1)
    assert published <= limit, f"a burst must be coalesced, got {published} (limit {limit})"
    fresh = scanner.scan([str(lockdir)], label=False)
    assert [(f.path, f.state) for f in rec.last.files] == [(f.path, f.state) for f in fresh.files]
    assert rec.last.count(LockState.ORPHANED) == 1000


def test_the_first_event_after_a_quiet_spell_is_acted_on_at_once(
    lockdir: Path, watch: Callable[..., tuple[Watcher, Recorder]]
) -> None:
    # a `quiet` far longer than the waits below: only the leading edge can meet them (other
    # users' uv processes starting and exiting may add full rescans, never take probes away)
    watcher, rec = watch(safety_interval=3600, quiet=4.0, max_delay=8.0)
    scans = watcher.scans
    (lockdir / A).touch()
    snapshot = rec.wait(lambda s: states(s) == {A: LockState.ORPHANED}, timeout=2.0)
    assert watcher.probes == 1
    assert [Path(f.path).name for f in rec.calls[-1][1].added] == [A]
    assert snapshot.files[0].label is None  # labelled like a scan's (none matches this name)
    # what follows is coalesced into the full rescan, `quiet` after the last event
    deadline = time.monotonic() + 15
    while watcher.scans == scans:
        assert time.monotonic() < deadline, "a full rescan must follow a leading probe"
        time.sleep(0.05)
    (lockdir / A).unlink()  # quiet again: acted on at once
    rec.wait(lambda s: s.files == (), timeout=2.0)
    assert [Path(f.path).name for f in rec.calls[-1][1].removed] == [A]
    assert watcher.probes == 2


def test_a_leading_probe_reads_the_lock_table_only_where_the_try_lock_leaves_a_doubt(
    lockdir: Path, hold: type[Holder], monkeypatch: pytest.MonkeyPatch
) -> None:
    from uvsweep import probe
    from uvsweep.processes import ProcessTable

    kinds = ("free", "held", "waited", "open")
    names = {kind: f"uv-00000000000000{i:02x}.lock" for i, kind in enumerate(kinds, start=0xC0)}
    for name in names.values():
        (lockdir / name).touch()
    holder = hold(lockdir / names["held"])
    hold(lockdir / names["waited"])
    waiter = hold(lockdir / names["waited"], wait=True)
    reads: list[int] = []

    def probe_files(name: str, *, lazy: bool) -> list[tuple[object, ...]]:
        backend = probe.for_platform(processes=ProcessTable())
        backend.lazy_table = lazy
        load = backend.load_lock_table
        monkeypatch.setattr(backend, "load_lock_table", lambda result: (reads.append(1),
                                                                        load(result)))  # fmt: skip
        files = backend.probe_files([(str(lockdir), name)]).files
        return [(f.state, [h.pid for h in f.holders], [h.pid for h in f.waiters],
                 [h.pid for h in f.openers]) for f in files]  # fmt: skip

    with child_with_file(lockdir / names["open"], write=True) as opener:
        answers = {}
        for kind, name in names.items():
            reads.clear()
            answers[kind] = probe_files(name, lazy=True)
            assert answers[kind] == probe_files(name, lazy=False), kind
            assert len(reads) == (1 if kind == "free" else 2), kind  # the lazy one read none
        assert answers["free"] == [(LockState.ORPHANED, [], [], [])]
        assert answers["held"][0][:2] == (LockState.HELD, [holder.pid])
        assert answers["waited"][0][2] == [waiter.pid]
        assert answers["open"] == [(LockState.OPEN, [], [], [opener.pid])]


def test_uv_exit_triggers_a_rescan(
    lockdir: Path,
    watch: Callable[..., tuple[Watcher, Recorder]],
    fake_uv: StartFakeUv,
) -> None:
    fake = fake_uv(60)
    watcher, _ = watch(safety_interval=3600)
    assert fake.pid in [p.pid for p in watcher.uv_processes]
    scans = watcher.scans
    fake.proc.kill()
    deadline = time.monotonic() + 2
    # the rescan sets the uv list first and then counts itself: wait for both
    while fake.pid in [p.pid for p in watcher.uv_processes] or watcher.scans == scans:
        assert time.monotonic() < deadline, "the exit of uv must trigger a rescan"
        time.sleep(0.01)
    assert watcher.scans >= scans + 1


def test_clean_when_idle_waits_for_uv(
    lockdir: Path,
    watch: Callable[..., tuple[Watcher, Recorder]],
    fake_uv: StartFakeUv,
) -> None:
    fake = fake_uv(60)
    policy = AutoClean(min_age=0)
    watcher, rec = watch(safety_interval=3600)
    policy.attach(watcher)
    (lockdir / A).touch()
    rec.wait(lambda s: states(s) == {A: LockState.ORPHANED})
    time.sleep(0.3)
    assert (lockdir / A).exists(), "never while uv runs"
    fake.proc.kill()
    rec.wait(lambda s: s.files == ())
    assert not (lockdir / A).exists()
    assert policy.last_report is not None and policy.last_report.removed == [str(lockdir / A)]


def test_auto_clean_looks_at_every_rescan_and_can_be_turned_off(
    lockdir: Path, watch: Callable[..., tuple[Watcher, Recorder]]
) -> None:
    old = time.time() - 7200
    (lockdir / A).touch()
    os.utime(lockdir / A, (old, old))
    (lockdir / B).touch()  # too young for `min_age`
    cleaned: list[list[str]] = []

    def clean(dirs: Sequence[str]) -> CleanResult:
        cleaned.append(list(dirs))
        return CleanResult(dirs)

    policy = AutoClean(min_age=3600, clean=clean)
    policy.enabled = False
    watcher, rec = watch(safety_interval=3600)
    detach = policy.attach(watcher)
    watcher.rescan()
    rec.wait(lambda s: len(s.files) == 2)
    scans = watcher.scans
    watcher.rescan()  # nothing changed: no snapshot for the subscribers, but a rescan
    deadline = time.monotonic() + 5
    while watcher.scans == scans:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert cleaned == [], "turned off"
    policy.enabled = True
    scans = watcher.scans
    watcher.rescan()  # again nothing changed: the policy still sees the rescan
    deadline = time.monotonic() + 5
    while not cleaned:
        assert time.monotonic() < deadline, "an unchanged rescan must still reach the policy"
        time.sleep(0.02)
    assert cleaned[0] == [str(lockdir)] and watcher.scans > scans
    detach()
    count = len(cleaned)
    watcher.rescan()
    time.sleep(0.3)
    assert len(cleaned) == count, "detached"


def test_a_file_the_cleanup_keeps_is_not_cleaned_again_at_every_rescan(
    lockdir: Path, watch: Callable[..., tuple[Watcher, Recorder]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file kept though nobody uses it (an unlink the OS refused, a dir where only private
    files may go) is `orphaned` in the next scan too: cleaning again at every rescan is a loop,
    since each cleanup's own opens and locks are file events."""
    from uvsweep import autoclean

    old = time.time() - 7200
    (lockdir / A).touch()
    os.utime(lockdir / A, (old, old))
    runs: list[float] = []

    def keeping(dirs: Sequence[str]) -> CleanResult:
        runs.append(time.monotonic())
        result = CleanResult(dirs)
        result.skip(str(lockdir / A), LockState.ORPHANED, "the OS refused to remove it")
        return result

    policy = AutoClean(clean=keeping)
    watcher, _rec = watch(safety_interval=3600)
    policy.attach(watcher)

    def rescanned() -> None:
        scans = watcher.scans
        watcher.rescan()
        deadline = time.monotonic() + 10
        while watcher.scans == scans:
            assert time.monotonic() < deadline
            time.sleep(0.02)

    for _ in range(5):
        rescanned()
    assert len(runs) == 1, runs
    monkeypatch.setattr(autoclean, "RETRY_KEPT", 0.0)  # its time has come: tried again
    rescanned()
    assert len(runs) == 2, runs


def test_the_watcher_imports_no_cleanup_code(lockdir: Path) -> None:
    (lockdir / A).touch()
    code = (
        "import sys, threading\n"
        "from uvsweep.watcher import Watcher\n"
        "seen = threading.Event()\n"
        "w = Watcher([sys.argv[1]], safety_interval=3600)\n"
        "w.subscribe(lambda s, c: seen.set())\n"
        "w.start(); assert seen.wait(20); w.rescan(full=True); w.stop(5)\n"
        "print('LOADED', sorted(m for m in sys.modules if m.startswith(('uvsweep.cleaner',"
        " 'uvsweep.remove', 'uvsweep.autoclean'))))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(lockdir)], capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines()[-1] == "LOADED []"


def test_start_and_stop_are_idempotent_and_leave_no_thread(lockdir: Path) -> None:
    before = set(threading.enumerate())
    watcher = Watcher([str(lockdir)])
    watcher.start()
    watcher.start()
    time.sleep(0.2)
    assert len(set(threading.enumerate()) - before) >= 3  # worker, waiter, watchdog threads
    began = time.monotonic()
    watcher.stop()
    watcher.stop()
    assert time.monotonic() - began < 1.0
    assert set(threading.enumerate()) - before == set()
    watcher.start()  # and it starts again
    watcher.stop()
    assert set(threading.enumerate()) - before == set()


def test_a_failing_subscriber_does_not_silence_the_others(
    lockdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # the failing one subscribes first: the others come after it in every round
    failures: list[int] = []

    def broken(_snapshot: Snapshot, _change: Change) -> None:
        failures.append(1)
        raise RuntimeError("subscriber bug")

    watcher = Watcher([str(lockdir)])
    rec = Recorder()
    watcher.subscribe(broken)
    watcher.subscribe(rec)
    watcher.start()
    try:
        rec.wait(lambda _s: True)  # the first snapshot reached the second subscriber...
        (lockdir / A).touch()
        rec.wait(lambda s: len(s.files) == 1)  # ...and so does every later one
        (lockdir / B).touch()
        rec.wait(lambda s: len(s.files) == 2)
    finally:
        watcher.stop()
    assert len(failures) >= 3  # the broken one is still called each round, too
    assert any("a watcher subscriber failed" in r.getMessage() for r in caplog.records)


# ---- `uvsweep watch` ----------------------------------------------------------------------------


def start_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return procs.popen(
        [sys.executable, "-m", "uvsweep", "watch", *args], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": APP_DIR, **(env or {})},
    )  # fmt: skip


@contextmanager
def running(
    proc: subprocess.Popen[str], sig: int = signal.SIGTERM
) -> Iterator[subprocess.Popen[str]]:
    """Yield `proc`; then stop it with `sig` and check it exits 0 without a traceback."""
    try:
        yield proc
    finally:
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    running.stderr = err  # type: ignore[attr-defined]


def read_line(proc: subprocess.Popen[str], timeout: float = 10) -> str:
    assert proc.stdout is not None
    result: list[str] = []
    reader = threading.Thread(target=lambda: result.append(proc.stdout.readline()))  # type: ignore[union-attr]
    reader.start()
    reader.join(timeout)
    assert result, "no line in time"
    return result[0]


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cli_watch_text(lockdir: Path, sig: int) -> None:
    with running(start_cli("--dir", str(lockdir)), sig) as proc:
        assert read_line(proc).strip() == f"No uv lock files in {lockdir}."
        (lockdir / A).touch()
        line = read_line(proc)
        if f"+ open       {lockdir / A}" in line:
            # the leading probe may find the file still open by `touch` (it is, for a moment):
            # its close brings the full rescan that shows it orphaned
            line = read_line(proc)
            assert f"{lockdir / A}" in line and "orphaned" in line, line
        else:
            assert f"+ orphaned   {lockdir / A}  (unknown)" in line
        (lockdir / A).unlink()
        assert read_line(proc).rstrip().endswith(f"- {lockdir / A}")


def test_cli_watch_json_lines(lockdir: Path, hold: type[Holder]) -> None:
    (lockdir / A).touch()
    with running(start_cli("--dir", str(lockdir), "--json", "--no-labels")) as proc:
        first = json.loads(read_line(proc))
        assert first["event"] == "initial" and first["version"] == 1
        assert first["summary"]["orphaned"] == 1 and first["dirs"] == [str(lockdir)]
        holder = hold(lockdir / A)
        changed = json.loads(read_line(proc))
        assert changed["event"] == "changed" and changed["previous_state"] == "orphaned"
        assert changed["file"]["state"] == "held"
        assert changed["file"]["holders"][0]["pid"] == holder.pid
        (lockdir / B).touch()
        added = json.loads(read_line(proc))
        assert added["event"] == "added" and added["file"]["name"] == B


def _unshare_works() -> bool:
    return (
        shutil.which("unshare") is not None
        and subprocess.run(["unshare", "-r", "true"], capture_output=True, check=False).returncode
        == 0
    )


@pytest.mark.parametrize(
    ("knob", "reason"),
    [
        ("max_inotify_watches", "inotify watch limit"),
        ("max_inotify_instances", "inotify instance limit"),
    ],
)
def test_cli_watch_with_inotify_exhausted(lockdir: Path, knob: str, reason: str) -> None:
    need(_unshare_works(), "unshare (util-linux) with user namespaces lowers inotify limits")
    script = (
        f"echo 0 > /proc/sys/user/{knob} && exec {sys.executable} -m uvsweep watch --json "
        f"--dir {lockdir}"
    )
    proc = subprocess.Popen(
        ["unshare", "-r", "sh", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, "PYTHONPATH": APP_DIR},
    )  # fmt: skip
    with running(proc):
        lines = [json.loads(read_line(proc)) for _ in range(2)]
        events = {line["event"]: line for line in lines}
        assert reason in events["warning"]["message"]
        assert "polling every 2 s" in events["warning"]["message"]
        assert events["initial"]["summary"]["orphaned"] == 0
        (lockdir / A).touch()
        added = json.loads(read_line(proc))
        assert added["event"] == "added" and added["file"]["name"] == A


def test_cli_watch_unreadable_dir(shared_tmp: Path) -> None:
    found = other_user_python()
    need(found is not None, AS_NOBODY)
    assert found is not None
    uid, gid, python = found
    private = shared_tmp / "private"
    private.mkdir(mode=0o700)
    site = shared_tmp / "site"  # watchdog where nobody can import it (the venv is root's)
    import watchdog

    shutil.copytree(Path(watchdog.__file__).parent, site / "watchdog")
    proc = subprocess.Popen(
        ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", python, "-m", "uvsweep",
         "watch", "--dir", str(private)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/",
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{APP_DIR}:{site}",
             "UVSWEEP_CONFIG": "/nonexistent"},
    )  # fmt: skip
    with running(proc, signal.SIGINT):
        # only what is true: no "No uv lock files in" a dir that could not be listed
        assert read_line(proc).strip() == f"error: {private}: permission denied (cannot list it)"
    # the OS will not let nobody watch it either: said once, and the dir is polled
    err = running.stderr  # type: ignore[attr-defined]
    assert f"warning: {private}: cannot watch it (Permission denied): polling every 2 s" in err


def test_a_read_only_holder_killed_shows_orphaned_too(
    lockdir: Path, watch: Callable[..., tuple[Watcher, Recorder]]
) -> None:
    path = lockdir / A
    path.touch()
    _, rec = watch(safety_interval=3600)
    with child_with_file(path, write=False, lock=True) as holder:
        rec.wait(lambda s: states(s) == {A: LockState.HELD})
        holder.kill()  # its close is a close-without-write
        rec.wait(lambda s: states(s) == {A: LockState.ORPHANED}, timeout=2)


# ---- symlinks and permissions: each seen by events, polling or the identity check, never
# ---- left to the safety rescan (set to an hour here)


def test_a_symlinked_dir_is_watched_where_it_points(
    tmp_path: Path, watch: Callable[..., tuple[Watcher, Recorder]]
) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    watcher, rec = watch(link, safety_interval=3600)
    (real / A).touch()
    snapshot = rec.wait(lambda s: A in states(s))
    assert snapshot.files[0].path == str(link / A)  # told in the watched dir's terms
    # the probe's own opens through the link are still told apart: no scan triggers another
    time.sleep(0.5)
    scans = watcher.scans
    time.sleep(2)
    assert watcher.scans - scans <= 2


def test_a_dir_replaced_by_a_symlink_is_followed(
    tmp_path: Path, watch: Callable[..., tuple[Watcher, Recorder]]
) -> None:
    watched = tmp_path / "watched"
    watched.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _, rec = watch(watched, safety_interval=3600)
    (watched / A).touch()
    rec.wait(lambda s: states(s) == {A: LockState.ORPHANED})
    watched.rename(tmp_path / "old")
    watched.symlink_to(elsewhere)
    (elsewhere / B).touch()
    rec.wait(lambda s: set(states(s)) == {B}, timeout=10)
    (elsewhere / A).touch()  # and it is watched there by events now
    rec.wait(lambda s: set(states(s)) == {A, B}, timeout=10)


def _link_to_one_of_two(tmp_path: Path) -> tuple[Path, Path, Path]:
    """(one, two, link): two dirs, `B` in the second, and a symlink to the first."""
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    (two / B).touch()
    link = tmp_path / "link"
    link.symlink_to(one)
    return one, two, link


def _repoint(link: Path, target: Path) -> None:
    new = link.with_name(link.name + ".new")
    new.symlink_to(target)
    new.rename(link)  # atomically points elsewhere


def test_a_symlink_that_changes_target_is_followed(
    tmp_path: Path, watch: Callable[..., tuple[Watcher, Recorder]]
) -> None:
    one, two, link = _link_to_one_of_two(tmp_path)
    _, rec = watch(link, safety_interval=3600)
    (one / A).touch()
    rec.wait(lambda s: set(states(s)) == {A})
    _repoint(link, two)
    rec.wait(lambda s: set(states(s)) == {B}, timeout=10)
    (two / A).touch()
    rec.wait(lambda s: set(states(s)) == {A, B}, timeout=10)


def test_an_idle_watcher_checks_the_dirs_identity_less_and_less_often(
    tmp_path: Path, watch: Callable[..., tuple[Watcher, Recorder]]
) -> None:
    """The identity check is a timer wakeup: every second for ever kept an idle watcher above
    one wakeup a second. It backs off while nothing moves, and a move still shows."""
    _one, two, link = _link_to_one_of_two(tmp_path)
    watcher, rec = watch(link, safety_interval=3600, poll_interval=0.05)  # first check: 50 ms
    checks: list[float] = []
    moved_dirs = watcher._moved_dirs

    def counted() -> set[str]:
        checks.append(time.monotonic())
        return moved_dirs()

    watcher._moved_dirs = counted  # type: ignore[method-assign]
    time.sleep(2.0)
    # every 50 ms would be ~40 checks; doubling from 50 ms gives 5 or 6 in 2 s
    assert 2 <= len(checks) <= 8, checks
    gaps = [b - a for a, b in itertools.pairwise(checks)]
    assert gaps == sorted(gaps), gaps
    _repoint(link, two)  # seen at the next check, however long the wait has grown
    rec.wait(lambda s: set(states(s)) == {B}, timeout=20)


def test_cli_watch_dir_made_unreadable_and_readable_again(shared_tmp: Path) -> None:
    found = other_user_python()
    need(found is not None, AS_NOBODY)
    assert found is not None
    uid, gid, python = found
    theirs = shared_tmp / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, uid, gid)
    site = shared_tmp / "site"  # watchdog where nobody can import it (the venv is root's)
    import watchdog

    shutil.copytree(Path(watchdog.__file__).parent, site / "watchdog")
    settings = shared_tmp / "settings.toml"
    settings.write_text("safety_rescan = 3600\n")
    settings.chmod(0o644)
    proc = subprocess.Popen(
        ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", python, "-m", "uvsweep",
         "watch", "--dir", str(theirs)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/",
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": f"{APP_DIR}:{site}",
             "UVSWEEP_CONFIG": str(settings)},
    )  # fmt: skip
    with running(proc, signal.SIGINT):
        assert read_line(proc).strip() == f"No uv lock files in {theirs}."
        theirs.chmod(0o000)
        (theirs / A).touch()  # root can; nobody cannot see it now
        os.chown(theirs / A, uid, gid)
        line = read_line(proc)
        assert line.strip().endswith(f"! {theirs}: permission denied (cannot list it)"), line
        theirs.chmod(0o700)  # readable again: seen at the next poll, not the safety rescan
        line = read_line(proc)
        assert f"+ orphaned   {theirs / A}" in line, line
    err = running.stderr  # type: ignore[attr-defined]
    assert f"{theirs}: cannot read it" in err and "polling every 2 s" in err
