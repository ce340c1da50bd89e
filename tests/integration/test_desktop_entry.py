"""uvsweep in the Linux application menu (`desktop-entry`), and icons that resolve: the menu
entry's and the autostart entry's `Icon=` name a file that exists, copied into the user's hicolor
theme from the icons this uvsweep ships."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import need
from tests.helpers import uvsweep

pytestmark = [
    pytest.mark.integration,
    pytest.mark.linux,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="XDG desktop entries"),
]

PNG = b"\x89PNG\r\n\x1a\n"


def home(tmp_path: Path, data: bool = True) -> dict[str, str]:
    env = {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    if data:
        env["XDG_DATA_HOME"] = str(tmp_path / "data")
    return env


def entry(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines()
    assert lines[0] == "[Desktop Entry]"
    return dict(line.split("=", 1) for line in lines[1:] if line)


def assert_icon_resolves(keys: dict[str, str], under: Path) -> Path:
    icon = Path(keys["Icon"])
    assert icon.is_absolute() and icon.is_file(), keys["Icon"]
    assert icon.read_bytes().startswith(PNG)
    assert icon == under / "icons" / "hicolor" / "256x256" / "apps" / "uvsweep.png"
    return icon


def validate(path: Path) -> None:
    need(shutil.which("desktop-file-validate") is not None,
         "desktop-file-validate is not installed (Debian package desktop-file-utils)")  # fmt: skip
    done = subprocess.run(["desktop-file-validate", str(path)], capture_output=True, text=True,
                          timeout=30, check=False)  # fmt: skip
    # not even a hint (two main categories would list it twice in some menus)
    assert done.returncode == 0 and not done.stdout.strip(), done.stdout + done.stderr


def test_install_puts_uvsweep_in_the_menu_and_remove_takes_it_out(tmp_path: Path) -> None:
    env = home(tmp_path)
    data = tmp_path / "data"
    path = data / "applications" / "uvsweep.desktop"
    done = uvsweep("desktop-entry", "status", env=env)
    assert done.stdout.splitlines()[0] == "not installed"
    done = uvsweep("desktop-entry", "install", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[:2] == ["installed", f"entry: {path}"]
    keys = entry(path)
    command = shlex.split(keys["Exec"])
    assert os.path.isfile(command[0]) and os.access(command[0], os.X_OK)
    assert command[1:] == ["tray"]
    icon = assert_icon_resolves(keys, data)
    for size in (16, 32, 48, 512):  # every size, for the theme to pick from
        assert (data / "icons" / "hicolor" / f"{size}x{size}" / "apps" / "uvsweep.png").is_file()
    assert keys["Type"] == "Application" and keys["Terminal"] == "false"
    validate(path)
    assert uvsweep("desktop-entry", "status", env=env).stdout.splitlines()[0] == "installed"
    assert uvsweep("desktop-entry", "install", env=env).returncode == 0  # again: replaces it
    done = uvsweep("desktop-entry", "remove", env=env)
    assert done.returncode == 0 and done.stdout.splitlines()[0] == "not installed"
    assert not path.exists() and not icon.exists()
    assert uvsweep("desktop-entry", "remove", env=env).returncode == 0  # idempotent


def test_without_xdg_data_home_it_goes_under_home(tmp_path: Path) -> None:
    env = home(tmp_path, data=False)
    assert uvsweep("desktop-entry", "install", env={**env, "XDG_DATA_HOME": ""}).returncode == 0
    local = tmp_path / "home" / ".local" / "share"
    assert_icon_resolves(entry(local / "applications" / "uvsweep.desktop"), local)


def test_autostart_entry_icon_resolves_and_the_icon_stays_while_either_entry_uses_it(
    tmp_path: Path,
) -> None:
    env = home(tmp_path)
    data = tmp_path / "data"
    done = uvsweep("autostart", "enable", env=env)
    assert done.returncode == 0, done.stderr
    started = tmp_path / "config" / "autostart" / "uvsweep.desktop"
    icon = assert_icon_resolves(entry(started), data)
    validate(started)
    assert uvsweep("desktop-entry", "install", env=env).returncode == 0
    assert uvsweep("desktop-entry", "remove", env=env).returncode == 0
    assert icon.is_file()  # the autostart entry still shows it
    assert uvsweep("autostart", "disable", env=env).returncode == 0
    assert not icon.exists() and not started.exists()


def test_quiet_install_says_nothing(tmp_path: Path) -> None:
    done = uvsweep("-q", "desktop-entry", "install", env=home(tmp_path))
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert (tmp_path / "data" / "applications" / "uvsweep.desktop").is_file()


def test_an_unwritable_data_home_is_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("a file where the dir should be")
    done = uvsweep("desktop-entry", "install", env=home(tmp_path))
    assert done.returncode == 1
    assert done.stderr.startswith("uvsweep: desktop-entry install: ")
    assert done.stderr.count("\n") == 1


def test_the_packaged_desktop_file_is_valid() -> None:
    validate(Path(__file__).resolve().parents[2] / "packaging" / "linux" / "uvsweep.desktop")
