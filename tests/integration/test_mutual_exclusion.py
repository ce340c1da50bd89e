"""Mutual exclusion under fire: uv-style lockers on a few names while a sweeper loops.

uvsweep's protocol must show zero overlaps while it really removes files; a naive `rm` and a
try-lock-then-unlink sweeper (systemd-tmpfiles' method) in the same harness must show overlaps,
which proves the harness can fail.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.uv_processes import Start, real_uv, start_parked

HARNESS = Path(__file__).resolve().parents[1] / "mutex_harness.py"

pytestmark = [pytest.mark.integration, pytest.mark.linux, pytest.mark.slow]


def run_harness(tmp_path: Path, sweeper: str, sections: int, workers: int = 4) -> dict[str, Any]:
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import mutex_harness as h;"
        " print(json.dumps(h.run(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))))"
    )
    tmp_path.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(
        [sys.executable, "-c", code, str(HARNESS.parent), str(tmp_path), sweeper,
         str(sections), str(workers)],
        capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    result: dict[str, Any] = json.loads(out.stdout)
    return result


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the harness uses renameat2")
def test_uvsweep_sweeper_never_breaks_mutual_exclusion(tmp_path: Path) -> None:
    result = run_harness(tmp_path, "uvsweep", sections=10_000)
    assert result["sections"] >= 10_000
    assert result["overlaps"] == 0, result
    assert result["removed"] > 100, f"the sweeper must really remove files: {result}"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the harness uses renameat2")
def test_two_latecomers_at_every_unlink_never_break_mutual_exclusion(tmp_path: Path) -> None:
    result = run_harness(tmp_path, "latecomers", sections=10_000)
    assert result["sections"] >= 10_000
    assert result["overlaps"] == 0, result
    # every unlink the latecomers are free for becomes a handoff (their opens wait on the write
    # lease kept from before the unlink, and break it: `let_go` hands the file over), so
    # removals are fewer than in the plain run (here the 10,000 sections take ~4.5 s: ~300
    # removals, ~250 handoffs, ~430 latecomer sections; with `let_go`'s look at the lease
    # disabled, 655 overlaps in one run)
    assert result["removed"] > 20, f"the sweeper must really remove files: {result}"
    assert result["handoffs"] > 10 and result["late_sections"] > 10, (
        f"the latecomers must really race the unlinks: {result}"
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the harness uses renameat2")
@pytest.mark.parametrize("sweeper", ["rm", "trylock"])
def test_naive_sweepers_break_it(tmp_path: Path, sweeper: str) -> None:
    result = run_harness(tmp_path, sweeper, sections=10_000)
    assert result["removed"] > 0
    assert result["overlaps"] > 0, f"the harness must catch a {sweeper} sweeper: {result}"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the harness uses renameat2")
def test_through_the_gate_beside_parked_uv(
    tmp_path: Path,
    uv_env: dict[str, str],
    start: Start,
) -> None:
    # real uv processes that run a command and only wait for it: the gate lets the sweeper work
    uv = real_uv()
    for how in ("run", "uvx"):
        (tmp_path / how).mkdir()
    parked = [start_parked(how, uv, start, tmp_path / how, uv_env) for how in ("run", "uvx")]
    result = run_harness(tmp_path / "harness", "gated", sections=10_000)
    assert all(proc.poll() is None for proc in parked)
    assert result["sections"] >= 10_000
    assert result["overlaps"] == 0, result
    # (someone else's active uv on a shared machine may stop some passes; ours never)
    assert not {proc.pid for proc in parked} & set(result["blockers"]), result
    assert result["removed"] > 0, f"parked uv must not stop the sweeper: {result}"
