"""The frozen Linux bundle (`uv run --group packaging python packaging/build.py`) works without
the venv: CI builds it first, then these smoke tests run it as a user would."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import Desktop, need

pytestmark = [
    pytest.mark.integration,
    pytest.mark.linux,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux bundle"),
]

BUNDLE = Path(__file__).resolve().parents[2] / "dist" / "uvsweep" / "uvsweep"
BUILD = (
    "the frozen bundle is not built (run `uv run --group packaging python packaging/build.py`;"
    " .ci/run does)"
)


def frozen_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    # nothing from the dev environment: no venv, no PYTHONPATH
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "UVSWEEP_CONFIG": str(tmp_path / "s.toml"),
    }
    env.update(extra)
    return env


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BUNDLE), *args], capture_output=True, text=True, env=env,
                          timeout=60, check=False)  # fmt: skip


def test_version_scan_and_clean(tmp_path: Path, lockdir: Path) -> None:
    need(BUNDLE.exists(), BUILD)
    from uvsweep import __version__

    env = frozen_env(tmp_path)
    done = run(env, "--version")
    assert done.stdout.strip() == f"uvsweep {__version__}"
    (lockdir / "uv-00000000000000aa.lock").touch()
    (lockdir / "uv-00000000000000bb.lock").write_text("x")
    done = run(env, "scan", "--json", "--dir", str(lockdir))
    doc = json.loads(done.stdout)
    assert (
        done.returncode == 0
        and doc["summary"]["orphaned"] == 1
        and doc["summary"]["suspicious"] == 1
    )
    done = run(env, "clean", "--json", "--dir", str(lockdir))
    assert json.loads(done.stdout)["removed"] == [str(lockdir / "uv-00000000000000aa.lock")]


def test_the_bundle_has_the_man_page_the_desktop_file_and_the_icons() -> None:
    need(BUNDLE.exists(), BUILD)
    share = BUNDLE.parent / "share"
    page = (share / "man" / "man1" / "uvsweep.1").read_text()
    from uvsweep import cli

    for name in cli.commands(cli.build_parser()):
        assert f'.SS "uvsweep {name}"' in page, name
    assert (share / "applications" / "uvsweep.desktop").is_file()
    assert (share / "icons" / "hicolor" / "256x256" / "apps" / "uvsweep.png").is_file()


def test_the_frozen_desktop_entry_icon_resolves(tmp_path: Path) -> None:
    need(BUNDLE.exists(), BUILD)
    env = frozen_env(tmp_path, XDG_DATA_HOME=str(tmp_path / "data"))
    done = run(env, "desktop-entry", "install")
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "data" / "applications" / "uvsweep.desktop").read_text()
    keys = dict(line.split("=", 1) for line in text.splitlines()[1:] if "=" in line)
    assert keys["Exec"] == str(BUNDLE)
    assert Path(keys["Icon"]).is_file() and keys["Icon"].startswith(str(tmp_path / "data"))


def test_the_frozen_tray_docks(trayer: Desktop, tmp_path: Path, lockdir: Path) -> None:
    need(BUNDLE.exists(), BUILD)
    from tests.gui import badge_pixels, wait_for_title

    (lockdir / "uv-00000000000000aa.lock").touch()
    env = frozen_env(tmp_path, DISPLAY=trayer.env["DISPLAY"],
                     DBUS_SESSION_BUS_ADDRESS=trayer.env["DBUS_SESSION_BUS_ADDRESS"],
                     XDG_RUNTIME_DIR=str(tmp_path), PYSTRAY_BACKEND="xorg")  # fmt: skip
    app = subprocess.Popen([str(BUNDLE), "tray", "--dir", str(lockdir)], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        icon = wait_for_title(trayer, "1 orphaned uv lock file")
        time.sleep(0.3)
        assert badge_pixels(trayer, icon, "frozen-tray") > 10
    finally:
        app.send_signal(signal.SIGTERM)
        _out, err = app.communicate(timeout=10)
    assert app.returncode == 0, err
    assert "Traceback" not in err
    assert os.path.getsize(BUNDLE) > 0
