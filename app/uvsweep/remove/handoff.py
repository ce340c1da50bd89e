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
   afresh: never the pids an earlier step saw), and once nobody does, the new file is released.
   From then on nobody can lock the old inode again: it has no name and no open fd.

`clean` waits for handoffs a bounded time (`HANDOFF_WAIT`, cut short by Ctrl-C), then passes the
rest to a **keeper**: a detached `uvsweep _keeper` process that inherits the very locked file
descriptions (so the locks never lapse), runs the same steps until every old inode is free,
logs to the state dir and exits. A keeper's lock is visible to `scan` and `doctor` like any
other holder's, with its command line.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Sequence

from uvsweep.probe.posix import LOCK_EX, LOCK_NB, LOCK_UN, OPEN_FLAGS, Syscalls

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from uvsweep.remove.posix import PosixRemover

#: Mode of a file uv creates (>= 0.9.15): anybody may lock it.
LOCK_FILE_MODE = 0o666
#: How long `clean` itself waits for handoffs before a keeper takes them over (seconds).
HANDOFF_WAIT = 2.0
#: How long a new keeper may take to say it has the locks (seconds; a cold start is ~0.1 s).
KEEPER_START_TIMEOUT = 20.0
#: The keeper's hidden subcommand.
KEEPER_COMMAND = "_keeper"

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
        self.old_fd: int | None = old_fd  # locked by us while in OLD
        self.new_fd: int | None = None  # locked by us while in NEW
        self.old_key = old_key  # (st_dev, st_ino) of the unlinked file
        self.in_use = in_use  # whether any other process uses the old inode now (read afresh)
        self.state = OLD
        self.released_unused = False  # ended in OLD: nobody needed the old file after all

    @property
    def path(self) -> str:
        """The file's path."""
        return f"{self.directory.rstrip('/')}/{self.name}"

    def step(self) -> bool:
        """One non-blocking round; True once the handoff is over."""
        if self.state == OLD:
            if not self.in_use(self):
                self._drop_old()
                self.released_unused = True
                self.state = DONE
                return True
            fd = self._next_generation()
            if fd is None:
                return False  # a new uv holds the new file: keep the old lock and try again
            self.new_fd = fd
            self._drop_old()  # the old file's users proceed, one at a time, on the old inode
            self.state = NEW
        if self.state == NEW and not self.in_use(self):
            self.close()
            self.state = DONE
        return self.state == DONE

    def _drop_old(self) -> None:
        if self.old_fd is not None:
            self.calls.flock(self.old_fd, LOCK_UN)
            self.calls.close(self.old_fd)
            self.old_fd = None

    def _next_generation(self) -> int | None:
        """A file at the name, exclusively locked by us; None if that cannot be had right now."""
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
            self.calls.flock(fd, LOCK_EX | LOCK_NB)
        except OSError:
            self.calls.close(fd)
            return None
        return fd

    def close(self) -> None:
        """Close whatever we hold (after a keeper took the same file descriptions over)."""
        for fd in (self.old_fd, self.new_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    self.calls.close(fd)
        self.old_fd = self.new_fd = None

    def fds(self) -> list[int]:
        """The fds a keeper must inherit (the dir's and the locked files')."""
        return [fd for fd in (self.dir_fd, self.old_fd, self.new_fd) if fd is not None]

    def to_json(self) -> dict[str, Any]:
        """What a keeper needs to go on with this handoff."""
        return {
            "directory": self.directory, "name": self.name, "dir_fd": self.dir_fd,
            "old_fd": self.old_fd, "new_fd": self.new_fd, "old_key": list(self.old_key),
            "state": self.state,
        }  # fmt: skip


def run(
    handoffs: Sequence[Handoff],
    calls: Syscalls,
    wait: float | None,
    stop: Callable[[], bool] = lambda: False,
    limit: float = 0.05,
) -> list[Handoff]:
    """Step every handoff until all are over, `wait` seconds pass or `stop()`; the unfinished."""
    from uvsweep.remove import backoff  # noqa: PLC0415 - the package imports this module

    pending = list(handoffs)
    for waited in backoff(limit=limit, calls=calls):
        pending = [handoff for handoff in pending if not handoff.step()]
        if not pending or (wait is not None and waited >= wait) or stop():
            break
    return pending


class Keeper:
    """Starts the detached process that finishes handoffs (`uvsweep _keeper`)."""

    def take(self, handoffs: Sequence[Handoff], view: dict[str, Any]) -> int:
        """Pass `handoffs` (their fds inherited) to a new keeper; its pid. OSError if it fails.

        Returns once the keeper says it has taken them over; the caller then closes its own
        copies of the fds: the locks live on in the keeper, which shares the same open file
        descriptions. If no word comes, the keeper is killed and OSError raised, so the caller
        goes on holding the locks itself.
        """
        import select  # noqa: PLC0415
        import signal  # noqa: PLC0415
        import subprocess  # noqa: PLC0415

        ready_r, ready_w = os.pipe()
        try:
            job = json.dumps({
                "view": view, "ready_fd": ready_w, "handoffs": [h.to_json() for h in handoffs],
            })  # fmt: skip
            fds = sorted({ready_w, *(fd for handoff in handoffs for fd in handoff.fds())})
            if getattr(sys, "frozen", False):
                argv = [sys.executable, KEEPER_COMMAND, job]
            else:
                argv = [sys.executable, "-m", "uvsweep", KEEPER_COMMAND, job]
            # through a shell that starts it in the background and exits: the keeper is nobody's
            # child (no zombie in a long-lived tray), in a session of its own (no Ctrl-C for it)
            launcher = '"$@" </dev/null >/dev/null 2>&1 & echo $!'
            out = subprocess.run(
                ["/bin/sh", "-c", launcher, "uvsweep-keeper", *argv], pass_fds=fds,
                start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, check=False, timeout=30,
            )  # fmt: skip
            os.close(ready_w)
            ready_w = -1
            try:
                pid = int(out.stdout.split()[0])
            except (IndexError, ValueError):
                raise OSError(f"the keeper did not start (status {out.returncode})") from None
            readable, _, _ = select.select([ready_r], [], [], KEEPER_START_TIMEOUT)
            if not readable or os.read(ready_r, 16) != b"ready\n":
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
                raise OSError("the keeper did not take over the locks in time")
            return pid
        finally:
            os.close(ready_r)
            if ready_w >= 0:
                os.close(ready_w)


def keeper_log_path() -> str | None:
    """Where keepers log (`<state dir>/keeper.log`), or None when there is no state dir."""
    try:
        from platformdirs import user_state_dir  # noqa: PLC0415

        return os.path.join(user_state_dir("uvsweep"), "keeper.log")
    except ImportError:  # pragma: no cover - a declared dependency
        return None


def _log(message: str) -> None:
    import time  # noqa: PLC0415

    path = keeper_log_path()
    if path is None:
        return
    with contextlib.suppress(OSError):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if os.path.exists(path) and os.path.getsize(path) > 256 * 1024:
            os.replace(path, path + ".1")  # one old generation: the log stays small
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(f"{stamp} keeper {os.getpid()}: {message}\n")


def _resume(job: dict[str, Any]) -> tuple[PosixRemover, list[Handoff]]:
    from uvsweep.remove import for_platform  # noqa: PLC0415
    from uvsweep.remove.posix import PosixRemover  # noqa: PLC0415

    remover = for_platform(**job["view"])
    if not isinstance(remover, PosixRemover):
        raise TypeError("a keeper runs only Unix handoffs")
    return remover, [remover.resume_handoff(item) for item in job["handoffs"]]


def keeper_main(argv: Sequence[str]) -> int:
    """`uvsweep _keeper JOB`: finish the handoffs in JOB (JSON), holding the inherited locks."""
    import signal  # noqa: PLC0415

    for name in ("SIGINT", "SIGHUP", "SIGPIPE"):  # only the handoffs' end stops a keeper
        with contextlib.suppress(AttributeError, ValueError, OSError):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
    try:
        job = json.loads(argv[0])
        remover, handoffs = _resume(job)
        os.write(job["ready_fd"], b"ready\n")  # the cleaner may close its copies now
        os.close(job["ready_fd"])
    except (IndexError, KeyError, TypeError, ValueError, OSError) as err:
        _log(f"cannot start: {err}")
        return 2
    paths = ", ".join(h.path for h in handoffs)
    _log(f"keeping the lock on {paths} until the old files' last users are done")
    run(handoffs, remover.calls, wait=None, limit=0.1)
    _log(f"done with {paths}")
    return 0
