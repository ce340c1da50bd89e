"""`uvsweep`'s entry point: exit codes, errors, the console every command writes to, and the
dispatch from a parsed command line to the module of its command.

Imports: each command's module is imported only when that command runs, and every module of
this package imports what only one command needs inside that command (start-up time: `--help`,
`--version` and a cold `scan` stay within a few times `python -c pass`).
"""
# ruff: noqa: PLC0415 - imports inside functions keep start-up light (above)

from __future__ import annotations

import os
import sys
from enum import IntEnum

from uvsweep.model import ScanError, plural

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence
    from typing import Any, TextIO

    from uvsweep.cli.parser import Command


class ExitStatus(IntEnum):
    """Every exit code uvsweep uses (documented in the README and `uvsweep help states`)."""

    OK = 0
    ERROR = 1  # could not do what was asked: the message on stderr says why
    USAGE = 2  # bad arguments
    FOUND = 3  # `scan --fail-on`: some file is in one of the given states
    PARTIAL = 4  # some dirs or files could not be scanned or removed (listed in `errors`)
    BUSY = 5  # `clean`: uv processes are running, so nothing was removed
    NO_DISPLAY = 6  # the tray app: no graphical session, or the display cannot be opened
    HIDDEN = 7  # `clean`: processes that could use the files are hidden from us; nothing removed
    INTERRUPTED = 130  # Ctrl-C


class UsageError(Exception):
    """Bad arguments that argparse cannot catch by itself (exit 2)."""


class CommandError(Exception):
    """The command could not do what was asked; the message says why (exit 1)."""


class Console:
    """Where a run of the command line writes, and how much: the process's stdout and stderr,
    or (in tests) buffers. Every command writes through it, never to `sys.stdout` itself.

    `quiet` (`--quiet`): no report on stdout (except `--json`), no notes, warnings or progress on
    stderr; errors and the answers of queries are still printed.
    """

    def __init__(
        self, stdout: TextIO | None = None, stderr: TextIO | None = None, quiet: bool = False
    ) -> None:
        # (not a dataclass: `dataclasses` imports `inspect`, ~10 ms of every start)
        self.stdout = sys.stdout if stdout is None else stdout
        self.stderr = sys.stderr if stderr is None else stderr
        self.quiet = quiet

    def out(self, text: str = "", end: str = "\n") -> None:
        """A line of the command's answer on stdout."""
        self.stdout.write(text + end)

    def err(self, message: str) -> None:
        """An error: always shown, `--quiet` or not."""
        from uvsweep import colour

        self.stderr.write(f"{colour.paint('uvsweep:', 'error', self.stderr)} {message}\n")
        self.stderr.flush()

    def note(self, message: str) -> None:
        """A note, warning or progress line on stderr: `--quiet` leaves it out."""
        if not self.quiet:
            self.err(message)

    def notes(self, messages: Sequence[str], prefix: str = "") -> None:
        for message in messages:
            self.note(prefix + message)

    def errors(self, errors: Sequence[ScanError], most: int = 20) -> None:
        """Errors on stderr, one a line; past `most`, a count pointing to --json."""
        for error in errors[:most]:
            self.err(f"{error.path}: {error.message}")
        if len(errors) > most:
            self.err(f"... and {plural(len(errors) - most, 'more error')} (see --json)")

    def report(
        self, as_json: bool, document: Callable[[], object], text: Callable[[], str]
    ) -> None:
        """The JSON document, or (unless quiet) the text, on stdout."""
        if as_json:
            import json

            # one write: `json.dump` writes each token, a syscall each where stdout is unbuffered
            self.stdout.write(json.dumps(document(), indent=2) + "\n")
        elif not self.quiet:
            output = text()
            if output:
                self.out(output)

    def json(self, document: object) -> None:
        """A JSON document on stdout (`--quiet` or not)."""
        self.report(as_json=True, document=lambda: document, text=str)

    def painter(self) -> Callable[[str, str], str] | None:
        """How to colour a word on stdout (by state or role name), or None for plain text."""
        from uvsweep import colour

        return colour.painter(self.stdout)


def load(command: Command) -> Any:
    """The function `command` names, importing its module (of this package) only now: the
    parser and this module name the commands, and never import them."""
    module_name, function = command
    module = __import__(f"uvsweep.cli.{module_name}", fromlist=[function])
    return getattr(module, function)


def main(argv: Sequence[str] | None = None, console: Console | None = None) -> int:
    """Run the command line; returns the exit status. `console` defaults to this process's
    stdout and stderr."""
    for stream in ("stdout", "stderr"):  # a windowed program (uvsweepw.exe, the macOS app) has none
        if getattr(sys, stream) is None:
            setattr(sys, stream, open(os.devnull, "w"))  # noqa: SIM115 - for the process's life
    console = Console() if console is None else console
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["_notifyd"]:  # the tray's notification helper (not in --help)
        return int(load(("desktop", "run_notifyd"))(args_list[1:]))
    if args_list[:1] == ["_keeper"]:  # a handoff keeper (not in --help)
        from uvsweep.remove.handoff import keeper_main

        return keeper_main(args_list[1:])
    if args_list[:1] == ["_winkeeper"]:  # a Windows handoff keeper (not in --help)
        from uvsweep.remove import windows

        return windows.keeper_main(args_list[1:])
    from uvsweep.cli.parser import ALONE, build_parser, route

    # `uvsweep scan ...`: that command's parser alone; anything else (options first, no
    # command, a typo, help, completion) gets every command's
    parser = build_parser(args_list[0] if args_list[:1] and args_list[0] in ALONE else None)
    route(parser, console.stdout, console.stderr)
    try:
        args = parser.parse_args(args_list)
        if args.command is None:
            args = parser.parse_args([*args_list, "tray"])
    except SystemExit as done:  # --help, --version, or a usage error argparse printed
        return done.code if isinstance(done.code, int) else ExitStatus.USAGE
    console.quiet = bool(getattr(args, "quiet", False))
    args.parser = parser
    try:
        return int(load(args.func)(args, console))
    except UsageError as err:
        console.err(str(err))
        return ExitStatus.USAGE
    except CommandError as err:
        console.err(str(err))
        return ExitStatus.ERROR
    except KeyboardInterrupt:
        console.err("interrupted")
        return ExitStatus.INTERRUPTED
    except BrokenPipeError:
        # `uvsweep scan | head`: the reader left; say nothing more.
        if console.stdout is sys.stdout:  # so the interpreter's exit flush finds no pipe
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return ExitStatus.OK
