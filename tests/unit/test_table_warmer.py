"""The lock table kept warm during a removal (`probe.linux.TableWarmer`): it reads a byte of
`/proc/locks` every `EVERY` files, the first time on a thread, never decides anything, and
leaves no fd or thread behind. How much time it saves is measured in `benchmarks/clean_bench.py`,
not here."""

from __future__ import annotations

import os
import sys
import textwrap
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import child_with_file, need
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


def _recorded(out_of_fds_at: str = "") -> tuple[Any, list[TableWarmer | None], list[int]]:
    """A `LinuxRemover` with the warmers it made and a count of its reads of the lock table;
    its `acquire` of the name `out_of_fds_at` fails with EMFILE."""
    import errno

    from uvsweep.remove import posix

    made: list[TableWarmer | None] = []
    reads: list[int] = []

    class Recorded(posix.LinuxRemover):
        def warm_table(self) -> TableWarmer | None:
            made.append(super().warm_table())
            return made[-1]

        def _read_table(self, holding: Iterable[tuple[int, int]] = ()) -> Any:
            reads.append(1)
            return super()._read_table(holding)

        def acquire(self, dir_handle: int, directory: str, name: str, *rest: Any) -> Any:
            if name == out_of_fds_at:
                raise OSError(errno.EMFILE, "Too many open files")
            return super().acquire(dir_handle, directory, name, *rest)

    return Recorded(), made, reads


def test_a_removal_that_never_reads_the_table_never_warms_it(tmp_path: Path) -> None:
    """Orphans nobody has open, cleaned by root: every lease is granted, no table is read, and
    no warmer runs (it would be only its cost: `clean_bench.py`). A cleaner that is not root
    reads the table in every batch (`blind_spot`: to know it can), and warms it."""
    need(os.geteuid() == 0, "a cleaner that reads no table is root's (run the suite as root)")
    _files(tmp_path / "d", 600)
    before = _our_fds()
    remover, made, reads = _recorded()
    remover.batch_size = 200
    result = remover.remove([str(tmp_path / "d")], Policy())
    assert len(result.removed) == 600 and not result.skipped and not result.errors
    assert reads == [] and made == []
    assert _our_fds() == before and not _warm_threads()


def test_a_removal_warms_the_table_after_its_first_read_and_leaves_nothing_behind(
    tmp_path: Path,
) -> None:
    """A batch with a file somebody has open reads the table (its lease is refused): from the
    next batch on the table is kept warm, and a later read is made on the removal's own
    thread, not beside the fd walk."""
    from uvsweep.remove import posix

    _files(tmp_path / "d", 600)
    names = sorted(p.name for p in (tmp_path / "d").iterdir())
    beside: list[object] = []
    real_beside = posix.Beside

    def counted(*args: object) -> object:
        beside.append(args)
        return real_beside(*args)

    remover, made, reads = _recorded()
    remover.batch_size = 200
    first, third = tmp_path / "d" / names[0], tmp_path / "d" / names[450]
    with child_with_file(first, lock=False), child_with_file(third, lock=False):
        before = _our_fds()
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(posix, "Beside", counted)  # the table's reader beside the fd walk
            result = remover.remove([str(tmp_path / "d")], Policy())
        after = _our_fds()
    assert len(result.removed) == 598 and not result.errors
    assert sorted(s.path for s in result.skipped) == [str(first), str(third)]
    assert len(reads) >= 2  # the first batch's and the third's
    (warmer,) = made  # started once, at the second batch
    assert warmer is not None
    # told of the second batch's 200 opens and 200 unlinks and the third's 200 names and 199
    # unlinks; started at the first, then it read every EVERY-th once the first read was over
    assert warmer.ticks == 799
    assert 2 <= warmer.reads <= 1 + (799 - 1) // TableWarmer.EVERY
    # the first batch's read went beside the walk; the third's, with the table warm, did not
    assert len(beside) == 1
    assert warmer.fd == -1 and remover._warmer is None
    assert after == before and not _warm_threads()


def test_a_removal_that_fails_while_the_table_is_warm_leaves_nothing_behind(
    tmp_path: Path,
) -> None:
    """Out of fds in the third batch, with the warmer started in the second: the removal stops
    with its error, and its warmer's fd and thread are gone with it."""
    _files(tmp_path / "d", 600)
    names = sorted(p.name for p in (tmp_path / "d").iterdir())
    remover, made, _reads = _recorded(out_of_fds_at=names[450])
    remover.batch_size = 200
    with child_with_file(tmp_path / "d" / names[0], lock=False):
        before = _our_fds()
        with pytest.raises(OSError, match="Too many open files"):
            remover.remove([str(tmp_path / "d")], Policy())
        after = _our_fds()
    (warmer,) = made
    assert warmer is not None and warmer.reads >= 1  # it ran
    assert warmer.fd == -1 and remover._warmer is None
    assert after == before and not _warm_threads()


def test_a_removal_after_one_that_read_the_table_starts_cold(tmp_path: Path) -> None:
    """One remover, two removals: the first one's read of the table does not make the second,
    of orphans only, keep it warm."""
    need(os.geteuid() == 0, "a cleaner that reads no table is root's (run the suite as root)")
    _files(tmp_path / "a", 3)
    _files(tmp_path / "b", 300)
    remover, made, reads = _recorded()
    opened = tmp_path / "a" / "uv-0000000000000000.lock"
    with child_with_file(opened, lock=False):
        first = remover.remove([str(tmp_path / "a")], Policy())
    assert [s.path for s in first.skipped] == [str(opened)] and reads and made == []
    second = remover.remove([str(tmp_path / "b")], Policy())
    assert len(second.removed) == 300 and made == []


def test_an_empty_removal_never_starts_it(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "not-a-lock").touch()
    remover, made, _reads = _recorded()
    remover.remove([str(tmp_path / "d")], Policy())
    assert made == []


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


def test_a_removal_grows_the_fd_table_before_its_first_open(tmp_path: Path) -> None:
    """In a fresh process with a second thread (the tray's removals run beside others), the fd
    table is grown to the batch at once, before the first file is opened, not doubled as the
    files are opened (each doubling waits for an RCU grace period while a thread shares it)."""
    import subprocess

    _files(tmp_path / "d", 1500)
    code = textwrap.dedent(
        """
        import os, sys, threading
        from uvsweep.remove import Policy
        from uvsweep.remove.posix import LinuxRemover

        def size():
            for line in open("/proc/self/status"):
                if line.startswith("FDSize:"):
                    return int(line.split()[1])

        stop = threading.Event()
        beside = threading.Thread(target=stop.wait)  # shares the fd table
        beside.start()
        seen = []

        class Watched(LinuxRemover):
            def acquire(self, *args):
                if not seen:
                    seen.append(size())
                return super().acquire(*args)

        before, fds = size(), set(os.listdir("/proc/self/fd"))
        result = Watched().remove([sys.argv[1]], Policy())
        stop.set()
        beside.join()
        print(before, seen[0], len(result.removed), set(os.listdir("/proc/self/fd")) == fds)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "d")],
        capture_output=True, text=True, check=True, timeout=60,
    ).stdout.split()  # fmt: skip
    before, at_first_open, removed, same_fds = int(out[0]), int(out[1]), int(out[2]), out[3]
    assert before < 1500 <= at_first_open and removed == 1500 and same_fds == "True"
