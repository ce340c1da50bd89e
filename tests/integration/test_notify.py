"""Notifications: the policy, and a real notification server (dunst) or none at all."""

from __future__ import annotations

import json
import threading
import time

import pytest

from tests.conftest import Desktop
from uvsweep.tray.notify import Notifier, NotifyPolicy


def test_policy_coalesces_rate_limits_and_respects_the_threshold() -> None:
    policy = NotifyPolicy(threshold=3, interval=1800)
    assert policy.check(5, now=0) is None  # what is there at start is not news
    assert policy.check(6, now=10) == "1 new orphaned uv lock file (6 in all)"
    assert policy.check(9, now=20) is None  # rate-limited...
    assert policy.check(12, now=1900) == "6 new orphaned uv lock files (12 in all)"  # ...coalesced
    assert policy.check(0, now=4000) is None
    assert policy.check(2, now=5000) is None  # below the threshold
    assert policy.check(3, now=5001) == "3 new orphaned uv lock files"


def wait_for(predicate: object, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline
        time.sleep(0.02)


@pytest.mark.gui
def test_a_real_notification_server_shows_it(
    dunst: Desktop, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key in ("DISPLAY", "DBUS_SESSION_BUS_ADDRESS"):
        monkeypatch.setenv(key, dunst.env[key])
    notifier = Notifier()
    notifier.start()
    try:
        notifier.send("uvsweep", "3 new orphaned uv lock files", button=("Clean now", lambda: None))
        wait_for(lambda: notifier.sent)
        assert notifier.sent == [("desktop-notifier", "uvsweep", "3 new orphaned uv lock files")]
        wait_for(lambda: dunst.run("dunstctl", "count", "displayed").stdout.strip() == "1")
        dunst.run("dunstctl", "close-all")
        history = json.loads(dunst.run("dunstctl", "history").stdout)
        bodies = [n["body"]["data"] for n in history["data"][0]]
        assert "3 new orphaned uv lock files" in bodies
    finally:
        notifier.stop()


def test_no_notification_service_falls_back_without_blocking(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
    shown: list[tuple[str, str]] = []
    notifier = Notifier(fallback=lambda title, message: shown.append((title, message)) or True)
    notifier.start()
    try:
        began = time.monotonic()
        notifier.send("uvsweep", "hello")
        assert time.monotonic() - began < 0.1  # the caller never waits
        wait_for(lambda: shown)
        assert shown == [("uvsweep", "hello")] and notifier.backend == "pystray"
        assert notifier.failure
        notifier.send("uvsweep", "again")  # straight to the fallback now
        wait_for(lambda: len(shown) == 2)
    finally:
        notifier.stop()
    assert not [t for t in threading.enumerate() if t.name == "uvsweep-notify"]


def test_without_any_way_it_logs(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
    caplog.set_level("INFO", logger="uvsweep.notify")
    notifier = Notifier(fallback=lambda _t, _m: False)
    notifier.start()
    try:
        notifier.send("uvsweep", "to the log")
        wait_for(lambda: notifier.sent)
    finally:
        notifier.stop()
    assert notifier.sent == [("log", "uvsweep", "to the log")] and notifier.backend == "log"
    assert "to the log" in caplog.text


@pytest.mark.gui
def test_the_clean_now_button(desktop: Desktop, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.fake_notifications import Server  # dbus-fast: Linux only

    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", desktop.env["DBUS_SESSION_BUS_ADDRESS"])
    server = Server(desktop.env["DBUS_SESSION_BUS_ADDRESS"])
    pressed = threading.Event()
    notifier = Notifier()
    notifier.start()
    try:
        notifier.send("uvsweep", "2 new orphaned uv lock files", button=("Clean now", pressed.set))
        wait_for(lambda: server.service.shown)
        ident, summary, body, actions = server.service.shown[0]
        assert (summary, body) == ("uvsweep", "2 new orphaned uv lock files")
        labels = dict(zip(actions[::2], actions[1::2], strict=True))
        key = next(k for k, label in labels.items() if label == "Clean now")
        server.press(ident, key)
        assert pressed.wait(10), "pressing the button must run the action"
    finally:
        notifier.stop()
        server.stop()
