"""The uv gate with real uv: parked uv (it runs a user's command and only waits for it) never holds
a cleanup back; active uv (waiting for a lock, building, syncing) always does, under any name.

Everything is offline (local wheels, `UV_OFFLINE`, no Python downloads) and every process a test
starts runs in a session of its own that is killed as a whole at teardown.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import APP_DIR, Holder, make_project, need, other_user_python
from tests.helpers import A as ORPHAN
from tests.helpers import eventually, uvsweep, wait_for
from tests.uv_processes import Start, has_child, real_uv, start_parked, waits_for_a_lock

pytestmark = [
    pytest.mark.integration,
    pytest.mark.linux,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux"),
]


@pytest.fixture(scope="session")
def uv_copy(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], str]:
    """`uv` under another file name: a symlink `myuv` or a copy `uv-0.13.9` (how people keep
    several versions), made once per session next to each other."""
    made: dict[str, str] = {}
    where = tmp_path_factory.mktemp("uv-names")
    where.chmod(0o755)

    def named(real: str, name: str) -> str:
        if name == "uv":
            return real
        if name not in made:
            path = where / name
            if name == "myuv":
                path.symlink_to(real)
            else:
                shutil.copy2(real, path)
            made[name] = str(path)
        return made[name]

    return lambda name: named(real_uv(), name)


def clean(lockdir: Path) -> tuple[dict, subprocess.CompletedProcess[str]]:  # type: ignore[type-arg]
    done = uvsweep("clean", "--json", "--dir", str(lockdir))
    assert done.stdout, done.stderr
    return json.loads(done.stdout), done


def clean_beside(lockdir: Path, ours: set[int]) -> tuple[dict, subprocess.CompletedProcess[str]]:  # type: ignore[type-arg]
    """`clean` while our uv processes run. On a shared machine other people's uv may be busy
    too: while only theirs hold the gate, try again (ours must never be what holds it)."""
    deadline = time.monotonic() + 120
    while True:
        doc, done = clean(lockdir)
        active = {proc["pid"] for proc in doc["uv_processes"] if proc["phase"] == "active"}
        if done.returncode != 5 or active & ours or time.monotonic() > deadline:
            return doc, done
        time.sleep(0.5)


def listed(doc: dict, pid: int) -> dict:  # type: ignore[type-arg]
    mine = [proc for proc in doc["uv_processes"] if proc["pid"] == pid]
    assert len(mine) == 1, f"pid {pid} is not listed: {doc['uv_processes']}"
    return mine[0]  # type: ignore[no-any-return]


@pytest.mark.parametrize("name", ["uv", "myuv"])
@pytest.mark.parametrize("how", ["run", "project", "uvx", "script", "shebang"])
def test_a_parked_uv_is_listed_and_never_waited_for(
    how: str, name: str, tmp_path: Path, lockdir: Path, uv_env: dict[str, str],
    uv_copy: Callable[[str], str], start: Start,
) -> None:  # fmt: skip
    proc = start_parked(how, uv_copy(name), start, tmp_path, uv_env)
    (lockdir / ORPHAN).touch()
    doc, done = clean_beside(lockdir, {proc.pid})
    assert done.returncode == 0, done.stdout + done.stderr
    assert not (lockdir / ORPHAN).exists()
    mine = listed(doc, proc.pid)
    assert mine["phase"] == "parked", mine
    assert "uv only waits" in mine["phase_reason"]
    assert proc.poll() is None  # still running: the gate did not wait for it to end
    (lockdir / ORPHAN).touch()
    text = uvsweep("clean", "--dir", str(lockdir))
    assert "parked uv process" in text.stdout and f"pid {proc.pid} " in text.stdout


# ---- active ---------------------------------------------------------------------------------

SLOW_SETUP = """\
import pathlib, time
pathlib.Path({marker!r}).touch()
time.sleep(600)
from setuptools import setup
setup(py_modules=[])
"""


def setuptools_wheels(directory: Path) -> Path:
    """A dir with a setuptools wheel for offline builds: the one Python's ensurepip bundles."""
    import ensurepip

    bundled = Path(ensurepip.__file__).with_name("_bundled")
    found = sorted(bundled.glob("setuptools-*.whl")) if bundled.is_dir() else []
    need(bool(found), "a setuptools wheel in ensurepip/_bundled (Python <= 3.11), for offline")
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copy(found[-1], directory)
    return directory


def slow_build_project(root: Path, marker: Path) -> Path:
    """A project whose setuptools build sleeps in its backend (setup.py), once `marker` exists."""
    wheels = setuptools_wheels(root.parent / "setuptools-wheels")
    project = make_project(
        root,
        name="slowbuild",
        extra='\n[build-system]\nrequires = ["setuptools"]\nbuild-backend = "setuptools.build_meta"'
        f'\n\n[tool.uv]\nfind-links = ["{wheels}"]\n',
    )
    (project / "setup.py").write_text(SLOW_SETUP.format(marker=str(marker)))
    return project


def start_active(
    how: str, uv: str, start: Start, tmp_path: Path, lockdir: Path, env: dict[str, str],
    hold: type[Holder],
) -> subprocess.Popen[bytes]:  # fmt: skip
    """A uv that is busy (waiting for a lock, building, syncing), caught in the act."""
    if how == "sync-waits":
        project = make_project(tmp_path / "proj")
        first = subprocess.run([uv, "sync"], cwd=project, env=env, capture_output=True,
                               text=True, timeout=120, check=False)  # fmt: skip
        assert first.returncode == 0, first.stderr
        [lock] = lockdir.glob("uv-*.lock")
        hold(lock)
        proc = start([uv, "sync"], cwd=project, env=env)
        wait_for("uv sync to wait for the project's lock", waits_for_a_lock(proc.pid))
        return proc
    marker = tmp_path / "building"
    project = slow_build_project(tmp_path / "slow", marker)
    argv = [uv, "sync"] if how == "sync-builds" else [uv, "run", "--", "sleep", "600"]
    proc = start(argv, cwd=project, env=env)
    wait_for("the build backend to start", marker.exists, timeout=120)
    return proc


@pytest.mark.parametrize("name", ["uv", "myuv", "uv-0.13.9"])
@pytest.mark.parametrize("how", ["sync-waits", "sync-builds", "run-syncing"])
def test_an_active_uv_under_any_name_holds_the_gate(
    how: str, name: str, tmp_path: Path, lockdir: Path, uv_env: dict[str, str],
    uv_copy: Callable[[str], str], start: Start, hold: type[Holder],
) -> None:  # fmt: skip
    proc = start_active(how, uv_copy(name), start, tmp_path, lockdir, uv_env, hold)
    (lockdir / ORPHAN).touch()
    doc, done = clean(lockdir)
    assert done.returncode == 5, done.stdout + done.stderr
    assert (lockdir / ORPHAN).exists()
    mine = listed(doc, proc.pid)
    assert mine["phase"] == "active", mine
    text = uvsweep("clean", "--dir", str(lockdir))
    assert text.returncode == 5
    assert text.stdout.startswith("uv is running, so nothing was removed:")
    assert f"pid {proc.pid} " in text.stdout.split("Not waited for")[0]


# ---- other users, and what hides them -------------------------------------------------------


def as_nobody(argv: list[str]) -> list[str]:
    found = other_user_python()
    need(found is not None, "running as root with setpriv and a user `nobody`")
    assert found is not None
    uid, gid, _python = found
    return ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", *argv]


def nobody_env(shared: Path) -> dict[str, str]:
    for name in ("tmp", "cache", "home"):
        (shared / name).mkdir(exist_ok=True)
        (shared / name).chmod(0o777)
    return {
        "PATH": "/usr/bin:/bin", "HOME": str(shared / "home"), "TMPDIR": str(shared / "tmp"),
        "UV_CACHE_DIR": str(shared / "cache"), "UV_OFFLINE": "1", "UV_NO_PROGRESS": "1",
        "UV_PYTHON_DOWNLOADS": "never", "UV_PYTHON": "/usr/bin/python3",
    }  # fmt: skip


def test_the_gate_waits_for_another_users_active_uv_and_lists_their_parked_one(
    shared_tmp: Path, lockdir: Path, start: Start, hold: type[Holder]
) -> None:
    uv = real_uv()
    env = nobody_env(shared_tmp)
    parked = start(as_nobody([uv, "run", "--no-project", "--", "sleep", "600"]), env=env,
                   cwd=shared_tmp / "home")  # fmt: skip
    wait_for("nobody's `sleep 600` under uv run", has_child(parked.pid, "sleep"))
    (lockdir / ORPHAN).touch()
    doc, done = clean_beside(lockdir, {parked.pid})
    assert done.returncode == 0, done.stdout + done.stderr
    mine = listed(doc, parked.pid)
    assert (mine["user"], mine["phase"]) == ("nobody", "parked")

    project = make_project(shared_tmp / "home" / "proj")
    os.chmod(project, 0o777)
    first = subprocess.run(as_nobody([uv, "sync"]), cwd=project, env=env, capture_output=True,
                           text=True, timeout=120, check=False)  # fmt: skip
    assert first.returncode == 0, first.stderr
    [lock] = (shared_tmp / "tmp").glob("uv-*.lock")
    hold(lock)
    busy = start(as_nobody([uv, "sync"]), env=env, cwd=project)
    wait_for("nobody's uv sync to wait for the lock", waits_for_a_lock(busy.pid))
    (lockdir / ORPHAN).touch()
    doc, done = clean(lockdir)
    assert done.returncode == 5, done.stdout + done.stderr
    assert (lockdir / ORPHAN).exists()
    mine = listed(doc, busy.pid)
    assert (mine["user"], mine["phase"]) == ("nobody", "active")


HIDEPID = """\
set -e
mount -t proc -o hidepid=2 proc /proc
cd {cwd}
setpriv --reuid={uid} --regid={gid} --clear-groups env PYTHONPATH={app} \\
    UVSWEEP_CONFIG=/nonexistent/s.toml {python} -m uvsweep {args}
"""


def test_hidepid_is_said_in_scan_clean_and_their_json(shared_tmp: Path) -> None:
    from uvsweep import visibility

    need(os.geteuid() == 0, "mounting /proc with hidepid=2 in a mount namespace needs root")
    if not visibility.detect().sees_all_namespaces:
        pytest.skip("run in a child PID namespace, whose /proc hides more than hidepid does")
    found = other_user_python()
    need(found is not None, "setpriv and a user `nobody` with a usable Python")
    assert found is not None
    uid, gid, python = found
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c",
                            "mount -t proc -o hidepid=2 proc /proc"],
                           capture_output=True, check=False)  # fmt: skip
    need(probe.returncode == 0, "unshare -m and a proc mount (util-linux; a privileged runner)")
    app = shared_tmp / "app"
    shutil.copytree(APP_DIR, app)  # pytest's own tree may not be readable by nobody
    tmp = shared_tmp / "t"
    tmp.mkdir(mode=0o1777)
    tmp.chmod(0o1777)

    def run(args: str) -> subprocess.CompletedProcess[str]:
        script = HIDEPID.format(cwd=shared_tmp, uid=uid, gid=gid, app=app, python=python,
                                args=args)  # fmt: skip
        return subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", script],
                              capture_output=True, text=True, timeout=120, check=False)  # fmt: skip

    scan = run(f"scan --json --dir {tmp}")
    assert scan.returncode == 0, scan.stderr
    # the kernel shows hidepid=2 as "invisible" since Linux 5.8
    hidden = ("hidepid=2", "hidepid=invisible")
    notes = json.loads(scan.stdout)["notes"]
    assert any(word in note for note in notes for word in hidden), scan.stdout
    text = run(f"scan --dir {tmp}")
    assert "uv processes are hidden" in text.stderr and "hidepid=" in text.stderr
    # nobody's orphans: one in a dir every user can enter, one in nobody's own private dir
    private = shared_tmp / "private"
    private.mkdir(mode=0o700)
    for path in (tmp / ORPHAN, private / ORPHAN):
        path.touch()
        os.chown(path, uid, gid)
    os.chown(private, uid, gid)
    cleaned = run(f"clean --json --dir {tmp} --dir {private}")
    assert cleaned.returncode == 0, cleaned.stderr
    doc = json.loads(cleaned.stdout)
    assert any("uv processes are hidden" in note for note in doc["notes"])
    # another user's hidden process could open the shared one: it stays, with the reason
    assert doc["removed"] == [str(private / ORPHAN)]
    assert (tmp / ORPHAN).exists() and not (private / ORPHAN).exists()
    [kept] = doc["skipped"]
    assert kept["path"] == str(tmp / ORPHAN) and "hidepid" in kept["reason"], kept


def test_doctor_says_what_the_gate_cannot_see(monkeypatch: pytest.MonkeyPatch) -> None:
    # doctor needs the tray's dependencies, which `nobody` cannot reach here: the hidepid view
    # comes from the same detection the test above runs for real
    from uvsweep import doctor, visibility

    hidden = visibility.Visibility(1, "initial", "invisible", sees_all_users=False,
                                   sees_all_namespaces=True)  # fmt: skip
    monkeypatch.setattr(visibility, "detect", lambda *_a, **_k: hidden)
    info = doctor.report()
    assert "uv processes are hidden (/proc hidepid=invisible)" in info["uv gate"][0]
    assert "\n  other users' uv processes are hidden" in doctor.text(info)


# ---- the tray's deferred cleanup ------------------------------------------------------------


def test_the_tray_cleans_at_once_beside_a_parked_uv(
    tmp_path: Path,
    lockdir: Path,
    uv_env: dict[str, str],
    start: Start,
    running: Any,
) -> None:
    parked = start_parked("run", real_uv(), start, tmp_path, uv_env)
    app, _icon, _notifier = running(safety_rescan=600)
    (lockdir / ORPHAN).touch()
    eventually(lambda: app.counts()[0] == 1)
    app.dispatch("clean")
    # on a shared machine someone else's active uv may defer it for a while; never ours
    eventually(lambda: not (lockdir / ORPHAN).exists(), timeout=120)
    assert parked.poll() is None
    assert parked.pid not in [proc.pid for proc in app.watcher.uv_processes]


def test_the_deferred_cleanup_runs_when_the_last_active_uv_parks(
    tmp_path: Path, lockdir: Path, uv_env: dict[str, str], start: Start, running: Any,
    hold: type[Holder],
) -> None:  # fmt: skip
    uv = real_uv()
    project = make_project(tmp_path / "proj")
    # uv's own temp dir is not the watched one: no file event tells the watcher that uv parked
    uv_tmp = tmp_path / "uv-tmp"
    uv_tmp.mkdir()
    env = {**uv_env, "TMPDIR": str(uv_tmp)}
    first = subprocess.run([uv, "sync"], cwd=project, env=env, capture_output=True, text=True,
                           timeout=120, check=False)  # fmt: skip
    assert first.returncode == 0, first.stderr
    [lock] = uv_tmp.glob("uv-*.lock")
    holder = hold(lock)
    busy = start([uv, "run", "--", "sleep", "600"], cwd=project, env=env)
    wait_for("uv run to wait for the project's lock", waits_for_a_lock(busy.pid))
    app, _icon, notifier = running(safety_rescan=600)
    (lockdir / ORPHAN).touch()
    eventually(lambda: app.counts()[0] == 1)
    app.dispatch("clean")
    eventually(lambda: app.deferred, timeout=30)
    assert busy.pid in [proc.pid for proc in app.watcher.uv_processes]
    assert (lockdir / ORPHAN).exists()
    holder.stop()  # uv syncs, spawns `sleep 600` and parks: it never exits
    wait_for("`sleep 600` under uv run", has_child(busy.pid, "sleep"))
    eventually(lambda: not (lockdir / ORPHAN).exists(), timeout=60)
    eventually(lambda: notifier.sent[-1][0] == "uvsweep: deferred cleanup done", timeout=30)
    assert busy.poll() is None
