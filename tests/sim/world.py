"""Actors on the simulated kernel: uv-like workers and runs of the real remover.

Each actor is a simulated process (its own pid and fd table) whose code runs on its own Python
thread. Every system call it makes goes through `SimCalls`, a `Syscalls` bound to that actor: the
call first *parks* the thread (a scheduling point: control goes back to the scheduler, which
picks who runs next), and only when the scheduler picks this actor again is the call carried out
on the kernel. So exactly one actor runs at a time, and the scheduler decides every interleaving.

What is recorded per actor for the search: its status (ready, blocked in flock, sleeping, done),
the call it is parked before, and a hash of everything it has observed (each call and its
result). The code is deterministic, so that hash stands for the actor's whole local state: two
runs that reach the same kernel state with the same observation hashes have the same future.
"""

from __future__ import annotations

import contextlib
import json
import threading
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tests.sim.kernel import BLOCKED, EPOCH, LOCK_EX, LOCK_NB, LOCK_UN, PROC, TMP, Kernel
from uvsweep.model import LockUser
from uvsweep.probe.posix import Syscalls
from uvsweep.processes import ProcessTable

try:
    from uvsweep.remove.handoff import Handoff, Keeper
except ImportError:  # the code before the keeper seam (63d3071): the search still runs on it
    Keeper = object  # type: ignore[assignment,misc]
    HAS_KEEPER = False
else:
    HAS_KEEPER = True

if TYPE_CHECKING:
    import os

#: The one lock name every actor works on.
LOCK_NAME = "uv-0123456789abcdef.lock"
LOCK_PATH = f"{TMP}/{LOCK_NAME}"
#: The names when a scenario has several lock files (`Scenario.files`): one batch of the remover.
LOCK_NAMES = (LOCK_NAME, "uv-fedcba9876543210.lock", "uv-00000000000000aa.lock")


class SimAbort(BaseException):
    """Raised in a parked actor when the scheduler ends a run early (never caught by app code)."""


class Actor:
    """One simulated process and the thread its code runs on."""

    def __init__(self, world: World, name: str, kind: str, pid: int, body: Body) -> None:
        self.world, self.name, self.kind, self.pid = world, name, kind, pid
        self.body = body
        self.calls: Any = world.scenario.calls(self)
        self.status = "ready"  # ready | blocked | sleeping | done
        self.pending: tuple[Any, ...] = ("start",)
        self.history = 0  # hash of every observation so far
        self.steps = 0
        self.sleep_version = -1
        self.wake = 0.0
        self.in_cs = False
        self.on_planted = False  # in its critical section on a planter's file
        self.holding: Any = None  # the open file description it locked (strict scenarios)
        self.slipped_in = False  # it locked a planter's file free at the name (strict)
        self.resource = LOCK_NAME  # the lock file a uv actor works on
        self.critical_sections = 0
        self.error: str | None = None  # a traceback if its code crashed
        self.result: Any = None
        self.jump = 0.0  # extra time that passes when it is resumed (a "timeout" choice)
        self.killed = False  # its process was killed (`TerminateProcess`): its code stops
        self.channel = ""  # a keeper's "ready" channel (Windows)
        self.last: object = None  # the result of its latest call
        self._go = threading.Lock()  # released by the scheduler: run
        self._go.acquire()
        self._back = threading.Lock()  # released by this actor's thread: parked (or ended)
        self._back.acquire()
        self.thread = threading.Thread(target=self._main, name=f"sim-{name}", daemon=True)

    # ---- the thread side -----------------------------------------------------------------------

    def _main(self) -> None:
        try:
            self.result = self.body(self)
        except SimAbort:
            pass
        except BaseException:
            self.error = traceback.format_exc()
        finally:
            if not self.world.aborting:
                self.world.kernel.exit(self.pid)  # the process ends: its fds close
            self.status = "done"
            self.pending = ("exit",)
            self._back.release()

    def park(self, op: tuple[Any, ...]) -> None:
        """Give control back to the scheduler, before `op`; return when picked again."""
        self.pending = op
        self._back.release()
        self._go.acquire()
        if self.world.aborting or self.killed:
            raise SimAbort
        self.steps += 1

    def observe(self, what: tuple[Any, ...], result: object) -> None:
        self.history = hash((self.history, what, repr(result)))
        self.last = result  # what the trace shows after the call

    # ---- the scheduler side --------------------------------------------------------------------

    def resume(self) -> None:
        """Let this actor run until it parks again or ends (called by the scheduler)."""
        self._go.release()
        self._back.acquire()

    def start(self) -> None:
        """Start the thread; it runs its local code up to its first system call."""
        self.thread.start()
        self._back.acquire()

    def runnable(self) -> bool:
        if self.status == "ready":
            return True
        if self.status == "blocked":
            return not self.world.kernel.blocked(self.pid)
        if self.status == "sleeping":
            return self.world.kernel.version != self.sleep_version  # something changed
        return False

    def may_time_out(self) -> bool:
        """Asleep, and nothing changed: it may still be resumed when a long time passes."""
        return self.status == "sleeping" and not self.runnable()

    def state(self) -> tuple[object, ...]:
        changed = self.status == "sleeping" and self.runnable()
        wake = self.wake if self.status == "sleeping" else None  # the time it resumes at
        return (self.status, changed, wake, self.pending, self.history, self.in_cs)

    # ---- the critical section of a uv actor ----------------------------------------------------

    def enter_critical(self, planted: bool = False, fd: int | None = None) -> None:
        """`planted`: its lock is on a planter's file (`planter`). Two holders where one holds
        such a file are not counted: that file's owner can break uv's mutual exclusion with or
        without uvsweep (by removing it while a uv holds it), so only overlaps on files of the
        uv user are uvsweep's to prevent.

        With `Scenario.strict` (red-team P2's renamer, `fd`: the fd it locked), an overlap on a
        planter's file counts too, unless the planter caused it: see `_planters_doing`."""
        strict = self.world.scenario.strict
        if strict and fd is not None:
            self.holding = self.world.kernel.procs[self.pid].fds[fd]
            inode = self.holding.inode
            at_name = self.world.kernel.names.get(self.resource) is inode
            # it locked a planter's file that was at the name and free, never taken by
            # uvsweep: the planter put it there (the documented residual, or the name left
            # to it after MAX_RETAKES); any uv could lock it, with or without uvsweep
            self.slipped_in = planted and at_name and not inode.taken
        others = [
            a.name for a in self.world.actors
            if a.in_cs and a is not self and a.resource == self.resource
            and (not a.on_planted if not strict else not _planters_doing(self, a))
        ]  # fmt: skip
        self.on_planted = planted
        if planted and not strict:
            others = []
        self.in_cs = True
        self.critical_sections += 1
        if others and self.world.violation is None:
            self.world.violation = (
                f"{self.name} entered its critical section while {', '.join(others)} is in its own"
            )

    def leave_critical(self) -> None:
        self.in_cs = False
        self.holding, self.slipped_in = None, False


Body = Callable[[Actor], Any]


def _planters_doing(one: Actor, other: Actor) -> bool:
    """Whether an overlap of two uv actors' critical sections is the planter's own doing (a
    strict scenario's oracle; never uvsweep's to prevent): one of them locked a planter's file
    that was free at the name (see `enter_critical`), or one holds a planter's file that the
    planter removed or replaced at the name while that uv had it open, and the other's file came
    to the name after that (without uvsweep, the two would overlap just the same)."""
    if one.slipped_in or other.slipped_in:
        return True
    for mine, theirs in ((one, other), (other, one)):
        ofd, their = mine.holding, theirs.holding
        if ofd is None or their is None:
            continue
        inode = ofd.inode
        if ofd.lost_to_planter and inode.left_by_planter and their.inode.arrival >= inode.left_at:
            return True
    return False


class ActorCalls:
    """What the calls of every simulated OS share: each call is a scheduling point of its
    actor, then runs on the kernel; and the actor's own pid, clock and sleep."""

    actor: Actor
    kernel: Any
    pid: int

    def _seen(self, err: OSError) -> object:
        """What an actor observes of a failed call (the errno; another OS may say more)."""
        return ("error", err.errno)

    def _do(self, what: tuple[Any, ...], call: Callable[[], Any]) -> Any:
        self.actor.park(what)
        try:
            result = call()
        except OSError as err:
            self.actor.observe(what, self._seen(err))
            raise
        self.actor.observe(what, result)
        return result

    # Calls that read only the caller's own state are not scheduling points: they commute with
    # every step of every other actor, so switching there could add no behaviour.
    def getpid(self) -> int:
        return self.pid

    def getppid(self) -> int:
        return 0  # (no simulated process is run by its PID namespace's first process)

    def monotonic(self) -> float:
        now = self.kernel.now
        self.actor.observe(("monotonic",), now)
        return now

    def sleep(self, seconds: float) -> None:
        """Not runnable until another actor changes something, or nobody else can run."""
        actor = self.actor
        actor.status = "sleeping"
        actor.sleep_version = self.kernel.version
        actor.wake = self.kernel.now + seconds
        actor.park(("sleep",))
        actor.status = "ready"
        self.kernel.now = max(self.kernel.now, actor.wake) + actor.jump
        actor.jump = 0.0


class SimCalls(ActorCalls, Syscalls):
    """`Syscalls` for one actor: each call is a scheduling point, then runs on the kernel."""

    concurrent = False  # one actor is one thread of the schedule

    def __init__(self, actor: Actor) -> None:
        self.actor = actor
        self.kernel = actor.world.kernel
        self.pid = actor.pid

    def lstat(self, name: str, dir_fd: int) -> os.stat_result:
        return self._do(("lstat", name, dir_fd), lambda: self.kernel.lstat(self.pid, name, dir_fd))

    def open(self, name: str, flags: int, mode: int = 0o777, dir_fd: int | None = None) -> int:
        what = ("open", name, flags, mode, dir_fd)
        outcome = self._do(what, lambda: self.kernel.open(self.pid, name, flags, mode, dir_fd))
        while outcome is BLOCKED:
            # it met a lease: not runnable until the lease goes, then its open completes on
            # the inode it resolved (`Kernel.finish_open`), whatever is at the name by then
            self.actor.status = "blocked"
            self.actor.park(("open-wait", name))
            self.actor.status = "ready"
            outcome = self.kernel.finish_open(self.pid)
            self.actor.observe(("open-wait", name), outcome)
        return int(outcome)

    def open_dir(self, path: str) -> int:
        return self._do(("open_dir", path), lambda: self.kernel.open_dir(self.pid, path))

    def list_dir(self, where: int | str) -> list[str]:
        return self._do(("list_dir", where), lambda: self.kernel.list_dir(self.pid, where))

    def list_kinds(self, dir_fd: int) -> list[tuple[str, bool]]:
        # as a file system without d_type says: each may be a regular file (fstat decides)
        return [(name, True) for name in self.list_dir(dir_fd)]

    def fstat(self, fd: int) -> os.stat_result:
        return self._do(("fstat", fd), lambda: self.kernel.fstat(self.pid, fd))

    def fchmod(self, fd: int, mode: int) -> None:
        self._do(("fchmod", fd, mode), lambda: self.kernel.fchmod(self.pid, fd, mode))

    def flock(self, fd: int, operation: int) -> None:
        what = ("flock", fd, operation)
        self.actor.park(what)
        if operation & LOCK_UN:
            self.actor.leave_critical()
        while True:
            try:
                outcome = self.kernel.flock(self.pid, fd, operation)
            except OSError as err:
                self.actor.observe(what, ("error", err.errno))
                raise
            if outcome is not BLOCKED:
                break
            # queued behind the holder: not runnable until its lock goes, then retry
            self.actor.status = "blocked"
            self.actor.park(("flock-wait", fd, operation))
            self.actor.status = "ready"
        self.actor.observe(what, None)

    def close(self, fd: int) -> None:
        self._do(("close", fd), lambda: self.kernel.close(self.pid, fd))

    def unlink(self, name: str, dir_fd: int) -> None:
        self._do(("unlink", name, dir_fd), lambda: self.kernel.unlink(self.pid, name, dir_fd))

    def read(self, path: str) -> bytes:
        return self._do(("read", path), lambda: self.kernel.read(path))

    def alone(self, fd: int, keep: bool = False) -> bool | None:
        return self._do(("alone", fd, keep), lambda: self.kernel.alone(self.pid, fd, keep))

    def alone_all(self, fds: Sequence[int], keep: bool = False) -> list[bool | None]:
        return [self.alone(fd, keep) for fd in fds]  # each a scheduling point of its own

    def lease_broken(self, fd: int) -> bool:
        # `F_GETLEASE` reads shared state (an open may have broken the lease): a scheduling point
        return bool(self._do(("lease_broken", fd), lambda: self.kernel.lease_broken(self.pid, fd)))

    def readlink(self, path: str) -> str:
        return self._do(("readlink", path), lambda: self.kernel.readlink(self.pid, path))

    def stat(self, path: str) -> os.stat_result:
        return self._do(("stat", path), lambda: self.kernel.stat(path))

    def geteuid(self) -> int:
        """The process's own uid: reads nothing shared, so not a scheduling point."""
        return int(self.kernel.procs[self.pid].uid)

    # ---- what uv needs beyond the remover's seam -----------------------------------------------

    def work(self) -> None:
        """A step of work that touches nothing shared (a scheduling point, nothing more)."""
        self._do(("work",), lambda: None)

    def rename_noreplace(self, old: str, new: str) -> None:
        self._do(
            ("rename_noreplace", old, new),
            lambda: self.kernel.rename_noreplace(self.pid, old, new, None),
        )

    def rename(self, old: str, new: str) -> None:
        self._do(("rename", old, new), lambda: self.kernel.rename(self.pid, old, new, None))


class SimProcesses(ProcessTable):
    """The process table the remover describes holders with, read from the simulated kernel."""

    def __init__(self, kernel: Kernel) -> None:
        super().__init__(platform="sim", proc=PROC)
        self.kernel = kernel

    def pids(self) -> list[int]:
        return [pid for pid, proc in self.kernel.procs.items() if proc.alive]

    def holder(self, pid: int | None) -> LockUser:
        if not pid:
            return LockUser(pid=None)
        proc = self.kernel.procs.get(pid)
        return LockUser(pid=pid, name=proc.name if proc else None, user="sim")

    def alive(self, pid: int) -> bool:
        proc = self.kernel.procs.get(pid)
        return proc is not None and proc.alive


# ---- actor programs ----------------------------------------------------------------------------


def uv_worker(
    rounds: int = 1, exact: bool = False, directory: str = TMP, name: str = LOCK_NAME
) -> Body:
    """What uv does around its temp-dir lock (`LockedFile::acquire`, uv >= 0.9.15), `rounds` times.

    Open the name read-write without creating it; if it is missing, create a temp file in the same
    dir, `fchmod` it 0666 and rename it into place without replacing (on EEXIST somebody else
    was first: drop ours and open theirs, retrying from the top if theirs is gone too). Then a
    non-blocking exclusive flock, else a blocking one; the critical section; unlock; close. Every
    call is a point where uv may be paused.

    `exact`: as uv's code really is after EEXIST: it opens the name once, and if that fails,
    uv >= 0.7.19 warns and goes on *without the lock* (its critical section then has no lock).
    `directory`: the temp dir as uv names it (`$TMPDIR`); `name`: the lock file's name.
    """
    import os

    lock_path = f"{directory}/{name}"

    def body(actor: Actor) -> int:
        actor.resource = name
        calls = actor.calls
        for round_ in range(rounds):
            fd = None
            attempt = 0
            while fd is None:
                try:
                    fd = calls.open(lock_path, os.O_RDWR | os.O_CLOEXEC)
                    break
                except FileNotFoundError:
                    pass
                attempt += 1
                tmp = f"{directory}/.tmp{actor.pid}{round_}{attempt}"
                flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC
                tmp_fd = calls.open(tmp, flags, 0o600)
                calls.fchmod(tmp_fd, 0o666)
                try:
                    calls.rename_noreplace(tmp, lock_path)
                except FileExistsError:
                    if not exact:
                        calls.unlink(tmp, None)
                        calls.close(tmp_fd)
                        continue
                    # uv opens the name once more; the temp file (inside the error) is only
                    # dropped, unlinked and closed, after that
                    # if this fails ("failed to acquire lock"), uv warns and goes on without it
                    with contextlib.suppress(FileNotFoundError):
                        fd = calls.open(lock_path, os.O_RDWR | os.O_CLOEXEC)
                    calls.unlink(tmp, None)
                    calls.close(tmp_fd)
                    break
                fd = tmp_fd
            if fd is None:
                actor.enter_critical()
                calls.work()  # a point inside the unlocked section
                actor.leave_critical()
                continue
            try:
                calls.flock(fd, LOCK_EX | LOCK_NB)
            except BlockingIOError:
                calls.flock(fd, LOCK_EX)
            actor.enter_critical(_planted(actor, fd), fd)
            calls.flock(fd, LOCK_UN)  # leaves the critical section when it runs
            calls.close(fd)
        return rounds

    return body


#: The uid of the hostile local user a planter runs as (`nobody`).
PLANTER_UID = 65534


def planter(tries: int = 3, name: str = LOCK_NAME) -> Body:
    """Another local user (red-team F5) who plants a file at the lock name in the sticky temp
    dir as soon as the name is free (it tries on each change it sees, up to `tries` times),
    then removes it again (a sticky dir lets a file's owner do that)."""
    import os

    path = f"{TMP}/{name}"

    def body(actor: Actor) -> bool:
        calls = actor.calls
        for _ in range(tries):
            try:
                fd = calls.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            except FileExistsError:
                calls.sleep(0.01)  # until something in the dir changes (inotify)
                continue
            calls.close(fd)
            calls.unlink(path, None)
            return True
        return False

    return body


def renamer(renames: int, keep_open: bool = False, name: str = LOCK_NAME) -> Body:
    """Red-team P2's planter: another local user (uid 65534) who plants a file at the lock name
    in the sticky temp dir as soon as the name is free, then renames fresh files of its own over
    it, `renames` times (atomic: the name is never free; the sticky dir lets it replace only
    its own file, so a rename over the remover's file is refused, and it waits for a change).
    After each rename it waits for a change (inotify), as an attacker who renames again as soon
    as the remover has taken its file would. `keep_open`: it keeps every file it planted open
    (each replaced file then has a user)."""
    import os

    path = f"{TMP}/{name}"
    create = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC

    def body(actor: Actor) -> int:
        calls = actor.calls
        for _ in range(3):  # the plant, when the name is free (tries on each change it sees)
            try:
                fd = calls.open(path, create, 0o644)
            except FileExistsError:
                calls.sleep(0.01)
                continue
            break
        else:
            return 0
        if not keep_open:
            calls.close(fd)
        done = 0
        for number in range(renames + 2):  # a refused rename waits for a change, twice at most
            fresh = f"{TMP}/.plant-{number}"
            fd = calls.open(fresh, create, 0o644)
            if not keep_open:
                calls.close(fd)
            try:
                calls.rename(fresh, path)
            except PermissionError:  # the file at the name is not its own
                calls.unlink(fresh, None)
                calls.sleep(0.01)
                continue
            done += 1
            if done == renames:
                break
            calls.sleep(0.01)  # until something changes (inotify): the remover's next round
        return done

    return body


def _planted(actor: Actor, fd: int) -> bool:
    """Whether `fd` of the actor is a file a planter made (the test's view, not a call)."""
    proc = getattr(actor.world.kernel, "procs", {}).get(actor.pid)
    inode = getattr(proc.fds.get(fd), "inode", None) if proc is not None else None
    return getattr(inode, "uid", None) == PLANTER_UID


def remover_run(batch_size: int | None = None) -> Body:
    """One run of the real Linux remover over the simulated temp dir (`uvsweep clean`);
    `batch_size`: how many files a batch holds (by default as many as the fds allow)."""

    def body(actor: Actor) -> Any:
        from uvsweep.remove import Policy
        from uvsweep.remove.posix import LinuxRemover

        kernel = actor.world.kernel
        remover = LinuxRemover(
            proc=PROC,
            calls=actor.calls,
            processes=SimProcesses(kernel),
            clock=lambda: EPOCH + kernel.now,
            **({"keeper": SimKeeper(actor)} if HAS_KEEPER else {}),
        )
        if batch_size is not None:
            remover.batch_size = batch_size
        return remover.remove([TMP], Policy())

    return body


class SimKeeper(Keeper):
    """`Keeper` on the simulated kernel: the keeper is one more actor, running the handoff code.

    As `Keeper.take` does, the new process inherits the handoffs' fds (the same open file
    descriptions, so the locks never lapse) and gets the job as JSON; it then builds a
    `LinuxRemover` from the job's view and runs `remove.handoff.run` until every handoff is
    over, as `keeper_main` does. Starting it is one scheduling point; `take` returns at once
    (the real one waits for the keeper's "ready", a subset of these interleavings).
    """

    def __init__(self, parent: Actor) -> None:
        self.parent = parent

    def take(self, handoffs: Sequence[Handoff], view: dict[str, Any]) -> int:  # type: ignore[valid-type]
        world = self.parent.world
        self.parent.park(("spawn_keeper",))
        job = json.dumps({"view": view, "handoffs": [h.to_json() for h in handoffs]})
        number = sum(1 for a in world.actors if a.kind == "keeper") + 1
        keeper = world.add(f"K{number}", "keeper", keeper_run(job))
        fds = sorted({fd for handoff in handoffs for fd in handoff.fds()})
        world.kernel.inherit(self.parent.pid, keeper.pid, fds)
        keeper.start()
        self.parent.observe(("spawn_keeper",), keeper.pid)
        return keeper.pid


def keeper_run(job_text: str) -> Body:
    """What `uvsweep _keeper JOB` does, on the simulated kernel."""

    def body(actor: Actor) -> None:
        from uvsweep.remove.handoff import run as run_handoffs
        from uvsweep.remove.posix import LinuxRemover

        job = json.loads(job_text)
        view = job["view"]
        kernel = actor.world.kernel
        remover: Any
        if view["platform"] == "darwin":
            from tests.sim.darwinworld import darwin_remover

            remover = darwin_remover(actor)
        else:
            assert view["platform"] == "linux", view
            remover = LinuxRemover(
                proc=view["proc"],
                known_devices=view["known_devices"],
                calls=actor.calls,
                processes=SimProcesses(kernel),
                clock=lambda: EPOCH + kernel.now,
                keeper=SimKeeper(actor),
            )
        handoffs = [remover.resume_handoff(item) for item in job["handoffs"]]
        run_handoffs(handoffs, remover.calls, wait=None, limit=0.1, check=remover.handoffs_in_use)

    return body


# ---- a world: the kernel and its actors --------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """What a run starts from."""

    uv: int = 2  # uv-like actors
    removers: int = 1  # remover runs
    rounds: int = 1  # critical sections per uv actor
    existing: bool = True  # an orphaned lock file is at the name when everything starts
    uv_exact: bool = False  # uv's real EEXIST path: one reopen, else on without the lock
    files: int = 1  # lock names (one batch); uv actors take them in turn: W1 the first, W2 the next
    remover: Callable[[], Body] = field(default=remover_run)  # what a remover runs
    # the OS: its kernel, the calls an actor makes on it, what a uv actor runs
    kernel: Callable[[], Any] = field(default=Kernel)
    calls: Callable[[Actor], Any] = field(default=SimCalls)
    worker: Callable[..., Body] = field(default=uv_worker)  # (rounds, exact, name=...)
    os_name: str = "Linux"
    planters: int = 0  # other users who plant a file at the name and remove it (F5)
    # P2: another user who plants a file at the name, then renames fresh files of its own over
    # it this many times (0: none); `keep_open`: it keeps each of its files open
    renames: int = 0
    keep_open: bool = False
    # the most fds a uvsweep process (remover, keeper) may hold at once (None: not checked)
    max_fds: int | None = None

    @property
    def strict(self) -> bool:
        """Overlaps on a planter's file count unless the planter caused them (P2's oracle,
        `world._planters_doing`); else they never count (F5's scenarios)."""
        return self.renames > 0

    def describe(self) -> str:
        rounds = f" x{self.rounds} rounds" if self.rounds > 1 else ""
        start = "an orphaned file at the name" if self.existing else "no file at the name"
        if self.files > 1:
            start = f"{self.files} names, " + ("an orphaned file at each" if self.existing else
                                              "no file at first")  # fmt: skip
        planted = f", {self.planters} planter(s) (uid {PLANTER_UID})" if self.planters else ""
        if self.renames:
            kept = ", keeping each open" if self.keep_open else ""
            planted += f", a planter renaming {self.renames} files over the name{kept}"
        return (
            f"{self.os_name}: {self.uv} uv actors{rounds}, {self.removers} remover run(s),"
            f" {start}{planted}"
        )

    def actor_specs(self) -> list[tuple[str, str, Body]]:
        specs: list[tuple[str, str, Body]] = []
        for i in range(self.removers):
            specs.append((f"R{i + 1}" if self.removers > 1 else "R", "remover", self.remover()))
        for i in range(self.uv):
            name = LOCK_NAMES[i % self.files]
            specs.append((f"W{i + 1}", "uv", self.worker(self.rounds, self.uv_exact, name=name)))
        for i in range(self.planters):
            specs.append((f"P{i + 1}" if self.planters > 1 else "P", "planter", planter()))
        if self.renames:
            specs.append(("P", "planter", renamer(self.renames, self.keep_open)))
        return specs


class World:
    """One run's kernel and actors; the scheduler in `explore` drives it."""

    def __init__(self, scenario: Scenario) -> None:
        self.scenario = scenario
        self.kernel = scenario.kernel()
        if scenario.existing:
            for name in LOCK_NAMES[: scenario.files]:
                self.kernel.make_file(name)
        self.aborting = False
        self.violation: str | None = None
        self.most_fds = 0  # the most fds a uvsweep process held at once (`after_step`)
        self.actors: list[Actor] = []
        for name, kind, body in scenario.actor_specs():
            self.add(name, kind, body)
        for actor in self.actors:
            actor.start()

    def add(self, name: str, kind: str, body: Body) -> Actor:
        """A new process (not started yet)."""
        pid = 100 + len(self.actors)
        if kind == "planter":
            self.kernel.spawn(pid, "sh", uid=PLANTER_UID)
        else:
            self.kernel.spawn(pid, "uv" if kind == "uv" else "uvsweep")
        actor = Actor(self, name, kind, pid, body)
        self.actors.append(actor)
        return actor

    def by_name(self, name: str) -> Actor:
        for actor in self.actors:
            if actor.name == name:
                return actor
        raise KeyError(name)

    def fingerprint(self) -> int:
        return hash((self.kernel.fingerprint(), tuple(a.state() for a in self.actors)))

    def after_step(self) -> None:
        """Checks of the whole world after each step: the fds a uvsweep process holds."""
        bound = self.scenario.max_fds
        if bound is None:
            return
        for actor in self.actors:
            proc = self.kernel.procs.get(actor.pid) if actor.kind != "uv" else None
            if proc is None or not proc.alive or actor.kind == "planter":
                continue
            held = len(proc.fds)
            self.most_fds = max(self.most_fds, held)
            if held > bound and self.violation is None:
                self.violation = f"{actor.name} holds {held} fds (more than {bound})"

    def finish(self) -> None:
        """End every actor thread (aborting those still parked) and wait for them."""
        live = [a for a in self.actors if a.status != "done"]
        if live:
            self.aborting = True
            for actor in live:
                while actor.status != "done":
                    actor.resume()
        for actor in self.actors:
            actor.thread.join()
