"""The tray's log: a small rotated file in the platformdirs log dir (a tray started at login has
no terminal to show its stderr), named by `uvsweep doctor` and opened by the "Open log" item.
"""
# ruff: noqa: PLC0415 - imports inside functions: only the path that needs a module pays for it

from __future__ import annotations

import logging
import os
import sys
from typing import TextIO

from uvsweep import system

#: Rotated at this size, keeping this many old files: at most ~0.75 MB in all.
MAX_BYTES = 256 * 1024
BACKUPS = 2
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RotatingFile(logging.FileHandler):
    """Appends to `path`; a record that would take it past `max_bytes` first moves it to
    `path.1` (and `.1` to `.2`, ..., keeping `backups` of them), as the standard library's
    RotatingFileHandler does. Its own, so the long-running tray does not load `logging.handlers`
    (and `pickle`, `queue` and the socket handlers with it) for this alone."""

    def __init__(self, path: str, max_bytes: int, backups: int) -> None:
        super().__init__(path, mode="a", encoding="utf-8")
        self.max_bytes = max_bytes
        self.backups = backups

    def emit(self, record: logging.LogRecord) -> None:
        try:
            size = len((self.format(record) + self.terminator).encode("utf-8", "replace"))
            stream = self.stream
            if stream is not None and stream.tell() > 0 and stream.tell() + size > self.max_bytes:
                self._rotate(stream)
        except Exception:  # noqa: BLE001 - logging's own way: said on stderr, never raised
            self.handleError(record)
            return
        super().emit(record)

    def _rotate(self, stream: TextIO) -> None:
        stream.close()
        base = self.baseFilename
        try:
            for index in range(self.backups - 1, 0, -1):
                if os.path.exists(f"{base}.{index}"):
                    os.replace(f"{base}.{index}", f"{base}.{index + 1}")
            if self.backups > 0:
                os.replace(base, f"{base}.1")
        finally:
            self.stream = self._open()  # the same file again if it could not be moved


def log_dir() -> str:
    """platformdirs' `user_log_dir("uvsweep")` (XDG_STATE_HOME/uvsweep/log on Linux)."""
    from platformdirs import user_log_dir  # only the tray and doctor need it

    return user_log_dir("uvsweep", appauthor=False)


def log_path() -> str:
    """Where the tray writes its log."""
    return os.path.join(log_dir(), "uvsweep.log")


def setup(path: str | None = None, level: int = logging.INFO) -> str | None:
    """Send uvsweep's log records (INFO and up) to the rotated file, and warnings also to
    stderr as before; the file's path, or None (said on stderr) when it cannot be written."""
    logger = logging.getLogger("uvsweep")
    logger.setLevel(level)
    if not any(getattr(h, "_uvsweep_stderr", False) for h in logger.handlers):
        stderr = logging.StreamHandler(sys.stderr)
        stderr.setLevel(logging.WARNING)
        stderr.setFormatter(logging.Formatter("%(message)s"))
        stderr._uvsweep_stderr = True  # type: ignore[attr-defined]
        logger.addHandler(stderr)
    path = path or log_path()
    try:
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        handler = RotatingFile(path, MAX_BYTES, BACKUPS)
    except OSError as err:
        logger.warning("cannot write the log file %s: %s", path, system.reason(err))
        return None
    handler.setFormatter(logging.Formatter(FORMAT))
    logger.addHandler(handler)
    return path


def close() -> None:
    """Remove and close the handlers `setup()` added."""
    logger = logging.getLogger("uvsweep")
    for handler in list(logger.handlers):
        if isinstance(handler, RotatingFile) or getattr(handler, "_uvsweep_stderr", False):
            logger.removeHandler(handler)
            handler.close()
    logger.setLevel(logging.NOTSET)
