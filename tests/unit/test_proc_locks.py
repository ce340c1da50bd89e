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
