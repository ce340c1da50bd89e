"""Red team: input that still crashes the command line (a traceback instead of one line)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import APP_DIR

pytestmark = [pytest.mark.integration]


def _run(args: list[str], config: Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": APP_DIR, "UVSWEEP_CONFIG": str(config)}
    return subprocess.run(
        [sys.executable, "-m", "uvsweep", *args], capture_output=True, text=True, env=env,
        check=False, timeout=120, **kwargs,  # type: ignore[arg-type]
    )  # fmt: skip


# Fixed; it was R9: a settings path with a NUL (TOML's \u0000 escape) passes parse_value; os calls
# then raise ValueError ('embedded null byte'), which nothing catches: a traceback
@pytest.mark.parametrize("key", ["project_dirs", "dirs"])
def test_a_nul_in_a_settings_path_is_a_warning_not_a_traceback(
    tmp_path: Path, lockdir: Path, key: str
) -> None:
    config = tmp_path / "settings.toml"
    config.write_text(f'{key} = ["{lockdir}/x\\u0000y"]\n')
    (lockdir / "uv-00000000000000aa.lock").touch()
    # `dirs` only counts without --dir: that scan also looks at /tmp (read-only)
    args = ["scan", "--dir", str(lockdir)] if key == "project_dirs" else ["scan"]
    out = _run(args, config)
    assert "Traceback" not in out.stderr, out.stderr[-600:]
    assert key in out.stderr, "the warning names the setting"


# Fixed; it was R10: with stderr closed (sys.stderr is None), `clean` dies in _Status() with
# AttributeError ('NoneType' object has no attribute 'isatty') before doing anything
def test_clean_with_stderr_closed_still_cleans(lockdir: Path, tmp_path: Path) -> None:
    (lockdir / "uv-00000000000000aa.lock").touch()
    env = {**os.environ, "PYTHONPATH": APP_DIR, "UVSWEEP_CONFIG": str(tmp_path / "none.toml")}
    out = subprocess.run(
        ["/bin/sh", "-c", 'exec "$@" 2>&-', "sh", sys.executable, "-m", "uvsweep", "clean",
         "--dir", str(lockdir), "--ignore-running-uv"],
        capture_output=True, text=True, env=env, check=False, timeout=120,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout
    assert not (lockdir / "uv-00000000000000aa.lock").exists()
