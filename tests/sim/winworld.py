"""Actors on the simulated Windows kernel: uv as it runs on Windows, and the real WindowsRemover.

`WinCalls` is what one actor's process can ask of Windows: the `Win32Remove` seam the remover's
file calls go through (each method is the Win32 calls `Kernel32Remove` makes, done on the
simulated kernel), `os.lstat`/`os.listdir`, the clock of its waits, and the calls uv makes. As
with `world.SimCalls`, every call parks the actor first (a scheduling point) and is carried out
when the scheduler picks it again; a `LockFileEx` that has to wait parks the actor until the
kernel grants it.

What is *not* in the model: `Kernel32Remove` itself (the ctypes layer; its prototypes and
structures are checked by `tests/unit/test_win32_*`); its fallbacks for file systems without
POSIX semantics (FAT, Windows before 10 1607/1709) are modelled by `WinCalls(posix=False)`
(a classic rename and a classic delete disposition).
"""

from __future__ import annotations

import inspect
import json
import ntpath
import os
import secrets
import sys
import threading
import zlib
from collections.abc import Callable, Sequence
from typing import Any

from tests.sim.kernel import BLOCKED, EPOCH
from tests.sim.winkernel import (
    DELETE,
    ERROR_NAMES,
    GENERIC_READ,
    GENERIC_WRITE,
    OPEN_ALWAYS,
    OPEN_EXISTING,
    READ_CONTROL,
    SHARE_ALL,
    WIN_TMP,
    WinKernel,
    access_text,
    disposition_text,
    share_text,
)
from tests.sim.world import LOCK_NAME, Actor, ActorCalls, Body, Scenario, SimProcesses
from uvsweep.remove.winkeeper import WinHandoff, WinKeeper, serve

#: The lock file's path as the remover and uv name it.
WIN_LOCK_PATH = ntpath.join(WIN_TMP, LOCK_NAME)


def _error_seen(err: OSError) -> tuple[str, str]:
    code = getattr(err, "winerror", None)
    return "error", ERROR_NAMES.get(code, f"errno {err.errno}") if code else f"errno {err.errno}"


class WinCalls(ActorCalls):
    """One actor's Windows: `Win32Remove`, `os.lstat`/`os.listdir`, a clock, and uv's calls."""

    def __init__(self, actor: Actor, posix: bool = True, alias_own_pid: bool = False) -> None:
        self.actor = actor
        self.kernel: WinKernel = actor.world.kernel
        self.pid = actor.pid
        self.posix = posix  # POSIX-semantics rename and delete (NTFS on Windows 10 1709 and up)
        # the remover compares pids with os.getpid() (code older than its getpid seam): report
        # this process's own pid as that
        self.alias_own_pid = alias_own_pid

    def _seen(self, err: OSError) -> object:
        return _error_seen(err)

    # ---- os ------------------------------------------------------------------------------------

    def lstat(self, path: str) -> os.stat_result:
        return self._do(("lstat", path), lambda: self.kernel.lstat(path))  # type: ignore[no-any-return]

    def listdir(self, path: str) -> list[str]:
        return self._do(("listdir", path), lambda: self.kernel.listdir(path))  # type: ignore[no-any-return]

    # ---- CreateFileW, LockFileEx, UnlockFileEx, CloseHandle ------------------------------------

    def create_file(self, path: str, access: int, share: int, disposition: int) -> int:
        return self._do(  # type: ignore[no-any-return]
            (
                "CreateFileW",
                ntpath.basename(path),
                access_text(access),
                share_text(share),
                disposition_text(disposition),
            ),
            lambda: self.kernel.create_file(self.pid, path, access, share, disposition),
        )

    def lock_file(
        self, handle: int, exclusive: bool = True, fail_immediately: bool = False
    ) -> None:
        """`LockFileEx` over the whole file; a request that has to wait parks until granted."""
        what = ("LockFileEx", handle, exclusive, fail_immediately)
        self.actor.park(what)
        try:
            outcome = self.kernel.lock(self.pid, handle, exclusive, fail_immediately)
        except OSError as err:
            self.actor.observe(what, _error_seen(err))
            raise
        if outcome is BLOCKED:
            self.actor.status = "blocked"
            self.actor.park(("LockFileEx-wait", handle))
            self.actor.status = "ready"
            assert self.kernel.holds_lock(self.pid, handle)  # granted in the unlock
        self.actor.observe(what, None)

    def unlock_file(self, handle: int) -> None:
        """`UnlockFileEx`; a uv actor's critical section ends when it runs."""
        what = ("UnlockFileEx", handle)
        self.actor.park(what)
        self.actor.leave_critical()
        try:
            self.kernel.unlock(self.pid, handle)
        except OSError as err:
            self.actor.observe(what, _error_seen(err))
            raise
        self.actor.observe(what, None)

    def close(self, handle: int) -> None:
        self._do(("CloseHandle", handle), lambda: self.kernel.close(self.pid, handle))

    # ---- Win32Remove ---------------------------------------------------------------------------

    def open_for_delete(self, path: str) -> int:
        return self.create_file(path, GENERIC_READ | DELETE | READ_CONTROL, SHARE_ALL,
                                OPEN_EXISTING)  # fmt: skip

    def open_generation(self, path: str) -> int:
        return self.create_file(path, GENERIC_READ | GENERIC_WRITE, SHARE_ALL, OPEN_ALWAYS)

    def identity(self, handle: int) -> tuple[int, int]:
        return self._do(  # type: ignore[no-any-return]
            ("GetFileInformationByHandle", handle),
            lambda: self.kernel.identity(self.pid, handle),
        )

    def owner(self, handle: int) -> tuple[str, bool]:
        self.kernel._handle(self.pid, handle)
        return "SIM\\user", True  # every file is ours (GetSecurityInfo reads nothing shared)

    def lock_exclusive(self, handle: int) -> bool:
        try:
            self.lock_file(handle, exclusive=True, fail_immediately=True)
        except PermissionError as err:
            if getattr(err, "winerror", None) == 33:  # ERROR_LOCK_VIOLATION
                return False
            raise
        return True

    def unlock(self, handle: int) -> None:
        self.unlock_file(handle)

    def lock_range(self, handle: int, offset: int, length: int) -> bool:
        """`LockFileEx(EXCLUSIVE | FAIL_IMMEDIATELY)` over [offset, offset + length)."""
        what = ("LockFileEx", handle, offset, length)

        def lock() -> bool:
            try:
                self.kernel.lock(self.pid, handle, True, True, offset, length)
            except PermissionError as err:
                if getattr(err, "winerror", None) == 33:  # ERROR_LOCK_VIOLATION
                    return False
                raise
            return True

        return self._do(what, lock)  # type: ignore[no-any-return]

    def unlock_range(self, handle: int, offset: int, length: int) -> None:
        self._do(
            ("UnlockFileEx", handle, offset, length),
            lambda: self.kernel.unlock(self.pid, handle, offset, length),
        )

    def pids_using(self, handle: int) -> list[int]:
        def query() -> list[int]:
            pids = self.kernel.processes_using(self.pid, handle)
            if self.alias_own_pid:
                pids = [os.getpid() if pid == self.pid else pid for pid in pids]
            return pids

        return self._do(("FileProcessIdsUsingFileInformation", handle), query)  # type: ignore[no-any-return]

    def rename(self, handle: int, new_name: str) -> None:
        self._do(
            ("SetFileInformationByHandle", "FileRenameInfoEx" if self.posix else "FileRenameInfo",
             handle, new_name),
            lambda: self.kernel.rename(self.pid, handle, new_name),
        )  # fmt: skip

    def set_delete(self, handle: int, delete: bool = True) -> None:
        """`FileDispositionInfoEx(DELETE | POSIX_SEMANTICS)` (or clear it), as `Kernel32Remove`
        does; the classic `FileDispositionInfo` where there are no POSIX semantics."""
        kind = "FileDispositionInfoEx" if self.posix else "FileDispositionInfo"
        self._do(
            ("SetFileInformationByHandle", kind, handle, delete),
            lambda: self.kernel.set_disposition(self.pid, handle, delete, self.posix),
        )

    # ---- uv's own work -------------------------------------------------------------------------

    def work(self) -> None:
        self._do(("work",), lambda: None)


class _SimSecrets:
    """`secrets` for the remover's unique names: deterministic on an actor's thread.

    The search needs every actor to be a function of what it observed; a random name would make
    equal states look different. Each actor thread counts its own names; other threads get the
    real `secrets`.
    """

    def __init__(self) -> None:
        self.local = threading.local()

    def token_hex(self, nbytes: int = 32) -> str:
        thread = threading.current_thread()
        if not thread.name.startswith("sim-"):
            return secrets.token_hex(nbytes)
        count = getattr(self.local, "count", 0) + 1
        self.local.count = count
        return f"{zlib.crc32(thread.name.encode()):08x}{count:0{2 * nbytes - 8}x}"

    def __getattr__(self, name: str) -> Any:
        return getattr(secrets, name)


_SIM_SECRETS = _SimSecrets()


def _deterministic_names(cls: type) -> None:
    """Give the modules `cls` and its bases come from the deterministic `secrets`."""
    for base in cls.__mro__:
        module = sys.modules.get(base.__module__)
        if module is not None and getattr(module, "secrets", None) is secrets:
            module.secrets = _SIM_SECRETS  # type: ignore[attr-defined]


# ---- actor programs ----------------------------------------------------------------------------


def uv_windows(modern: bool = True) -> Callable[..., Body]:
    """uv's lock on Windows (`LockedFile::acquire`): a `worker` for `Scenario`.

    Rust's `OpenOptions` read, write, create: `CreateFileW(GENERIC_READ | GENERIC_WRITE,
    FILE_SHARE_READ | WRITE | DELETE, OPEN_ALWAYS)`; then `LockFileEx(EXCLUSIVE |
    FAIL_IMMEDIATELY)`, else a waiting `LockFileEx(EXCLUSIVE)`; the critical section;
    `UnlockFileEx`; `CloseHandle`. When the open fails, uv >= 0.7.19 (`modern`) warns and runs its
    critical section *without* the lock; older uv fails (a failure of the run: uvsweep must never
    make a uv fail).
    """

    def worker(rounds: int, _exact: bool, name: str = LOCK_NAME) -> Body:
        path = ntpath.join(WIN_TMP, name)

        def body(actor: Actor) -> int:
            actor.resource = name
            calls: WinCalls = actor.calls
            for _round in range(rounds):
                try:
                    handle = calls.create_file(
                        path, GENERIC_READ | GENERIC_WRITE, SHARE_ALL, OPEN_ALWAYS
                    )
                except OSError as err:
                    if not modern:
                        world = actor.world
                        if world.violation is None:
                            world.violation = (
                                f"{actor.name} (uv < 0.7.19) failed: its open of the lock file"
                                f" was refused ({err})"
                            )
                        return 0
                    actor.enter_critical()  # "failed to acquire lock", and on without it
                    calls.work()
                    actor.leave_critical()
                    continue
                try:
                    calls.lock_file(handle, exclusive=True, fail_immediately=True)
                except PermissionError:
                    calls.lock_file(handle, exclusive=True)
                actor.enter_critical()
                calls.unlock_file(handle)  # the section ends when the unlock runs
                calls.close(handle)
            return rounds

        return body

    return worker


class SimStarted:
    """A keeper actor just started, as `WinKeeper.take` sees it: `ready` waits (asleep, a
    scheduling point each round) for the keeper's word on its channel, or its exit, or the
    deadline on the cleaner's clock; `kill` ends the keeper process at once."""

    def __init__(self, parent: Actor, keeper: Actor, channel: str) -> None:
        self.parent, self.keeper, self.channel = parent, keeper, channel
        self.pid = keeper.pid

    def ready(self, timeout: float) -> bool:
        calls: WinCalls = self.parent.calls
        kernel = self.parent.world.kernel
        began = calls.monotonic()
        while True:
            said = kernel.read_channel(self.channel)
            self.parent.observe(("ReadFile", self.channel), said)
            if said is not None:
                return said.strip() == "ready"
            if calls.monotonic() - began > timeout:
                return False
            calls.sleep(0.05)

    def kill(self) -> None:
        self.parent.park(("TerminateProcess", self.pid))
        self.keeper.killed = True
        self.parent.world.kernel.exit(self.pid)
        self.parent.observe(("TerminateProcess", self.pid), None)


class SimWinKeeper(WinKeeper):
    """`WinKeeper` on the simulated Windows kernel: the keeper is one more actor (a process of
    its own) that inherits exactly the handoffs' handles (none of the cleaner's locks) and runs
    `winkeeper.serve`, saying `ready` on a channel the cleaner reads. Starting it is one
    scheduling point; `ready` is a wait the scheduler can stretch past its deadline."""

    def __init__(self, parent: Actor, body: Callable[[str], Body] | None = None) -> None:
        self.parent = parent
        self.body = body or win_keeper_run

    def take(self, handoffs: Sequence[WinHandoff], log: str | None) -> int:
        return super().take(handoffs, None)  # no log file: nothing real is written

    def start(self, handles: Sequence[Any], job: str) -> SimStarted:
        world = self.parent.world
        self.parent.park(("CreateProcessW", "_winkeeper"))
        number = sum(1 for a in world.actors if a.kind == "keeper") + 1
        keeper = world.add(f"K{number}", "keeper", self.body(job))
        channel = f"ready-{keeper.name}"
        world.kernel.open_channel(channel, keeper.pid)
        world.kernel.inherit(self.parent.pid, keeper.pid, sorted({int(h) for h in handles}))
        keeper.channel = channel
        keeper.start()
        self.parent.observe(("CreateProcessW", "_winkeeper"), keeper.pid)
        return SimStarted(self.parent, keeper, channel)


def win_keeper_run(job: str) -> Body:
    """What `uvsweep _winkeeper` does (`winkeeper.serve`), on the simulated Windows kernel."""

    def body(actor: Actor) -> int:
        calls: WinCalls = actor.calls

        def say_ready() -> None:
            calls._do(
                ("WriteFile", actor.channel, "ready"),
                lambda: calls.kernel.write_channel(actor.pid, actor.channel, "ready\n"),
            )

        return serve(job, calls, say_ready, actor.pid, calls)

    return body


def windows_remover_run(
    remover_type: type | None = None,
    posix: bool = True,
    keeper: Callable[[Actor], WinKeeper] | None = SimWinKeeper,
    handoff_wait: float | None = None,
) -> Callable[[], Body]:
    """One run of the real `WindowsRemover` (or `remover_type`) over the simulated temp dir;
    `keeper`: what starts its keepers (None: the code's own default, which cannot start one
    here, so a handoff is waited for in the cleaner)."""

    def make() -> Body:
        def body(actor: Actor) -> Any:
            from uvsweep.remove import Policy
            from uvsweep.remove.windows import WindowsRemover

            cls = remover_type or WindowsRemover
            kernel = actor.world.kernel
            calls: WinCalls = actor.calls
            calls.posix = posix
            seams: dict[str, Any] = {
                "files": calls,
                "processes": SimProcesses(kernel),
                "lstat": calls.lstat,
                "listdir": calls.listdir,
                "clock": lambda: EPOCH + kernel.now,
                "is_admin": lambda: False,
            }
            accepted = inspect.signature(cls).parameters
            if "getpid" in accepted:
                seams["getpid"] = calls.getpid
            else:
                calls.alias_own_pid = True  # code from before the seam compares with os.getpid()
            if "calls" in accepted:
                seams["calls"] = calls
            if "keeper" in accepted and keeper is not None:
                seams["keeper"] = keeper(actor)
            if handoff_wait is not None:
                seams["handoff_wait"] = handoff_wait
            _deterministic_names(cls)
            remover = cls(**seams)
            return remover.remove([WIN_TMP], Policy())

        return body

    return make


def windows_scenario(
    uv: int = 2,
    removers: int = 1,
    rounds: int = 1,
    existing: bool = True,
    files: int = 1,
    modern_uv: bool = True,
    remover_type: type | None = None,
    posix: bool = True,
    keeper: Callable[[Actor], WinKeeper] | None = SimWinKeeper,
    handoff_wait: float | None = None,
) -> Scenario:
    """A `Scenario` on the Windows kernel with uv's Windows lock and the Windows remover."""
    version = "uv >= 0.7.19" if modern_uv else "uv < 0.7.19"
    return Scenario(
        uv=uv, removers=removers, rounds=rounds, existing=existing, files=files,
        remover=windows_remover_run(remover_type, posix, keeper, handoff_wait),
        kernel=WinKernel, calls=WinCalls, worker=uv_windows(modern_uv),
        os_name=f"Windows ({version}{'' if posix else ', no POSIX semantics'})",
    )  # fmt: skip


# ---- keepers that fail: what the cleaner must survive -------------------------------------------


def dying_keeper(_job: str) -> Body:
    """A keeper that exits before it says anything (it crashed while starting)."""

    def body(actor: Actor) -> int:
        actor.calls.work()
        return 2

    return body


def silent_keeper(job: str) -> Body:
    """A keeper that hangs before it says anything (it waits for the whole new file, which
    the cleaner's byte keeps from it)."""

    def body(actor: Actor) -> int:
        new = json.loads(job)["handoffs"][0]["new"]
        actor.calls.lock_file(new, exclusive=True)
        return 1

    return body
