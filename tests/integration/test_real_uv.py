"""Real uv, offline, under a private TMPDIR: the file that appears is the name uvsweep computes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import procs
from tests.conftest import Holder, base_python, make_project
from tests.helpers import uvsweep

pytestmark = pytest.mark.integration


def locks_in(directory: Path) -> set[str]:
    return {p.name for p in directory.iterdir() if p.name.startswith("uv-")}


def run_uv(
    uv: str, args: list[str], env: dict[str, str], cwd: Path
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [uv, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def lockname(*args: str, cwd: Path, env: dict[str, str]) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "uvsweep", "lockname", "--name-only", "--bare", *args],
        cwd=cwd, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def scan(lockdir: Path, cwd: Path, env: dict[str, str]) -> dict:  # type: ignore[type-arg]
    done = subprocess.run(
        [sys.executable, "-m", "uvsweep", "scan", "--json", "--dir", str(lockdir)],
        cwd=cwd, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_uv_sync_lock_matches_lockname_and_scan_labels_it(
    uv: str, uv_env: dict[str, str], lockdir: Path, tmp_path: Path
) -> None:
    project = make_project(tmp_path / "proj one")
    done = run_uv(uv, ["sync"], uv_env, project)
    assert done.returncode == 0, done.stderr
    appeared = locks_in(lockdir)
    assert appeared == set(lockname("--project", str(project), cwd=tmp_path, env=uv_env))
    # from inside a subdirectory, too: uv walks up to the project root
    (project / "src" / "pkg").mkdir(parents=True)
    assert appeared == set(lockname("src/pkg", cwd=project, env=uv_env))
    doc = scan(lockdir, project, uv_env)
    (item,) = doc["files"]
    assert item["state"] == "orphaned"
    assert item["label"] == {"kind": "project", "path": str(project)}


def test_workspace_member_locks_the_workspace_root(
    uv: str, uv_env: dict[str, str], lockdir: Path, tmp_path: Path
) -> None:
    root = make_project(
        tmp_path / "ws",
        "ws",
        '\n[tool.uv.workspace]\nmembers = ["packages/*"]\nexclude = ["packages/skip"]\n',
    )
    member = make_project(root / "packages" / "member", "member")
    skipped = make_project(root / "packages" / "skip", "skip")
    assert run_uv(uv, ["sync"], uv_env, member).returncode == 0
    assert locks_in(lockdir) == set(lockname("--project", str(member), cwd=tmp_path, env=uv_env))
    assert lockname("--project", str(member), cwd=tmp_path, env=uv_env) == lockname(
        "--project", str(root), cwd=tmp_path, env=uv_env
    )
    for path in lockdir.iterdir():
        path.unlink()
    assert run_uv(uv, ["sync"], uv_env, skipped).returncode == 0
    assert locks_in(lockdir) == set(lockname("--project", str(skipped), cwd=tmp_path, env=uv_env))


def test_pep723_script_lock_matches_lockname(
    uv: str, uv_env: dict[str, str], lockdir: Path, tmp_path: Path
) -> None:
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "hello.py").write_text('# /// script\n# dependencies = []\n# ///\nprint("hi")\n')
    done = run_uv(uv, ["run", "./scripts/hello.py"], uv_env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "hi"
    assert locks_in(lockdir) == set(
        lockname("--script", "./scripts/hello.py", cwd=tmp_path, env=uv_env)
    )
    doc = scan(lockdir, tmp_path, {**uv_env, "UVSWEEP_CONFIG": str(_settings(tmp_path, scripts))})
    assert doc["files"][0]["label"] == {"kind": "script", "path": str(scripts / "hello.py")}


def _settings(tmp_path: Path, project_dir: Path) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(f'project_dirs = ["{project_dir}"]\n')
    return path


def test_interpreter_lock_matches_the_first_lockname_line(
    uv: str, uv_env: dict[str, str], lockdir: Path, tmp_path: Path
) -> None:
    python = base_python()
    # resolution fails offline, but uv has taken (and left) the interpreter's lock by then
    run_uv(
        uv, ["pip", "install", "--dry-run", "--break-system-packages", "--python", python,
             "surely-not-a-package-xyz"], uv_env, tmp_path,
    )  # fmt: skip
    names = lockname("--python", python, cwd=tmp_path, env=uv_env)
    assert len(names) == 2  # uv >= 0.7.12 (sys.executable), then older uv (sys.prefix)
    assert locks_in(lockdir) == {names[0]}
    doc = scan(
        lockdir, tmp_path, {**uv_env, "PATH": os.path.dirname(python) + os.pathsep + uv_env["PATH"]}
    )
    assert doc["files"][0]["label"]["kind"] == "python"


def test_a_uv_waiting_behind_a_holder_is_listed_as_waiter(
    uv: str, uv_env: dict[str, str], lockdir: Path, tmp_path: Path, hold: type[Holder]
) -> None:
    project = make_project(tmp_path / "busy")
    (name,) = lockname("--project", str(project), cwd=tmp_path, env=uv_env)
    (lockdir / name).touch()
    lockdir.joinpath(name).chmod(0o666)
    holder = hold(lockdir / name)
    with procs.popen(
        [uv, "sync"], env=uv_env, cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as syncing:
        try:
            deadline = time.monotonic() + 30
            item: dict = {}  # type: ignore[type-arg]
            while time.monotonic() < deadline:
                item = scan(lockdir, tmp_path, uv_env)["files"][0]
                if item["waiters"]:
                    break
                time.sleep(0.1)
            assert item["state"] == "held"
            assert item["holders"][0]["pid"] == holder.pid
            assert item["waiters"][0]["pid"] == syncing.pid
            assert item["waiters"][0]["name"] == "uv"
            assert item["label"] == {"kind": "project", "path": str(project)}
            holder.stop()
            assert syncing.wait(timeout=60) == 0
        finally:
            procs.stop(syncing, grace=0)  # uv and what it started
    assert scan(lockdir, tmp_path, uv_env)["files"][0]["state"] == "orphaned"


def test_running_uv_processes_label_their_projects(
    uv: str, uv_env: dict[str, str], lockdir: Path, tmp_path: Path
) -> None:
    # a uv process in a project dir that uvsweep knows nothing else about
    project = make_project(tmp_path / "elsewhere" / "app")
    assert run_uv(uv, ["sync"], uv_env, project).returncode == 0
    (project / "wait.py").write_text("import time; time.sleep(60)\n")
    with procs.popen(
        [uv, "run", "--no-sync", "python", "wait.py"], env=uv_env, cwd=project
    ) as running:
        try:
            time.sleep(1.0)
            doc = scan(lockdir, tmp_path, uv_env)
            assert doc["files"][0]["label"] == {"kind": "project", "path": str(project)}
        finally:
            procs.stop(running, grace=0)  # uv and the program it runs


def test_lockname_raw_keys(tmp_path: Path) -> None:
    env = dict(os.environ)
    assert lockname("--raw", "/usr/local", cwd=tmp_path, env=env) == ["uv-1b696e695b7c17a7.lock"]
    assert lockname("--raw", "--str", "/usr/local", cwd=tmp_path, env=env) != [
        "uv-1b696e695b7c17a7.lock"
    ]
    win = lockname(
        "--raw", "--style", "windows", "C:\\Python312\\python.exe", cwd=tmp_path, env=env
    )
    assert win == lockname(
        "--raw", "--style", "windows", "c:/Python312/python.exe", cwd=tmp_path, env=env
    )


def test_lockname_explains_what_it_cannot_do(tmp_path: Path) -> None:
    done = uvsweep("lockname", "--project", str(tmp_path))
    assert done.returncode == 0 and done.stdout.startswith("uv takes no lock for this:")
    assert "no managed project" in done.stdout
    done = uvsweep("lockname", "--python", sys.executable)
    assert done.returncode == 0 and "virtual environment" in done.stdout
    done = uvsweep("lockname", "--python", str(tmp_path / "no-python"))
    assert done.returncode == 1 and "no interpreter" in done.stderr
    done = uvsweep("lockname", str(tmp_path / "nothing-here"))
    assert done.returncode == 2 and "pass --project, --script, --python or --build" in done.stderr
    assert uvsweep("lockname", "--str", "x").returncode == 2


def test_a_running_shebang_script_is_labelled_without_settings(
    uv: str, uv_env: dict[str, str], lockdir: Path, tmp_path: Path
) -> None:
    # `#!/usr/bin/env -S uv run --script`: the process is `uv run --script ./tool`, no `.py`
    tool = tmp_path / "tool"
    tool.write_text(
        "#!/usr/bin/env -S uv run --script\n# /// script\n# dependencies = []\n# ///\n"
        "import time\nprint('up', flush=True)\ntime.sleep(60)\n"
    )
    tool.chmod(0o755)
    env = {**uv_env, "PATH": os.path.dirname(uv) + os.pathsep + uv_env["PATH"]}
    with procs.popen(
        ["./tool"], env=env, cwd=tmp_path, stdout=subprocess.PIPE, text=True
    ) as running:
        try:
            assert running.stdout is not None
            assert running.stdout.readline().strip() == "up"
            doc = scan(lockdir, tmp_path / "..", env)
            assert [f["label"] for f in doc["files"]] == [
                {"kind": "script", "path": os.path.join(str(tmp_path), "./tool")}  # as uv has it
            ]
        finally:
            procs.stop(running, grace=0)  # uv and the program it runs
