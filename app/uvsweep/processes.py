"""Processes as one scan sees them: names, users, command lines, and which ones are uv.

Linux reads `/proc` directly (cheap, and keeps psutil's import cost off the scan path); other OSes
use psutil. Whatever the OS hides comes back as None, which people see as "unknown", never "none".
"""
# ruff: noqa: PLC0415 - imports inside functions: only the path that needs a module pays for it

from __future__ import annotations

import os
import sys

from uvsweep import system, uvphase
from uvsweep.model import LockUser, ProcessInfo
from uvsweep.uvphase import is_uv_name

TYPE_CHECKING = False  # typing costs ~3 ms to import; annotations only need it for mypy
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "OwnerNames", "ProcessInfo", "ProcessTable", "is_uv_name", "is_uv_process", "user_name",
]  # fmt: skip


def is_uv_process(info: ProcessInfo) -> bool:
    """Whether this is a uv process by its name, its argv[0] or `python -m uv` (the table also
    knows its executable and the cache locks it holds: `ProcessTable.uv_processes`)."""
    if info.name and is_uv_name(info.name):
        return True
    if info.cmdline:
        return is_uv_name(uvphase.basename(info.cmdline[0])) or uvphase.is_python_m_uv(info.cmdline)
    return False


def user_name(uid: int | None) -> str | None:
    """The login name for `uid`, its number when it has none, None when unknown."""
    if uid is None:
        return None
    try:
        import pwd  # Unix only

        return pwd.getpwuid(uid).pw_name
    except (ImportError, KeyError):
        return str(uid)


class OwnerNames:
    """A file owner's name for people (the login name, else the uid's number), each uid looked
    up once: the scanner's and the remover's, one rule."""

    def __init__(self) -> None:
        self._names: dict[int, str] = {}

    def __call__(self, uid: int) -> str:
        if uid not in self._names:
            self._names[uid] = user_name(uid) or str(uid)
        return self._names[uid]


def _read(path: str) -> bytes | None:
    """A whole small file (a `/proc` one); None if it cannot be read. Plain `os` calls: a scan
    reads a few hundred of these, and a file object costs three more syscalls each."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


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


_BOOT_TIMES: dict[str, float | None] = {}


def _boot_time(proc: str) -> float | None:
    if proc not in _BOOT_TIMES:  # it never changes: read it once
        raw = _read(f"{proc}/stat") or b""
        found = [float(line.split()[1]) for line in raw.splitlines() if line.startswith(b"btime ")]
        _BOOT_TIMES[proc] = found[0] if found else None
    return _BOOT_TIMES[proc]


#: `PF_KTHREAD` in the flags field of `/proc/<pid>/stat` (include/linux/sched.h).
_PF_KTHREAD = 0x00200000


def _name_and_parent(pid: int, proc: str) -> tuple[str, int, str] | None:
    """(name, parent pid, state letter) from one read of `/proc/<pid>/stat`; the state of a
    kernel thread is given as "K" (it is never uv, and has no command line to read)."""
    raw = _read(f"{proc}/{pid}/stat")
    if not raw:
        return None
    left, right = raw.find(b"("), raw.rfind(b")")
    fields = raw[right + 2 :].split()
    try:
        state = "K" if int(fields[6]) & _PF_KTHREAD else chr(fields[0][0])
        return raw[left + 1 : right].decode("utf-8", "replace"), int(fields[1]), state
    except (IndexError, ValueError):
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
    import psutil  # only off Linux, where /proc is not there

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
        self._linux = system.is_linux(platform) and os.path.isdir(proc)
        self._proc = proc
        self._cache: dict[int, ProcessInfo | None] = {}
        self._pids: list[int] | None = None
        self._exes: dict[int, str | None] = {}
        self._parents: dict[int, list[int]] | None = None  # ppid -> children, built when needed
        # pid -> (name, ppid, state) as the first pass of uv_processes read it (Linux)
        self._stats: dict[int, tuple[str, int, str] | None] | None = {} if self._linux else None
        self._locks: dict[int, list[tuple[bool, bool, int]]] | None = None
        self._cache_inodes: dict[str, int | None] = {}
        self.denied: set[int] = set()  # off Linux: pids whose details the OS refused us

    def pids(self) -> list[int]:
        """Every pid visible to us."""
        if self._pids is None:
            if self._linux:
                self._pids = [int(entry) for entry in os.listdir(self._proc) if entry.isdigit()]
            else:
                import psutil

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
        import psutil

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

    def holder(self, pid: int | None) -> LockUser:
        """`pid` as a LockUser; a pid we cannot see (0, -1) stays unknown, an exited one says so."""
        if not pid or pid < 0:  # 0: another PID namespace; -1: an OFD lock, which has no pid
            return LockUser(pid=None)
        found = self.info(pid)
        return found.holder() if found else LockUser(pid=pid, alive=False)

    def uv_processes(self, exclude: frozenset[int] = frozenset()) -> list[ProcessInfo]:
        """Live uv processes of any user (by name, argv[0], executable, `python -m uv`, or a lock
        on a uv cache's `.lock`), except the pids in `exclude`, each with its phase."""
        found = []
        candidates = [pid for pid in self.pids() if pid not in exclude and self._named_uv(pid)]
        skip = set(candidates) | set(exclude)
        candidates += sorted(self.cache_lock_pids(skip))
        for pid in candidates:
            info = self.info(pid)
            if info is not None and self.alive(pid):
                found.append(info)
        uv_pids = {info.pid for info in found}
        return [self._judged(info, uv_pids) for info in found]

    def _named_uv(self, pid: int) -> bool:
        """Whether `pid` is uv by its name, argv[0], executable or `python -m uv`."""
        if self._linux:
            # one read of stat gives the name, the parent (for the phase: `children`) and the
            # state; zombies and kernel threads are never uv
            stat = _name_and_parent(pid, self._proc)
            if self._stats is not None:
                self._stats[pid] = stat
            if stat is None or stat[2] in ("Z", "X", "K"):
                return False
            if is_uv_name(stat[0]):
                return True
            exe = self.exe(pid)
            if exe is not None and is_uv_name(uvphase.basename(exe)):
                return True
            raw = _read(f"{self._proc}/{pid}/cmdline") or b""
            argv0 = raw.split(b"\0", 1)[0].decode("utf-8", "replace")
            if argv0 and is_uv_name(uvphase.basename(argv0)):
                return True
            if b"\0-m\0uv\0" in raw or raw.endswith(b"\0-m\0uv"):
                info = self.info(pid)
                return info is not None and is_uv_process(info)
            return False
        info = self.info(pid)
        if info is None:
            return False
        if is_uv_process(info):
            return True
        exe = self.exe(pid)
        return exe is not None and is_uv_name(uvphase.basename(exe))

    def exe(self, pid: int) -> str | None:
        """The path of `pid`'s executable; None when it is hidden (another user's, without root)."""
        if pid not in self._exes:
            if self._linux:
                try:
                    path: str | None = os.readlink(f"{self._proc}/{pid}/exe")
                except OSError:
                    path = None
                if path and path.endswith(" (deleted)"):
                    path = path[: -len(" (deleted)")]  # an upgraded uv still running
            else:
                path = self._psutil_call(pid, "exe")
            self._exes[pid] = path or None
        return self._exes[pid]

    def environ(self, pid: int) -> dict[str, str] | None:
        """`pid`'s environment; None when it is hidden."""
        if self._linux:
            raw = _read(f"{self._proc}/{pid}/environ")
            if raw is None:
                return None
            pairs = (item.partition(b"=") for item in raw.split(b"\0") if item)
            return {
                key.decode("utf-8", "surrogateescape"): value.decode("utf-8", "surrogateescape")
                for key, _, value in pairs
            }
        found = self._psutil_call(pid, "environ")
        return dict(found) if found is not None else None

    def children(self, pid: int) -> list[int]:
        """The live (not zombie) children of `pid` that we can see."""
        if not self._linux:
            import psutil

            try:
                kids = [child.pid for child in psutil.Process(pid).children()]
            except psutil.Error:
                return []
            return [kid for kid in kids if self.alive(kid)]
        if self._parents is None:
            self._parents = {}
            stats = self._stats or {}  # what the first pass of uv_processes read
            for other in self.pids():
                found = stats[other] if other in stats else _name_and_parent(other, self._proc)
                if found is not None and found[2] not in ("Z", "X"):
                    self._parents.setdefault(found[1], []).append(other)
        return list(self._parents.get(pid, ()))

    def locks(self) -> dict[int, list[tuple[bool, bool, int]]] | None:
        """Linux: every visible lock in `/proc/locks` by pid, as (exclusive, waiting, inode);
        None where there is no such table (other OSes) or it cannot be read."""
        if not self._linux:
            return None
        if self._locks is None:
            raw = _read(f"{self._proc}/locks")
            if raw is None:
                return None
            self._locks = _parse_locks(raw.decode("latin-1"))
        return self._locks

    def cache_lock_pids(self, skip: set[int] | frozenset[int] = frozenset()) -> set[int]:
        """Pids (but those in `skip`) that hold or wait for an flock on a uv cache's `.lock` (any
        uv >= 0.8.20 holds a shared one for its whole run: `Cache::init()`), whatever the
        executable is called."""
        table = self.locks()
        if not table:
            return set()
        found = set()
        for pid, entries in table.items():
            if pid <= 0 or pid in skip:
                continue
            inodes = {inode for _exclusive, _waiting, inode in entries}
            if inodes & self._cache_lock_inodes(pid):
                found.add(pid)
        return found

    def _cache_lock_inodes(self, pid: int) -> set[int]:
        """Inodes of the `.lock` of every cache dir `pid` could use, per uv's rules."""
        inodes = set()
        for directory in _cache_dirs(self, pid):
            if directory not in self._cache_inodes:
                try:
                    self._cache_inodes[directory] = os.stat(os.path.join(directory, ".lock")).st_ino
                except OSError:
                    self._cache_inodes[directory] = None
            inode = self._cache_inodes[directory]
            if inode is not None:
                inodes.add(inode)
        return inodes

    def _judged(self, info: ProcessInfo, uv_pids: set[int]) -> ProcessInfo:
        """`info` with its phase (`uvphase.phase`)."""
        argv = info.cmdline
        wrapper = (
            bool(argv)
            and (uvphase.is_wrapper_name(uvphase.basename(argv[0])) or uvphase.is_python_m_uv(argv))
            if argv
            else False
        )
        kids = []
        own_exe = self.exe(info.pid)
        for pid in self.children(info.pid):
            child = self.info(pid)
            child_argv = child.cmdline if child else None
            forked = child_argv == argv or (own_exe is not None and self.exe(pid) == own_exe)
            kids.append(uvphase.Child(pid, child_argv, is_uv=pid in uv_pids, forked=forked))
        table = self.locks()
        locks = None
        if table is not None:
            entries = table.get(info.pid, [])
            locks = (any(w for _e, w, _i in entries), any(e and not w for e, w, _i in entries))
        phase, reason = uvphase.phase(argv, wrapper=wrapper, children=kids, locks=locks)
        return info.replace(phase=phase, phase_reason=reason)  # type: ignore[return-value]

    def _psutil_call(self, pid: int, method: str) -> Any:
        import psutil

        try:
            return getattr(psutil.Process(pid), method)()
        except psutil.AccessDenied:
            self.denied.add(pid)
            return None
        except psutil.Error:
            return None

    def alive(self, pid: int) -> bool:
        """Whether `pid` exists and is not a zombie (exited, not yet reaped by its parent)."""
        if self._linux:
            found = _linux_stat(pid, self._proc)
            return found is not None and found[2] not in ("Z", "X")
        import psutil

        try:
            return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False


def _parse_locks(text: str) -> dict[int, list[tuple[bool, bool, int]]]:
    """`/proc/locks` -> {pid: [(exclusive, waiting, inode)]}; lines it cannot read are skipped.

    (`probe.linux.parse_locks` reads the same table by inode for the files; this one only needs
    who holds what, and sits below the probe layer.)
    """
    found: dict[int, list[tuple[bool, bool, int]]] = {}
    for line in text.splitlines():
        parts = line.split()
        waiting = len(parts) > 1 and parts[1] == "->"
        if waiting:
            del parts[1]
        if len(parts) < 2 or parts[1] != "FLOCK":
            continue  # uv locks with flock(); POSIX and OFD locks are other programs'
        try:
            pid = int(parts[4])
            inode = int(parts[5].rsplit(":", 1)[1])
        except (IndexError, ValueError):
            continue
        found.setdefault(pid, []).append((parts[3] == "WRITE", waiting, inode))
    return found


def _cache_dirs(table: ProcessTable, pid: int) -> list[str]:
    """The cache dirs `pid` may use, per uv's `Cache::from_settings()` (`crates/uv-cache/src/
    cli.rs`): `--cache-dir`, `UV_CACHE_DIR`, the XDG cache dir (`$XDG_CACHE_HOME/uv`, else
    `~/.cache/uv`), macOS's legacy `~/Library/Caches/uv`, `.uv_cache` in its working dir; from
    its command line, its environment where we may read it, and its user's home dir. Ours too."""
    info = table.info(pid)
    env = table.environ(pid) or {}
    cwd = info.cwd if info else None
    dirs: list[str] = []
    argv = info.cmdline if info and info.cmdline else ()
    for index, word in enumerate(argv):
        if word == "--cache-dir" and index + 1 < len(argv):
            dirs.append(argv[index + 1])
        elif word.startswith("--cache-dir="):
            dirs.append(word.split("=", 1)[1])
    homes = [env.get("HOME")]
    if info is not None and info.uid is not None:
        try:
            import pwd  # Unix only

            homes.append(pwd.getpwuid(info.uid).pw_dir)
        except (ImportError, KeyError):
            pass
    dirs += [env.get("UV_CACHE_DIR") or "", os.environ.get("UV_CACHE_DIR", "")]
    for xdg in (env.get("XDG_CACHE_HOME"), os.environ.get("XDG_CACHE_HOME")):
        if xdg:
            dirs.append(os.path.join(xdg, "uv"))
    for home in [*homes, os.path.expanduser("~")]:
        if home:
            dirs += [os.path.join(home, ".cache", "uv"), os.path.join(home, "Library/Caches/uv")]
    dirs.append(".uv_cache")
    absolute = []
    for directory in dirs:
        if not directory or (not os.path.isabs(directory) and not cwd):
            continue
        path = os.path.join(cwd or "/", directory)  # an absolute `directory` stays as it is
        if path not in absolute:
            absolute.append(path)
    return absolute
