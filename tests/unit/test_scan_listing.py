"""How a scan lists a dir: small dirs in one call, big ones as a stream of bounded memory."""

from __future__ import annotations

import os
import sys
import tracemalloc
from pathlib import Path

import pytest

from uvsweep import scanner
from uvsweep.model import LockState
from uvsweep.probe import posix

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="dir fds")

LOCKS = [f"uv-{i:016x}.lock" for i in range(5)]


def fill(directory: Path, others: int) -> None:
    for name in LOCKS:
        (directory / name).touch()
    for i in range(others):
        os.close(os.open(directory / f"some-other-file-of-a-long-name-{i:06d}.tmp", os.O_CREAT))
    (directory / "uv-not-a-lock").touch()


def names(directory: Path) -> list[str]:
    fd = os.open(directory, posix.DIR_FLAGS)
    try:
        return sorted(posix.uv_names(fd))
    finally:
        os.close(fd)


@pytest.mark.parametrize("at_once", [0, 1 << 40], ids=["streamed", "listed at once"])
def test_both_ways_give_the_uv_names(
    lockdir: Path, monkeypatch: pytest.MonkeyPatch, at_once: int
) -> None:
    fill(lockdir, 300)
    monkeypatch.setattr(posix, "LIST_AT_ONCE", at_once)
    assert names(lockdir) == [*LOCKS, "uv-not-a-lock"]


def test_a_big_dir_is_scanned_in_memory_for_its_lock_files_only(
    lockdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from uvsweep import probe

    fill(lockdir, 20_000)
    monkeypatch.setattr(posix, "LIST_AT_ONCE", 0)  # as a dir of a million entries is
    backend = probe.for_platform()
    # the lock table's size is other processes' doing (tens of kB while a test elsewhere holds
    # a thousand locks): only the listing is measured here
    monkeypatch.setattr(backend, "load_lock_table", lambda _result: None)
    tracemalloc.start()
    try:
        snapshot = scanner.scan([str(lockdir)], backend=backend, label=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert [Path(f.path).name for f in snapshot.files] == LOCKS
    assert all(f.state is LockState.ORPHANED for f in snapshot.files)
    # the 20,000 names held at once would be well over a megabyte (about 90 bytes each)
    assert peak < 500_000, f"peak {peak} bytes: the names were held at once"


def test_a_dir_whose_size_says_nothing_is_streamed(
    lockdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(lockdir, 10)
    listed: list[object] = []
    real = os.listdir

    def listdir(path: object = ".") -> list[str]:
        listed.append(path)
        return real(path)  # type: ignore[arg-type]

    class Stat:
        st_size = 0  # what some file systems report for a dir

    monkeypatch.setattr(posix.os, "listdir", listdir)
    monkeypatch.setattr(posix.os, "fstat", lambda _fd: Stat())
    assert names(lockdir) == [*LOCKS, "uv-not-a-lock"]
    assert listed == []


def test_the_lock_table_is_read_while_the_dirs_are_listed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    from collections.abc import Iterator

    from uvsweep import probe
    from uvsweep.processes import ProcessTable

    fill(tmp_path, 0)
    backend = probe.for_platform(processes=ProcessTable())
    load = backend.load_lock_table
    threads: list[threading.Thread] = []

    def record_thread(result: probe.ProbeResult) -> None:
        threads.append(threading.current_thread())
        load(result)

    monkeypatch.setattr(backend, "load_lock_table", record_thread)
    backend.probe([str(tmp_path)])
    assert threads == [threading.current_thread()], "a small dir: read first, on this thread"

    monkeypatch.setattr(posix, "LIST_BESIDE", 0)  # as a dir of 2,000 entries or more is
    listing = threading.Event()
    real = posix.uv_names

    def uv_names(dir_fd: int) -> Iterator[str]:
        listing.set()
        yield from real(dir_fd)

    monkeypatch.setattr(posix, "uv_names", uv_names)

    def read_after_the_listing_began(result: probe.ProbeResult) -> None:
        assert listing.wait(10), "the listing waited for the lock table"
        load(result)

    monkeypatch.setattr(backend, "load_lock_table", read_after_the_listing_began)
    found = backend.probe([str(tmp_path)])
    assert sorted(f.name for f in found.files) == LOCKS

    def broken(_result: probe.ProbeResult) -> None:
        raise RuntimeError("the lock table reader broke")

    monkeypatch.setattr(backend, "load_lock_table", broken)
    with pytest.raises(RuntimeError, match="reader broke"):  # on the caller's thread, as before
        backend.probe([str(tmp_path)])
