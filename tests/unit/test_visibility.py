"""What uvsweep can see of other processes: PID namespaces and /proc's hidepid."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import APP_DIR, need
from uvsweep import visibility

MOUNTINFO = (
    "22 27 0:21 / /proc rw,relatime - proc proc rw\n"
    "30 22 0:40 / /sys rw - sysfs sysfs rw\n"
    "41 22 0:44 / /proc rw,nosuid - proc proc rw,hidepid=invisible,gid=4242\n"
)


def test_the_last_proc_mount_at_the_path_gives_the_options() -> None:
    options = visibility.proc_mount_options("/proc", MOUNTINFO)
    assert options["hidepid"] == "invisible"
    assert options["gid"] == "4242"


def test_a_proc_mount_elsewhere_is_not_ours() -> None:
    text = (
        "41 22 0:44 / /mnt/proc rw - proc proc rw,hidepid=2\n22 27 0:21 / /proc rw - proc proc rw\n"
    )
    assert "hidepid" not in visibility.proc_mount_options("/proc", text)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_this_process_sees_everything_in_the_initial_namespace_without_hidepid() -> None:
    found = visibility.detect()
    if found.pid_namespace == "child" or found.hidepid:
        pytest.skip("the suite itself runs in a child PID namespace or under hidepid")
    assert found.complete
    assert found.notes == ()
    assert found.own_pid == os.getpid()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_hidepid_hides_other_users_unless_root_or_in_its_group() -> None:
    mountinfo = "22 27 0:21 / /proc rw - proc proc rw,hidepid=2\n"
    found = visibility.detect(mountinfo=mountinfo, euid=65534)
    assert not found.sees_all_users
    assert not found.complete
    assert any("hidepid=2" in note for note in found.notes)
    assert visibility.detect(mountinfo=mountinfo, euid=0).sees_all_users
    in_group = mountinfo.replace("hidepid=2", f"hidepid=2,gid={os.getegid()}")
    assert visibility.detect(mountinfo=in_group, euid=65534).sees_all_users


@pytest.mark.linux
def test_a_child_pid_namespace_is_detected_with_its_own_proc_and_with_the_parents() -> None:
    need(os.geteuid() == 0, "creating a PID namespace needs root (run the suite as root)")
    need(shutil.which("unshare") is not None, "unshare (Debian package util-linux)")
    code = (
        "import os; from uvsweep import visibility as v; d = v.detect();"
        " print(d.pid_namespace, d.sees_all_namespaces, d.own_pid == os.getpid(), len(d.notes))"
    )
    env = {**os.environ, "PYTHONPATH": APP_DIR}
    own = subprocess.run(
        ["unshare", "--pid", "--fork", "--mount-proc", sys.executable, "-c", code],
        capture_output=True, text=True, env=env, check=True, timeout=30,
    )  # fmt: skip
    assert own.stdout.split() == ["child", "False", "True", "1"]
    # the parent's /proc: our pid there is not os.getpid(), and the namespace is still a child,
    shared = subprocess.run(
        ["unshare", "--pid", "--fork", sys.executable, "-c", code],
        capture_output=True, text=True, env=env, check=True, timeout=30,
    )  # fmt: skip
    # ...but that /proc lists every process (if the suite's own does), so nothing is hidden
    if visibility.detect().sees_all_namespaces:
        assert shared.stdout.split() == ["child", "True", "False", "0"]
    else:
        assert shared.stdout.split() == ["child", "False", "False", "1"]
