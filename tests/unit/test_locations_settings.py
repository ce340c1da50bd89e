"""Where uv's temp dir is on each OS, which dirs a scan covers, and settings that never crash."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from uvsweep import settings
from uvsweep.locations import default_dirs, unique_dirs, uv_temp_dir


def _none() -> str | None:
    return None


@pytest.mark.parametrize(
    ("platform", "environ", "confstr", "wintemp", "expected"),
    [
        ("linux", {"TMPDIR": "/scratch/"}, None, None, "/scratch"),
        ("linux", {}, None, None, "/tmp"),
        ("linux", {"TMPDIR": ""}, None, None, "/tmp"),
        ("darwin", {"TMPDIR": "/var/folders/ab/T/"}, "/x/T/", None, "/var/folders/ab/T"),
        ("darwin", {}, "/var/folders/cd/T/", None, "/var/folders/cd/T"),
        ("darwin", {}, None, None, "/tmp"),  # launchd jobs and sudo: no TMPDIR, no confstr
        (
            "win32",
            {"TMP": "C:\\Users\\me\\AppData\\Local\\Temp"},
            None,
            "C:\\W\\SystemTemp\\",
            "C:\\W\\SystemTemp",
        ),
        ("win32", {"TEMP": "C:\\T2"}, None, None, "C:\\T2"),
        ("win32", {"USERPROFILE": "C:\\Users\\me"}, None, None, "C:\\Users\\me"),
    ],
)
def test_uv_temp_dir_follows_rusts_temp_dir(
    platform: str, environ: dict[str, str], confstr: str | None, wintemp: str | None, expected: str
) -> None:
    assert uv_temp_dir(platform, environ, lambda: confstr, lambda: wintemp) == expected


def test_default_dirs_add_tmp_and_settings_dirs_once(tmp_path: Path) -> None:
    extra = tmp_path / "more"
    dirs = default_dirs([str(extra), str(extra) + "/"], "linux", {"TMPDIR": "/tmp"}, _none, _none)
    assert dirs == ["/tmp", str(extra)]


def test_default_dirs_on_windows_do_not_add_slash_tmp() -> None:
    dirs = default_dirs([], "win32", {}, _none, lambda: "C:\\T\\")
    assert dirs[0].endswith("C:\\T") and "/tmp" not in dirs


def test_unique_dirs_compares_real_paths(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "link").symlink_to(real)
    assert unique_dirs([str(real), str(tmp_path / "link")]) == [str(real)]


def test_missing_settings_file_means_defaults(tmp_path: Path) -> None:
    loaded = settings.load(str(tmp_path / "nope.toml"))
    assert (loaded.dirs, loaded.project_dirs, loaded.warnings) == ((), (), ())


def test_corrupt_settings_warn_use_defaults_and_keep_the_file(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_bytes(b"dirs = [\x00 this is not toml")
    before = path.read_bytes()
    loaded = settings.load(str(path))
    assert loaded.dirs == ()
    assert "cannot read settings" in loaded.warnings[0]
    assert path.read_bytes() == before


def test_wrong_types_are_ignored_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text('dirs = "/tmp"\nproject_dirs = ["~/code"]\n')
    loaded = settings.load(str(path))
    assert loaded.dirs == ()
    assert loaded.project_dirs == (os.path.expanduser("~/code"),)
    assert "`dirs` must be a list of strings" in loaded.warnings[0]


def test_unreadable_settings_file_is_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.mkdir()  # a directory where the file should be: reading it fails on every OS
    assert settings.load(str(path)).warnings


def test_config_path_honours_the_override(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(settings.CONFIG_ENV, "/some/where.toml")
    assert settings.config_path() == "/some/where.toml"


@pytest.mark.parametrize("xdg", ["", "/custom/config"])
def test_config_dir_agrees_with_platformdirs(monkeypatch: pytest.MonkeyPatch, xdg: str) -> None:
    import sys

    from platformdirs import user_config_dir

    if not sys.platform.startswith("linux"):
        pytest.skip("the fast path is for Linux")
    monkeypatch.setenv("XDG_CONFIG_HOME", xdg)
    assert settings.config_dir() == user_config_dir("uvsweep", appauthor=False)
