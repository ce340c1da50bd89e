"""Handing a lock over after an unlink, and the keeper process that finishes long handoffs.

When some process turns out to have opened a lock file between our last check and our unlink,
the name must not come back free while that process can still lock the old, unlinked inode: a
new uv would create a fresh file there, and two processes would both hold "the" lock. A
`Handoff` keeps the two generations mutually exclusive:

1. `OLD`: we still hold the old file's lock. Each step either finds that nobody else uses the
   old file any more (then it is released and the handoff is over), or takes the next
   generation: a new 0666 file at the name (`O_CREAT|O_EXCL`), or the file a new uv made there,
   exclusively try-locked. Only once we hold that do we release the old lock.
2. `NEW`: we hold the new file; the old file's users take their turns on the old inode. Each
   step re-reads who uses the old inode (every lock-table entry and every process's fds, read
   afresh: never the pids an earlier step saw). Once nobody seems to, our own try-lock on the
   old file (still open, unlocked) confirms it: it fails while anyone holds the old lock, and
   while we hold it every waiter queues behind *our* record, which the lock table must show.
   Then the old file is closed and the new one released. From then on nobody can lock the old
   inode again: it has no name and no open fd but those of processes seen to have exited.
   Each round also checks that the name still refers to our new file. If it was removed or
   replaced (only its owner, the dir's owner or root can do that in a sticky dir; anyone who
   may write a plain one), a next generation is taken again at once, whatever its owner: the
   name no longer protects the old file's users, and our lock on what is there now can only
   help. The replaced file stays locked (a uv may have opened it, and waits behind us) until
   the old file is free; then it is the old file in its turn (`_next_in_line`): its users go
   on one at a time on it while the name stays ours. The handoff stays in `NEW` meanwhile:
   only the last user of the last of them ends it, never a change of the name.

**What a handoff keeps is bounded** (red-team P2: a user renaming fresh files of its own over
the name made every round keep one more fd, for the whole handoff). Two rules:

- *A replaced file that nothing can reach is closed at once* (`_set_aside`). In the round that
  re-takes the name, the file we held there is closed if it has no name left (`st_nlink` 0 on
  our own fd: nobody can open it anew) and the remover's `replaced_in_use` finds no other
  process with it open (the fd walk, read first) and none waiting on it (the lock table read
  afresh until our own record on it is in it: every waiter queues behind that record). Our
  exclusive lock on it was never let go since we took it, so nobody holds it: that lock is the
  confirming try-lock the old file needs. Then nobody can ever lock it again: it has no name,
  and no process but us has it open. The walk matches by inode whatever name a link shows (the
  file may have been moved to another name first: red-team Q3), and a cleaner that cannot
  look into every process's fds (not root, or any process hidden) closes none early (an
  opener between its open and its flock shows nowhere else: Q1). Anything unknown (an error,
  a name left, a table that could be read before and not now) keeps it in the handoff, as
  before: each replaced file is then the old file in its turn, as P1 needs (its waiters must
  not go on beside the old file's users). Only this first look can close one early. The pids
  a look sees waiting on a kept file (`seen`), at its set-aside and once more just before its
  turn, are followed in its turn as the old file's are (Q2): a waiter seen once is not
  forgotten when a signal takes it out of the table for a moment. In its turn its openers are
  found by inode whatever their links show (`old_was_new`, Q4).
- *The name is re-taken at most `MAX_RETAKES` times a handoff.* Whoever removes or replaces
  our next generation that often is root, the dir's owner, the owner of the file at the name
  (a planted file taken after the patience) or, in a plain dir, anyone who may write it: each
  of them can break uv's exclusion at this name without uvsweep (by removing the file under a
  uv that holds it), and a tmp cleaner does it once at most (our file is new). So after that,
  the name is left to whoever changes it, with one warning: the file we held there is set
  aside as above (closed, or kept for its users in turn), and the handoff goes on only for
  the old file and the kept ones. A handoff then holds at most `MAX_RETAKES + 3` fds (its dir,
  the old file, and the new one with up to `MAX_RETAKES` replaced ones, or, once the name is
  left, up to `MAX_RETAKES + 1` replaced ones), one more while it looks at a file at the name,
  and a keeper inherits no more; it says at most `2 * MAX_RETAKES + 1` warnings about the name
  (a re-take may follow a round that said the name could not be locked).

**Whose file may be the next generation** (red-team R4, F5). It must be a regular file, still
the file at the name once our exclusive try-lock holds (a swap between our open and our lock is
refused); one with more than one link waits out the patience below, as another user's file
does (refused for good, it would keep the old file's users waiting as long as it stayed: P3).
Its owner could remove it while we hold it, and a new uv would then
make a fresh file at the name and lock it while an old user holds the old inode. Who can remove
a file in a sticky dir (`/tmp`): its owner, the dir's owner, root; in a plain dir anyone who may
write the dir removes any file, the old one too, so no owner rule adds safety there. Hence a
file owned by us, root, the old file's owner or the dir's owner, or any file in a plain dir, is
taken at once. Another user's file in a sticky dir is not: we keep the old lock and try again.
Refusing it for good would stall a legitimate second user's uv for ever (uv >= 0.9.15 makes
0666 files, so another user's uv may create the file at the name while we are in `OLD` and
exit, leaving it there), so once the same file has stayed at the name for `FOREIGN_PATIENCE`
seconds since we first found it free, it is taken (when free) with a warning. **What remains**:
a local user who plants a file at a lock name, leaves it there that long and then removes it
can still break mutual exclusion for the old file's users; but the owner of the file at a lock
name can break uv's own mutual exclusion at any time, with or without uvsweep (by removing the
file while a uv holds it), so uvsweep never hands the name to such a file before it must.

`clean` waits for handoffs a bounded time (`HANDOFF_WAIT`, cut short by Ctrl-C), then passes the
rest to a **keeper**: a detached `uvsweep _keeper` process that inherits the very locked file
descriptions (so the locks never lapse), runs the same steps until every old inode is free,
logs to the state dir and exits. A keeper's lock is visible to `scan` and `doctor` like any
other holder's, with its command line.

A keeper shares the cleaner's open file descriptions, so a lock either of them takes or drops
is the other's too. Hence: a keeper says "ready", then takes no step until the cleaner says
`GO` (or is gone); a keeper the cleaner gave up on is killed (and told `STOP`, should it outlive
that) having touched nothing. A lock a
keeper inherited is printed with the pid of the process that took it (the cleaner's), so the
lock table's records on files we hold exclusively are ours whatever pid they name. And in `NEW`
a lock left on our old description (a keeper killed mid-round, under an older version) is ours
to drop: between rounds that description holds no lock.
"""
# ruff: noqa: PLC0415 - imports inside functions: only the path that needs a module pays for it

from __future__ import annotations

import contextlib
import os
import stat
import sys
from collections.abc import Callable, Sequence

from uvsweep.probe.posix import LOCK_EX, LOCK_NB, LOCK_UN, OPEN_FLAGS, Syscalls

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Protocol

    class HandoffRemover(Protocol):
        """What a keeper needs of the remover it builds (`PosixRemover` is one): this module
        never imports the remover, which imports it."""

        calls: Syscalls

        def handoffs_in_use(self, handoffs: Sequence[Handoff]) -> set[Handoff]: ...

        def resume_handoff(self, item: dict[str, Any]) -> Handoff: ...


#: Mode of a file uv creates (>= 0.9.15): anybody may lock it.
LOCK_FILE_MODE = 0o666
#: How long `clean` itself waits for handoffs before a keeper takes them over (seconds).
HANDOFF_WAIT = 2.0
#: How long a new keeper may take to say it has the locks (seconds; a cold start is ~0.1 s).
KEEPER_START_TIMEOUT = 20.0
#: How long another user's file in a sticky dir must have been at the name, and free, before a
#: handoff takes it as the next generation (seconds, on `Syscalls.monotonic`): see the module
#: docstring. A keeper starts counting afresh.
FOREIGN_PATIENCE = 5.0
#: How many times a handoff takes the name again after its next generation was removed or
#: replaced (see the module docstring): after that, the name is left to whoever changes it.
MAX_RETAKES = 3
#: The keeper's hidden subcommand.
KEEPER_COMMAND = "_keeper"

#: The process name (Linux `comm`) of a keeper forked from a cleaner (see `Keeper.fork`).
FORKED_KEEPER_NAME = "uvsweep-keeper"

OLD, NEW, DONE = "old", "new", "done"


class Handoff:
    """One unlinked lock file that some process still uses (see the module docstring)."""

    def __init__(
        self,
        calls: Syscalls,
        dir_fd: int,
        directory: str,
        name: str,
        old_fd: int,
        old_key: tuple[int, int],
        in_use: Callable[[Handoff], bool],
    ) -> None:
        self.calls = calls
        self.dir_fd, self.directory, self.name = dir_fd, directory, name
        self.old_fd: int | None = old_fd  # locked by us while in OLD, open while in NEW
        self.new_fd: int | None = None  # locked by us while in NEW
        self.old_key = old_key  # (st_dev, st_ino) of the unlinked file
        self.in_use = in_use  # whether any other process uses the old inode now (read afresh)
        self.state = OLD
        self.released_unused = False  # ended in OLD: nobody needed the old file after all
        # pids seen using the old file whose fds we cannot read (another user's, as non-root):
        # followed until they exit, since a woken waiter is in no table until it runs again
        self.followed: set[int] = set()
        # another user's file seen at the name (dev, ino) and since when, free (`_acceptable`)
        self.foreign: tuple[int, int] | None = None
        self.foreign_since = 0.0
        self.new_key: tuple[int, int] | None = None  # (st_dev, st_ino) of the file at new_fd
        self.replaced: list[int] = []  # earlier next generations, removed from the name: locked
        self.name_lost = False  # in NEW: the name is not our file's, and could not be re-taken
        self.retakes = 0  # how many times the name was taken again in NEW (`MAX_RETAKES`)
        # of files we hold locked that left the name (dev, ino), with our fd on each, those
        # another process has open or waits on; a remover passes its own look
        # (`replaced_in_use`), unknown is "all"
        self.replaced_in_use: Callable[
            [Handoff, list[tuple[int, int]], list[int]], set[tuple[int, int]]
        ]
        self.replaced_in_use = _all_in_use
        # the pids a remover's look saw waiting on a replaced file (by its (dev, ino)):
        # followed in that file's turn (`_next_in_line`), as `followed` is for the old file
        self.seen: dict[tuple[int, int], set[int]] = {}
        # the old file is a former next generation: it may have been moved to another name
        # since, so its openers are found by inode whatever their fd links show
        self.old_was_new = False
        self.warn: Callable[[str], None] = _log  # a cleaner passes its progress output

    @property
    def path(self) -> str:
        """The file's path."""
        return f"{self.directory.rstrip('/')}/{self.name}"

    def step(self, used: bool | None = None) -> bool:
        """One non-blocking round; True once the handoff is over.

        `used`: whether the old file is in use now, if the caller read that for many handoffs
        at once; else `in_use` is asked. Never concluded from a read made right after our own
        unlock (a woken waiter leaves the lock table until it runs): a state change ends the
        round, and the next round reads afresh.
        """
        if used is None:
            used = self.in_use(self)
        if self.state == OLD:
            if not used:
                self._drop_old()
                self.released_unused = True
                self.state = DONE
                return True
            fd = self._next_generation()
            if fd is None:
                return False  # a new uv holds the new file: keep the old lock and try again
            self.new_fd = fd
            # the old file's users proceed, one at a time, on the old inode; its fd stays open
            # so that our own try-lock can confirm nobody holds it before the handoff ends
            self._drop_old(close=False)
            self.state = NEW
            return False
        if self.state == NEW and not used and self.replaced:
            self._next_in_line()
        elif self.state == NEW and not used:
            self.close()
            self.state = DONE
        elif self.state == NEW:
            self._keep_the_name()
        return self.state == DONE

    def _next_in_line(self) -> None:
        """In `NEW`, the old file free (and locked by our confirming try-lock): the oldest next
        generation that was removed from the name while we held it becomes the old file. Its
        own users (a uv that opened it meanwhile waits behind our lock) take their turns on it
        now, one at a time, while the file at the name stays ours; it is done with as the old
        file was, and so on down the line."""
        try:
            st = self.calls.fstat(self.replaced[0])
            key = (st.st_dev, st.st_ino)
            # who waits on it now, behind our lock (the pids a look sees are remembered in
            # `seen`): with those seen before, followed in its turn (red-team Q2)
            self.replaced_in_use(self, [key], [self.replaced[0]])
        except Exception:  # noqa: BLE001 - unknown: everything stays locked, next round again
            return
        if self.old_fd is not None:
            with contextlib.suppress(OSError):
                self.calls.close(self.old_fd)  # no name, no user: nobody can lock it again
        self.old_fd, self.followed = self.replaced.pop(0), self.seen.pop(key, set())
        self.old_key, self.old_was_new = key, True
        self.calls.flock(self.old_fd, LOCK_UN)

    def _keep_the_name(self) -> None:
        """In `NEW`: if the name no longer refers to our new file, take the next generation
        again at once (see the module docstring); the handoff stays in `NEW` either way."""
        if self.new_fd is None:
            return
        try:
            if self.new_key is None:
                mine = self.calls.fstat(self.new_fd)
                self.new_key = (mine.st_dev, mine.st_ino)
            named = self.calls.lstat(self.name, self.dir_fd)
            if (named.st_dev, named.st_ino) == self.new_key:
                return
        except FileNotFoundError:
            pass  # removed: take it again
        except OSError:
            return  # unknown: keep what we hold, ask again next round
        if self.retakes >= MAX_RETAKES:
            gone, self.new_fd, self.new_key = self.new_fd, None, None  # no more re-takes
            self._set_aside(gone)
            self._say(
                f"{self.path}: the next generation of the lock was removed or replaced"
                f" {self.retakes + 1} times during the handoff; the name is left to whoever"
                " changes it (who can do that can break uv's lock anyway), still holding the"
                " old file for its users"
            )
            return
        fd = self._next_generation(patient=False)
        if fd is None:
            said, self.name_lost = self.name_lost, True
            if not said:  # said once, not every round
                self._say(
                    f"{self.path}: the next generation of the lock was removed or replaced"
                    " during the handoff, and what is at the name now cannot be locked; still"
                    " holding the old file for its users and trying again"
                )
            return
        self.name_lost = False
        self.retakes += 1
        gone, self.new_fd, self.new_key = self.new_fd, fd, None
        self._set_aside(gone)  # closed if nothing can reach it, else kept locked for its users
        self._say(
            f"{self.path}: the next generation of the lock was removed or replaced during the"
            " handoff; the lock was taken again on the file at the name now"
        )

    def _set_aside(self, fd: int) -> None:
        """A file we hold locked that has just left the name: closed at once if it has no
        name left and no other process has it open or waits on it (see the module docstring),
        else kept locked in `replaced` until its turn. Never raises: unknown keeps it."""
        try:
            st = self.calls.fstat(fd)
            key = (st.st_dev, st.st_ino)
            used = key in self.replaced_in_use(self, [key], [fd])  # (its waiters' are `seen`)
            unreachable = st.st_nlink == 0 and not used
        except Exception:  # noqa: BLE001 - unknown (no fd to look with, ...): keep it locked
            unreachable = False
        if not unreachable:
            self.replaced.append(fd)  # stays locked (it may have waiters) until its turn
            return
        self.seen.pop(key, None)
        with contextlib.suppress(OSError):
            self.calls.close(fd)  # no name, no user: nobody can lock it again

    def _say(self, message: str) -> None:
        """A warning through `warn`, which may fail (a cleaner's closed stderr): never in the
        way of the handoff, whose state is recorded before anything is said."""
        try:
            self.warn(message)
        except Exception:  # noqa: BLE001 - a warning lost; the log may still have it
            with contextlib.suppress(Exception):
                _log(message)

    def _drop_old(self, close: bool = True) -> None:
        if self.old_fd is not None:
            self.calls.flock(self.old_fd, LOCK_UN)
            if close:
                self.calls.close(self.old_fd)
                self.old_fd = None

    def _next_generation(self, patient: bool = True) -> int | None:
        """A file at the name, exclusively locked by us; None if that cannot be had right now.

        `patient`: another user's file in a sticky dir is taken only after `FOREIGN_PATIENCE`
        (see the module docstring); else any regular file is.
        """
        create = os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = self.calls.open(self.name, create, LOCK_FILE_MODE, dir_fd=self.dir_fd)
            with contextlib.suppress(OSError):
                self.calls.fchmod(fd, LOCK_FILE_MODE)  # what uv sets, whatever our umask
        except FileExistsError:
            try:
                fd = self.calls.open(self.name, OPEN_FLAGS, dir_fd=self.dir_fd)  # a new uv's
            except OSError:
                return None  # gone again, or not a file we may lock (a symlink): next round
        except OSError:
            return None  # the dir refuses a new file right now: keep the old lock meanwhile
        try:
            found = self.calls.fstat(fd)
            if not stat.S_ISREG(found.st_mode):
                self.calls.close(fd)  # a dir or FIFO planted at the name is no lock file
                return None
            self.calls.flock(fd, LOCK_EX | LOCK_NB)
            # still the file at the name, now that it is ours (not swapped since our open)
            named = self.calls.lstat(self.name, self.dir_fd)
            same = (named.st_dev, named.st_ino) == (found.st_dev, found.st_ino)
            if not same or not self._acceptable(named, patient):
                self.calls.close(fd)
                return None
        except OSError:
            self.calls.close(fd)
            return None
        return fd

    def _acceptable(self, found: os.stat_result, patient: bool) -> bool:
        """Whether a free file at the name may be the next generation by its owner (and links:
        a file with more than uv's one waits out the patience as another user's does; refused
        for good, it would keep the old file's users waiting as long as it stayed)."""
        owner = found.st_uid
        if not patient:
            return True
        if found.st_nlink == 1:
            if owner in (0, self.calls.geteuid()):
                return True
            here = self.calls.fstat(self.dir_fd)
            if not here.st_mode & stat.S_ISVTX or owner == here.st_uid:
                return True  # a plain dir (anyone may remove anything there), or its owner's
            if self.old_fd is not None and owner == self.calls.fstat(self.old_fd).st_uid:
                return True
        key = (found.st_dev, found.st_ino)
        now = self.calls.monotonic()
        if self.foreign != key:
            self.foreign, self.foreign_since = key, now
        if now - self.foreign_since < FOREIGN_PATIENCE:
            return False  # keep the old lock; its owner may yet remove it
        links = f", {found.st_nlink} links" if found.st_nlink != 1 else ""
        self._say(
            f"{self.path}: took uid {owner}'s file at the name as the next generation of the"
            f" lock (there, free, for {now - self.foreign_since:.0f} s{links}); its owner could"
            " remove it"
        )
        return True

    def close(self) -> None:
        """Close whatever we hold (after a keeper took the same file descriptions over)."""
        for fd in (self.old_fd, self.new_fd, *self.replaced):
            if fd is not None:
                with contextlib.suppress(OSError):
                    self.calls.close(fd)
        self.old_fd = self.new_fd = None
        self.replaced = []

    def fds(self) -> list[int]:
        """The fds a keeper must inherit (the dir's and the locked files')."""
        held = (self.dir_fd, self.old_fd, self.new_fd, *self.replaced)
        return [fd for fd in held if fd is not None]

    def to_json(self) -> dict[str, Any]:
        """What a keeper needs to go on with this handoff."""
        return {
            "directory": self.directory, "name": self.name, "dir_fd": self.dir_fd,
            "old_fd": self.old_fd, "new_fd": self.new_fd, "old_key": list(self.old_key),
            "state": self.state, "followed": sorted(self.followed), "replaced": self.replaced,
            "retakes": self.retakes, "old_was_new": self.old_was_new,
            "seen": [[*key, sorted(pids)] for key, pids in self.seen.items()],
        }  # fmt: skip


def _all_in_use(
    _handoff: Handoff, keys: list[tuple[int, int]], _fds: list[int]
) -> set[tuple[int, int]]:
    """Without a remover's look, every replaced file counts as used (kept to its turn)."""
    return set(keys)


def run(
    handoffs: Sequence[Handoff],
    calls: Syscalls,
    wait: float | None,
    stop: Callable[[], bool] = lambda: False,
    limit: float = 0.05,
    check: Callable[[Sequence[Handoff]], set[Handoff]] | None = None,
) -> list[Handoff]:
    """Step every handoff until all are over, `wait` seconds pass or `stop()`; the unfinished.

    `check`, if given, says in one pass over the OS's tables which handoffs' old files are in
    use (one `/proc` walk a round, however many handoffs). `stop()` and the wait are heeded
    between two handoffs' steps too: a step may look at the OS's tables itself (a next
    generation taken again), and a round of a thousand such steps must not outlast a Ctrl-C
    (red-team Q5); a handoff left without its step this round is as it was, and unfinished.
    """
    from uvsweep.remove import backoff  # the package imports this module

    began = calls.monotonic()

    def over() -> bool:
        return stop() or (wait is not None and calls.monotonic() - began >= wait)

    pending = list(handoffs)
    for _waited in backoff(limit=limit, calls=calls):
        if stop():
            break
        try:
            used = check(pending) if check is not None else None
        except Exception:  # noqa: BLE001 - unknown is not "unused": keep every lock this round
            used = set(pending)
        left: list[Handoff] = []
        for index, handoff in enumerate(pending):
            if index and over():
                left.extend(pending[index:])
                break
            if not handoff.step(None if used is None else handoff in used):
                left.append(handoff)
        pending = left
        if not pending or over():
            break
    return pending


#: What a keeper runs: isolated (`-I`: neither the working dir nor PYTHON* variables reach its
#: `sys.path`), with uvsweep's own package dir put first explicitly.
KEEPER_CODE = (
    "import sys; sys.path.insert(0, sys.argv[1]); del sys.argv[1];"
    " from uvsweep.remove.handoff import keeper_main; sys.exit(keeper_main(sys.argv[2:]))"
)


def keeper_argv(job_fd: int, ready_fd: int, go_fd: int) -> list[str]:
    """The keeper's command line (`uvsweep _keeper --job-fd N --ready-fd M --go-fd G` in a
    bundle): the job is a file (whole before the keeper starts: a cleaner killed meanwhile
    cannot leave it half-told), "ready" goes back on a pipe, GO or STOP comes on another."""
    fds = ["--job-fd", str(job_fd), "--ready-fd", str(ready_fd), "--go-fd", str(go_fd)]
    if getattr(sys, "frozen", False):
        return [sys.executable, KEEPER_COMMAND, *fds]
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return [sys.executable, "-I", "-c", KEEPER_CODE, package_parent, KEEPER_COMMAND, *fds]


def _job_file(data: bytes) -> int:
    """An fd of an unnamed file holding `data`, read from its start (a memfd; else a temp file
    unlinked at once)."""
    try:
        fd = os.memfd_create("uvsweep-keeper-job", os.MFD_CLOEXEC)
    except (AttributeError, OSError):
        import tempfile

        fd, path = tempfile.mkstemp(prefix="uvsweep-keeper-job-")
        os.unlink(path)
    try:
        _write_all(fd, data)
        os.lseek(fd, 0, os.SEEK_SET)
    except OSError:
        os.close(fd)
        raise
    return fd


def _high_fd(fd: int) -> int:
    """A copy of `fd` numbered 3 or more (0-2 are the keeper's stdio, replaced at its start)."""
    import fcntl  # Unix only

    return fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 3)


class Keeper:
    """Starts the detached process that finishes handoffs (`uvsweep _keeper`)."""

    def take(self, handoffs: Sequence[Handoff], view: dict[str, Any]) -> int:
        """Pass `handoffs` (their fds inherited) to a new keeper; its pid. OSError if it fails.

        Returns once the keeper says it has taken them over; the caller then closes its own
        copies of the fds: the locks live on in the keeper, which shares the same open file
        descriptions. If no word comes, the keeper is killed and OSError raised, so the caller
        goes on holding the locks itself.
        """

        opened: list[int] = []
        try:
            mapping: dict[int, int] = {}
            for handoff in handoffs:
                for fd in handoff.fds():
                    if fd not in mapping:
                        mapping[fd] = _high_fd(fd)
                        opened.append(mapping[fd])
            go_r, go_w = os.pipe()
            opened += [go_r, go_w]
            ready_r, ready_w = os.pipe()
            opened += [ready_r, ready_w]
            high = _high_fd(go_r), _high_fd(ready_w)
            opened += high
            for low in (go_r, ready_w):  # the keeper's ends, now above its stdio: no copy of
                opened.remove(low)  # them may stay here, or a dead keeper would look alive
                os.close(low)
            go_r, ready_w = high
            items = []
            for handoff in handoffs:
                item = handoff.to_json()
                for key in ("dir_fd", "old_fd", "new_fd"):
                    if item[key] is not None:
                        item[key] = mapping[item[key]]
                item["replaced"] = [mapping[fd] for fd in item["replaced"]]
                items.append(item)
            import json  # only a handoff needs it (not every `clean`)

            job = json.dumps({"view": view, "handoffs": items}).encode()
            raw = _job_file(job + b"\n")  # whole before the keeper exists, any size
            try:
                job_fd = _high_fd(raw)  # above the keeper's stdio, as every fd it is given
            finally:
                os.close(raw)
            opened.append(job_fd)
            # through a shell that starts it in the background and exits: the keeper is nobody's
            # child (no zombie in a long-lived tray), in a session of its own (no Ctrl-C for it)
            launcher = '"$@" </dev/null >/dev/null 2>&1 & echo $!'
            pid = _launch(launcher, keeper_argv(job_fd, ready_w, go_r),
                          {*mapping.values(), job_fd, ready_w, go_r})  # fmt: skip
            for fd in (job_fd, go_r, ready_w):  # the keeper's now; EOF tells us if it dies
                os.close(fd)
                opened.remove(fd)
            try:
                _await_ready(ready_r, pid, "the keeper")
            except OSError:
                with contextlib.suppress(OSError):
                    _write_all(go_w, STOP)  # killed; should it still run, it must never act
                raise
            # only now may it act: a keeper killed for being late never touched a lock
            _say_go(go_w, "the keeper")
            return pid
        finally:
            for fd in opened:
                with contextlib.suppress(OSError):
                    os.close(fd)

    def fork(self, handoffs: Sequence[Handoff], view: dict[str, Any]) -> int:
        """A keeper that is a copy of this process (`os.fork`); its pid. OSError if it fails.

        The fallback when `take` cannot start a program: a copy needs no shell, no exec and no
        import, and it already has the locked files open. It drops every other fd (a tray's
        display and bus connections stay the tray's), leaves our session, builds a remover of
        its own from `view` (its pid is not ours) and runs the handoffs to the end. Where a
        pipe can be had, it says "ready" once its remover is built, and only then do we let go
        (no word in time: it is killed, and OSError raised). Once it holds the files it never
        exits before the handoffs are over: a failure is logged and the rounds start again.
        """
        import warnings

        reap_forked()
        keep = sorted({fd for handoff in handoffs for fd in handoff.fds()})
        pipes = _two_pipes()
        ready_r, ready_w, go_r, go_w = pipes or (-1, -1, -1, -1)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # "multi-threaded fork()"
                pid = os.fork()
        except OSError:  # no process to spare: the pipes go, and the caller waits itself
            for fd in pipes:
                os.close(fd)
            raise
        if pid == 0:  # the child: never returns into the caller's code
            if pipes:
                _second_fork(ready_r, ready_w, go_w)
            mine = [*keep, ready_w, go_r] if pipes else keep
            _forked_keeper(handoffs, view, mine, ready_w, go_r)
        if not pipes:
            _FORKED.append(pid)  # reaped by the next `clean` (`reap_forked`)
            return pid
        os.close(ready_w)
        os.close(go_r)
        committed = False
        try:
            lines = _ReadyPipe(ready_r)
            keeper = pid
            try:
                with contextlib.suppress(ValueError):
                    keeper = int(lines.next_line(pid, "the forked keeper"))
            finally:
                if keeper == pid:
                    _FORKED.append(pid)  # no second fork: our child for good (or killed)
                else:  # the first copy exits at once: no zombie is left (none at all where
                    with contextlib.suppress(ChildProcessError):  # SIGCHLD is ignored)
                        os.waitpid(pid, 0)
            lines.await_ready(keeper, "the forked keeper")
            committed = True
            _say_go(go_w, "the forked keeper")
        finally:
            if not committed:
                with contextlib.suppress(OSError):
                    _write_all(go_w, STOP)  # given up on: it must never act
            os.close(ready_r)
            os.close(go_w)
        return keeper


#: What a cleaner says to a keeper that said "ready" once it has let go of the handoffs: until
#: then the keeper takes no step (a keeper killed because its word came late must not have
#: unlocked or locked anything on descriptions the cleaner goes on using). A keeper that reads
#: the end of the pipe instead goes on too: its cleaner is gone, and it alone holds the files.
GO = b"go\n"
#: What a cleaner says to a keeper it gave up on (and killed), should that keeper still run:
#: it ends at once, having touched nothing.
STOP = b"stop\n"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _await_go(fd: int) -> bool:
    """In a keeper that said "ready": wait for the cleaner's word (or the pipe's end); whether
    to go on (False: the cleaner said `STOP`)."""
    said = b""
    with contextlib.suppress(OSError):
        while chunk := os.read(fd, 16):
            said += chunk
    with contextlib.suppress(OSError):
        os.close(fd)
    return STOP not in said


def _second_fork(ready_r: int, ready_w: int, go_w: int) -> None:
    """In the first copy of a forked keeper: fork again and exit, so that the keeper is nobody's
    child (a long-lived tray reaps the first copy at once and never keeps a zombie); the keeper's
    pid goes first on the ready pipe. Returns only in the process that is to be the keeper."""
    with contextlib.suppress(OSError):
        os.close(ready_r)
        os.close(go_w)
    try:
        pid = os.fork()
    except OSError:  # no second copy: this one is the keeper
        pid = 0
    if pid != 0:
        os._exit(0)
    # the keeper says who it is before anything else, so the words come in order
    with contextlib.suppress(OSError):
        os.write(ready_w, f"{os.getpid()}\n".encode())


class _ReadyPipe:
    """The lines a new keeper writes on its ready pipe, each awaited with a time limit."""

    def __init__(self, fd: int) -> None:
        import time

        self.fd, self.buffer = fd, b""
        self.deadline = time.monotonic() + KEEPER_START_TIMEOUT

    def next_line(self, pid: int, who: str) -> str:
        """The next line; without it in time, `pid` is killed and OSError raised."""
        import select
        import time

        poll = select.poll()  # not select(): a batch's fds can be numbered past 1024
        poll.register(self.fd, select.POLLIN)
        while b"\n" not in self.buffer:
            left = self.deadline - time.monotonic()
            chunk = os.read(self.fd, 64) if left > 0 and poll.poll(left * 1000) else b""
            if not chunk:
                _kill(pid)
                raise OSError(f"{who} did not take over the locks in time")
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode("ascii", "replace")

    def await_ready(self, pid: int, who: str) -> None:
        """Wait for "ready"; without it in time, kill `pid` and raise OSError."""
        if self.next_line(pid, who) != "ready":
            _kill(pid)
            raise OSError(f"{who} did not take over the locks in time")


def _kill(pid: int) -> None:
    import signal

    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)


def _await_ready(ready_r: int, pid: int, who: str) -> None:
    """Wait for a new keeper's "ready" on `ready_r`; without it in time, kill it and raise."""
    _ReadyPipe(ready_r).await_ready(pid, who)


def _two_pipes() -> list[int]:
    """Two pipes' fds (read, write, read, write), or none when there are no fds to spare (the
    reason `take` failed, often): a forked keeper then goes on without them."""
    pipes: list[int] = []
    try:
        pipes += os.pipe()
        pipes += os.pipe()
    except OSError:
        for fd in pipes:
            os.close(fd)
        return []
    return pipes


def _say_go(go_w: int, who: str) -> None:
    """Tell a keeper that said "ready" to go on. A pipe it no longer reads means it died after
    its word (red-team F3): OSError, so the caller keeps the files and waits itself."""
    try:
        _write_all(go_w, GO)
    except OSError as err:
        raise OSError(f"{who} ended before it took over the locks") from err


def _say_ready(ready_fd: int) -> None:
    """Say "ready" to the cleaner. A pipe nobody reads any more means the cleaner is gone (one
    that gives up kills its keeper and says STOP on the job pipe): the files' locks are then
    the keeper's alone, so it goes on as if heard, never lets them go."""
    try:
        os.write(ready_fd, b"ready\n")
    except OSError:
        _log("the cleaner was gone before it heard ready: keeping its files")
    finally:
        with contextlib.suppress(OSError):
            os.close(ready_fd)


def _forked_keeper(
    handoffs: Sequence[Handoff],
    view: dict[str, Any],
    keep: Sequence[int],
    ready_fd: int,
    go_fd: int = -1,
) -> None:
    """The body of a forked keeper (see `Keeper.fork`); ends the process."""
    import time

    status = 0
    try:
        _become_keeper(keep)
        for handoff in handoffs:
            handoff.warn = _log  # the cleaner's output is not ours any more: the keeper's log
        paths = ", ".join(h.path for h in handoffs)
        said = False
        while True:  # holding the files: only the handoffs' end lets them go
            try:
                remover = _remover_for(view)
                if ready_fd >= 0 and not said:
                    _say_ready(ready_fd)
                    said = True
                    if not _await_go(go_fd):
                        os._exit(0)  # the cleaner kept the files: touch nothing
                    _log(f"(forked) keeping the lock on {paths} until the old files are free")
                run(handoffs, remover.calls, wait=None, limit=0.1, check=remover.handoffs_in_use)
            except Exception as err:  # log, keep the locks, try again
                with contextlib.suppress(Exception):
                    _log(f"(forked) a round failed, trying again: {err!r}")
                if ready_fd >= 0 and not said:
                    raise  # not ready yet: the cleaner keeps its locks and waits itself
                time.sleep(1.0)
                continue
            _log(f"(forked) done with {paths}")
            break
    except BaseException as err:  # noqa: BLE001 - a forked child must end here
        status = 2
        with contextlib.suppress(BaseException):
            _log(f"(forked) failed: {err!r}")
    finally:
        os._exit(status)


#: Forked keepers not yet reaped (a long-lived tray would otherwise keep them as zombies).
_FORKED: list[int] = []


def reap_forked() -> None:
    """Reap the forked keepers that have exited (each `clean` in a long-lived process does)."""
    for pid in list(_FORKED):
        with contextlib.suppress(ChildProcessError, OSError):
            if os.waitpid(pid, os.WNOHANG)[0] == 0:
                continue
        _FORKED.remove(pid)


#: Keepers this process waits for before it exits (`outlive`), and how often it looks.
_OUTLIVED: list[int] = []
OUTLIVE_POLL = 0.05


def outlive(pid: int) -> None:
    """Make this process wait, as it exits, until keeper `pid` has ended.

    For a cleaner that is the first process of its PID namespace (pid 1: `unshare --pid
    --fork`, a container's entry point), or is run by one that exits once it has (a shell, a
    minimal init: red-team M3): when that process exits the kernel kills every other process of
    the namespace, its keepers too, and a uv outside the namespace still using an old file would
    then overlap with a new uv at the name (red-team L8). The report is out by then; only the
    process's exit waits (`_await_outlived`, at exit).
    """
    if not _OUTLIVED:
        import atexit

        atexit.register(_await_outlived)
    _OUTLIVED[:] = [known for known in _OUTLIVED if _running(known)]  # (a long-lived watcher)
    _OUTLIVED.append(pid)


def _await_outlived(
    say: Callable[[str], None] | None = None, end: Callable[[], None] | None = None
) -> None:
    """At exit: wait until every keeper in `_OUTLIVED` has ended, reaping each (the first
    process of a namespace is the parent of every orphan in it). Ctrl-C is counted by a handler
    of the wait's own, wherever it lands (a message blocked on a full stderr included: red-team
    M4): the first says what giving up means; a second gives the wait up, loudly, and the
    process exits with status 130 (interrupted: its keepers end with it, red-team M2), through
    `end`."""
    import signal

    caught: list[int] = []
    try:
        previous = signal.signal(signal.SIGINT, lambda _signum, _frame: caught.append(1))
    except (ValueError, OSError):  # not the main thread: Ctrl-C is not ours to count
        previous = None
    try:
        gave_up = _wait_for_keepers(say or _say, caught)
    finally:
        if previous is not None:
            with contextlib.suppress(ValueError, OSError):
                signal.signal(signal.SIGINT, previous)
    if gave_up:
        (end or _end_interrupted)()


def _say(message: str) -> None:
    """One line on stderr, if it can be written."""
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.write(f"uvsweep: {message}\n")
        sys.stderr.flush()


def _wait_for_keepers(say: Callable[[str], None], caught: list[int]) -> bool:
    """`_await_outlived`'s wait; True if Ctrl-C twice gave it up."""
    import time

    told = 0
    pending = list(_OUTLIVED)
    while True:
        try:
            pending = [pid for pid in pending if _running(pid)]
            if not pending:
                _OUTLIVED.clear()
                return False
            if not told:
                told = 1
                say(
                    f"waiting for keeper {', '.join(map(str, pending))} to finish its handoffs:"
                    " this process is, or runs under, the first process of its PID namespace,"
                    " whose exit would end the keeper (Ctrl-C twice gives up; two uv processes"
                    " could then hold one lock)"
                )
            if len(caught) > 1:
                say("gave up waiting for the keeper on request: its handoffs end with it")
                return True
            if caught and told < 2:
                told = 2
                say("Ctrl-C again gives up the wait (two uv processes could then hold one lock)")
            time.sleep(OUTLIVE_POLL)
        except KeyboardInterrupt:  # (one that came before the wait's own handler was set)
            caught.append(1)


def _end_interrupted() -> None:
    """Exit at once with status 130 (interrupted), what was written flushed first (an exit
    handler cannot change the status otherwise: a `SystemExit` raised there is ignored)."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(130)


def _running(pid: int) -> bool:
    """Whether process `pid` still runs (reaped here if it is our child and has exited)."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass  # not (yet) ours: its launcher has not exited, or we are not its reaper
    except OSError:
        return True
    ended = _exited(pid)
    if ended is not None:
        return not ended
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # (EPERM: alive, not ours to signal)
    return True


def _exited(pid: int) -> bool | None:
    """Whether process `pid` has exited, a zombie nobody has reaped yet included (its pidfd
    polls readable once it has: Linux 5.3 and later); None where that cannot be asked. A
    keeper that is not our child is reaped by its namespace's first process, which may itself
    be waiting for us (M3), or not reap at all: `kill(pid, 0)` says a zombie runs."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        fd = opener(pid)
    except ProcessLookupError:
        return True
    except OSError:
        return None
    try:
        import select

        poller = select.poll()
        poller.register(fd, select.POLLIN)
        return bool(poller.poll(0))
    finally:
        os.close(fd)


def _become_keeper(keep: Sequence[int]) -> None:
    """In a forked keeper: a session of its own, only the handoffs' fds, stdio on /dev/null."""
    import signal

    os.setsid()
    with contextlib.suppress(AttributeError, ValueError, OSError):
        signal.set_wakeup_fd(-1)  # a tray's wake-up fd is closed below
    for name in ("SIGINT", "SIGHUP", "SIGPIPE", "SIGTSTP"):
        with contextlib.suppress(AttributeError, ValueError, OSError):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    with contextlib.suppress(AttributeError, ValueError, OSError):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    with contextlib.suppress(AttributeError, ValueError, OSError):
        # a copy of a tray worker inherits its blocked SIGINT/SIGTERM: SIGTERM must work
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
    start = 0
    for fd in (*keep, _max_fd()):
        if fd > start:
            os.closerange(start, fd)
        start = fd + 1
    with contextlib.suppress(OSError):
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            if fd != null and fd not in keep:
                os.dup2(null, fd)
        if null > 2:
            os.close(null)
    with contextlib.suppress(OSError):
        os.chdir("/")
    with contextlib.suppress(OSError), open("/proc/self/comm", "w") as comm:
        comm.write(FORKED_KEEPER_NAME)  # how `scan` tells it (its argv is the cleaner's)


def _max_fd() -> int:
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, ValueError, OSError):
        return 1024
    return soft if 0 < soft < 1 << 20 else 1 << 20


def _remover_for(view: dict[str, Any]) -> HandoffRemover:
    from uvsweep.remove import for_platform

    remover = for_platform(**view)
    if not hasattr(remover, "resume_handoff"):
        raise TypeError("a keeper runs only Unix handoffs")
    return remover  # type: ignore[return-value]  # a PosixRemover


def _launch(launcher: str, argv: Sequence[str], fds: set[int]) -> int:
    """Start `argv` in the background through `/bin/sh`, passing `fds`; its pid, or OSError."""
    import subprocess

    try:
        out = subprocess.run(
            ["/bin/sh", "-c", launcher, "uvsweep-keeper", *argv], pass_fds=sorted(fds), cwd="/",
            start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, check=False, timeout=30,
        )  # fmt: skip
    except subprocess.SubprocessError as err:  # the launcher hung: no keeper
        raise OSError(f"the keeper did not start ({err})") from None
    try:
        return int(out.stdout.split()[0])
    except (IndexError, ValueError):
        raise OSError(f"the keeper did not start (status {out.returncode})") from None


def keeper_log_path() -> str | None:
    """Where keepers log (`<state dir>/keeper.log`), or None when there is no state dir."""
    try:
        from platformdirs import user_state_dir

        return os.path.join(user_state_dir("uvsweep"), "keeper.log")
    except ImportError:  # pragma: no cover - a declared dependency
        return None


def _log(message: str) -> None:
    """One line in the keeper's log; never through a symlink or into another user's dir."""
    import time

    path = keeper_log_path()
    if path is None:
        return
    directory = os.path.dirname(path)
    with contextlib.suppress(OSError):
        os.makedirs(directory, mode=0o700, exist_ok=True)
        st = os.lstat(directory)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
            return  # e.g. root with another user's XDG_STATE_HOME
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        for rotated in (False, True):
            fd = os.open(path, flags, 0o600)
            with os.fdopen(fd, "a", encoding="utf-8") as handle:
                if os.fstat(fd).st_uid != os.geteuid() or os.fstat(fd).st_nlink != 1:
                    return
                if not rotated and os.fstat(fd).st_size > 256 * 1024:
                    os.replace(path, path + ".1")  # one old generation: the log stays small
                    continue  # the line goes into a new file at the name
                stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
                handle.write(f"{stamp} keeper {os.getpid()}: {message}\n")
                return


def _resume(job: dict[str, Any]) -> tuple[HandoffRemover, list[Handoff]]:
    remover = _remover_for(job["view"])
    return remover, [remover.resume_handoff(item) for item in job["handoffs"]]


def keeper_main(argv: Sequence[str]) -> int:
    """`uvsweep _keeper --job-fd N --ready-fd M`: finish the handoffs the job (JSON, read from
    fd N) describes, holding the inherited locks; say "ready" on fd M once they are ours."""
    import signal

    for name in ("SIGINT", "SIGHUP", "SIGPIPE"):  # only the handoffs' end stops a keeper
        with contextlib.suppress(AttributeError, ValueError, OSError):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    try:
        args = dict(zip(argv[::2], argv[1::2], strict=True))
        job_fd, ready_fd = int(args["--job-fd"]), int(args["--ready-fd"])
        go_fd = int(args["--go-fd"])
        import json

        with os.fdopen(job_fd, "rb") as job_file:
            job = json.loads(job_file.readline())
        remover, handoffs = _resume(job)
        _say_ready(ready_fd)  # the cleaner may close its copies now
        with os.fdopen(go_fd, "rb") as stream:
            said = stream.read()  # its `GO`, or the end of the pipe: only then, a step
        if STOP in said:
            _log("the cleaner gave up on this keeper: it kept the files itself")
            return 3
    except (IndexError, KeyError, TypeError, ValueError, OSError) as err:
        _log(f"cannot start: {err}")
        return 2
    paths = ", ".join(h.path for h in handoffs)
    _log(f"keeping the lock on {paths} until the old files' last users are done")
    run(handoffs, remover.calls, wait=None, limit=0.1, check=remover.handoffs_in_use)
    _log(f"done with {paths}")
    return 0
