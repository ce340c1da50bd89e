"""The notification helper: a short-lived child process that speaks to the notification service.

desktop-notifier and dbus-fast cost about 15 MB of memory once imported, more than the rest of
the tray app's idle budget allows, so they live here instead: the tray starts this helper when it
has something to say, and the helper exits once nothing it showed can still be clicked and it
has been idle for a while, giving the memory back.

Protocol, one JSON object per line. In (stdin): `{"id": 1, "title": ..., "message": ...,
"button": "Clean now" | null}`. Out (stdout): `{"id": 1, "status": "dispatched"}`,
`{"id": 1, "status": "failed", "reason": ...}`, and later `{"id": 1, "event": "button"}` when
the button is pressed. EOF on stdin: finish and exit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
from collections.abc import Callable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

#: Seconds the helper stays after its last notification was closed or sent without a button.
IDLE_EXIT = 60.0
#: How long a notification with a button keeps the helper alive at most.
BUTTON_LIFETIME = 1800.0


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


async def serve(icon: str | None = None) -> None:
    """Read requests until EOF (or idleness), show each, report what happened."""
    from desktop_notifier import Button, DesktopNotifier, Icon  # noqa: PLC0415

    capture = _Capture()
    library_log = logging.getLogger("desktop_notifier")
    library_log.propagate = False
    library_log.addHandler(capture)
    if icon:
        from pathlib import Path  # noqa: PLC0415

        notifier = DesktopNotifier(app_name="uvsweep", app_icon=Icon(path=Path(icon)))
    else:
        notifier = DesktopNotifier(app_name="uvsweep")
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    pending: dict[int, float] = {}  # request id -> until when its button may be pressed
    while True:
        now = loop.time()
        for ident, until in list(pending.items()):
            if until < now:
                del pending[ident]
        try:
            raw = await asyncio.wait_for(reader.readline(), None if pending else IDLE_EXIT)
        except asyncio.TimeoutError:
            break  # nothing left to click, and idle: give the memory back
        if not raw:
            break
        request = json.loads(raw)
        ident = request["id"]
        dispatched = asyncio.Event()
        buttons: tuple[Any, ...] = ()
        if request.get("button"):
            buttons = (Button(title=request["button"], on_pressed=_pressed(ident)),)
        capture.reasons.clear()
        done = _closer(pending, ident)
        try:
            await asyncio.wait_for(notifier.send(
                title=request["title"], message=request["message"], buttons=buttons,
                on_dispatched=dispatched.set, on_dismissed=done, on_clicked=done,
            ), timeout=5)  # fmt: skip
        except Exception as err:  # noqa: BLE001 - every failure is reported, none is fatal
            _write({"id": ident, "status": "failed", "reason": f"{type(err).__name__}: {err}"})
            continue
        if dispatched.is_set():
            _write({"id": ident, "status": "dispatched"})
            if buttons:
                pending[ident] = loop.time() + BUTTON_LIFETIME
        else:
            reason = capture.reasons[-1] if capture.reasons else "not dispatched"
            _write({"id": ident, "status": "failed", "reason": reason})
    bus = getattr(getattr(notifier, "_backend", None), "bus", None)
    if bus is not None:
        bus.disconnect()


def main(icon: str | None = None) -> int:
    """Run the helper (the hidden `uvsweep _notifyd` command)."""
    try:
        asyncio.run(serve(icon))
    except KeyboardInterrupt:
        return 130
    return 0
