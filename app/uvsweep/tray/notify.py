"""Desktop notifications that never crash or block: desktop-notifier, else the tray's own
`notify()`, else the log; and the policy that keeps them rare.

desktop-notifier runs in a helper process (`notifyd`), started when there is something to say, so
its libraries never weigh on the idle tray and the UI thread only ever hands it a line. If the
notification service is missing (no session bus, no notification server, an unsigned macOS app),
the failure is noticed once, said once in the log, and every later message goes to the next way
down the list.
"""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence

from uvsweep import system

log = logging.getLogger("uvsweep.notify")

#: (title, message) -> whether the tray backend showed it (pystray's `notify()`).
Fallback = Callable[[str, str], bool]


class NotifyPolicy:
    """When a rise in orphaned files is worth a notification: rare, coalesced, past a threshold.

    A notification goes out when the count has risen since the last one, is at least `threshold`,
    and `interval` seconds have passed since the last one. A rise the interval holds back is not
    lost: `due()` says when it may go out, and the message then counts from the snapshot of that
    moment ("5 orphaned uv lock files, 3 new"), never from an older one.
    """

    def __init__(self, threshold: int = 1, interval: float = 1800.0) -> None:
        self.threshold = threshold
        self.interval = interval
        self.baseline: int | None = None  # the count when we last notified (or first looked)
        self.last_sent: float | None = None
        self.held = False  # a rise waits for the interval to pass

    def check(self, count: int, now: float) -> str | None:
        """The message to send now for a snapshot with `count` orphaned files, or None."""
        if self.baseline is None:
            self.baseline = count  # what was there at start-up is not news
            return None
        self.baseline = min(self.baseline, count)  # files went away: rises are measured from here
        new = count - self.baseline
        if new <= 0 or count < self.threshold:
            self.held = False
            return None
        if self.last_sent is not None and now - self.last_sent < self.interval:
            self.held = True  # said when the interval allows (`due()`)
            return None
        self.baseline, self.last_sent, self.held = count, now, False
        return message(count, new)

    def due(self) -> float | None:
        """When a held-back rise may be sent (then `check()` again), or None."""
        if not self.held or self.last_sent is None:
            return None
        return self.last_sent + self.interval


def message(count: int, new: int) -> str:
    """`3 orphaned uv lock files, 2 new`."""
    noun = "file" if count == 1 else "files"
    return f"{count} orphaned uv lock {noun}, {new} new"


def no_window_flags(platform: str = sys.platform) -> int:
    """`creationflags` for a helper: on Windows `CREATE_NO_WINDOW`, so a console program started
    by the windowed tray opens no console window."""
    return 0x08000000 if system.is_windows(platform) else 0


def helper_command() -> list[str]:
    """How to start the notification helper (`uvsweep _notifyd`), frozen or not."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "_notifyd"]
    return [sys.executable, "-m", "uvsweep", "_notifyd"]


class Notifier:
    """Sends notifications through the first way that works, off the caller's thread.

    The first way is desktop-notifier, in a helper process (`notifyd`) started on demand: the
    tray never imports it, and the helper exits when it has nothing left to show.
    """

    def __init__(
        self,
        app_name: str = "uvsweep",
        fallback: Fallback | None = None,
        command: Sequence[str] | None = None,
        icon: str | None = None,
    ) -> None:
        self.app_name = app_name
        self.fallback = fallback
        self.command = list(command) if command is not None else helper_command()
        self.icon = icon
        self._lock = threading.Lock()
        self._helper: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._next = 0
        self._requests: dict[int, tuple[str, str, Callable[[], None] | None]] = {}
        self._asked: dict[subprocess.Popen[str], set[int]] = {}  # each helper's requests
        self._running = False
        self.backend = "desktop-notifier"  # what works, as far as we know
        self.failure = ""  # why desktop-notifier is not used
        self.sent: list[tuple[str, str, str]] = []  # (backend, title, message), for diagnostics

    # ---- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Allow sending (the helper itself starts with the first notification)."""
        self._running = True

    def stop(self, timeout: float = 1.0) -> None:
        """Close the helper and join its reader (idempotent)."""
        self._running = False
        with self._lock:
            helper, reader = self._helper, self._reader
            self._helper = self._reader = None
        if helper is not None:
            with contextlib.suppress(OSError):
                helper.stdin.close()  # type: ignore[union-attr]
            try:
                helper.wait(timeout)
            except subprocess.TimeoutExpired:
                helper.kill()
                helper.wait()
        if reader is not None:
            reader.join(timeout)

    # ---- sending ------------------------------------------------------------------------------

    def send(
        self, title: str, message: str, button: tuple[str, Callable[[], None]] | None = None
    ) -> None:
        """Show a notification; returns at once. `button`: (label, action) where supported."""
        if self.backend == "desktop-notifier" and self._running:
            try:
                self._send_to_helper(title, message, button)
            except OSError as err:  # the helper could not start or went away
                self._give_up(f"{type(err).__name__}: {err}")
            else:
                return
        self._fallback(title, message)

    def _send_to_helper(
        self, title: str, message: str, button: tuple[str, Callable[[], None]] | None
    ) -> None:
        with self._lock:
            helper = self._helper
            if helper is None or helper.poll() is not None:
                helper = self._spawn()
            self._next += 1
            ident = self._next
            self._requests[ident] = (title, message, button[1] if button else None)
            self._asked.setdefault(helper, set()).add(ident)
            line = {"id": ident, "title": title, "message": message,
                    "button": button[0] if button else None}  # fmt: skip
            assert helper.stdin is not None
            helper.stdin.write(json.dumps(line) + "\n")
            helper.stdin.flush()

    def _spawn(self) -> subprocess.Popen[str]:
        command = self.command + (["--icon", self.icon] if self.icon else [])
        helper = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, bufsize=1, creationflags=no_window_flags(),
        )  # fmt: skip
        reader = threading.Thread(target=self._read, args=(helper,), name="uvsweep-notify",
                                  daemon=True)  # fmt: skip
        self._helper, self._reader = helper, reader
        reader.start()
        return helper

    def _read(self, helper: subprocess.Popen[str]) -> None:
        assert helper.stdout is not None
        answered: set[object] = set()
        for raw in helper.stdout:
            try:
                reply = json.loads(raw)
            except ValueError:
                continue
            ident = reply.get("id")
            title, message, action = self._requests.get(ident, ("", "", None))
            if reply.get("event") == "button" and action is not None:
                try:
                    action()
                except Exception:  # a broken action must not end the reader
                    log.exception("the notification's action failed")
            elif reply.get("status") == "dispatched":
                self.sent.append(("desktop-notifier", title, message))
            elif reply.get("status") == "failed":
                self._give_up(str(reply.get("reason", "")))
                self._fallback(title, message)
            answered.add(ident)
        helper.stdout.close()
        # a helper that died (or could not read its requests) before answering: those requests
        # would be lost without a word, so they go to the fallback
        with self._lock:
            asked = self._asked.pop(helper, set())
            if self._helper is helper:  # it exited by itself (idle): the next send restarts it
                self._helper = None
                self._reader = None
        code = None
        with contextlib.suppress(subprocess.TimeoutExpired):
            code = helper.wait(5)  # its stdout is closed: it is exiting (the wait is off the UI)
        if code is not None and helper.stdin is not None:
            with contextlib.suppress(OSError):
                helper.stdin.close()
        for ident in sorted(asked - answered) if self._running else ():
            title, message, _action = self._requests.get(ident, ("", "", None))
            if code:  # it failed, not just went idle: it will fail again
                self._give_up(f"the notification helper exited ({code}) without answering")
            self._fallback(title, message)

    def _give_up(self, reason: str) -> None:
        if self.backend != "desktop-notifier":
            return
        self.backend = "pystray" if self.fallback else "log"
        self.failure = reason
        log.warning("desktop notifications unavailable (%s); using %s", reason, self.backend)

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
