"""Start at login, per OS: an XDG autostart entry, a LaunchAgent, or the HKCU Run key.

Each writer puts the command of the *installed* uvsweep (a frozen app, the `uv tool`/pipx shim or
the venv's script, resolved when it is enabled) into the OS's own place, and reads back the real
state from there, including a user's switch elsewhere (GNOME's `X-GNOME-Autostart-enabled`, Task
Manager's StartupApproved on Windows). The OS calls sit behind small seams so the macOS and
Windows writers are tested anywhere.
"""
# ruff: noqa: PLC0415 - imports inside functions: only the path that needs a module pays for it

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

from uvsweep import system

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

APP_ID = "dev.uvsweep.tray"  # LaunchAgent label and reverse-DNS id
RUN_VALUE = "uvsweep"  # the value's name under HKCU\...\Run


class Status:
    """Whether uvsweep starts at login, where that is recorded, and anything worth saying."""

    def __init__(self, enabled: bool, where: str, detail: str = "") -> None:
        self.enabled, self.where, self.detail = enabled, where, detail

    def __repr__(self) -> str:
        return f"Status(enabled={self.enabled}, where={self.where!r}, detail={self.detail!r})"


def installed_command(
    executable: str = sys.executable,
    frozen: bool = bool(getattr(sys, "frozen", False)),
    which: Callable[[str], str | None] = shutil.which,
    platform: str = sys.platform,
) -> list[str]:
    """How to start the tray app as installed: never a path inside a temporary environment.

    ValueError when this uvsweep runs from one (`uvx uvsweep`: uv's cache, which `uv cache clean`
    empties).
    """
    if "/AppTranslocation/" in executable:
        raise ValueError(
            "uvsweep runs from a temporary copy macOS made of a downloaded app; move"
            " uvsweep.app to /Applications, open it from there, then enable autostart"
        )
    if "archive-v" in executable.replace("\\", "/") and not frozen:
        raise ValueError(
            "this uvsweep runs from uvx's temporary environment; install it for good first"
            " (`uv tool install uvsweep`), then run `uvsweep autostart enable`"
        )
    directory = os.path.dirname(executable)
    if system.is_windows(platform):
        # the windowed twin (`uvsweepw.exe`: the frozen build's, or the wheel's gui-script), so
        # no console window opens at login; closing one would end the tray
        windowed = os.path.join(directory, "uvsweepw.exe")
        if os.path.isfile(windowed):
            return [os.path.abspath(windowed), "tray"]
    if frozen:
        return [executable]
    script = "uvsweep.exe" if system.is_windows(platform) else "uvsweep"
    beside = os.path.join(directory, script)
    if os.path.isfile(beside):
        return [os.path.abspath(beside), "tray"]
    found = (which("uvsweepw") if system.is_windows(platform) else None) or which("uvsweep")
    if found:
        return [os.path.abspath(found), "tray"]
    return [os.path.abspath(executable), "-m", "uvsweep", "tray"]


class Autostart(ABC):
    """One OS's way of starting a program at login."""

    @abstractmethod
    def status(self) -> Status:
        """The real state, read from the OS."""

    @abstractmethod
    def enable(self, command: Sequence[str]) -> Status:
        """Start `command` at every login from now on."""

    @abstractmethod
    def disable(self) -> Status:
        """Stop starting it at login."""


# ---- Linux and the BSDs: XDG autostart ---------------------------------------------------------


def desktop_quote(argument: str) -> str:
    """One `Exec=` argument, quoted as the Desktop Entry spec says."""
    reserved = set(" \t\n\"'\\><~|&;$*?#()`")
    if argument and not (set(argument) & reserved):
        return argument.replace("%", "%%")
    escaped = "".join("\\" + ch if ch in '"`$\\' else ch for ch in argument)
    return '"' + escaped.replace("%", "%%") + '"'


def _xdg_home(env: Any, variable: str, fallback: str) -> str:
    """`$XDG_CONFIG_HOME`/`$XDG_DATA_HOME` if set to an absolute path (the spec ignores relative
    ones), else `~/<fallback>`."""
    value: str = env.get(variable, "").strip()
    if value and os.path.isabs(value):
        return value
    return os.path.join(env.get("HOME") or os.path.expanduser("~"), fallback)


#: The sizes of the hicolor icons uvsweep ships (`assets/hicolor`, the wheel, the Linux bundle).
ICON_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)
ICON_NAME = "uvsweep.png"


def shipped_icons(
    executable: str = sys.executable, frozen: bool = bool(getattr(sys, "frozen", False))
) -> str | None:
    """The hicolor tree this uvsweep ships: the wheel's `uvsweep/icons/hicolor`, the Linux
    bundle's `share/icons/hicolor` beside its executable, or a checkout's `assets/hicolor`."""
    here = os.path.dirname(os.path.abspath(__file__))
    candidates = [os.path.join(here, "icons", "hicolor")]
    if frozen:
        candidates.append(os.path.join(os.path.dirname(executable), "share", "icons", "hicolor"))
    candidates.append(os.path.join(os.path.dirname(os.path.dirname(here)), "assets", "hicolor"))
    for tree in candidates:
        if os.path.isfile(os.path.join(tree, "256x256", "apps", ICON_NAME)):
            return tree
    return None


class UserIcons:
    """uvsweep's icon in the user's hicolor theme, `$XDG_DATA_HOME/icons/hicolor`, where menus
    and autostart entries find it by name, and by the absolute path the entries carry."""

    def __init__(self, environ: Any = None, source: str | None = None) -> None:
        env = os.environ if environ is None else environ
        self.root = os.path.join(
            _xdg_home(env, "XDG_DATA_HOME", ".local/share"), "icons", "hicolor"
        )
        self.source = source

    def path(self, size: int = 256) -> str:
        return os.path.join(self.root, f"{size}x{size}", "apps", ICON_NAME)

    def install(self) -> str | None:
        """Copy every shipped size in; the 256 px icon's absolute path, or None when this
        uvsweep ships no icon (the entry then names `uvsweep`, for a theme that has it)."""
        source = self.source or shipped_icons()
        if source is None:
            return None
        for size in ICON_SIZES:
            shipped = os.path.join(source, f"{size}x{size}", "apps", ICON_NAME)
            if os.path.isfile(shipped):
                with open(shipped, "rb") as handle:
                    data = handle.read()
                os.makedirs(os.path.dirname(self.path(size)), exist_ok=True)
                _write_atomically(self.path(size), data)
        return self.path() if os.path.isfile(self.path()) else None

    def remove(self) -> None:
        """Take uvsweep's icons out of the theme again."""
        for size in ICON_SIZES:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.path(size))


def _read_entry(path: str) -> dict[str, str] | None:
    """A .desktop file's `[Desktop Entry]` keys; None if it does not exist, {} if unreadable."""
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError):
        return {}
    found: dict[str, str] = {}
    section = ""
    for line in lines:
        stripped = line.strip()
        if stripped.startswith("["):
            section = stripped
        elif section == "[Desktop Entry]" and "=" in stripped:
            key, value = stripped.split("=", 1)
            found[key.strip()] = value.strip()
    return found


def desktop_entry(command: Sequence[str], icon: str | None, *extra: str) -> str:
    """A `.desktop` file that starts `command`, with `icon` (an absolute path) or `uvsweep`."""
    return "\n".join(
        [
            "[Desktop Entry]",
            "Type=Application",
            "Name=uvsweep",
            "GenericName=uv lock file cleaner",
            "Comment=Find and safely remove stale uv lock files",
            "Exec=" + " ".join(desktop_quote(part) for part in command),
            f"Icon={icon or 'uvsweep'}",
            "Terminal=false",
            "Categories=Development;",
            *extra,
            "",
        ]
    )


class XdgAutostart(Autostart):
    """`$XDG_CONFIG_HOME/autostart/uvsweep.desktop`, its icon in the user's hicolor theme."""

    def __init__(self, environ: Any = None, icons: str | None = None) -> None:
        env = os.environ if environ is None else environ
        base = _xdg_home(env, "XDG_CONFIG_HOME", ".config")
        self.path = os.path.join(base, "autostart", "uvsweep.desktop")
        self.environ = env
        self.icons = UserIcons(env, icons)

    def _entries(self) -> dict[str, str] | None:
        return _read_entry(self.path)

    def status(self) -> Status:
        """See `Autostart`."""
        entries = self._entries()
        if entries is None:
            return Status(enabled=False, where=self.path, detail="no autostart entry")
        if entries.get("Hidden", "").lower() == "true":
            return Status(enabled=False, where=self.path, detail="the entry is hidden")
        if entries.get("X-GNOME-Autostart-enabled", "true").lower() == "false":
            return Status(enabled=False, where=self.path, detail="turned off in the session")
        return Status(enabled=True, where=self.path, detail=entries.get("Exec", ""))

    def enable(self, command: Sequence[str]) -> Status:
        """See `Autostart`."""
        icon = self.icons.install()
        text = desktop_entry(
            command, icon, "X-GNOME-Autostart-enabled=true", "X-GNOME-Autostart-Delay=2",
            "X-KDE-autostart-after=panel",
        )  # fmt: skip
        _write_atomically(self.path, text.encode())
        return self.status()

    def disable(self) -> Status:
        """See `Autostart`: the entry is removed (and the icon, unless the menu entry uses it)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        if not os.path.exists(MenuEntry(self.environ).path):
            self.icons.remove()
        return self.status()


class MenuEntry:
    """uvsweep in the application menu: `$XDG_DATA_HOME/applications/uvsweep.desktop`, its icon
    in the user's hicolor theme, so the tray can be started again after Quit."""

    def __init__(self, environ: Any = None, icons: str | None = None) -> None:
        env = os.environ if environ is None else environ
        base = _xdg_home(env, "XDG_DATA_HOME", ".local/share")
        self.path = os.path.join(base, "applications", "uvsweep.desktop")
        self.environ = env
        self.icons = UserIcons(env, icons)

    def status(self) -> Status:
        """Installed or not, and what it starts."""
        entries = _read_entry(self.path)
        if entries is None:
            return Status(enabled=False, where=self.path, detail="no menu entry")
        return Status(enabled=True, where=self.path, detail=entries.get("Exec", ""))

    def install(self, command: Sequence[str]) -> Status:
        """Write the entry (replacing an older one) that starts `command`."""
        icon = self.icons.install()
        text = desktop_entry(command, icon, "Keywords=uv;python;lock;tmp;cleanup;",
                             "StartupNotify=false")  # fmt: skip
        _write_atomically(self.path, text.encode())
        return self.status()

    def remove(self) -> Status:
        """Take the entry out (and the icon, unless the autostart entry uses it)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        if not os.path.exists(XdgAutostart(self.environ).path):
            self.icons.remove()
        return self.status()


# ---- macOS: a LaunchAgent ----------------------------------------------------------------------

#: argv -> (exit status, stdout)
Runner = Callable[[Sequence[str]], "tuple[int, str]"]


def _run(argv: Sequence[str]) -> tuple[int, str]:
    import subprocess

    try:
        done = subprocess.run(list(argv), capture_output=True, check=False, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as err:
        return 127, str(err)
    return done.returncode, done.stdout


class LaunchAgent(Autostart):
    """`~/Library/LaunchAgents/dev.uvsweep.tray.plist`, with launchd's own switch respected.

    Never `launchctl bootout`: when launchd started the running tray, that would kill it.
    Enabling clears launchd's disabled override (the System Settings > Login Items switch on
    macOS 13+) and loads the agent only if it is not loaded; disabling sets that override and
    removes the plist, leaving a running tray alone. The tray is restarted only if it crashed,
    never after an exit of its own (exit 6, no window server yet, would loop every 10 s).
    """

    def __init__(self, home: str | None = None, uid: int | None = None, run: Runner = _run) -> None:
        home = home or os.path.expanduser("~")
        self.path = os.path.join(home, "Library", "LaunchAgents", f"{APP_ID}.plist")
        self.uid = os.getuid() if uid is None and hasattr(os, "getuid") else (uid or 0)
        self.run = run
        self.domain = f"gui/{self.uid}"
        self.service = f"{self.domain}/{APP_ID}"

    def _switched_off(self) -> bool:
        """Whether launchd's override says disabled (`launchctl print-disabled`)."""
        code, out = self.run(["launchctl", "print-disabled", self.domain])
        if code != 0:
            return False
        for line in out.splitlines():
            label, _, value = line.strip().partition("=>")
            if label.strip().strip('"') == APP_ID:
                return value.strip() in ("disabled", "true")  # macOS 13+ / older spelling
        return False

    def status(self) -> Status:
        """See `Autostart`."""
        import plistlib

        try:
            with open(self.path, "rb") as handle:
                plist = plistlib.load(handle)
        except FileNotFoundError:
            return Status(enabled=False, where=self.path, detail="no LaunchAgent")
        except (OSError, ValueError) as err:
            return Status(enabled=False, where=self.path, detail=f"unreadable: {err}")
        if not isinstance(plist, dict):
            return Status(enabled=False, where=self.path, detail="unreadable: not a dictionary")
        if plist.get("Disabled") is True or plist.get("RunAtLoad") is not True:
            return Status(enabled=False, where=self.path, detail="the LaunchAgent is disabled")
        if self._switched_off():
            return Status(enabled=False, where=self.path,
                          detail="turned off in System Settings (Login Items)")  # fmt: skip
        arguments = " ".join(str(arg) for arg in plist.get("ProgramArguments", []))
        return Status(enabled=True, where=self.path, detail=arguments)

    def enable(self, command: Sequence[str]) -> Status:
        """See `Autostart`: write the plist, switch launchd's override on, load it if need be.

        (`installed_command` refuses an app run from a translocated copy, whose path is gone
        after the next login.)
        """
        import plistlib

        plist = {
            "Label": APP_ID,
            "ProgramArguments": list(command),
            "RunAtLoad": True,
            "ProcessType": "Interactive",
            "KeepAlive": {"Crashed": True},
            "LimitLoadToSessionType": "Aqua",
        }
        _write_atomically(self.path, plistlib.dumps(plist))
        self.run(["launchctl", "enable", self.service])  # asked for explicitly: back on
        loaded, _out = self.run(["launchctl", "print", self.service])
        if loaded != 0:  # not loaded: load it (a running tray started by hand stays alone)
            self.run(["launchctl", "bootstrap", self.domain, self.path])
        return self.status()

    def disable(self) -> Status:
        """See `Autostart`: switch it off and remove the LaunchAgent; a running tray stays."""
        self.run(["launchctl", "disable", self.service])
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        return self.status()


# ---- Windows: HKCU Run ---------------------------------------------------------------------------

RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
APPROVED_KEY = r"Software\Microsoft\Windows\CurrentVersion\Explorer\StartupApproved\Run"


class Registry(ABC):
    """The few HKCU registry calls autostart needs."""

    @abstractmethod
    def get(self, key: str, name: str) -> Any:
        """The value, or None when it (or the key) is missing."""

    @abstractmethod
    def set(self, key: str, name: str, value: str | bytes) -> None:
        """Write a REG_SZ (str) or REG_BINARY (bytes) value, creating the key."""

    @abstractmethod
    def delete(self, key: str, name: str) -> None:
        """Remove the value if it exists."""


class WinRegistry(Registry):
    """`Registry` through `winreg`; only ever used on Windows."""

    def get(self, key: str, name: str) -> Any:
        """See `Registry`."""
        import winreg  #   # type: ignore[import-not-found,unused-ignore]

        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, key) as handle:  # type: ignore[attr-defined,unused-ignore]
                return winreg.QueryValueEx(handle, name)[0]  # type: ignore[attr-defined,unused-ignore]
        except FileNotFoundError:
            return None

    def set(self, key: str, name: str, value: str | bytes) -> None:
        """See `Registry`."""
        import winreg  #   # type: ignore[import-not-found,unused-ignore]

        kind = winreg.REG_BINARY if isinstance(value, bytes) else winreg.REG_SZ  # type: ignore[attr-defined,unused-ignore]
        with winreg.CreateKey(winreg.HKEY_CURRENT_USER, key) as handle:  # type: ignore[attr-defined,unused-ignore]
            winreg.SetValueEx(handle, name, 0, kind, value)  # type: ignore[attr-defined,unused-ignore]

    def delete(self, key: str, name: str) -> None:
        """See `Registry`."""
        import winreg  #   # type: ignore[import-not-found,unused-ignore]

        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, key, 0, winreg.KEY_SET_VALUE) as handle:  # type: ignore[attr-defined,unused-ignore]
                winreg.DeleteValue(handle, name)  # type: ignore[attr-defined,unused-ignore]
        except FileNotFoundError:
            pass


def windows_command_line(command: Sequence[str]) -> str:
    """The command as one Windows command line (each argument quoted as needed)."""
    import subprocess

    return subprocess.list2cmdline(list(command))


def _switched_off(approved: Any) -> bool:
    """Task Manager's StartupApproved value: bit 0 of the first byte set means disabled
    (02 and 06 are on, 03 and 07 off)."""
    return isinstance(approved, (bytes, bytearray)) and bool(approved[:1]) and approved[0] & 1 == 1


class WindowsRun(Autostart):
    """`HKCU\\...\\Run\\uvsweep`, with Task Manager's StartupApproved switch respected."""

    def __init__(self, registry: Registry | None = None) -> None:
        self.registry = registry or WinRegistry()
        self.where = f"HKCU\\{RUN_KEY}\\{RUN_VALUE}"

    def status(self) -> Status:
        """See `Autostart`."""
        command = self.registry.get(RUN_KEY, RUN_VALUE)
        if not command:
            return Status(enabled=False, where=self.where, detail="no Run entry")
        if _switched_off(self.registry.get(APPROVED_KEY, RUN_VALUE)):
            return Status(enabled=False, where=self.where,
                          detail="turned off in Task Manager (Startup apps)")  # fmt: skip
        return Status(enabled=True, where=self.where, detail=str(command))

    def enable(self, command: Sequence[str]) -> Status:
        """See `Autostart`. Asked for explicitly, it also turns Task Manager's switch back on."""
        self.registry.set(RUN_KEY, RUN_VALUE, windows_command_line(command))
        if _switched_off(self.registry.get(APPROVED_KEY, RUN_VALUE)):
            self.registry.set(APPROVED_KEY, RUN_VALUE, b"\x02" + bytes(11))
        return self.status()

    def disable(self) -> Status:
        """See `Autostart`: both values go."""
        self.registry.delete(RUN_KEY, RUN_VALUE)
        self.registry.delete(APPROVED_KEY, RUN_VALUE)
        return self.status()


def _write_atomically(path: str, data: bytes) -> None:
    import tempfile

    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=".uvsweep-", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o644)
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


def for_platform(platform: str = sys.platform) -> Autostart:
    """The autostart writer for this OS."""
    if system.is_windows(platform):
        return WindowsRun()
    if system.is_macos(platform):
        return LaunchAgent()
    return XdgAutostart()
