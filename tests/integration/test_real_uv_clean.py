"""Real uv while uvsweep cleans: concurrent offline syncs, and the Dockerfile one-liner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.conftest import APP_DIR, base_python, make_project, make_wheel, need
from tests.helpers import wait_for
from tests.overlap import OverlapSampler, comm, holders_by_name
from tests.uv_processes import Start, start_parked

pytestmark = [
    pytest.mark.integration,
    pytest.mark.linux,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux"),
]

SWEEPER = textwrap.dedent(
    """
    import json, os, sys
    from uvsweep import cleaner
    removed = passes = 0
    gate = sys.argv[3] == "gate"
    while not os.path.exists(sys.argv[2]):
        # without the gate, the test's own syncs do not stop the sweeper; every per-file check
        # of the protocol still applies. With it, only parked uv processes may be alive
        removed += len(cleaner.clean([sys.argv[1]], gate=gate).removed)
        passes += 1
    print(json.dumps({"removed": removed, "passes": passes}))
    """
)


@pytest.mark.parametrize("gate", ["no-gate", "gate"])
def test_concurrent_uv_syncs_while_sweeping(
    tmp_path: Path, lockdir: Path, uv: str, uv_env: dict[str, str], gate: str,
    start: Start,
) -> None:  # fmt: skip
    parked = []
    if gate == "gate":  # parked uv processes stay alive all along: the gate must let it sweep
        for how in ("run", "uvx"):
            (tmp_path / how).mkdir()
            parked.append(start_parked(how, uv, start, tmp_path / how, uv_env))
    wheels = tmp_path / "wheels"
    make_wheel(wheels, "tinydep", "1.0")
    project = make_project(
        tmp_path / "proj",
        extra=f'\n[tool.uv]\nfind-links = ["{wheels}"]\n',
    )
    text = (
        (project / "pyproject.toml")
        .read_text()
        .replace("dependencies = []", 'dependencies = ["tinydep"]')
    )
    (project / "pyproject.toml").write_text(text)
    first = subprocess.run([uv, "sync"], cwd=project, env=uv_env, capture_output=True, text=True,
                           timeout=120, check=False)  # fmt: skip
    assert first.returncode == 0, first.stderr
    stop = tmp_path / "stop"
    sweeper = subprocess.Popen(
        [sys.executable, "-c", SWEEPER, str(lockdir), str(stop), gate],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": APP_DIR},
    )  # fmt: skip

    def sync_loop(index: int) -> list[subprocess.CompletedProcess[str]]:
        runs = []
        for round_ in range(6):
            args = ["sync", "--reinstall"] if (index + round_) % 2 else ["sync"]
            done = subprocess.run([uv, *args], cwd=project, env=uv_env, capture_output=True,
                                  text=True, timeout=300, check=False)  # fmt: skip
            runs.append(done)
        return runs

    try:
        uv_only = OverlapSampler(lockdir, counts=lambda pid: comm(pid) == "uv")
        with uv_only as sampler, ThreadPoolExecutor(4) as pool:
            results = [run for runs in pool.map(sync_loop, range(4)) for run in runs]
        if parked:  # the syncs are done; the parked ones must not keep the project's lock file
            wait_for("the gated sweeper to remove the lock files",
                     lambda: not list(lockdir.glob("uv-*.lock")), timeout=120)  # fmt: skip
    finally:
        stop.touch()
        out, _ = sweeper.communicate(timeout=60)
    assert all(proc.poll() is None for proc in parked)
    # mutual exclusion seen from outside: never two uv holding two inodes under one name at once
    # (the sweeper's own lock on a handed-over name is not counted: that is the handoff)
    assert sampler.samples > 100 and not sampler.overlaps, sampler.overlaps[:3]
    swept = json.loads(out)
    assert [r.returncode for r in results] == [0] * 24, [r.stderr for r in results if r.returncode]
    assert swept["removed"] > 0, f"the sweeper must have removed the project's lock: {swept}"
    venv_python = project / ".venv" / "bin" / "python"
    check = subprocess.run([uv, "pip", "check", "--python", str(venv_python)], env=uv_env,
                           capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    value = subprocess.run([str(venv_python), "-c", "import tinydep; print(tinydep.VALUE)"],
                           capture_output=True, text=True, check=True, timeout=60)  # fmt: skip
    assert value.stdout.strip() == "1.0"
    site = next((project / ".venv" / "lib").glob("python*/site-packages"))
    assert [p.name for p in site.glob("tinydep-*.dist-info")] == ["tinydep-1.0.dist-info"]
    again = subprocess.run([uv, "sync", "--locked", "--check"], cwd=project, env=uv_env,
                           capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert again.returncode == 0, again.stderr


def test_the_sampler_sees_two_holders_of_one_name(tmp_path: Path) -> None:
    """What the test above relies on: an overlap, made by hand (the first holder's file is
    unlinked and a second process locks a fresh file at the name), is seen."""
    path = tmp_path / "uv-00000000000000aa.lock"
    code = (
        "import fcntl, os, sys, time\n"
        "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o666)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('locked', flush=True)\n"
        "time.sleep(600)\n"
    )
    first = second = None
    try:
        with OverlapSampler(tmp_path) as sampler:
            first = subprocess.Popen([sys.executable, "-c", code, str(path)],
                                     stdout=subprocess.PIPE, text=True)  # fmt: skip
            assert first.stdout is not None and first.stdout.readline() == "locked\n"
            assert len(holders_by_name(tmp_path)[path.name]) == 1
            path.unlink()  # what a careless cleaner does
            second = subprocess.Popen([sys.executable, "-c", code, str(path)],
                                      stdout=subprocess.PIPE, text=True)  # fmt: skip
            assert second.stdout is not None and second.stdout.readline() == "locked\n"
            assert len(holders_by_name(tmp_path)[path.name]) == 2
            deadline = time.monotonic() + 10
            while not sampler.overlaps:
                assert time.monotonic() < deadline, "the sampler missed the overlap"
                time.sleep(0.01)
        assert sampler.overlaps[0][0] == path.name
    finally:
        for child in (first, second):
            if child is not None:
                child.kill()
                child.wait()
                assert child.stdout is not None
                child.stdout.close()


DOCKER_RUN = """\
set -e
mount --rbind /tmp {old_tmp}
mount -t tmpfs tmpfs /tmp
unset TMPDIR
{uv} pip install --python {python} --break-system-packages --dry-run --offline \\
    --find-links {wheels} tinydep > /dev/null 2>&1 || true
touch /tmp/uv-00000000000000aa.lock && chown 65534:65534 /tmp/uv-00000000000000aa.lock
echo "before: $(ls /tmp | grep -c '^uv-')"
PYTHONPATH={app} {uvsweep_python} -m uvsweep clean --all-users
echo "rc=$?"
echo "after: $(ls -A /tmp | grep -c '^uv-' || true)"
"""


def test_dockerfile_one_liner_leaves_no_lock_in_the_layer(tmp_path: Path, uv: str) -> None:
    need(os.geteuid() == 0, "the Dockerfile case runs as root (as a RUN step does)")
    need(
        subprocess.run(["unshare", "-m", "true"], capture_output=True, check=False).returncode == 0,
        "unshare (util-linux) is needed to give the step a private /tmp, as a layer has",
    )
    need(os.path.isdir("/mnt"), "an empty /mnt to keep the real /tmp reachable under")
    wheels = tmp_path / "wheels"
    make_wheel(wheels)

    def moved(path: object) -> str:
        # inside the step /tmp is a fresh tmpfs; what lived there (this checkout, pytest's tmp
        # dirs) is reached through /mnt, where the step's namespace binds the real /tmp
        text = str(path)
        return "/mnt" + text[4:] if text == "/tmp" or text.startswith("/tmp/") else text

    script = DOCKER_RUN.format(
        old_tmp="/mnt", uv=moved(uv), python=moved(base_python()), wheels=moved(wheels),
        app=moved(APP_DIR), uvsweep_python=moved(sys.executable),
    )  # fmt: skip
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_CACHE_DIR": moved(tmp_path / "cache")}
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True,
                          env=env, timeout=120, check=False)  # fmt: skip
    lines = done.stdout.splitlines()
    assert "before: 2" in lines, done.stdout + done.stderr  # the interpreter's lock and nobody's
    assert "rc=0" in lines, done.stdout + done.stderr
    assert lines[-1] == "after: 0", done.stdout + done.stderr
