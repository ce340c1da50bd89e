"""Which environment a lock file guards: hash candidate paths the way uv does and match names.

The digest is one-way, so labelling works from the other side: gather the environments that
could have a lock on this machine (interpreters on PATH and their prefixes, uv-managed Pythons,
projects and scripts of running uv processes, the cwd, configured project dirs), hash each as uv
would, and look names up. Unmatched files stay `unknown`.
"""

from __future__ import annotations

import fnmatch
import glob
import itertools
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence

from uvsweep.model import Label, LabelKind
from uvsweep.naming import PathStyle, digest_of, is_setuptools_name, path_digest
from uvsweep.processes import ProcessInfo, ProcessTable
from uvsweep.settings import read_toml

TYPE_CHECKING = False  # typing costs ~3 ms to import; annotations only need it for mypy
if TYPE_CHECKING:
    from typing import Any

_PYTHON_NAME_RE = re.compile(r"python(?:\d+(?:\.\d+)?t?)?(?:\.exe)?", re.IGNORECASE)


def _read_pyproject(directory: str) -> dict[str, Any] | None:
    try:
        return read_toml(os.path.join(directory, "pyproject.toml"))
    except (OSError, ValueError):
        return None


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


def python_install_dir(
    environ: Mapping[str, str] = os.environ, platform: str = sys.platform
) -> str:
    """Where uv keeps the Pythons it manages (what `uv python dir` prints), without running uv."""
    if environ.get("UV_PYTHON_INSTALL_DIR"):
        return environ["UV_PYTHON_INSTALL_DIR"]
    if platform == "win32":
        base = environ.get("APPDATA") or os.path.expanduser("~\\AppData\\Roaming")
        return os.path.join(base, "uv", "python")
    data = environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(data, "uv", "python")


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


class LabelIndex:
    """Digest -> the environment it belongs to, for `uv-*` and `uv-setuptools-*` names."""

    def __init__(self, style: PathStyle = PathStyle.POSIX) -> None:
        self.style = style
        self.env: dict[str, Label] = {}
        self.build: dict[str, Label] = {}

    def add(self, kind: LabelKind, key: str, shown: str | None = None) -> None:
        """Hash `key` as a Path; the first candidate to claim a digest keeps it."""
        self.env.setdefault(path_digest(key, self.style), Label(kind, shown or key))

    def add_project(self, root: str) -> None:
        """A project root: its environment lock and its setuptools source-tree lock."""
        self.add(LabelKind.PROJECT, root)
        canonical = os.path.realpath(root)
        self.build.setdefault(path_digest(canonical, self.style), Label(LabelKind.BUILD, canonical))

    def add_interpreter(self, executable: str) -> None:
        """An interpreter: `sys.executable` (uv >= 0.7.12) and `sys.prefix` (older uv) keys."""
        real = os.path.realpath(executable)
        for spelled in (executable, real):
            self.add(LabelKind.PYTHON, spelled)
            bin_dir = os.path.dirname(spelled)
            prefix = bin_dir if self.style is PathStyle.WINDOWS else os.path.dirname(bin_dir)
            self.add(LabelKind.PYTHON, prefix)

    def label_for(self, name: str) -> Label | None:
        """The environment behind a lock name, if a candidate matched it."""
        digest = digest_of(name)
        if digest is None:
            return None
        table = self.build if is_setuptools_name(name) else self.env
        return table.get(digest)


def _interpreters_in(directory: str) -> Iterable[str]:
    for name in sorted(_listdir(directory)):
        if _PYTHON_NAME_RE.fullmatch(name):
            yield os.path.join(directory, name)


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
    for arg in argv[1:]:
        if arg.endswith(".py") and not arg.startswith("-"):
            index.add(LabelKind.SCRIPT, os.path.join(cwd, arg))


def build_index(
    project_dirs: Sequence[str] = (),
    processes: ProcessTable | None = None,
    environ: Mapping[str, str] = os.environ,
    platform: str = sys.platform,
    cwd: str | None = None,
) -> LabelIndex:
    """Every candidate environment on this machine that we can find cheaply."""
    index = LabelIndex(style=PathStyle.WINDOWS if platform == "win32" else PathStyle.POSIX)
    for directory in environ.get("PATH", "").split(os.pathsep):
        if directory:
            for exe in _interpreters_in(directory):
                index.add_interpreter(exe)
    if platform != "win32":
        for prefix in ("/usr/local", "/usr"):
            index.add(LabelKind.PYTHON, prefix)
            for exe in _interpreters_in(f"{prefix}/bin"):
                index.add_interpreter(exe)
    managed = python_install_dir(environ, platform)
    for install in sorted(_listdir(managed)):
        home = os.path.join(managed, install)
        index.add(LabelKind.PYTHON, home)
        for exe in _interpreters_in(home if platform == "win32" else os.path.join(home, "bin")):
            index.add_interpreter(exe)
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
            if child.endswith(".py"):
                index.add(LabelKind.SCRIPT, path)
            elif os.path.isfile(os.path.join(path, "pyproject.toml")):
                found = project_root(path, path)
                if found:
                    index.add_project(found)
    if processes is not None:
        for proc in processes.uv_processes():
            _process_candidates(index, proc)
    return index
