"""Write uvsweep's man page, uvsweep(1), from the command line's own argparse parser.

`python packaging/manpage.py OUT` writes roff to OUT (`-` for stdout). packaging/build.py puts it
into the Linux bundle as `share/man/man1/uvsweep.1`. Every command, option, choice and example
comes from the parser, and the states and exit codes from `uvsweep help states`, so the page
cannot drift from `--help`. The date is SOURCE_DATE_EPOCH's when set (reproducible builds).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "app"))

from uvsweep import __version__, cli  # noqa: E402

ENVIRONMENT = (
    ("NO_COLOR", "any non-empty value turns colour off"),
    ("FORCE_COLOR", "any non-empty value turns colour on when the output is not a terminal"),
    ("UVSWEEP_CONFIG", "the settings file to use instead of the default one"),
    ("TMPDIR", "the temp dir uv uses, scanned besides /tmp"),
    ("UVSWEEP_ACCEPT_HIDDEN_PROCESSES", "1 does what clean --accept-hidden-processes does"),
)


def text(raw: str) -> str:
    """Plain text as roff: backslashes escaped, no line starting with a control character."""
    escaped = raw.replace("\\", "\\e").replace("-", "\\-")
    lines = escaped.split("\n")
    return "\n".join("\\&" + line if line.startswith((".", "'")) else line for line in lines)


def verbatim(raw: str) -> list[str]:
    """A block shown as it is (examples, the states table)."""
    return [".PP", ".nf", ".RS 4", text(raw.rstrip("\n")), ".RE", ".fi"]


def option_lines(parser: argparse.ArgumentParser) -> list[str]:
    """`.TP` entries for every option and argument of `parser` that --help shows."""
    lines = []
    for action in parser._actions:  # argparse keeps its actions only there
        if action.help == argparse.SUPPRESS or isinstance(action, argparse._SubParsersAction):
            continue
        formatter = parser._get_formatter()
        if action.option_strings:
            names = ", ".join(f"\\fB{text(flag)}\\fR" for flag in action.option_strings)
            if action.nargs != 0:
                shown = formatter._format_args(action, action.dest.upper())
                names += " \\fI" + text(shown) + "\\fR"
        else:
            names = "\\fI" + text(formatter._metavar_formatter(action, action.dest)(1)[0]) + "\\fR"
        about = action.help or ""
        if action.choices and not isinstance(action.choices, dict):
            about += (" " if about else "") + "(" + ", ".join(map(str, action.choices)) + ")"
        lines += [".TP", names, text(about)]
    return lines


def usage(parser: argparse.ArgumentParser) -> str:
    words = parser.format_usage().strip()
    return " ".join(words.removeprefix("usage:").split())


def manpage(parser: argparse.ArgumentParser, date: str) -> str:
    commands = cli.commands(parser)
    title = f'.TH UVSWEEP 1 "{date}" "uvsweep {__version__}" "User Commands"'
    name_line = "uvsweep \\- find and safely remove the stale lock files uv leaves in the temp dir"
    lines = [title, ".SH NAME", name_line, ".SH SYNOPSIS", text(usage(parser)), ".br"]
    for sub in commands.values():
        lines += [text(usage(sub)), ".br"]
    lines += [".SH DESCRIPTION", text(parser.description or "")]
    if parser.epilog:
        lines += verbatim(parser.epilog)
    lines += [".SH OPTIONS", *option_lines(parser), ".SH COMMANDS"]
    for name, sub in commands.items():
        lines += [f'.SS "uvsweep {name}"', text(usage(sub)), ".PP", text(sub.description or "")]
        lines += option_lines(sub)
        if sub.epilog:
            lines += verbatim(sub.epilog)
    lines += [".SH STATES AND EXIT CODES", *verbatim(cli.STATES_TEXT), ".SH ENVIRONMENT"]
    for name, about in ENVIRONMENT:
        lines += [".TP", f"\\fB{text(name)}\\fR", text(about)]
    files = "the settings (\\fB$XDG_CONFIG_HOME\\fR respected); \\fBuvsweep config\\fR edits it"
    lines += [".SH FILES", ".TP", "\\fI~/.config/uvsweep/settings.toml\\fR", files]
    lines += [".SH SEE ALSO", "\\fBuv\\fR(1)"]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python packaging/manpage.py OUT  (- for stdout)", file=sys.stderr)
        return 2
    os.environ["COLUMNS"] = "80"  # the usage lines wrap as on a common terminal
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH") or time.time())
    page = manpage(cli.build_parser(), time.strftime("%Y-%m-%d", time.gmtime(epoch)))
    if argv[0] == "-":
        sys.stdout.write(page)
    else:
        out = Path(argv[0])
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(page, encoding="utf-8")
        print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
