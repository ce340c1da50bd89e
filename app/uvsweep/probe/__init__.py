"""The OS seam: what is true about each uv lock file right now, and the chooser of a backend.

A backend lists the dirs, looks at every matching entry (lstat, a non-blocking try-lock, the
OS's lock table and open-file table where it has them) and hands `classify` an `Observation`.
`classify` is pure, so the rules are the same, and tested the same, on every OS.
"""
# ruff: noqa: PLC0415 - imports inside functions: only the path that needs a module pays for it

from __future__ import annotations

import stat
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from enum import Enum

from uvsweep import system
from uvsweep.model import LockFile, LockState, LockUser, ScanError
from uvsweep.processes import ProcessTable


class LockProbe(Enum):
    """What a non-blocking shared try-lock said about a file."""

    FREE = "free"  # we got the lock (and dropped it at once): nobody holds it
    HELD = "held"  # somebody holds it exclusively
    UNREADABLE = "unreadable"  # we could not open it to ask
    NOT_PROBED = "not probed"  # not a regular file: never opened


class Observation:
    """Everything a backend saw about one entry, before it is given a state (mutable)."""

    def __init__(
        self,
        directory: str,
        name: str,
        mode: int,
        size: int,
        nlink: int,
        mtime: float,
        dev: int,
        ino: int,
        uid: int,
        owner: str,
        mine: bool,
        lock: LockProbe = LockProbe.NOT_PROBED,
        accessible: bool = True,
    ) -> None:
        self.directory, self.name, self.mode, self.size = directory, name, mode, size
        self.nlink, self.mtime, self.dev, self.ino = nlink, mtime, dev, ino
        self.uid, self.owner, self.mine, self.lock = uid, owner, mine, lock
        self.holders: list[LockUser] = []
        self.waiters: list[LockUser] = []
        self.openers: list[LockUser] = []
        self.accessible = accessible  # the current user could open it read-write, as uv does
        self.unreadable_reason = ""

    @property
    def path(self) -> str:
        """The entry's full path."""
        return entry_path(self.directory, self.name)


def entry_path(directory: str, name: str) -> str:
    """An entry's full path, in its dir's own spelling (`\\` for a Windows dir)."""
    sep = "\\" if "\\" in directory and "/" not in directory else "/"
    return directory.rstrip("/\\") + sep + name


def _kind_of(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


#: keeper subcommand -> the module its `-c` code imports (`remove.handoff`, `remove.winkeeper`)
_KEEPERS = {"_keeper": "uvsweep.remove.handoff", "_winkeeper": "uvsweep.remove.windows"}


def _is_keeper(holder: LockUser) -> bool:
    """Whether a holder is uvsweep's own keeper: `python -I -c CODE DIR _keeper ...` or, frozen,
    `uvsweep _keeper ...` (see `remove.handoff.keeper_argv`), one forked from a cleaner, or a
    Windows keeper (`... _winkeeper`, `remove.winkeeper.WinKeeper.argv`, run through
    `remove.windows.keeper_main`)."""
    if holder.name == "uvsweep-keeper":  # forked from a cleaner (`Keeper.fork`)
        return True
    argv = holder.cmdline or ()
    if len(argv) >= 6 and argv[1:3] == ("-I", "-c") and argv[5] in _KEEPERS:
        return _KEEPERS[argv[5]] in argv[3]
    program = argv[0].replace("\\", "/").rsplit("/", 1)[-1] if argv else ""
    return len(argv) >= 2 and argv[1] in _KEEPERS and "uvsweep" in program


def classify(obs: Observation) -> LockFile:
    """Give an observed entry exactly one state, with a short reason people can read."""
    holders = tuple(obs.holders)
    waiters = tuple(obs.waiters)
    blocks_uv = False
    # a keeper holds what the cleaner that started it took (the lock table names the cleaner)
    held = bool(holders) or obs.lock is LockProbe.HELD
    keepers = [h for h in (*holders, *obs.openers) if _is_keeper(h)] if held else []
    if stat.S_ISLNK(obs.mode):
        state, reason = LockState.SUSPICIOUS, "a symlink; uv never makes one"
    elif not stat.S_ISREG(obs.mode):
        state, reason = LockState.SUSPICIOUS, _kind_of(obs.mode)
    elif keepers:
        holders = tuple(keepers)
        state, reason = (
            LockState.HELD,
            (
                "held by a uvsweep keeper: a process opened it while it was being removed, and the"
                " lock at the name is kept until that process is done with the old file"
            ),
        )
    elif holders and not any(h.alive for h in holders) and obs.openers:
        holders = tuple(obs.openers)  # the taker exited; one of these inherited its lock
        state, reason = LockState.HELD, "locked by a process that inherited the lock"
    elif holders:
        state, reason = LockState.HELD, "locked by a running process"
    elif waiters:
        state, reason = LockState.WAITING, "a process waits for it; its holder is not visible"
    elif obs.lock is LockProbe.HELD:
        holders = (LockUser(pid=None),)
        state, reason = LockState.HELD, "locked by a process the OS does not show"
    elif obs.openers:
        state, reason = LockState.OPEN, "open in a process that has not locked it (yet)"
    elif obs.nlink > 1:
        state, reason = LockState.SUSPICIOUS, f"a hard link ({obs.nlink} links)"
    elif obs.size > 0:
        state, reason = LockState.SUSPICIOUS, f"not empty ({obs.size} bytes)"
    elif obs.lock is LockProbe.UNREADABLE:
        why = f": {obs.unreadable_reason}" if obs.unreadable_reason else ""
        state, reason = LockState.SUSPICIOUS, f"unreadable, its lock cannot be checked{why}"
    elif not obs.mine:
        blocks_uv = not obs.accessible
        effect = (
            "your uv cannot open it and runs without this lock"
            if blocks_uv
            else ("your uv can still lock it")
        )
        state, reason = LockState.FOREIGN, f"owned by {obs.owner}; {effect}"
    else:
        state, reason = LockState.ORPHANED, "nobody holds, waits for or has it open"
    return LockFile(
        path=obs.path,
        name=obs.name,
        state=state,
        mtime=obs.mtime,
        size=obs.size,
        uid=obs.uid,
        owner=obs.owner,
        holders=holders,
        waiters=waiters,
        openers=tuple(obs.openers),
        reason=reason,
        blocks_uv=blocks_uv,
        dev=obs.dev,
        ino=obs.ino,
    )


class ProbeResult:
    """One backend pass over a set of dirs."""

    def __init__(self, notes: list[str] | None = None) -> None:
        self.files: list[LockFile] = []
        self.errors: list[ScanError] = []
        self.hidden_processes = 0
        self.notes: list[str] = notes or []


class Backend(ABC):
    """Looks at the uv lock files in some dirs. One instance serves one scan.

    The options below are read by the backends that can honour them and ignored by the others.
    """

    #: Called with a file's path just before the probe opens it (the watcher uses it to tell its
    #: own opens from other processes' in the file system events).
    before_open: Callable[[str], None] | None = None
    #: Open a file only where the OS's lock table cannot decide alone (Linux): the watcher's
    #: full rescans, whose own opens would show among the events it reacts to.
    quiet: bool = False
    #: Read the OS's lock table only when a file's try-lock found it held or could not open it,
    #: or some process has it open (POSIX): the watcher's leading probe. Reading Linux's
    #: `/proc/locks` waits for an RCU grace period (5-25 ms) unless it was read a moment ago,
    #: and for a file nobody else has open the try-lock decides alone (uv only takes exclusive
    #: locks); what the table could add then (a shared or POSIX lock of a process we cannot
    #: see, a waiter in the instant its holder left) the full rescan that follows reads.
    lazy_table: bool = False

    @abstractmethod
    def probe(self, dirs: Sequence[str]) -> ProbeResult:
        """Observe and classify every uv lock file directly inside `dirs`."""

    def probe_files(self, files: Sequence[tuple[str, str]]) -> ProbeResult:
        """Observe and classify only the named entries, each given as (dir, name); a name that
        is gone or not a uv lock name is left out. This default probes the whole dirs and
        keeps the named files; a backend that can look at one file alone does so."""
        result = self.probe(list(dict.fromkeys(directory for directory, _ in files)))
        paths = {entry_path(directory, name) for directory, name in files}
        result.files = [item for item in result.files if item.path in paths]
        return result


def for_platform(platform: str = sys.platform, processes: ProcessTable | None = None) -> Backend:
    """The backend for this OS: Linux, Windows, or the macOS/BSD one for any other Unix."""
    if system.is_linux(platform):
        from uvsweep.probe.linux import LinuxBackend

        return LinuxBackend(processes)
    if system.is_windows(platform):
        from uvsweep.probe.windows import WindowsBackend

        return WindowsBackend(processes=processes)
    from uvsweep.probe.darwin import DarwinBackend

    return DarwinBackend(processes)
