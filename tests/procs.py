"""Processes the tests start: each in a session of its own, marked, and ended as a whole group.

Every process the suite starts carries `MARK` in its environment (set in `os.environ` when the
session starts, so children, their children and detached keepers inherit it; helpers that build
an environment from scratch add it with `marked_env`). `ours()` finds them all, however detached,
by that mark or by descent from this process; other processes on the machine are never touched.

- `popen(argv, lasting=False, **kwargs)`: `subprocess.Popen` in a new session (its pid is its
  process group). `lasting=True` (or `keep(pid)`): a fixture keeps it (and what it starts)
  running until its teardown; any other process still running when the test's body ends was
  left there by the test (`left_by_test`), and the test fails.
- `run(argv, timeout=..., **kwargs)`: `subprocess.run` likewise; a timeout ends the whole group.
- `stop(proc_or_pid)`: SIGTERM to the group, SIGKILL after `grace` seconds; reaps; returns the
  processes that were still running when asked (for fixtures whose processes should be gone).
- `alive(pid)`, `wait_gone(pids)`: a zombie counts as gone.
- `ours()`, `end(pids)`: what the suite's leak checks in `tests/conftest.py` use.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

#: The environment variable every process the suite starts carries.
MARK = "UVSWEEP_TEST_RUN"
#: Names of the processes the session-end check looks for (uv itself, fake uv, uvsweep, keepers).
UV_NAMES = ("uv", "uvx", "uvsweep", "uvsweep-keeper")
GRACE = 2.0

_RUN: dict[str, str] = {}  # "token": this run's mark, once the session has started


def start_marking() -> str:
    """Put this run's mark into `os.environ` (once per session); the token."""
    if "token" not in _RUN:
        token = _RUN["token"] = f"{os.getpid()}-{time.time_ns()}"
        outer = os.environ.get(MARK)  # a suite run by a test of this suite keeps both marks
        os.environ[MARK] = f"{outer},{token}" if outer else token
    return _RUN["token"]


def marked_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """`env` (default: this process's) with the suite's mark in it."""
    found = dict(os.environ if env is None else env)
    if MARK in os.environ:
        found[MARK] = os.environ[MARK]
    return found


def _default_sigint() -> None:  # pragma: no cover - runs in the child
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def popen(argv: Sequence[str], *, lasting: bool = False, **kwargs: Any) -> subprocess.Popen[Any]:
    """`subprocess.Popen(argv, **kwargs)` in a session of its own, marked.

    A suite run in the background (`pytest &`, `nohup`) ignores SIGINT, and its children would
    inherit that: a test that sends SIGINT, as a terminal's Ctrl-C would, gets a child where it
    works (only then does the child pay for a `preexec_fn`)."""
    kwargs.setdefault("start_new_session", True)
    kwargs["env"] = marked_env(kwargs.get("env"))
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN and "preexec_fn" not in kwargs:
        kwargs["preexec_fn"] = _default_sigint
    proc = subprocess.Popen(list(argv), **kwargs)
    if lasting:
        keep(proc.pid)
    return proc


#: Processes, and sessions, that fixtures keep running until their teardown (emptied after
#: each test); what these start is the fixture's too.
LASTING: set[int] = set()
LASTING_SESSIONS: set[int] = set()


def keep(pid: int) -> None:
    """Say that `pid`, its session and its descendants are a fixture's, running until the
    fixture's teardown."""
    LASTING.add(pid)
    with contextlib.suppress(OSError):
        if os.getsid(pid) != os.getsid(0):  # never the suite's own session
            LASTING_SESSIONS.add(os.getsid(pid))


def forget_kept() -> None:
    LASTING.clear()
    LASTING_SESSIONS.clear()


def _kept(pid: int) -> bool:
    seen: set[int] = set()
    up = pid
    while up > 1 and up not in seen:
        if up in LASTING:
            return True
        seen.add(up)
        up = _ppid(up)
    try:
        return os.getsid(pid) in LASTING_SESSIONS
    except OSError:
        return True  # gone


def left_by_test(before: set[int]) -> set[int]:
    """The suite's processes started since `before` that no fixture keeps (see `keep`)."""
    return {pid for pid in ours() - before if not _kept(pid)}


def run(argv: Sequence[str], *, timeout: float = 60, check: bool = False, **kwargs: Any) -> (
    subprocess.CompletedProcess[Any]
):  # fmt: skip
    """`subprocess.run` in a session of its own: on a timeout the whole group is ended (not only
    the child, as `subprocess.run` does) before `TimeoutExpired` is raised."""
    if kwargs.pop("capture_output", False):
        kwargs["stdout"] = kwargs["stderr"] = subprocess.PIPE
    given = kwargs.pop("input", None)
    if given is not None:
        kwargs.setdefault("stdin", subprocess.PIPE)
    with popen(argv, **kwargs) as proc:
        try:
            out, err = proc.communicate(given, timeout=timeout)
        except subprocess.TimeoutExpired:
            stop(proc, grace=0)
            raise
        finally:
            if proc.poll() is None:
                stop(proc, grace=0)
    done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    if check:
        done.check_returncode()
    return done


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, or a process gone, does not)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            state = handle.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        if os.path.isdir("/proc/self"):  # Linux: gone
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return state not in (b"Z", b"X")


def _group_members(pgid: int) -> list[int]:
    return [pid for pid in pids() if _pgid(pid) == pgid and alive(pid)]


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def stop(target: subprocess.Popen[Any] | int, grace: float = GRACE) -> list[str]:
    """End `target` and its whole process group: SIGTERM, then SIGKILL after `grace` seconds.
    Reaps a Popen and closes its pipes. Returns a description of each process of the group that
    was still running when asked (the caller decides whether that is a failure)."""
    proc = target if isinstance(target, subprocess.Popen) else None
    pid = target.pid if isinstance(target, subprocess.Popen) else target
    pgid = _pgid(pid)
    group = pgid is not None and pgid == pid and pgid != os.getpgrp()
    members = _group_members(pgid) if group and pgid is not None else []
    if alive(pid) and pid not in members:
        members.append(pid)
    found = [describe(member) for member in members]
    if members:
        _signal(pid, pgid if group else None, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(alive(m) for m in members):
            if proc is not None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(0.02)
            else:
                time.sleep(0.02)
        if any(alive(m) for m in members):
            _signal(pid, pgid if group else None, signal.SIGKILL)
            for member in members:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(member, signal.SIGKILL)
    if proc is not None:
        proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
    return found


def _signal(pid: int, pgid: int | None, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if pgid is not None:
            os.killpg(pgid, signum)
        else:
            os.kill(pid, signum)


def wait_gone(pids: Iterable[int], timeout: float = 15.0) -> list[int]:
    """Wait until every one of `pids` has exited; those still running at the deadline."""
    deadline = time.monotonic() + timeout
    left = [pid for pid in pids if alive(pid)]
    while left and time.monotonic() < deadline:
        time.sleep(0.02)
        left = [pid for pid in left if alive(pid)]
    return left


# ---- finding the suite's processes (Linux /proc) ------------------------------------------------


def pids() -> list[int]:
    try:
        return [int(entry) for entry in os.listdir("/proc") if entry.isdigit()]
    except OSError:
        return []


def read(pid: int, name: str) -> bytes:
    try:
        with open(f"/proc/{pid}/{name}", "rb") as handle:
            return handle.read()
    except OSError:
        return b""


def _ppid(pid: int) -> int:
    try:
        return int(read(pid, "stat").rsplit(b")", 1)[1].split()[1])
    except (IndexError, ValueError):
        return 0


def name(pid: int) -> str:
    return read(pid, "comm").decode(errors="replace").strip()


def describe(pid: int) -> str:
    argv = read(pid, "cmdline").replace(b"\0", b" ").decode(errors="replace").strip()
    return f"pid {pid} ({name(pid)}): {argv[:160]}"


#: (pid, start time) -> whether its environment carries this run's mark (it never changes)
_MARKED: dict[tuple[int, bytes], bool] = {}


def _marked(pid: int, started: bytes, token: bytes) -> bool:
    key = (pid, started)
    if key not in _MARKED:
        environ = read(pid, "environ")
        _MARKED[key] = any(
            item.startswith(MARK.encode() + b"=") and token in item.split(b"=", 1)[1]
            for item in environ.split(b"\0")
        )
    return _MARKED[key]


def ours() -> set[int]:
    """Running processes this suite started: marked with this run's token, or descended from this
    process (a child started with an environment of its own), never this process itself."""
    if "token" not in _RUN or not sys.platform.startswith("linux"):
        return set()
    me = os.getpid()
    token = _RUN["token"].encode()
    parents: dict[int, int] = {}
    found: set[int] = set()
    for pid in pids():
        fields = read(pid, "stat").rsplit(b")", 1)[-1].split()
        if pid == me or len(fields) < 20 or fields[0] in (b"Z", b"X"):
            continue  # gone, a zombie, or this process
        parents[pid] = int(fields[1])
        if _marked(pid, fields[19], token):  # field 22 of stat: its start time
            found.add(pid)
    for pid in parents:
        seen = set()
        up = parents.get(pid, 0)
        while up and up not in seen:
            if up == me:
                found.add(pid)
                break
            seen.add(up)
            up = parents.get(up, 0)
    return found


def end(pids: Iterable[int]) -> list[str]:
    """End every one of `pids` (its group too, when it leads one that is not ours); what ran."""
    found: list[str] = []
    for pid in sorted(pids):
        if alive(pid):
            found += stop(pid, grace=0.5)
    return found
