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
    assert "not valid TOML" in loaded.warnings[0] and "using defaults" in loaded.warnings[0]
    assert loaded.corrupt
    assert path.read_bytes() == before  # read-only commands never touch it


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


def test_the_tray_moves_a_corrupt_file_aside(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_bytes(b"notifications = maybe\n")
    loaded = settings.load(str(path), repair=True)
    assert loaded.notifications is True and loaded.corrupt
    aside = list(tmp_path.glob("settings.toml.corrupt-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == b"notifications = maybe\n"
    assert not path.exists()
    assert str(aside[0]) in loaded.warnings[0]


def test_save_and_load_round_trip_every_setting(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "settings.toml"
    changed = settings.Settings().replace(
        dirs=("/scratch/tmp", 'we"ird \\ dir'), project_dirs=("/code",), safety_rescan=15.5,
        notifications=False, notify_threshold=3, notify_interval=60.0, auto_clean=True,
        auto_clean_min_age=7200.0, tray_backend="xorg",
    )  # fmt: skip
    settings.save(changed, str(path))
    loaded = settings.load(str(path))
    assert loaded.warnings == ()
    assert loaded.values() == changed.values()
    assert [p.name for p in path.parent.iterdir()] == ["settings.toml"]  # no temp file left
    assert "# desktop notifications from the tray app" in path.read_text()


def test_unknown_keys_and_bad_values_warn(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text("colour = 'blue'\nnotify_threshold = 0\nauto_clean = 'yes'\n")
    loaded = settings.load(str(path))
    assert (loaded.notify_threshold, loaded.auto_clean) == (1, False)
    assert len(loaded.warnings) == 3
    assert "unknown setting `colour`" in loaded.warnings[0]


@pytest.mark.parametrize(
    ("key", "text", "value"),
    [("notifications", "off", False), ("auto_clean", "yes", True), ("notify_threshold", "5", 5),
     ("safety_rescan", "2.5", 2.5), ("dirs", f"/a{os.pathsep}/b", ("/a", "/b")),
     ("tray_backend", "gtk", "gtk")],
)  # fmt: skip
def test_values_typed_on_the_command_line(key: str, text: str, value: object) -> None:
    field = next(f for f in settings.FIELDS if f.key == key)
    assert settings.parse_text(field, text) == value


@pytest.mark.parametrize(
    ("key", "text"),
    [("notifications", "maybe"), ("notify_threshold", "0"), ("safety_rescan", "-1"),
     ("notify_threshold", "x")],
)  # fmt: skip
def test_bad_values_typed_on_the_command_line(key: str, text: str) -> None:
    field = next(f for f in settings.FIELDS if f.key == key)
    with pytest.raises(ValueError):
        settings.parse_text(field, text)
