"""`lockname`: the temp-dir lock file(s) uv would use for an environment, and which releases.

What uv hashes for each kind of environment lives in uvsweep.labels; this module reads the
command line and prints."""
# ruff: noqa: PLC0415 - each command imports what it alone needs (start-up time)

from __future__ import annotations

import os

from uvsweep import system
from uvsweep.cli.main import CommandError, Console, ExitStatus, UsageError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any


def lock_keys(args: argparse.Namespace) -> list[Any]:
    """The keys uv's releases hash for the requested environment (labels.LockKey)."""
    from uvsweep import labels

    target: str | None = args.target
    kind = args.kind
    if kind == "system":
        if target is not None:
            raise UsageError("--system takes no PATH: it finds the interpreter on PATH as uv does")
        target = labels.system_interpreter()
        if target is None:
            raise CommandError("--system: no `python` or `python3` on PATH")
        kind = "python"
    if target is None:
        raise UsageError("PATH is required (except with --system)")
    if kind is None:
        kind = labels.guess_kind(target)
        if kind is None:
            raise UsageError(
                f"cannot tell what {target!r} is: pass --project, --script, --python or --build"
            )
    try:
        return labels.keys_for(target, kind)
    except ValueError as err:
        raise CommandError(f"--{kind}: {err}") from err


def cmd_lockname(args: argparse.Namespace, console: Console) -> ExitStatus:
    """Print the temp-dir lock file(s) uv would use for an environment, and which releases."""
    from uvsweep.locations import uv_temp_dir
    from uvsweep.naming import PathStyle, lock_name, path_digest, str_digest

    base = None if args.name_only else uv_temp_dir()
    if args.raw:
        if args.target is None:
            raise UsageError("--raw needs a KEY")
        if args.as_str:
            name = lock_name(str_digest(args.target))
        else:
            style = (
                PathStyle(args.style)
                if args.style
                else (PathStyle.WINDOWS if system.WINDOWS else PathStyle.POSIX)
            )
            name = lock_name(path_digest(args.target, style))
        console.out(name if base is None else os.path.join(base, name))
        return ExitStatus.OK
    if args.as_str or args.style:
        raise UsageError("--str and --style go with --raw")
    from uvsweep.labels import NoLockError

    try:
        keys = lock_keys(args)
    except NoLockError as err:
        reason = str(err)
        if args.json:
            console.json({"version": 1, "locks": [], "no_lock": reason})
        else:
            console.out(f"uv takes no lock for this: {reason}")
        return ExitStatus.OK
    if args.json:
        console.json({"version": 1, "no_lock": None, "locks": [
            {"path": os.path.join(base or "", key.name()), "name": key.name(),
             "kind": key.kind.value, "key": key.key, "hashed_as": "str" if key.text else "path",
             "first": key.first(), "last": key.last(), "uv": key.releases()}
            for key in keys
        ]})  # fmt: skip
        return ExitStatus.OK
    for key in keys:
        name = key.name()
        shown = name if base is None else os.path.join(base, name)
        console.out(shown if args.bare else f"{shown}\t{key.releases()}")
    return ExitStatus.OK
