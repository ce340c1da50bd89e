"""Colour for people at a terminal, never for pipes, files or `--json`.

On when the stream is a terminal (and `TERM` is not `dumb`); `NO_COLOR` (any non-empty value)
turns it off, and `FORCE_COLOR` (any non-empty value) turns it on for pipes too. `NO_COLOR` wins
when both are set. On Windows a terminal gets colour only in Windows Terminal (`WT_SESSION`) or
with `FORCE_COLOR`: the classic console shows the escape codes as text.
"""

from __future__ import annotations

import os
import sys

from uvsweep import system

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

#: SGR codes by role: the six states, and the roles of message prefixes.
STYLES = {
    "orphaned": "33",  # yellow: removable, worth a look
    "foreign": "35",  # magenta: another user's
    "held": "32",  # green: in use, as it should be
    "waiting": "36",  # cyan
    "open": "36",
    "suspicious": "1;31",  # bold red: never touched, odd
    "error": "1;31",
    "warning": "33",
    "note": "2",  # dim
    "heading": "1",
}


def enabled(stream: Any, environ: Any = None, platform: str = sys.platform) -> bool:
    """Whether text written to `stream` should be coloured."""
    env = os.environ if environ is None else environ
    if env.get("NO_COLOR"):
        return False
    if env.get("FORCE_COLOR"):
        return True
    if env.get("TERM") == "dumb":
        return False
    try:
        tty = bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # closed, or not a real stream
        return False
    if tty and system.is_windows(platform):
        return bool(env.get("WT_SESSION"))
    return tty


def painter(stream: Any) -> Callable[[str, str], str] | None:
    """A function that colours a word by role for `stream`, or None when it takes no colour."""
    if not enabled(stream):
        return None

    def wrap(text: str, role: str) -> str:
        code = STYLES.get(role)
        return f"\x1b[{code}m{text}\x1b[0m" if code and text else text

    return wrap


def paint(text: str, role: str, stream: Any = None) -> str:
    """`text` in `role`'s colour if `stream` (default stdout) takes colour, else as it is."""
    code = STYLES.get(role)
    if not code or not enabled(sys.stdout if stream is None else stream):
        return text
    return f"\x1b[{code}m{text}\x1b[0m"
