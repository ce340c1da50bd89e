"""`uvsweep lockname`: each name with the releases that use it, and where uv takes no lock."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.clirun import run_cli
from tests.conftest import base_python, make_project
from uvsweep.naming import lock_name, path_digest

pytestmark = pytest.mark.integration


def test_a_symlinked_project_prints_both_names_with_their_releases(tmp_path: Path) -> None:
    real = make_project(tmp_path / "real" / "app")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    done = run_cli("lockname", "--name-only", str(tmp_path / "link" / "app"))
    assert done.returncode == 0, done.stderr
    lines = [line.split("\t") for line in done.stdout.splitlines()]
    assert lines == [
        [lock_name(path_digest(str(tmp_path / "link" / "app"))),
         "uv 0.5.29 to 0.13.0: the workspace root, absolute and normalised lexically"],
        [lock_name(path_digest(str(real))),
         "uv 0.13.1 and later: the workspace root with symlinks resolved"],
    ]  # fmt: skip
    bare = run_cli("lockname", "--name-only", "--bare", str(tmp_path / "link" / "app"))
    assert bare.stdout.split() == [line[0] for line in lines]


def test_json_gives_first_and_last_release(tmp_path: Path) -> None:
    project = make_project(tmp_path / "app")
    done = run_cli("lockname", "--json", str(project))
    doc = json.loads(done.stdout)
    (lock,) = doc["locks"]
    assert doc["no_lock"] is None
    assert (lock["first"], lock["last"], lock["kind"]) == ("0.5.29", None, "project")
    assert lock["path"].endswith(lock["name"]) and os.path.isabs(lock["path"])


def test_a_script_without_a_block_takes_no_lock_and_a_missing_one_is_an_error(
    tmp_path: Path,
) -> None:
    (tmp_path / "plain.py").write_text("print(1)\n")
    done = run_cli("lockname", str(tmp_path / "plain.py"))
    assert done.returncode == 0
    assert done.stdout.startswith("uv takes no lock for this: ")
    doc = json.loads(run_cli("lockname", "--json", str(tmp_path / "plain.py")).stdout)
    assert doc["locks"] == [] and "no `# /// script` block" in doc["no_lock"]
    done = run_cli("lockname", "--script", str(tmp_path / "gone.py"))
    assert done.returncode == 1 and "no script" in done.stderr


def test_system_runs_the_first_python_on_path_through_its_shim(tmp_path: Path) -> None:
    shims = tmp_path / "shims"
    shims.mkdir()
    for name in ("python3", "python"):
        (shims / name).write_text(f'#!/bin/sh\nexec "{base_python()}" "$@"\n')
        (shims / name).chmod(0o755)
    done = run_cli("lockname", "--name-only", "--system", env={"PATH": f"{shims}:/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr
    executable, prefix = (line.split("\t") for line in done.stdout.splitlines())
    assert executable[0] == lock_name(path_digest(base_python()))  # what the shim exec'd
    assert executable[1].startswith("uv 0.7.12 and later")
    assert prefix[1].startswith("uv 0.7.11 and earlier")
