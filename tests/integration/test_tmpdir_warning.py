"""`TMPDIR` set but empty or relative: uv then locks in its working dir, and uvsweep says so."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import uvsweep
from uvsweep.watcher import Watcher

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("value", ["", "rel/tmp"])
def test_scan_warns_on_stderr(lockdir: Path, value: str) -> None:
    done = uvsweep("scan", "--dir", str(lockdir), env={"TMPDIR": value})
    assert done.returncode == 0, done.stderr
    assert "warning: TMPDIR" in done.stderr and "working dir" in done.stderr
    done = uvsweep("scan", "--dir", str(lockdir), "--json", env={"TMPDIR": str(lockdir)})
    assert "TMPDIR" not in done.stderr


def test_doctor_lists_it_under_notes() -> None:
    done = uvsweep("doctor", "--json", env={"TMPDIR": ""})
    assert done.returncode == 0, done.stderr
    notes = json.loads(done.stdout)["notes"]
    assert any("TMPDIR is set but empty" in note for note in notes)


def test_the_watcher_that_feeds_the_tray_warns(
    lockdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TMPDIR", "")
    heard: list[str] = []
    watcher = Watcher([str(lockdir)], label=False, on_warning=heard.append)
    watcher.start()
    try:
        assert any("TMPDIR is set but empty" in message for message in watcher.warnings)
        assert heard == watcher.warnings
    finally:
        watcher.stop()
