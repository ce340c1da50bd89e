"""`uvsweep doctor`: what uvsweep sees of this machine, and why it chose what it chose.

Nothing here changes anything, and nothing imports pystray (which opens the display as it
loads): the tray backend comes from the chooser the tray itself uses (`tray/backends.py`).
"""
# ruff: noqa: PLC0415 - imports inside functions: only the path that needs a module pays for it

from __future__ import annotations

import contextlib
import os
import platform
import sys

from uvsweep import __version__, system
from uvsweep.model import hidden_processes_text, plural

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def tray_backend(setting: str, environ: dict[str, str] | None = None,
                 os_name: str = sys.platform) -> tuple[str, str]:  # fmt: skip
    """(the backend the tray would use, why): the tray's own chooser."""
    from uvsweep.tray.backends import choose

    choice = choose(setting, environ, os_name)
    return choice.name, choice.why


def notification_service(
    timeout: float = 2.0, platform: str = sys.platform, executable: str = sys.executable
) -> str:
    """Who answers on the session bus for notifications, or why nobody does."""
    if system.is_macos(platform) and ".app/Contents/MacOS/" not in executable:
        # desktop-notifier needs an app bundle there; a plain Python gets its dummy backend
        return "none: macOS shows notifications only for an app bundle; the tray's own, or the log"
    if not system.is_linux(platform):
        return "the OS notification center (through desktop-notifier)"
    if not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return "none: no session bus (DBUS_SESSION_BUS_ADDRESS is not set); the log instead"
    import asyncio

    async def ask() -> str:
        from dbus_fast import Message
        from dbus_fast.aio import MessageBus

        bus = await MessageBus().connect()
        try:
            reply = await bus.call(Message(
                destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus", member="NameHasOwner", signature="s",
                body=["org.freedesktop.Notifications"],
            ))  # fmt: skip
            owned = bool(reply.body and reply.body[0]) if reply is not None else False
        finally:
            bus.disconnect()
            with contextlib.suppress(Exception):  # closed for good: no socket left to the GC
                await bus.wait_for_disconnect()  # type: ignore[no-untyped-call]
        if owned:
            return "org.freedesktop.Notifications is served (desktop-notifier)"
        return "none: no notification server on the session bus; the tray's own, or the log"

    try:
        return asyncio.run(asyncio.wait_for(ask(), timeout))
    except Exception as err:  # noqa: BLE001 - any bus problem is an answer here
        return f"none: the session bus did not answer ({type(err).__name__}: {err})"


def _read(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            return handle.read().decode().strip()
    except OSError as err:
        return f"unreadable ({err.strerror})"


def report() -> dict[str, Any]:
    """Everything doctor says, as data."""
    from uvsweep import autostart, cleaner, scanner, settings

    config = settings.load()
    dirs = scanner.resolve_dirs(None, config)
    snapshot = scanner.scan(dirs, settings=config, label=False)
    gate = cleaner.uv_gate()
    backend, why = tray_backend(config.tray_backend)
    try:
        start = autostart.for_platform().status()
        start_text = f"{'enabled' if start.enabled else 'disabled'} ({start.where})"
    except OSError as err:
        start_text = f"unknown ({err})"
    created = "" if os.path.exists(settings.config_path()) else " (not created: defaults)"
    hidden = "nothing"
    if snapshot.hidden_processes:
        hidden = hidden_processes_text(snapshot.hidden_processes, os.geteuid() == 0)
        hidden += ": their open files cannot be seen"
    info: dict[str, Any] = {
        "uvsweep": __version__,
        "python": f"{platform.python_version()} ({sys.executable})",
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
        "settings": settings.config_path() + created,
        "settings warnings": list(config.warnings),
        "dirs": [_dir_line(d, snapshot) for d in dirs],
        "summary": snapshot.summary(),
        "tray backend": f"{backend}: {why}",
        "tray log": _log_file(),
        "notifications": notification_service(),
        "start at login": start_text,
        "uv processes": [
            f"pid {p.pid} {p.user or '?'}: {' '.join(p.cmdline or [p.name or '?'])}"
            f" [{p.phase}: {p.phase_reason}]"
            for p in gate.processes
        ],
        "hidden": hidden,
        "keepers": keepers(snapshot.files),
        "keeper log": _keeper_log(),
        "uv gate": list(gate.notes) or "sees every uv process",
        "notes": list(snapshot.notes),
    }
    if system.LINUX:
        info["inotify"] = (
            f"max_user_watches={_read('/proc/sys/fs/inotify/max_user_watches')}, "
            f"max_user_instances={_read('/proc/sys/fs/inotify/max_user_instances')}"
        )
        readable = os.access("/proc/locks", os.R_OK)
        info["lock table"] = "/proc/locks " + ("readable" if readable else "unreadable")
    return info


def keepers(files: Any) -> list[str]:
    """The lock files a uvsweep keeper holds (Unix or Windows), as `path: pid N`."""
    return [
        f"{item.path}: pid {', '.join(str(h.pid) for h in item.holders if h.pid is not None)}"
        for item in files
        if item.reason.startswith("held by a uvsweep keeper")
    ]


def _keeper_log() -> str:
    from uvsweep.remove.handoff import keeper_log_path

    path = keeper_log_path()
    if path is None:
        return "none (no state dir)"
    return path + ("" if os.path.exists(path) else " (not written yet)")


def _log_file() -> str:
    from uvsweep.tray.logfile import log_path

    path = log_path()
    return path + ("" if os.path.exists(path) else " (not written yet)")


def _dir_line(directory: str, snapshot: Any) -> str:
    for error in snapshot.errors:
        if error.path == directory:
            return f"{directory}: {error.message}"
    count = sum(1 for f in snapshot.files if os.path.dirname(f.path) == directory)
    return f"{directory}: {plural(count, 'uv lock file')}"


def text(info: dict[str, Any]) -> str:
    """The report as `key: value` lines; lists indented under their key."""
    lines = []
    for key, value in info.items():
        if isinstance(value, list):
            lines.append(f"{key}:" + ("" if value else " none"))
            lines += [f"  {item}" for item in value]
        elif isinstance(value, dict):
            lines.append(f"{key}: " + ", ".join(f"{k} {v}" for k, v in value.items()))
        else:
            lines.append(f"{key}: {value}")
    return "\n".join(lines)
