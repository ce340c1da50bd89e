"""Being told when processes exit, without polling: pidfd on Linux, kqueue on macOS and the BSDs,
process handles on Windows, behind one seam (`ProcessWaiter`).

A waiter owns one thread that sleeps in the OS until a watched process exits or `watch()` changes
the set; it never wakes up on a timer. Where the OS offers none of these (Linux before 5.3), a
polling fallback checks once a second, and only while it has processes to watch.
"""
# ruff: noqa: PLC0415 - imports inside functions: only the path that needs a module pays for it

from __future__ import annotations

import contextlib
import os
import select
import sys
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable

from uvsweep import system

#: Called on the waiter's thread with the pid that exited.
OnExit = Callable[[int], None]


class ProcessWaiter(ABC):
    """Calls `on_exit(pid)` once for each watched process when it exits."""

    def __init__(self, on_exit: OnExit) -> None:
        self.on_exit = on_exit
        self._wanted: set[int] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stopping = False

    def watch(self, pids: Iterable[int]) -> None:
        """Watch exactly these pids from now on (the ones already gone are reported at once)."""
        with self._lock:
            self._wanted = set(pids)
        self._wake()

    def start(self) -> None:
        """Start the thread (idempotent)."""
        if self._thread is not None:
            return
        self._stopping = False
        self._open()
        self._thread = threading.Thread(target=self._run, name="uvsweep-procwait", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        """Stop and join the thread (idempotent)."""
        thread = self._thread
        if thread is None:
            return
        self._stopping = True
        self._wake()
        thread.join(timeout)
        self._thread = None
        self._close()

    def wanted(self) -> set[int]:
        """The pids to watch now."""
        with self._lock:
            return set(self._wanted)

    def _report(self, pid: int) -> None:
        with self._lock:
            if pid not in self._wanted:
                return  # `watch` dropped it meanwhile: the caller no longer asks
            self._wanted.discard(pid)
        self.on_exit(pid)

    @abstractmethod
    def _open(self) -> None:
        """Create the OS objects the thread sleeps on."""

    @abstractmethod
    def _close(self) -> None:
        """Release them."""

    @abstractmethod
    def _wake(self) -> None:
        """Make the thread return from its sleep."""

    @abstractmethod
    def _run(self) -> None:
        """The thread: sleep until something happens, reconcile, report exits."""


class _PipeWoken(ProcessWaiter):
    """A waiter whose thread is woken through a pipe."""

    def _open(self) -> None:
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)

    def _close(self) -> None:
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)

    def _wake(self) -> None:
        if self._thread is not None:
            with contextlib.suppress(BlockingIOError, OSError):
                os.write(self._wake_w, b"!")

    def _drain(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(self._wake_r, 512):
                pass


class PidfdWaiter(_PipeWoken):
    """Linux >= 5.3: one pidfd per process, all in one `poll()` with the wake pipe."""

    def _run(self) -> None:
        poller = select.poll()
        poller.register(self._wake_r, select.POLLIN)
        fds: dict[int, int] = {}  # pid -> pidfd
        try:
            while not self._stopping:
                wanted = self.wanted()
                for pid in [p for p in fds if p not in wanted]:
                    poller.unregister(fds[pid])
                    os.close(fds.pop(pid))
                for pid in wanted - set(fds):
                    try:
                        fd = os.pidfd_open(pid)
                    except ProcessLookupError:
                        self._report(pid)
                        continue
                    except OSError:
                        continue  # not ours to watch (should not happen for a visible pid)
                    fds[pid] = fd
                    poller.register(fd, select.POLLIN)
                by_fd = {fd: pid for pid, fd in fds.items()}
                for fd, _mask in poller.poll():
                    if fd == self._wake_r:
                        self._drain()
                        continue
                    pid = by_fd[fd]
                    poller.unregister(fd)
                    os.close(fds.pop(pid))
                    self._report(pid)
        finally:
            for fd in fds.values():
                os.close(fd)


class KqueueWaiter(_PipeWoken):
    """macOS and the BSDs: `EVFILT_PROC`/`NOTE_EXIT` for each process, plus the wake pipe."""

    def _run(self) -> None:
        kq = select.kqueue()  # type: ignore[attr-defined,unused-ignore]
        kev = select.kevent  # type: ignore[attr-defined,unused-ignore]
        try:
            kq.control([kev(self._wake_r, select.KQ_FILTER_READ, select.KQ_EV_ADD)], 0)  # type: ignore[attr-defined,unused-ignore]
            watching: set[int] = set()
            while not self._stopping:
                wanted = self.wanted()
                for pid in watching - wanted:
                    with contextlib.suppress(OSError):
                        kq.control([kev(pid, select.KQ_FILTER_PROC, select.KQ_EV_DELETE)], 0)  # type: ignore[attr-defined,unused-ignore]
                    watching.discard(pid)
                for pid in wanted - watching:
                    change = kev(
                        pid, select.KQ_FILTER_PROC,  # type: ignore[attr-defined,unused-ignore]
                        select.KQ_EV_ADD | select.KQ_EV_ONESHOT, select.KQ_NOTE_EXIT,  # type: ignore[attr-defined,unused-ignore]
                    )  # fmt: skip
                    try:
                        kq.control([change], 0)
                    except ProcessLookupError:
                        self._report(pid)
                        continue
                    watching.add(pid)
                for event in kq.control(None, 16, None):
                    if event.filter == select.KQ_FILTER_READ:  # type: ignore[attr-defined,unused-ignore]
                        self._drain()
                    elif event.ident in watching:
                        watching.discard(event.ident)
                        self._report(event.ident)
        finally:
            kq.close()


class PollingWaiter(_PipeWoken):
    """The fallback: checks its processes once a second, and sleeps for good when it has none."""

    interval = 1.0

    def _run(self) -> None:
        while not self._stopping:
            wanted = self.wanted()
            for pid in wanted:
                if not _exists(pid):
                    self._report(pid)
            timeout = self.interval if self.wanted() else None
            ready, _, _ = select.select([self._wake_r], [], [], timeout)
            if ready:
                self._drain()


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's: it exists
    return True


class WindowsWaiter(ProcessWaiter):
    """Windows: `OpenProcess(SYNCHRONIZE)` handles and an event, in `WaitForMultipleObjects`.

    A process we may not open (another user's uv: `ERROR_ACCESS_DENIED`) has not exited: it is
    checked once a second instead, and only `ERROR_INVALID_PARAMETER` (no such process) counts
    as an exit. `kernel32` and `last_error` are the seams tests replace.
    """

    MAXIMUM_WAIT_OBJECTS = 64
    interval = 1.0

    def __init__(
        self,
        on_exit: OnExit,
        kernel32: Any = None,
        last_error: Callable[[], int] | None = None,
    ) -> None:
        super().__init__(on_exit)
        self._k32: Any = kernel32
        self._last_error = last_error

    def _open(self) -> None:
        if self._k32 is None:
            from uvsweep import win32  # Windows only

            self._k32 = win32.load("kernel32")
        if self._last_error is None:
            import ctypes

            self._last_error = ctypes.get_last_error  # type: ignore[attr-defined]
        self._event = self._k32.CreateEventW(None, 0, 0, None)  # auto-reset, unsignalled

    def _close(self) -> None:
        self._k32.CloseHandle(self._event)

    def _wake(self) -> None:
        if self._thread is not None:
            self._k32.SetEvent(self._event)

    def _open_process(self, pid: int) -> int | None:
        """A handle to wait on; None if the process is not ours to wait on. ProcessLookupError
        if there is no such process."""
        synchronize = 0x00100000
        handle = self._k32.OpenProcess(synchronize, 0, pid)
        if handle:
            return int(handle)
        assert self._last_error is not None
        if self._last_error() == ERROR_INVALID_PARAMETER:
            raise ProcessLookupError(pid)
        return None  # ERROR_ACCESS_DENIED and the like: it exists

    def _run(self) -> None:
        infinite, wait_object_0, wait_timeout = 0xFFFFFFFF, 0, 0x102
        handles: dict[int, int] = {}
        try:
            while not self._stopping:
                wanted = self.wanted()
                unwaitable: set[int] = set()
                for pid in [p for p in handles if p not in wanted]:
                    self._k32.CloseHandle(handles.pop(pid))
                for pid in wanted - set(handles):
                    if len(handles) >= self.MAXIMUM_WAIT_OBJECTS - 1:
                        break  # the rest are seen at the next rescan
                    try:
                        handle = self._open_process(pid)
                    except ProcessLookupError:
                        self._report(pid)
                        continue
                    if handle is None:
                        unwaitable.add(pid)
                    else:
                        handles[pid] = handle
                order = list(handles)
                array = (ctypes_handle_array(len(order) + 1))(
                    self._event, *[handles[p] for p in order]
                )
                timeout = int(self.interval * 1000) if unwaitable else infinite
                index = self._k32.WaitForMultipleObjects(len(order) + 1, array, 0, timeout)
                if index in (wait_object_0, wait_timeout):
                    continue  # woken, or time to look at the unwaitable ones again
                position = index - wait_object_0 - 1
                if 0 <= position < len(order):
                    pid = order[position]
                    self._k32.CloseHandle(handles.pop(pid))
                    self._report(pid)
        finally:
            for handle in handles.values():
                self._k32.CloseHandle(handle)


ERROR_INVALID_PARAMETER = 87


def ctypes_handle_array(length: int) -> Any:
    """A C array of `length` HANDLEs."""
    import ctypes

    return ctypes.c_void_p * length


def for_platform(on_exit: OnExit, platform: str = sys.platform) -> ProcessWaiter:
    """The waiter for this OS."""
    if system.is_linux(platform):
        if hasattr(os, "pidfd_open"):
            try:
                os.close(os.pidfd_open(os.getpid()))
            except OSError:
                pass  # a kernel before 5.3
            else:
                return PidfdWaiter(on_exit)
        return PollingWaiter(on_exit)
    if system.is_windows(platform):
        return WindowsWaiter(on_exit)
    if hasattr(select, "kqueue"):
        return KqueueWaiter(on_exit)
    return PollingWaiter(on_exit)


TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any
