"""The removal protocol on real files, real flocks and real processes (Linux)."""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests import procs
from tests.conftest import Holder, child_with_file, flock_held, other_user_python
from tests.helpers import A, B, wait_for
from tests.redteam.support import no_lease_before_the_unlink
from uvsweep.model import CleanResult, LockState
from uvsweep.probe.posix import Syscalls
from uvsweep.remove import Policy, Target
from uvsweep.remove.posix import LinuxRemover

pytestmark = [
    pytest.mark.linux,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc"),
]


def touch(directory: Path, name: str, age: float = 0.0) -> Path:
    path = directory / name
    path.touch()
    if age:
        then = time.time() - age
        os.utime(path, (then, then))
    return path


def clean(directory: Path, remover: LinuxRemover | None = None, **policy: object) -> CleanResult:
    return (remover or LinuxRemover()).remove([str(directory)], Policy(**policy))  # type: ignore[arg-type]


def skipped(result: CleanResult) -> dict[str, tuple[LockState, str]]:
    return {Path(s.path).name: (s.state, s.reason) for s in result.skipped}


def fingerprint(path: Path) -> tuple[int, int, int, bytes | None]:
    st = os.lstat(path)
    content = path.read_bytes() if stat.S_ISREG(st.st_mode) else None
    return st.st_ino, st.st_mode, st.st_nlink, content


def test_removes_orphans_and_nothing_else(lockdir: Path, tmp_path: Path) -> None:
    victim = tmp_path / "precious"
    victim.write_text("keep me")
    orphan = touch(lockdir, A)
    (lockdir / "uv-0000000000000001.lock").symlink_to(victim)
    (lockdir / "uv-0000000000000002.lock").symlink_to(tmp_path / "nowhere")
    (lockdir / "uv-0000000000000003.lock").mkdir()
    os.mkfifo(lockdir / "uv-0000000000000004.lock")
    (lockdir / "uv-0000000000000005.lock").write_text("data")
    touch(lockdir, "uv-0000000000000006.lock")
    os.link(lockdir / "uv-0000000000000006.lock", lockdir / "uv-0000000000000007.lock")
    near_misses = [
        "uv-00000000000000AA.lock", "uv-000000000000000.lock", ".tmpAb12Cd",
        "uv-00000000000000aa.lock.tmp",
        "uv-setuptools-00000000000000aa.lockx", "xuv-00000000000000aa.lock",
    ]  # fmt: skip
    for name in near_misses:
        touch(lockdir, name)
    before = {p.name: fingerprint(p) for p in lockdir.iterdir() if p.name != A}

    result = clean(lockdir)

    assert result.removed == [str(orphan)]
    assert not orphan.exists()
    after = {p.name: fingerprint(p) for p in lockdir.iterdir()}
    assert after == before, "nothing but the orphan may change"
    assert victim.read_text() == "keep me"
    states = skipped(result)
    assert set(states) == {f"uv-000000000000000{i}.lock" for i in range(1, 8)}
    assert {state for state, _ in states.values()} == {LockState.SUSPICIOUS}
    assert "symlink" in states["uv-0000000000000001.lock"][1]
    assert "FIFO" in states["uv-0000000000000004.lock"][1]
    assert "hard link" in states["uv-0000000000000006.lock"][1]
    assert not result.errors


def test_setuptools_lock_is_removed_too(lockdir: Path) -> None:
    path = touch(lockdir, "uv-setuptools-00000000000000aa.lock")
    assert clean(lockdir).removed == [str(path)]


def test_held_waiting_and_open_files_stay(lockdir: Path, hold: type[Holder]) -> None:
    held = touch(lockdir, A)
    waited = touch(lockdir, B)
    opened = touch(lockdir, "uv-00000000000000cc.lock")
    holder = hold(held)
    hold(waited)
    hold(waited, wait=True)
    with child_with_file(opened):
        result = clean(lockdir)
    assert result.removed == []
    states = skipped(result)
    assert states[A][0] is LockState.HELD
    assert f"pid {holder.pid} " in states[A][1]
    assert states[B][0] is LockState.HELD  # its holder is visible; the waiter is behind it
    assert states["uv-00000000000000cc.lock"][0] is LockState.OPEN
    assert held.exists() and waited.exists() and opened.exists()
    assert flock_held(held), "the holder must still hold its lock"


def test_a_waiter_whose_holder_is_gone_keeps_the_file(lockdir: Path, hold: type[Holder]) -> None:
    # the holder takes the lock, a waiter queues behind it, then the holder dies: the waiter
    # now holds it. Either way the file stays.
    path = touch(lockdir, A)
    first = hold(path)
    hold(path, wait=True)
    first.stop()
    time.sleep(0.2)
    result = clean(lockdir)
    assert result.removed == [] and path.exists()
    assert skipped(result)[A][0] is LockState.HELD


def test_min_age(lockdir: Path) -> None:
    old = touch(lockdir, A, age=7200)
    young = touch(lockdir, B, age=60)
    result = clean(lockdir, min_age=3600)
    assert result.removed == [str(old)]
    assert young.exists()
    state, reason = skipped(result)[B]
    assert state is LockState.ORPHANED and "younger than the minimum age" in reason


def test_other_users_files_only_with_all_users(lockdir: Path) -> None:
    from tests.conftest import need

    need(os.geteuid() == 0, "root, to chown a file to another user (run the suite as root)")
    foreign = touch(lockdir, A)
    os.chown(foreign, 65534, 65534)
    result = clean(lockdir)
    assert result.removed == [] and foreign.exists()
    assert skipped(result)[A][0] is LockState.FOREIGN
    result = clean(lockdir, all_users=True)
    assert result.removed == [str(foreign)] and not foreign.exists()


def test_a_non_root_user_never_removes_anothers_file(shared_tmp: Path) -> None:
    found = other_user_python()
    if found is None:
        pytest.skip("needs root, setpriv (util-linux) and the user nobody")
    uid, gid, python = found
    ours = touch(shared_tmp, A)  # root's file; nobody's clean must leave it
    theirs = shared_tmp / B
    shared_tmp.chmod(0o1777)
    code = textwrap.dedent(
        f"""
        import json, sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2] / "app")!r})
        open({str(theirs)!r}, 'w').close()
        from uvsweep.remove import Policy
        from uvsweep.remove.posix import LinuxRemover
        result = LinuxRemover().remove([{str(shared_tmp)!r}], Policy(all_users=True))
        print(json.dumps([result.removed, [(s.path, s.state.value) for s in result.skipped]]))
        """
    )
    out = subprocess.run(
        ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", python, "-c", code],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    import json

    removed, kept = json.loads(out.stdout)
    assert removed == [str(theirs)], "their own orphan goes, even with all_users as non-root"
    assert kept == [[str(ours), "foreign"]]
    assert ours.exists()


def test_missing_and_non_directory_dirs_are_errors(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    result = LinuxRemover().remove([str(tmp_path / "nope"), str(tmp_path / "file")], Policy())
    assert [(Path(e.path).name, e.message) for e in result.errors] == [
        ("nope", "no such directory"),
        ("file", "not a directory"),
    ]


class _Swapping(LinuxRemover):
    """Runs `action(name)` right after the protocol's first open of each file (between the
    open and the lock, before anything was checked)."""

    def __init__(self, action: object) -> None:
        remover = self

        class Calls(Syscalls):
            def open(
                self, name: str, flags: int, mode: int = 0o777, dir_fd: int | None = None
            ) -> int:
                fd = super().open(name, flags, mode, dir_fd=dir_fd)
                if dir_fd is not None and name not in remover.seen:
                    remover.seen.add(name)
                    remover.action(name)  # type: ignore[operator]
                return fd

        self.action = action
        self.seen: set[str] = set()
        super().__init__(calls=Calls())


def test_file_swapped_after_our_open_is_left_alone(lockdir: Path, tmp_path: Path) -> None:
    path = touch(lockdir, A)
    victim = tmp_path / "victim"
    victim.write_text("x")

    def swap_for_new_file(_name: str) -> None:
        path.rename(tmp_path / "old")  # kept alive, so the new file cannot reuse its inode
        path.touch()

    result = clean(lockdir, _Swapping(swap_for_new_file))
    assert result.removed == [] and path.exists()
    assert skipped(result)[A] == (LockState.SUSPICIOUS, "replaced while it was being removed")

    def swap_for_symlink(_name: str) -> None:
        path.rename(tmp_path / "older")  # the file we opened stays linked: it is not gone
        path.symlink_to(victim)

    result = clean(lockdir, _Swapping(swap_for_symlink))
    assert result.removed == [] and path.is_symlink() and victim.read_text() == "x"
    assert skipped(result)[A][0] is LockState.SUSPICIOUS


def test_file_vanishing_mid_clean_is_no_error(lockdir: Path) -> None:
    path = touch(lockdir, A)
    other = touch(lockdir, B)
    result = clean(lockdir, _Swapping(lambda name: name == A and path.unlink()))
    assert result.removed == [str(other)]
    assert result.skipped == [] and result.errors == []


def test_a_failed_fd_walk_leaves_no_lock_table_reader_running(lockdir: Path) -> None:
    """The lock table is read on a thread beside the fd walk: when the walk fails, that thread
    is over before the error goes on (a handoff may fork a keeper next)."""
    touch(lockdir, A)
    reading = threading.Event()

    class FailingWalk(LinuxRemover):
        def lock_users(self, targets):  # type: ignore[no-untyped-def]
            reading.set()
            time.sleep(0.5)  # a slow read: still going when the walk fails
            return super().lock_users(targets)

        def open_users(self, targets, result):  # type: ignore[no-untyped-def]
            reading.wait(5)
            raise OSError(24, "Too many open files")

    remover = FailingWalk()
    dir_fd, names = remover.listing(str(lockdir))
    try:
        target = remover.acquire(dir_fd, str(lockdir), names[0], Policy(), CleanResult([]))
        assert target is not None
        with pytest.raises(OSError, match="Too many open files"):
            remover.users([target], CleanResult([]))
        assert [t for t in threading.enumerate() if t.name == "uvsweep-beside"] == []
        remover.release(target)
    finally:
        remover.close_dir(dir_fd)


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


class _FailingFstat(Syscalls):
    """`fstat` of the file opened for `name` raises `error`."""

    def __init__(self, name: str, error: BaseException) -> None:
        self.name, self.error = name, error
        self.fds: list[int] = []

    def open(self, name: str, flags: int, mode: int = 0o777, dir_fd: int | None = None) -> int:
        fd = super().open(name, flags, mode, dir_fd=dir_fd)
        if name == self.name:
            self.fds.append(fd)
        return fd

    def fstat(self, fd: int) -> os.stat_result:
        if fd in self.fds:
            self.fds.remove(fd)  # (its number is free for the next file once closed)
            raise self.error
        return super().fstat(fd)


def test_an_fstat_error_is_reported_and_the_run_goes_on(lockdir: Path) -> None:
    """The opened file's status cannot be read: an error for that file, its fd closed, and
    the others still removed (not a traceback)."""
    keep, other = touch(lockdir, A), touch(lockdir, B)
    before = _open_fds()
    calls = _FailingFstat(A, OSError(5, "Input/output error"))
    result = LinuxRemover(calls=calls).remove([str(lockdir)], Policy())
    assert [(e.path, e.message) for e in result.errors] == [(str(keep), "Input/output error")]
    assert result.removed == [str(other)] and keep.exists() and not other.exists()
    assert _open_fds() == before


def test_an_interrupt_during_the_checks_closes_the_file_and_goes_on_up(lockdir: Path) -> None:
    touch(lockdir, A)
    before = _open_fds()
    calls = _FailingFstat(A, KeyboardInterrupt())
    with pytest.raises(KeyboardInterrupt):
        LinuxRemover(calls=calls).remove([str(lockdir)], Policy())
    assert _open_fds() == before and (lockdir / A).exists()


class _OtherDevice(Syscalls):
    """`/proc/locks` and our fds' `fdinfo` printing another device for `st_dev`'s file system
    than its own numbers (as overlayfs and btrfs subvolumes do)."""

    def __init__(self, dev: int) -> None:
        self.real = f" {os.major(dev):02x}:{os.minor(dev):02x}:"
        self.shown = " ff:7f:"

    def read(self, path: str) -> bytes:
        text = super().read(path)
        if path.endswith("/locks") or "/fdinfo/" in path:
            return text.replace(self.real.encode(), self.shown.encode())
        return text


def test_the_device_the_lock_table_prints_is_learned_from_our_first_lock(lockdir: Path) -> None:
    """Our own records on a file system the table prints under another device are known as
    ours once our first lock there taught that device (our fd's fdinfo): the file goes, and
    no waiter is made up for records that seemed never to show."""
    path = touch(lockdir, A)
    calls = _OtherDevice(os.stat(path).st_dev)
    result = LinuxRemover(calls=calls).remove([str(lockdir)], Policy())
    assert result.removed == [str(path)], result.skipped


def test_simulated_calls_are_never_made_from_a_second_thread(lockdir: Path) -> None:
    """A simulated kernel schedules each actor's calls on its one thread: the lock table is
    then read on the walk's thread, after it."""
    main = threading.current_thread()

    class OneThread(Syscalls):
        concurrent = False

        def read(self, path: str) -> bytes:
            assert threading.current_thread() is main, f"{path} read on another thread"
            return super().read(path)

    path = touch(lockdir, A)
    assert LinuxRemover(calls=OneThread()).remove([str(lockdir)], Policy()).removed == [str(path)]


class _CountingOpens(Syscalls):
    def __init__(self) -> None:
        self.opened: list[str] = []

    def open(self, name: str, flags: int, mode: int = 0o777, dir_fd: int | None = None) -> int:
        self.opened.append(name)
        return super().open(name, flags, mode, dir_fd=dir_fd)


def test_no_file_is_opened_in_a_dir_none_of_whose_files_may_go(lockdir: Path) -> None:
    """A dir kept whole (hidden processes and a dir others may enter; a lock table a non-root
    cleaner cannot read) is decided before any open: each file stays, unopened (an open is a
    file event: a watcher cleaning on events would clean again and again)."""
    touch(lockdir, A)
    lockdir.chmod(0o755)  # others may enter
    calls = _CountingOpens()
    result = LinuxRemover(calls=calls).remove([str(lockdir)], Policy(private_dirs_only="hidden"))
    assert [s.state for s in result.skipped] == [LockState.ORPHANED] and calls.opened == []

    class Blind(LinuxRemover):
        def blind_spot(self, directory: str) -> str | None:
            return "the lock table cannot be read"

    calls = _CountingOpens()
    result = Blind(calls=calls).remove([str(lockdir)], Policy())
    assert [(s.state, s.reason) for s in result.skipped] == [
        (LockState.ORPHANED, "the lock table cannot be read")
    ]
    assert calls.opened == [] and (lockdir / A).exists()


def test_a_file_we_hold_and_another_process_waits_for_names_the_waiter(
    lockdir: Path, hold: type[Holder]
) -> None:
    """Our own lock on a file (a keeper's, a handoff on another thread) with another process
    queued behind it: the reason names that process, not only "uvsweep itself"."""
    import fcntl

    path = touch(lockdir, A)
    ours = os.open(path, os.O_RDONLY)
    fcntl.flock(ours, fcntl.LOCK_EX)
    try:
        waiter = hold(path, wait=True)  # blocks behind our lock
        wait_for("the waiter in /proc/locks",
                 lambda: f" {waiter.pid} " in Path("/proc/locks").read_text())  # fmt: skip
        result = LinuxRemover().remove([str(lockdir)], Policy())
        ((state, reason),) = [(s.state, s.reason) for s in result.skipped]
        assert state is LockState.WAITING and f"pid {waiter.pid}" in reason, reason
        assert "uvsweep itself" not in reason, reason
    finally:
        os.close(ours)


class _Unleased(Syscalls):
    """The real calls, except that the kernel's lease cannot be asked about `names` (as on a
    file system without leases): `alone` says None for the fds open on them."""

    def __init__(self, lockdir: Path, names: set[str], before_only: bool = False) -> None:
        self.lockdir, self.names = lockdir, names
        self.before_only = before_only  # only while the file is linked (before the unlink)
        self.table_reads = 0

    def alone(self, fd: int, keep: bool = False) -> bool | None:
        shown = os.readlink(f"/proc/self/fd/{fd}")
        linked = shown.removesuffix(" (deleted)")
        if self.before_only and linked != shown:
            return super().alone(fd, keep)
        if os.path.basename(linked) in self.names:
            return None
        return super().alone(fd, keep)

    def read(self, path: str) -> bytes:
        self.table_reads += path.endswith("/locks")
        return super().read(path)


@pytest.mark.parametrize(
    ("unleased", "before_only"),
    [(set(), False), ({"uv-0000000000000007.lock"}, False), ({"uv-0000000000000007.lock"}, True)],
    ids=["all-leased", "one-never", "one-before-the-unlink"],
)
def test_one_fd_walk_per_batch(
    lockdir: Path, monkeypatch: pytest.MonkeyPatch, unleased: set[str], before_only: bool
) -> None:
    """Each batch is walked once before the unlink; the lock table is read only for a batch
    with a file the kernel's lease, taken before the unlink, did not clear. After it, only
    those files are looked at again (the lock table and the walk): here every file but one on
    a file system that cannot say, or where the lease can be asked after the unlink only (its
    lease granted then, the file is not looked for again)."""
    import uvsweep.remove.posix as posix

    for index in range(300):
        touch(lockdir, f"uv-{index:016x}.lock")
    walks: list[int] = []
    real = posix.walk_fds

    def counting(*args: object, **kwargs: object) -> object:
        walks.append(len(args[3]))  # type: ignore[arg-type]
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(posix, "walk_fds", counting)
    calls = _Unleased(lockdir, unleased, before_only)
    said: list[str] = []
    remover = LinuxRemover(calls=calls, progress=said.append)
    remover.batch_size = 200
    result = remover.remove([str(lockdir)], Policy())
    assert len(result.removed) == 300
    assert result.skipped == [] and said == []  # nobody used any: no handoff, not even begun
    # two batches (200 + 100): the one file the lease cannot clear, in the first, is walked again
    assert walks == ([200, 1, 100] if unleased and not before_only else [200, 100])
    # the lock table only for a batch with a file the lease cannot clear: before its unlink and
    # after it (a non-root cleaner reads it twice a time)
    per_read = 1 if remover.euid == 0 else 2
    assert calls.table_reads == per_read * (0 if not unleased else 1 if before_only else 2)


class _Ordered(Syscalls):
    """The real calls, recording the order of the lock table's reads and the unlinks. Seams:
    `hide`, pids the `/proc` listing leaves out (processes a walk cannot see: another user's,
    another PID namespace's); `before_lease`, called once, before the batch's leases are asked
    (the files are locked then)."""

    def __init__(
        self, hide: set[str] | None = None, before_lease: Callable[[], None] | None = None
    ) -> None:
        self.events: list[str] = []
        self.hide = hide if hide is not None else set()
        self.before_lease = before_lease

    def read(self, path: str) -> bytes:
        if path.endswith("/locks"):
            self.events.append("table")
        return super().read(path)

    def unlink(self, name: str, dir_fd: int) -> None:
        self.events.append("unlink")
        super().unlink(name, dir_fd)

    def list_dir(self, where: int | str) -> list[str]:
        found = super().list_dir(where)
        return [entry for entry in found if entry not in self.hide] if where == "/proc" else found

    def alone_all(self, fds: Sequence[int], keep: bool = False) -> list[bool | None]:
        before, self.before_lease = self.before_lease, None
        if before is not None:
            before()
        return super().alone_all(fds, keep)

    def before_unlink(self) -> list[str]:
        """What happened before the first unlink."""
        events = self.events
        return events[: events.index("unlink")] if "unlink" in events else events


def test_a_batch_whose_leases_are_all_granted_reads_no_lock_table(lockdir: Path) -> None:
    """Every file of the batch has its write lease granted (nobody else has any of them open:
    no holder, no waiter, no opener), so the lock table, and its wait for the kernel, is not
    read before the unlink, nor after it."""
    paths = [touch(lockdir, f"uv-{i:016x}.lock") for i in range(20)]
    calls = _Ordered()
    result = LinuxRemover(calls=calls).remove([str(lockdir)], Policy())
    assert sorted(result.removed) == sorted(map(str, paths))
    assert calls.before_unlink() == []
    assert "table" not in calls.events


def test_a_reader_open_before_the_clean_refuses_the_lease_and_is_seen(lockdir: Path) -> None:
    """A process that has the file open before the clean: the lease is refused for it, so the
    batch reads the lock table and walks the fds before its unlink; the walk names the reader
    and the file stays. The other file of the batch goes."""
    reader_file, other = touch(lockdir, A), touch(lockdir, B)
    calls = _Ordered()
    with child_with_file(reader_file, write=False) as reader:
        result = LinuxRemover(calls=calls).remove([str(lockdir)], Policy())
        assert result.removed == [str(other)]
        assert [(s.path, s.state) for s in result.skipped] == [(str(reader_file), LockState.OPEN)]
        assert f"pid {reader.pid}" in result.skipped[0].reason
    assert reader_file.exists()
    assert "table" in calls.before_unlink()


def test_a_waiter_the_walk_cannot_see_is_found_in_the_table_before_the_unlink(
    lockdir: Path,
) -> None:
    """A uv that opened the file and waits in flock behind our lock, in a process the walk
    cannot see: its open refuses the lease, so the lock table is read for the batch, before
    the unlink, and shows it waiting. The file stays at the name, untouched (no unlink, no
    handoff); the other file of the batch goes."""
    waited, other = touch(lockdir, A), touch(lockdir, B)
    ino = waited.stat().st_ino
    waiter: list[subprocess.Popen[str]] = []

    def start_waiter() -> None:
        code = (
            "import fcntl, os, sys, time\nfd = os.open(sys.argv[1], os.O_RDWR)\n"
            "print('opened', flush=True)\nfcntl.flock(fd, fcntl.LOCK_EX)\ntime.sleep(60)\n"
        )
        child = procs.popen(
            [sys.executable, "-c", code, str(waited)], stdout=subprocess.PIPE, text=True,
            lasting=True,
        )  # fmt: skip
        waiter.append(child)
        calls.hide.add(str(child.pid))
        assert child.stdout is not None and child.stdout.readline().strip() == "opened"
        wait_for("the waiter in /proc/locks", lambda: _waits_in_table(ino))

    calls = _Ordered(before_lease=start_waiter)
    try:
        result = LinuxRemover(calls=calls).remove([str(lockdir)], Policy())
    finally:
        for child in waiter:
            procs.stop(child, grace=0)
    assert waiter, "the waiter started"
    assert result.removed == [str(other)]
    assert result.handoffs == 0
    assert [(s.path, s.state) for s in result.skipped] == [(str(waited), LockState.WAITING)]
    assert waited.exists() and waited.stat().st_ino == ino
    assert "table" in calls.before_unlink()


def test_a_file_another_cleaner_holds_the_lease_of_is_skipped_as_held(lockdir: Path) -> None:
    """Another cleaner removing a file holds its write lease (taken before its unlink): our
    open of it fails with EWOULDBLOCK (and breaks that lease, which that cleaner then sees).
    The file is kept as held by another process, with no error; the rest of the batch goes."""
    from uvsweep.probe.posix import OPEN_FLAGS, SYSCALLS
    from uvsweep.remove.posix import LEASED_BY_OTHER

    leased, other = touch(lockdir, A), touch(lockdir, B)
    fd = os.open(leased, OPEN_FLAGS)
    try:
        assert SYSCALLS.alone(fd, keep=True) is True  # kept, as a cleaner keeps it
        result = LinuxRemover().remove([str(lockdir)], Policy())
        assert SYSCALLS.lease_broken(fd)  # our open broke it: that cleaner keeps its file
    finally:
        os.close(fd)
    assert result.removed == [str(other)]
    assert [(s.path, s.state, s.reason) for s in result.skipped] == [
        (str(leased), LockState.HELD, LEASED_BY_OTHER)
    ]
    assert result.errors == []
    assert leased.exists()


def _waits_in_table(ino: int) -> bool:
    """Whether `/proc/locks` shows a waiter (`->`) on inode `ino`."""
    with open("/proc/locks") as handle:
        return any("->" in line and line.split()[-3].endswith(f":{ino}") for line in handle)


def test_ctrl_c_waits_until_the_batch_is_released(lockdir: Path) -> None:
    paths = [touch(lockdir, f"uv-{i:016x}.lock") for i in range(5)]

    def interrupt(name: str) -> None:
        if name.endswith("1.lock"):
            os.kill(os.getpid(), signal.SIGINT)

    remover = _Swapping(interrupt)
    with pytest.raises(KeyboardInterrupt):
        remover.remove([str(lockdir)], Policy())
    assert not any(p.exists() for p in paths), "the batch in hand is finished first"
    fds = os.listdir("/proc/self/fd")
    assert not any(os.readlink(f"/proc/self/fd/{fd}").startswith(str(lockdir)) for fd in fds
                   if os.path.exists(f"/proc/self/fd/{fd}"))  # fmt: skip


# ---- handoff repair ---------------------------------------------------------------------------

_LATE_OPENER = textwrap.dedent(
    """
    import fcntl, os, sys, time
    fd = os.open(sys.argv[1], os.O_RDWR)   # opened before the unlink, as uv might be
    print("opened", flush=True)
    fcntl.flock(fd, fcntl.LOCK_EX)         # blocks while the sweeper holds the old file
    print("locked", flush=True)
    sys.stdin.readline()                   # hold it until told
    os.close(fd)
    print("released", flush=True)
    time.sleep(30)
    """
)


@contextmanager
def cleaning_in_background(lockdir: Path, remover: _LateOpener) -> Iterator[list[CleanResult]]:
    """Run `remover` on `lockdir` in a thread; yields the list its result lands in. At the end
    the late opener is killed and the thread joined."""
    done: list[CleanResult] = []
    thread = threading.Thread(target=lambda: done.append(clean(lockdir, remover)))
    thread.start()
    try:
        yield done
        thread.join(10)
        assert not thread.is_alive()
    finally:
        child = remover.child
        if child is not None:
            child.kill()
            child.wait()
            for stream in (child.stdin, child.stdout):
                if stream:
                    stream.close()
        thread.join(10)


class _LateOpener(LinuxRemover):
    """Starts a uv-like process that opens the file just before our unlink (the race)."""

    def __init__(self) -> None:
        super().__init__()
        self.child: subprocess.Popen[str] | None = None

    def unlink(self, target: Target) -> None:
        # as where no lease could be taken before the unlink: the child's open, made now, goes
        # on at once (one waiting on the lease is tests/redteam/test_lease_before_unlink.py's)
        no_lease_before_the_unlink(self, target)
        child = subprocess.Popen(
            [sys.executable, "-c", _LATE_OPENER, target.path],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "opened"
        self.child = child  # only now: the test reads its output from here on
        super().unlink(target)


def test_handoff_keeps_both_generations_mutually_exclusive(lockdir: Path) -> None:
    path = touch(lockdir, A)
    old_ino = path.stat().st_ino
    remover = _LateOpener()
    with cleaning_in_background(lockdir, remover) as done:
        while remover.child is None:
            time.sleep(0.01)
        child = remover.child
        assert child.stdout is not None and child.stdin is not None
        # the late opener gets the old file's lock once we let go of it...
        assert child.stdout.readline().strip() == "locked"
        # ...and meanwhile the name is a new file that we hold: a new uv would wait
        assert path.exists() and path.stat().st_ino != old_ino
        assert flock_held(path), "the new generation must be locked while the old one is in use"
        time.sleep(0.3)
        assert not done, "the sweeper keeps the new lock until the old one is let go"
        child.stdin.write("\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "released"
    result = done[0]
    assert result.removed == [] and result.handoffs == 1
    state, reason = skipped(result)[A]
    assert state is LockState.HELD and "handed over" in reason
    assert path.exists() and not flock_held(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666, "anybody's uv can lock the new file"


def test_read_only_file_system(tmp_path: Path) -> None:
    from tests.conftest import need

    works = shutil.which("unshare") is not None and subprocess.run(
        ["unshare", "-rm", "true"], capture_output=True, check=False
    ).returncode == 0  # fmt: skip
    need(works, "unshare (util-linux) with user namespaces is needed to mount a read-only tmpfs")
    mount = tmp_path / "ro"
    mount.mkdir()
    app = Path(__file__).resolve().parents[2] / "app"
    script = (
        f"mount -t tmpfs tmpfs {mount} && touch {mount}/{A} && mount -o remount,ro {mount} && "
        f"PYTHONPATH={app} {sys.executable} -m uvsweep clean --dir {mount} --json"
        " --ignore-running-uv; "
        f"echo rc=$?; ls {mount}"
    )
    out = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True,
                         check=False, timeout=60)  # fmt: skip
    import json

    document = json.loads(out.stdout[: out.stdout.rindex("}") + 1])
    assert document["removed"] == []
    assert document["errors"] == [{"path": f"{mount}/{A}", "message": "Read-only file system"}]
    assert "rc=4" in out.stdout and out.stdout.rstrip().endswith(A)
    assert "Read-only file system" in out.stderr


class _LateOpenerAndNewUv(_LateOpener):
    """As `_LateOpener`, and right after the unlink a new uv creates and locks a fresh file."""

    def __init__(self, hold: type[Holder]) -> None:
        super().__init__()
        self.hold = hold
        self.new_uv: Holder | None = None

    def unlink(self, target: Target) -> None:
        super().unlink(target)
        Path(target.path).touch()
        self.new_uv = self.hold(Path(target.path))


def test_handoff_waits_for_a_new_generation_someone_else_holds(
    lockdir: Path, hold: type[Holder]
) -> None:
    import select

    path = touch(lockdir, A)
    remover = _LateOpenerAndNewUv(hold)
    with cleaning_in_background(lockdir, remover) as done:
        while remover.new_uv is None:
            time.sleep(0.01)
        child = remover.child
        assert child is not None and child.stdout is not None and child.stdin is not None
        # the new uv holds the new file: the late opener must not get the old one meanwhile
        ready, _, _ = select.select([child.stdout], [], [], 0.5)
        assert not ready, "two generations locked at once"
        remover.new_uv.stop()
        assert child.stdout.readline().strip() == "locked"  # now its turn, and the name is ours
        assert flock_held(path)
        child.stdin.write("\n")
        child.stdin.flush()
    assert done[0].handoffs == 1 and done[0].removed == []
    assert path.exists() and not flock_held(path)


def test_unreadable_lock_table_is_said_and_the_fd_walk_still_protects(
    lockdir: Path, tmp_path: Path
) -> None:
    orphan = touch(lockdir, A)
    opened = touch(lockdir, B)
    with child_with_file(opened) as opener:
        # a /proc whose `locks` cannot be read (as under some hardening), but whose processes can
        fake_proc = tmp_path / "proc"
        fake_proc.mkdir()
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                (fake_proc / entry).symlink_to(f"/proc/{entry}")
        (fake_proc / "locks").mkdir()  # reading it fails with EISDIR
        result = LinuxRemover(proc=str(fake_proc)).remove([str(lockdir)], Policy())
    assert result.removed == [str(orphan)]
    assert opened.exists()
    assert [(s.state, f"pid {opener.pid} " in s.reason) for s in result.skipped] == [
        (LockState.OPEN, True)
    ]
    assert any("locks is unreadable" in note for note in result.notes)
