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
    writer = XdgAutostart({"XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path / "home")})
    assert not writer.status().enabled
    command = ["/opt/my apps/uvsweep", "tray"]
    state = writer.enable(command)
    assert state.enabled and state.where == str(tmp_path / "autostart" / "uvsweep.desktop")
    text = (tmp_path / "autostart" / "uvsweep.desktop").read_text()
    exec_line = next(line for line in text.splitlines() if line.startswith("Exec="))
    assert shlex.split(exec_line[5:]) == command
    # the icon: an absolute path into the user's hicolor theme (no XDG_DATA_HOME: under HOME)
    icon = next(line[5:] for line in text.splitlines() if line.startswith("Icon="))
    themed = tmp_path / "home" / ".local" / "share" / "icons" / "hicolor"
    assert icon == str(themed / "256x256" / "apps" / "uvsweep.png") and Path(icon).is_file()
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
    assert not Path(icon).exists()
    assert not writer.disable().enabled  # idempotent


def test_an_entry_names_the_icon_when_none_is_shipped(tmp_path: Path) -> None:
    icons = autostart.UserIcons({"XDG_DATA_HOME": str(tmp_path)}, source=str(tmp_path / "none"))
    assert icons.install() is None
    assert "Icon=uvsweep\n" in autostart.desktop_entry(["uvsweep", "tray"], None)


def test_shipped_icons_are_found_in_a_checkout_and_beside_a_frozen_bundle(tmp_path: Path) -> None:
    found = autostart.shipped_icons(frozen=False)
    assert found is not None and Path(found, "256x256", "apps", "uvsweep.png").is_file()
    bundle = tmp_path / "bundle"
    (bundle / "share" / "icons" / "hicolor" / "256x256" / "apps").mkdir(parents=True)
    (bundle / "share" / "icons" / "hicolor" / "256x256" / "apps" / "uvsweep.png").touch()
    # the package's own tree wins when it has one (the wheel); a frozen build has none
    assert autostart.shipped_icons(str(bundle / "uvsweep"), frozen=True) in (
        found, str(bundle / "share" / "icons" / "hicolor"))  # fmt: skip


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


class Launchctl:
    """launchctl as macOS 13+ answers it, for one user's gui domain.

    `bootout` of a loaded service kills the process launchd started for it; `bootstrap` of a
    loaded one fails (5: Input/output error); `enable`/`disable` set a persistent override,
    which `print-disabled` lists and the Login Items switch in System Settings also sets.
    """

    def __init__(self, uid: int = 501) -> None:
        self.domain = f"gui/{uid}"
        self.loaded: dict[str, str] = {}  # label -> plist path
        self.running: set[str] = set()
        self.overrides: dict[str, bool] = {}  # label -> disabled
        self.killed: list[str] = []
        self.calls: list[list[str]] = []

    def __call__(self, argv: Any) -> tuple[int, str]:
        argv = list(argv)
        self.calls.append(argv)
        assert argv[0] == "launchctl"
        verb, target = argv[1], argv[2]
        label = target.rsplit("/", 1)[-1]
        if verb == "print-disabled":
            lines = [f'\t"{name}" => {"disabled" if off else "enabled"}'
                     for name, off in self.overrides.items()]  # fmt: skip
            return 0, "disabled services = {\n" + "\n".join(lines) + "\n}\n"
        if verb == "print":
            return (0, f"{target} = {{ ... }}") if label in self.loaded else (113, "")
        if verb == "bootstrap":
            plist = plistlib.loads(Path(argv[3]).read_bytes())
            if plist["Label"] in self.loaded:
                return 5, ""
            if self.overrides.get(plist["Label"]):
                return 5, ""  # a disabled service cannot be bootstrapped
            self.loaded[plist["Label"]] = argv[3]
            self.running.add(plist["Label"])  # RunAtLoad
            return 0, ""
        if verb == "bootout":
            if label in self.running:
                self.killed.append(label)  # the running tray dies
                self.running.discard(label)
            return (0, "") if self.loaded.pop(label, None) else (3, "")
        if verb in ("enable", "disable"):
            self.overrides[label] = verb == "disable"
            return 0, ""
        raise AssertionError(f"unmodelled launchctl call: {argv}")


def test_launch_agent(tmp_path: Path) -> None:
    launchctl = Launchctl()
    agent = LaunchAgent(home=str(tmp_path), uid=501, run=launchctl)
    assert not agent.status().enabled
    state = agent.enable(["/Applications/uvsweep.app/Contents/MacOS/uvsweep"])
    assert state.enabled
    path = tmp_path / "Library" / "LaunchAgents" / "dev.uvsweep.tray.plist"
    plist = plistlib.loads(path.read_bytes())
    assert plist["Label"] == "dev.uvsweep.tray" and plist["RunAtLoad"] is True
    assert plist["ProcessType"] == "Interactive"
    # restarted after a crash only: an exit of its own (6: no window server) must not loop
    assert plist["KeepAlive"] == {"Crashed": True}
    assert launchctl.running == {"dev.uvsweep.tray"}
    assert agent.enable(["/Applications/uvsweep.app/Contents/MacOS/uvsweep"]).enabled
    assert not agent.disable().enabled and not path.exists()
    assert launchctl.killed == [], "enable and disable must never kill the running tray"
    assert launchctl.running == {"dev.uvsweep.tray"}


def test_launch_agent_reads_the_login_items_switch(tmp_path: Path) -> None:
    """macOS 13+: turning uvsweep off in System Settings > Login Items leaves the plist as it
    was and records a launchd override, which is what counts."""
    launchctl = Launchctl()
    agent = LaunchAgent(home=str(tmp_path), uid=501, run=launchctl)
    assert agent.enable(["/Applications/uvsweep.app/Contents/MacOS/uvsweep"]).enabled
    launchctl.overrides["dev.uvsweep.tray"] = True  # the user's switch
    state = agent.status()
    assert not state.enabled and "Login Items" in state.detail
    assert agent.enable(["/Applications/uvsweep.app/Contents/MacOS/uvsweep"]).enabled
    assert launchctl.overrides["dev.uvsweep.tray"] is False  # asked for explicitly: back on


def test_launch_agent_older_print_disabled_spelling(tmp_path: Path) -> None:
    out = 'disabled services = {\n\t"dev.uvsweep.tray" => true\n}\n'
    agent = LaunchAgent(home=str(tmp_path), uid=501, run=lambda argv: (0, out))
    path = tmp_path / "Library" / "LaunchAgents" / "dev.uvsweep.tray.plist"
    path.parent.mkdir(parents=True)
    path.write_bytes(plistlib.dumps({"Label": "dev.uvsweep.tray", "RunAtLoad": True}))
    assert not agent.status().enabled


def test_a_translocated_app_is_refused() -> None:
    translocated = (
        "/private/var/folders/xy/T/AppTranslocation/1234-ABCD/d/uvsweep.app/Contents/MacOS/uvsweep"
    )
    with pytest.raises(ValueError, match="/Applications"):
        autostart.installed_command(translocated, frozen=True)


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


@pytest.mark.parametrize(
    ("value", "enabled"),
    [(b"\x02", True), (b"\x06", True), (b"\x03", False), (b"\x07", False), (b"", True)],
)
def test_startup_approved_bit_0_means_disabled(value: bytes, enabled: bool) -> None:
    registry = FakeRegistry()
    run = WindowsRun(registry)
    run.enable([r"C:\uvsweep.exe"])
    registry.set(APPROVED_KEY, "uvsweep", value + bytes(11) if value else value)
    assert run.status().enabled is enabled
    assert run.enable([r"C:\uvsweep.exe"]).enabled


def test_the_chooser() -> None:
    assert isinstance(autostart.for_platform("linux"), XdgAutostart)
    assert isinstance(autostart.for_platform("darwin"), LaunchAgent)
    assert isinstance(autostart.for_platform("win32"), WindowsRun)


@pytest.mark.skipif(os.name == "nt", reason="a Unix home")
def test_cli_autostart(tmp_path: Path) -> None:
    from tests.helpers import uvsweep

    env = {"XDG_CONFIG_HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data")}
    assert uvsweep("autostart", "status", env=env).stdout.splitlines()[0] == "disabled"
    done = uvsweep("autostart", "enable", env=env)
    assert done.returncode == 0
    lines = done.stdout.splitlines()
    assert lines[0] == "enabled" and lines[1] == f"entry: {tmp_path}/autostart/uvsweep.desktop"
    assert uvsweep("autostart", "status", env=env).stdout.splitlines()[0] == "enabled"
    assert uvsweep("autostart", "disable", env=env).stdout.splitlines()[0] == "disabled"
