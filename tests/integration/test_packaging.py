"""What the release carries: the wheel has the icon (and an install finds it), and the man page
is generated from the parser with every command and option in it."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import need

pytestmark = [pytest.mark.integration]

ROOT = Path(__file__).resolve().parents[2]
SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)


def write_manpage(out: Path, epoch: str = "1700000000") -> str:
    done = subprocess.run(
        [sys.executable, str(ROOT / "packaging" / "manpage.py"), str(out)],
        capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "SOURCE_DATE_EPOCH": epoch},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return out.read_text()


def test_the_man_page_lists_every_command_and_option(tmp_path: Path) -> None:
    from uvsweep import __version__, cli

    page = write_manpage(tmp_path / "uvsweep.1")
    assert page.startswith(f'.TH UVSWEEP 1 "2023-11-14" "uvsweep {__version__}"')
    commands = cli.commands(cli.build_parser())
    assert {"scan", "clean", "watch", "tray", "doctor", "autostart", "config", "lockname",
            "desktop-entry", "completion", "help"} <= set(commands)  # fmt: skip
    for name, parser in commands.items():
        assert f'.SS "uvsweep {name}"' in page, name
        for action in parser._actions:
            for flag in action.option_strings:
                assert flag.replace("-", "\\-") in page, (name, flag)
    assert "130  interrupted" in page  # the states and exit codes
    # reproducible: the same date, the same bytes
    assert write_manpage(tmp_path / "again.1") == page


def test_the_man_page_renders_without_warnings(tmp_path: Path) -> None:
    need(shutil.which("groff") is not None, "groff is not installed (Debian package groff-base)")
    page = tmp_path / "uvsweep.1"
    write_manpage(page)
    done = subprocess.run(["groff", "-man", "-Tutf8", "-ww", str(page)], capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0 and done.stderr == "", done.stderr
    shown = re.sub(r".\x08", "", done.stdout)  # no overstriking
    assert "uvsweep clean" in shown and "--min-age" in shown.replace("\u2010", "-")


def test_the_wheel_carries_the_icon_and_an_install_finds_it(tmp_path: Path, uv: str) -> None:
    dist = tmp_path / "dist"
    done = subprocess.run([uv, "build", "--quiet", "--wheel", "--out-dir", str(dist), str(ROOT)],
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    (wheel,) = dist.glob("uvsweep-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for size in SIZES:
        assert f"uvsweep/icons/hicolor/{size}x{size}/apps/uvsweep.png" in names, size
    # installed alone (its dependencies are not needed to find it), it finds its own icons
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True,
                   capture_output=True, timeout=120)  # fmt: skip
    subprocess.run([uv, "pip", "install", "--quiet", "--no-deps", "--python",
                    str(venv / "bin" / "python"), str(wheel)], check=True, capture_output=True,
                   timeout=120)  # fmt: skip
    code = "from uvsweep import autostart; print(autostart.shipped_icons())"
    found = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True,
        timeout=60, cwd=tmp_path,
    ).stdout.strip()  # fmt: skip
    assert found.startswith(str(venv)) and found.endswith("uvsweep/icons/hicolor")
    assert Path(found, "256x256", "apps", "uvsweep.png").read_bytes().startswith(b"\x89PNG")
