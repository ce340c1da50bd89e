"""The notification helper: a short-lived child process that speaks to the notification service.

desktop-notifier and dbus-fast cost about 15 MB of memory once imported, more than the rest of
the tray app's idle budget allows, so they live here instead: the tray starts this helper when it
has something to say, and the helper exits once nothing it showed can still be clicked and it
has been idle for a while, giving the memory back.

Protocol, one JSON object per line. In (stdin): `{"id": 1, "title": ..., "message": ...,
"button": "Clean now" | null}`. Out (stdout): `{"id": 1, "status": "dispatched"}`,
`{"id": 1, "status": "failed", "reason": ...}`, and later `{"id": 1, "event": "button"}` when
the button is pressed. EOF on stdin: finish and exit.

Per OS: stdin is read by a thread, not `loop.connect_read_pipe` (Windows' Proactor loop cannot
read a console or anonymous pipe that way: CPython gh-87694). On macOS the loop is rubicon's
CFRunLoop-based one (desktop-notifier's callbacks, the button included, are delivered on the
main run loop), the permission prompt is waited for without a deadline, and desktop-notifier's
dummy backend (a Python that is not an app bundle) is reported as a failure, not as "dispatched".
"""
# ruff: noqa: PLC0415 - imports inside functions: only the path that needs a module pays for it

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import threading
from collections.abc import Callable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: Seconds the helper stays after its last notification was closed or sent without a button.
IDLE_EXIT = 60.0
#: How long a notification with a button keeps the helper alive at most.
BUTTON_LIFETIME = 1800.0
#: desktop-notifier's app name: on Windows also the AppUserModelID it registers for the toasts,
#: which the installer's Start-menu shortcut carries (packaging/windows/uvsweep.iss).
APP_NAME = "uvsweep"


class _Capture(logging.Handler):
    """Keeps what desktop-notifier logs about a failure (it logs instead of raising)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.reasons: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        reason = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            err = record.exc_info[1]
            reason = f"{reason}: {type(err).__name__}: {err}"
        self.reasons.append(reason)


def _write(line: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def _pressed(ident: int) -> Callable[[], None]:
    def pressed() -> None:
        _write({"id": ident, "event": "button"})

    return pressed


def _closer(pending: dict[int, float], ident: int) -> Callable[[], None]:
    def closed() -> None:
        pending.pop(ident, None)

    return closed


def _read_stdin(loop: asyncio.AbstractEventLoop, lines: asyncio.Queue[bytes]) -> None:
    """Feed stdin's lines to the loop from a thread (b"" at EOF); works with every loop."""

    def put(raw: bytes) -> None:
        with contextlib.suppress(RuntimeError):  # the loop is closed: the helper is exiting
            loop.call_soon_threadsafe(lines.put_nowait, raw)

    def pump() -> None:
        stream = sys.stdin.buffer
        try:
            for raw in iter(stream.readline, b""):
                put(raw)
        except (OSError, ValueError):
            pass
        put(b"")

    threading.Thread(target=pump, name="uvsweep-notifyd-stdin", daemon=True).start()


def _dummy(notifier: Any) -> bool:
    """Whether desktop-notifier fell back to its dummy backend (it shows nothing)."""
    return type(getattr(notifier, "_backend", None)).__module__.endswith(".dummy")


class _Session:
    """One helper's notifier, and what it learned about it."""

    def __init__(self, notifier: Any, capture: _Capture, platform: str) -> None:
        self.notifier, self.capture = notifier, capture
        self.pending: dict[int, float] = {}  # request id -> until when its button may be pressed
        self.unusable = ""
        if _dummy(notifier):
            self.unusable = "; ".join(capture.reasons) or "no notification service here"
        self.authorised = platform != "darwin"  # macOS asks the user once, in a prompt

    async def _authorise(self) -> bool:
        if self.authorised or self.unusable:
            return self.authorised
        try:  # no deadline: the user may take a while to answer the prompt
            self.authorised = bool(await self.notifier.request_authorisation())
        except Exception as err:  # noqa: BLE001 - reported, never fatal
            self.unusable = f"{type(err).__name__}: {err}"
        if not self.authorised and not self.unusable:
            self.unusable = "notifications are not allowed for uvsweep (System Settings)"
        return self.authorised

    async def answer(self, request: dict[str, Any], now: float) -> None:
        """Show one request and report what happened."""
        from desktop_notifier import Button

        ident = request["id"]
        if not await self._authorise():
            _write({"id": ident, "status": "failed", "reason": self.unusable})
            return
        dispatched = asyncio.Event()
        buttons: tuple[Any, ...] = ()
        if request.get("button"):
            buttons = (Button(title=request["button"], on_pressed=_pressed(ident)),)
        self.capture.reasons.clear()
        done = _closer(self.pending, ident)
        try:
            await asyncio.wait_for(self.notifier.send(
                title=request["title"], message=request["message"], buttons=buttons,
                on_dispatched=dispatched.set, on_dismissed=done, on_clicked=done,
            ), timeout=5)  # fmt: skip
        except Exception as err:  # noqa: BLE001 - every failure is reported, none is fatal
            _write({"id": ident, "status": "failed", "reason": f"{type(err).__name__}: {err}"})
            return
        if dispatched.is_set():
            _write({"id": ident, "status": "dispatched"})
            if buttons:
                self.pending[ident] = now + BUTTON_LIFETIME
        else:
            reason = self.capture.reasons[-1] if self.capture.reasons else "not dispatched"
            _write({"id": ident, "status": "failed", "reason": reason})


async def serve(icon: str | None = None, platform: str = sys.platform) -> None:
    """Read requests until EOF (or idleness), show each, report what happened."""
    from desktop_notifier import DesktopNotifier, Icon

    capture = _Capture()
    library_log = logging.getLogger("desktop_notifier")
    library_log.propagate = False
    library_log.addHandler(capture)
    if icon:
        from pathlib import Path

        notifier = DesktopNotifier(app_name=APP_NAME, app_icon=Icon(path=Path(icon)))
    else:
        notifier = DesktopNotifier(app_name=APP_NAME)
    session = _Session(notifier, capture, platform)
    loop = asyncio.get_running_loop()
    lines: asyncio.Queue[bytes] = asyncio.Queue()
    _read_stdin(loop, lines)
    pending = session.pending
    while True:
        now = loop.time()
        for ident, until in list(pending.items()):
            if until < now:
                del pending[ident]
        try:
            raw = await asyncio.wait_for(lines.get(), None if pending else IDLE_EXIT)
        except asyncio.TimeoutError:
            break  # nothing left to click, and idle: give the memory back
        if not raw:
            break
        try:
            request = json.loads(raw)
        except ValueError:
            request = None
        if not isinstance(request, dict) or not {"id", "title", "message"} <= request.keys():
            sys.stderr.write(f"uvsweep notifyd: ignored a malformed request: {raw[:80]!r}\n")
            continue
        await session.answer(request, loop.time())
    bus = getattr(getattr(notifier, "_backend", None), "bus", None)
    if bus is not None:
        bus.disconnect()


def _loop_policy(platform: str = sys.platform) -> Any:
    """macOS: rubicon's CFRunLoop-based loop, so AppKit delivers desktop-notifier's callbacks."""
    if platform != "darwin":
        return None
    try:
        from rubicon.objc.eventloop import (  # type: ignore[import-not-found,unused-ignore]
            EventLoopPolicy,
        )
    except ImportError:
        return None
    return EventLoopPolicy()


def main(icon: str | None = None) -> int:
    """Run the helper (the hidden `uvsweep _notifyd` command)."""
    policy = _loop_policy()
    if policy is not None:
        asyncio.set_event_loop_policy(policy)
    try:
        asyncio.run(serve(icon))
    except KeyboardInterrupt:
        return 130
    return 0
