"""macOS as uvsweep meets it, modelled on Linux over real processes and real open files.

- Paths: `/var`, `/tmp` and `/etc` are symlinks into `/private`, and the kernel reports the
  resolved vnode path. So a file the user knows as `<dir>/uv-....lock` is reported as
  `/private<dir>/uv-....lock`; `view_stat` resolves such a path as macOS would.
- libproc: `proc_listallpids`, `proc_pidinfo(PROC_PIDLISTFDS)` and
  `proc_pidfdinfo(PROC_PIDFDVNODEPATHINFO)`, answered from `/proc/<pid>/fd` of the real processes
  a test names, at the ctypes level (the structs are filled byte for byte as xnu lays them out).
  Like xnu, an unlinked file still has its `vst_dev`/`vst_ino`; another user's process is
  refused with EPERM.
- psutil: `tests.psutil_double.FakePsutil("darwin", ...)` with `view_stat`, so `open_files`
  reports kernel paths and drops the ones that no longer exist, as psutil's `_psosx.py` does.
"""

from __future__ import annotations

import ctypes
import errno
import os
import stat
from collections.abc import Iterable
from typing import Any

from tests.ctypes_strict import strict_library
from tests.psutil_double import FakeProcess, FakePsutil
from uvsweep.probe.darwin import (
    LIBPROC_PROTOTYPES,
    PROC_PIDFDVNODEPATHINFO,
    PROC_PIDLISTFDS,
    PROX_FDTYPE_VNODE,
    ProcFdInfo,
    VnodeFdInfoWithPath,
)

PROX_FDTYPE_PIPE, PROX_FDTYPE_SOCKET = 6, 2
DELETED = " (deleted)"


def kernel_path(path: str) -> str:
    """The path macOS's kernel reports for a file the user names `path`."""
    return "/private" + os.path.realpath(path)


def view_stat(path: str) -> os.stat_result:
    """`os.stat` on macOS: `/private/x` and `x` are the same file."""
    if path.startswith("/private/"):
        path = path[len("/private") :]
    return os.stat(path)


def _fds(pid: int) -> list[tuple[int, os.stat_result, str]]:
    """(fd, stat of the open file, kernel path) for each fd of a real process."""
    found = []
    base = f"/proc/{pid}/fd"
    for entry in os.listdir(base):
        try:
            st = os.stat(f"{base}/{entry}")  # the open file itself, unlinked or not
            target = os.readlink(f"{base}/{entry}")
        except OSError:
            continue
        if target.startswith("/"):
            target = target.removesuffix(DELETED)
            target = "/private" + target
        found.append((int(entry), st, target))
    return found


class LibprocModel:
    """The three libproc calls, over the real processes in `pids` (and ours)."""

    def __init__(self, pids: Iterable[int], refused: Iterable[int] = ()) -> None:
        self.pids = list(pids)
        self.refused = set(refused)
        self.calls = 0

    def library(self) -> Any:
        """These calls behind libproc's declared prototypes, as ctypes would make them."""
        return strict_library(self, "libproc", LIBPROC_PROTOTYPES)

    def _all(self) -> list[int]:
        # ours first, then one that refuses, then the others: a walk must go on past both
        return [os.getpid(), *self.refused, *self.pids]

    def proc_listallpids(self, buffer: Any, size: int) -> int:
        pids = self._all()
        if buffer is None:
            return len(pids)
        count = min(len(pids), size // ctypes.sizeof(ctypes.c_int))
        for i in range(count):
            buffer[i] = pids[i]
        return count

    def proc_pidinfo(self, pid: int, flavor: int, arg: int, buffer: Any, size: int) -> int:
        assert flavor == PROC_PIDLISTFDS and arg == 0
        self.calls += 1
        if pid in self.refused:
            ctypes.set_errno(errno.EPERM)
            return 0
        try:
            fds = _fds(pid)
        except FileNotFoundError:
            ctypes.set_errno(errno.ESRCH)
            return 0
        entries = [
            ProcFdInfo(fd, PROX_FDTYPE_VNODE if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(
                st.st_mode) else (PROX_FDTYPE_SOCKET if stat.S_ISSOCK(st.st_mode)
                                  else PROX_FDTYPE_PIPE))
            for fd, st, _path in fds
        ]  # fmt: skip
        need = len(entries) * ctypes.sizeof(ProcFdInfo)
        if buffer is None:
            return need
        count = min(len(entries), size // ctypes.sizeof(ProcFdInfo))
        for i in range(count):
            buffer[i] = entries[i]
        return count * ctypes.sizeof(ProcFdInfo)

    def proc_pidfdinfo(self, pid: int, fd: int, flavor: int, buffer: Any, size: int) -> int:
        assert flavor == PROC_PIDFDVNODEPATHINFO and size == ctypes.sizeof(VnodeFdInfoWithPath)
        info = buffer._obj  # what ctypes.byref() wraps
        assert isinstance(info, VnodeFdInfoWithPath)
        for found, st, path in _fds(pid):
            if found == fd:
                info.vip_vi.vi_stat.vst_dev = st.st_dev & 0xFFFFFFFF
                info.vip_vi.vi_stat.vst_ino = st.st_ino
                info.vip_vi.vi_stat.vst_mode = st.st_mode & 0xFFFF
                info.vip_path = path.encode()
                return size
        ctypes.set_errno(errno.EBADF)
        return 0


def psutil_double(pids: Iterable[int], refused: Iterable[int] = ()) -> FakePsutil:
    """psutil on macOS over the same real processes."""

    def paths_of(pid: int) -> Any:
        return lambda: [path for _fd, st, path in _fds(pid) if stat.S_ISREG(st.st_mode)]

    procs = [FakeProcess(pid, open_paths=paths_of(pid)) for pid in pids]
    procs += [FakeProcess(pid, denied={"open_files"}) for pid in refused]
    return FakePsutil("darwin", procs, stat=view_stat)
