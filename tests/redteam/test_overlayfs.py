"""Red team: lock files on overlayfs (a container's /tmp, or a lock file baked into an image).

`/proc/locks` prints the overlay superblock's device, while `st_dev` of a file on an overlay whose
layers are on different file systems is another one, so before uvsweep holds a lock of its own
there the device is "unsure" and the entry is ignored. The try-lock still keeps a held file; but
`clean` then says nobody visible holds it, while `scan` names the holder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import APP_DIR, need
from tests.helpers import A

pytestmark = [
    pytest.mark.linux,
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc"),
]


# Fixed; it was R17: on overlayfs (layers on different file systems) pre_lock_use ignores the
# holder's entry (device unsure) and the try-lock's skip says 'locked by a process the OS does not
# show', while scan names the holder: the same file, two stories
def test_clean_names_the_holder_of_a_file_on_overlayfs_as_scan_does(tmp_path: Path) -> None:
    need(os.geteuid() == 0, "namespaces with mounts need root (run the suite as root)")
    need(shutil.which("unshare") is not None, "unshare (Debian package util-linux)")
    need(shutil.which("flock") is not None, "flock (Debian package util-linux)")
    lower, upper_fs, merged = tmp_path / "lower", tmp_path / "upperfs", tmp_path / "merged"
    for path in (lower, upper_fs, merged):
        path.mkdir()
    (lower / A).touch()  # baked into the image's layer
    py = sys.executable
    script = (
        f"mount -t tmpfs tmpfs {upper_fs} && mkdir {upper_fs}/u {upper_fs}/w && "
        f"mount -t overlay overlay -o lowerdir={lower},upperdir={upper_fs}/u,"
        f"workdir={upper_fs}/w {merged} || exit 99; "
        f'{py} -c \'import fcntl, os, time; fd = os.open("{merged}/{A}", os.O_RDWR);'
        " fcntl.flock(fd, fcntl.LOCK_EX); time.sleep(60)' >/dev/null 2>&1 & holder=$!; "
        f"while flock -n {merged}/{A} true; do sleep 0.02; done; "
        f"echo holder=$holder; "
        f"{py} -m uvsweep scan --dir {merged} --json --no-labels; echo; echo ==; "
        f"{py} -m uvsweep clean --dir {merged} --json --ignore-running-uv; "
        "kill $holder"
    )
    env = {**os.environ, "PYTHONPATH": APP_DIR}
    out = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        capture_output=True, text=True, env=env, check=False, timeout=120,
    )  # fmt: skip
    if out.returncode == 99:
        need(False, "overlayfs mounts")
    head, _, rest = out.stdout.partition("\n")
    holder = head.removeprefix("holder=")
    scanned, _, cleaned = rest.partition("\n==\n")
    (item,) = json.loads(scanned)["files"]
    (skipped,) = json.loads(cleaned)["skipped"]
    assert item["state"] == "held" and skipped["state"] == "held", out.stdout + out.stderr
    assert any(str(h["pid"]) == holder for h in item["holders"]), "scan names the holder"
    assert f"pid {holder} " in skipped["reason"], skipped["reason"]
