"""The argument parser of every command: options, help texts, and the values they take.

The parser names each command's function by module and name (`("scan", "cmd_scan")`); the
module is imported only when the command runs (uvsweep.cli.main), so `--help` imports none.
"""
# ruff: noqa: PLC0415 - imports inside functions keep start-up light (above)

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from uvsweep import __version__

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, TextIO

#: A command's function, by module of this package and name (uvsweep.cli.main.load).
Command = tuple[str, str]


def parse_duration(text: str) -> float:
    """`90`, `90s`, `10m`, `1.5h`, `2d`, `1w` -> seconds (the syntax `config set` takes too)."""
    from uvsweep.settings import parse_duration as parse

    try:
        return parse(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def parse_dir(text: str) -> str:
    """A `--dir` value: any path but the empty string (which would silently mean `.`)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty dir name would mean the current dir: give one")
    return text


def route(parser: argparse.ArgumentParser, stdout: TextIO, stderr: TextIO) -> None:
    """Send what `parser` and its commands' parsers print themselves (help, version, usage
    errors) to `stdout` and `stderr` instead of the process's."""
    for each in (parser, *commands(parser).values()):
        if isinstance(each, _Parser):
            each.streams = (stdout, stderr)


def commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Every command's parser by name."""
    for action in parser._actions:  # argparse keeps its subparsers only there
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


#: The states and exit codes, in one place: `uvsweep help states` prints it, the README has the
#: same lines (a test checks), and every other help text points here.
STATES_TEXT = """\
states (each uv lock file is in exactly one):
  orphaned    nobody holds, waits for or has it open, and it is yours: safe to remove
  foreign     like orphaned, but another user's (it may stop your uv from locking)
  held        a running process holds the lock
  waiting     a process waits for the lock; its holder is not visible
  open        a process has it open without a lock (uv between creating and locking it)
  suspicious  a symlink, hard link, non-regular, non-empty or unreadable file: never touched

exit codes:
  0    ok
  1    error: the command could not do what was asked (the message says why)
  2    usage: bad arguments
  3    scan --fail-on matched at least one file (wins over 4)
  4    some dirs or files could not be scanned or removed; the rest were done
  5    clean: active uv is running, so nothing was removed (--wait waits for it)
  6    tray: no graphical session, or the display cannot be opened
  7    clean: processes that could use the files are hidden, so nothing was removed
  130  interrupted (Ctrl-C); also a clean that is its PID namespace's first process and was
       told twice to stop waiting for its keepers
"""

_SEE_STATES = "states and exit codes: `uvsweep help states`\n"

_EPILOG = (
    """\
commands have their own help: `uvsweep COMMAND --help` (or `uvsweep help COMMAND`)
"""
    + _SEE_STATES
    + """
--quiet prints only errors: no report on stdout (unless --json), no notes, warnings or
progress on stderr, and no confirmation from `config set`, `autostart enable` and the like;
the exit code says how it went. Queries (`config show`, `doctor`, `lockname`...) still print.
NO_COLOR=1 turns colour off; FORCE_COLOR=1 turns it on when output is not a terminal.
"""
)

_CLEAN_DESCRIPTION = """\
Remove the uv lock files nobody uses any more, without ever breaking uv's locking.

First the gate: if an active uv process of any user is running, nothing is removed
and it is listed (exit 5); --wait waits for it instead. A parked uv (`uv run`,
`uvx`... that has started its command and only waits for it) takes no lock again:
it is listed, never waited for. uvsweep's own parents (`uv run uvsweep`,
`uvx uvsweep`) do not count.

Then each file is removed only if it is orphaned: exactly uv's name, a regular
empty file with one link, yours (or anybody's with --all-users as root), with no
holder, waiter or other process that has it open, checked again while uvsweep
holds its lock. The name is unlinked while the lock is held; if a process got
hold of the file meanwhile, the lock is handed over to a new file and the file is
kept. Everything that stays is listed with the reason."""

_CLEAN_EPILOG = (
    """\
examples:
  uvsweep clean                      # your orphaned files in the temp dirs
  uvsweep clean --dry-run            # what would go, and why the rest stays
  uvsweep clean --min-age 1d --json  # only files older than a day; a report for scripts
  uvsweep clean --wait=600           # wait up to 10 minutes for running uv to finish

in a Dockerfile (as root), so no lock file is baked into the layer (a RUN step's own
PID namespace hides the processes outside it; its /tmp is its own, so accept that):
  RUN uv pip install --system -r requirements.txt \\
      && uvx uvsweep clean --all-users --accept-hidden-processes

"""
    + _SEE_STATES
)


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter, sized without `shutil` (argparse imports it just for the width)."""

    def __init__(self, prog: str) -> None:
        try:
            width = int(os.environ.get("COLUMNS", "0")) or os.get_terminal_size().columns
        except (OSError, ValueError):
            width = 80
        super().__init__(prog, width=max(40, width - 2))


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """`; did you mean 'scan'?` for the closest choice, or nothing when none is close."""
    import difflib  # only on a typo

    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose unknown-choice errors suggest the closest choice, and whose own
    output (help, version, usage errors) goes to the console's streams."""

    streams: tuple[TextIO, TextIO] | None = None  # (stdout, stderr); None: the process's

    def _print_message(self, message: str, file: Any = None) -> None:
        if message and self.streams is not None:
            file = self.streams[0] if file is sys.stdout else self.streams[1]
        super()._print_message(message, file)

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        # argparse's own check (a private method, the same from 3.10 to 3.13), with a hint
        if action.choices is not None and value not in action.choices:
            names = [str(choice) for choice in action.choices]
            hint = did_you_mean(str(value), names) if isinstance(value, str) else ""
            raise argparse.ArgumentError(
                action, f"invalid choice: {value!r}{hint} (choose from {', '.join(names)})"
            )


def _dir_and_json(parser: argparse.ArgumentParser, verb: str, document: str) -> None:
    parser.add_argument(
        "--dir", dest="dirs", action="append", metavar="DIR", type=parse_dir,
        help=f"{verb} DIR instead of the defaults (uv's temp dir, /tmp, and `dirs` from "
        "settings); repeatable",
    )  # fmt: skip
    parser.add_argument(
        "--json", action="store_true", help=f"print the JSON {document} (see README)"
    )


def _command(sub: Any, name: str, func: Command, **options: Any) -> argparse.ArgumentParser:
    """A subcommand that runs `func`, formatted without importing shutil (start-up time)."""
    parser: argparse.ArgumentParser = sub.add_parser(name, formatter_class=_Formatter, **options)
    parser.set_defaults(func=func)
    parser.add_argument(
        "-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
        help="print only errors (what it leaves out: `uvsweep --help`)",
    )  # fmt: skip
    return parser


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The argument parser for every command; with `only` (a command's name), the parser for
    that command alone: building all of them costs every start some 4 ms."""
    parser = _Parser(
        prog="uvsweep",
        description="Find the lock files uv leaves in the temp dir, see what each one guards,\n"
        "and whether anything still uses it.",
        epilog=_EPILOG,
        formatter_class=_Formatter,
    )
    parser.add_argument("-V", "--version", action="version", version=f"uvsweep {__version__}")
    parser.add_argument(
        "-q", "--quiet", action="store_true",
        help="print only errors; the exit code says how it went (details below)",
    )  # fmt: skip
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, add in _COMMANDS:
        if only is None or name == only:
            add(sub)
    return parser


def _add_scan(sub: Any) -> None:
    scan = _command(
        sub,
        "scan",
        ("scan", "cmd_scan"),
        help="list uv lock files in the temp dirs with their state",
        description="List every uv lock file (uv-<16 hex>.lock) directly inside the temp dirs:\n"
        "its state, age, the environment it guards and who holds it. Nothing is changed.",
        epilog="examples:\n  uvsweep scan\n  uvsweep scan --dir /tmp --json\n"
        "  uvsweep scan --fail-on orphaned,foreign     # in CI or a Dockerfile\n"
        "  uvsweep scan -q --fail-on orphaned          # only the exit code: 3 if any\n\n"
        + _SEE_STATES,
    )
    _dir_and_json(scan, "scan", "document")
    scan.add_argument(
        "--fail-on", action="append", metavar="STATE[,STATE]",
        help="exit 3 if any file is in one of these states (e.g. orphaned,foreign)",
    )  # fmt: skip
    scan.add_argument(
        "--no-labels", action="store_true",
        help="skip working out which environment each file guards (faster)",
    )  # fmt: skip


def _add_clean(sub: Any) -> None:
    clean = _command(
        sub,
        "clean",
        ("clean", "cmd_clean"),
        help="safely remove orphaned uv lock files",
        description=_CLEAN_DESCRIPTION,
        epilog=_CLEAN_EPILOG,
    )
    _dir_and_json(clean, "clean", "report")
    clean.add_argument(
        "--min-age", type=parse_duration, default=0.0, metavar="DURATION",
        help="only remove files at least this old: 90, 90s, 10m, 2h, 1d (default: 0)",
    )  # fmt: skip
    clean.add_argument(
        "--all-users", action="store_true",
        help="as root: also remove other users' orphaned files (same checks)",
    )  # fmt: skip
    clean.add_argument(
        "-n", "--dry-run", action="store_true",
        help="remove nothing; say what would be removed and why the rest stays",
    )  # fmt: skip
    clean.add_argument(
        "--wait", nargs="?", type=parse_duration, const=float("inf"), metavar="SECONDS",
        help="if active uv is running, wait until it is done or parked (at most SECONDS; "
        "default: no limit), then clean",
    )  # fmt: skip
    clean.add_argument(
        "--ignore-running-uv", action="store_true",
        help="skip the gate and clean while uv runs; every per-file check still applies, but a "
        "uv process that is just about to open a file cannot be seen (use with care)",
    )  # fmt: skip
    clean.add_argument(
        "--accept-hidden-processes", action="store_true",
        help="clean even where processes are hidden from uvsweep (a child PID namespace, /proc "
        "with hidepid): a hidden process that has a file open cannot be seen (exit 7 without "
        "it; UVSWEEP_ACCEPT_HIDDEN_PROCESSES=1 does the same)",
    )  # fmt: skip


def _add_watch(sub: Any) -> None:
    watch = _command(
        sub,
        "watch",
        ("watch", "cmd_watch"),
        help="print a line whenever a uv lock file appears, changes state or goes",
        description="Watch the temp dirs and print one line per change: a file added (with its\n"
        "state and what it guards), a state change (held -> orphaned when its holder\n"
        "exits) or a file removed. The first line sums up the dirs as they are. File\n"
        "system events and uv process exits trigger rescans at once; a slow safety\n"
        "rescan catches anything they miss. Ctrl-C or SIGTERM stops it (exit 0).",
        epilog="examples:\n  uvsweep watch\n"
        "  uvsweep watch --json | jq -c 'select(.event != \"initial\")'\n"
        "  uvsweep watch --clean-when-idle 1h   # remove orphans an hour old whenever uv is idle\n",
    )
    _dir_and_json(watch, "watch", "lines")
    watch.add_argument(
        "--safety-interval", type=parse_duration, metavar="DURATION",
        help="full rescan at least this often (default: `safety_rescan` from settings, 60s)",
    )  # fmt: skip
    watch.add_argument(
        "--no-labels", action="store_true",
        help="skip working out which environment each file guards",
    )  # fmt: skip
    watch.add_argument(
        "--clean-when-idle", nargs="?", type=parse_duration, const=0.0, metavar="MIN_AGE",
        help="whenever no active uv process runs, safely remove orphaned files at least MIN_AGE "
        "old (default 0), as `uvsweep clean` would",
    )  # fmt: skip


def _add_tray(sub: Any) -> None:
    tray_cmd = _command(
        sub,
        "tray",
        ("desktop", "cmd_tray"),
        help="run the tray app (what `uvsweep` with no command does)",
        epilog="The app menu entry (`uvsweep desktop-entry install`) starts it again after Quit.",
        description="Run the tray app: a badge with the number of orphaned uv lock files, a menu\n"
        "that lists them, one-click safe cleanup and notifications. One per user: a second\n"
        "start says so and exits 0. Without a graphical session it exits 6.",
    )
    tray_cmd.add_argument(
        "--dir", dest="dirs", action="append", metavar="DIR", type=parse_dir,
        help="watch DIR instead of the defaults; repeatable",
    )  # fmt: skip


def _add_doctor(sub: Any) -> None:
    doc = _command(
        sub,
        "doctor",
        ("scan", "cmd_doctor"),
        help="say what uvsweep sees here: tray backend, notifications, dirs, limits, uv",
        description="Print what uvsweep sees of this machine: the tray backend it would use and\n"
        "why, the notification service, start-at-login state, the dirs it watches, inotify\n"
        "limits, running uv processes, and what permissions hide. Changes nothing.",
    )
    doc.add_argument("--json", action="store_true", help="print JSON")


def _add_autostart(sub: Any) -> None:
    start = _command(
        sub,
        "autostart",
        ("desktop", "cmd_autostart"),
        help="start the tray app at login (enable, disable, status)",
        description="Start the uvsweep tray app when you log in, or stop doing so. `status`\n"
        "prints `enabled` or `disabled` first, then where the entry lives. `enable` writes\n"
        "the command of this installed uvsweep: an XDG autostart entry on Linux, a\n"
        "LaunchAgent on macOS, the HKCU Run key on Windows.",
    )
    start.add_argument("action", choices=("enable", "disable", "status"))


def _add_config(sub: Any) -> None:
    config = _command(
        sub,
        "config",
        ("config", "cmd_config"),
        help="show or change the settings",
        description="Show or change the settings file (TOML). Writes are atomic; a file that is\n"
        "not valid TOML is moved aside, never overwritten.",
        epilog="examples:\n  uvsweep config path\n  uvsweep config show\n"
        "  uvsweep config show notifications\n"
        "  uvsweep config set notifications false\n  uvsweep config set auto_clean_min_age 2h\n"
        "  uvsweep config set dirs /scratch/tmp"
        f"{os.pathsep}/data/tmp\n  uvsweep config unset auto_clean_min_age\n",
    )
    config.add_argument("action", choices=("path", "show", "set", "unset"))
    config.add_argument(
        "key", nargs="?", metavar="KEY",
        help="with set/unset: the setting; with show: show only this one",
    )  # fmt: skip
    config.add_argument(
        "value", nargs="?", metavar="VALUE",
        help="with set: its new value (durations as for `clean --min-age`: 90, 10m, 2h, 1d)",
    )  # fmt: skip
    config.add_argument("--json", action="store_true", help="with show: print JSON")


def _add_lockname(sub: Any) -> None:
    lockname = _command(
        sub,
        "lockname",
        ("lockname", "cmd_lockname"),
        help="print the temp lock file uv uses for a project, script or interpreter",
        description="Print the path of each temp-dir lock file uv would take for an environment,\n"
        "one per line, then a tab and the uv releases that use that name. Where uv takes no\n"
        "temp-dir lock, say so. Without a kind flag, a directory is a project, a .py file\n"
        "(or a URL, or - for stdin) a script and an executable an interpreter.",
        epilog="examples:\n"
        "  uvsweep lockname .                         # the project around the cwd\n"
        "  uvsweep lockname --system                  # `uv pip install --system`: the first\n"
        "                                             #  `python`, else `python3`, on PATH\n"
        "  uvsweep lockname --python python           # an interpreter by name or path\n"
        "  uvsweep lockname --raw /usr/local          # hash a Path key exactly as given\n"
        "  uvsweep lockname --raw --str 'https://example.com/s.py'\n",
    )
    kinds = lockname.add_mutually_exclusive_group()
    for flag, help_text in (
        ("project", "a project dir (uv's workspace discovery finds the root it locks)"),
        ("script", "a PEP 723 script (uv hashes its absolute path)"),
        ("python", "a non-venv interpreter or shim (runs it: sys.executable and sys.prefix)"),
        ("system", "the interpreter --system finds: `python`, then `python3`, on PATH"),
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
    lockname.add_argument(
        "--bare", action="store_true", help="print only the paths (or names), without releases"
    )
    lockname.add_argument("--json", action="store_true", help="print JSON (see the README)")
    lockname.add_argument("target", metavar="PATH|KEY", nargs="?")


def _add_desktop_entry(sub: Any) -> None:
    entry = _command(
        sub,
        "desktop-entry",
        ("desktop", "cmd_desktop_entry"),
        help="add uvsweep to the Linux application menu, or take it out (install, remove, status)",
        description="Put uvsweep in the application menu, so the tray can be started again after\n"
        "Quit: `install` writes uvsweep.desktop into $XDG_DATA_HOME/applications (default\n"
        "~/.local/share/applications), starting this installed uvsweep's tray, and copies\n"
        "the icon into your hicolor icon theme there. `remove` takes both out again (the\n"
        "icon stays while the autostart entry uses it). The macOS app and the Windows\n"
        "installer have their launchers already.",
    )
    entry.add_argument("action", choices=("install", "remove", "status"))


def _add_completion(sub: Any) -> None:
    completion = _command(
        sub,
        "completion",
        ("help", "cmd_completion"),
        help="print a shell completion script (bash, zsh, fish)",
        description="Print the completion script for SHELL, generated from these very options.",
        epilog="install it:\n"
        "  bash: uvsweep completion bash > ~/.local/share/bash-completion/completions/uvsweep\n"
        "  zsh:  uvsweep completion zsh > ~/.zfunc/_uvsweep   # with ~/.zfunc on $fpath\n"
        "  fish: uvsweep completion fish > ~/.config/fish/completions/uvsweep.fish\n",
    )
    completion.add_argument("shell", choices=("bash", "zsh", "fish"))


def _add_help(sub: Any) -> None:
    helper = _command(
        sub,
        "help",
        ("help", "cmd_help"),
        help="show the help of a command, or the states and exit codes (`help states`)",
        description="`uvsweep help COMMAND` is `uvsweep COMMAND --help`; `uvsweep help states`\n"
        "says what each state of a lock file means, and every exit code.",
    )
    helper.add_argument(
        "topic", nargs="?", metavar="TOPIC", choices=(*sub.choices, "states"),
        help="a command, or `states`",
    )  # fmt: skip


#: Each command and what adds its parser, in the order `--help` lists them.
_COMMANDS: tuple[tuple[str, Callable[[Any], None]], ...] = (
    ("scan", _add_scan),
    ("clean", _add_clean),
    ("watch", _add_watch),
    ("tray", _add_tray),
    ("doctor", _add_doctor),
    ("autostart", _add_autostart),
    ("config", _add_config),
    ("lockname", _add_lockname),
    ("desktop-entry", _add_desktop_entry),
    ("completion", _add_completion),
    ("help", _add_help),
)

#: The commands whose parser can be built alone (`help` and `completion` read every one).
ALONE = frozenset(name for name, _add in _COMMANDS) - {"help", "completion"}
