"""Which tray backend to use, and why: one chooser for the tray and `uvsweep doctor` alike.

An ordered list per OS, the first that works here wins: on Linux and the BSDs
StatusNotifierItem (our own, `tray/sni.py`) when a host is on the session bus, then pystray's
`appindicator` and `gtk` (PyGObject), then `xorg` (XEmbed). The `tray_backend` setting, then the
PYSTRAY_BACKEND environment variable, override the list. Nothing here imports pystray (it opens
the display as it loads) or GTK; the tests inject what would be probed.
"""
# ruff: noqa: PLC0415 - imports inside functions: only the path that needs a module pays for it

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping

from uvsweep import system

#: What each backend is, for people.
KNOWN = {
    "sni": "StatusNotifierItem over the session bus (KDE, GNOME with AppIndicator, XFCE, ...)",
    "appindicator": "pystray's AppIndicator backend (PyGObject and an AppIndicator typelib)",
    "gtk": "pystray's GTK backend (PyGObject and GTK 3)",
    "xorg": "XEmbed: no menu, a left click runs Clean now",
    "darwin": "the macOS menu bar",
    "win32": "the Windows notification area",
    "dummy": "no icon at all (tests)",
}
#: Linux and the BSDs: the first that works here is used; and why, when it is.
LINUX_ORDER = ("sni", "appindicator", "gtk", "xorg")
REASONS = {
    "sni": "a StatusNotifierWatcher is on the session bus",
    "appindicator": "no StatusNotifierItem host; PyGObject and an AppIndicator typelib are"
    " installed",
    "gtk": "no StatusNotifierItem host; PyGObject and GTK 3 are installed (no AppIndicator"
    " typelib)",
    "xorg": "no StatusNotifierItem host and no PyGObject (the `gtk` extra): XEmbed only, no menu",
}


class Choice:
    """A backend (`none`: no tray is possible here) and why it was chosen."""

    __slots__ = ("name", "why")

    def __init__(self, name: str, why: str) -> None:
        self.name = name
        self.why = why

    def __repr__(self) -> str:
        return f"Choice({self.name!r}, {self.why!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Choice) and (self.name, self.why) == (other.name, other.why)

    def __hash__(self) -> int:
        return hash((self.name, self.why))

    def __str__(self) -> str:
        return f"{self.name}: {self.why}"


def graphical_session(environ: Mapping[str, str] | None = None,
                      platform: str = sys.platform) -> str:  # fmt: skip
    """Why there is no graphical session, or "" when there is one (Linux and the BSDs)."""
    env = os.environ if environ is None else environ
    if platform in ("win32", "darwin"):
        return ""
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return ""
    return "no graphical session (neither DISPLAY nor WAYLAND_DISPLAY is set)"


def sni_host_present(environ: Mapping[str, str] | None = None) -> bool:
    """Whether a StatusNotifierItem host (a watcher) is on the session bus."""
    env = os.environ if environ is None else environ
    if not env.get("DBUS_SESSION_BUS_ADDRESS"):
        return False
    try:
        from uvsweep.tray import sni
    except ImportError:  # no dbus-fast (not Linux)
        return False
    return sni.registry_present(bus_address=env["DBUS_SESSION_BUS_ADDRESS"])


def gi_has(namespace: str, version: str) -> bool:
    """Whether PyGObject can load `namespace` at `version`."""
    try:
        import gi

        gi.require_version(namespace, version)
    except (ImportError, ValueError):
        return False
    return True


def _appindicator() -> bool:
    return gi_has("AyatanaAppIndicator3", "0.1") or gi_has("AppIndicator3", "0.1")


def _gtk() -> bool:
    return gi_has("Gtk", "3.0")


def choose(
    setting: str = "",
    environ: Mapping[str, str] | None = None,
    platform: str = sys.platform,
    *,
    probes: Mapping[str, Callable[[], bool]] | None = None,
) -> Choice:
    """The backend the tray uses here. `probes` (tests): name -> whether it works here."""
    env = os.environ if environ is None else environ
    unknown = ""
    for raw, source in ((setting, "the `tray_backend` setting"),
                        (env.get("PYSTRAY_BACKEND", ""), "PYSTRAY_BACKEND")):  # fmt: skip
        value = raw.strip()
        if not value:
            continue
        if value in KNOWN:
            return Choice(value, f"forced by {source}")
        unknown = unknown or f"{source} names no known backend ({value!r}); "
    if system.is_macos(platform):
        return Choice("darwin", unknown + "macOS")
    if system.is_windows(platform):
        return Choice("win32", unknown + "Windows")
    missing = graphical_session(env, platform)
    checks: dict[str, Callable[[], bool]] = {
        "sni": lambda: sni_host_present(env),
        "appindicator": _appindicator,
        "gtk": _gtk,
        "xorg": lambda: True,
    }
    checks.update(probes or {})
    for name in LINUX_ORDER:
        if missing and name != "sni":  # only StatusNotifierItem works without a display
            return Choice("none", unknown + missing + ", and no StatusNotifierItem host")
        if checks[name]():
            return Choice(name, unknown + REASONS[name])
    return Choice("none", unknown + "no tray backend works here")  # pragma: no cover - xorg
