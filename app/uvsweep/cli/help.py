"""`help` and `completion`: the help of a command, the states and exit codes, and shell
completion generated from the parser."""
# ruff: noqa: PLC0415 - each command imports what it alone needs (start-up time)

from __future__ import annotations

from uvsweep.cli.main import Console, ExitStatus
from uvsweep.cli.parser import STATES_TEXT, commands

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse


def cmd_completion(args: argparse.Namespace, console: Console) -> ExitStatus:
    """Print the completion script for a shell, generated from the parser by shtab."""
    import shtab  # only here: it costs start-up time every other command skips

    console.out(shtab.complete(args.parser, shell=args.shell), end="")
    return ExitStatus.OK


def cmd_help(args: argparse.Namespace, console: Console) -> ExitStatus:
    """`help`, `help COMMAND` or `help states`."""
    if args.topic == "states":
        console.out(STATES_TEXT, end="")
    elif args.topic is None:
        console.out(args.parser.format_help(), end="")
    else:
        console.out(commands(args.parser)[args.topic].format_help(), end="")
    return ExitStatus.OK
