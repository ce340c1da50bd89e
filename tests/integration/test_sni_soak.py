"""Soak under a real StatusNotifierItem host (xfce4-panel): bursts of lock files and Clean now
through dbusmenu, round after round; the item stays registered, the title counts right, and a
host that caches the menu by id equals a fresh GetLayout after every round."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests import procs
from tests.conftest import need

pytest.importorskip("dbus_fast", reason="dbus-fast comes with desktop-notifier on Linux only")

from tests.fake_sni_host import Host
from tests.gui import alone
from tests.helpers import eventually

pytestmark = [pytest.mark.gui, pytest.mark.integration, pytest.mark.slow]

ROUNDS = 10
BURST = 50  # lock files per round, created over BURST_SECONDS
BURST_SECONDS = 2.0

REGISTERED = [
    "dbus-send", "--session", "--print-reply", "--dest=org.kde.StatusNotifierWatcher",
    "/StatusNotifierWatcher", "org.freedesktop.DBus.Properties.Get",
    "string:org.kde.StatusNotifierWatcher", "string:RegisteredStatusNotifierItems",
]  # fmt: skip
HOST_READY = [*REGISTERED[:-1], "string:IsStatusNotifierHostRegistered"]


def start_panel(desktop: Any, tmp_path: Path) -> dict[str, str]:
    """xfce4-panel on the desktop, its watcher and host up; the environment to run uvsweep in."""
    need(shutil.which("xfce4-panel") is not None,
         "xfce4-panel is not installed (Debian: xfce4-panel)")  # fmt: skip
    home = tmp_path / "home"
    home.mkdir()
    env = {**desktop.env, "HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"),
           "XDG_STATE_HOME": str(home / ".state"), "XDG_RUNTIME_DIR": str(tmp_path),
           "UVSWEEP_CONFIG": str(tmp_path / "s.toml")}  # fmt: skip
    env.pop("PYSTRAY_BACKEND", None)
    panel = procs.popen(["xfce4-panel"], env=env, stdout=subprocess.DEVNULL,
                        stderr=subprocess.DEVNULL, lasting=True)  # fmt: skip
    desktop.procs.append(panel)
    eventually(lambda: "boolean true" in desktop.run(*HOST_READY).stdout, 30)
    return env


def registered(desktop: Any) -> list[str]:
    """The item services the panel's watcher lists."""
    return re.findall(r'string "([^"/]+)/', desktop.run(*REGISTERED).stdout)


def test_bursts_and_cleanups_in_xfce4_panel(desktop: Any, tmp_path: Path, lockdir: Path) -> None:
    from uvsweep.tray.art import tooltip

    env = start_panel(desktop, tmp_path)
    log = tmp_path / "tray.log"
    with open(log, "w") as err:
        app = subprocess.Popen(
            alone([os.path.join(os.path.dirname(sys.executable), "uvsweep"), "tray", "--dir",
                   str(lockdir)]),
            env=env, stdout=subprocess.DEVNULL, stderr=err, start_new_session=True,
        )  # fmt: skip
    host = Host(env["DBUS_SESSION_BUS_ADDRESS"], own_watcher=False)
    try:
        service = eventually(lambda: (found := registered(desktop)) and found[0], 30)
        cache = host.cache_menu(service)
        cleaned = 0

        def title() -> str:
            return str(host.item_properties(service)["Title"])

        def files() -> int:
            return len(list(lockdir.iterdir()))

        for number in range(ROUNDS):
            for i in range(BURST):
                (lockdir / f"uv-{number:04x}{i:012x}.lock").touch()
                time.sleep(BURST_SECONDS / BURST)
            assert service in registered(desktop), f"round {number}: the item left the panel"
            eventually(lambda: title() == tooltip(files()), 30)
            entries = host.fresh_menu(service)
            clean = [i for i, (props, _) in entries.items()
                     if str(props.get("label", "")).startswith("Clean now")]  # fmt: skip
            if clean:  # else a cleanup waits for uv already, and says so
                host.click(service, clean[0])

            def settled_after_clean() -> bool:
                if files() == 0:
                    return True
                labels = [str(p.get("label", "")) for p, _ in host.fresh_menu(service).values()]
                # uv processes of others on this machine make a cleanup wait (and say so)
                return any(label.startswith("Will clean when uv is idle") for label in labels)

            eventually(settled_after_clean, 30)
            cleaned += files() == 0
            eventually(lambda: title() == tooltip(files()), 30)
            eventually(lambda: cache.settled() and cache.view() == host.fresh_menu(service), 30)
            assert not cache.errors, cache.errors
            assert service in registered(desktop), f"round {number}: the item left the panel"
        assert cleaned > 0, "no round's Clean now removed the files"
    finally:
        host.stop()
        os.killpg(app.pid, signal.SIGTERM)  # the tray (and unshare, when it is wrapped)
        app.wait(10)
    text = log.read_text()
    assert app.returncode in (0, -signal.SIGTERM), text
    assert "Traceback" not in text and "lost the session bus" not in text, text
