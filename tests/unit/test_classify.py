"""classify: every observation gets exactly one state, with the precedence the README states."""

from __future__ import annotations

import os
import stat

import pytest

from uvsweep.model import LockState, LockUser
from uvsweep.probe import LockProbe, Observation, classify
from uvsweep.probe.posix import rw_accessible


def obs(**changes: object) -> Observation:
    base = Observation(
        directory="/tmp", name="uv-0123456789abcdef.lock", mode=stat.S_IFREG | 0o666, size=0,
        nlink=1, mtime=0.0, dev=1, ino=2, uid=1000, owner="me", mine=True, lock=LockProbe.FREE,
    )  # fmt: skip
    for key, value in changes.items():
        assert hasattr(base, key), key
        setattr(base, key, value)
    return base


@pytest.mark.parametrize(
    ("changes", "state"),
    [
        ({}, LockState.ORPHANED),
        ({"mine": False, "owner": "bob"}, LockState.FOREIGN),
        ({"mode": stat.S_IFLNK | 0o777}, LockState.SUSPICIOUS),
        ({"mode": stat.S_IFIFO | 0o666}, LockState.SUSPICIOUS),
        ({"mode": stat.S_IFDIR | 0o755}, LockState.SUSPICIOUS),
        ({"nlink": 2}, LockState.SUSPICIOUS),
        ({"size": 3}, LockState.SUSPICIOUS),
        ({"lock": LockProbe.UNREADABLE}, LockState.SUSPICIOUS),
        ({"lock": LockProbe.HELD}, LockState.HELD),
        ({"holders": [LockUser(7, "uv")]}, LockState.HELD),
        ({"waiters": [LockUser(8, "uv")]}, LockState.WAITING),
        ({"openers": [LockUser(9, "uv")]}, LockState.OPEN),
    ],
)
def test_each_observation_gets_one_state(changes: dict[str, object], state: LockState) -> None:
    assert classify(obs(**changes)).state is state


def test_live_use_wins_over_oddities_of_the_file() -> None:
    # a held file with two links is reported held: what a process does now matters most
    assert classify(obs(nlink=2, holders=[LockUser(1)])).state is LockState.HELD
    # but a symlink is never probed, whatever the lock table says about its inode
    assert (
        classify(obs(mode=stat.S_IFLNK | 0o777, holders=[LockUser(1)])).state
        is LockState.SUSPICIOUS
    )


def test_a_failed_try_lock_without_a_visible_holder_names_an_unknown_holder() -> None:
    item = classify(obs(lock=LockProbe.HELD))
    assert item.holders == (LockUser(pid=None),)
    assert item.holders[0].describe() == "unknown unknown (unknown)"


def test_waiters_are_listed_beside_holders() -> None:
    item = classify(
        obs(holders=[LockUser(1, "uv")], waiters=[LockUser(2, "uv"), LockUser(3, "uv")])
    )
    assert item.state is LockState.HELD
    assert [w.pid for w in item.waiters] == [2, 3]


def test_foreign_files_say_whether_they_block_the_current_users_uv() -> None:
    blocking = classify(obs(mine=False, owner="bob", accessible=False))
    assert blocking.blocks_uv
    assert "cannot open it" in blocking.reason
    harmless = classify(obs(mine=False, owner="bob", accessible=True))
    assert not harmless.blocks_uv
    assert "can still lock it" in harmless.reason


def test_only_regular_empty_single_link_own_unlocked_files_are_orphaned() -> None:
    orphan = classify(obs())
    assert (orphan.state, orphan.reason) == (
        LockState.ORPHANED, "nobody holds, waits for or has it open"
    )  # fmt: skip
    # each way of not being an orphan gets its own state and says why
    cases = [
        ({"size": 1}, LockState.SUSPICIOUS, "not empty (1 bytes)"),
        ({"nlink": 3}, LockState.SUSPICIOUS, "a hard link (3 links)"),
        ({"mine": False, "owner": "bob"}, LockState.FOREIGN,
         "owned by bob; your uv can still lock it"),
        ({"mode": stat.S_IFLNK | 0o777}, LockState.SUSPICIOUS, "a symlink; uv never makes one"),
        ({"lock": LockProbe.HELD}, LockState.HELD, "locked by a process the OS does not show"),
    ]  # fmt: skip
    for changes, state, reason in cases:
        item = classify(obs(**changes))
        assert (item.state, item.reason) == (state, reason), changes
        assert not item.blocks_uv or state is LockState.FOREIGN


def _st(mode: int, uid: int, gid: int) -> os.stat_result:
    return os.stat_result((stat.S_IFREG | mode, 1, 1, 1, uid, gid, 0, 0, 0, 0))


@pytest.mark.parametrize(
    ("mode", "uid", "gid", "euid", "groups", "expected"),
    [
        (0o644, 0, 0, 1000, {1000}, False),  # uv <= 0.5.29 mode, owned by root: blocks others
        (0o666, 0, 0, 1000, {1000}, True),  # uv >= 0.9.15 mode: anyone can lock it
        (0o664, 0, 50, 1000, {50}, True),  # group-writable and we are in the group
        (0o664, 0, 50, 1000, {1000}, False),
        (0o600, 1000, 1000, 1000, {1000}, True),
        (0o400, 1000, 1000, 1000, {1000}, False),
        (0o000, 1000, 1000, 0, {0}, True),  # root opens anything
    ],
)
def test_rw_access_follows_the_mode_bits(
    mode: int, uid: int, gid: int, euid: int, groups: set[int], expected: bool
) -> None:
    assert rw_accessible(_st(mode, uid, gid), euid, frozenset(groups)) is expected


def test_a_file_held_by_uvsweeps_keeper_says_so() -> None:
    from uvsweep.remove.handoff import keeper_argv

    keeper = LockUser(7, "python3", "root", tuple(keeper_argv(5, 6, 7)))
    item = classify(obs(holders=[keeper]))
    assert item.state is LockState.HELD
    assert item.reason.startswith("held by a uvsweep keeper")
    other = classify(obs(holders=[LockUser(7, "uv", "root", ("uv", "sync", "_keeper"))]))
    assert other.reason == "locked by a running process"
    frozen = LockUser(7, "uvsweep", "root", ("/opt/uvsweep/uvsweep", "_keeper", "{}"))
    assert classify(obs(holders=[frozen])).reason.startswith("held by a uvsweep keeper")


def test_a_lock_whose_taker_exited_names_who_inherited_it() -> None:
    """/proc/locks names the process that took a flock; after it exits, the processes that
    share the file description hold it: a keeper, or a child (it was R7)."""
    from uvsweep.remove.handoff import keeper_argv

    gone = LockUser(7, alive=False)
    keeper = LockUser(9, "python3", "root", tuple(keeper_argv(5, 6, 7)))
    item = classify(obs(holders=[gone], openers=[keeper]))
    assert item.state is LockState.HELD and item.reason.startswith("held by a uvsweep keeper")
    assert [h.pid for h in item.holders] == [9]
    child = LockUser(11, "uv", "root", ("uv", "run", "x"))
    item = classify(obs(holders=[gone], openers=[child]))
    assert item.reason == "locked by a process that inherited the lock"
    assert [h.pid for h in item.holders] == [11]
    tray = LockUser(7, "uvsweep", "me", ("uvsweep",))  # took it, passed it on, runs on
    item = classify(obs(holders=[tray], openers=[keeper]))
    assert item.reason.startswith("held by a uvsweep keeper") and item.holders == (keeper,)
    alive = LockUser(7, "uv", "root", ("uv", "sync"))
    item = classify(obs(holders=[alive], openers=[child]))  # a live taker holds it itself
    assert item.reason == "locked by a running process" and [h.pid for h in item.holders] == [7]
