"""User settings: a small TOML file in the platformdirs config dir, read here, never overwritten.

A missing file means defaults. A corrupt or mistyped one gives a clear warning and the defaults,
and the file is left exactly as it is for the user to fix.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing costs ~3 ms to import; annotations only need it for mypy
if TYPE_CHECKING:
    from typing import Any

#: Overrides the settings file's path (tests, and users who keep dotfiles elsewhere).
CONFIG_ENV = "UVSWEEP_CONFIG"


class Settings:
    """What the user configured. Every field has a safe default."""

    __slots__ = ("dirs", "project_dirs", "safety_rescan", "warnings")

    def __init__(
        self,
        dirs: tuple[str, ...] = (),
        project_dirs: tuple[str, ...] = (),
        safety_rescan: float = 60.0,
        warnings: tuple[str, ...] = (),
    ) -> None:
        self.dirs = dirs  # extra temp dirs to scan besides the defaults
        self.project_dirs = project_dirs  # projects (or folders of them) to label lock files with
        self.safety_rescan = safety_rescan  # seconds between the watcher's full rescans
        self.warnings = warnings  # what was wrong with the file, for the user


def read_toml(path: str) -> dict[str, Any]:
    """Parse a TOML file. OSError if it cannot be read, ValueError if it is not valid TOML."""
    with open(path, "rb") as handle:  # first: most scans have no settings file to parse
        if sys.version_info >= (3, 11):
            import tomllib  # noqa: PLC0415 - ~9 ms with the typing module it pulls in
        else:  # pragma: no cover - Python 3.10
            import tomli as tomllib  # noqa: PLC0415
        try:
            data: dict[str, Any] = tomllib.load(handle)
        except UnicodeDecodeError as err:
            raise ValueError(str(err)) from err
    return data  # tomllib.TOMLDecodeError is a ValueError


def config_dir(platform: str = sys.platform) -> str:
    """uvsweep's config dir: platformdirs' `user_config_dir("uvsweep")`.

    On Linux and the BSDs that is the XDG rule, which is computed here directly because importing
    platformdirs costs more than the rest of a `uvsweep scan` on an empty dir.
    """
    if platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        base = os.environ.get("XDG_CONFIG_HOME", "").strip()
        if not base:
            base = os.path.expanduser("~/.config")
        return os.path.join(base, "uvsweep")
    from platformdirs import user_config_dir  # noqa: PLC0415

    return user_config_dir("uvsweep", appauthor=False)


def config_path() -> str:
    """Where the settings file lives (it may not exist)."""
    return os.environ.get(CONFIG_ENV) or os.path.join(config_dir(), "settings.toml")


def _str_list(data: dict[str, Any], key: str, warnings: list[str], path: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(os.path.expanduser(item) for item in value)
    warnings.append(f"{path}: `{key}` must be a list of strings; ignoring it")
    return ()


def _seconds(
    data: dict[str, Any], key: str, default: float, warnings: list[str], path: str
) -> float:
    value = data.get(key, default)
    if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1e9:
        return float(value)
    warnings.append(f"{path}: `{key}` must be a number of seconds > 0; using {default:g}")
    return default


def load(path: str | None = None) -> Settings:
    """Read the settings file; never raises for a missing, unreadable or corrupt file."""
    path = path or config_path()
    try:
        data = read_toml(path)
    except FileNotFoundError:
        return Settings()
    except (OSError, ValueError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        return Settings(warnings=(f"{path}: cannot read settings ({reason}); using defaults",))
    warnings: list[str] = []
    return Settings(
        dirs=_str_list(data, "dirs", warnings, path),
        project_dirs=_str_list(data, "project_dirs", warnings, path),
        safety_rescan=_seconds(data, "safety_rescan", 60.0, warnings, path),
        warnings=tuple(warnings),
    )
