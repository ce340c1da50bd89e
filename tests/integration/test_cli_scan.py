"""`uvsweep scan` run as a user would, on real files, real locks and hostile temp dirs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.clirun import CliResult, run_cli
from tests.conftest import Holder, need, other_user_python, run_cli_as_nobody
from tests.helpers import AS_NOBODY, A, B, uvsweep

pytestmark = pytest.mark.integration

FILE_KEYS = {
    "path", "name", "state", "age_seconds", "size", "owner", "label", "holders", "waiters",
    "reason", "blocks_uv",
}  # fmt: skip
STATES = {"orphaned", "foreign", "suspicious", "held", "waiting", "open"}


def scan_json(*dirs: Path | str) -> tuple[dict, CliResult]:  # type: ignore[type-arg]
    args = [a for d in dirs for a in ("--dir", str(d))]
    done = run_cli("scan", "--json", *args)
    return json.loads(done.stdout), done


def test_version_prints_the_package_version() -> None:
    from uvsweep import __version__

    done = run_cli("--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"uvsweep {__version__}"


def test_empty_dir_scans_clean(lockdir: Path) -> None:
    from uvsweep import visibility

    doc, done = scan_json(lockdir)
    assert done.returncode == 0
    if not visibility.detect().complete:  # the suite runs in a PID namespace: it says so
        assert doc.pop("notes") and True
        doc["notes"] = []
    assert doc == {
        "version": 1,
        "dirs": [str(lockdir)],
        "files": [],
        "summary": dict.fromkeys(
            ["orphaned", "foreign", "suspicious", "held", "waiting", "open"], 0
        ),
        "errors": [],
        "notes": [],
    }


def test_json_schema_is_exact_and_states_are_right(lockdir: Path, hold: type[Holder]) -> None:
    (lockdir / A).touch()
    (lockdir / B).touch()
    holder = hold(lockdir / B)
    waiter = hold(lockdir / B, wait=True)
    doc, done = scan_json(lockdir)
    assert done.returncode == 0, done.stderr
    assert set(doc) == {"version", "dirs", "files", "summary", "errors", "notes"}
    by_name = {f["name"]: f for f in doc["files"]}
    for item in doc["files"]:
        assert set(item) == FILE_KEYS
        assert item["state"] in STATES
        assert item["reason"]  # every file says why it is in its state
        assert item["blocks_uv"] is None  # only foreign files say whether they block uv
    assert by_name[A]["state"] == "orphaned"
    assert by_name[A]["size"] == 0 and by_name[A]["age_seconds"] >= 0
    held = by_name[B]
    assert held["state"] == "held"
    assert [h["pid"] for h in held["holders"]] == [holder.pid]
    assert [w["pid"] for w in held["waiters"]] == [waiter.pid]
    assert set(held["holders"][0]) == {"pid", "name", "user", "cmdline", "alive"}
    assert held["holders"][0]["cmdline"][0] == sys.executable
    assert doc["summary"]["held"] == 1 and doc["summary"]["orphaned"] == 1


def test_holder_killed_makes_the_file_orphaned(lockdir: Path, hold: type[Holder]) -> None:
    (lockdir / A).touch()
    holder = hold(lockdir / A)
    assert scan_json(lockdir)[0]["files"][0]["state"] == "held"
    holder.stop()
    assert scan_json(lockdir)[0]["files"][0]["state"] == "orphaned"


def test_open_without_lock_is_open(lockdir: Path) -> None:
    (lockdir / A).touch()
    code = "import sys,time; f=open(sys.argv[1]); print(1, flush=True); time.sleep(60)"
    with subprocess.Popen(
        [sys.executable, "-c", code, str(lockdir / A)], stdout=subprocess.PIPE, text=True
    ) as child:
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == "1"
            item = scan_json(lockdir)[0]["files"][0]
            assert item["state"] == "open"
        finally:
            child.kill()


def test_hostile_temp_dir_is_reported_and_nothing_is_followed_or_hung(
    lockdir: Path, tmp_path: Path
) -> None:
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    (lockdir / "uv-0000000000000001.lock").symlink_to(target)
    (lockdir / "uv-0000000000000002.lock").symlink_to(tmp_path / "dangling")
    (lockdir / "uv-0000000000000003.lock").mkdir()
    os.mkfifo(lockdir / "uv-0000000000000004.lock")
    (lockdir / "uv-0000000000000005.lock").write_text("data")
    (lockdir / "uv-0000000000000006.lock").touch()
    os.link(lockdir / "uv-0000000000000006.lock", lockdir / "uv-0000000000000007.lock")
    for near_miss in ("uv-0000000000000ABC.lock", "uv-000000000000001.lock", ".tmpXyZ123",
                      "uv-0000000000000008.lock.tmp", "uv-setuptools-00000001.lock"):  # fmt: skip
        (lockdir / near_miss).touch()
    before = target.stat()
    doc, done = scan_json(lockdir)  # a FIFO opened without O_NONBLOCK would hang: timeout=60
    assert done.returncode == 0
    states = {f["name"]: f["state"] for f in doc["files"]}
    assert states == {f"uv-000000000000000{i}.lock": "suspicious" for i in range(1, 8)}
    assert target.read_text() == "keep me"
    assert target.stat().st_mtime == before.st_mtime


def test_files_owned_by_another_user_are_foreign(lockdir: Path) -> None:
    need(os.geteuid() == 0, "giving a file to another user needs root (CI runs as root)")
    path = lockdir / A
    path.touch()
    os.chown(path, 65534, 65534)
    item = scan_json(lockdir)[0]["files"][0]
    assert item["state"] == "foreign"
    assert item["owner"] in ("nobody", "65534")


def test_foreign_file_that_blocks_your_uv_says_so(shared_tmp: Path) -> None:
    need(other_user_python() is not None, AS_NOBODY)
    lockdir = shared_tmp
    path = lockdir / A
    path.touch(mode=0o644)  # uv <= 0.5.29 made them 0644: nobody else can open it read-write
    path.chmod(0o644)
    done = run_cli_as_nobody(["scan", "--dir", str(lockdir)], cwd="/")
    assert done.returncode == 0, done.stderr
    assert "foreign" in done.stdout
    assert "your uv cannot open it and runs without this lock" in done.stdout
    path.chmod(0o666)
    done = run_cli_as_nobody(["scan", "--dir", str(lockdir)], cwd="/")
    assert "your uv can still lock it" in done.stdout
    (item,) = json.loads(run_cli_as_nobody(["scan", "--json", "--dir", str(lockdir)], "/").stdout)[
        "files"
    ]
    assert item["blocks_uv"] is False and "can still lock it" in item["reason"]
    path.chmod(0o644)
    (item,) = json.loads(run_cli_as_nobody(["scan", "--json", "--dir", str(lockdir)], "/").stdout)[
        "files"
    ]
    assert item["blocks_uv"] is True and "runs without this lock" in item["reason"]


def test_unreadable_dir_is_reported_and_the_rest_still_scanned(shared_tmp: Path) -> None:
    need(other_user_python() is not None, AS_NOBODY)
    secret = shared_tmp / "secret"
    secret.mkdir(mode=0o700)
    secret.chmod(0o700)
    lockdir = shared_tmp / "tmp"
    lockdir.mkdir(mode=0o755)
    (lockdir / A).touch()
    done = run_cli_as_nobody(
        ["scan", "--json", "--dir", str(secret), "--dir", str(lockdir)], cwd="/"
    )
    assert done.returncode == 4, done.stderr
    doc = json.loads(done.stdout)
    assert doc["errors"] == [{"path": str(secret), "message": "permission denied (cannot list it)"}]
    assert [f["name"] for f in doc["files"]] == [A]
    assert f"{secret}: permission denied" in done.stderr


def test_missing_and_non_directory_dirs_are_errors_not_crashes(
    lockdir: Path, tmp_path: Path
) -> None:
    (lockdir / A).touch()
    plain = tmp_path / "plain.txt"
    plain.write_text("")
    doc, done = scan_json(tmp_path / "missing", plain, lockdir)
    assert done.returncode == 4
    assert doc["errors"] == [
        {"path": str(tmp_path / "missing"), "message": "no such directory"},
        {"path": str(plain), "message": "not a directory"},
    ]
    assert [f["name"] for f in doc["files"]] == [A]
    assert "no such directory" in done.stderr and "Traceback" not in done.stderr


def test_symlinked_dir_is_scanned_as_the_dir_it_points_to(lockdir: Path, tmp_path: Path) -> None:
    (lockdir / A).touch()
    (tmp_path / "tmplink").symlink_to(lockdir)
    doc, done = scan_json(tmp_path / "tmplink")
    assert done.returncode == 0
    assert doc["files"][0]["state"] == "orphaned"


def test_fail_on_exits_3_only_when_a_listed_state_is_present(lockdir: Path) -> None:
    (lockdir / A).touch()
    assert run_cli("scan", "--dir", str(lockdir), "--fail-on", "held,foreign").returncode == 0
    done = run_cli("scan", "--dir", str(lockdir), "--fail-on", "foreign,orphaned")
    assert done.returncode == 3
    assert (
        run_cli(
            "scan", "--dir", str(lockdir), "--fail-on", "suspicious", "--fail-on", "orphaned"
        ).returncode
        == 3
    )


def test_fail_on_rejects_unknown_states_with_usage_exit(lockdir: Path) -> None:
    done = run_cli("scan", "--dir", str(lockdir), "--fail-on", "stale")
    assert done.returncode == 2
    assert "unknown state 'stale'" in done.stderr


def test_human_output_has_a_table_and_a_summary(lockdir: Path, hold: type[Holder]) -> None:
    (lockdir / A).touch()
    (lockdir / B).touch()
    holder = hold(lockdir / B)
    done = run_cli("scan", "--dir", str(lockdir))
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["STATE", "AGE", "GUARDS", "HOLDER", "PATH"]
    assert any(line.startswith("orphaned") and line.endswith(str(lockdir / A)) for line in lines)
    assert any(line.startswith("held") and str(holder.pid) in line for line in lines)
    assert lines[-1] == f"2 uv lock files in {lockdir}: 1 orphaned, 1 held."


def test_bare_uvsweep_without_a_desktop_says_what_to_use_instead(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    exe = os.path.join(sysconfig.get_path("scripts"), "uvsweep")
    done = subprocess.run([exe], capture_output=True, text=True, env=env, timeout=60, check=False)
    assert done.returncode == 6
    assert done.stderr.startswith("uvsweep: no graphical session")
    assert "`uvsweep scan`" in done.stderr and "`uvsweep watch`" in done.stderr


def test_default_dirs_are_tmpdir_tmp_and_settings_dirs(tmp_path: Path, lockdir: Path) -> None:
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / A).touch()
    config = tmp_path / "settings.toml"
    config.write_text(f'dirs = ["{extra}"]\n')
    done = uvsweep("scan", "--json", env={"TMPDIR": str(lockdir), "UVSWEEP_CONFIG": str(config)})
    doc = json.loads(done.stdout)
    assert doc["dirs"] == [str(lockdir), "/tmp", str(extra)]
    assert str(extra / A) in [f["path"] for f in doc["files"]]


def test_corrupt_settings_warn_and_scan_with_defaults(tmp_path: Path, lockdir: Path) -> None:
    config = tmp_path / "settings.toml"
    config.write_text("dirs = [unclosed")
    done = run_cli("scan", "--dir", str(lockdir), env={"UVSWEEP_CONFIG": str(config)})
    assert done.returncode == 0
    assert "not valid TOML" in done.stderr and "using defaults" in done.stderr
    assert config.read_text() == "dirs = [unclosed"


def test_the_scan_path_imports_no_gui_watcher_or_psutil(lockdir: Path) -> None:
    (lockdir / A).touch()
    code = (
        "import sys; from uvsweep.cli import main; rc = main(['scan', '--dir', sys.argv[1]]);"
        # shutil too: argparse imports it for any parser without our formatter (start-up cost)
        "heavy = {'pystray', 'PIL', 'watchdog', 'psutil', 'shutil', 'desktop_notifier'};"
        "bad = sorted({m.split('.')[0] for m in sys.modules} & heavy);"
        "print('LOADED', bad)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(lockdir)], capture_output=True, text=True, check=True
    )
    assert done.stdout.splitlines()[-1] == "LOADED []"


def test_help_lists_the_commands_and_hides_the_helper() -> None:
    done = run_cli("--help")
    assert done.returncode == 0
    for command in ("scan", "clean", "watch", "tray", "doctor", "autostart", "config", "lockname"):
        assert f"    {command}" in done.stdout
    assert "_notifyd" not in done.stdout and "SUPPRESS" not in done.stdout
