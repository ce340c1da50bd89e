"""`walk_fds` looks past a zombie leader to its live threads' fds (red-team B5), and counts a
process whose fd links it may list but not read as hidden (red-team B2)."""

from __future__ import annotations

import errno
import os

import pytest

from uvsweep.probe.linux import walk_fds
from uvsweep.probe.posix import Syscalls

ST = os.stat_result((0o100644, 42, 7, 1, 0, 0, 0, 0, 0, 0))


class _Proc(Syscalls):
    """A `/proc` of listings (an exception where a listing fails) and fd links."""

    def __init__(
        self, dirs: dict[str, list[str] | OSError], links: dict[str, str | OSError]
    ) -> None:
        self.dirs, self.links = dirs, links
        self.listed: list[str] = []

    def list_dir(self, where: int | str) -> list[str]:
        self.listed.append(str(where))
        found = self.dirs.get(str(where), OSError(errno.ENOENT, "No such file"))
        if isinstance(found, OSError):
            raise found
        return found

    def readlink(self, path: str) -> str:
        found = self.links.get(path, OSError(errno.ENOENT, "No such file"))
        if isinstance(found, OSError):
            raise found
        return found

    def stat(self, path: str) -> os.stat_result:
        assert path in self.links
        return ST


NAME = "uv-00000000000000aa.lock"


def _walk(calls: _Proc) -> tuple[dict[tuple[int, int], list[int]], int, set[int]]:
    hidden_pids: set[int] = set()
    found, hidden = walk_fds(
        "/p", [10], {NAME}, {(7, 42)}, calls, own_pid=1, hidden_pids=hidden_pids
    )
    return found, hidden, hidden_pids


def test_a_zombie_leaders_threads_are_walked() -> None:
    calls = _Proc(
        {"/p/10/fd": [], "/p/10/task": ["10", "11", "12"], "/p/10/task/11/fd": ["3"]},
        {"/p/10/task/11/fd/3": f"/tmp/{NAME}"},
    )
    assert _walk(calls) == ({(7, 42): [10]}, 0, set())


def test_a_thread_gone_meanwhile_is_passed_over() -> None:
    calls = _Proc(
        {"/p/10/fd": [], "/p/10/task": ["10", "11", "12"], "/p/10/task/12/fd": ["4"]},
        {"/p/10/task/12/fd/4": f"/tmp/{NAME} (deleted)"},
    )
    assert _walk(calls) == ({(7, 42): [10]}, 0, set())


@pytest.mark.parametrize("where", ["/p/10/task", "/p/10/task/11/fd"])
def test_threads_that_refuse_a_look_hide_the_process(where: str) -> None:
    dirs: dict[str, list[str] | OSError] = {"/p/10/fd": [], "/p/10/task": ["10", "11"]}
    dirs[where] = PermissionError(errno.EACCES, "Permission denied")
    assert _walk(_Proc(dirs, {})) == ({}, 1, {10})


def test_a_kernel_thread_costs_one_more_listing_and_shows_nothing() -> None:
    calls = _Proc({"/p/10/fd": [], "/p/10/task": ["10"]}, {})
    assert _walk(calls) == ({}, 0, set())
    assert calls.listed == ["/p/10/fd", "/p/10/task"]


def test_no_fds_left_for_the_threads_listing_is_an_error_not_nobody() -> None:
    calls = _Proc({"/p/10/fd": [], "/p/10/task": OSError(errno.EMFILE, "Too many")}, {})
    with pytest.raises(OSError, match="Too many"):
        _walk(calls)


def test_the_walk_goes_on_past_a_process_whose_threads_hide() -> None:
    calls = _Proc(
        {
            "/p/10/fd": [],
            "/p/10/task": PermissionError(errno.EACCES, "Permission denied"),
            "/p/20/fd": ["5"],
        },
        {"/p/20/fd/5": f"/tmp/{NAME}"},
    )
    hidden_pids: set[int] = set()
    found, hidden = walk_fds(
        "/p", [10, 20], {NAME}, {(7, 42)}, calls, own_pid=1, hidden_pids=hidden_pids
    )
    assert (found, hidden, hidden_pids) == ({(7, 42): [20]}, 1, {10})


@pytest.mark.parametrize("code", [errno.EACCES, errno.EPERM])
def test_a_process_whose_links_are_refused_is_hidden_once(code: int) -> None:
    """Root without CAP_SYS_PTRACE lists another user's fds but may not read where they
    point: such a process could have any file open, as one whose fds cannot be listed."""
    refused = PermissionError(code, "Permission denied")
    calls = _Proc(
        {"/p/10/fd": ["3", "4", "5"]},
        {"/p/10/fd/3": OSError(errno.ENOENT, "gone"), "/p/10/fd/4": refused, "/p/10/fd/5": refused},
    )
    assert _walk(calls) == ({}, 1, {10})


def test_a_link_closed_meanwhile_hides_nothing() -> None:
    calls = _Proc(
        {"/p/10/fd": ["3", "4"]},
        {"/p/10/fd/3": OSError(errno.ENOENT, "gone"), "/p/10/fd/4": f"/tmp/{NAME}"},
    )
    assert _walk(calls) == ({(7, 42): [10]}, 0, set())
