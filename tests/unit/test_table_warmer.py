"""The lock table kept warm during a removal (`probe.linux.TableWarmer`): it reads a byte of
`/proc/locks` every `EVERY` files, the first time on a thread, never decides anything, and
leaves no fd or thread behind. How much time it saves is measured in `benchmarks/clean_bench.py`,
not here."""

from __future__ import annotations

import os
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from uvsweep.model import CleanResult
from uvsweep.probe.linux import TableWarmer
from uvsweep.remove import Policy

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="/proc/locks is Linux's")


def _our_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def _warm_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "uvsweep-beside" and t.is_alive()]


def test_it_reads_the_table_every_EVERY_files_the_first_time_on_a_thread() -> None:
    before = _our_fds()
    warmer = TableWarmer()
    warmer.tick()  # the first file starts it: one read on a thread
    assert os.readlink(f"/proc/self/fd/{warmer.fd}") == "/proc/locks"
    assert warmer._first is not None
    warmer._first.wait()
    assert warmer.reads == 1
    for _ in range(TableWarmer.EVERY - 1):
        warmer.tick()
    assert warmer.reads == 1  # not yet
    warmer.tick()
    assert warmer.reads == 2  # on this thread, at once
    for _ in range(3 * TableWarmer.EVERY):
        warmer.tick()
    assert warmer.reads == 5
    warmer.stop()
    warmer.stop()  # idempotent
    assert _our_fds() == before and not _warm_threads()
    for _ in range(2 * TableWarmer.EVERY):
        warmer.tick()  # stopped for good: nothing is opened again
    assert warmer.reads == 5 and _our_fds() == before


def test_a_table_that_cannot_be_opened_or_read_stops_it_quietly(tmp_path: Path) -> None:
    before = _our_fds()
    missing = TableWarmer(str(tmp_path / "locks"))
    for _ in range(3 * TableWarmer.EVERY):
        missing.tick()
    assert missing.reads == 0 and missing.fd == -1
    unreadable = TableWarmer(str(tmp_path))  # a dir opens, and its read fails (EISDIR)
    unreadable.tick()
    assert unreadable._first is not None
    unreadable._first.wait()
    assert unreadable.fd == -1  # closed by the failed read
    for _ in range(3 * TableWarmer.EVERY):
        unreadable.tick()
    assert unreadable.reads == 0
    missing.stop()
    unreadable.stop()
    assert _our_fds() == before and not _warm_threads()


def _files(directory: Path, count: int) -> None:
    directory.mkdir()
    for index in range(count):
        (directory / f"uv-{index:016x}.lock").touch()


def test_a_removal_keeps_the_table_warm_and_leaves_nothing_behind(tmp_path: Path) -> None:
    from uvsweep.remove import posix

    made: list[TableWarmer] = []

    class Recorded(posix.LinuxRemover):
        def warm_table(self) -> TableWarmer | None:
            warmer = super().warm_table()
            assert warmer is not None  # real calls, fds to spare
            made.append(warmer)
            return warmer

    beside: list[object] = []
    real_beside = posix.Beside

    def counted(*args: object) -> object:
        beside.append(args)
        return real_beside(*args)

    _files(tmp_path / "d", 600)
    before = _our_fds()
    remover = Recorded()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(posix, "Beside", counted)  # the table's reader beside the fd walk
        result = remover.remove([str(tmp_path / "d")], Policy())
    assert len(result.removed) == 600 and not result.skipped and not result.errors
    (warmer,) = made
    # told of 600 opens and 600 unlinks; started at the first, then it read every EVERY-th
    # once the first read was over (it may wait for a grace period meanwhile)
    assert warmer.ticks == 1200
    assert 2 <= warmer.reads <= 1 + (1200 - 1) // TableWarmer.EVERY
    # with the table warm, the removal reads it on its own thread
    assert beside == []
    assert warmer.fd == -1 and remover._warmer is None
    assert _our_fds() == before and not _warm_threads()


def test_an_empty_removal_never_starts_it(tmp_path: Path) -> None:
    from uvsweep.remove.posix import LinuxRemover

    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "not-a-lock").touch()
    remover = LinuxRemover()
    made: list[TableWarmer | None] = []
    real = remover.warm_table
    remover.warm_table = lambda: made.append(real()) or made[-1]  # type: ignore[method-assign]
    remover.remove([str(tmp_path / "d")], Policy())
    (warmer,) = made
    assert warmer is not None and warmer.reads == 0 and warmer._first is None


def test_none_without_fds_to_spare_or_beside_simulated_calls() -> None:
    from uvsweep.probe.posix import Syscalls
    from uvsweep.remove.posix import FD_RESERVE, LinuxRemover

    class OneAtATime(Syscalls):
        concurrent = False  # as the interleaving search's kernel

    assert LinuxRemover(calls=OneAtATime()).warm_table() is None
    remover = LinuxRemover()
    assert remover.warm_table() is not None
    remover.fd_limit = 2 * remover.batch_size + FD_RESERVE + 7  # 7 fds to spare: not 8
    assert remover.warm_table() is None
    remover.fd_limit += 1
    assert remover.warm_table() is not None


def test_it_is_stopped_before_a_handoff_can_fork_a_keeper() -> None:
    from uvsweep.remove.posix import LinuxRemover

    remover = LinuxRemover()
    warmer = remover._warmer = TableWarmer()
    warmer.tick()
    assert _warm_threads() or warmer.reads == 1  # started
    remover.undo_all([], CleanResult([]))
    assert remover._warmer is None and warmer.fd == -1 and not _warm_threads()


def test_its_fd_may_be_0_and_is_used_and_closed_there() -> None:
    """A cleaner started with stdin closed opens the table as fd 0 (mutation run 5c: `fd > 0`
    in `tick` or `_close` read nothing, or left fd 0 open)."""
    saved = os.dup(0)
    try:
        os.close(0)
        warmer = TableWarmer()
        warmer.tick()
        assert warmer.fd == 0
        assert warmer._first is not None
        warmer._first.wait()
        for _ in range(TableWarmer.EVERY):
            warmer.tick()
        assert warmer.reads == 2
        warmer.stop()
        with pytest.raises(OSError):
            os.fstat(0)  # closed
    finally:
        os.dup2(saved, 0)
        os.close(saved)


def test_one_that_could_not_start_never_starts_later(tmp_path: Path) -> None:
    table = tmp_path / "locks"
    warmer = TableWarmer(str(table))
    warmer.tick()  # nothing to open yet
    table.write_text("1: FLOCK  ADVISORY  WRITE 1 00:2d:1 0 EOF\n")
    for _ in range(3 * TableWarmer.EVERY):
        warmer.tick()
    assert warmer.reads == 0 and warmer.fd == -1 and warmer._first is None


def test_the_removals_thread_never_reads_while_the_first_read_waits(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The first read may wait for a grace period on its thread: the removal's own reads start
    only once it is over (one fd, read by one thread at a time)."""
    release = threading.Event()
    real_read = os.read

    def read(fd: int, size: int) -> bytes:
        if threading.current_thread().name == "uvsweep-beside":
            release.wait(10)  # as a grace period that lasts
        return real_read(fd, size)

    monkeypatch.setattr(os, "read", read)
    warmer = TableWarmer()
    warmer.tick()
    for _ in range(2 * TableWarmer.EVERY):
        warmer.tick()
    assert warmer.reads == 0  # the first is still waiting, and nobody else read
    release.set()
    assert warmer._first is not None
    warmer._first.wait()
    assert warmer.reads == 1
    warmer.tick()
    warmer.stop()


def test_it_grows_the_fd_table_once_before_its_thread_starts() -> None:
    """A table shared with a second thread waits for an RCU grace period at each doubling
    (`expand_fdtable`): the warmer grows it to the removal's size first, in a fresh process
    (FDSize in /proc/self/status: the table's size), and leaves no fd there."""
    import subprocess

    code = textwrap.dedent(
        """
        import os
        from uvsweep.probe.linux import TableWarmer

        def size():
            for line in open("/proc/self/status"):
                if line.startswith("FDSize:"):
                    return int(line.split()[1])

        before, fds = size(), set(os.listdir("/proc/self/fd"))
        warmer = TableWarmer(room=3000)
        warmer.tick()
        warmer.stop()
        print(before, size(), set(os.listdir("/proc/self/fd")) == fds)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split()
    before, after, same_fds = int(out[0]), int(out[1]), out[2]
    assert before < 3000 <= after and same_fds == "True"
