"""`run_cli`: the command line run in the test's own process, its output captured.

Most CLI tests need only what a command prints and its exit code: they run it here, which costs
milliseconds instead of an interpreter's start-up. Tests of start-up, signals, the frozen
bundle or another user keep running `uvsweep` as a process.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from uvsweep.cli import Console, main


@dataclass(frozen=True)
class CliResult:
    """What a run printed and how it ended (the fields of subprocess.CompletedProcess)."""

    returncode: int
    stdout: str
    stderr: str


@contextlib.contextmanager
def environment(changes: Mapping[str, str | None]) -> Iterator[None]:
    """`os.environ` with `changes` (None: unset) for the duration; restored after."""
    saved = {key: os.environ.get(key) for key in changes}
    try:
        for key, value in changes.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_cli(*argv: str, env: Mapping[str, str | None] | None = None) -> CliResult:
    """Run `uvsweep ARGV...` in this process with `env`'s changes to the environment."""
    out, err = io.StringIO(), io.StringIO()
    with environment(env or {}):
        code = main(list(argv), Console(stdout=out, stderr=err))
    return CliResult(code, out.getvalue(), err.getvalue())
