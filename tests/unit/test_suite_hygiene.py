"""The suite's own rules: no test module imports another test module (shared fixtures live in
conftest.py, shared helpers in helper modules under tests/), and the process helpers end what
they start."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests import procs

TESTS = Path(__file__).resolve().parents[1]


#: Run in a fresh interpreter: on CPython 3.11, once dbus-fast's compiled code has run (the tray
#: tests), `ast.parse` in this process can fail with "AST constructor recursion depth mismatch".
LIST_IMPORTS = """
import ast, json, sys

found = {}
for path in sys.argv[1:]:
    rows = found[path] = []
    for node in ast.walk(ast.parse(open(path).read(), path)):
        if isinstance(node, ast.Import):
            rows += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):  # relative ones too: `from .test_x import y`
            module = node.module or ""
            rows.append((node.lineno, module))
            rows += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
print(json.dumps(found))
"""


def imported_modules(paths: list[Path]) -> dict[str, list[tuple[int, str]]]:
    """For each of `paths`: (line, module) of every import in it, at any depth (function-local
    imports too; a name imported from a module counts as a module, it may be one)."""
    done = procs.run([sys.executable, "-c", LIST_IMPORTS, *map(str, paths)], capture_output=True,
                     text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return {path: [(line, module) for line, module in rows]
            for path, rows in json.loads(done.stdout).items()}  # fmt: skip


def imports_of_test_modules(root: Path = TESTS) -> list[str]:
    """Every import of a test module (`test_*`) by any module under `root` (conftest too)."""
    bad = []
    for path, imports in imported_modules(sorted(root.rglob("*.py"))).items():
        for line, module in imports:
            if any(part.startswith("test_") for part in module.split(".")):
                bad.append(f"{Path(path).relative_to(root.parent)}:{line} imports {module}")
    return bad


def test_no_test_module_imports_another() -> None:
    bad = imports_of_test_modules()
    assert not bad, "move what is shared to conftest.py or a helper module:\n" + "\n".join(bad)


def test_the_check_sees_every_kind_of_import(tmp_path: Path) -> None:
    (tmp_path / "tests" / "unit").mkdir(parents=True)
    (tmp_path / "tests" / "unit" / "test_a.py").write_text(
        "from tests.integration.test_cli_clean import fake_uv\n"
        "def f():\n    import tests.unit.test_b\n"
        "from .test_c import x\n"
        "from tests.unit import test_d\n"
        "from tests.helpers import A\n"
    )
    bad = imports_of_test_modules(tmp_path / "tests")
    lines = sorted({line.split(" imports ")[0].rsplit(":", 1)[1] for line in bad})
    assert lines == ["1", "3", "4", "5"]  # not line 6: a helper module


def test_stop_ends_the_whole_group_and_says_what_ran() -> None:
    # a parent that ignores SIGTERM, and its child: both go, the parent by SIGKILL after the grace
    code = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = procs.popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    child = int(proc.stdout.readline())
    assert {proc.pid, child} <= procs.ours()
    said = procs.stop(proc, grace=0.3)
    assert len(said) == 2 and any(f"pid {child} " in line for line in said)
    assert not procs.alive(proc.pid) and procs.wait_gone([child], 5) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
def test_a_detached_process_is_still_found_by_its_mark() -> None:
    # a daemon's double fork: its parent exits, it leads a session of its own
    code = (
        "import os, sys, time\n"
        "if os.fork(): os._exit(0)\n"
        "os.setsid()\n"
        "print(os.getpid(), flush=True)\n"
        "null = os.open(os.devnull, os.O_RDWR); os.dup2(null, 1); os.dup2(null, 2)\n"
        "time.sleep(60)\n"
    )
    done = procs.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    pid = int(done.stdout)
    try:
        assert pid in procs.ours()
    finally:
        procs.end([pid])
    assert procs.wait_gone([pid], 5) == []
