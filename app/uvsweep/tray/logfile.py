"""The tray's log: a small rotated file in the platformdirs log dir (a tray started at login has
no terminal to show its stderr), named by `uvsweep doctor` and opened by the "Open log" item.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys

#: Rotated at this size, keeping this many old files: at most ~0.75 MB in all.
MAX_BYTES = 256 * 1024
BACKUPS = 2
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_dir() -> str:
    """platformdirs' `user_log_dir("uvsweep")` (XDG_STATE_HOME/uvsweep/log on Linux)."""
    from platformdirs import user_log_dir  # noqa: PLC0415 - only the tray and doctor need it

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
        handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
        )
    except OSError as err:
        logger.warning("cannot write the log file %s: %s", path, err.strerror or err)
        return None
    handler.setFormatter(logging.Formatter(FORMAT))
    logger.addHandler(handler)
    return path


def close() -> None:
    """Remove and close the handlers `setup()` added."""
    logger = logging.getLogger("uvsweep")
    for handler in list(logger.handlers):
        if isinstance(handler, logging.handlers.RotatingFileHandler) or getattr(
            handler, "_uvsweep_stderr", False
        ):
            logger.removeHandler(handler)
            handler.close()
    logger.setLevel(logging.NOTSET)
