"""Processes as one scan sees them: names, users, command lines, and which ones are uv.

Linux reads `/proc` directly (cheap, and keeps psutil's import cost off the scan path); other OSes
use psutil. Whatever the OS hides comes back as None, which people see as "unknown", never "none".
"""

from __future__ import annotations

import os
import re
import sys

from uvsweep.model import Holder, Record

TYPE_CHECKING = False  # typing costs ~3 ms to import; annotations only need it for mypy
if TYPE_CHECKING:
    from typing import Any

_UV_NAME_RE = re.compile(r"(?:uv|uvx|uvw)(?:\.exe)?|uv@\d[0-9A-Za-z.+-]*", re.IGNORECASE)


def is_uv_name(name: str) -> bool:
    """True for uv's executables: `uv`, `uvx`, `uvw`, `uv@X.Y.Z` (and `.exe` forms)."""
    return _UV_NAME_RE.fullmatch(name) is not None


class ProcessInfo(Record):
    """What could be learned about one process; None where the OS would not say."""

    __slots__ = ("cmdline", "cwd", "name", "pid", "started", "uid", "user")
    pid: int
    name: str | None
    uid: int | None
    user: str | None
    cmdline: tuple[str, ...] | None
    cwd: str | None
    started: float | None  # start time, seconds since the epoch

    def __init__(
        self,
        pid: int,
        name: str | None,
        uid: int | None,
        user: str | None,
        cmdline: tuple[str, ...] | None,
        cwd: str | None,
        started: float | None = None,
    ) -> None:
        self._init(
            pid=pid, name=name, uid=uid, user=user, cmdline=cmdline, cwd=cwd, started=started
        )

    @property
    def is_uv(self) -> bool:
        """Whether this is a uv process (by its name or its argv[0])."""
        if self.name and is_uv_name(self.name):
            return True
        if self.cmdline:
            argv0 = self.cmdline[0].replace("\\", "/").rsplit("/", 1)[-1]
            return is_uv_name(argv0)
        return False

    def holder(self) -> Holder:
        """This process as a lock holder, waiter or opener."""
        return Holder(pid=self.pid, name=self.name, user=self.user, cmdline=self.cmdline)


def user_name(uid: int | None) -> str | None:
    """The login name for `uid`, its number when it has none, None when unknown."""
    if uid is None:
        return None
    try:
        import pwd  # noqa: PLC0415 - Unix only

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return str(uid)


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError:
        return None


def _linux_stat(pid: int, proc: str) -> tuple[int, int, str] | None:
    """(parent pid, start time in clock ticks after boot, state letter) from `/proc/<pid>/stat`."""
    raw = _read(f"{proc}/{pid}/stat")
    if not raw:
        return None
    # the name (field 2) may hold spaces and parens: the fields we want follow the last ')'
    fields = raw[raw.rfind(b")") + 2 :].split()
    try:
        return int(fields[1]), int(fields[19]), fields[0].decode("ascii", "replace")
    except (IndexError, ValueError):
        return None


def _boot_time(proc: str) -> float | None:
    raw = _read(f"{proc}/stat") or b""
    for line in raw.splitlines():
        if line.startswith(b"btime "):
            return float(line.split()[1])
    return None


def _linux_info(pid: int, proc: str = "/proc") -> ProcessInfo | None:
    base = f"{proc}/{pid}"
    try:
        uid: int | None = os.stat(base).st_uid
    except OSError:
        return None  # gone
    comm = _read(f"{base}/comm")
    raw_cmdline = _read(f"{base}/cmdline")
    cmdline = None
    if raw_cmdline:
        parts = raw_cmdline.rstrip(b"\0").split(b"\0")
        cmdline = tuple(part.decode("utf-8", "surrogateescape") for part in parts)
    try:
        cwd: str | None = os.readlink(f"{base}/cwd")
    except OSError:
        cwd = None
    name = comm.decode("utf-8", "surrogateescape").strip() if comm else None
    started = None
    found = _linux_stat(pid, proc)
    boot = _boot_time(proc) if found else None
    if found and boot is not None:
        started = boot + found[1] / os.sysconf("SC_CLK_TCK")
    return ProcessInfo(pid, name or None, uid, user_name(uid), cmdline, cwd, started)


def _psutil_info(pid: int) -> ProcessInfo | None:
    import psutil  # noqa: PLC0415 - only off Linux, where /proc is not there

    wanted = ["name", "username", "cmdline", "cwd", "create_time"]
    if hasattr(psutil.Process, "uids"):  # POSIX only: as_dict rejects the name elsewhere
        wanted.append("uids")
    try:
        proc = psutil.Process(pid)
        values: dict[str, Any] = proc.as_dict(wanted)
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return None
    except psutil.AccessDenied:
        return ProcessInfo(pid, None, None, None, None, None)
    uids = values.get("uids")
    cmdline = values.get("cmdline")
    return ProcessInfo(
        pid=pid,
        name=values.get("name"),
        uid=uids.real if uids is not None else None,
        user=values.get("username"),
        cmdline=tuple(cmdline) if cmdline else None,
        cwd=values.get("cwd"),
        started=values.get("create_time"),
    )


class ProcessTable:
    """A lazily filled view of the processes on this machine, for the length of one scan."""

    def __init__(self, platform: str = sys.platform, proc: str = "/proc") -> None:
        self._linux = platform.startswith("linux") and os.path.isdir(proc)
        self._proc = proc
        self._cache: dict[int, ProcessInfo | None] = {}
        self._pids: list[int] | None = None

    def pids(self) -> list[int]:
        """Every pid visible to us."""
        if self._pids is None:
            if self._linux:
                self._pids = [int(entry) for entry in os.listdir(self._proc) if entry.isdigit()]
            else:
                import psutil  # noqa: PLC0415

                self._pids = psutil.pids()
        return self._pids

    def info(self, pid: int) -> ProcessInfo | None:
        """What we can learn about `pid`; None when it no longer exists."""
        if pid not in self._cache:
            self._cache[pid] = _linux_info(pid, self._proc) if self._linux else _psutil_info(pid)
        return self._cache[pid]

    def parent(self, pid: int) -> int | None:
        """The parent of `pid`; None when it is gone or hidden."""
        if self._linux:
            found = _linux_stat(pid, self._proc)
            return found[0] if found else None
        import psutil  # noqa: PLC0415

        try:
            return psutil.Process(pid).ppid()
        except psutil.Error:
            return None

    def ancestors(self, pid: int | None = None) -> frozenset[int]:
        """`pid` (default: this process) and every process above it."""
        found: set[int] = set()
        current: int | None = os.getpid() if pid is None else pid
        while current and current not in found:
            found.add(current)
            current = self.parent(current)
        return frozenset(found)

    def holder(self, pid: int | None) -> Holder:
        """`pid` as a Holder; a pid we cannot see (0, -1) stays unknown, an exited one says so."""
        if not pid or pid < 0:  # 0: another PID namespace; -1: an OFD lock, which has no pid
            return Holder(pid=None)
        found = self.info(pid)
        return found.holder() if found else Holder(pid=pid, alive=False)

    def uv_processes(self, exclude: frozenset[int] = frozenset()) -> list[ProcessInfo]:
        """Live uv processes of any user, except the pids in `exclude`."""
        found = []
        for pid in self.pids():
            if pid in exclude:
                continue
            if self._linux:
                comm = _read(f"{self._proc}/{pid}/comm")
                if comm is None or not is_uv_name(comm.decode("utf-8", "replace").strip()):
                    continue
            info = self.info(pid)
            if info is not None and info.is_uv and self.alive(pid):
                found.append(info)
        return found

    def alive(self, pid: int) -> bool:
        """Whether `pid` exists and is not a zombie (exited, not yet reaped by its parent)."""
        if self._linux:
            found = _linux_stat(pid, self._proc)
            return found is not None and found[2] not in ("Z", "X")
        import psutil  # noqa: PLC0415

        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False
