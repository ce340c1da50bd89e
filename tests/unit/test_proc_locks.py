"""parse_locks: reading /proc/locks, including waiters, hidden pids and lines it cannot read."""

from __future__ import annotations

from uvsweep.probe.linux import parse_locks

SAMPLE = """\
1: FLOCK  ADVISORY  WRITE 4216 fe:00:2146410 0 EOF
1: -> FLOCK  ADVISORY  WRITE 4219 fe:00:2146410 0 EOF
2: POSIX  ADVISORY  WRITE 812 00:1a:77 0 EOF
3: OFDLCK ADVISORY  READ  -1 08:10:99 0 EOF
4: FLOCK  ADVISORY  WRITE 0 00:2d:555 0 EOF
garbage line
5: FLOCK  ADVISORY  WRITE notapid 00:2d:1 0 EOF
"""


def test_holders_and_waiters_are_grouped_by_inode() -> None:
    table = parse_locks(SAMPLE)
    entries = table[2146410]
    assert [(e.pid, e.waiting) for e in entries] == [(4216, False), (4219, True)]
    assert (entries[0].major, entries[0].minor) == (0xFE, 0)


def test_hidden_pids_are_kept_as_entries() -> None:
    # a holder in another PID namespace shows as pid 0: it still means "held"
    assert parse_locks(SAMPLE)[555][0].pid == 0
    assert parse_locks(SAMPLE)[99][0].pid == -1


def test_unreadable_lines_are_skipped() -> None:
    table = parse_locks(SAMPLE)
    assert 1 not in table
    assert set(table) == {2146410, 77, 99, 555}


def test_device_numbers_are_hex() -> None:
    entry = parse_locks("1: FLOCK  ADVISORY  WRITE 1 103:1a:5 0 EOF\n")[5][0]
    assert (entry.major, entry.minor) == (0x103, 0x1A)


def test_own_locks_are_left_out_unparsed() -> None:
    text = (
        "1: FLOCK  ADVISORY  WRITE 4242 fe:00:100 0 EOF\n"
        "2: FLOCK  ADVISORY  WRITE 77 fe:00:100 0 EOF\n"
        "2: -> FLOCK  ADVISORY  WRITE 4242 fe:00:101 0 EOF\n"
    )
    table = parse_locks(text, own_pid=4242)
    assert [e.pid for e in table[100]] == [77]
    assert [e.waiting for e in table[101]] == [True]  # a wait is never ours: kept


def test_quiet_probe_only_where_the_lock_table_cannot_decide() -> None:
    import os

    from uvsweep.probe.linux import LinuxBackend

    backend = LinuxBackend()
    backend.table = parse_locks("1: FLOCK  ADVISORY  WRITE 9 fe:00:100 0 EOF\n")

    class St:
        def __init__(self, ino: int, dev: int) -> None:
            self.st_ino, self.st_dev = ino, dev

    same, other = os.makedev(0xFE, 0), os.makedev(0, 40)
    assert backend.probe_needed(St(100, same))  # not quiet: always
    backend.quiet = True
    assert not backend.probe_needed(St(555, same))  # no entry for the inode: free, no open
    assert not backend.probe_needed(St(100, same))  # the entry's device matches: trusted
    assert backend.probe_needed(St(100, other))  # same inode, other device: ask the file
    backend.table = None
    assert backend.probe_needed(St(555, same))  # no table at all: ask the file


def test_the_device_of_a_file_is_learned_from_our_own_lock_on_it() -> None:
    import os

    from uvsweep.probe.linux import parse_lock_table

    # we (pid 50) hold inode 100; /proc/locks prints its device as 00:30, though st_dev says
    # 00:2d (as on btrfs); a waiter on our file and a holder of inode 100 on another tmpfs
    text = (
        "1: FLOCK  ADVISORY  WRITE 50 00:30:100 0 EOF\n"
        "1: -> FLOCK  ADVISORY  WRITE 77 00:30:100 0 EOF\n"
        "2: FLOCK  ADVISORY  WRITE 88 00:41:100 0 EOF\n"
    )
    table = parse_lock_table(text, own_pid=50)
    known: dict[int, tuple[int, int]] = {}
    st_dev = os.makedev(0, 0x2D)
    mine, unsure = table.entries(st_dev, 100, known)
    assert [(e.pid, e.waiting) for e in mine] == [(77, True)]
    assert unsure == [], "the device is certain: the other tmpfs's lock is another file"
    assert known == {}, "a device is learned for the run from our fd's fdinfo alone"
    known[st_dev] = (0, 0x30)  # as LinuxRemover.locked_one learns it
    # later, not holding it any more (an unlinked old generation): the remembered device decides
    later = parse_lock_table("2: FLOCK  ADVISORY  WRITE 88 00:41:100 0 EOF\n", own_pid=50)
    assert later.entries(st_dev, 100, known, own=False) == ([], [])


def test_an_entry_whose_device_cannot_be_told_is_unsure_never_ours_by_inode_alone() -> None:
    import os

    from uvsweep.probe.linux import parse_lock_table

    table = parse_lock_table("2: FLOCK  ADVISORY  WRITE 88 00:41:100 0 EOF\n", own_pid=50)
    mine, unsure = table.entries(os.makedev(0, 0x2D), 100, {})
    assert mine == [] and [e.pid for e in unsure] == [88]
    same = table.entries(os.makedev(0, 0x41), 100, {})
    assert [e.pid for e in same[0]] == [88] and same[1] == []


class _Reads:
    """`Syscalls.read` of a `/proc/locks` that shows these texts, one per read, then the last."""

    def __init__(self, *texts: str) -> None:
        self.texts, self.count = list(texts), 0

    def read(self, path: str) -> bytes:
        self.count += 1
        return self.texts[min(self.count, len(self.texts)) - 1].encode()


def _ours(table: object) -> bool:
    return 7 in table.own  # type: ignore[attr-defined]


def test_a_table_is_read_again_until_our_own_record_shows_with_its_waiters() -> None:
    from uvsweep.probe.linux import read_lock_table

    skipped = "1: FLOCK  ADVISORY  WRITE 50 00:2d:8 0 EOF\n"  # our record (ino 7) skipped
    whole = (
        "1: FLOCK  ADVISORY  WRITE 10 00:2d:7 0 EOF\n"
        "1: -> FLOCK  ADVISORY  WRITE 60 00:2d:7 0 EOF\n"
        "2: FLOCK  ADVISORY  WRITE 50 00:2d:8 0 EOF\n"
    )
    reads = _Reads(skipped, whole)
    table = read_lock_table("/proc", 10, reads, anchored=_ours)  # type: ignore[arg-type]
    assert reads.count == 2 and table.complete
    assert [(e.pid, e.waiting) for e in table.others[7]] == [(60, True)]
    assert [e.pid for e in table.others[8]] == [50]  # seen in both reads: listed once


def test_a_table_that_never_shows_our_record_says_it_is_incomplete() -> None:
    from uvsweep.probe.linux import ANCHORED_READS, read_lock_table

    reads = _Reads("1: FLOCK  ADVISORY  WRITE 50 00:2d:8 0 EOF\n")
    table = read_lock_table("/proc", 10, reads, anchored=_ours)  # type: ignore[arg-type]
    assert reads.count == ANCHORED_READS and not table.complete


def test_without_anchors_a_table_is_read_as_often_as_asked() -> None:
    from uvsweep.probe.linux import read_lock_table

    reads = _Reads("1: FLOCK  ADVISORY  WRITE 50 00:2d:8 0 EOF\n", "")
    table = read_lock_table("/proc", 10, reads, reads=2)  # type: ignore[arg-type]
    assert reads.count == 2 and table.complete and [e.pid for e in table.others[8]] == [50]
