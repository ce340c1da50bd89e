"""`parse_lock_table`'s shortcut for a cleaner's own lines says exactly what its loop says.

The shortcut takes our own exclusive flocks out of the table in bulk; these tests hold it to
the line-by-line reading (`_by_lines`, the parse as it was before the shortcut), on tables as
the kernel prints them and on lines that only look like ours.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from uvsweep.probe.linux import LockTable, _entry, parse_lock_table

PID = 4242


def _by_lines(text: str, own_pid: int, held: set[str]) -> LockTable:
    """Every line split and judged on its own (what the shortcut must agree with)."""
    pid = str(own_pid)
    own: set[str] = set()
    others: dict[int, list] = {}  # type: ignore[type-arg]
    for line in text.splitlines():
        parts = line.split(None, 7)
        if len(parts) < 6:
            continue
        if parts[1] != "->":
            key = parts[5]
            mine = parts[4] == pid and parts[3] == "WRITE"
            if parts[1] == "FLOCK" and (mine or key in held):
                own.add(key)
                continue
            if mine:
                continue
        entry = _entry(parts)
        if entry is not None:
            others.setdefault(entry.ino, []).append(entry)
    return LockTable(others, own_pid=own_pid, own_keys=own)


def _same(text: str, held: set[str]) -> None:
    fast, slow = parse_lock_table(text, PID, held), _by_lines(text, PID, held)
    assert fast.own_keys == slow.own_keys
    assert fast.others == slow.others


def test_a_table_of_our_own_locks_with_a_waiter_and_other_processes() -> None:
    text = "".join(
        [f"{n}: FLOCK  ADVISORY  WRITE {PID} fe:00:{1000 + n} 0 EOF\n" for n in range(1, 50)]
        + [
            "7: -> FLOCK  ADVISORY  WRITE 77 fe:00:1007 0 EOF\n",
            f"8:   -> FLOCK  ADVISORY  WRITE {PID} fe:00:1008 0 EOF\n",  # our own, nested waiter
            "50: POSIX  ADVISORY  WRITE 9 00:1f:12 0 EOF\n",
            f"51: POSIX  ADVISORY  WRITE {PID} 00:1f:13 0 EOF\n",  # ours, of another kind
            f"52: FLOCK  ADVISORY  READ  {PID} fe:00:2000 0 EOF\n",  # ours, shared
            "53: FLOCK  ADVISORY  WRITE 31337 fe:00:2001 0 EOF\n",  # a keeper's copy
            f"54: FLOCK  ADVISORY  WRITE {PID}5 fe:00:2002 0 EOF\n",  # another pid, longer
        ]
    )
    table = parse_lock_table(text, PID, {"fe:00:2001"})
    assert {"fe:00:1001", "fe:00:1049", "fe:00:2001"} <= table.own_keys
    assert "fe:00:2000" not in table.own_keys and "fe:00:2002" not in table.own_keys
    assert [e.pid for e in table.others[1007]] == [77]
    assert [e.pid for e in table.others[1008]] == [PID]  # a waiter is never ours
    assert [e.pid for e in table.others[2002]] == [int(f"{PID}5")]
    _same(text, {"fe:00:2001"})


@pytest.mark.parametrize("count", [1, 2, 5])
def test_as_many_other_processes_lines_as_our_own_are_each_read(count: int) -> None:
    """The shortcut leaves the loop every line without our mark, however many of ours there
    are (as many as the others', say: run 6's mutant that left it the marked ones instead)."""
    ours = [f"{n}: FLOCK  ADVISORY  WRITE {PID} fe:00:{100 + n} 0 EOF\n" for n in range(count)]
    theirs = [f"{n}: FLOCK  ADVISORY  WRITE 77 fe:00:{200 + n} 0 EOF\n" for n in range(count)]
    for text in ("".join(ours + theirs), "".join(theirs + ours)):
        table = parse_lock_table(text, PID)
        assert table.own_keys == {f"fe:00:{100 + n}" for n in range(count)}
        assert sorted(table.others) == [200 + n for n in range(count)]
        assert all([e.pid for e in table.others[200 + n]] == [77] for n in range(count))
        _same(text, set())


MARK = f": FLOCK  ADVISORY  WRITE {PID} "
OURS = "".join(f"{n}{MARK}fe:00:{n} 0 EOF\n" for n in range(1, 6))


@pytest.mark.parametrize(
    "odd",
    [
        f"7: -> x{MARK}fe:00:7 0 EOF",  # the mark after a waiter's arrow
        f"7: -> 12{MARK}fe:00:7 0 EOF",  # ... with a number before it
        f"7: POSIX  ADVISORY  WRITE 1 00:1f:7 0 EOF x{MARK}fe:00:8",  # at a line's end
        f"7: POSIX  ADVISORY  WRITE 1 00:1f:7 0 EOF 9{MARK}fe:00:8",
        f"7{MARK}",  # the mark and no key
        f" 7{MARK}fe:00:7 0 EOF",  # a leading space
        f"7 {MARK}fe:00:7 0 EOF",  # a space before the colon
        f"x{MARK}fe:00:7 0 EOF",  # no position number
        f"7: FLOCK  ADVISORY  WRITE {PID} fe:00:7\x1c8{MARK}fe:00:8 0 EOF",  # two in one line
    ],
)
def test_a_line_that_holds_our_mark_elsewhere_is_read_as_the_loop_reads_it(odd: str) -> None:
    for text in (OURS + odd + "\n", odd + "\n" + OURS, OURS + odd):
        _same(text, set())


_FIELD = st.sampled_from(
    ["1:", "22:", "->", MARK, "FLOCK", "POSIX", "OFDLCK", "ADVISORY", "WRITE", "READ", str(PID),
     f"{PID}1", "7", "-1", "fe:00:12", "00:1f:12", "fe:00:13", "0", "EOF", ":", "x"]
)  # fmt: skip
_SPACE = st.sampled_from([" ", "  ", "\t", "\x1c", "\x85", " \u2028 "])
_LINE = st.one_of(
    st.builds(
        lambda n, ino: f"{n}: FLOCK  ADVISORY  WRITE {PID} fe:00:{ino} 0 EOF",
        st.integers(1, 99),
        st.integers(10, 14),
    ),
    st.builds(
        lambda n, pid, ino: f"{n}: FLOCK  ADVISORY  WRITE {pid} fe:00:{ino} 0 EOF",
        st.integers(1, 99),
        st.sampled_from([77, 1, PID * 10]),
        st.integers(10, 14),
    ),
    st.lists(st.tuples(_FIELD, _SPACE), min_size=0, max_size=9).map(
        lambda parts: "".join(f + s for f, s in parts)
    ),
)


@settings(max_examples=400, deadline=None)
@given(
    lines=st.lists(_LINE, max_size=12),
    ends=st.sampled_from(["\n", "\r\n", "\n\n", "\x0b"]),
    held=st.sets(st.sampled_from(["fe:00:12", "fe:00:13", "00:1f:12"])),
)
def test_any_table_reads_the_same_with_the_shortcut(
    lines: list[str], ends: str, held: set[str]
) -> None:
    _same(ends.join(lines), held)


def test_the_kernels_own_table_of_a_holder_of_many_locks(tmp_path: Path) -> None:
    """Real `/proc/locks` while this process holds 300 flocks (and one shared)."""
    fds = []
    try:
        for index in range(300):
            fd = os.open(tmp_path / f"uv-{index:016x}.lock", os.O_CREAT | os.O_RDONLY, 0o644)
            fds.append(fd)
            fcntl.flock(fd, fcntl.LOCK_SH if index == 0 else fcntl.LOCK_EX)
        text = Path("/proc/locks").read_bytes().decode("latin-1")
        pid = int(os.readlink("/proc/self"))
        fast, slow = parse_lock_table(text, pid), _by_lines(text, pid, set())
        assert len(fast.own_keys) >= 299
        assert fast.own_keys == slow.own_keys
        assert fast.others == slow.others
    finally:
        for fd in fds:
            os.close(fd)
