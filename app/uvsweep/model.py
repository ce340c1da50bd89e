"""The records every layer shares: lock states, holders, labels, files, snapshots (pure, frozen)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum


class LockState(str, Enum):
    """What is true about one uv lock file right now; users see these words everywhere."""

    HELD = "held"  # a process holds the lock (its waiters, if any, are listed too)
    WAITING = "waiting"  # a process waits for the lock but no holder is visible
    OPEN = "open"  # not locked, but some process has it open (uv between create and lock)
    ORPHANED = "orphaned"  # nobody holds, waits for or has it open; ours; the only removable state
    FOREIGN = "foreign"  # like orphaned, but owned by another user
    SUSPICIOUS = "suspicious"  # symlink, hard link, not a regular file, not empty, or unreadable

    def __str__(self) -> str:
        return self.value


#: Display order: what needs attention first.
STATE_ORDER: tuple[LockState, ...] = (
    LockState.ORPHANED,
    LockState.FOREIGN,
    LockState.SUSPICIOUS,
    LockState.HELD,
    LockState.WAITING,
    LockState.OPEN,
)


class LabelKind(str, Enum):
    """The kind of environment a lock file guards."""

    PYTHON = "python"  # a system or other non-venv interpreter
    PROJECT = "project"  # a project or workspace root
    SCRIPT = "script"  # a PEP 723 script
    BUILD = "build"  # a source tree built by uv's setuptools frontend

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Label:
    """The environment a lock file guards, found by hashing a candidate path to the same name."""

    kind: LabelKind
    path: str


@dataclass(frozen=True)
class Holder:
    """A process that holds, waits for or has open a lock file. None means the OS hid it."""

    pid: int | None
    name: str | None = None
    user: str | None = None
    cmdline: tuple[str, ...] | None = None

    def describe(self) -> str:
        """`1234 uv (alice)`, with `unknown` for whatever the OS hides."""
        pid = "unknown" if self.pid is None else str(self.pid)
        name = self.name or "unknown"
        user = self.user or "unknown"
        return f"{pid} {name} ({user})"


@dataclass(frozen=True)
class LockFile:
    """One uv lock file as the scan saw it."""

    path: str
    name: str
    state: LockState
    mtime: float
    size: int
    uid: int
    owner: str
    label: Label | None = None
    holders: tuple[Holder, ...] = ()
    waiters: tuple[Holder, ...] = ()
    openers: tuple[Holder, ...] = ()
    reason: str = ""  # why the state is what it is, in a few words, for people
    blocks_uv: bool = False  # foreign only: the current user's uv cannot open it to lock
    dev: int = 0
    ino: int = 0

    @property
    def directory(self) -> str:
        """The temp dir the file lives in."""
        return self.path[: -len(self.name) - 1] or self.path[:1]


@dataclass(frozen=True)
class ScanError:
    """Something the scan could not look at, and why, in words a user can act on."""

    path: str
    message: str


@dataclass(frozen=True)
class Snapshot:
    """Everything one scan found: the files, the dirs it looked at, and what it could not see."""

    dirs: tuple[str, ...]
    files: tuple[LockFile, ...]
    errors: tuple[ScanError, ...] = ()
    taken_at: float = 0.0
    hidden_processes: int = 0  # processes whose open files or locks the OS would not show us
    notes: tuple[str, ...] = field(default=())

    def count(self, state: LockState) -> int:
        """How many files are in `state`."""
        return sum(1 for item in self.files if item.state is state)

    def summary(self) -> dict[str, int]:
        """State name -> count, every state present, in display order."""
        return {state.value: self.count(state) for state in STATE_ORDER}

    def in_states(self, states: frozenset[LockState]) -> tuple[LockFile, ...]:
        """The files whose state is one of `states`."""
        return tuple(item for item in self.files if item.state in states)
