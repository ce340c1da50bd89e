"""The system-wide periodic clean: the systemd units verify, and their command does its job."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import APP_DIR, need

UNITS = Path(__file__).resolve().parents[2] / "packaging" / "linux" / "systemd"
SERVICE = UNITS / "uvsweep-clean.service"
TIMER = UNITS / "uvsweep-clean.timer"
INSTALLED = "/usr/local/bin/uvsweep"

pytestmark = [
    pytest.mark.integration,
    pytest.mark.linux,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="systemd units"),
]


def exec_start() -> list[str]:
    (line,) = [line for line in SERVICE.read_text().splitlines() if line.startswith("ExecStart=")]
    return shlex.split(line.removeprefix("ExecStart="))


def uvsweep_executable() -> str:
    found = Path(sys.executable).parent / "uvsweep"
    need(found.exists(), "the uvsweep entry point next to the interpreter (uv sync installs it)")
    return str(found)


def test_the_units_verify_with_systemd_analyze(tmp_path: Path) -> None:
    need(shutil.which("systemd-analyze") is not None, "systemd-analyze (Debian package systemd)")
    assert exec_start()[0] == INSTALLED
    # verify checks that ExecStart exists: point it at this checkout's entry point
    (tmp_path / SERVICE.name).write_text(
        SERVICE.read_text().replace(INSTALLED, uvsweep_executable())
    )
    shutil.copy(TIMER, tmp_path / TIMER.name)
    done = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / SERVICE.name), str(tmp_path / TIMER.name)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == "" and done.stderr.strip() == "", done.stdout + done.stderr


def test_the_hardening_the_readme_promises_is_there() -> None:
    text = SERVICE.read_text()
    for setting in (
        "ProtectSystem=strict", "PrivateNetwork=yes", "NoNewPrivileges=yes",
        "ReadWritePaths=/tmp /var/tmp", "PrivateTmp=no", "KillMode=process",
    ):  # fmt: skip
        assert f"\n{setting}\n" in text, setting
    assert "\nProtectProc=" not in text and "\nProcSubset=" not in text, "it must see every process"


def test_the_services_command_cleans_every_users_old_orphans_in_a_private_tmp() -> None:
    need(os.geteuid() == 0, "root, for a private /tmp in a mount namespace (run the suite as root)")
    need(shutil.which("unshare") is not None, "unshare (Debian package util-linux)")
    argv = [uvsweep_executable(), *exec_start()[1:]]
    old = time.time() - 2 * 3600
    # the checkout and its venv may live under /tmp themselves: bound back in after the tmpfs
    here = {str(Path(APP_DIR).parent), str(Path(sys.executable).parent.parent)}
    back = " ".join(shlex.quote(d) for d in sorted(here) if d.startswith("/tmp/"))
    script = f"""
        set -e
        keep=$(mktemp -d /dev/shm/uvsweep-test-keep.XXXXXX)
        mount --bind /tmp "$keep"
        mount -t tmpfs tmpfs /tmp && mount -t tmpfs tmpfs /var/tmp
        for dir in {back}; do mkdir -p "$dir" && mount --bind "$keep/${{dir#/tmp/}}" "$dir"; done
        touch -d @{old:.0f} /tmp/uv-00000000000000aa.lock
        touch -d @{old:.0f} /tmp/uv-00000000000000cc.lock
        chown 65534 /tmp/uv-00000000000000cc.lock
        touch /tmp/uv-00000000000000dd.lock
        set +e
        {shlex.join(argv)}; echo rc=$?
        ls /tmp /var/tmp
        umount "$keep" && rmdir "$keep"
    """
    env = {**os.environ, "PYTHONPATH": APP_DIR, "XDG_STATE_HOME": "/var/tmp/state",
           "UVSWEEP_ACCEPT_HIDDEN_PROCESSES": "1"}  # fmt: skip
    # a PID namespace of its own too, so uv processes elsewhere on this machine do not make the
    # command wait (its --wait would); inside, nothing outside can have these files open
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "--pid", "--fork", "--mount-proc",
         "sh", "-c", script],
        capture_output=True, text=True, env=env, check=False, timeout=120,
    )  # fmt: skip
    assert "rc=0" in done.stdout, done.stdout + done.stderr
    left = done.stdout.split()
    assert "uv-00000000000000dd.lock" in left, "younger than --min-age: stays"
    for name in (
        "uv-00000000000000aa.lock",
        "uv-00000000000000bb.lock",
        "uv-00000000000000cc.lock",
    ):
        assert name not in left, done.stdout
