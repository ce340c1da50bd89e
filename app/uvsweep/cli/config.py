"""`config`: show, set or reset the settings in the settings file."""
# ruff: noqa: PLC0415 - each command imports what it alone needs (start-up time)

from __future__ import annotations

import os

from uvsweep import system
from uvsweep.cli.main import CommandError, Console, ExitStatus, UsageError
from uvsweep.cli.parser import did_you_mean

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any


def setting(key: str | None, action: str) -> Any:
    """The settings.Field named `key`; a usage error that lists them when there is none."""
    from uvsweep import settings

    keys = [f.key for f in settings.FIELDS]
    if key is None:
        example = (
            " VALUE` (e.g. `uvsweep config set notifications off`)" if action == "set" else "`"
        )
        raise UsageError(f"config {action}: name a setting: `uvsweep config {action} KEY{example}"
                         f" (settings: {', '.join(keys)})")  # fmt: skip
    field = next((f for f in settings.FIELDS if f.key == key), None)
    if field is None:
        raise UsageError(f"unknown setting {key!r}{did_you_mean(key, keys)} (settings:"
                         f" {', '.join(keys)})")  # fmt: skip
    return field


def cmd_config(args: argparse.Namespace, console: Console) -> ExitStatus:
    """Show, set or reset the settings in the settings file."""
    from uvsweep import settings

    path = settings.config_path()
    if args.action in ("path", "show", "unset") and args.value is not None:
        raise UsageError(f"config {args.action}: unexpected {args.value!r}")
    if args.action == "path" and args.key is not None:
        raise UsageError(f"config path takes no KEY (got {args.key!r})")
    if args.json and args.action != "show":
        raise UsageError("--json goes with `config show`")
    listing = args.action == "path" or (args.action == "show" and args.key is None)
    field = None if listing else setting(args.key, args.action)
    if args.action == "path":
        console.out(path)
        if not os.path.exists(path):
            console.err("it does not exist yet: the defaults apply (`uvsweep config set` creates"
                        " it)")  # fmt: skip
        return ExitStatus.OK
    writing = args.action in ("set", "unset")
    config = settings.load(path, repair=writing)
    for warning in config.warnings:
        console.err(warning)
    if args.action == "show":
        shown = config.values()
        if field is not None:
            shown = {field.key: shown[field.key]}
        if args.json:
            values = {k: list(v) if isinstance(v, tuple) else v for k, v in shown.items()}
            console.json({"path": path, "settings": values})
        elif field is not None:
            console.out(f"{field.key} = {settings.toml_value(shown[field.key])}")
        else:
            console.out(f"# {path}" + ("" if os.path.exists(path) else
                                       " (not created yet: defaults)"))  # fmt: skip
            console.out(settings.dumps(config).split("\n", 1)[1], end="")
        return ExitStatus.OK
    assert field is not None  # set and unset named one (setting)
    if args.action == "set":
        if args.value is None:
            raise UsageError(f"config set {args.key}: give a value")
        try:
            value = settings.parse_text(field, args.value)
        except ValueError as err:
            raise UsageError(f"{args.key}: {err}") from None
    else:
        value = field.default
    try:
        settings.save(config.replace(**{field.key: value}), path)
    except OSError as err:
        raise CommandError(f"cannot write {path}: {system.reason(err)}") from err
    if not console.quiet:
        console.out(f"{field.key} = {settings.toml_value(value)}")
    return ExitStatus.OK
