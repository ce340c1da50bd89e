"""The Windows keeper: a detached process that finishes a lock handoff after `clean` returns.

Why it needs a design of its own: a `LockFileEx` lock belongs to the file object *and the
process* that took it, and dies with that process. A child that inherits the handle gets the
same file object but none of the parent's locks (it can neither use nor release them), so a
lock cannot be passed on as a Unix keeper passes its open file descriptions.

What makes it possible: byte ranges. uv locks "the whole file", offset 0 and length 2^64 - 1
(Rust std's `File::try_lock`/`lock`, fs4's `try_lock_exclusive` before it), and a request
conflicts with every lock it overlaps. So any one byte locked by anybody keeps every uv out,
and two *different* bytes can be locked by two processes at once:

1. **Fences.** During a handoff the cleaner holds byte [0, 1) of the new file at the name
   (`CLEANER_FENCE`, taken with `LOCKFILE_FAIL_IMMEDIATELY` like the whole-file lock it replaces:
   it fails while a new uv holds the file). A uv opening the name waits, or fails its try-lock.
2. **Handover.** When the handoff outlasts `clean`'s bounded wait (or Ctrl-C / a quitting tray
   asks it to stop), the cleaner starts a keeper: the same interpreter (or the frozen
   executable) with `_winkeeper`, detached (`DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP`: no
   console, so no Ctrl-C; `CREATE_BREAKAWAY_FROM_JOB` where the job allows it, so closing the
   cleaner's console or job does not kill it), inheriting only the handoffs' two handles (the
   new file's and the old, renamed, delete-pending file's: no path can open that one any more),
   and its job (JSON) on stdin. The keeper checks each inherited handle's identity (volume
   serial and file index, `GetFileInformationByHandle`) against the job, locks byte [1, 2) of
   each new file (`KEEPER_FENCE`: no overlap with the cleaner's byte, so it is granted while
   the cleaner still holds [0, 1)), and only then writes `ready` on stdout.
3. **Release.** Only on `ready` does the cleaner unlock [0, 1) and close its handles. At every
   moment one of the two bytes is locked: a uv waiting for the whole file stays queued (its
   request still overlaps the keeper's byte), and no try-lock gets through.
4. **Keeping.** The keeper follows the old file's users by the rule the in-process handoff
   uses (`FileProcessIdsUsingFileInformation` on the old file's handle: any process but the
   keeper with a handle on it; a waiter has one), each round afresh, and once nobody else has
   it, unlocks [1, 2) and closes both handles (the renamed old file goes with the last one).
   It logs to `<state dir>/keeper.log` and exits when every handoff is over.

If the keeper cannot be started, or no `ready` comes within `KEEPER_READY_TIMEOUT` (it is then
killed) or it exits first, the cleaner keeps its byte and waits itself, as before the keeper
existed: only Ctrl-C twice gives that up. Once `ready` came, the keeper is the only guard: a
keeper killed from outside (Task Manager, `taskkill /f`) drops its byte like any process, and a
uv may then lock the new file while the old file's user still works on the old one; the same
holds for a Unix keeper killed with SIGKILL. The log names the files it was keeping.

The OS calls go through `Win32Remove` (files) and `WinKeeper.start` (the process), so the
handover is tested on any OS with the Windows kernel simulated.
"""
# ruff: noqa: PLC0415 - imports inside functions: only the path that needs a module pays for it

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import IO, Any, Protocol

#: The byte of the new file the cleaner holds during a handoff: (offset, length).
CLEANER_FENCE = (0, 1)
#: The byte a keeper holds once it took a handoff over; it never overlaps the cleaner's.
KEEPER_FENCE = (1, 1)
#: The keeper's hidden subcommand.
WIN_KEEPER_COMMAND = "_winkeeper"
#: How long a new keeper may take to say `ready` (seconds; a cold start is well under 1 s).
KEEPER_READY_TIMEOUT = 10.0
#: What a keeper writes once it holds every new file's byte.
READY = "ready"

DETACHED_PROCESS = 0x00000008
CREATE_NEW_PROCESS_GROUP = 0x00000200
CREATE_BREAKAWAY_FROM_JOB = 0x01000000
ERROR_ACCESS_DENIED = 5
_PLATFORM: str = sys.platform  # (a plain str: the checks below stay visible to mypy everywhere)

#: What a keeper runs when not frozen: isolated (`-I`), uvsweep's package dir put first.
WIN_KEEPER_CODE = (
    "import sys; sys.path.insert(0, sys.argv[1]); del sys.argv[1];"
    " from uvsweep.remove.windows import keeper_main; sys.exit(keeper_main(sys.argv[2:]))"
)


class KeeperFiles(Protocol):
    """The Win32 file calls a keeper makes (a subset of `remove.windows.Win32Remove`)."""

    def identity(self, handle: Any) -> tuple[int, int]: ...
    def lock_range(self, handle: Any, offset: int, length: int) -> bool: ...
    def unlock_range(self, handle: Any, offset: int, length: int) -> None: ...
    def pids_using(self, handle: Any) -> list[int]: ...
    def close(self, handle: Any) -> None: ...


class Clock(Protocol):
    def monotonic(self) -> float: ...
    def sleep(self, seconds: float) -> None: ...


class WinHandoff:
    """One handoff in flight: the old (renamed, delete-pending) file, still used by some
    process, and the new file at the name, fenced by whoever holds it now."""

    def __init__(
        self, path: str, old: Any, new: Any, old_id: tuple[int, int], new_id: tuple[int, int]
    ) -> None:
        self.path = path
        self.old, self.new = old, new  # handles (numbers: inherited ones keep their values)
        self.old_id, self.new_id = old_id, new_id  # (volume serial, file index)
        self.done = False

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path, "old": int(self.old), "new": int(self.new),
            "old_id": list(self.old_id), "new_id": list(self.new_id),
        }  # fmt: skip

    @classmethod
    def from_json(cls, item: dict[str, Any]) -> WinHandoff:
        old_id, new_id = item["old_id"], item["new_id"]
        if not (isinstance(item["old"], int) and isinstance(item["new"], int)):
            raise TypeError("handles must be numbers")
        return cls(
            str(item["path"]), item["old"], item["new"],
            (int(old_id[0]), int(old_id[1])), (int(new_id[0]), int(new_id[1])),
        )  # fmt: skip


def still_used(files: KeeperFiles, handle: Any, me: int) -> bool:
    """Whether any process but `me` has a handle on the file (unknown counts as used)."""
    try:
        pids = files.pids_using(handle)
    except OSError:
        return True
    return any(pid != me for pid in pids)


# ---- the cleaner's side ------------------------------------------------------------------------


class Started(Protocol):
    """A keeper process just started."""

    pid: int

    def ready(self, timeout: float) -> bool:
        """Whether it said `ready` within `timeout` seconds (False: it exited or was silent)."""

    def kill(self) -> None:
        """End it (it never said `ready`: its byte, if any, goes with it)."""


class WinKeeper:
    """Starts Windows keepers (see the module docstring); `start` is the OS seam."""

    ready_timeout = KEEPER_READY_TIMEOUT

    def take(self, handoffs: Sequence[WinHandoff], log: str | None) -> int:
        """Pass `handoffs` to a new keeper; its pid once it holds every new file's byte.

        OSError if it cannot start or does not say `ready` in time (it is killed then): the
        caller still holds its own byte of each new file and must keep it.
        """
        job = json.dumps({"handoffs": [h.to_json() for h in handoffs], "log": log})
        handles = [handle for h in handoffs for handle in (h.old, h.new)]
        started = self.start(handles, job)
        try:
            if started.ready(self.ready_timeout):
                return started.pid
        except OSError:
            pass
        with contextlib.suppress(OSError):
            started.kill()
        raise OSError("the keeper did not take the lock over in time")

    def argv(self) -> list[str]:
        """The keeper's command line: `uvsweep.exe _winkeeper` frozen, else the interpreter."""
        if getattr(sys, "frozen", False):
            return [sys.executable, WIN_KEEPER_COMMAND]
        package_parent = os.path.dirname(
            os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        )
        return [sys.executable, "-I", "-c", WIN_KEEPER_CODE, package_parent, WIN_KEEPER_COMMAND]

    def start(self, handles: Sequence[Any], job: str) -> Started:
        """Start a detached keeper inheriting exactly `handles`, `job` on its stdin."""
        if _PLATFORM != "win32":
            raise OSError("a Windows keeper starts only on Windows")
        try:
            return _start_detached(self.argv(), handles, job)
        except (ValueError, TypeError) as err:  # a handle subprocess would not pass on
            raise OSError(f"the keeper could not be started: {err}") from None


class _Process:
    """A started keeper process (`subprocess.Popen`) and the thread reading its `ready`."""

    def __init__(self, process: Any) -> None:
        import threading

        self.process = process
        self.pid: int = process.pid
        self._said: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True, name="keeper-ready")
        self._reader.start()

    def _read(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._said.append(self.process.stdout.readline())

    def ready(self, timeout: float) -> bool:
        self._reader.join(timeout)  # a silent keeper is killed below: its pipe then ends
        said = bool(self._said) and self._said[0].strip() == READY.encode()
        if said:
            with contextlib.suppress(OSError):
                self.process.stdout.close()
        return said

    def kill(self) -> None:
        self.process.kill()
        with contextlib.suppress(Exception):
            self.process.wait(5)


#: Keepers started by this process and maybe still running: kept referenced, so that a
#: long-lived tray never drops a running keeper's `Popen` (a ResourceWarning, nothing more).
_STARTED: list[Any] = []


def _start_detached(argv: Sequence[str], handles: Sequence[Any], job: str) -> _Process:
    import subprocess

    _STARTED[:] = [process for process in _STARTED if process.poll() is None]

    flags = DETACHED_PROCESS | CREATE_NEW_PROCESS_GROUP
    made: list[Any] = []
    try:
        for handle in handles:  # inheritable only while CreateProcess runs, only these
            os.set_handle_inheritable(int(handle), True)  # type: ignore[attr-defined,unused-ignore]  # noqa: FBT003
            made.append(handle)
        for extra in (CREATE_BREAKAWAY_FROM_JOB, 0):  # a job that forbids breakaway refuses it
            info = subprocess.STARTUPINFO(  # type: ignore[attr-defined,unused-ignore]
                lpAttributeList={"handle_list": [int(h) for h in handles]}
            )
            try:
                process = subprocess.Popen(
                    list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL, close_fds=True, startupinfo=info,
                    creationflags=flags | extra,
                    # not the caller's working dir: a process's cwd cannot be deleted on Windows
                    cwd=os.path.dirname(sys.executable) or None,
                )  # fmt: skip
            except PermissionError as err:
                if extra and getattr(err, "winerror", None) == ERROR_ACCESS_DENIED:
                    continue
                raise
            break
    finally:
        for handle in made:
            with contextlib.suppress(OSError):
                os.set_handle_inheritable(int(handle), False)  # type: ignore[attr-defined,unused-ignore]  # noqa: FBT003
    _STARTED.append(process)
    started = _Process(process)
    stdin = process.stdin
    if stdin is not None:
        try:
            stdin.write(job.encode())
            stdin.close()
        except OSError:
            pass  # it died reading: no `ready` comes
    return started


# ---- the keeper's side -------------------------------------------------------------------------


def take_over(handoffs: Sequence[WinHandoff], files: KeeperFiles) -> None:
    """Check each inherited handle is the file the job names, and lock each new file's
    `KEEPER_FENCE`; OSError (with every byte taken here let go) if any of it fails."""
    taken: list[WinHandoff] = []
    try:
        for handoff in handoffs:
            _take_one(handoff, files)
            taken.append(handoff)
    except OSError:
        for handoff in taken:
            with contextlib.suppress(OSError):
                files.unlock_range(handoff.new, *KEEPER_FENCE)
        raise


def _take_one(handoff: WinHandoff, files: KeeperFiles) -> None:
    if files.identity(handoff.new) != handoff.new_id:
        raise OSError(f"{handoff.path}: the new file's handle is not the file expected")
    if files.identity(handoff.old) != handoff.old_id:
        raise OSError(f"{handoff.path}: the old file's handle is not the file expected")
    if not files.lock_range(handoff.new, *KEEPER_FENCE):
        raise OSError(f"{handoff.path}: the new file's byte is locked by someone else")


def keep(
    handoffs: Sequence[WinHandoff],
    files: KeeperFiles,
    me: int,
    clock: Clock,
    log: Callable[[str], None] = lambda _line: None,
    limit: float = 0.5,
) -> None:
    """Hold each new file's byte until nobody but us has a handle on its old file; then let
    both go. Returns once every handoff is over (it never gives one up)."""
    from uvsweep.remove import backoff  # the package imports its removers

    pending = list(handoffs)
    for _waited in backoff(start=0.01, limit=limit, calls=clock):
        for handoff in list(pending):
            if still_used(files, handoff.old, me):
                continue
            with contextlib.suppress(OSError):
                files.unlock_range(handoff.new, *KEEPER_FENCE)
            for handle in (handoff.new, handoff.old):
                with contextlib.suppress(OSError):
                    files.close(handle)
            handoff.done = True
            pending.remove(handoff)
            log(f"{handoff.path}: the old file is free; the lock at the name is let go")
        if not pending:
            return


class _RealClock:
    monotonic = staticmethod(time.monotonic)
    sleep = staticmethod(time.sleep)


def serve(
    job_text: str | bytes,
    files: KeeperFiles | None,
    say_ready: Callable[[], None],
    me: int,
    clock: Clock,
    make_files: Callable[[], KeeperFiles] | None = None,
) -> int:
    """The keeper's whole life, OS calls injected: take the job's handoffs over, `say_ready`
    once every new file's byte is ours (never before), keep them until the old files are
    free. 2 if it cannot take them over (the cleaner then keeps its own bytes), else 0.
    `files` (or, when None, `make_files()`) makes the Win32 calls: the remover's module gives
    its own (`remove.windows.keeper_main`), which this module never imports."""
    log_path: str | None = None
    try:
        job = json.loads(job_text)
        log_path = job.get("log") if isinstance(job.get("log"), str) else None
        handoffs = _handoffs(job)
        if files is None:
            files = _made(make_files)
        take_over(handoffs, files)
    except (KeyError, TypeError, ValueError, IndexError, OSError, AttributeError) as err:
        write_log(log_path, f"cannot start: {err}")
        return 2
    say_ready()
    paths = ", ".join(h.path for h in handoffs)
    write_log(log_path, f"keeping the lock at {paths} until the old files' last users are done")

    def line(text: str) -> None:
        write_log(log_path, text)

    keep(handoffs, files, me, clock, line)
    write_log(log_path, f"done with {paths}")
    return 0


def _made(make_files: Callable[[], KeeperFiles] | None) -> KeeperFiles:
    if make_files is None:
        raise OSError("no Win32 file calls to run the handoffs with")
    return make_files()


def _handoffs(job: dict[str, Any]) -> list[WinHandoff]:
    handoffs = [WinHandoff.from_json(item) for item in job["handoffs"]]
    if not handoffs:
        raise ValueError("the job names no handoff")
    return handoffs


def keeper_main(
    argv: Sequence[str],
    stdin: IO[bytes] | None = None,
    stdout: IO[bytes] | None = None,
    make_files: Callable[[], KeeperFiles] | None = None,
) -> int:
    """`uvsweep _winkeeper`: `serve` the job on stdin (its handles inherited), `ready` on
    stdout."""
    del argv  # everything comes on stdin
    source = stdin or sys.stdin.buffer
    sink = stdout or sys.stdout.buffer

    def say_ready() -> None:
        with contextlib.suppress(OSError, ValueError):
            sink.write(f"{READY}\n".encode())
            sink.flush()
            sink.close()

    try:
        job = source.read()
    except OSError:
        return 2
    return serve(job, None, say_ready, os.getpid(), _RealClock(), make_files)


def write_log(path: str | None, message: str) -> None:
    """One line in the keeper log (kept small: one older generation, `.1`); never raises."""
    if not path:
        return
    with contextlib.suppress(OSError):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with contextlib.suppress(OSError):
            if os.path.getsize(path) > 256 * 1024:
                os.replace(path, path + ".1")
        with open(path, "a", encoding="utf-8") as stream:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S")
            stream.write(f"{stamp} keeper {os.getpid()}: {message}\n")
