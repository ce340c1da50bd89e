"""The Windows process waiter's logic on Linux, against a model of the kernel32 calls it makes."""

from __future__ import annotations

import subprocess
import sys
import threading
from typing import Any

import pytest

from uvsweep.procwait import WindowsWaiter

ERROR_ACCESS_DENIED, ERROR_INVALID_PARAMETER = 5, 87
WAIT_TIMEOUT, INFINITE = 0x102, 0xFFFFFFFF


class Kernel32Model:
    """Events and process handles as `WaitForMultipleObjects` sees them.

    `OpenProcess` fails with ERROR_INVALID_PARAMETER for a pid that does not exist and with
    ERROR_ACCESS_DENIED for another user's process; a process handle is signalled once the
    process has exited; an auto-reset event is unsignalled again when a wait returns for it.
    """

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.objects: dict[int, dict[str, Any]] = {}
        self.processes: dict[int, dict[str, Any]] = {}
        self.next = 1000
        self.error = 0
        self.timeouts = 0

    def spawn(self, pid: int, *, others: bool = False) -> None:
        self.processes[pid] = {"alive": True, "others": others}

    def exit(self, pid: int) -> None:
        with self.cond:
            self.processes[pid]["alive"] = False
            for obj in self.objects.values():
                if obj.get("pid") == pid:
                    obj["signalled"] = True
            self.cond.notify_all()

    def _new(self, **obj: Any) -> int:
        with self.cond:
            self.next += 1
            self.objects[self.next] = obj
            self.cond.notify_all()
            return self.next

    def CreateEventW(self, attrs: Any, manual: int, initial: int, name: Any) -> int:
        return self._new(kind="event", signalled=bool(initial))

    def SetEvent(self, handle: int) -> int:
        with self.cond:
            self.objects[handle]["signalled"] = True
            self.cond.notify_all()
        return 1

    def CloseHandle(self, handle: int) -> int:
        with self.cond:
            self.objects.pop(handle)
        return 1

    def OpenProcess(self, access: int, inherit: int, pid: int) -> int:
        with self.cond:
            proc = self.processes.get(pid)
            if proc is None or not proc["alive"]:
                self.error = ERROR_INVALID_PARAMETER  # no process object left: no such pid
                return 0
            if proc["others"]:
                self.error = ERROR_ACCESS_DENIED
                return 0
            return self._new(kind="process", pid=pid, signalled=False)

    def WaitForMultipleObjects(self, count: int, array: Any, wait_all: int, ms: int) -> int:
        handles = [int(array[i]) for i in range(count)]
        with self.cond:

            def ready() -> int | None:
                for index, handle in enumerate(handles):
                    obj = self.objects[handle]
                    if obj["signalled"]:
                        if obj["kind"] == "event":
                            obj["signalled"] = False
                        return index + 1  # truthy, for wait_for
                return None

            found = self.cond.wait_for(ready, None if ms == INFINITE else ms / 1000)
            if found is None:
                self.timeouts += 1
                self.cond.notify_all()
                return WAIT_TIMEOUT
            return found - 1


def test_another_users_process_is_not_reported_as_exited_until_it_exits() -> None:
    """Finding 9: OpenProcess(SYNCHRONIZE) refused (another user's uv) is not an exit."""
    k32 = Kernel32Model()
    k32.spawn(10)
    k32.spawn(20, others=True)
    exited: list[int] = []
    reported = threading.Condition()

    def on_exit(pid: int) -> None:
        with reported:
            exited.append(pid)
            reported.notify_all()

    waiter = WindowsWaiter(on_exit, kernel32=k32, last_error=lambda: k32.error)
    waiter.interval = 0.01
    waiter.start()
    try:
        waiter.watch([10, 20])
        with k32.cond:  # the waiter has looked at both
            assert k32.cond.wait_for(
                lambda: any(o.get("pid") == 10 for o in k32.objects.values()), 10
            )
        assert exited == []  # before the fix: [20], and the watcher rescanned in a tight loop
        with k32.cond:  # and at the unwaitable one a few more times
            assert k32.cond.wait_for(lambda: k32.timeouts >= 3, 10)
        assert exited == []
        k32.exit(10)
        with reported:
            assert reported.wait_for(lambda: exited == [10], 10)
        k32.exit(20)
        with reported:
            assert reported.wait_for(lambda: exited == [10, 20], 10)
        assert waiter.wanted() == set()
    finally:
        waiter.stop()
    assert list(k32.objects) == []  # every handle closed, the event too


@pytest.mark.windows
@pytest.mark.skipif(sys.platform != "win32", reason="runs on Windows only")
def test_windows_real_waiter() -> None:  # pragma: no cover
    exited: list[int] = []
    reported = threading.Event()

    def on_exit(pid: int) -> None:
        exited.append(pid)
        reported.set()

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    waiter = WindowsWaiter(on_exit)
    waiter.start()
    try:
        waiter.watch([child.pid, 4])  # 4: System, not ours to open: not an exit
        child.kill()
        child.wait()
        assert reported.wait(10)
        assert exited == [child.pid]
    finally:
        waiter.stop()
