"""User settings: a small TOML file in the platformdirs config dir, read here, never overwritten.

A missing file means defaults. A corrupt or mistyped one gives a clear warning and the defaults,
and the file is left exactly as it is for the user to fix.
"""
# ruff: noqa: PLC0415 - imports inside functions: only the path that needs a module pays for it

from __future__ import annotations

import math
import os
import sys

from uvsweep import system

TYPE_CHECKING = False  # typing costs ~3 ms to import; annotations only need it for mypy
if TYPE_CHECKING:
    from typing import Any

#: Overrides the settings file's path (tests, and users who keep dotfiles elsewhere).
CONFIG_ENV = "UVSWEEP_CONFIG"


class Field:
    """One setting: its key, kind, default and what it means (for `uvsweep config`)."""

    __slots__ = ("default", "help", "key", "kind")

    def __init__(self, key: str, kind: str, default: object, help: str) -> None:  # noqa: A002
        self.key, self.kind, self.default, self.help = key, kind, default, help


#: Every setting, in the order `uvsweep config show` prints them. Kinds: paths (a list of
#: strings, `~` expanded), seconds (a number > 0; `config set` also takes a duration: 90, 10m,
#: 2h, 1d), count (an integer >= 1), bool, text.
FIELDS: tuple[Field, ...] = (
    Field("dirs", "paths", (), "more temp dirs to scan besides uv's own and /tmp"),
    Field("project_dirs", "paths", (), "projects, or folders of them, to label lock files with"),
    Field("safety_rescan", "seconds", 60.0, "seconds between the watcher's full rescans"),
    Field("notifications", "bool", True, "desktop notifications from the tray app"),  # noqa: FBT003
    Field("notify_threshold", "count", 1,
          "notify when the number of orphaned files rises to at least this"),
    Field("notify_interval", "seconds", 1800.0,
          "at most one notification about new orphaned files per this many seconds"),
    Field("auto_clean", "bool", False,  # noqa: FBT003
          "the tray cleans automatically whenever no uv process runs"),
    Field("auto_clean_min_age", "seconds", 3600.0,
          "the tray's automatic cleanup only removes files at least this old"),
    Field("tray_backend", "text", "", "force a pystray backend (as PYSTRAY_BACKEND); empty: auto"),
)  # fmt: skip
_BY_KEY = {field.key: field for field in FIELDS}


class Settings:
    """What the user configured. Every field has a safe default."""

    __slots__ = (*(field.key for field in FIELDS), "corrupt", "warnings")

    def __init__(self, warnings: tuple[str, ...] = (), **values: Any) -> None:
        for field in FIELDS:
            setattr(self, field.key, values.pop(field.key, field.default))
        if values:
            raise TypeError(f"unknown settings: {', '.join(sorted(values))}")
        self.warnings = warnings  # what was wrong with the file, for the user
        self.corrupt = False  # the file could not be parsed at all

    def values(self) -> dict[str, Any]:
        """Every setting by key."""
        return {field.key: getattr(self, field.key) for field in FIELDS}

    def replace(self, **changes: Any) -> Settings:
        """A copy with some settings changed."""
        return Settings(warnings=self.warnings, **{**self.values(), **changes})

    if TYPE_CHECKING:
        dirs: tuple[str, ...]
        project_dirs: tuple[str, ...]
        safety_rescan: float
        notifications: bool
        notify_threshold: int
        notify_interval: float
        auto_clean: bool
        auto_clean_min_age: float
        tray_backend: str


def read_toml(path: str) -> dict[str, Any]:
    """Parse a TOML file. OSError if it cannot be read, ValueError if it is not valid TOML."""
    with open(path, "rb") as handle:  # first: most scans have no settings file to parse
        if sys.version_info >= (3, 11):
            import tomllib  # ~9 ms with the typing module it pulls in
        else:  # pragma: no cover - Python 3.10
            import tomli as tomllib
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
    if system.is_xdg(platform):
        base = os.environ.get("XDG_CONFIG_HOME", "").strip()
        if not base:
            base = os.path.expanduser("~/.config")
        return os.path.join(base, "uvsweep")
    from platformdirs import user_config_dir

    return user_config_dir("uvsweep", appauthor=False)


def config_path() -> str:
    """Where the settings file lives (it may not exist)."""
    return os.environ.get(CONFIG_ENV) or os.path.join(config_dir(), "settings.toml")


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

#: The longest duration any option or setting takes (100 years): longer ones overflow timers.
MAX_DURATION = 100 * 365 * 86400.0


def parse_duration(text: str) -> float:
    """`90`, `90s`, `10m`, `1.5h`, `2d`, `1w` -> seconds; ValueError with a readable reason.

    The one duration syntax: `clean --min-age`, `--wait`, `watch` options and `config set`.
    """
    raw = text.strip().lower()
    factor = 1
    if raw and raw[-1] in _UNITS:
        factor, raw = _UNITS[raw[-1]], raw[:-1]
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{text!r} is not a duration (try 30, 30s, 10m, 2h, 1d)") from None
    if value < 0 or not math.isfinite(value):
        raise ValueError(f"{text!r}: a duration must be a finite number >= 0")
    if value * factor > MAX_DURATION:
        raise ValueError(f"{text!r}: a duration must be at most 100 years")
    return value * factor


def parse_value(field: Field, value: object) -> Any:
    """`value` as this setting's kind; ValueError with a readable reason if it is not one."""
    kind = field.kind
    if kind == "paths":
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            if any(not item.strip() for item in value):
                raise ValueError("must not hold an empty path (it would mean the current dir)")
            if any("\0" in item for item in value):
                raise ValueError("must not hold a NUL character")
            return tuple(os.path.expanduser(item) for item in value)
        raise ValueError("must be a list of strings")
    if kind == "seconds":
        if isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value < 1e9:
            return float(value)
        raise ValueError("must be a number of seconds > 0 and under 31 years")
    if kind == "count":
        if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
            return value
        raise ValueError("must be a whole number >= 1")
    if kind == "bool":
        if isinstance(value, bool):
            return value
        raise ValueError("must be true or false")
    if isinstance(value, str):
        return value
    raise ValueError("must be a string")


def parse_text(field: Field, text: str) -> Any:
    """A value typed on the command line (`config set KEY VALUE`) as this setting's kind."""
    if field.kind == "paths":
        return parse_value(field, [part for part in text.split(os.pathsep) if part])
    if field.kind == "bool":
        lowered = text.strip().lower()
        if lowered in ("true", "yes", "on", "1"):
            return True
        if lowered in ("false", "no", "off", "0"):
            return False
        raise ValueError("must be true or false")
    if field.kind == "seconds":  # the duration syntax of `clean --min-age`: 90, 10m, 2h, 1d
        return parse_value(field, parse_duration(text))
    if field.kind == "count":
        try:
            number = int(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a whole number") from None
        return parse_value(field, number)
    return text


def load(path: str | None = None, *, repair: bool = False) -> Settings:
    """Read the settings file; never raises for a missing, unreadable or corrupt file.

    A file that is not valid TOML gives the defaults and a warning. With `repair` (the tray app,
    which writes settings) it is also moved aside to `<name>.corrupt-<time>`, never overwritten.
    """
    path = path or config_path()
    try:
        data = read_toml(path)
    except FileNotFoundError:
        return Settings()
    except ValueError as err:
        message = f"{path}: not valid TOML ({err}); using defaults"
        if repair:
            import time

            aside = f"{path}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}"
            try:
                os.replace(path, aside)
                message = f"{path}: not valid TOML ({err}); moved it to {aside}, using defaults"
            except OSError as move_err:
                message += f" (could not move it aside: {move_err.strerror})"
        loaded = Settings(warnings=(message,))
        loaded.corrupt = True
        return loaded
    except OSError as err:
        return Settings(
            warnings=(f"{path}: cannot read settings ({system.reason(err)}); using defaults",)
        )
    warnings: list[str] = []
    values: dict[str, Any] = {}
    for key, value in data.items():
        field = _BY_KEY.get(key)
        if field is None:
            warnings.append(f"{path}: unknown setting `{key}`; ignoring it")
            continue
        try:
            values[key] = parse_value(field, value)
        except ValueError as err:
            warnings.append(f"{path}: `{key}` {err}; using the default")
    return Settings(warnings=tuple(warnings), **values)


def toml_value(value: object) -> str:
    """One value in TOML syntax."""
    import json  # a JSON string is a valid TOML basic string

    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (tuple, list)):
        return "[" + ", ".join(json.dumps(str(item)) for item in value) + "]"
    return json.dumps(str(value))


def dumps(config: Settings) -> str:
    """The settings as a TOML document, every key with a comment saying what it does."""
    lines = ["# uvsweep settings (`uvsweep config show` explains them; the tray app rewrites it)"]
    for field in FIELDS:
        lines.append(f"# {field.help}")
        lines.append(f"{field.key} = {toml_value(getattr(config, field.key))}")
    return "\n".join(lines) + "\n"


def save(config: Settings, path: str | None = None) -> str:
    """Write the settings atomically: a temp file in the same dir, flushed, then renamed over."""
    import tempfile

    path = path or config_path()
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=".settings-", suffix=".toml", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(dumps(config))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        import contextlib  # only a failed save: scan's start-up would pay ~1 ms for it

        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    return path
