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

import pytest

HARNESS = Path(__file__).resolve().parents[1] / "mutex_harness.py"

pytestmark = [pytest.mark.integration, pytest.mark.linux, pytest.mark.slow]


def run_harness(tmp_path: Path, sweeper: str, sections: int, workers: int = 4) -> dict[str, int]:
    code = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); import mutex_harness as h;"
        " print(json.dumps(h.run(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(HARNESS.parent), str(tmp_path), sweeper,
         str(sections), str(workers)],
        capture_output=True, text=True, timeout=600, check=True,
    )  # fmt: skip
    result: dict[str, int] = json.loads(out.stdout)
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
    assert result["removed"] > 100, f"the sweeper must really remove files: {result}"
    assert result["handoffs"] > 10 and result["late_sections"] > 10, (
        f"the latecomers must really race the unlinks: {result}"
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the harness uses renameat2")
@pytest.mark.parametrize("sweeper", ["rm", "trylock"])
def test_naive_sweepers_break_it(tmp_path: Path, sweeper: str) -> None:
    result = run_harness(tmp_path, sweeper, sections=10_000)
    assert result["removed"] > 0
    assert result["overlaps"] > 0, f"the harness must catch a {sweeper} sweeper: {result}"
