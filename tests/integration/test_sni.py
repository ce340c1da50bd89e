"""The StatusNotifierItem backend, seen by a panel of our own on a private session bus."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests import procs
from tests.conftest import need

pytest.importorskip("dbus_fast", reason="dbus-fast comes with desktop-notifier on Linux only")

from tests.fake_sni_host import Host, flatten
from tests.gui import BUSES, session_bus_pid
from tests.helpers import A, B, eventually

pytestmark = [pytest.mark.gui, pytest.mark.integration]

from tests.conftest import Desktop  # noqa: E402, F401 - the desktop fixture lives in conftest


@contextlib.contextmanager
def sni_app(session_bus: str, lockdir: Path) -> Iterator[tuple[Any, Host]]:
    """A panel of our own, and the tray app on `lockdir` showing itself through SNI."""
    from uvsweep.settings import Settings
    from uvsweep.tray import sni
    from uvsweep.tray.app import TrayApp, pystray_icon

    host = Host(session_bus)
    app = TrayApp([str(lockdir)], Settings(notifications=False))
    runner = threading.Thread(
        target=app.run,
        args=(lambda a: pystray_icon(a, sni.icon_class(), bus_address=session_bus),),
        name="test-tray",
    )
    runner.start()
    try:
        yield app, host
    finally:
        app.quit()
        runner.join(5)
        host.stop()
    assert not runner.is_alive()


def red_pixels(pixmap: list[Any]) -> int:
    _w, _h, data = pixmap
    return sum(1 for i in range(0, len(data), 4)
               if data[i] > 200 and data[i + 1] > 200 and data[i + 2] < 110)  # fmt: skip


def test_a_panel_sees_the_item_its_badge_and_menu_and_cleans(
    session_bus: str, lockdir: Path
) -> None:
    (lockdir / A).touch()
    (lockdir / B).touch()
    with sni_app(session_bus, lockdir) as (app, host):
        service = eventually(lambda: host.watcher.items and host.watcher.items[0])
        props = eventually(lambda: (p := host.item_properties(service))["Title"]
                           == "2 orphaned uv lock files" and p)  # fmt: skip
        assert props["Status"] == "NeedsAttention" and props["ItemIsMenu"] is False
        assert props["Menu"] == "/MenuBar"
        assert props["ToolTip"][2] == "2 orphaned uv lock files"
        sizes = {(w, h) for w, h, _ in props["IconPixmap"]}
        assert {(16, 16), (22, 22), (24, 24), (32, 32)} <= sizes
        assert all(red_pixels(p) > 0 for p in props["IconPixmap"])  # the badge, at every size
        host.watch_layout(service)
        statuses: list[str] = []
        host.watch_status(service, statuses)
        revision, root = host.layout(service)
        entries = dict(flatten(root))
        labels = {props.get("label"): ident for ident, props in entries.items()}
        assert "Clean now (2)" in labels
        clean = labels["Clean now (2)"]
        checked = entries[labels["Notifications"]]
        assert checked["toggle-type"] == "checkmark" and checked["toggle-state"] == 0
        assert entries[labels["2 orphaned uv lock files"]]["enabled"] is False
        submenu = entries[labels["Lock files (2)"]]
        assert submenu["children-display"] == "submenu"
        group = host.group_properties(service, [clean, labels["Quit"]])
        assert group[clean]["label"] == "Clean now (2)" and group[clean]["enabled"] is True
        assert host.about_to_show(service, 0) in (True, False)  # answered, never an error
        # a toggle changes one property, not the layout: ItemsPropertiesUpdated says which
        app.dispatch("toggle-notifications")
        eventually(lambda: any(props.get("toggle-state") == 1
                               for u in host.property_updates for props in u.values()))  # fmt: skip
        host.click(service, clean)
        eventually(lambda: not (lockdir / A).exists() and not (lockdir / B).exists())
        eventually(lambda: host.item_properties(service)["Title"].startswith("No orphaned"))
        assert host.item_properties(service)["Status"] == "Active"
        eventually(lambda: "Active" in statuses)  # NewStatus told the panel
        assert "NewIcon" in statuses and "NewToolTip" in statuses  # the badge and text changed
        eventually(lambda: host.layout_updates)
        assert max(host.layout_updates) > revision


def test_it_registers_again_when_the_watcher_comes_back(session_bus: str) -> None:
    import pystray
    from PIL import Image

    from uvsweep.tray import sni

    icon = sni.icon_class()("uvsweep", icon=Image.new("RGBA", (32, 32)), title="t",
                            menu=pystray.Menu(), bus_address=session_bus)  # fmt: skip
    icon.run_detached()
    try:
        assert not sni.registry_present(bus_address=session_bus)
        host = Host(session_bus)  # a panel starts after the app
        assert sni.registry_present(bus_address=session_bus)
        eventually(lambda: host.watcher.items)
        host.stop()
        again = Host(session_bus)  # the panel restarts
        eventually(lambda: again.watcher.items)
        again.stop()
    finally:
        icon.stop()


def test_uvsweep_picks_sni_when_a_host_is_there_even_without_x(
    session_bus: str, lockdir: Path, tmp_path: Path
) -> None:
    import signal
    import sys

    from tests.conftest import APP_DIR

    host = Host(session_bus)
    (lockdir / A).touch()
    env = {**os.environ, "DBUS_SESSION_BUS_ADDRESS": session_bus, "WAYLAND_DISPLAY": "wayland-9",
           "XDG_RUNTIME_DIR": str(tmp_path), "PYTHONPATH": APP_DIR,
           "UVSWEEP_CONFIG": str(tmp_path / "s.toml")}  # fmt: skip
    env.pop("DISPLAY", None)
    env.pop("PYSTRAY_BACKEND", None)
    command = [sys.executable, "-m", "uvsweep", "tray", "--dir", str(lockdir)]
    app = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True)  # fmt: skip
    try:
        service = eventually(lambda: host.watcher.items and host.watcher.items[0])
        eventually(lambda: host.item_properties(service)["Title"] == "1 orphaned uv lock file")
        doctor = subprocess.run([sys.executable, "-m", "uvsweep", "doctor"], env=env,
                                capture_output=True, text=True, timeout=60,
                                check=False)  # fmt: skip
        assert "tray backend: sni: a StatusNotifierWatcher is on the session bus" in doctor.stdout
    finally:
        app.send_signal(signal.SIGTERM)
        _out, err = app.communicate(timeout=10)
        host.stop()
    assert app.returncode == 0, err
    assert "Traceback" not in err


def test_in_a_real_panel_xfce4(desktop: Any, tmp_path: Path, lockdir: Path) -> None:
    """End to end in xfce4-panel, a real StatusNotifierItem host: badge, menu, Clean now."""
    import signal
    import sys

    from PIL import Image

    from tests.gui import SHOTS, click_clean_now

    need(
        shutil.which("xfce4-panel") is not None,
        "xfce4-panel is not installed (Debian: xfce4-panel)",
    )
    need(shutil.which("xdotool") is not None, "xdotool is not installed (Debian: xdotool)")
    home = tmp_path / "home"
    home.mkdir()
    env = {**desktop.env, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")}
    env.pop("PYSTRAY_BACKEND", None)
    panel = procs.popen(["xfce4-panel"], env=env, stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL, lasting=True)  # fmt: skip
    desktop.procs.append(panel)
    from uvsweep.tray import sni

    eventually(lambda: sni.registry_present(bus_address=env["DBUS_SESSION_BUS_ADDRESS"]), 20)
    # and the panel's own host has registered with it, so it will show what registers next
    host_ready = [
        "dbus-send", "--session", "--print-reply", "--dest=org.kde.StatusNotifierWatcher",
        "/StatusNotifierWatcher", "org.freedesktop.DBus.Properties.Get",
        "string:org.kde.StatusNotifierWatcher", "string:IsStatusNotifierHostRegistered",
    ]  # fmt: skip
    eventually(lambda: "boolean true" in desktop.run(*host_ready).stdout, 20)
    (lockdir / A).touch()
    (lockdir / B).touch()
    from tests.gui import alone

    app = subprocess.Popen(
        alone([os.path.join(os.path.dirname(sys.executable), "uvsweep"), "tray", "--dir",
               str(lockdir)]),
        env={**env, "XDG_RUNTIME_DIR": str(tmp_path), "UVSWEEP_CONFIG": str(tmp_path / "s.toml")},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip
    try:

        def badge() -> tuple[int, int] | None:
            shot = SHOTS / "sni-panel.png"
            desktop.run("import", "-window", "root", "-crop", "1024x40+0+0", "+repage", str(shot))
            with Image.open(shot) as image:
                rgb = image.convert("RGB")
                data = rgb.tobytes()
            found = [(i // 3 % rgb.width, i // 3 // rgb.width) for i in range(0, len(data), 3)
                     if data[i] > 200 and data[i + 1] < 110 and data[i + 2] < 110]  # fmt: skip
            if not found:
                return None
            return sum(x for x, _ in found) // len(found), sum(y for _, y in found) // len(found)

        x, y = eventually(badge, 20)
        desktop.run("xdotool", "mousemove", str(x - 3), str(y + 3), "click", "3")
        menu = eventually(lambda: menu_window_any(desktop), 10)
        click_clean_now(desktop, menu, "sni-menu")
        eventually(lambda: not (lockdir / A).exists() and not (lockdir / B).exists())
        eventually(lambda: badge() is None)
    finally:
        os.killpg(app.pid, signal.SIGTERM)  # the tray (and unshare, when it is wrapped)
        _out, err = app.communicate(timeout=10)
    assert app.returncode in (0, -signal.SIGTERM), err
    assert "Traceback" not in err


def menu_window_any(desktop: Any) -> tuple[int, int, int, int] | None:
    """(x, y, w, h) of a popup menu taller than 150 px (whoever's class it carries)."""
    import re

    for line in desktop.run("xwininfo", "-root", "-tree").stdout.splitlines():
        match = re.search(r"\s(\d+)x(\d+)\+-?\d+\+-?\d+\s+\+(-?\d+)\+(-?\d+)\s*$", line)
        if match and "panel" not in line.lower():
            w, h, x, y = map(int, match.groups())
            if 150 < h < 600 and 100 < w < 600 and y > 10:
                return x, y, w, h
    return None


def test_the_bus_dropping_mid_run_is_survived_and_the_item_comes_back(
    session_bus: str, lockdir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("WARNING", logger="uvsweep.tray.sni")
    problems: list[str] = []
    with sni_app(session_bus, lockdir) as (app, host):
        eventually(lambda: host.watcher.items)
        app.icon.on_problem = problems.append
        bus = BUSES[-1]
        host.stop()
        bus.kill()  # the session bus dies under us
        eventually(lambda: "lost the session bus connection" in caplog.text)
        eventually(lambda: problems and "reconnecting" in problems[0])
        (lockdir / A).touch()  # the watcher goes on meanwhile
        eventually(lambda: app.counts()[0] == 1)
        bus.start()  # and the bus comes back at the same address, with a panel on it
        again = Host(session_bus)
        try:
            service = eventually(lambda: again.watcher.items and again.watcher.items[0], 30)
            eventually(lambda: again.item_properties(service)["Title"]
                       == "1 orphaned uv lock file")  # fmt: skip
            assert problems[-1] == ""  # and the tray said all is well again
            assert "reconnected to the session bus" in caplog.text
        finally:
            again.stop()


def test_activate_runs_the_default_item(session_bus: str, lockdir: Path) -> None:
    (lockdir / A).touch()
    with sni_app(session_bus, lockdir) as (_app, host):
        service = eventually(lambda: host.watcher.items and host.watcher.items[0])
        eventually(lambda: host.item_properties(service)["Title"] == "1 orphaned uv lock file")
        host.activate(service)  # a left click on the icon in most panels
        eventually(lambda: not (lockdir / A).exists())


@pytest.mark.parametrize("paced", [True, False], ids=["paced", "dbus-fast-alone"])
def test_a_full_socket_buffer_waits_instead_of_disconnecting(session_bus: str,
                                                             paced: bool) -> None:  # fmt: skip
    """The bus daemon stops reading (SIGSTOP) while 4 MB of signals go out: with the paced socket
    the writer waits for room and everything arrives once the daemon reads again; dbus-fast on
    its own drops the connection at the first EAGAIN (the upstream bug PacedSocket works
    around), which the second case shows, so the first one proves something."""
    import asyncio
    import signal

    from dbus_fast import Message
    from dbus_fast.aio import MessageBus

    from uvsweep.tray import sni

    async def flood() -> tuple[bool, int, bool]:
        bus = await MessageBus(bus_address=session_bus).connect()
        pacer = sni.pace(bus) if paced else None
        os.kill(session_bus_pid(), signal.SIGSTOP)
        try:
            body = ["x" * 4096]

            def send() -> asyncio.Future[Any]:
                try:
                    return bus.send(Message.new_signal("/t", "org.uvsweep.Test", "Big", "s", body))
                except OSError as err:  # unpaced: EBADF once dbus-fast closed the connection
                    failed: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
                    failed.set_exception(err)
                    return failed

            sent = [send() for _ in range(1000)]
            await asyncio.sleep(0.5)
            alive_while_full = bus.connected
        finally:
            os.kill(session_bus_pid(), signal.SIGCONT)
        results = await asyncio.wait_for(asyncio.gather(*sent, return_exceptions=True), 30)
        delivered = sum(1 for r in results if not isinstance(r, BaseException))
        connected = bus.connected
        bus.disconnect()
        with contextlib.suppress(Exception):
            await bus.wait_for_disconnect()
        return alive_while_full, delivered, connected and (pacer is None or pacer.stalls > 0)

    alive, delivered, still = asyncio.run(flood())
    if paced:
        assert alive and still and delivered == 1000
    else:
        assert not (alive and still and delivered == 1000)


def test_a_second_uvsweep_asks_the_first_to_show_itself_again(
    session_bus: str, lockdir: Path, tmp_path: Path
) -> None:
    import signal
    import sys

    from tests.conftest import APP_DIR

    host = Host(session_bus)
    env = {**os.environ, "DBUS_SESSION_BUS_ADDRESS": session_bus, "WAYLAND_DISPLAY": "wayland-9",
           "XDG_RUNTIME_DIR": str(tmp_path), "PYTHONPATH": APP_DIR,
           "XDG_STATE_HOME": str(tmp_path / "state"),
           "UVSWEEP_CONFIG": str(tmp_path / "s.toml")}  # fmt: skip
    env.pop("DISPLAY", None)
    env.pop("PYSTRAY_BACKEND", None)
    command = [sys.executable, "-m", "uvsweep", "tray", "--dir", str(lockdir)]
    first = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)  # fmt: skip
    try:
        eventually(lambda: host.watcher.items)
        registrations = len(host.watcher.items)
        second = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60,
                                check=False)  # fmt: skip
        assert second.returncode == 0, second.stderr
        assert second.stdout.strip() == (
            f"uvsweep is already running (pid {first.pid}); asked it to show its icon again."
        )
        # it registered with the panel again (a panel that dropped it shows it again)
        eventually(lambda: len(host.watcher.items) > registrations)
        assert set(host.watcher.items) == {host.watcher.items[0]}  # the same item
    finally:
        first.send_signal(signal.SIGTERM)
        _out, err = first.communicate(timeout=10)
        host.stop()
    assert first.returncode == 0, err
    assert not (tmp_path / "uvsweep.sock").exists()  # the channel closed with it
    log = (tmp_path / "state" / "uvsweep" / "log" / "uvsweep.log").read_text()
    assert "a second uvsweep asked to show the icon again" in log
