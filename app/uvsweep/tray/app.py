"""The tray app: the icon with its badge, the menu, one-click safe cleanup, notifications.

Threads: the tray backend's loop runs on the main thread (macOS insists); the watcher scans on its
own; cleanups run on a short-lived worker; notifications go through their own loop. Everything
that touches the icon goes through `_ui()`, which marshals it to the UI thread where the backend
needs that (macOS), so no other thread ever calls into the GUI toolkit directly.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Sequence

from uvsweep import __version__
from uvsweep.model import LockState, Snapshot
from uvsweep.settings import Settings
from uvsweep.tray import art
from uvsweep.tray.menu import Item, MenuState, build

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from uvsweep.autostart import Autostart
    from uvsweep.cleaner import CleanReport
    from uvsweep.tray.notify import Notifier
    from uvsweep.watcher import Change, Watcher

log = logging.getLogger("uvsweep.tray")


def graphical_session(environ: dict[str, str] | None = None, platform: str = sys.platform) -> str:
    """Why there is no graphical session, or "" when there is one (Linux and the BSDs)."""
    env = os.environ if environ is None else environ
    if platform in ("win32", "darwin"):
        return ""
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return ""
    return "no graphical session (neither DISPLAY nor WAYLAND_DISPLAY is set)"


def choose_backend(setting: str, environ: dict[str, str] | None = None) -> tuple[str, str]:
    """(the pystray backend to force, or "" for pystray's own choice; why)."""
    env = os.environ if environ is None else environ
    if setting:
        return setting, "the `tray_backend` setting"
    if env.get("PYSTRAY_BACKEND"):
        return env["PYSTRAY_BACKEND"], "PYSTRAY_BACKEND"
    return "", "automatic: StatusNotifierItem if a host is on the session bus, else pystray's order"


def sni_host_present(platform: str = sys.platform) -> bool:
    """Whether a StatusNotifierItem host (a watcher) is on the session bus (Linux, BSDs)."""
    if platform in ("win32", "darwin") or not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return False
    from uvsweep.tray import sni  # noqa: PLC0415

    return bool(sni.watcher_present())  # type: ignore[no-untyped-call]


def sni_icon(app: TrayApp) -> Any:
    """A StatusNotifierItem icon for `app` (the `sni` backend, `tray/sni.py`)."""
    from uvsweep.tray import sni  # noqa: PLC0415

    return pystray_icon(app, sni.icon_class())  # type: ignore[no-untyped-call]


def load_backend() -> str:
    """Import pystray (it opens the display as it loads); why it failed, or ""."""
    try:
        import pystray  # noqa: F401, PLC0415
    except Exception as err:  # noqa: BLE001 - Xlib raises its own error types for a bad display
        return f"{type(err).__name__}: {err}"
    return ""


def summarize(report: CleanReport) -> str:
    """`Removed 3 uv lock files; kept 1 (held)` for a notification and the menu."""
    if report.busy:
        pids = ", ".join(str(p.pid) for p in report.uv_processes[:3])
        return f"uv is running (pid {pids}): will clean when it is idle"
    removed = len(report.removed)
    text = f"Removed {removed} uv lock file{'s' if removed != 1 else ''}"
    if report.skipped:
        reasons: dict[str, int] = {}
        for skipped in report.skipped:
            reasons[skipped.state.value] = reasons.get(skipped.state.value, 0) + 1
        main = max(reasons, key=lambda state: reasons[state])
        text += (
            f"; kept {len(report.skipped)} (mostly {main})"
            if len(reasons) > 1
            else (f"; kept {len(report.skipped)} ({main})")
        )
    if report.errors:
        text += f"; {len(report.errors)} could not be removed"
    return text


class TrayApp:
    """The controller: owns the watcher, the icon, the notifier and the settings."""

    def __init__(
        self,
        dirs: Sequence[str],
        settings: Settings,
        *,
        save_settings: Callable[[Settings], object] | None = None,
        watcher: Watcher | None = None,
        notifier: Notifier | None = None,
        autostart: Autostart | None = None,
        opener: Callable[..., None] | None = None,
        clean: Callable[[Sequence[str]], CleanReport] | None = None,
        icon_size: int = 64,
    ) -> None:
        from uvsweep.tray.notify import Notifier, NotifyPolicy  # noqa: PLC0415
        from uvsweep.watcher import AutoClean, Watcher  # noqa: PLC0415

        self.dirs = list(dirs)
        self.settings = settings
        self._save = save_settings
        self.icon: Any = None
        self.icon_size = icon_size
        self._lock = threading.RLock()
        self.snapshot: Snapshot | None = None
        self.cleaning = False
        self.deferred = False
        self.last_result = ""
        self.autostart = autostart
        self._autostart_state: bool | None = None
        self._opener = opener or open_path
        self._clean = clean
        self._threads: list[threading.Thread] = []
        self._ui_call: Callable[[Callable[[], None]], None] = lambda fn: fn()
        self.policy = NotifyPolicy(settings.notify_threshold, settings.notify_interval)
        self.notifier = notifier or Notifier(fallback=self._tray_notify)
        self.watcher = watcher or Watcher(
            self.dirs, settings=settings, safety_interval=settings.safety_rescan
        )
        self._auto_policy = AutoClean(min_age=settings.auto_clean_min_age, clean=self._auto_clean)
        self.watcher.auto_clean = self._auto_policy if settings.auto_clean else None
        self.watcher.subscribe(self._on_snapshot)
        self.quitting = threading.Event()

    # ---- what the icon shows ------------------------------------------------------------------

    def counts(self) -> tuple[int, int]:
        """(orphaned, needing attention) in the current snapshot."""
        snap = self.snapshot
        if snap is None:
            return 0, 0
        attention = snap.count(LockState.FOREIGN) + snap.count(LockState.SUSPICIOUS)
        return snap.count(LockState.ORPHANED), attention

    def image(self, size: int | None = None) -> Any:
        """The icon with its badge, at `size` px (default: the backend's)."""
        orphaned, attention = self.counts()
        return art.render(size or self.icon_size, orphaned, attention=attention > 0)

    def title(self) -> str:
        """The tooltip; with notifications off it also carries the last cleanup's result."""
        text = art.tooltip(*self.counts())
        if self.last_result and not self.settings.notifications:
            text += f" \u2014 {self.last_result}"
        return text

    def menu_items(self) -> tuple[Item, ...]:
        """The menu now."""
        if self._autostart_state is None and self.autostart is not None:
            self._autostart_state = self._read_autostart()
        state = MenuState(
            auto_clean=self.settings.auto_clean,
            notifications=self.settings.notifications,
            autostart=self._autostart_state,
            cleaning=self.cleaning,
            deferred_pids=[p.pid for p in self.watcher.uv_processes] if self.deferred else (),
            last_result=self.last_result,
            uv_running=len(self.watcher.uv_processes),
        )
        return build(self.snapshot, state, time.time())

    def _read_autostart(self) -> bool | None:
        try:
            return self.autostart.status().enabled if self.autostart else None
        except OSError:
            return None

    def refresh(self) -> None:
        """Push the current state to the icon, on the UI thread."""

        def update() -> None:
            icon = self.icon
            if icon is None:
                return
            icon.needs_attention = self.counts()[0] > 0  # SNI: Status NeedsAttention
            icon.icon = self.image()
            icon.title = self.title()
            icon.update_menu()

        self._ui(update)

    def _ui(self, fn: Callable[[], None]) -> None:
        try:
            self._ui_call(fn)
        except Exception:  # a GUI hiccup must not take the watcher down
            log.exception("updating the tray icon failed")

    # ---- events -------------------------------------------------------------------------------

    def _on_snapshot(self, snapshot: Snapshot, _change: Change) -> None:
        self.snapshot = snapshot
        orphaned, _attention = self.counts()
        message = self.policy.check(orphaned, time.time())
        if message and self.settings.notifications:
            self.notifier.send("uvsweep", message, button=("Clean now", self.clean_now))
        if self.deferred and not self.watcher.uv_processes and not self.cleaning:
            self.deferred = False
            self._start_clean(deferred=True)
        self.refresh()

    def dispatch(self, action: str) -> None:
        """Run a menu action (called on the UI thread; slow work goes to a worker)."""
        if action == "clean":
            self.clean_now()
        elif action == "rescan":
            self.watcher.rescan(full=True)
        elif action == "quit":
            self.quit()
        elif action == "toggle-auto-clean":
            self._set(auto_clean=not self.settings.auto_clean)
            self.watcher.auto_clean = self._auto_policy if self.settings.auto_clean else None
            if self.settings.auto_clean:
                self.watcher.rescan()
        elif action == "toggle-notifications":
            self._set(notifications=not self.settings.notifications)
        elif action == "toggle-autostart":
            self._toggle_autostart()
        elif action == "about":
            self.notifier.send("uvsweep", self.about())
        elif action.startswith("open:"):
            self._opener(action[5:], reveal=False)
        elif action.startswith("reveal:"):
            self._opener(action[7:], reveal=True)
        else:
            log.warning("unknown menu action %r", action)
        self.refresh()

    def _set(self, **changes: object) -> None:
        self.settings = self.settings.replace(**changes)
        if self._save is not None:
            try:
                self._save(self.settings)
            except OSError as err:
                log.warning("could not save settings: %s", err)
                self.notifier.send("uvsweep", f"Could not save settings: {err.strerror or err}")

    def _toggle_autostart(self) -> None:
        if self.autostart is None:
            return
        from uvsweep.autostart import installed_command  # noqa: PLC0415

        try:
            if self._read_autostart():
                state = self.autostart.disable()
            else:
                state = self.autostart.enable(installed_command())
            self._autostart_state = state.enabled
        except (OSError, ValueError) as err:
            self.notifier.send("uvsweep", f"Start at login: {err}")
            self._autostart_state = self._read_autostart()

    def about(self) -> str:
        """A short diagnostics line for "About"."""
        orphaned, attention = self.counts()
        backend = type(self.icon).__module__.rsplit("._", 1)[-1] if self.icon else "none"
        return (
            f"uvsweep {__version__}: watching {', '.join(self.dirs)}; {orphaned} orphaned,"
            f" {attention} needing attention; tray {backend}; notifications"
            f" {self.notifier.backend}. `uvsweep doctor` says more."
        )

    # ---- cleanup ------------------------------------------------------------------------------

    def clean_now(self) -> None:
        """ "Clean now": the safe cleanup off the UI thread; deferred while uv runs."""
        with self._lock:
            if self.cleaning:
                return
            self._start_clean(deferred=False)

    def _start_clean(self, *, deferred: bool) -> None:
        self.cleaning = True
        self.refresh()
        worker = threading.Thread(target=self._run_clean, args=(deferred,),
                                  name="uvsweep-clean", daemon=True)  # fmt: skip
        self._threads = [t for t in self._threads if t.is_alive()] + [worker]
        worker.start()

    def _run_clean(self, deferred: bool) -> None:
        try:
            report = self._do_clean(self.dirs)
        except Exception as err:  # a bug or an OS surprise: say it, keep running
            log.exception("cleanup failed")
            self.last_result = f"Cleanup failed: {err}"
            self.cleaning = False
            self.notifier.send("uvsweep", self.last_result)
            self.refresh()
            return
        self.cleaning = False
        self.last_result = summarize(report)
        if report.busy:
            self.deferred = True  # runs when the watcher sees the last uv process exit
        if self.settings.notifications or report.busy:
            title = "uvsweep: deferred cleanup done" if deferred else "uvsweep"
            self.notifier.send(title, self.last_result)
        self.watcher.rescan()
        self.refresh()

    def _do_clean(self, dirs: Sequence[str]) -> CleanReport:
        if self._clean is not None:
            return self._clean(dirs)
        from uvsweep import cleaner  # noqa: PLC0415

        return cleaner.clean(dirs)

    def _auto_clean(self, dirs: Sequence[str]) -> CleanReport:
        from uvsweep import cleaner  # noqa: PLC0415

        report = cleaner.clean(dirs, min_age=self.settings.auto_clean_min_age)
        if report.removed:
            self.last_result = "Automatically: " + summarize(report)
            if self.settings.notifications:
                self.notifier.send("uvsweep", self.last_result)
        return report

    # ---- lifecycle ----------------------------------------------------------------------------

    def _tray_notify(self, title: str, message: str) -> bool:
        icon = self.icon
        if icon is None or not getattr(icon, "HAS_NOTIFICATION", False):
            return False
        self._ui(lambda: icon.notify(message, title))
        return True

    def quit(self) -> None:
        """Stop the icon's loop; `run()` then stops everything else."""
        self.quitting.set()
        icon = self.icon
        if icon is not None:
            icon.stop()

    def start_background(self) -> None:
        """Start the notifier and the watcher (before or beside the icon's loop)."""
        self.notifier.start()
        self.watcher.start()

    def stop_background(self, timeout: float = 1.0) -> None:
        """Stop the watcher, the notifier and any cleanup worker, within `timeout`."""
        deadline = time.monotonic() + timeout
        self.watcher.stop(max(0.05, deadline - time.monotonic()))
        self.notifier.stop(max(0.05, deadline - time.monotonic()))
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def run(self, icon_factory: Callable[[TrayApp], Any]) -> None:
        """Create the icon and run its loop on this (the main) thread until Quit."""
        self.icon = icon_factory(self)
        self._ui_call = ui_marshaller(self.icon)
        if self.quitting.is_set():
            return  # asked to quit (SIGTERM) before there was a loop to stop
        self.start_background()
        try:
            self.icon.run(setup=self._setup)
        finally:
            self.stop_background()
            close = getattr(self.icon, "close_sender", None)
            if close is not None:
                close()

    def _setup(self, icon: Any) -> None:
        if self.quitting.is_set():  # a quit that came while the loop was starting
            icon.stop()
            return
        # pystray calls setup on a thread of its own; AppKit wants the main thread (others: as is)
        self._ui(lambda: setattr(icon, "visible", True))
        self.refresh()


def preferred_icon_size(backend: str, environ: dict[str, str] | None = None,
                        small_icon_metric: Callable[[], int] | None = None) -> int:  # fmt: skip
    """The pixel size to render the icon at for a pystray backend (`_xorg`, `_gtk`, ...).

    Windows asks the system (SM_CXSMICON: 16 px at 100 %, 20, 24 or 32 on HiDPI screens); the
    macOS menu bar is 22 pt, drawn at 2x on Retina screens; Linux trays are 22 to 24 px, times
    GDK_SCALE on HiDPI desktops (XEmbed trays then scale to their exact slot).
    """
    env = os.environ if environ is None else environ
    name = backend.rsplit(".", 1)[-1].lstrip("_")
    if name == "win32":
        try:
            metric = small_icon_metric or _windows_small_icon
            return max(16, metric())
        except (OSError, AttributeError):
            return 16
    if name == "darwin":
        return 44
    try:
        scale = max(1, int(env.get("GDK_SCALE", "1")))
    except ValueError:
        scale = 1
    return 24 * scale


def _windows_small_icon() -> int:  # pragma: no cover - Windows
    from uvsweep import win32  # noqa: PLC0415

    return int(win32.load("user32").GetSystemMetrics(49))


def ui_marshaller(icon: Any) -> Callable[[Callable[[], None]], None]:
    """How to run a function on the icon's UI thread for its backend."""
    if type(icon).__module__.endswith("_darwin"):  # pragma: no cover - macOS
        from PyObjCTools import AppHelper  # noqa: PLC0415

        return AppHelper.callAfter  # type: ignore[no-any-return]
    # pystray's Linux and Windows backends queue their own updates onto their loop
    return lambda fn: fn()


def pystray_icon(app: TrayApp, icon_type: Any = None, **options: Any) -> Any:
    """A pystray Icon for `app` (of `icon_type`, default pystray's), its menu rebuilt from
    `app.menu_items()` each time it opens."""
    import pystray  # noqa: PLC0415 - only the tray imports it (it needs a display)

    def convert(item: Item) -> Any:
        if item.separator:
            return pystray.Menu.SEPARATOR
        if item.submenu is not None:
            return pystray.MenuItem(item.text, pystray.Menu(*[convert(i) for i in item.submenu]),
                                    enabled=item.enabled)  # fmt: skip
        action = item.action

        def run(_icon: Any, _item: Any) -> None:
            if action:
                app.dispatch(action)

        checked = None
        if item.checked is not None:
            value = item.checked
            checked = lambda _item: value  # noqa: E731
        return pystray.MenuItem(item.text, run, checked=checked, default=item.default,
                                enabled=item.enabled)  # fmt: skip

    menu = pystray.Menu(lambda: tuple(convert(i) for i in app.menu_items()))
    if icon_type is not None:
        icon = icon_type("uvsweep", icon=app.image(), title=app.title(), menu=menu, **options)
        icon.render_at = app.image  # backends that send several sizes draw each one
        return icon
    icon_type = pystray.Icon
    app.icon_size = preferred_icon_size(icon_type.__module__)
    if icon_type.__module__ == "pystray._xorg":
        from uvsweep.tray.xorg import icon_class  # noqa: PLC0415

        icon_type = icon_class()
    elif icon_type.__module__ in ("pystray._gtk", "pystray._appindicator"):
        from uvsweep.tray import gtk  # noqa: PLC0415

        icon_type = gtk.icon_class(icon_type)
    elif icon_type.__module__ == "pystray._darwin":  # pragma: no cover - macOS
        from uvsweep.tray import macos  # noqa: PLC0415

        icon_type = macos.icon_class(icon_type)
    return icon_type("uvsweep", icon=app.image(), title=app.title(), menu=menu)


def open_path(path: str, *, reveal: bool) -> None:
    """Show a folder, or a file selected in its folder, in the file manager (never blocks)."""
    import subprocess  # noqa: PLC0415

    if sys.platform == "darwin":
        argv = ["open", "-R", path] if reveal else ["open", path]
    elif sys.platform == "win32":
        argv = ["explorer", f"/select,{path}"] if reveal else ["explorer", path]
    elif reveal and shutil.which("dbus-send"):
        # the freedesktop file manager interface selects the file in its folder
        import shlex  # noqa: PLC0415
        from pathlib import Path  # noqa: PLC0415

        show = ["dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.FileManager1",
                "--type=method_call", "/org/freedesktop/FileManager1",
                "org.freedesktop.FileManager1.ShowItems",
                f"array:string:{Path(path).as_uri()}", "string:"]  # fmt: skip
        # no file manager serves that interface: open the folder instead
        fallback = ["xdg-open", os.path.dirname(path)]
        argv = ["sh", "-c", f"{shlex.join(show)} >/dev/null 2>&1 || exec {shlex.join(fallback)}"]
    else:
        argv = ["xdg-open", os.path.dirname(path) if reveal else path]
    if os.name == "posix":
        # through a shell that puts it in the background and exits: nothing is left to reap
        argv = ["sh", "-c", '"$@" >/dev/null 2>&1 &', "sh", *argv]
    try:
        child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True)  # fmt: skip
        if os.name == "posix":
            child.wait(5)
    except (OSError, subprocess.TimeoutExpired) as err:
        log.warning("cannot open %s: %s", path, err)
