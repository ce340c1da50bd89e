"""Helpers for the tests on a real desktop (see `Desktop` in conftest): the docked icon's window
and badge, the tray's menu, screenshots, and a PID namespace for a tray of its own."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tests import procs
from tests.conftest import need

if TYPE_CHECKING:
    from tests.conftest import Desktop

#: Where the screenshots go: UVSWEEP_SCREENSHOTS (docs/screenshots/ holds the chosen ones), else
#: a temp dir.
SHOTS = Path(os.environ.get("UVSWEEP_SCREENSHOTS") or tempfile.mkdtemp(prefix="uvsweep-shots-"))
SHOTS.mkdir(parents=True, exist_ok=True)


def icon_window(desktop: Desktop) -> tuple[str, int, int, int, int] | None:
    """(title, x, y, width, height) of uvsweep's docked icon window, if it is there."""
    tree = desktop.run("xwininfo", "-root", "-tree").stdout
    for line in tree.splitlines():
        # xorg backend: class uvsweepSystemTrayIcon; gtk backend: a StatusIcon named by its title
        if '"uvsweepSystemTrayIcon"' in line or (
            '("uvsweep" "Uvsweep")' in line and "uv lock file" in line
        ):
            match = re.search(
                r'0x[0-9a-f]+ "([^"]*)".*?(\d+)x(\d+)\+-?\d+\+-?\d+\s+\+(-?\d+)\+(-?\d+)', line
            )
            if match:
                title, w, h, x, y = match.groups()
                return title, int(x), int(y), int(w), int(h)
    return None


def wait_for_title(
    desktop: Desktop, title: str, timeout: float = 15
) -> tuple[str, int, int, int, int]:
    deadline = time.monotonic() + timeout
    while True:
        found = icon_window(desktop)
        if found and found[0] == title:
            return found
        assert time.monotonic() < deadline, f"icon title never became {title!r}; last: {found}"
        time.sleep(0.05)


def badge_pixels(desktop: Desktop, geometry: tuple[str, int, int, int, int], name: str) -> int:
    """Red badge pixels in a screenshot of the icon (the shot is kept for the README)."""
    need(shutil.which("import") is not None, "ImageMagick is not installed (Debian: imagemagick)")
    _, x, y, w, h = geometry
    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / f"{name}.png"
    area = f"{w + 40}x{h + 8}+{x - 20}+{max(0, y - 4)}"
    done = desktop.run("import", "-window", "root", "-crop", area, "+repage", str(shot))
    assert done.returncode == 0, done.stderr
    from PIL import Image

    with Image.open(shot) as image:
        icon = image.convert("RGB").crop((20, y - max(0, y - 4), 20 + w, y - max(0, y - 4) + h))
        data = icon.tobytes()
    return sum(1 for i in range(0, len(data), 3)
               if data[i] > 190 and data[i + 1] < 120 and data[i + 2] < 120)  # fmt: skip


def click_clean_now(desktop: Desktop, menu: tuple[int, int, int, int], shot: str) -> None:
    """Screenshot the open menu (as `shot`.png), then point at "Clean now" and click it: the
    keyboard highlights it (the first enabled item is "Lock files", then "Clean now"), and the
    highlighted band in a screenshot says where it is."""
    mx, my, mw, mh = menu
    time.sleep(0.3)
    desktop.run("import", "-window", "root", "-crop", f"{mw + 40}x{mh + 40}+{mx - 10}+0",
                "+repage", str(SHOTS / f"{shot}.png"))  # fmt: skip
    desktop.run("xdotool", "key", "Down", "Down")
    time.sleep(0.3)
    row = highlighted_row(desktop, menu)
    desktop.run("xdotool", "mousemove", str(mx + mw // 2), str(my + row), "click", "1")


def highlighted_row(desktop: Desktop, menu: tuple[int, int, int, int]) -> int:
    """The y offset (in the menu) of the centre of its highlighted item: the rows that are mostly
    the theme's selection colour (a saturated colour, where the menu is grey and text is dark)."""
    from PIL import Image

    x, y, w, h = menu
    shot = SHOTS / "menu-highlight.png"
    desktop.run("import", "-window", "root", "-crop", f"{w}x{h}+{x}+{y}", "+repage", str(shot))
    with Image.open(shot) as image:
        hsv = image.convert("RGB").convert("HSV")
        data = hsv.tobytes()
    marked = []
    for row in range(h):
        start = row * w * 3
        saturated = sum(1 for i in range(start, start + w * 3, 3) if data[i + 1] > 100)
        if saturated > w // 2:
            marked.append(row)
    assert marked, "no highlighted item in the menu"
    return (marked[0] + marked[-1]) // 2


def alone(argv: list[str]) -> list[str]:
    """`argv` in a PID namespace of its own where that is possible (root), so the uv processes
    other people run on this machine do not make its cleanups wait."""
    if os.geteuid() == 0 and shutil.which("unshare"):
        probe = subprocess.run(["unshare", "--pid", "--fork", "--mount-proc", "true"],
                               capture_output=True, check=False)  # fmt: skip
        if probe.returncode == 0:
            # its own /proc hides the rest of the machine: the test's dirs are its own, so it
            # accepts that, as a container's image would
            return ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child=SIGTERM", "env",
                    "UVSWEEP_ACCEPT_HIDDEN_PROCESSES=1", *argv]  # fmt: skip
    return argv


class SessionBus:
    """A private dbus-daemon at a fixed socket path, so it can be killed and started again at
    the same address (as when a session's bus restarts)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "bus"
        self.address = f"unix:path={self.path}"
        self.pid = 0
        self.start()

    def start(self) -> None:
        self.path.unlink(missing_ok=True)
        bus = procs.run(
            ["dbus-daemon", "--session", "--fork", f"--address={self.address}",
             "--print-pid=1"],
            capture_output=True, text=True, check=True, timeout=30,
        )  # fmt: skip
        self.pid = int(bus.stdout.split()[0])
        procs.keep(self.pid)

    def kill(self) -> None:
        """Kill it (SIGKILL: no goodbye on the bus) and wait until it is gone."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, signal.SIGKILL)
        assert not procs.wait_gone([self.pid], 10), "the session bus outlived SIGKILL"


BUSES: list[SessionBus] = []


def session_bus_pid() -> int:
    return BUSES[-1].pid
