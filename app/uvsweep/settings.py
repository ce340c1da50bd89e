"""User settings: a small TOML file in the platformdirs config dir, read here, never overwritten.

A missing file means defaults. A corrupt or mistyped one gives a clear warning and the defaults,
and the file is left exactly as it is for the user to fix.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: Overrides the settings file's path (tests, and users who keep dotfiles elsewhere).
CONFIG_ENV = "UVSWEEP_CONFIG"


@dataclass(frozen=True)
class Settings:
    """What the user configured. Every field has a safe default."""

    dirs: tuple[str, ...] = ()  # extra temp dirs to scan besides the defaults
    project_dirs: tuple[str, ...] = ()  # projects (or folders of projects) to label lock files with
    warnings: tuple[str, ...] = field(default=(), compare=False)


def config_path() -> str:
    """Where the settings file lives (it may not exist)."""
    override = os.environ.get(CONFIG_ENV)
    if override:
        return override
    from platformdirs import user_config_dir  # noqa: PLC0415 - keeps CLI start-up cheap

    return os.path.join(user_config_dir("uvsweep", appauthor=False), "settings.toml")


def _str_list(data: dict[str, Any], key: str, warnings: list[str], path: str) -> tuple[str, ...]:
    value = data.get(key, [])
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(os.path.expanduser(item) for item in value)
    warnings.append(f"{path}: `{key}` must be a list of strings; ignoring it")
    return ()


def load(path: str | None = None) -> Settings:
    """Read the settings file; never raises for a missing, unreadable or corrupt file."""
    path = path or config_path()
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        return Settings()
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err)
        return Settings(warnings=(f"{path}: cannot read settings ({reason}); using defaults",))
    warnings: list[str] = []
    return Settings(
        dirs=_str_list(data, "dirs", warnings, path),
        project_dirs=_str_list(data, "project_dirs", warnings, path),
        warnings=tuple(warnings),
    )
