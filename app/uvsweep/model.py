"""The records every layer shares: lock states, holders, labels, files, snapshots, what changed
between two snapshots, processes, and the outcome of a cleanup (pure: no I/O; frozen, but for the
outcome of a cleanup, which is filled in while it runs). Renderers (`report`) need only this."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
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


def plural(count: int, noun: str, many: str | None = None) -> str:
    """`1 uv lock file`, `2 uv lock files`, `0 processes` (give `many` where `s` is wrong)."""
    return f"{count} {noun if count == 1 else (many or noun + 's')}"


def hidden_processes_text(count: int, root: bool) -> str:
    """`count` processes whose open files could not be inspected, and why, for a note."""
    who = plural(count, "process", "processes")
    if root:  # its links are refused: no CAP_SYS_PTRACE (Docker's default), a security module
        return f"{who} (the OS refuses root its fd links: no CAP_SYS_PTRACE, or a security module)"
    return f"{who} of other users (root can see them)"


def format_age(seconds: float) -> str:
    """A short age: `42s`, `5m`, `3h`, `12d`."""
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


class Record:
    """An immutable value: equality, hash, repr and `replace()` derived from `__slots__`.

    The records are plain slotted classes rather than dataclasses because importing `dataclasses`
    (it imports `inspect`) and generating their code costs more than the rest of a cold
    `uvsweep scan` on an empty dir, whose budget is 4x `python -c pass`.
    """

    __slots__: tuple[str, ...] = ()

    def _init(self, **values: object) -> None:
        for name in self.__slots__:
            object.__setattr__(self, name, values[name])

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable; use replace()")

    def _values(self) -> Iterator[object]:
        return (getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return False
        assert isinstance(other, Record)
        return tuple(self._values()) == tuple(other._values())

    def __hash__(self) -> int:
        return hash(tuple(self._values()))

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"{type(self).__name__}({fields})"

    def replace(self, **changes: object) -> Record:
        """A copy with some fields changed."""
        copy = object.__new__(type(self))
        for name in self.__slots__:
            object.__setattr__(copy, name, changes.pop(name, getattr(self, name)))
        if changes:
            raise TypeError(f"{type(self).__name__} has no field(s) {sorted(changes)}")
        return copy


class Label(Record):
    """The environment a lock file guards, found by hashing a candidate path to the same name."""

    __slots__ = ("kind", "path")
    kind: LabelKind
    path: str

    def __init__(self, kind: LabelKind, path: str) -> None:
        self._init(kind=kind, path=path)


class LockUser(Record):
    """A process that holds, waits for or has open a lock file. None means the OS hid it."""

    __slots__ = ("alive", "cmdline", "name", "pid", "user")
    pid: int | None
    name: str | None
    user: str | None
    cmdline: tuple[str, ...] | None
    alive: bool  # False: the pid has exited (a lock it took may now be held by a child of it)

    def __init__(
        self,
        pid: int | None,
        name: str | None = None,
        user: str | None = None,
        cmdline: tuple[str, ...] | None = None,
        alive: bool = True,
    ) -> None:
        self._init(pid=pid, name=name, user=user, cmdline=cmdline, alive=alive)

    def describe(self) -> str:
        """`1234 uv (alice)`, with `unknown` for whatever the OS hides."""
        if not self.alive:
            return f"{self.pid} (exited; a child of it may hold the file now)"
        pid = "unknown" if self.pid is None else str(self.pid)
        name = self.name or "unknown"
        user = self.user or "unknown"
        return f"{pid} {name} ({user})"


class LockFile(Record):
    """One uv lock file as the scan saw it."""

    __slots__ = (
        "blocks_uv",
        "dev",
        "holders",
        "ino",
        "label",
        "mtime",
        "name",
        "openers",
        "owner",
        "path",
        "reason",
        "size",
        "state",
        "uid",
        "waiters",
    )  # fmt: skip
    path: str
    name: str
    state: LockState
    mtime: float
    size: int
    uid: int
    owner: str
    label: Label | None
    holders: tuple[LockUser, ...]
    waiters: tuple[LockUser, ...]
    openers: tuple[LockUser, ...]
    reason: str  # why the state is what it is, in a few words, for people
    blocks_uv: bool  # foreign only: the current user's uv cannot open it to lock
    dev: int
    ino: int

    def __init__(
        self,
        path: str,
        name: str,
        state: LockState,
        mtime: float,
        size: int,
        uid: int,
        owner: str,
        label: Label | None = None,
        holders: tuple[LockUser, ...] = (),
        waiters: tuple[LockUser, ...] = (),
        openers: tuple[LockUser, ...] = (),
        reason: str = "",
        blocks_uv: bool = False,
        dev: int = 0,
        ino: int = 0,
    ) -> None:
        self._init(
            path=path, name=name, state=state, mtime=mtime, size=size, uid=uid, owner=owner,
            label=label, holders=holders, waiters=waiters, openers=openers, reason=reason,
            blocks_uv=blocks_uv, dev=dev, ino=ino,
        )  # fmt: skip

    def with_label(self, label: Label | None) -> LockFile:
        """This file, labelled."""
        copy = self.replace(label=label)
        assert isinstance(copy, LockFile)
        return copy


class ScanError(Record):
    """Something the scan could not look at, and why, in words a user can act on."""

    __slots__ = ("message", "path")
    path: str
    message: str

    def __init__(self, path: str, message: str) -> None:
        self._init(path=path, message=message)


class Snapshot(Record):
    """Everything one scan found: the files, the dirs it looked at, and what it could not see."""

    __slots__ = ("dirs", "errors", "files", "hidden_processes", "notes", "taken_at")
    dirs: tuple[str, ...]
    files: tuple[LockFile, ...]
    errors: tuple[ScanError, ...]
    taken_at: float
    hidden_processes: int  # processes whose open files or locks the OS would not show us
    notes: tuple[str, ...]

    def __init__(
        self,
        dirs: tuple[str, ...],
        files: tuple[LockFile, ...],
        errors: tuple[ScanError, ...] = (),
        taken_at: float = 0.0,
        hidden_processes: int = 0,
        notes: tuple[str, ...] = (),
    ) -> None:
        self._init(
            dirs=dirs, files=files, errors=errors, taken_at=taken_at,
            hidden_processes=hidden_processes, notes=notes,
        )  # fmt: skip

    def count(self, state: LockState) -> int:
        """How many files are in `state`."""
        return sum(1 for item in self.files if item.state is state)

    def summary(self) -> dict[str, int]:
        """State name -> count, every state present, in display order."""
        return {state.value: self.count(state) for state in STATE_ORDER}

    def in_states(self, states: frozenset[LockState]) -> tuple[LockFile, ...]:
        """The files whose state is one of `states`."""
        return tuple(item for item in self.files if item.state in states)


# ---- what changed between two snapshots (the watcher's news) ----------------------------------


class Change(Record):
    """What differs between two snapshots, by path."""

    __slots__ = ("added", "changed", "removed", "updated")
    added: tuple[LockFile, ...]
    removed: tuple[LockFile, ...]
    changed: tuple[tuple[LockFile, LockFile], ...]  # (before, after): the state differs
    # (before, after): same state, but other holders or waiters, or another label
    updated: tuple[tuple[LockFile, LockFile], ...]

    def __init__(
        self,
        added: Sequence[LockFile] = (),
        removed: Sequence[LockFile] = (),
        changed: Sequence[tuple[LockFile, LockFile]] = (),
        updated: Sequence[tuple[LockFile, LockFile]] = (),
    ) -> None:
        self._init(
            added=tuple(added), removed=tuple(removed), changed=tuple(changed),
            updated=tuple(updated),
        )  # fmt: skip

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.changed or self.updated)


def _who(item: LockFile) -> tuple[object, ...]:
    return (
        tuple(h.pid for h in item.holders),
        tuple(h.pid for h in item.waiters),
        tuple(h.pid for h in item.openers),
        item.label,
    )


def diff(before: Snapshot | None, after: Snapshot) -> Change:
    """Files added, removed, whose state changed, and whose holders, waiters, openers or label
    changed, from `before` to `after`."""
    old = {item.path: item for item in before.files} if before else {}
    new = {item.path: item for item in after.files}
    both = [(old[path], item) for path, item in new.items() if path in old]
    return Change(
        added=[item for path, item in new.items() if path not in old],
        removed=[item for path, item in old.items() if path not in new],
        changed=[(was, now) for was, now in both if was.state is not now.state],
        updated=[
            (was, now) for was, now in both if was.state is now.state and _who(was) != _who(now)
        ],
    )


# ---- processes ---------------------------------------------------------------------------------

#: A uv process's phase (uvphase.py decides it): the gate waits for an active one; a parked one
#: only waits for the command it runs and takes no temp-dir lock again.
ACTIVE = "active"
PARKED = "parked"


class ProcessInfo(Record):
    """What could be learned about one process; None where the OS would not say."""

    __slots__ = (
        "cmdline", "cwd", "name", "phase", "phase_reason", "pid", "started", "uid", "user",
    )  # fmt: skip
    pid: int
    name: str | None
    uid: int | None
    user: str | None
    cmdline: tuple[str, ...] | None
    cwd: str | None
    started: float | None  # start time, seconds since the epoch
    phase: str  # for a uv process: ACTIVE (the gate waits for it) or PARKED (uvphase.py)
    phase_reason: str  # why, in a few words ("" until ProcessTable.uv_processes() judged it)

    def __init__(
        self,
        pid: int,
        name: str | None,
        uid: int | None,
        user: str | None,
        cmdline: tuple[str, ...] | None,
        cwd: str | None,
        started: float | None = None,
        phase: str = ACTIVE,
        phase_reason: str = "",
    ) -> None:
        self._init(
            pid=pid, name=name, uid=uid, user=user, cmdline=cmdline, cwd=cwd, started=started,
            phase=phase, phase_reason=phase_reason,
        )  # fmt: skip

    @property
    def active(self) -> bool:
        """Whether the uv gate waits for this process (when in doubt, it does)."""
        return self.phase != PARKED

    def holder(self) -> LockUser:
        """This process as a lock holder, waiter or opener."""
        return LockUser(pid=self.pid, name=self.name, user=self.user, cmdline=self.cmdline)


# ---- the outcome of a cleanup ------------------------------------------------------------------


class Skipped(Record):
    """A file that stays, with the state it was in and why it stays."""

    __slots__ = ("path", "reason", "state")
    path: str
    state: LockState
    reason: str

    def __init__(self, path: str, state: LockState, reason: str) -> None:
        self._init(path=path, state=state, reason=reason)


class CleanResult:
    """The outcome of one `clean`, or of one removal pass inside it (mutable while it runs):
    the cleaner fills in the gate's part, the remover what it removed and kept."""

    def __init__(self, dirs: Sequence[str] = (), dry_run: bool = False) -> None:
        self.dirs = tuple(dirs)
        self.dry_run = dry_run
        self.removed: list[str] = []  # with dry_run: what would be removed
        self.skipped: list[Skipped] = []
        self.errors: list[ScanError] = []
        self.uv_processes: list[ProcessInfo] = []  # every uv process, active and parked
        self.busy = False  # active uv processes were running, so nothing was removed
        self.gate_notes: list[str] = []  # what the gate could not see (hidden uv processes)
        self.hidden_processes = 0  # processes whose open files we could not see
        self.handoffs = 0  # files a process grabbed during removal: lock handed over, file kept
        self.keepers: list[int] = []  # pids of the keepers that finish this run's handoffs
        self.blind = ""  # why nothing was removed: processes that could use them are hidden
        self.notes: list[str] = []

    @property
    def active_uv(self) -> list[ProcessInfo]:
        """The uv processes the gate waited for (`busy`)."""
        return [proc for proc in self.uv_processes if proc.active]

    def skip(self, path: str, state: LockState, reason: str) -> None:
        """Record a file that stays."""
        self.skipped.append(Skipped(path, state, reason))

    def note(self, message: str) -> None:
        """Add a note once."""
        if message not in self.notes:
            self.notes.append(message)
