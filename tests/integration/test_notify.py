"""Notifications: the policy, and a real notification server (dunst) or none at all."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from tests.conftest import Desktop
from uvsweep.tray.notify import Notifier, NotifyPolicy


def test_policy_coalesces_rate_limits_and_respects_the_threshold() -> None:
    policy = NotifyPolicy(threshold=3, interval=1800)
    assert policy.check(5, now=0) is None  # what is there at start is not news
    assert policy.check(6, now=10) == "6 orphaned uv lock files, 1 new"
    assert policy.due() is None
    assert policy.check(9, now=20) is None  # rate-limited...
    assert policy.due() == 1810  # ...but not forgotten
    assert policy.check(12, now=1900) == "12 orphaned uv lock files, 6 new"  # ...coalesced
    assert policy.due() is None
    assert policy.check(0, now=4000) is None
    assert policy.check(2, now=5000) is None  # below the threshold
    assert policy.check(3, now=5001) == "3 orphaned uv lock files, 3 new"
    # a held rise that went away (a cleanup) is not told later
    assert policy.check(4, now=5002) is None and policy.due() is not None
    assert policy.check(0, now=5003) is None and policy.due() is None


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


@pytest.mark.gui
def test_the_tray_tells_dunst_with_its_icon_the_counts_and_a_held_back_rise(
    dunst: Desktop, monkeypatch: pytest.MonkeyPatch, lockdir: Path, tmp_path: Path
) -> None:
    """Through the tray app: its own icon, counts from the snapshot that triggered the
    notification, and a rise the rate limit held back told once the limit allows."""
    from uvsweep.settings import Settings
    from uvsweep.tray.app import TrayApp

    for key in ("DISPLAY", "DBUS_SESSION_BUS_ADDRESS"):
        monkeypatch.setenv(key, dunst.env[key])
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    app = TrayApp([str(lockdir)], Settings(notify_threshold=1, notify_interval=4.0))
    app.start_background()
    try:
        wait_for(lambda: app.snapshot is not None)
        assert app.notifier.icon is not None and app.notifier.icon.startswith(str(tmp_path))
        (lockdir / "uv-00000000000000a1.lock").touch()
        (lockdir / "uv-00000000000000a2.lock").touch()
        wait_for(lambda: dunst.run("dunstctl", "count", "displayed").stdout.strip() == "1")
        (lockdir / "uv-00000000000000a3.lock").touch()  # within the interval: held back...
        wait_for(lambda: app.counts()[0] == 3)
        time.sleep(0.5)
        assert dunst.run("dunstctl", "count", "displayed").stdout.strip() == "1"
        # ...and told once the interval has passed, though no file changed since
        wait_for(lambda: dunst.run("dunstctl", "count", "displayed").stdout.strip() == "2", 20)
    finally:
        app.stop_background()
    dunst.run("dunstctl", "close-all")
    history = json.loads(dunst.run("dunstctl", "history").stdout)["data"][0]
    bodies = [n["body"]["data"] for n in reversed(history)]
    first = "2 orphaned uv lock files, 2 new"  # both files, or one then the rest
    assert bodies in (
        [first, "3 orphaned uv lock files, 1 new"],
        ["1 orphaned uv lock file, 1 new", "3 orphaned uv lock files, 2 new"],
    )
    icons = {n["icon_path"]["data"] for n in history}
    assert icons == {app.notifier.icon}, icons
