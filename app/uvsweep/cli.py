"""The `uvsweep` command line: argument parsing, the commands, and exit codes."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from enum import IntEnum

from uvsweep import __version__
from uvsweep.model import LockState


class ExitStatus(IntEnum):
    """Every exit code uvsweep uses (documented in the README)."""

    OK = 0
    ERROR = 1  # could not do what was asked: the message on stderr says why
    USAGE = 2  # bad arguments
    FOUND = 3  # `scan --fail-on`: some file is in one of the given states
    PARTIAL = 4  # some dirs could not be scanned (listed in `errors` and on stderr)
    INTERRUPTED = 130  # Ctrl-C


class UsageError(Exception):
    """Bad arguments that argparse cannot catch by itself (exit 2)."""


class CommandError(Exception):
    """The command could not do what was asked; the message says why (exit 1)."""


def _err(message: str) -> None:
    print(f"uvsweep: {message}", file=sys.stderr)


def _parse_states(values: Sequence[str]) -> frozenset[LockState]:
    states = set()
    for value in values:
        for raw in value.split(","):
            word = raw.strip().lower()
            if not word:
                continue
            try:
                states.add(LockState(word))
            except ValueError:
                choices = ", ".join(s.value for s in LockState)
                raise UsageError(
                    f"--fail-on: unknown state {word!r} (choose from {choices})"
                ) from None
    return frozenset(states)


# ---- scan -------------------------------------------------------------------------------------


def cmd_scan(args: argparse.Namespace) -> ExitStatus:
    """List every uv lock file in the temp dirs with its state."""
    from uvsweep import report, scanner, settings  # noqa: PLC0415 - keep --help/--version fast

    fail_on = _parse_states(args.fail_on or ())
    config = settings.load()
    for warning in config.warnings:
        _err(warning)
    dirs = scanner.resolve_dirs(args.dirs, config)
    snapshot = scanner.scan(dirs, settings=config, label=not args.no_labels)
    now = time.time()
    for error in snapshot.errors:
        _err(f"{error.path}: {error.message}")
    if args.json:
        import json  # noqa: PLC0415

        json.dump(report.snapshot_json(snapshot, now), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(report.snapshot_text(snapshot, now))
        if snapshot.hidden_processes and snapshot.files:
            print(
                f"note: {snapshot.hidden_processes} processes of other users could not be inspected"
                " for open files (run as root to see them).",
                file=sys.stderr,
            )
    if fail_on and snapshot.in_states(fail_on):
        return ExitStatus.FOUND
    if snapshot.errors:
        return ExitStatus.PARTIAL
    return ExitStatus.OK


# ---- lockname ---------------------------------------------------------------------------------

_QUERY = "import sys; print(sys.executable); print(sys.prefix); print(sys.base_prefix)"


def _interpreter_keys(spec: str) -> list[str]:
    """`sys.executable` (uv >= 0.7.12) and `sys.prefix` (older uv), asked of the interpreter."""
    import shutil  # noqa: PLC0415 - only lockname needs these
    import subprocess  # noqa: PLC0415

    exe = spec if os.sep in spec or (os.altsep and os.altsep in spec) else shutil.which(spec)
    if not exe or not os.path.exists(exe):
        raise CommandError(f"--python: no interpreter at {spec!r}")
    exe = os.path.abspath(exe)
    try:
        out = subprocess.run(
            [exe, "-I", "-c", _QUERY], capture_output=True, text=True, timeout=30, check=True
        ).stdout.splitlines()
    except (OSError, subprocess.SubprocessError) as err:
        raise CommandError(f"--python: could not run {exe}: {err}") from err
    if len(out) < 3:
        raise CommandError(f"--python: {exe} did not report sys.executable and sys.prefix")
    executable, prefix, base_prefix = out[:3]
    if prefix != base_prefix:
        raise CommandError(
            f"--python: {exe} is a virtual environment; uv locks {os.path.join(prefix, '.lock')}"
            " there, not a file in the temp dir"
        )
    return [executable, prefix]


def _lock_keys(args: argparse.Namespace) -> tuple[list[str], bool]:
    """The Path keys uv hashes for the requested environment, and whether it is a build lock."""
    from uvsweep import labels  # noqa: PLC0415

    target: str = args.target
    kind = args.kind
    if kind is None:
        if os.path.isdir(target):
            kind = "project"
        elif target.endswith(".py"):
            kind = "script"
        elif os.path.isfile(target) and os.access(target, os.X_OK):
            kind = "python"
        else:
            raise UsageError(
                f"cannot tell what {target!r} is: pass --project, --script, --python or --build"
            )
    if kind == "python":
        return _interpreter_keys(target), False
    if kind == "script":
        return [os.path.join(os.getcwd(), target)], False  # std::path::absolute: no normalising
    if kind == "build":
        if not os.path.isdir(target):
            raise CommandError(f"--build: {target!r} is not a directory")
        return [os.path.realpath(target)], True
    root = labels.project_root(target)
    if root is None:
        raise CommandError(
            f"--project: no managed project at or above {target!r} (no pyproject.toml with a"
            " [project] table, or tool.uv.managed = false)"
        )
    return [root], False


def cmd_lockname(args: argparse.Namespace) -> ExitStatus:
    """Print the temp-dir lock file uv would use for an environment."""
    from uvsweep.locations import uv_temp_dir  # noqa: PLC0415
    from uvsweep.naming import PathStyle, lock_name, path_digest, str_digest  # noqa: PLC0415

    if args.raw:
        if args.as_str:
            names = [lock_name(str_digest(args.target))]
        else:
            style = (
                PathStyle(args.style)
                if args.style
                else (PathStyle.WINDOWS if sys.platform == "win32" else PathStyle.POSIX)
            )
            names = [lock_name(path_digest(args.target, style))]
    else:
        if args.as_str or args.style:
            raise UsageError("--str and --style go with --raw")
        keys, build = _lock_keys(args)
        names = list(dict.fromkeys(lock_name(path_digest(key), setuptools=build) for key in keys))
    base = None if args.name_only else uv_temp_dir()
    for name in names:
        print(name if base is None else os.path.join(base, name))
    return ExitStatus.OK


# ---- parser -----------------------------------------------------------------------------------

_EPILOG = """\
states:
  orphaned    nobody holds, waits for or has it open, and it is yours: safe to remove
  foreign     like orphaned, but another user's (it may stop your uv from locking)
  held        a running process holds the lock
  waiting     a process waits for the lock; its holder is not visible
  open        a process has it open without a lock (uv between creating and locking it)
  suspicious  a symlink, hard link, non-regular, non-empty or unreadable file: never touched

exit codes:
  0 ok, 1 error, 2 usage, 3 --fail-on matched, 4 some dirs could not be scanned, 130 Ctrl-C
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter, sized without `shutil` (argparse imports it just for the width)."""

    def __init__(self, prog: str) -> None:
        try:
            width = int(os.environ.get("COLUMNS", "0")) or os.get_terminal_size().columns
        except (OSError, ValueError):
            width = 80
        super().__init__(prog, width=max(40, width - 2))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every command."""
    parser = argparse.ArgumentParser(
        prog="uvsweep",
        description="Find the lock files uv leaves in the temp dir, see what each one guards,\n"
        "and whether anything still uses it.",
        epilog=_EPILOG,
        formatter_class=_Formatter,
    )
    parser.add_argument("--version", action="version", version=f"uvsweep {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    scan = sub.add_parser(
        "scan",
        help="list uv lock files in the temp dirs with their state",
        description="List every uv lock file (uv-<16 hex>.lock) directly inside the temp dirs:\n"
        "its state, age, the environment it guards and who holds it. Nothing is changed.",
        epilog=_EPILOG + "\nexamples:\n  uvsweep scan\n  uvsweep scan --dir /tmp --json\n"
        "  uvsweep scan --fail-on orphaned,foreign     # in CI or a Dockerfile\n",
        formatter_class=_Formatter,
    )
    scan.add_argument(
        "--dir", dest="dirs", action="append", metavar="DIR",
        help="scan DIR instead of the defaults (uv's temp dir, /tmp, and `dirs` from settings); "
        "repeatable",
    )  # fmt: skip
    scan.add_argument("--json", action="store_true", help="print the JSON document (see README)")
    scan.add_argument(
        "--fail-on", action="append", metavar="STATE[,STATE]",
        help="exit 3 if any file is in one of these states (e.g. orphaned,foreign)",
    )  # fmt: skip
    scan.add_argument(
        "--no-labels", action="store_true",
        help="skip working out which environment each file guards (faster)",
    )  # fmt: skip
    scan.set_defaults(func=cmd_scan)

    lockname = sub.add_parser(
        "lockname",
        help="print the temp lock file uv uses for a project, script or interpreter",
        description="Print the path of the temp-dir lock file uv would take for an environment,\n"
        "one per line. Without a kind flag, a directory is a project, a .py file a script\n"
        "and an executable an interpreter.",
        epilog="examples:\n"
        "  uvsweep lockname .                          # the project around the cwd\n"
        "  uvsweep lockname --python /usr/bin/python3  # uv >= 0.7.12 name, then the older one\n"
        "  uvsweep lockname --raw /usr/local           # hash a Path key exactly as given\n"
        "  uvsweep lockname --raw --str 'https://example.com/s.py'\n",
        formatter_class=_Formatter,
    )
    kinds = lockname.add_mutually_exclusive_group()
    for flag, help_text in (
        ("project", "a project dir (uv's workspace discovery finds the root it locks)"),
        ("script", "a PEP 723 script (uv hashes its absolute path)"),
        ("python", "a non-venv interpreter (runs it to read sys.executable and sys.prefix)"),
        ("build", "a source tree built by uv's setuptools frontend (uv-setuptools-*.lock)"),
    ):
        kinds.add_argument(
            f"--{flag}", dest="kind", action="store_const", const=flag, help=help_text
        )
    kinds.add_argument("--raw", action="store_true", help="hash KEY exactly as given, as a Path")
    lockname.add_argument("--str", dest="as_str", action="store_true", help="with --raw: a str key")
    lockname.add_argument(
        "--style",
        choices=("posix", "windows"),
        help="with --raw: whose Path rules (default: this OS)",
    )
    lockname.add_argument("--name-only", action="store_true", help="print names, not full paths")
    lockname.add_argument("target", metavar="PATH|KEY")
    lockname.set_defaults(func=cmd_lockname)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        _err("the tray app is not part of this release yet; running `uvsweep scan` (see --help)")
        args = parser.parse_args(["scan"])
    try:
        return int(args.func(args))
    except UsageError as err:
        _err(str(err))
        return ExitStatus.USAGE
    except CommandError as err:
        _err(str(err))
        return ExitStatus.ERROR
    except KeyboardInterrupt:
        _err("interrupted")
        return ExitStatus.INTERRUPTED
    except BrokenPipeError:
        # `uvsweep scan | head`: the reader left; say nothing more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitStatus.OK
