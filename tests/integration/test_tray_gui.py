"""The tray app as a person sees it: docked in a real tray (trayer) on a real X server (Xvfb),
notifications in a real notification server (dunst), lock files made by real uv."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import procs
from tests.conftest import Desktop, make_project, need
from tests.gui import SHOTS, alone, badge_pixels, click_clean_now, icon_window, wait_for_title

pytestmark = [pytest.mark.gui, pytest.mark.integration, pytest.mark.linux,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="X11")]  # fmt: skip


def start_tray(
    desktop: Desktop, tmp_path: Path, lockdir: Path, backend: str
) -> subprocess.Popen[str]:
    """`uvsweep tray` on `lockdir`, with a private runtime dir and settings file."""
    runtime = tmp_path / "run"
    runtime.mkdir(exist_ok=True)
    env = {**desktop.env, "XDG_RUNTIME_DIR": str(runtime), "PYSTRAY_BACKEND": backend,
           "UVSWEEP_CONFIG": str(tmp_path / "settings.toml")}  # fmt: skip
    exe = os.path.join(os.path.dirname(sys.executable), "uvsweep")
    return procs.popen([exe, "tray", "--dir", str(lockdir)], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def docked(desktop: Desktop) -> bool:
    """Whether uvsweep's icon window sits inside trayer's panel."""
    pattern = r'"panel": \("panel" "trayer"\)\s+(\d+)x(\d+)\+-?\d+\+-?\d+\s+\+(-?\d+)\+(-?\d+)'
    panel = re.search(pattern, desktop.run("xwininfo", "-root", "-tree").stdout)
    icon = icon_window(desktop)
    if not panel or not icon:
        return False
    pw, ph, px, py = map(int, panel.groups())
    _, x, y, _w, _h = icon
    return px <= x < px + pw and py <= y < py + ph


def test_docked_badge_follows_real_uv_and_notifies(
    trayer: Desktop, dunst: Desktop, tmp_path: Path, lockdir: Path, uv: str,
    uv_env: dict[str, str],
) -> None:  # fmt: skip
    desktop = trayer
    app = start_tray(desktop, tmp_path, lockdir, "xorg")
    try:
        began = time.monotonic()
        docked = wait_for_title(desktop, "No orphaned uv lock files")
        docked_after = time.monotonic() - began
        assert docked_after < 10
        assert badge_pixels(desktop, docked, "tray-no-orphans") == 0
        project = make_project(tmp_path / "proj")
        done = subprocess.run([uv, "sync"], cwd=project, env=uv_env, capture_output=True,
                              text=True, timeout=120, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
        badged = wait_for_title(desktop, "1 orphaned uv lock file")
        time.sleep(0.3)  # let the X server repaint the icon
        assert badge_pixels(desktop, badged, "tray-one-orphan") > 10
        # the notification, in the real notification server's history
        deadline = time.monotonic() + 10
        while desktop.run("dunstctl", "count", "displayed").stdout.strip() != "1":
            assert time.monotonic() < deadline, "no notification was shown"
            time.sleep(0.05)
        desktop.run("dunstctl", "close-all")
        history = json.loads(desktop.run("dunstctl", "history").stdout)
        bodies = [n["body"]["data"] for n in history["data"][0]]
        assert "1 orphaned uv lock file, 1 new" in bodies
    finally:
        stopping = time.monotonic()
        app.send_signal(signal.SIGTERM)
        _out, err = app.communicate(timeout=10)
    assert app.returncode == 0, err
    assert time.monotonic() - stopping < 2.0  # every thread stopped, the interpreter gone
    assert "Traceback" not in err


def menu_window(desktop: Desktop) -> tuple[int, int, int, int] | None:
    """(x, y, width, height) of an open uvsweep menu."""
    for line in desktop.run("xwininfo", "-root", "-tree").stdout.splitlines():
        match = re.search(
            r'"uvsweep": \("uvsweep" "Uvsweep"\)\s+(\d+)x(\d+)\+-?\d+\+-?\d+\s+\+(-?\d+)\+(-?\d+)',
            line,
        )
        if match and int(match.group(1)) > 100:
            w, h, x, y = map(int, match.groups())
            return x, y, w, h
    return None


def gtk_available() -> bool:
    try:
        import gi

        gi.require_version("Gtk", "3.0")
        from gi.repository import Gtk  # noqa: F401
    except (ImportError, ValueError):
        return False
    return True


GTK = (
    "PyGObject and GTK 3 (the `gtk` extra: `uv sync --extra gtk`, built with Debian's"
    " libgirepository1.0-dev libcairo2-dev pkg-config; gir1.2-gtk-3.0 to run)"
)


def test_menu_clean_now_with_a_click(
    trayer: Desktop, dunst: Desktop, tmp_path: Path, lockdir: Path, uv: str,
    uv_env: dict[str, str],
) -> None:  # fmt: skip
    need(gtk_available(), GTK)
    need(shutil.which("xdotool") is not None, "xdotool is not installed (Debian: xdotool)")
    desktop = trayer
    project = make_project(tmp_path / "proj")
    done = subprocess.run([uv, "sync"], cwd=project, env=uv_env, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (lockdir / "uv-00000000000000aa.lock").touch()
    app = start_tray(desktop, tmp_path, lockdir, "gtk")
    try:
        icon = wait_for_title(desktop, "2 orphaned uv lock files")
        time.sleep(0.3)
        assert badge_pixels(desktop, icon, "tray-gtk-two-orphans") > 10
        _, x, y, w, h = icon
        desktop.run("xdotool", "mousemove", str(x + w // 2), str(y + h // 2), "click", "3")
        deadline = time.monotonic() + 10
        while (menu := menu_window(desktop)) is None:
            assert time.monotonic() < deadline, "the menu did not open"
            time.sleep(0.05)
        assert menu[1] >= y + h - 2  # under the panel, where a person sees it
        click_clean_now(desktop, menu, "tray-menu")
        cleaned = wait_for_title(desktop, "No orphaned uv lock files")
        assert not [p for p in lockdir.iterdir() if p.name.startswith("uv-")]
        time.sleep(0.3)
        assert badge_pixels(desktop, cleaned, "tray-gtk-cleaned") == 0
        deadline = time.monotonic() + 10
        while True:
            desktop.run("dunstctl", "close-all")
            history = json.loads(desktop.run("dunstctl", "history").stdout)
            bodies = [n["body"]["data"] for n in history["data"][0]]
            if "Removed 2 uv lock files" in bodies:
                break
            assert time.monotonic() < deadline, f"no cleanup notification: {bodies}"
            time.sleep(0.1)
    finally:
        app.send_signal(signal.SIGTERM)
        _out, err = app.communicate(timeout=10)
    assert app.returncode == 0, err
    assert "Traceback" not in err


@pytest.mark.parametrize("delay", [0.05, 0.3, 0.6])
def test_sigterm_while_starting_never_leaves_it_running(
    trayer: Desktop, tmp_path: Path, lockdir: Path, delay: float
) -> None:
    app = start_tray(trayer, tmp_path, lockdir, "xorg")
    time.sleep(delay)
    app.send_signal(signal.SIGTERM)
    _out, err = app.communicate(timeout=5)
    # 0 once its handler is in place; before that, SIGTERM's default action
    assert app.returncode in (0, -signal.SIGTERM), err
    assert "Traceback" not in err


def test_gtk_without_a_notification_service_still_shows(
    trayer: Desktop, tmp_path: Path, lockdir: Path
) -> None:
    need(gtk_available(), GTK)
    (lockdir / "uv-00000000000000aa.lock").touch()
    # no notification server on this bus: activating one fails, as on a bare window manager
    app = start_tray(trayer, tmp_path, lockdir, "gtk")
    try:
        wait_for_title(trayer, "1 orphaned uv lock file")
    finally:
        app.send_signal(signal.SIGTERM)
        _out, err = app.communicate(timeout=10)
    assert app.returncode == 0, err
    assert "Traceback" not in err


def test_xorg_docks_when_the_tray_starts_later_and_a_left_click_cleans(
    desktop: Desktop, tmp_path: Path, lockdir: Path
) -> None:
    need(shutil.which("trayer") is not None, "trayer is not installed (Debian: trayer)")
    need(shutil.which("xdotool") is not None, "xdotool is not installed (Debian: xdotool)")
    (lockdir / "uv-00000000000000aa.lock").touch()
    app = start_tray(desktop, tmp_path, lockdir, "xorg")
    try:
        time.sleep(1.5)
        assert not docked(desktop)  # no tray yet
        desktop.start("trayer", "--edge", "top", "--align", "right", "--widthtype", "request",
                      "--height", "24")  # fmt: skip
        _, x, y, w, h = wait_for_title(desktop, "1 orphaned uv lock file")
        deadline = time.monotonic() + 10
        while not docked(desktop):
            assert time.monotonic() < deadline, "the icon never docked in the late tray"
            time.sleep(0.05)
        _, x, y, w, h = icon_window(desktop) or ("", 0, 0, 0, 0)
        desktop.run("xdotool", "mousemove", str(x + w // 2), str(y + h // 2), "click", "1")
        wait_for_title(desktop, "No orphaned uv lock files")
        assert not (lockdir / "uv-00000000000000aa.lock").exists()
    finally:
        app.send_signal(signal.SIGTERM)
        _out, err = app.communicate(timeout=10)
    assert app.returncode == 0, err
    assert "Traceback" not in err


def dark_pixels(desktop: Desktop, geometry: tuple[str, int, int, int, int], name: str) -> int:
    """Near-black pixels in a screenshot of the icon window (kept as `name`.png)."""
    need(shutil.which("import") is not None, "ImageMagick is not installed (Debian: imagemagick)")
    _, x, y, w, h = geometry
    shot = SHOTS / f"{name}.png"
    done = desktop.run("import", "-window", "root", "-crop", f"{w}x{h}+{x}+{y}", "+repage",
                       str(shot))  # fmt: skip
    assert done.returncode == 0, done.stderr
    from PIL import Image

    with Image.open(shot) as image:
        data = image.convert("RGB").tobytes()
    return sum(1 for i in range(0, len(data), 3) if max(data[i : i + 3]) < 60)


def test_xembed_keeps_its_size_through_clicks_and_titles_and_shows_no_black_square(
    trayer: Desktop, tmp_path: Path, lockdir: Path
) -> None:

    need(shutil.which("xdotool") is not None, "xdotool is not installed (Debian: xdotool)")
    for n in range(3):
        (lockdir / f"uv-00000000000000a{n}.lock").touch()
    runtime = tmp_path / "run"
    runtime.mkdir()
    env = {**trayer.env, "XDG_RUNTIME_DIR": str(runtime), "PYSTRAY_BACKEND": "xorg",
           "UVSWEEP_CONFIG": str(tmp_path / "settings.toml")}  # fmt: skip
    exe = os.path.join(os.path.dirname(sys.executable), "uvsweep")
    app = subprocess.Popen(alone([exe, "tray", "--dir", str(lockdir)]), env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           start_new_session=True)  # fmt: skip
    try:
        wait_for_title(trayer, "3 orphaned uv lock files")
        deadline = time.monotonic() + 10
        while not docked(trayer):
            assert time.monotonic() < deadline, "the icon never docked"
            time.sleep(0.05)
        time.sleep(0.5)  # let trayer settle its layout
        first = icon_window(trayer)
        assert first is not None
        _, x, y, w, h = first
        assert w >= 16 and h >= 16, first
        # on the tray's own background: no black square around the glyph
        assert dark_pixels(trayer, first, "xembed-trayer") < w * h // 20
        trayer.run("import", "-window", "root", "-crop", f"{w + 60}x{h + 8}+{x - 30}+0",
                   "+repage", str(SHOTS / "xembed-trayer-panel.png"))  # fmt: skip
        for round_ in range(4):
            trayer.run("xdotool", "mousemove", str(x + w // 2), str(y + h // 2), "click", "1")
            (lockdir / f"uv-00000000000000b{round_}.lock").touch()  # the title changes too
            time.sleep(0.6)
            now = icon_window(trayer)
            assert now is not None and now[3:] == (w, h), f"click {round_}: {now} != {first}"
        assert dark_pixels(trayer, icon_window(trayer) or first, "xembed-trayer-after") < (
            w * h // 20)  # fmt: skip
    finally:
        os.killpg(app.pid, signal.SIGTERM)
        _out, err = app.communicate(timeout=10)
    assert app.returncode in (0, -signal.SIGTERM), err
    assert "Traceback" not in err
