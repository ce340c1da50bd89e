"""Which processes are uv, and whether a uv process is *active* or *parked*: the rules, no I/O.

A uv process is **parked** when it runs a user's command (`uv run`, `uv run --script`, shebang
scripts, `uv tool run`, `uvx`) and that command has been spawned: from then on uv only waits for
its child and takes no temp-dir lock again. Everything else is **active**, and so is anything
these rules cannot classify. The rules, from uv's source (astral-sh/uv):

- `uv run` (`crates/uv/src/commands/project/run.rs`, `run()`) takes the environment lock
  (`venv.lock()` / `environment.lock()`, the temp-dir `uv-<hash>.lock`) in a block that ends
  before it builds the command; the guard is dropped there, so the lock is released before
  `process.spawn()`. Then `run_to_completion(handle)` (`crates/uv/src/child.rs`) only forwards
  signals and waits for the child. `uv tool run` / `uvx` (`crates/uv/src/commands/tool/run.rs`)
  takes the installed-tools lock inside `get_or_create_environment()`, which returns before the
  spawn, and ends in the same `run_to_completion`. Same shape in every release from 0.4.30 to
  0.13.9 (source read at 0.12.5; real binaries of 16 releases tried when the issue was filed,
  and 0.4.30, 0.6.17, 0.8.19, 0.8.20, 0.8.22, 0.9.30, 0.11.0 and 0.13.9 again with these rules:
  `uv run`, a project's `uv run`, `uv run --script` and uvx judged parked once their command
  runs; `uv sync` and `uv run` building with a sleeping setuptools backend judged active).
- While it waits, a uv >= 0.8.20 holds one *shared* flock on `<cache dir>/.lock`
  (`Cache::init()` in `crates/uv-cache/src/lib.rs`, astral-sh/uv#15888; the code is in 0.8.19's
  source, but a real 0.8.19 `uv run` holds no lock while it waits, 0.8.20 does) and no other
  lock; older releases hold none. An exclusive lock or a wait for any lock therefore means the
  process is active.
- Before the spawn, the children uv starts are its helpers: interpreter queries
  (`InterpreterInfo::query()` in `crates/uv-python/src/interpreter.rs`: `python -I -B -c "...from
  python.get_interpreter_info import main..."`), PEP 517 build backends
  (`PythonRunner::run_script()` in `crates/uv-build-frontend/src/lib.rs`: `python -c` with a
  script that imports the backend `as backend`), bytecode compile workers
  (`crates/uv-installer/src/compile.rs`: `pip_compileall.py`) and git. A child that is none of
  these (and not a fork of uv that has not exec'd yet) is the user's command.
- `uvx` and `uvw` exec `uv tool uvx ...` / `uv ...` on Unix (`crates/uv/src/bin/uvx.rs`) and
  spawn `uv.exe` on Windows; `python -m uv` execs uv on Unix and spawns it on Windows
  (`python/uv/__main__.py`). Such a wrapper is parked once its uv child exists (that child is
  listed, and judged, on its own).
"""

from __future__ import annotations

import re

from uvsweep.model import ACTIVE, PARKED

_UV_NAME_RE = re.compile(r"(?:uv|uvx|uvw)(?:@\d[0-9A-Za-z.+-]*)?(?:\.exe)?", re.IGNORECASE)

#: uv's global options that take a separate value (`--directory DIR`), in 0.4.30 to 0.13.9.
_VALUE_OPTIONS = frozenset({
    "--cache-dir", "--color", "--config-file", "--directory", "--project", "--python-preference",
    "--python-fetch", "--allow-insecure-host", "--trusted-host", "--preview-features",
    "--preview-feature",
})  # fmt: skip

#: The subcommands that run a user's command and then only wait for it.
RUNNERS = (("run",), ("tool", "run"), ("tool", "uvx"))


def basename(path: str) -> str:
    """The last component of a Unix or Windows path."""
    return path.replace("\\", "/").rsplit("/", 1)[-1]


def is_uv_name(name: str) -> bool:
    """True for uv's executables: `uv`, `uvx`, `uvw`, `uv@X.Y.Z` (and `.exe` forms)."""
    return _UV_NAME_RE.fullmatch(name) is not None


def is_wrapper_name(name: str) -> bool:
    """`uvx`/`uvw` (any version, `.exe`): a launcher that execs or spawns the real uv."""
    return is_uv_name(name) and name.lower().startswith(("uvx", "uvw"))


def is_python_m_uv(argv: tuple[str, ...]) -> bool:
    """`python [options] -m uv ...`: the uv PyPI package's launcher."""
    if not argv or not basename(argv[0]).lower().startswith("python"):
        return False
    for index, word in enumerate(argv[1:], 1):
        if word == "-m":
            return argv[index + 1 : index + 2] == ("uv",)
        if not word.startswith("-") or word == "-c":
            return False
    return False


def subcommand(argv: tuple[str, ...]) -> tuple[str, ...]:
    """The subcommand words of a uv command line (`("tool", "run")`), global options skipped."""
    words: list[str] = []
    skip = False
    for word in argv[1:]:
        if skip:
            skip = False
            continue
        if word == "--":
            break
        if word.startswith("-"):
            if words:
                break  # the subcommand's own options start
            skip = "=" not in word and word in _VALUE_OPTIONS
            continue
        words.append(word)
        if len(words) == 2 or words[0] not in ("tool",):
            break
    return tuple(words)


def is_runner(argv: tuple[str, ...]) -> bool:
    """Whether this uv command line runs a user's command (`uv run`, `uv tool run`, uvx)."""
    words = subcommand(argv)
    return any(words[: len(runner)] == runner for runner in RUNNERS)


def helper_kind(argv: tuple[str, ...] | None) -> str | None:
    """What uv started this child for, if it is one of uv's own helpers; None for anything else."""
    if not argv:
        return None
    joined = " ".join(argv)
    if "get_interpreter_info" in joined:
        return "an interpreter query"
    if "pip_compileall" in joined:
        return "bytecode compilation"
    if "-c" in argv[1:3] and re.search(r"\bas backend\b|_build_backend|build_meta", joined):
        return "a build backend"
    name = basename(argv[0]).lower()
    if name in ("git", "git.exe") or name.startswith("git-"):
        return "git"
    return None


def describe(argv: tuple[str, ...] | None, most: int = 60) -> str:
    """A command line cut to `most` characters, for a reason."""
    text = " ".join(argv) if argv else "?"
    return text if len(text) <= most else text[: most - 3] + "..."


class Child:
    """One live child of a uv process, as the phase rules need it."""

    __slots__ = ("argv", "forked", "is_uv", "pid")

    def __init__(
        self, pid: int, argv: tuple[str, ...] | None, *, is_uv: bool = False, forked: bool = False
    ) -> None:
        self.pid = pid
        self.argv = argv
        self.is_uv = is_uv  # itself a uv process (listed and judged on its own)
        self.forked = forked  # a fork of its parent that has not exec'd yet


def phase(
    argv: tuple[str, ...] | None,
    *,
    wrapper: bool,
    children: list[Child],
    locks: tuple[bool, bool] | None,
) -> tuple[str, str]:
    """(phase, reason) for one uv process.

    `wrapper`: a uvx/uvw/`python -m uv` launcher rather than uv itself. `children`: its live
    children. `locks`: (waits for a lock, holds an exclusive lock), None where the OS cannot say.
    """
    if wrapper:
        uv_children = [child for child in children if child.is_uv]
        if uv_children:
            return PARKED, f"a launcher waiting for its uv (pid {uv_children[0].pid})"
        return ACTIVE, "a launcher that has not started uv yet"
    if not argv:
        return ACTIVE, "its command line cannot be read"
    if not is_runner(argv):
        words = " ".join(subcommand(argv)) or "this command"
        return ACTIVE, f"`uv {words}` may take locks"
    if locks is not None and locks[0]:
        return ACTIVE, "it waits for a lock"
    if locks is not None and locks[1]:
        return ACTIVE, "it holds an exclusive lock (it is changing an environment)"
    if not children:
        return ACTIVE, "it has not started its command yet"
    for child in children:
        if child.forked:
            return ACTIVE, f"it is starting a process (pid {child.pid})"
        kind = helper_kind(child.argv)
        if kind is not None:
            return ACTIVE, f"it runs {kind} (pid {child.pid})"
    first = children[0]
    return PARKED, f"its command runs as pid {first.pid} ({describe(first.argv)}); uv only waits"
