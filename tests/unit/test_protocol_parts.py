"""Small parts of the removal protocol that mutation testing showed untested (tests/MUTATION.md):
our own lock lines (the device a file is printed with) and the batch size."""

from __future__ import annotations

from uvsweep.probe.linux import parse_lock_table
from uvsweep.remove.posix import batch_size_for


def test_our_own_lock_lines_give_their_device_in_hex() -> None:
    text = (
        "1: FLOCK  ADVISORY  WRITE 4242 00:2d:123 0 EOF\n"  # ours, on a tmpfs (0:45)
        "2: FLOCK  ADVISORY  WRITE 4242 fe:1f:124 0 EOF\n"  # ours, 254:31
        "3: -> FLOCK  ADVISORY  WRITE 4242 00:2d:125 0 EOF\n"  # we wait: not a lock we hold
        "4: FLOCK  ADVISORY  WRITE 77 00:2d:123 0 EOF\n"  # somebody else's
        "5: FLOCK  ADVISORY  WRITE 4242 00:2d 0 EOF\n"  # unreadable: kept for the others
    )
    table = parse_lock_table(text, 4242)
    assert table.own == {123: {(0, 0x2D)}, 124: {(0xFE, 0x1F)}}
    assert [(e.pid, e.waiting) for e in table.others[123]] == [(77, False)]
    assert [(e.pid, e.waiting) for e in table.others[125]] == [(4242, True)]
    assert set(table.others) == {123, 125}


def test_a_batch_leaves_room_and_is_capped() -> None:
    # two fds per file at most (the file and, in a handoff, its next generation), 24 spare
    assert batch_size_for(1024) == 500
    assert batch_size_for(1024, in_use=100) == 450
    assert batch_size_for(2072) == 1024
    assert batch_size_for(1_000_000) == 1024  # /proc/locks costs O(lines^2) to read
    assert batch_size_for(25) == 1 and batch_size_for(0) == 1


def test_a_line_that_cannot_be_read_is_skipped_and_the_rest_read() -> None:
    from uvsweep.probe.linux import parse_locks

    text = (
        "1: FLOCK  ADVISORY  WRITE notapid 00:2d:1 0 EOF\n"
        "2: FLOCK  ADVISORY  WRITE 5 00:2d:2 0 EOF\n"
        "3: FLOCK  ADVISORY  WRITE 6 00:2d 0 EOF\n"
        "4: -> FLOCK  ADVISORY  WRITE 7 00:2d:2 0 EOF\n"
    )
    assert [(e.pid, e.waiting) for e in parse_locks(text)[2]] == [(5, False), (7, True)]
