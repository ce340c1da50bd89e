"""Red team: the keeper's log in the state dir, when root runs with another user's environment.

`su` (without `-l`) and `sudo -E` keep the caller's XDG_STATE_HOME. Root's keeper then logs into
a dir the caller owns, and `open(path, "a")` follows a symlink planted at `keeper.log`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import need, other_user_python
from tests.helpers import A
from tests.redteam.support import (
    CLEANER_WITH_LATECOMER,
    cleaner_env,
    keeper_pids,
    kill_keepers,
    read_pids,
    wait_for,
)

pytestmark = [
    pytest.mark.linux,
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux /proc"),
]


# Fixed; it was R12: keeper._log appends with open(path, 'a'), following a symlink at keeper.log in
# a state dir another user owns (root with that user's XDG_STATE_HOME): root appends to any file
# the user points it at
def test_root_keeper_never_follows_a_symlink_planted_as_its_log(
    shared_tmp: Path, tmp_path: Path
) -> None:
    found = other_user_python()
    need(found is not None, "root and the user nobody (setpriv, util-linux) to own the state dir")
    assert found is not None
    uid, gid, _python = found
    victim = tmp_path / "root-owned-config"
    victim.write_text("important = true\n")
    state = shared_tmp / "state"  # the other user's XDG_STATE_HOME
    (state / "uvsweep").mkdir(parents=True)
    (state / "uvsweep" / "keeper.log").symlink_to(victim)
    for path in (state, state / "uvsweep"):
        os.chown(path, uid, gid)
    os.lchown(state / "uvsweep" / "keeper.log", uid, gid)
    lockdir = tmp_path / "locks"
    lockdir.mkdir()
    (lockdir / A).touch()
    latecomers = tmp_path / "latecomers"
    before = set(keeper_pids())
    try:
        subprocess.run(
            [sys.executable, "-c", CLEANER_WITH_LATECOMER, "clean", "--dir", str(lockdir),
             "--ignore-running-uv"],
            capture_output=True, text=True, check=False, timeout=120,
            env={**cleaner_env(), "REDTEAM_LATECOMERS": str(latecomers),
                 "XDG_STATE_HOME": str(state)},
        )  # fmt: skip
        started = set(keeper_pids()) - before
        assert started, "a keeper took the handoff"
        # the keeper logs right after it took over; give it the time a loaded machine needs
        wait_for(lambda: victim.read_text() != "important = true\n", timeout=5, what="a log")
    except AssertionError as err:
        if "timed out waiting for a log" not in str(err):
            raise
    finally:
        for pid in read_pids(latecomers):
            os.kill(pid, signal.SIGKILL)
        kill_keepers(before)
    assert victim.read_text() == "important = true\n", "root appended its log to the victim"
