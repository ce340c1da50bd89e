"""The tray's log file: rotated and small, and a log dir that cannot be written is no crash."""

from __future__ import annotations

from pathlib import Path

import pytest


def test_the_log_file_is_rotated_and_small(tmp_path: Path) -> None:
    import logging

    from uvsweep.tray import logfile

    path = tmp_path / "log" / "uvsweep.log"
    assert logfile.setup(str(path)) == str(path)
    try:
        log = logging.getLogger("uvsweep.tray")
        for n in range(4000):
            log.info("line %d %s", n, "x" * 200)
    finally:
        logfile.close()
    files = sorted(p.name for p in path.parent.iterdir())
    assert files == ["uvsweep.log", "uvsweep.log.1", "uvsweep.log.2"]
    assert all((path.parent / f).stat().st_size <= logfile.MAX_BYTES for f in files)
    assert "line 3999" in path.read_text()
    assert not [h for h in logging.getLogger("uvsweep").handlers
                if isinstance(h, logging.FileHandler)]  # fmt: skip


def test_a_log_file_that_cannot_be_written_is_said_not_fatal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from uvsweep.tray import logfile

    blocker = tmp_path / "file"
    blocker.write_text("")
    try:
        assert logfile.setup(str(blocker / "log" / "uvsweep.log")) is None
    finally:
        logfile.close()
    assert "cannot write the log file" in capsys.readouterr().err
