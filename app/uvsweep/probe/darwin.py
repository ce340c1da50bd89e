"""macOS (and other Unixes without `/proc/locks`): flock try-lock, and who has which file open.

There is no lock table: a held file's holder and any waiters are "unknown". Open files are known
by device and inode, never by path: the kernel reports resolved vnode paths (`/private/var/...`
where `$TMPDIR` says `/var/...`), and psutil drops a path that no longer exists, so an unlinked
file's users would be invisible. On macOS the list comes from libproc (`proc_pidinfo` with
`PROC_PIDLISTFDS`, then `proc_pidfdinfo` with `PROC_PIDFDVNODEPATHINFO` for each vnode fd, which
gives `vst_dev`/`vst_ino` even for an unlinked file); elsewhere from psutil's open files,
re-stat'ed. A process that refuses is counted as hidden, never taken to mean "nobody".
"""
# ruff: noqa: PLC0415 - imports inside functions: only the path that needs a module pays for it

from __future__ import annotations

import ctypes
import os
from collections.abc import Callable, Iterable, Iterator, Sequence

from uvsweep.naming import is_lock_name
from uvsweep.probe import LockProbe, Observation, ProbeResult
from uvsweep.probe.posix import FileKey, PosixBackend
from uvsweep.processes import ProcessTable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: (dev, ino, path as the kernel reports it) of one open file
OpenFile = tuple[int, int, str]
#: (pid, its open files, or None when it would not say) for every process: the seam tests replace.
OpenFilesLister = Callable[[], Iterable[tuple[int, "list[OpenFile] | None"]]]

PROC_PIDLISTFDS = 1
PROC_PIDFDVNODEPATHINFO = 2
PROX_FDTYPE_VNODE = 1
ESRCH = 3  # no such process (the same number on macOS and Linux)
MAXPATHLEN = 1024
DEV_MASK = 0xFFFFFFFF  # vst_dev is a uint32_t; os.stat's st_dev is a signed dev_t on macOS


def same_file(key: FileKey, dev: int, ino: int) -> bool:
    """Whether an open file's (dev, ino) is `key` (an lstat's), whatever the sign of dev."""
    return (key[0] & DEV_MASK, key[1]) == (dev & DEV_MASK, ino)


# xnu bsd/sys/proc_info.h, field for field
class ProcFdInfo(ctypes.Structure):
    """`struct proc_fdinfo`."""

    _fields_ = (("proc_fd", ctypes.c_int32), ("proc_fdtype", ctypes.c_uint32))


class ProcFileInfo(ctypes.Structure):
    """`struct proc_fileinfo`."""

    _fields_ = (
        ("fi_openflags", ctypes.c_uint32),
        ("fi_status", ctypes.c_uint32),
        ("fi_offset", ctypes.c_int64),
        ("fi_type", ctypes.c_int32),
        ("fi_guardflags", ctypes.c_uint32),
    )


class VinfoStat(ctypes.Structure):
    """`struct vinfo_stat`."""

    _fields_ = (
        ("vst_dev", ctypes.c_uint32),
        ("vst_mode", ctypes.c_uint16),
        ("vst_nlink", ctypes.c_uint16),
        ("vst_ino", ctypes.c_uint64),
        ("vst_uid", ctypes.c_uint32),
        ("vst_gid", ctypes.c_uint32),
        ("vst_times", ctypes.c_int64 * 8),  # a/m/c/birth time, each with its nsec
        ("vst_size", ctypes.c_int64),
        ("vst_blocks", ctypes.c_int64),
        ("vst_blksize", ctypes.c_int32),
        ("vst_flags", ctypes.c_uint32),
        ("vst_gen", ctypes.c_uint32),
        ("vst_rdev", ctypes.c_uint32),
        ("vst_qspare", ctypes.c_int64 * 2),
    )


class VnodeInfo(ctypes.Structure):
    """`struct vnode_info`."""

    _fields_ = (
        ("vi_stat", VinfoStat),
        ("vi_type", ctypes.c_int),
        ("vi_pad", ctypes.c_int),
        ("vi_fsid", ctypes.c_int32 * 2),
    )


class VnodeFdInfoWithPath(ctypes.Structure):
    """`struct vnode_fdinfowithpath`: what `PROC_PIDFDVNODEPATHINFO` fills in."""

    _fields_ = (
        ("pfi", ProcFileInfo),
        ("vip_vi", VnodeInfo),
        ("vip_path", ctypes.c_char * MAXPATHLEN),
    )


#: function -> (restype, argtypes), from <libproc.h>
LIBPROC_PROTOTYPES: dict[str, tuple[Any, tuple[Any, ...]]] = {
    "proc_listallpids": (ctypes.c_int, (ctypes.c_void_p, ctypes.c_int)),
    "proc_pidinfo": (
        ctypes.c_int,
        (ctypes.c_int, ctypes.c_int, ctypes.c_uint64, ctypes.c_void_p, ctypes.c_int),
    ),
    "proc_pidfdinfo": (
        ctypes.c_int,
        (ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_void_p, ctypes.c_int),
    ),
}


def load_libproc() -> Any:
    """libproc's functions (in libSystem), prototypes declared; OSError where there is none."""
    from uvsweep.win32 import Library  # the declare-everything wrapper

    dll = ctypes.CDLL("/usr/lib/libSystem.B.dylib", use_errno=True)
    return Library(dll, "libproc", LIBPROC_PROTOTYPES)


class Libproc:
    """Every process's open vnodes through libproc; `lib` is the seam tests replace."""

    def __init__(self, lib: Any = None) -> None:
        self.lib = lib if lib is not None else load_libproc()

    def pids(self) -> list[int]:
        """Every pid (the kernel's own list)."""
        size = max(self.lib.proc_listallpids(None, 0), 0) + 64
        buffer = (ctypes.c_int * size)()
        count = self.lib.proc_listallpids(buffer, ctypes.sizeof(buffer))
        return [pid for pid in buffer[: max(count, 0)] if pid > 0]

    def fds(self, pid: int) -> list[int] | None:
        """The pid's vnode fds; None when it would not say (another user's), [] when gone."""
        ctypes.set_errno(0)  # 0 fds and a refusal both return 0: errno tells them apart
        need = self.lib.proc_pidinfo(pid, PROC_PIDLISTFDS, 0, None, 0)
        if need <= 0:
            return None if ctypes.get_errno() not in (0, ESRCH) else []
        count = need // ctypes.sizeof(ProcFdInfo) + 16  # room for fds opened meanwhile
        buffer = (ProcFdInfo * count)()
        ctypes.set_errno(0)
        got = self.lib.proc_pidinfo(pid, PROC_PIDLISTFDS, 0, buffer, ctypes.sizeof(buffer))
        if got <= 0:
            return None if ctypes.get_errno() not in (0, ESRCH) else []
        entries = buffer[: got // ctypes.sizeof(ProcFdInfo)]
        return [e.proc_fd for e in entries if e.proc_fdtype == PROX_FDTYPE_VNODE]

    def vnode(self, pid: int, fd: int) -> OpenFile | None:
        """(dev, ino, path) of one vnode fd; None if it was closed meanwhile."""
        info = VnodeFdInfoWithPath()
        size = ctypes.sizeof(info)
        got = self.lib.proc_pidfdinfo(pid, fd, PROC_PIDFDVNODEPATHINFO, ctypes.byref(info), size)
        if got < size:
            return None
        stat = info.vip_vi.vi_stat
        return stat.vst_dev, stat.vst_ino, info.vip_path.decode("utf-8", "surrogateescape")

    def open_files(
        self, pids: Sequence[int] | None = None
    ) -> Iterator[tuple[int, list[OpenFile] | None]]:
        """See `OpenFilesLister`."""
        for pid in self.pids() if pids is None else pids:
            fds = self.fds(pid)
            if fds is None:
                yield pid, None
                continue
            files = [found for fd in fds if (found := self.vnode(pid, fd)) is not None]
            yield pid, files


def psutil_open_files(
    stat: Callable[[str], os.stat_result] = os.stat,
) -> Iterator[tuple[int, list[OpenFile] | None]]:
    """Every process's open uv lock files through psutil, each path re-stat'ed for its inode.

    psutil gives paths only, and only those that still exist: a user of an unlinked file is not
    seen (hence libproc on macOS). Only lock names are stat'ed.
    """
    import psutil  # only where there is no /proc

    for proc in psutil.process_iter():
        try:
            paths = [item.path for item in proc.open_files()]
        except psutil.AccessDenied:
            yield proc.pid, None
            continue
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        files: list[OpenFile] = []
        for path in paths:
            if not is_lock_name(path.rsplit("/", 1)[-1]):
                continue
            try:
                st = stat(path)
            except OSError:
                continue
            files.append((st.st_dev, st.st_ino, path))
        yield proc.pid, files


def default_open_files() -> tuple[OpenFilesLister, str]:
    """libproc where it exists (macOS), else psutil; and a note when unlinked files are unseen."""
    try:
        libproc = Libproc()
    except (OSError, AttributeError):
        return psutil_open_files, (
            "this OS does not show who has an unlinked file open: a process that opened a file"
            " during its removal is not seen"
        )
    return libproc.open_files, ""


def users_of(
    open_files: OpenFilesLister, keys: Iterable[FileKey], exclude: int | None = None
) -> tuple[dict[FileKey, list[int]], int]:
    """({key: pids that have that file open}, processes that would not say), in one pass."""
    by_key = {(dev & DEV_MASK, ino): (dev, ino) for dev, ino in keys}
    found: dict[FileKey, list[int]] = {}
    hidden = 0
    for pid, files in open_files():
        if pid == exclude:
            continue
        if files is None:
            hidden += 1
            continue
        for dev, ino, _path in files:
            key = by_key.get((dev & DEV_MASK, ino))
            if key is not None and pid not in found.get(key, ()):
                found.setdefault(key, []).append(pid)
    return found, hidden


class DarwinBackend(PosixBackend):
    """The macOS backend; also used for the BSDs."""

    def __init__(
        self,
        processes: ProcessTable | None = None,
        open_files: OpenFilesLister | None = None,
    ) -> None:
        super().__init__(processes)
        self.note = ""
        if open_files is None:
            open_files, self.note = default_open_files()
        self.open_files = open_files

    def load_lock_table(self, result: ProbeResult) -> None:
        """See the base class: there is none, so say so once."""
        result.notes.append("this OS does not show lock holders or waiters: they are unknown")

    def lock_entries(self, obs: Observation, probe: LockProbe) -> None:
        """See the base class: nothing to add; a failed try-lock shows as an unknown holder."""

    def find_openers(
        self, wanted: dict[FileKey, Observation], result: ProbeResult
    ) -> dict[FileKey, list[int]]:
        """One pass over every process's open files, matched by device and inode."""
        found, hidden = users_of(self.open_files, wanted, exclude=os.getpid())
        result.hidden_processes += hidden
        return found
