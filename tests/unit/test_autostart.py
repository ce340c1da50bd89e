"""Start at login: the XDG writer for real, the LaunchAgent and Run-key writers with seams."""

from __future__ import annotations

import os
import plistlib
import shlex
from pathlib import Path
from typing import Any

import pytest

from uvsweep import autostart
from uvsweep.autostart import APPROVED_KEY, RUN_KEY, LaunchAgent, Registry, WindowsRun, XdgAutostart


def test_xdg_enable_status_disable(tmp_path: Path) -> None:
    writer = XdgAutostart({"XDG_CONFIG_HOME": str(tmp_path)})
    assert not writer.status().enabled
    command = ["/opt/my apps/uvsweep", "tray"]
    state = writer.enable(command)
    assert state.enabled and state.where == str(tmp_path / "autostart" / "uvsweep.desktop")
    text = (tmp_path / "autostart" / "uvsweep.desktop").read_text()
    exec_line = next(line for line in text.splitlines() if line.startswith("Exec="))
    assert shlex.split(exec_line[5:]) == command
    assert "X-GNOME-Autostart-enabled=true" in text and "Type=Application" in text
    # the session's own switch is respected
    (tmp_path / "autostart" / "uvsweep.desktop").write_text(
        text.replace("X-GNOME-Autostart-enabled=true", "X-GNOME-Autostart-enabled=false")
    )
    assert not writer.status().enabled
    (tmp_path / "autostart" / "uvsweep.desktop").write_text(text + "Hidden=true\n")
    assert writer.status().detail == "the entry is hidden"
    assert not writer.disable().enabled
    assert not (tmp_path / "autostart" / "uvsweep.desktop").exists()
    assert not writer.disable().enabled  # idempotent


def test_xdg_defaults_to_home_config(tmp_path: Path) -> None:
    assert XdgAutostart({"HOME": str(tmp_path)}).path == str(
        tmp_path / ".config" / "autostart" / "uvsweep.desktop"
    )


@pytest.mark.parametrize(
    ("argument", "quoted"),
    [("/usr/bin/uvsweep", "/usr/bin/uvsweep"), ("/a b/c", '"/a b/c"'), ('x"y', '"x\\"y"'),
     ("100%", "100%%"), ("$HOME", '"\\$HOME"')],
)  # fmt: skip
def test_desktop_quote(argument: str, quoted: str) -> None:
    assert autostart.desktop_quote(argument) == quoted


def test_installed_command(tmp_path: Path) -> None:
    venv = tmp_path / "venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "uvsweep").touch()
    assert autostart.installed_command(str(venv / "python"), frozen=False) == [
        str(venv / "uvsweep"),
        "tray",
    ]
    assert autostart.installed_command("/app/uvsweep", frozen=True) == ["/app/uvsweep"]
    assert autostart.installed_command(
        "/usr/bin/python3", frozen=False, which=lambda _name: "/usr/local/bin/uvsweep"
    ) == ["/usr/local/bin/uvsweep", "tray"]
    assert autostart.installed_command("/usr/bin/python3", frozen=False, which=lambda _n: None) == [
        "/usr/bin/python3",
        "-m",
        "uvsweep",
        "tray",
    ]
    with pytest.raises(ValueError, match="uv tool install"):
        autostart.installed_command("/home/me/.cache/uv/archive-v0/abc/bin/python", frozen=False)


def test_launch_agent(tmp_path: Path) -> None:
    calls: list[list[str]] = []
    agent = LaunchAgent(home=str(tmp_path), uid=501, run=lambda argv: calls.append(list(argv)) or 0)
    assert not agent.status().enabled
    state = agent.enable(["/Applications/uvsweep.app/Contents/MacOS/uvsweep"])
    assert state.enabled
    path = tmp_path / "Library" / "LaunchAgents" / "dev.uvsweep.tray.plist"
    plist = plistlib.loads(path.read_bytes())
    assert plist["Label"] == "dev.uvsweep.tray" and plist["RunAtLoad"] is True
    assert plist["ProcessType"] == "Interactive"
    assert plist["KeepAlive"] == {"SuccessfulExit": False}
    assert calls == [
        ["launchctl", "bootout", "gui/501/dev.uvsweep.tray"],
        ["launchctl", "bootstrap", "gui/501", str(path)],
    ]
    assert not agent.disable().enabled and not path.exists()
    assert calls[-1] == ["launchctl", "bootout", "gui/501/dev.uvsweep.tray"]


class FakeRegistry(Registry):
    def __init__(self) -> None:
        self.values: dict[tuple[str, str], Any] = {}

    def get(self, key: str, name: str) -> Any:
        return self.values.get((key, name))

    def set(self, key: str, name: str, value: str | bytes) -> None:
        self.values[(key, name)] = value

    def delete(self, key: str, name: str) -> None:
        self.values.pop((key, name), None)


def test_windows_run_key_and_task_manager_switch() -> None:
    registry = FakeRegistry()
    run = WindowsRun(registry)
    assert not run.status().enabled
    state = run.enable([r"C:\Program Files\uvsweep\uvsweep.exe"])
    assert state.enabled
    assert registry.values[(RUN_KEY, "uvsweep")] == r'"C:\Program Files\uvsweep\uvsweep.exe"'
    registry.set(APPROVED_KEY, "uvsweep", b"\x03" + bytes(11))  # the user turned it off
    state = run.status()
    assert not state.enabled and "Task Manager" in state.detail
    assert run.enable([r"C:\uvsweep.exe"]).enabled  # asked for explicitly: back on
    assert registry.values[(APPROVED_KEY, "uvsweep")][:1] == b"\x02"
    assert not run.disable().enabled
    assert registry.values == {}


def test_the_chooser() -> None:
    assert isinstance(autostart.for_platform("linux"), XdgAutostart)
    assert isinstance(autostart.for_platform("darwin"), LaunchAgent)
    assert isinstance(autostart.for_platform("win32"), WindowsRun)


@pytest.mark.skipif(os.name == "nt", reason="a Unix home")
def test_cli_autostart(tmp_path: Path) -> None:
    from tests.integration.test_cli_scan import uvsweep

    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    assert uvsweep("autostart", "status", env=env).stdout.splitlines()[0] == "disabled"
    done = uvsweep("autostart", "enable", env=env)
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert lines[0] == "enabled" and lines[1] == f"entry: {tmp_path}/autostart/uvsweep.desktop"
    assert uvsweep("autostart", "status", env=env).stdout.splitlines()[0] == "enabled"
    assert uvsweep("autostart", "disable", env=env).stdout.splitlines()[0] == "disabled"
