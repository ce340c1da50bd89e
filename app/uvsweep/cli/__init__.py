"""The `uvsweep` command line.

- `main`: the entry point, exit codes (`ExitStatus`), errors, and the `Console` every command
  writes to (a test passes one with buffers and runs the command line in its own process);
- `parser`: every command's options and help texts;
- one module per family of commands: `scan` (scan, doctor), `clean`, `watch`, `desktop` (tray,
  autostart, desktop-entry), `config`, `lockname`, `help` (help, completion).
"""

from uvsweep.cli.main import CommandError, Console, ExitStatus, UsageError, main
from uvsweep.cli.parser import STATES_TEXT, build_parser, commands

__all__ = [
    "STATES_TEXT",
    "CommandError",
    "Console",
    "ExitStatus",
    "UsageError",
    "build_parser",
    "commands",
    "main",
]
