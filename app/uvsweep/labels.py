"""Which environment a lock file guards: the keys uv hashes, per release, and the label index.

Two directions over one set of rules. Forward (`lockname`): for a project, script, interpreter
or source tree, the keys each uv release hashes (`project_keys`, `script_keys`,
`interpreter_keys`, `build_keys`), each with the releases that use it (`RULES`). Backward
(`scan`): the digest is one-way, so labelling gathers every environment that could have a lock
on this machine (interpreters on PATH, behind pyenv/asdf/mise shims and in their install dirs,
conda, uv-managed Pythons, the projects and scripts of running uv processes, the cwd, configured
project dirs, workspace members, setuptools trees in uv's cache), hashes each in every form a
release uses, and looks names up. A `uv-setuptools-` name no candidate matches is still a build
lock (`Label(BUILD, "")`: its source tree is gone, e.g. a throwaway `.tmpXXXX` dir of
`uv build`); any other unmatched name stays unknown.
"""
# ruff: noqa: PLC0415 - imports inside functions: only the path that needs a module pays for it

from __future__ import annotations

import fnmatch
import glob
import itertools
import os
import re
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from uvsweep import system
from uvsweep.model import Label, LabelKind
from uvsweep.naming import (
    PathStyle,
    digest_of,
    is_setuptools_name,
    lock_name,
    path_digest,
    str_digest,
    windows_absolute,
    windows_verbatim,
)
from uvsweep.processes import ProcessInfo, ProcessTable
from uvsweep.settings import read_toml

TYPE_CHECKING = False  # typing costs ~3 ms to import; annotations only need it for mypy
if TYPE_CHECKING:
    from typing import Any

_PYTHON_NAME_RE = re.compile(r"python(?:\d+(?:\.\d+)?t?)?(?:\.exe)?", re.IGNORECASE)


#: path -> ((inode, size, mtime), what it parsed to): one index build looks at a workspace's
#: `pyproject.toml` from each uv process in it and again for its members, and the watcher builds
#: the index again and again; a stat decides whether the file must be parsed again.
_PYPROJECTS: dict[str, tuple[tuple[int, int, int], dict[str, Any] | None]] = {}


#: A `[project]` table header at the start of a line.
_PROJECT_HEADER_RE = re.compile(rb"(?m)^\[project\][ \t]*(?:#[^\n]*)?\r?$")


def _plain_project(raw: bytes) -> bool:
    """Whether a `pyproject.toml` is in the form nearly every project's takes, where what
    `project_root` and `workspace_members` read is known without a TOML parser (importing one
    and parsing costs a cold `scan` ~20 ms per project of the running uv processes): a
    `[project]` header at the start of a line, no multi-line string (so that line is the
    header), and neither `workspace` nor `managed` anywhere (so no `tool.uv` setting they read).
    The file is not checked to be valid TOML: where it is not, uv would refuse the project, and
    the index holds one candidate that never matches."""
    if b"workspace" in raw or b"managed" in raw or b'"""' in raw or b"'''" in raw:
        return False
    return _PROJECT_HEADER_RE.search(raw) is not None


def _read_pyproject(directory: str) -> dict[str, Any] | None:
    """A `pyproject.toml`, parsed, or of a plain one (`_plain_project`) only what this module
    reads: `{"project": {}}` (read-only: shared between callers); None if unreadable."""
    path = os.path.join(directory, "pyproject.toml")
    try:
        info = os.stat(path)
    except OSError:
        return None
    key = (info.st_ino, info.st_size, info.st_mtime_ns)
    known = _PYPROJECTS.get(path)
    if known is not None and known[0] == key:
        return known[1]
    data: dict[str, Any] | None
    try:
        with open(path, "rb") as handle:
            plain = _plain_project(handle.read())
        data = {"project": {}} if plain else read_toml(path)
    except (OSError, ValueError):
        data = None
    if len(_PYPROJECTS) >= 256:
        _PYPROJECTS.clear()
    _PYPROJECTS[path] = (key, data)
    return data


def _uv_table(data: dict[str, Any]) -> dict[str, Any]:
    tool = data.get("tool")
    uv = tool.get("uv") if isinstance(tool, dict) else None
    return uv if isinstance(uv, dict) else {}


def _glob_list(workspace: dict[str, Any], key: str) -> list[str]:
    value = workspace.get(key)
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _matches(root: str, project: str, patterns: list[str]) -> bool:
    # uv joins each glob to the escaped root; Rust's glob lets `*` cross `/`, as fnmatch does.
    return any(
        fnmatch.fnmatchcase(project, os.path.join(glob.escape(root), os.path.normpath(pattern)))
        for pattern in patterns
    )


def project_root(path: str, cwd: str | None = None) -> str | None:
    """The dir uv hashes for a project's temp lock: uv's workspace discovery from `path`.

    `path` is made absolute and normalised lexically (symlinks kept), the nearest dir with a
    `pyproject.toml` is the project, and an enclosing workspace that includes it is the root.
    None where uv would not find a managed project.
    """
    start = os.path.normpath(os.path.join(cwd or os.getcwd(), path))
    project = start
    while not os.path.isfile(os.path.join(project, "pyproject.toml")):
        parent = os.path.dirname(project)
        if parent == project:
            return None
        project = parent
    data = _read_pyproject(project)
    if data is None:
        return None
    uv = _uv_table(data)
    if uv.get("managed") is False:
        return None
    if isinstance(uv.get("workspace"), dict):
        return project
    if not isinstance(data.get("project"), dict):
        return None
    ancestor = os.path.dirname(project)
    while True:
        if os.path.isfile(os.path.join(ancestor, "pyproject.toml")):
            outer = _read_pyproject(ancestor) or {}
            workspace = _uv_table(outer).get("workspace")
            if isinstance(workspace, dict):
                included = _matches(ancestor, project, _glob_list(workspace, "members"))
                excluded = _matches(ancestor, project, _glob_list(workspace, "exclude"))
                return ancestor if included and not excluded else project
            return project  # inside another project (tests, examples): uv stops here
        parent = os.path.dirname(ancestor)
        if parent == ancestor:
            return project
        ancestor = parent


def workspace_members(root: str) -> list[str]:
    """The member dirs of the workspace at `root` (globs of `members` minus `exclude`), sorted.

    uv builds each member from its own dir, so each can leave a `uv-setuptools-` lock keyed by
    the member's canonical path (uv-workspace `Workspace::collect_members_only` globs the same
    way: each pattern joined to the escaped root).
    """
    data = _read_pyproject(root) or {}
    workspace = _uv_table(data).get("workspace")
    if not isinstance(workspace, dict):
        return []
    excluded = _glob_list(workspace, "exclude")
    found: set[str] = set()
    for pattern in _glob_list(workspace, "members"):
        full = os.path.join(glob.escape(root), os.path.normpath(pattern))
        for member in glob.glob(full):
            if os.path.isfile(os.path.join(member, "pyproject.toml")) and not _matches(
                root, member, excluded
            ):
                found.add(os.path.normpath(member))
    return sorted(found)


# ---- which key each uv release hashes ----------------------------------------------------------


class Rule:
    """One way uv keys a temp-dir lock, and the releases that use it (first..last, inclusive)."""

    __slots__ = ("first", "key", "last")

    def __init__(self, key: str, first: str | None, last: str | None) -> None:
        self.key = key  # what uv hashes, in words
        self.first = first
        self.last = last

    def releases(self) -> str:
        """`uv 0.5.29 to 0.13.0`, `uv 0.13.1 and later`, `uv 0.7.11 and earlier`."""
        if self.first and self.last:
            return f"uv {self.first} to {self.last}"
        if self.first:
            return f"uv {self.first} and later"
        return f"uv {self.last} and earlier"


#: Every rule, from uv's source (the functions named) and checked against real releases.
RULES = {
    # crates/uv/src/commands/project/mod.rs `ProjectInterpreter::lock` (0.5.29), later
    # `lock_project_environment`: `cache_digest(workspace.install_path())`; uv-workspace makes
    # the root `std::path::absolute` + `normalize_path`, so symlinks are kept. A project found
    # from the cwd starts from `getcwd()`, which is already physical.
    "project": Rule("the workspace root, absolute and normalised lexically", "0.5.29", "0.13.0"),
    # Real 0.13.0 hashes the lexical root and real 0.13.1 the resolved one (the fidelity matrix).
    # The change is most likely astral-sh/uv#20436, "Reuse centralized environments through
    # workspace symlinks", which canonicalizes the workspace path before using it.
    "project-real": Rule("the workspace root with symlinks resolved", "0.13.1", None),
    # On Windows `fs_err::canonicalize` answers `\\?\C:\...`; had uv used `dunce` there (as its
    # tests do), the plain form would be the key. Not run on Windows, so both are named.
    "project-real-plain": Rule(
        "the workspace root with symlinks resolved, without `\\\\?\\` (one of the two on Windows)",
        "0.13.1",
        None,
    ),
    # crates/uv/src/commands/project/mod.rs `ScriptInterpreter::lock` (0.5.31): `cache_digest(
    # &script.path)`, where uv-scripts `Pep723Script::read` stores `std::path::absolute(file)`
    # (`..` kept on Unix, folded on Windows). Only for a file with a `# /// script` block.
    "script": Rule("the script's path, made absolute", "0.5.31", None),
    # The same function: a script from a URL hashes the URL (`Url::as_str`, a str), a script on
    # stdin its TOML block (`metadata.raw`, a str). Neither can be named back from a path.
    "script-url": Rule("the script's URL, as a string", "0.5.31", None),
    # crates/uv-python/src/environment.rs `PythonEnvironment::lock` (0.4.x to 0.7.11):
    # `cache_digest(&self.0.root)`, the interpreter's `sys.prefix`.
    "python-prefix": Rule("the interpreter's sys.prefix", None, "0.7.11"),
    # crates/uv-python/src/interpreter.rs `Interpreter::lock` (0.7.12): `cache_digest(
    # &self.sys_executable)`, the path the interpreter reports (not resolved).
    "python": Rule("the interpreter's sys.executable", "0.7.12", None),
    # crates/uv-build-frontend/src/lib.rs `SourceBuild::acquire_lock` (0.7.16): `uv-setuptools-`
    # + `cache_digest(&self.source_tree.canonicalize()?)` for setuptools backends only.
    "build": Rule("the source tree's canonical path", "0.7.16", None),
}


class LockKey:
    """A key uv hashes for one environment: what, how (Path or str), and which releases."""

    __slots__ = ("key", "kind", "rules", "setuptools", "text")

    def __init__(
        self, kind: LabelKind, key: str, rules: tuple[str, ...], *,
        text: bool = False, setuptools: bool = False,
    ) -> None:  # fmt: skip
        self.kind = kind
        self.key = key
        self.rules = rules
        self.text = text  # hashed as a `str` (URL, stdin script), not as a Path
        self.setuptools = setuptools

    def name(self, style: PathStyle = PathStyle.POSIX) -> str:
        """The lock file name uv gives this key."""
        digest = str_digest(self.key) if self.text else path_digest(self.key, style)
        return lock_name(digest, setuptools=self.setuptools)

    def first(self) -> str | None:
        """The first uv release that uses this name (None: every release before `last`)."""
        firsts = [RULES[r].first for r in self.rules]
        return None if None in firsts else min(firsts, key=_version)  # type: ignore[arg-type]

    def last(self) -> str | None:
        """The last uv release that uses this name (None: still in use)."""
        lasts = [RULES[r].last for r in self.rules]
        return None if None in lasts else max(lasts, key=_version)  # type: ignore[arg-type]

    def used_by(self, version: str) -> bool:
        """Whether uv `version` takes this name."""
        first, last = self.first(), self.last()
        return (first is None or _version(first) <= _version(version)) and (
            last is None or _version(version) <= _version(last)
        )

    def releases(self) -> str:
        """Which uv releases use this name, and what they hash."""
        merged = Rule("; ".join(RULES[r].key for r in self.rules), self.first(), self.last())
        if merged.first is None and merged.last is None:
            return f"every uv release: {merged.key}"
        return f"{merged.releases()}: {merged.key}"


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


class NoLockError(Exception):
    """uv takes no temp-dir lock for what was asked; the message says why."""


def _style(platform: str) -> PathStyle:
    return PathStyle.WINDOWS if system.is_windows(platform) else PathStyle.POSIX


def _merged(keys: list[LockKey], style: PathStyle) -> list[LockKey]:
    """Keys that hash to the same name become one, with the releases of both."""
    by_name: dict[str, LockKey] = {}
    for key in keys:
        name = key.name(style)
        if name in by_name:
            old = by_name[name]
            by_name[name] = LockKey(old.kind, old.key, old.rules + key.rules,
                                    text=old.text, setuptools=old.setuptools)  # fmt: skip
        else:
            by_name[name] = key
    return list(by_name.values())


def _resolved(path: str, platform: str) -> str:
    """The canonical form Rust's `canonicalize` gives (a `\\\\?\\` path on Windows)."""
    real = os.path.realpath(path)
    return windows_verbatim(real) if system.is_windows(platform) else real


def project_keys(path: str, cwd: str | None = None, platform: str = sys.platform) -> list[LockKey]:
    """The keys uv's releases hash for the project at or above `path`; NoLockError if none."""
    root = project_root(path, cwd)
    if root is None:
        raise NoLockError(
            f"no managed project at or above {path!r} (no pyproject.toml with a [project] table"
            " or a [tool.uv.workspace], or tool.uv.managed = false): uv takes no project lock"
        )
    keys = [
        LockKey(LabelKind.PROJECT, root, ("project",)),
        LockKey(LabelKind.PROJECT, _resolved(root, platform), ("project-real",)),
    ]
    if system.is_windows(platform):
        keys.append(LockKey(LabelKind.PROJECT, os.path.realpath(root), ("project-real-plain",)))
    return _merged(keys, _style(platform))


_SCRIPT_BLOCK_RE = re.compile(r"(?m)^# /// script[ \t]*$(?:\r?\n#(?:[ \t].*)?$)*\r?\n# ///[ \t]*$")
_SCRIPT_READ_LIMIT = 1 << 20


def has_script_block(path: str) -> bool:
    """True when the file has a PEP 723 `# /// script` block (what makes `uv run` lock it)."""
    try:
        with open(path, "rb") as handle:
            text = handle.read(_SCRIPT_READ_LIMIT).decode("utf-8", "replace")
    except OSError:
        return False
    return _SCRIPT_BLOCK_RE.search(text) is not None


def script_absolute(path: str, cwd: str, platform: str = sys.platform) -> str:
    """`std::path::absolute`: joined to the cwd; `..` kept on Unix, folded on Windows."""
    if system.is_windows(platform):
        return windows_absolute(path, cwd)
    return os.path.join(cwd, path)  # `.` and repeated `/` vanish in the hash anyway


def script_keys(path: str, cwd: str | None = None, platform: str = sys.platform) -> list[LockKey]:
    """The key uv hashes for a PEP 723 script, a URL, or NoLockError with the reason."""
    if re.match(r"https?://", path):
        return [LockKey(LabelKind.SCRIPT, path, ("script-url",), text=True)]
    if path == "-":
        raise NoLockError(
            "a script on stdin takes a lock keyed by the text of its `# /// script` block (a"
            " string), so its name cannot be found from a path and scan cannot label it"
        )
    here = cwd or os.getcwd()
    full = os.path.join(here, path)
    if not os.path.isfile(full):
        raise ValueError(f"no script at {path!r}")
    if not has_script_block(full):
        raise NoLockError(
            f"{path!r} has no `# /// script` block: uv runs it in the project or ambient"
            " environment and locks that one (see lockname --project / --system)"
        )
    return [LockKey(LabelKind.SCRIPT, script_absolute(path, here, platform), ("script",))]


def build_keys(path: str, platform: str = sys.platform) -> list[LockKey]:
    """The `uv-setuptools-` key of a source tree: its canonical path (0.7.16 and later)."""
    return [LockKey(LabelKind.BUILD, _resolved(path, platform), ("build",), setuptools=True)]


_QUERY = "import sys; print(sys.executable); print(sys.prefix); print(sys.base_prefix)"


def default_python_names(platform: str = sys.platform) -> tuple[str, ...]:
    """The names uv tries on PATH for the default interpreter, in uv's order: `python` first.

    crates/uv-python/src/discovery.rs `VersionRequest::executable_names`: the default name,
    then `python3` (with `.exe` on Windows).
    """
    return ("python.exe", "python3.exe") if system.is_windows(platform) else ("python", "python3")


def system_interpreter(
    environ: Mapping[str, str] = os.environ, platform: str = sys.platform
) -> str | None:
    """The interpreter `uv pip install --system` finds: the first default name on PATH."""
    for directory in environ.get("PATH", "").split(os.pathsep):
        for name in default_python_names(platform):
            candidate = os.path.join(directory, name) if directory else ""
            if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                return candidate
    return None


def interpreter_keys(
    spec: str,
    environ: Mapping[str, str] = os.environ,
    run: Callable[[str], list[str]] | None = None,
) -> list[LockKey]:
    """`sys.executable` (uv >= 0.7.12) and `sys.prefix` (older uv), asked of the interpreter.

    A shim (pyenv, asdf, mise) is run like any interpreter: it execs the real one, whose
    `sys.executable` is what uv sees. Raises NoLockError for a virtual environment and ValueError
    when there is no interpreter to ask.
    """
    import shutil  # only lockname needs these

    if os.sep in spec or (os.altsep and os.altsep in spec):
        exe: str | None = spec
    else:
        exe = shutil.which(spec, path=environ.get("PATH"))
    if not exe or (run is None and not os.path.exists(exe)):
        raise ValueError(f"no interpreter at {spec!r}")
    exe = os.path.abspath(exe)
    out = (run or _query)(exe)
    if len(out) < 3:
        raise ValueError(f"{exe} did not report sys.executable and sys.prefix")
    executable, prefix, base_prefix = out[:3]
    if prefix != base_prefix:
        raise NoLockError(
            f"{exe} is a virtual environment; uv locks {os.path.join(prefix, '.lock')} there,"
            " not a file in the temp dir"
        )
    return [
        LockKey(LabelKind.PYTHON, executable, ("python",)),
        LockKey(LabelKind.PYTHON, prefix, ("python-prefix",)),
    ]


def _query(exe: str) -> list[str]:
    import subprocess

    try:
        done = subprocess.run(
            [exe, "-I", "-c", _QUERY], capture_output=True, text=True, timeout=30, check=True
        )
    except (OSError, subprocess.SubprocessError) as err:
        raise ValueError(f"could not run {exe}: {err}") from err
    return done.stdout.splitlines()


#: What `keys_for` can be asked about: how uv names the lock of each kind of environment.
KINDS = ("project", "script", "python", "build")


def guess_kind(target: str) -> str | None:
    """What `target` is, as `uvsweep lockname PATH` reads it: a directory is a project, a `.py`
    file (or a URL, or `-` for stdin) a script, an executable an interpreter; None when it is
    none of these."""
    if os.path.isdir(target):
        return "project"
    if target.endswith(".py") or target == "-" or target.startswith(("http://", "https://")):
        return "script"
    if os.path.isfile(target) and os.access(target, os.X_OK):
        return "python"
    return None


def keys_for(target: str, kind: str) -> list[LockKey]:
    """The keys uv's releases hash for the environment `target` of `kind` (one of KINDS).

    Raises NoLockError where uv takes no temp-dir lock, and ValueError (with the reason) when
    `target` is not such an environment.
    """
    if kind == "python":
        return interpreter_keys(target)
    if kind == "script":
        return script_keys(target)
    if kind == "build":
        if not os.path.isdir(target):
            raise ValueError(f"{target!r} is not a directory")
        return build_keys(target)
    if kind == "project":
        return project_keys(target)
    raise ValueError(f"unknown kind {kind!r} (one of {', '.join(KINDS)})")


# ---- where interpreters live -------------------------------------------------------------------


def python_install_dir(
    environ: Mapping[str, str] = os.environ, platform: str = sys.platform
) -> str:
    """Where uv keeps the Pythons it manages (what `uv python dir` prints), without running uv."""
    if environ.get("UV_PYTHON_INSTALL_DIR"):
        return environ["UV_PYTHON_INSTALL_DIR"]
    if system.is_windows(platform):
        base = environ.get("APPDATA") or os.path.expanduser("~\\AppData\\Roaming")
        return os.path.join(base, "uv", "python")
    data = environ.get("XDG_DATA_HOME") or os.path.join(_home(environ), ".local", "share")
    return os.path.join(data, "uv", "python")


def uv_cache_dir(environ: Mapping[str, str] = os.environ, platform: str = sys.platform) -> str:
    """uv's cache dir (what `uv cache dir` prints), without running uv."""
    if environ.get("UV_CACHE_DIR"):
        return environ["UV_CACHE_DIR"]
    if system.is_windows(platform):
        base = environ.get("LOCALAPPDATA") or os.path.expanduser("~\\AppData\\Local")
        return os.path.join(base, "uv", "cache")
    cache = environ.get("XDG_CACHE_HOME") or os.path.join(_home(environ), ".cache")
    return os.path.join(cache, "uv")


def _home(environ: Mapping[str, str]) -> str:
    return environ.get("HOME") or os.path.expanduser("~")


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _conda_envs(environ: Mapping[str, str], home: str) -> Iterator[str]:
    bases = [environ.get("CONDA_PREFIX", ""), environ.get("CONDA_ROOT", "")]
    bases += [os.path.join(home, name) for name in
              ("miniconda3", "anaconda3", "miniforge3", "mambaforge", "micromamba")]  # fmt: skip
    bases += ["/opt/conda", "/opt/miniconda3", "/opt/anaconda3"]
    for base in bases:
        if base:
            yield base
            for env in sorted(_listdir(os.path.join(base, "envs"))):
                yield os.path.join(base, "envs", env)
    try:
        with open(os.path.join(home, ".conda", "environments.txt"), encoding="utf-8") as handle:
            yield from (line.strip() for line in handle if line.strip())
    except OSError:
        pass


def interpreter_homes(
    environ: Mapping[str, str] = os.environ, platform: str = sys.platform
) -> Iterator[str]:
    """Install prefixes of interpreters that shims, managers and OS installers put in place.

    pyenv (`$PYENV_ROOT`, else `~/.pyenv`), asdf (`$ASDF_DATA_DIR`, else `~/.asdf`) and mise
    (`$MISE_DATA_DIR`, else `$XDG_DATA_HOME/mise`) keep one prefix per version; their shims on
    PATH exec the real interpreter, whose `sys.executable` is what uv hashes. Then conda envs,
    python.org and Homebrew frameworks on macOS, and on Windows the Microsoft Store packages
    uv also finds (the PEP 514 registry gives executables: see `build_index`).
    """
    home = _home(environ)
    pyenv = environ.get("PYENV_ROOT") or os.path.join(home, ".pyenv")
    asdf = environ.get("ASDF_DATA_DIR") or os.path.join(home, ".asdf")
    data = environ.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share")
    mise = environ.get("MISE_DATA_DIR") or os.path.join(data, "mise")
    for base in (os.path.join(pyenv, "versions"), os.path.join(asdf, "installs", "python"),
                 os.path.join(mise, "installs", "python")):  # fmt: skip
        for version in sorted(_listdir(base)):
            yield os.path.join(base, version)
    yield from _conda_envs(environ, home)
    if system.is_macos(platform):
        yield from sorted(glob.glob("/Library/Frameworks/Python.framework/Versions/*"))
        for brew in ("/opt/homebrew", "/usr/local"):
            yield from sorted(glob.glob(
                f"{brew}/opt/python@*/Frameworks/Python.framework/Versions/*"
            ))  # fmt: skip
            yield from sorted(glob.glob(
                f"{brew}/Cellar/python@*/*/Frameworks/Python.framework/Versions/*"
            ))  # fmt: skip
    if system.is_windows(platform):
        local = environ.get("LOCALAPPDATA") or os.path.join(home, "AppData", "Local")
        apps = os.path.join(local, "Microsoft", "WindowsApps")
        yield from sorted(glob.glob(os.path.join(glob.escape(apps), "PythonSoftwareFoundation.*")))
        yield apps


def _windows_registry_pythons() -> list[str]:
    """PEP 514: `ExecutablePath` (else `InstallPath\\python.exe`) of every registered Python."""
    try:
        import winreg  # Windows only
    except ImportError:
        return []
    found: list[str] = []
    for hive in (winreg.HKEY_CURRENT_USER, winreg.HKEY_LOCAL_MACHINE):  # type: ignore[attr-defined]
        found += _registry_hive(winreg, hive)
    return found


def _registry_hive(winreg: Any, hive: Any) -> list[str]:
    found: list[str] = []
    try:
        root = winreg.OpenKey(hive, "Software\\Python")
    except OSError:
        return found
    for company in _subkeys(winreg, root):
        try:
            company_key = winreg.OpenKey(root, company)
        except OSError:
            continue
        for tag in _subkeys(winreg, company_key):
            try:
                install = winreg.OpenKey(company_key, f"{tag}\\InstallPath")
            except OSError:
                continue
            try:
                found.append(str(winreg.QueryValueEx(install, "ExecutablePath")[0]))
            except OSError:
                try:
                    found.append(os.path.join(str(winreg.QueryValue(install, None)), "python.exe"))
                except OSError:
                    continue
    return found


def _subkeys(winreg: Any, key: Any) -> list[str]:
    names: list[str] = []
    for index in itertools.count():
        try:
            names.append(winreg.EnumKey(key, index))
        except OSError:
            return names
    return names  # pragma: no cover - the loop only ends by returning


def cached_source_trees(cache: str, limit: int = 5000) -> Iterator[str]:
    """The unpacked sdists uv keeps in `<cache>/sdists-vN/**/src`: what it builds with setuptools.

    Installing a setuptools sdist takes `uv-setuptools-` on that `src` dir. Walks at most
    `limit` dirs so a huge cache cannot stall a scan.
    """
    seen = 0
    for bucket in sorted(glob.glob(os.path.join(glob.escape(cache), "sdists-v*"))):
        stack = [(bucket, 0)]
        while stack and seen < limit:
            directory, depth = stack.pop()
            for name, is_dir in _subdirs(directory):
                path = os.path.join(directory, name)
                if name == "src":
                    yield path
                elif depth < 5 and is_dir:
                    seen += 1
                    stack.append((path, depth + 1))


def _subdirs(directory: str) -> list[tuple[str, bool]]:
    """(name, whether it is a dir and not a symlink) for each entry, sorted; the file system's
    listing says which are dirs, so this costs no stat per entry where it can."""
    try:
        with os.scandir(directory) as entries:
            found = []
            for entry in entries:
                try:
                    found.append((entry.name, entry.is_dir(follow_symlinks=False)))
                except OSError:
                    found.append((entry.name, False))
    except OSError:
        return []
    return sorted(found)


# ---- the index ---------------------------------------------------------------------------------


def _lexical_target(target: str) -> bool:
    """Whether a symlink's target may be joined to its (resolved) dir lexically: relative, and
    any `..` before every other part (`../lib/x` yes, `a/../x` no: `a` may be a link)."""
    if target.startswith("/"):
        return False
    parts = [part for part in target.split("/") if part not in ("", ".")]
    ups = 0
    while ups < len(parts) and parts[ups] == "..":
        ups += 1
    return ".." not in parts[ups:]


class LabelIndex:
    """Digest -> the environment it belongs to, for `uv-*` and `uv-setuptools-*` names."""

    def __init__(self, style: PathStyle = PathStyle.POSIX) -> None:
        import ntpath
        import posixpath

        self.style = style
        self.env: dict[str, Label] = {}
        self.build: dict[str, Label] = {}
        # keys hashed already: the first claim of a digest wins, so a key seen again (every
        # interpreter in a bin dir adds the same prefix) changes nothing and costs no hash
        self._hashed: set[str] = set()
        self._hashed_trees: set[str] = set()
        self._resolved: dict[str, str] = {}  # dir -> its realpath
        self._real_of: dict[str, str] = {}  # path -> its realpath
        self._listed: dict[tuple[int, int], list[str]] = {}  # (dev, ino) -> interpreter names
        windows = style is PathStyle.WINDOWS
        self.paths = ntpath if windows else posixpath  # the other OS's rules, also in tests
        self.native = windows == system.WINDOWS  # can this OS resolve such paths?

    @property
    def platform(self) -> str:
        return "win32" if self.style is PathStyle.WINDOWS else "posix"

    def _real(self, path: str) -> str:
        """`os.path.realpath`, with each parent dir resolved once per index and each path once:
        every interpreter in a bin dir would otherwise cost an lstat of each component of the
        same parents, and most are links to a name beside them (`python3` -> `python3.11`)."""
        if not self.native:
            return path
        known = self._real_of.get(path)
        if known is None:
            known = self._real_of[path] = self._resolve(path)
        return known

    def _parent(self, head: str) -> str:
        parent = self._resolved.get(head)
        if parent is None:
            parent = self._resolved[head] = os.path.realpath(head)
        return parent

    def _resolve(self, path: str) -> str:
        head, tail = os.path.split(path)
        if not head or tail in ("", ".", ".."):
            return os.path.realpath(path)
        first = full = os.path.join(self._parent(head), tail)
        for _ in range(8):
            try:
                if not stat.S_ISLNK(os.lstat(full).st_mode):
                    return full
                target = os.readlink(full)
            except OSError:
                return full  # missing: realpath keeps the name as it is, after its resolved parent
            if os.name != "posix" or not _lexical_target(target):
                break
            # relative to the link's resolved dir, `..` only leading: joined lexically, the
            # dir of what it names is resolved already or once (the usual: a name beside it)
            head, tail = os.path.split(os.path.normpath(os.path.join(os.path.dirname(full),
                                                                     target)))  # fmt: skip
            if not head or tail in ("", ".", ".."):
                break
            full = os.path.join(self._parent(head), tail)
        return os.path.realpath(first)

    def add(self, kind: LabelKind, key: str, shown: str | None = None) -> None:
        """Hash `key` as a Path; the first candidate to claim a digest keeps it."""
        if key not in self._hashed:
            self._hashed.add(key)
            self.env.setdefault(path_digest(key, self.style), Label(kind, shown or key))

    def add_str(self, kind: LabelKind, key: str) -> None:
        """Hash `key` as a str (a script's URL)."""
        self.env.setdefault(str_digest(key), Label(kind, key))

    def add_tree(self, tree: str) -> None:
        """A source tree uv may build with setuptools: its canonical path, as uv keys it."""
        real = self._real(tree)
        key = windows_verbatim(real) if self.style is PathStyle.WINDOWS else real
        if key not in self._hashed_trees:
            self._hashed_trees.add(key)
            self.build.setdefault(path_digest(key, self.style), Label(LabelKind.BUILD, real))

    def add_project(self, root: str) -> None:
        """A workspace root: both project keys, and the build locks of it and its members."""
        real = self._real(root)
        self.add(LabelKind.PROJECT, root)  # uv 0.5.29 to 0.13.0: lexical
        self.add(LabelKind.PROJECT, real, root)  # uv 0.13.1 and later: resolved
        if self.style is PathStyle.WINDOWS:
            self.add(LabelKind.PROJECT, windows_verbatim(real), root)
        self.add_tree(root)
        for member in workspace_members(root):
            self.add_tree(member)

    def add_interpreter(self, executable: str) -> None:
        """An interpreter: `sys.executable` (uv >= 0.7.12) and `sys.prefix` (older uv) keys."""
        for spelled in dict.fromkeys((executable, self._real(executable))):
            self.add(LabelKind.PYTHON, spelled)
            bin_dir = self.paths.dirname(spelled)
            prefix = bin_dir if self.style is PathStyle.WINDOWS else self.paths.dirname(bin_dir)
            self.add(LabelKind.PYTHON, prefix)

    def add_home(self, home: str) -> None:
        """An install prefix: the prefix itself and every interpreter in its bin dir."""
        self.add(LabelKind.PYTHON, home)
        where = home if self.style is PathStyle.WINDOWS else self.paths.join(home, "bin")
        for exe in self.interpreters_in(where):
            self.add_interpreter(exe)

    def interpreters_in(self, directory: str) -> list[str]:
        """The interpreters in `directory`, by the name given; a dir listed already under
        another name (`/bin` and `/usr/bin`, a dir twice on PATH) is not listed again."""
        try:
            info = os.stat(directory) if self.native else None
        except OSError:
            return []
        if info is None:
            return list(_interpreters_in(directory, self.paths))
        key = (info.st_dev, info.st_ino)
        names = self._listed.get(key)
        if names is None:
            names = self._listed[key] = [
                name for name in sorted(_listdir(directory)) if _PYTHON_NAME_RE.fullmatch(name)
            ]
        return [self.paths.join(directory, name) for name in names]

    def label_for(self, name: str) -> Label | None:
        """The environment behind a lock name; `Label(BUILD, "")` for an unmatched build lock."""
        digest = digest_of(name)
        if digest is None:
            return None
        if is_setuptools_name(name):
            return self.build.get(digest, Label(LabelKind.BUILD, ""))
        return self.env.get(digest)


def _interpreters_in(directory: str, paths: Any = os.path) -> Iterable[str]:
    for name in sorted(_listdir(directory)):
        if _PYTHON_NAME_RE.fullmatch(name):
            yield paths.join(directory, name)


def _has_uv_shebang(path: str) -> bool:
    """An extensionless script run by `#!/usr/bin/env -S uv run --script` (or similar)."""
    try:
        with open(path, "rb") as handle:
            first = handle.readline(512)
    except OSError:
        return False
    return first.startswith(b"#!") and b"uv" in first and b"run" in first


def _script_candidate(index: LabelIndex, value: str, cwd: str) -> None:
    if re.match(r"https?://", value):
        index.add_str(LabelKind.SCRIPT, value)
        return
    full = os.path.join(cwd, value)
    if os.path.isfile(full) and has_script_block(full):
        index.add(LabelKind.SCRIPT, script_absolute(value, cwd, index.platform), full)


def _process_candidates(index: LabelIndex, proc: ProcessInfo) -> None:
    cwd = proc.cwd
    if cwd is None:
        return
    root = project_root(cwd, cwd)
    if root:
        index.add_project(root)
    argv = list(proc.cmdline or ())
    for flag, value in itertools.pairwise(argv):
        if flag in ("--project", "--directory"):
            found = project_root(value, cwd)
            if found:
                index.add_project(found)
        elif flag in ("--python", "-p") and os.sep in value:
            index.add_interpreter(os.path.join(cwd, value))
        elif flag == "--script":
            _script_candidate(index, value, cwd)
    # `uv run script.py`, a shebang's `uv run --script ./tool` (no extension) and URLs: the
    # first few plain arguments that are scripts with a metadata block
    plain = [arg for arg in argv[1:8] if not arg.startswith("-")]
    for arg in plain:
        if (
            arg.endswith(".py")
            or re.match(r"https?://", arg)
            or (os.sep in arg and _has_uv_shebang(os.path.join(cwd, arg)))
        ):
            _script_candidate(index, arg, cwd)


def build_index(
    project_dirs: Sequence[str] = (),
    processes: ProcessTable | None = None,
    environ: Mapping[str, str] = os.environ,
    platform: str = sys.platform,
    cwd: str | None = None,
    windows_registry: Callable[[], list[str]] | None = None,
) -> LabelIndex:
    """Every candidate environment on this machine that we can find cheaply."""
    index = LabelIndex(style=_style(platform))
    for directory in environ.get("PATH", "").split(os.pathsep):
        if directory:
            for exe in index.interpreters_in(directory):
                index.add_interpreter(exe)
            if os.path.basename(os.path.normpath(directory)) == "shims":
                # a shim dir wherever it is: its manager keeps the installs beside it
                manager = os.path.dirname(os.path.normpath(directory))
                for installs in ("versions", os.path.join("installs", "python")):
                    for version in sorted(_listdir(os.path.join(manager, installs))):
                        index.add_home(os.path.join(manager, installs, version))
    if not system.is_windows(platform):
        for prefix in ("/usr/local", "/usr"):
            index.add(LabelKind.PYTHON, prefix)
            for exe in index.interpreters_in(f"{prefix}/bin"):
                index.add_interpreter(exe)
    if system.is_macos(platform):
        for exe in index.interpreters_in("/opt/homebrew/bin"):
            index.add_interpreter(exe)
    for home in interpreter_homes(environ, platform):
        index.add_home(home)
    if system.is_windows(platform):
        for exe in (windows_registry or _windows_registry_pythons)():
            index.add_interpreter(exe)
    managed = python_install_dir(environ, platform)
    for install in sorted(_listdir(managed)):
        index.add_home(os.path.join(managed, install))
    for tree in cached_source_trees(uv_cache_dir(environ, platform)):
        index.add_tree(tree)
    try:
        here = cwd or os.getcwd()
    except OSError:
        here = None
    if here:
        root = project_root(here, here)
        if root:
            index.add_project(root)
    for configured in project_dirs:
        folder = os.path.abspath(os.path.expanduser(configured))
        root = project_root(folder, folder)
        if root:
            index.add_project(root)
        for child in sorted(_listdir(folder)):
            path = os.path.join(folder, child)
            if child.endswith(".py") or ("." not in child and _has_uv_shebang(path)):
                _script_candidate(index, path, folder)
            elif os.path.isfile(os.path.join(path, "pyproject.toml")):
                found = project_root(path, path)
                if found:
                    index.add_project(found)
    if processes is not None:
        for proc in processes.uv_processes():
            _process_candidates(index, proc)
    return index
