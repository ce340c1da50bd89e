"""Desktop notifications that never crash or block: desktop-notifier, else the tray's own
`notify()`, else the log; and the policy that keeps them rare.

desktop-notifier is asynchronous; it runs on an event loop in a thread of its own, so the UI
thread only ever hands it a message. If the notification service is missing (no session bus, no
notification server, an unsigned macOS app), the failure is noticed once, said once in the log,
and every later message goes to the next way down the list.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

log = logging.getLogger("uvsweep.notify")

#: (title, message) -> whether the tray backend showed it (pystray's `notify()`).
Fallback = Callable[[str, str], bool]


class NotifyPolicy:
    """When a rise in orphaned files is worth a notification: rare, coalesced, past a threshold.

    A notification goes out when the count has risen since the last one, is at least `threshold`,
    and `interval` seconds have passed since the last one. Everything in between is coalesced
    into that one message ("5 new orphaned uv lock files").
    """

    def __init__(self, threshold: int = 1, interval: float = 1800.0) -> None:
        self.threshold = threshold
        self.interval = interval
        self.baseline: int | None = None  # the count when we last notified (or first looked)
        self.last_sent: float | None = None

    def check(self, count: int, now: float) -> str | None:
        """The message to send now, or None."""
        if self.baseline is None:
            self.baseline = count  # what was there at start-up is not news
            return None
        if count < self.baseline:
            self.baseline = count  # files went away: rises are measured from here
            return None
        new = count - self.baseline
        if new <= 0 or count < self.threshold:
            return None
        if self.last_sent is not None and now - self.last_sent < self.interval:
            return None
        self.baseline, self.last_sent = count, now
        noun = "file" if new == 1 else "files"
        total = "" if new == count else f" ({count} in all)"
        return f"{new} new orphaned uv lock {noun}{total}"


async def _disconnect(bus: Any) -> None:
    bus.disconnect()
    with contextlib.suppress(Exception):
        await asyncio.wait_for(bus.wait_for_disconnect(), 1.0)


class _Capture(logging.Handler):
    """Keeps what desktop-notifier logs about a failure, for the one line we log ourselves."""

    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        reason = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            err = record.exc_info[1]
            reason = f"{reason}: {type(err).__name__}: {err}"
        self.into.append(reason)


class Notifier:
    """Sends notifications through the first way that works, off the caller's thread."""

    def __init__(
        self,
        app_name: str = "uvsweep",
        fallback: Fallback | None = None,
        sender: Callable[[], object] | None = None,
        icon: str | None = None,
    ) -> None:
        self.app_name = app_name
        self.fallback = fallback
        self._sender_factory = sender
        self.icon = icon
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._notifier: object | None = None
        self.backend = "desktop-notifier"  # what works, as far as we know
        self.failure = ""  # why desktop-notifier is not used
        self.sent: list[tuple[str, str, str]] = []  # (backend, title, message), for diagnostics
        self._problems: list[str] = []
        self._capture = _Capture(self._problems)

    # ---- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Start the notification thread (idempotent)."""
        if self._thread is not None:
            return
        # desktop-notifier logs a traceback when a send fails; keep it, say it once ourselves
        library_log = logging.getLogger("desktop_notifier")
        library_log.propagate = False
        if self._capture not in library_log.handlers:
            library_log.addHandler(self._capture)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="uvsweep-notify",
                                        daemon=True)  # fmt: skip
        self._thread.start()

    def stop(self, timeout: float = 1.0) -> None:
        """Stop the thread (idempotent); pending messages are dropped."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        bus = getattr(getattr(self._notifier, "_backend", None), "bus", None)
        if bus is not None:  # desktop-notifier keeps its D-Bus connection open: close it
            closing = asyncio.run_coroutine_threadsafe(_disconnect(bus), loop)
            with contextlib.suppress(Exception):
                closing.result(timeout)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout)
        if not thread.is_alive():
            loop.close()
        self._loop = self._thread = None

    # ---- sending ------------------------------------------------------------------------------

    def send(
        self, title: str, message: str, button: tuple[str, Callable[[], None]] | None = None
    ) -> None:
        """Show a notification; returns at once. `button`: (label, action) where supported."""
        if self.backend == "desktop-notifier" and self._loop is not None:
            future = asyncio.run_coroutine_threadsafe(
                self._send_async(title, message, button), self._loop
            )
            future.add_done_callback(lambda done: self._after(done, title, message))
            return
        self._fallback(title, message)

    async def _send_async(
        self, title: str, message: str, button: tuple[str, Callable[[], None]] | None
    ) -> None:
        if self._notifier is None:
            if self._sender_factory is not None:
                self._notifier = self._sender_factory()
            else:
                from desktop_notifier import DesktopNotifier, Icon  # noqa: PLC0415

                if self.icon:
                    from pathlib import Path  # noqa: PLC0415

                    icon = Icon(path=Path(self.icon))
                    self._notifier = DesktopNotifier(app_name=self.app_name, app_icon=icon)
                else:
                    self._notifier = DesktopNotifier(app_name=self.app_name)
        buttons = ()
        if button is not None:
            from desktop_notifier import Button  # noqa: PLC0415

            label, action = button
            buttons = (Button(title=label, on_pressed=action),)  # type: ignore[assignment]
        dispatched = asyncio.Event()
        self._problems.clear()
        await asyncio.wait_for(
            self._notifier.send(  # type: ignore[attr-defined]
                title=title, message=message, buttons=buttons, on_dispatched=dispatched.set
            ),
            timeout=5,
        )
        if not dispatched.is_set():
            # desktop-notifier logs a failure instead of raising it: what it said is the reason
            raise RuntimeError(self._problems[-1] if self._problems else "not dispatched")

    def _after(self, done: object, title: str, message: str) -> None:
        try:
            done.result()  # type: ignore[attr-defined]
        except Exception as err:  # noqa: BLE001 - no service, no bus, unsigned app: fall back
            self.backend = "pystray" if self.fallback else "log"
            self.failure = f"{type(err).__name__}: {err}"
            log.warning("desktop notifications unavailable (%s); using %s", self.failure,
                        self.backend)  # fmt: skip
            self._fallback(title, message)
            return
        self.sent.append(("desktop-notifier", title, message))

    def _fallback(self, title: str, message: str) -> None:
        if self.fallback is not None:
            try:
                if self.fallback(title, message):
                    self.sent.append(("pystray", title, message))
                    return
            except Exception as err:  # noqa: BLE001 - a tray without notify() must not crash us
                log.debug("tray notify() failed: %s", err)
            self.backend = "log"
        log.info("%s: %s", title, message)
        self.sent.append(("log", title, message))
