"""Small parts of the removal protocol that mutation testing showed untested (tests/MUTATION.md):
our own lock lines (the device a file is printed with) and the batch size."""

from __future__ import annotations

from pathlib import Path

import pytest

from uvsweep.probe.linux import parse_lock_table
from uvsweep.remove.posix import batch_size_for


def test_our_own_lock_lines_give_their_device_in_hex() -> None:
    text = (
        "5: FLOCK  ADVISORY  WRITE 4242 00:2d 0 EOF\n"  # unreadable: the lines after it count
        "1: FLOCK  ADVISORY  WRITE 4242 00:2d:123 0 EOF\n"  # ours, on a tmpfs (0:45)
        "2: FLOCK  ADVISORY  WRITE 4242 fe:1f:124 0 EOF\n"  # ours, 254:31
        "3: -> FLOCK  ADVISORY  WRITE 4242 00:2d:125 0 EOF\n"  # we wait: not a lock we hold
        "4: FLOCK  ADVISORY  WRITE 77 00:2d:123 0 EOF\n"  # somebody else's
    )
    table = parse_lock_table(text, 4242)
    assert table.own == {123: {(0, 0x2D)}, 124: {(0xFE, 0x1F)}}
    assert [(e.pid, e.waiting) for e in table.others[123]] == [(77, False)]
    assert [(e.pid, e.waiting) for e in table.others[125]] == [(4242, True)]
    assert set(table.others) == {123, 125}


def test_a_batch_leaves_room_and_is_capped() -> None:
    # two fds per file at most (the file and, in a handoff, its next generation), 24 spare
    assert batch_size_for(1024) == 500 and batch_size_for(1025) == 500
    assert batch_size_for(1024, in_use=100) == 450
    assert batch_size_for(2072) == 1024 and batch_size_for(4120) == 2048
    assert batch_size_for(1_000_000) == 2048  # /proc/locks costs O(lines^2) to read
    assert batch_size_for(25) == 1 and batch_size_for(0) == 1


def test_a_line_that_cannot_be_read_is_skipped_and_the_rest_read() -> None:
    from uvsweep.probe.linux import parse_locks

    text = (
        "1: FLOCK  ADVISORY  WRITE notapid 00:2d:1 0 EOF\n"
        "2: FLOCK  ADVISORY  WRITE 5 00:2d:2 0 EOF\n"
        "3: FLOCK  ADVISORY  WRITE 6 00:2d 0 EOF\n"
        "garbage\n"
        "4: -> FLOCK  ADVISORY  WRITE 7 00:2d:2 0 EOF\n"
    )
    assert [(e.pid, e.waiting) for e in parse_locks(text)[2]] == [(5, False), (7, True)]


def test_the_removers_lock_table_skips_a_line_it_cannot_read_and_reads_the_rest() -> None:
    """Kills `parse_lock_table`'s `continue` after a short line -> `break` (run 4): a line too
    short to read must not hide the waiters printed after it (the remover reads this table
    while it holds the files)."""
    text = (
        "1: FLOCK  ADVISORY  WRITE notapid 00:2d:1 0 EOF\n"
        "2: FLOCK  ADVISORY  WRITE 5 00:2d:2 0 EOF\n"
        "garbage\n"
        "3: FLOCK  ADVISORY  WRITE 6 00:2d 0 EOF\n"
        "4: -> FLOCK  ADVISORY  WRITE 7 00:2d:2 0 EOF\n"
    )
    table = parse_lock_table(text, 4242)
    assert [(e.pid, e.waiting) for e in table.others[2]] == [(5, False), (7, True)]


def _fd_limit_raised_to(soft: int, hard: int) -> tuple[int, int]:
    """(what raise_fd_limit returns, the soft limit after it) in a child started at soft/hard."""
    import os
    import resource
    import subprocess
    import sys

    from tests.conftest import APP_DIR

    code = (
        "import resource; from uvsweep.remove.posix import raise_fd_limit;"
        " print(raise_fd_limit(), resource.getrlimit(resource.RLIMIT_NOFILE)[0])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True,
        env={**os.environ, "PYTHONPATH": APP_DIR},
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard)),
    )  # fmt: skip
    got, now = done.stdout.split()
    return int(got), int(now)


def test_the_fd_limit_is_raised_towards_8192_never_past_the_hard_limit_never_lowered() -> None:
    import resource

    from tests.conftest import need

    need(
        resource.getrlimit(resource.RLIMIT_NOFILE)[1] >= 9000,
        "a hard open-file limit of 9000 or more (`ulimit -Hn`) to start children below it",
    )
    assert _fd_limit_raised_to(1024, 4096) == (4096, 4096)
    assert _fd_limit_raised_to(1024, 9000) == (8192, 8192)
    assert _fd_limit_raised_to(9000, 9000) == (9000, 9000)


def test_where_processes_are_hidden_only_private_dirs_are_cleaned(tmp_path: Path) -> None:
    """`Policy.kept_by_visibility` (hidepid): a dir only we can enter is fine, any other is not;
    the answer is worked out once per dir."""
    from uvsweep.remove import Policy, dir_is_private

    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    private.chmod(0o700)
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o755)
    enterable = tmp_path / "enterable"
    enterable.mkdir()
    enterable.chmod(0o701)  # others may not list it, but may open a file in it by name
    assert dir_is_private(str(private)) and not dir_is_private(str(shared))
    assert not dir_is_private(str(enterable))
    assert not dir_is_private(str(tmp_path / "missing"))
    policy = Policy(private_dirs_only="hidepid=2 hides other users' processes")
    for _twice in range(2):
        assert policy.kept_by_visibility(str(private), None) is None
        why = policy.kept_by_visibility(str(shared), None)
        assert why is not None and why.startswith("another user's process could have it open")
    shared.chmod(0o700)  # asked once per dir and run: the first answer stands
    assert policy.kept_by_visibility(str(shared), None) is not None
    assert Policy().kept_by_visibility(str(shared), None) is None


def test_a_file_exactly_the_minimum_age_is_old_enough() -> None:
    from uvsweep.remove import Policy

    assert Policy(min_age=60).too_young(60.0) is None
    assert Policy(min_age=60).too_young(59.9) is not None
    assert Policy().too_young(0.0) is None


class _FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_backoff_doubles_from_1ms_to_50ms_on_the_clock_it_is_given() -> None:
    from itertools import islice

    from uvsweep.remove import backoff

    clock = _FakeClock()
    waited = list(islice(backoff(calls=clock), 9))
    assert clock.slept == [0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.05, 0.05]
    assert waited[0] == 0 and abs(waited[-1] - sum(clock.slept)) < 1e-9


def test_the_fd_walk_skips_us_counts_the_hidden_and_goes_past_every_failure() -> None:
    """`walk_fds` over a /proc that refuses one process, lost another, and one of whose fds
    vanished (before its readlink, or between it and the stat): the walk goes on to the
    process that has our file open."""
    import os

    from uvsweep.probe.linux import walk_fds
    from uvsweep.probe.posix import Syscalls

    name = "uv-00000000000000aa.lock"
    real = os.stat("/")
    key = (real.st_dev, real.st_ino)

    class FakeProc(Syscalls):
        def list_dir(self, where: int | str) -> list[str]:
            if where == "/p/1/fd":
                raise PermissionError(13, "Permission denied")
            if where == "/p/2/fd":
                raise FileNotFoundError(2, "No such file or directory")
            return ["0", "2", "1"]

        def readlink(self, path: str) -> str:
            if path.endswith("/0"):
                raise FileNotFoundError(2, "No such file or directory")
            return f"/tmp/{name} (deleted)"

        def stat(self, path: str) -> os.stat_result:
            if path.endswith("/2"):  # closed between our readlink and our stat
                raise FileNotFoundError(2, "No such file or directory")
            return real

        def getpid(self) -> int:
            return 4

    calls = FakeProc()
    assert walk_fds("/p", [1, 2, 3, 4], {name}, {key}, calls, own_pid=7) == ({key: [3, 4]}, 1)
    # without own_pid, we are the pid the OS gives us (4 here), and never count
    assert walk_fds("/p", [1, 2, 3, 4], {name}, {key}, calls) == ({key: [3]}, 1)


def test_rw_accessible_ignores_execute_bits() -> None:
    """`rw_accessible` (what decides "your uv cannot open it"): the read and write bits of the
    class that applies, whatever the execute bits (kills `mode & 0o006` -> `mode & 7`)."""
    import os
    import stat

    from uvsweep.probe.posix import rw_accessible

    def st(mode: int, uid: int = 1, gid: int = 1) -> os.stat_result:
        return os.stat_result((stat.S_IFREG | mode, 0, 0, 1, uid, gid, 0, 0, 0, 0))

    assert rw_accessible(st(0o667), 2, frozenset())  # other: rw-, plus x
    assert rw_accessible(st(0o666), 2, frozenset())
    assert not rw_accessible(st(0o664), 2, frozenset())  # other: r-- only
    assert rw_accessible(st(0o670), 2, frozenset({1})) and rw_accessible(st(0o700), 1, frozenset())
    assert rw_accessible(st(0o601), 1, frozenset())  # owner: rw-; other's x is no matter
    assert rw_accessible(st(0o661), 2, frozenset({1}))  # group: rw-; other's x is no matter
    assert not rw_accessible(st(0o606), 2, frozenset({1}))  # the group's bits decide
    assert rw_accessible(st(0o000), 0, frozenset())  # root


def test_the_keepers_job_goes_in_a_temp_file_where_there_is_no_memfd(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Kills `_job_file`'s `except (AttributeError, OSError)` narrowed (run 4): macOS and the
    BSDs have no `memfd_create`; the job then goes in a temp file unlinked at once, read from
    its start, never an AttributeError that stops every handoff there."""
    import os

    from uvsweep.remove.handoff import _job_file

    monkeypatch.delattr(os, "memfd_create", raising=False)
    job = b'{"handoffs": []}\n' * 1000
    fd = _job_file(job)
    try:
        assert os.read(fd, len(job) + 1) == job
        assert os.fstat(fd).st_nlink == 0, "the temp file is not unlinked"
    finally:
        os.close(fd)


def test_a_keepers_job_that_cannot_be_written_leaves_no_fd_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Kills `_job_file`'s `except OSError` around the write narrowed (run 5): a job that
    cannot be written (a full memfd or disk: ENOSPC) raises, so that the cleaner keeps its
    locks, and its unnamed file is closed (left open, each failed keeper start leaked it)."""
    import os

    from uvsweep.remove import handoff

    def full(fd: int, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(handoff, "_write_all", full)
    before = set(os.listdir("/proc/self/fd"))
    with pytest.raises(OSError, match="No space left"):
        handoff._job_file(b'{"handoffs": []}\n')
    assert set(os.listdir("/proc/self/fd")) == before


def test_no_fds_for_a_second_pipe_leaves_none_of_the_first_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Kills `_two_pipes`' `for fd in pipes: os.close(fd)` run zero times (run 4): when the
    second `pipe()` fails (EMFILE: the reason a keeper is forked at all, often), the first
    pipe's two fds are closed, and no pipes are given."""
    import errno
    import os

    from uvsweep.remove import handoff

    real_pipe = os.pipe
    made: list[int] = []

    def one_pipe_only() -> tuple[int, int]:
        if made:
            raise OSError(errno.EMFILE, "Too many open files")
        made.extend(real_pipe())
        return made[0], made[1]

    monkeypatch.setattr(os, "pipe", one_pipe_only)
    assert handoff._two_pipes() == []
    for fd in made:
        with pytest.raises(OSError):
            os.fstat(fd)


@pytest.mark.parametrize(
    ("soft", "highest"),
    [
        (1024, 1024),
        ((1 << 20) - 1, (1 << 20) - 1),
        (1 << 20, 1 << 20),
        ((1 << 20) + 1, 1 << 20),
        (0, 1 << 20),
        (-1, 1 << 20),
    ],
)
def test_the_forked_keeper_closes_fds_up_to_the_soft_limit_or_a_million(
    soft: int, highest: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills `_max_fd`'s numbers and comparisons (run 4): the forked keeper closes every fd
    below the soft open-file limit it is not given, up to 2**20 where the limit is higher or
    infinite (RLIM_INFINITY is -1 here), and below 1024 where it cannot be read."""
    import resource

    from uvsweep.remove import handoff

    monkeypatch.setattr(resource, "getrlimit", lambda which: (soft, 1 << 30))
    assert handoff._max_fd() == highest

    def unreadable(which: int) -> tuple[int, int]:
        raise OSError("no limits here")

    monkeypatch.setattr(resource, "getrlimit", unreadable)
    assert handoff._max_fd() == 1024


def test_a_forked_keeper_keeps_only_its_fds_and_ignores_the_signals_of_a_session() -> None:
    """Kills `_become_keeper`'s `start = fd + 1` -> `+ 2` (the fd after each kept one left open:
    a tray's display or bus connection held by the keeper) and its loop over SIGINT, SIGHUP,
    SIGPIPE and SIGTSTP run zero times (a copy of the cleaner keeps its Ctrl-C handler: a
    `kill -INT` ended the keeper, and with it its locks) (run 4). A real fork: the child
    becomes a keeper and reports what it has."""
    import json
    import os
    import signal

    from uvsweep.remove import handoff

    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        status = 1
        try:
            null = os.open(os.devnull, os.O_RDWR)
            os.dup2(null, 40)  # given to the keeper
            os.dup2(null, 41)  # not given: must be closed
            os.dup2(write_end, 42)  # given: the report goes there
            handoff._become_keeper([40, 42])
            report = {
                "open": [fd for fd in (40, 41, 42) if _is_open(fd)],
                "ignored": [
                    signal.getsignal(getattr(signal, name)) == signal.SIG_IGN
                    for name in ("SIGINT", "SIGHUP", "SIGPIPE", "SIGTSTP")
                ],
            }
            os.write(42, json.dumps(report).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as stream:
        said = stream.read()
    os.waitpid(pid, 0)
    report = json.loads(said)
    assert report == {"open": [40, 42], "ignored": [True, True, True, True]}


def _is_open(fd: int) -> bool:
    import os

    try:
        os.fstat(fd)
    except OSError:
        return False
    return True
