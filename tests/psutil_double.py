"""A psutil double per OS that exposes exactly that OS's psutil API, and no more.

Which `Process` attributes exist on an OS (and so which names `Process.as_dict` accepts) is not
written down here: it is read from the installed psutil's own source, `psutil/__init__.py`'s
`Process` class (whose `if POSIX:`, `if WINDOWS:` and `if hasattr(_psplatform.Process, ...)`
blocks decide what each OS gets) and the per-OS `_pswindows.py` / `_psosx.py` modules. So a call
that would raise on the real OS (`as_dict(["uids"])` on Windows: `ValueError: invalid attr name`)
raises here too, and an attribute the OS lacks is an `AttributeError`.

`open_files()` behaves as psutil's per-OS code does: a path is reported only if `os.stat` of it
(through the OS view the test gives) is a regular file (`isfile_strict`), so an unlinked file is
dropped, and macOS reports the kernel's path (`/private/var/...`), not the one the user typed.
"""

from __future__ import annotations

import ast
import stat as stat_module
from collections import namedtuple
from collections.abc import Callable, Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

import psutil

#: psutil's named tuples on Windows and macOS (psutil/_ntuples.py; Linux's popenfile has more)
POPENFILE = namedtuple("popenfile", ("path", "fd"))
PUIDS = namedtuple("puids", ("real", "effective", "saved"))
PSUTIL_DIR = Path(psutil.__file__).parent
PLATFORM_MODULES = {"win32": "_pswindows.py", "darwin": "_psosx.py", "linux": "_pslinux.py"}
#: psutil's constants, as each OS sets them (psutil/_common.py)
FLAGS = {
    "win32": {"WINDOWS"},
    "darwin": {"POSIX", "MACOS", "OSX", "BSD_LIKE"},
    "linux": {"POSIX", "LINUX"},  # only to check the reader against the real, installed psutil
}


def _class_body(module: ast.Module, name: str) -> list[ast.stmt]:
    for node in module.body:
        if isinstance(node, ast.ClassDef) and node.name == name:
            return node.body
    raise AssertionError(f"psutil has no class {name} any more")


def _defined(body: Iterable[ast.stmt]) -> set[str]:
    """Names of the functions a class body defines, also inside its if-blocks."""
    found: set[str] = set()
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.add(node.name)
        elif isinstance(node, ast.If):
            found |= _defined(node.body) | _defined(node.orelse)
    return found


def _true(test: ast.expr, flags: set[str], platform_methods: set[str]) -> bool:
    if isinstance(test, ast.Name):
        return test.id in flags
    if isinstance(test, ast.Call) and getattr(test.func, "id", None) == "hasattr":
        attr = test.args[1]
        assert isinstance(attr, ast.Constant)
        return attr.value in platform_methods
    if isinstance(test, ast.BoolOp):
        values = [_true(v, flags, platform_methods) for v in test.values]
        return all(values) if isinstance(test.op, ast.And) else any(values)
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return not _true(test.operand, flags, platform_methods)
    raise AssertionError(
        f"psutil's Process uses a condition this double cannot read: {ast.dump(test)}"
    )


def _public(body: Iterable[ast.stmt], flags: set[str], platform_methods: set[str]) -> set[str]:
    found: set[str] = set()
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if not node.name.startswith("_"):
                found.add(node.name)
        elif isinstance(node, ast.If):
            branch = node.body if _true(node.test, flags, platform_methods) else node.orelse
            found |= _public(branch, flags, platform_methods)
    return found


@cache
def process_attributes(platform: str) -> frozenset[str]:
    """The public attributes `psutil.Process` has on `platform` (read from psutil's source)."""
    init = ast.parse((PSUTIL_DIR / "__init__.py").read_text(encoding="utf-8"))
    per_os = ast.parse((PSUTIL_DIR / PLATFORM_MODULES[platform]).read_text(encoding="utf-8"))
    platform_methods = _defined(_class_body(per_os, "Process"))
    return frozenset(_public(_class_body(init, "Process"), FLAGS[platform], platform_methods))


@cache
def as_dict_attributes(platform: str) -> frozenset[str]:
    """The names `Process.as_dict` accepts on `platform`: psutil's `_as_dict_attrnames`."""
    init = ast.parse((PSUTIL_DIR / "__init__.py").read_text(encoding="utf-8"))
    excluded: set[str] = set()
    for node in ast.walk(init):
        if (
            isinstance(node, ast.Assign)
            and getattr(node.targets[0], "id", None) == "_as_dict_attrnames"
        ):
            for const in ast.walk(node.value):
                if isinstance(const, ast.Constant) and isinstance(const.value, str):
                    excluded.add(const.value)
    assert excluded, "psutil's _as_dict_attrnames moved"
    return frozenset(process_attributes(platform) - excluded)


# ---- the processes a test describes ----------------------------------------------------------


class FakeProcess:
    """One process as the test describes it; `denied` attributes raise AccessDenied."""

    def __init__(
        self,
        pid: int,
        name: str = "uv",
        username: str = "me",
        cmdline: tuple[str, ...] = ("uv", "sync"),
        cwd: str = "/",
        uid: int = 501,
        create_time: float = 1000.0,
        ppid: int = 1,
        open_paths: Callable[[], list[str]] | list[str] = (),  # type: ignore[assignment]
        denied: Iterable[str] = (),
        zombie: bool = False,
    ) -> None:
        self.pid, self.name, self.username, self.cmdline = pid, name, username, cmdline
        self.cwd, self.uid, self.create_time, self.ppid = cwd, uid, create_time, ppid
        self.open_paths = open_paths
        self.denied = set(denied)
        self.zombie = zombie

    def paths(self) -> list[str]:
        return list(self.open_paths() if callable(self.open_paths) else self.open_paths)


class FakePsutil:
    """`import psutil` as seen on `platform`, over a list of fake processes.

    `stat` is the OS view `open_files` checks paths against (psutil's `isfile_strict`).
    """

    STATUS_ZOMBIE = "zombie"
    STATUS_RUNNING = "running"

    class Error(Exception):
        pass

    class NoSuchProcess(Error):  # noqa: N818 - psutil's names
        def __init__(self, pid: int) -> None:
            super().__init__(f"process no longer exists (pid={pid})")
            self.pid = pid

    class ZombieProcess(NoSuchProcess):
        pass

    class AccessDenied(Error):  # noqa: N818 - psutil's names
        def __init__(self, pid: int) -> None:
            super().__init__(f"(pid={pid})")
            self.pid = pid

    def __init__(
        self,
        platform: str,
        processes: Iterable[FakeProcess] = (),
        stat: Callable[[str], Any] | None = None,
    ) -> None:
        assert platform in PLATFORM_MODULES
        self.platform = platform
        self.table = {p.pid: p for p in processes}
        self.stat = stat
        self.Process = self._process_class()

    def add(self, proc: FakeProcess) -> FakeProcess:
        self.table[proc.pid] = proc
        return proc

    def pids(self) -> list[int]:
        return sorted(self.table)

    def process_iter(self, attrs: Any = None, ad_value: Any = None) -> Iterator[Any]:
        assert attrs is None, "the double does not model process_iter(attrs)"
        for pid in self.pids():
            if pid in self.table:
                yield self.Process(pid)

    def _isfile_strict(self, path: str) -> bool:
        assert self.stat is not None, "open_files needs the OS view (stat=...)"
        try:
            st = self.stat(path)
        except PermissionError:
            raise
        except OSError:
            return False
        return stat_module.S_ISREG(st.st_mode)

    def _process_class(self) -> type:
        double = self
        platform = self.platform
        have = process_attributes(platform)
        accepted = as_dict_attributes(platform)

        def fetch(proc: Any, attr: str) -> FakeProcess:
            data = double.table.get(proc._pid)
            if data is None:
                raise double.NoSuchProcess(proc._pid)
            if attr in data.denied:
                raise double.AccessDenied(proc._pid)
            if data.zombie and attr not in ("status", "ppid", "name", "create_time"):
                raise double.ZombieProcess(proc._pid)
            return data

        def popenfile(path: str, fd: int) -> Any:
            return POPENFILE(path, fd)

        methods: dict[str, Callable[..., Any]] = {
            "name": lambda self: fetch(self, "name").name,
            "username": lambda self: fetch(self, "username").username,
            "cmdline": lambda self: list(fetch(self, "cmdline").cmdline),
            "cwd": lambda self: fetch(self, "cwd").cwd,
            "create_time": lambda self: fetch(self, "create_time").create_time,
            "ppid": lambda self: fetch(self, "ppid").ppid,
            "status": lambda self: (
                double.STATUS_ZOMBIE if fetch(self, "status").zombie else double.STATUS_RUNNING
            ),
            "uids": lambda self: PUIDS(*(fetch(self, "uids").uid,) * 3),
            "open_files": lambda self: [
                popenfile(path, -1 if platform == "win32" else 3 + i)
                for i, path in enumerate(fetch(self, "open_files").paths())
                if double._isfile_strict(path)
            ],
        }

        def __init__(self: Any, pid: int) -> None:  # noqa: N807
            if pid not in double.table:
                raise double.NoSuchProcess(pid)
            self._pid = pid

        def as_dict(self: Any, attrs: Any = None, ad_value: Any = None) -> dict[str, Any]:
            if attrs is not None:
                if not isinstance(attrs, (list, tuple, set, frozenset)):
                    raise TypeError(f"invalid attrs type {type(attrs)}")
                invalid = set(attrs) - accepted
                if invalid:
                    plural = "s" if len(invalid) > 1 else ""
                    raise ValueError(f"invalid attr name{plural} {', '.join(map(repr, invalid))}")
            out = {}
            for attr in attrs if attrs is not None else accepted:
                try:
                    out[attr] = getattr(self, attr)()
                except (double.AccessDenied, double.ZombieProcess):
                    out[attr] = ad_value
            return out

        def unmodelled(attr: str) -> Callable[..., Any]:
            def call(self: Any, *args: Any, **kwargs: Any) -> Any:
                raise AssertionError(f"the psutil double does not model Process.{attr}")

            return call

        namespace: dict[str, Any] = {"__init__": __init__, "as_dict": as_dict,
                                     "pid": property(lambda self: self._pid)}  # fmt: skip
        for attr in have:
            if attr in ("pid", "as_dict"):
                continue
            namespace[attr] = methods.get(attr) or unmodelled(attr)
        return type(f"Process_{platform}", (), namespace)
