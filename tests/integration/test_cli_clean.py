"""`uvsweep clean` run as a user would: the gate, --wait, --dry-run, --json, exit codes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests import procs
from tests.clirun import CliResult, run_cli
from tests.conftest import APP_DIR, need, other_user_python, run_cli_as_nobody
from tests.helpers import AS_NOBODY, A, B, StartFakeUv

pytestmark = [pytest.mark.integration, pytest.mark.linux]

REPORT_KEYS = {
    "version", "dry_run", "removed", "skipped", "errors", "uv_processes", "handoffs", "keepers",
    "hidden", "notes",
}  # fmt: skip
PROCESS_KEYS = {"pid", "user", "name", "age_seconds", "cmdline", "phase", "phase_reason"}


def before_parked(stdout: str) -> list[str]:
    """The lines of a report before its list of parked uv processes (any this machine runs)."""
    lines = stdout.splitlines()
    for index, line in enumerate(lines):
        if line.startswith("Not waited for: "):
            return lines[:index]
    return lines


@pytest.fixture(autouse=True)
def _no_active_uv_elsewhere() -> None:
    """On a shared machine someone else's active uv (a `uv sync`) holds every user's gate: start
    each test once there is none (the tests' own uv processes start after this)."""
    from uvsweep import cleaner

    deadline = time.monotonic() + 300
    while cleaner.running_uv() and time.monotonic() < deadline:
        time.sleep(0.5)


def clean_json(*args: str) -> tuple[dict, CliResult]:  # type: ignore[type-arg]
    done = run_cli("clean", "--json", *args)
    assert done.stdout, done.stderr
    return json.loads(done.stdout), done


def test_clean_removes_orphans_and_says_what_stayed(lockdir: Path) -> None:
    (lockdir / A).touch()
    (lockdir / B).write_text("not empty")
    done = run_cli("clean", "--dir", str(lockdir))
    assert done.returncode == 0, done.stderr
    assert not (lockdir / A).exists() and (lockdir / B).exists()
    assert before_parked(done.stdout) == [
        "Removed 1 uv lock file:",
        f"  {lockdir / A}",
        "Kept 1:",
        f"  suspicious  {lockdir / B}: not empty (9 bytes)",
    ]


def test_json_report(lockdir: Path) -> None:
    (lockdir / A).touch()
    (lockdir / B).symlink_to(lockdir / A)
    doc, done = clean_json("--dir", str(lockdir))
    assert done.returncode == 0
    assert set(doc) == REPORT_KEYS
    assert doc["version"] == 1 and doc["dry_run"] is False
    assert doc["removed"] == [str(lockdir / A)]
    assert doc["skipped"] == [
        {"path": str(lockdir / B), "state": "suspicious", "reason": "a symlink; uv never makes one"}
    ]
    from uvsweep import visibility

    assert doc["errors"] == []
    # nothing to say, but what this machine hides (the suite run in a PID namespace, hidepid)
    assert all("hidden" in note or "cannot be seen" in note for note in doc["notes"])
    assert bool(doc["notes"]) == (not visibility.detect().complete)
    assert [p for p in doc["uv_processes"] if p["phase"] != "parked"] == []


def test_dry_run_removes_nothing(lockdir: Path) -> None:
    (lockdir / A).touch()
    (lockdir / B).touch()
    old = time.time() - 7200
    os.utime(lockdir / A, (old, old))
    doc, done = clean_json("--dir", str(lockdir), "--dry-run", "--min-age", "1h")
    assert done.returncode == 0
    assert doc["dry_run"] is True
    assert doc["removed"] == [str(lockdir / A)]
    assert [(s["path"], s["state"]) for s in doc["skipped"]] == [(str(lockdir / B), "orphaned")]
    assert "younger than the minimum age" in doc["skipped"][0]["reason"]
    assert (lockdir / A).exists() and (lockdir / B).exists()
    text = run_cli("clean", "-n", "--dir", str(lockdir), "--min-age", "1h").stdout
    assert text.startswith("Would remove 1 uv lock file:")


def test_running_uv_blocks_everything(lockdir: Path, fake_uv: StartFakeUv) -> None:
    (lockdir / A).touch()
    fake = fake_uv()
    doc, done = clean_json("--dir", str(lockdir))
    assert done.returncode == 5, done.stderr
    assert doc["removed"] == [] and (lockdir / A).exists()
    mine = [p for p in doc["uv_processes"] if p["pid"] == fake.pid]
    assert len(mine) == 1
    assert set(mine[0]) == PROCESS_KEYS
    assert mine[0]["name"] == "uv" and mine[0]["cmdline"][1] == "60"
    assert mine[0]["user"] and mine[0]["age_seconds"] >= 0
    assert mine[0]["phase"] == "active" and mine[0]["phase_reason"] == "`uv 60` may take locks"
    text = run_cli("clean", "--dir", str(lockdir))
    assert text.returncode == 5
    assert text.stdout.startswith("uv is running, so nothing was removed:")
    assert f"pid {fake.pid} " in text.stdout and "--wait" in text.stdout
    dry, done = clean_json("--dir", str(lockdir), "--dry-run")
    assert done.returncode == 5  # a real run would remove nothing now
    assert dry["dry_run"] is True and dry["removed"] == [str(lockdir / A)]
    assert any(p["pid"] == fake.pid for p in dry["uv_processes"])


def test_wait_cleans_once_uv_is_done(lockdir: Path, fake_uv: StartFakeUv) -> None:
    (lockdir / A).touch()
    fake_uv(1.5)
    began = time.monotonic()
    done = run_cli("clean", "--dir", str(lockdir), "--wait")
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - began >= 1.0
    assert "waiting for uv to finish" in done.stderr
    assert not (lockdir / A).exists()


def test_wait_gives_up_after_its_limit(lockdir: Path, fake_uv: StartFakeUv) -> None:
    (lockdir / A).touch()
    fake_uv(60)
    began = time.monotonic()
    done = run_cli("clean", "--dir", str(lockdir), "--wait=1")
    assert done.returncode == 5
    assert 0.9 <= time.monotonic() - began < 10
    assert (lockdir / A).exists()


def test_ctrl_c_while_waiting(lockdir: Path, fake_uv: StartFakeUv) -> None:
    (lockdir / A).touch()
    fake_uv(60)
    proc = procs.popen(
        [sys.executable, "-m", "uvsweep", "clean", "--dir", str(lockdir), "--wait"],
        stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": APP_DIR},
    )  # fmt: skip
    try:
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)  # Ctrl-C works even when the suite runs in the background
        _, err = proc.communicate(timeout=10)
    finally:
        procs.stop(proc, grace=0)
    assert proc.returncode == 130
    assert "interrupted" in err
    assert (lockdir / A).exists()


def test_own_uv_ancestor_does_not_block(lockdir: Path, uv: str, uv_env: dict[str, str]) -> None:
    (lockdir / A).touch()
    env = {**uv_env, "PYTHONPATH": APP_DIR}
    done = subprocess.run(
        [uv, "run", "--no-project", "python", "-m", "uvsweep", "clean", "--dir", str(lockdir)],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert not (lockdir / A).exists()


def test_ignore_running_uv(lockdir: Path, fake_uv: StartFakeUv) -> None:
    (lockdir / A).touch()
    fake_uv()
    doc, done = clean_json("--dir", str(lockdir), "--ignore-running-uv")
    assert done.returncode == 0
    assert doc["removed"] == [str(lockdir / A)] and doc["uv_processes"] == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--min-age", "soon"], "is not a duration"),
        (["--min-age", "-5"], "must be a finite number"),
        (["--wait=x"], "is not a duration"),
    ],
)
def test_bad_arguments(args: list[str], message: str) -> None:
    done = run_cli("clean", *args)
    assert done.returncode == 2
    assert message in done.stderr


def test_missing_dir_is_reported(tmp_path: Path) -> None:
    doc, done = clean_json("--dir", str(tmp_path / "nope"))
    assert done.returncode == 4
    assert doc["errors"] == [{"path": str(tmp_path / "nope"), "message": "no such directory"}]
    assert f"{tmp_path / 'nope'}: no such directory" in done.stderr


def test_all_users_needs_root(shared_tmp: Path) -> None:
    need(other_user_python() is not None, AS_NOBODY)
    done = run_cli_as_nobody(["clean", "--all-users", "--dir", str(shared_tmp)], "/")
    assert done.returncode == 2
    assert "--all-users needs root" in done.stderr


def test_unreadable_dir_as_another_user(shared_tmp: Path) -> None:
    need(other_user_python() is not None, AS_NOBODY)
    private = shared_tmp / "private"
    private.mkdir(mode=0o700)
    (private / A).touch()
    done = run_cli_as_nobody(["clean", "--json", "--dir", str(private)], "/")
    assert done.returncode == 4
    assert json.loads(done.stdout)["errors"] == [
        {"path": str(private), "message": "permission denied (cannot list it)"}
    ]
    assert (private / A).exists()


def test_help_teaches() -> None:
    done = run_cli("clean", "--help")
    assert done.returncode == 0
    taught = ("--wait", "--dry-run", "--all-users", "--min-age", "Dockerfile", "(exit 5)",
              "states and exit codes: `uvsweep help states`")  # fmt: skip
    for words in taught:
        assert words in done.stdout
    assert "5    clean: active uv is running" in run_cli("help", "states").stdout


def test_a_zombie_uv_does_not_block(lockdir: Path, fake_uv: StartFakeUv) -> None:
    (lockdir / A).touch()
    fake = fake_uv(0.01)
    deadline = time.monotonic() + 5
    while Path(f"/proc/{fake.pid}/stat").read_text().split(")")[1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.01)  # exited, and not reaped: a zombie named uv
    done = run_cli("clean", "--dir", str(lockdir))
    assert done.returncode == 0, done.stdout
    assert not (lockdir / A).exists()


def test_config_commands(tmp_path: Path) -> None:
    path = tmp_path / "cfg" / "settings.toml"
    env = {"UVSWEEP_CONFIG": str(path)}
    done = run_cli("config", "path", env=env)
    assert done.stdout.strip() == str(path) and "does not exist yet" in done.stderr
    done = run_cli("config", "set", "notifications", "off", env=env)
    assert done.returncode == 0 and done.stdout.strip() == "notifications = false"
    assert "notifications = false" in path.read_text()
    shown = json.loads(run_cli("config", "show", "--json", env=env).stdout)
    assert shown["settings"]["notifications"] is False and shown["path"] == str(path)
    assert run_cli("config", "set", "notify_threshold", "0", env=env).returncode == 2
    assert run_cli("config", "set", "colour", "blue", env=env).returncode == 2
    assert (
        run_cli("config", "unset", "notifications", env=env).stdout.strip()
        == "notifications = true"
    )
    path.write_text("this is = = not toml")
    done = run_cli("config", "set", "auto_clean", "true", env=env)
    assert done.returncode == 0 and "moved it to" in done.stderr
    assert len(list(path.parent.glob("settings.toml.corrupt-*"))) == 1
    assert "auto_clean = true" in path.read_text()
