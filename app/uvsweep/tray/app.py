"""The tray app: the icon with its badge, the menu, one-click safe cleanup, notifications.

Threads: the tray backend's loop runs on the main thread (macOS insists); the watcher scans on its
own; cleanups run on a short-lived worker; notifications go through their own loop. Everything
that touches the icon goes through `_ui()`, which marshals it to the UI thread where the backend
needs that (macOS), so no other thread ever calls into the GUI toolkit directly.
"""
# ruff: noqa: PLC0415 - imports inside functions: only the path that needs a module pays for it

from __future__ import annotations

import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Sequence

from uvsweep import __version__, system
from uvsweep.model import Change, CleanResult, LockState, ProcessInfo, Snapshot
from uvsweep.settings import Settings
from uvsweep.tray import art
from uvsweep.tray.menu import Item, MenuState, build

#: Extra seconds Quit waits for a cleanup that is handing its locks to a keeper.
HANDOFF_GRACE = 20.0

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from uvsweep.autostart import Autostart
    from uvsweep.tray.backends import Choice
    from uvsweep.tray.notify import Notifier
    from uvsweep.watcher import Watcher

log = logging.getLogger("uvsweep.tray")

#: Where uvsweep lives (About > Homepage).
HOMEPAGE = "https://pypi.org/project/uvsweep/"


def sni_icon(app: TrayApp) -> Any:
    """A StatusNotifierItem icon for `app` (the `sni` backend, `tray/sni.py`)."""
    from uvsweep.tray import sni

    return pystray_icon(app, sni.icon_class())


def load_backend() -> str:
    """Import pystray (it opens the display as it loads); why it failed, or ""."""
    try:
        import pystray  # noqa: F401
    except Exception as err:  # noqa: BLE001 - Xlib raises its own error types for a bad display
        return f"{type(err).__name__}: {err}"
    return ""


def summarize(report: CleanResult) -> str:
    """`Removed 3 uv lock files; kept 1 (held)` for a notification and the menu."""
    if report.busy:
        pids = ", ".join(str(p.pid) for p in report.active_uv[:3])
        return f"uv is running (pid {pids}): will clean when it is idle"
    if report.blind:
        return f"Removed nothing: {report.blind}"
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
        clean: Callable[[Sequence[str]], CleanResult] | None = None,
        icon_size: int = 64,
        backend: Choice | None = None,
        log_path: str = "",
    ) -> None:
        from uvsweep.autoclean import AutoClean
        from uvsweep.tray.notify import Notifier, NotifyPolicy
        from uvsweep.watcher import Watcher

        self.dirs = list(dirs)
        self.settings = settings
        self.backend = backend  # the tray backend chosen, and why (for About and doctor)
        self.log_path = log_path
        self.bus_problem = ""  # SNI: what is wrong with the session bus connection
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
        self.notifier = notifier or Notifier(fallback=self._tray_notify, icon=icon_file())
        self._held: threading.Timer | None = None  # re-checks a rise the rate limit held back
        self._stopping = False  # set by stop_background: no new timer after that
        self.watcher = watcher or Watcher(
            self.dirs, settings=settings, safety_interval=settings.safety_rescan
        )
        self._auto_policy = AutoClean(min_age=settings.auto_clean_min_age, clean=self._auto_clean)
        self._auto_policy.enabled = settings.auto_clean
        self._auto_policy.attach(self.watcher)
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

    def problems(self) -> list[str]:
        """What is wrong now, in words for the menu: the bus, unreadable dirs, polling."""
        out = [f"Tray: {self.bus_problem}"] if self.bus_problem else []
        snap = self.snapshot
        if snap is not None:
            out += [f"{e.path}: {e.message}" for e in snap.errors if e.path in self.dirs]
        polled = getattr(self.watcher, "polled_dirs", {})
        failed = {e.path for e in snap.errors} if snap is not None else set()
        out += [f"{d}: no file events ({why}); polled every 2 s"
                for d, why in sorted(polled.items()) if d not in failed]  # fmt: skip
        return out

    def mark(self) -> str:
        """The icon's state mark: error, cleaning, waiting (for uv), or none."""
        if self.problems():
            return "error"
        if self.cleaning:
            return "cleaning"
        if self.deferred:
            return "waiting"
        return ""

    def image(self, size: int | None = None) -> Any:
        """The icon with its badge and state mark, at `size` px (default: the backend's)."""
        orphaned, attention = self.counts()
        return art.render(size or self.icon_size, orphaned, attention=attention > 0,
                          mark=self.mark())  # fmt: skip

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
            uv_processes=[describe_process(p) for p in self.watcher.uv_processes[:2]],
            problems=self.problems(),
            about=self.about_lines(),
            log_path=self.log_path,
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
        self._notify_rise(snapshot)
        # watcher.uv_processes is cleaner.running_uv(): the *active* ones (a parked uv never
        # holds a cleanup back), so this fires when the last one exits or parks
        if self.deferred and not self.watcher.uv_processes and not self.cleaning:
            self.deferred = False
            self._start_clean(deferred=True)
        self.refresh()

    def _notify_rise(self, snapshot: Snapshot | None) -> None:
        """Tell of a rise in orphaned files, counted in `snapshot` (the one that triggered it);
        one the rate limit holds back is told when the limit allows."""
        if snapshot is None:
            return
        with self._lock:
            text = self.policy.check(snapshot.count(LockState.ORPHANED), time.time())
            due = self.policy.due()
            if (
                due is not None and self._held is None and not self.quitting.is_set()
                and not self._stopping
            ):  # fmt: skip
                self._held = threading.Timer(max(0.0, due - time.time()), self._held_back)
                self._held.name = "uvsweep-notify-later"
                self._held.daemon = True
                self._held.start()
        if text and self.settings.notifications:
            self.notifier.send("uvsweep", text, button=("Clean now", self.clean_now))

    def _held_back(self) -> None:
        with self._lock:
            self._held = None
        self._notify_rise(self.snapshot)  # the snapshot of now, not the one that was held

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
            self._auto_policy.enabled = self.settings.auto_clean
            if self.settings.auto_clean:
                self.watcher.rescan()
        elif action == "toggle-notifications":
            self._set(notifications=not self.settings.notifications)
        elif action == "toggle-autostart":
            self._toggle_autostart()
        elif action == "homepage":
            self._opener(HOMEPAGE, reveal=False)
        elif action == "diagnostics":
            self._open_diagnostics()
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
                self.notifier.send("uvsweep", f"Could not save settings: {system.reason(err)}")

    def _toggle_autostart(self) -> None:
        if self.autostart is None:
            return
        from uvsweep.autostart import installed_command

        try:
            if self._read_autostart():
                state = self.autostart.disable()
            else:
                state = self.autostart.enable(installed_command())
            self._autostart_state = state.enabled
        except (OSError, ValueError) as err:
            self.notifier.send("uvsweep", f"Start at login: {err}")
            self._autostart_state = self._read_autostart()

    def about_lines(self) -> list[str]:
        """The About submenu's lines."""
        backend = self.backend.name if self.backend else "unknown"
        lines = [f"uvsweep {__version__}"]
        lines += [f"Watching {d}" for d in self.dirs]
        lines.append(f"Tray: {backend}; notifications: {self.notifier.backend}")
        return lines

    def _open_diagnostics(self) -> None:
        """Write `uvsweep doctor`'s report next to the log and open it (off the UI thread:
        doctor scans and asks the bus)."""

        def work() -> None:
            from uvsweep import doctor

            try:
                report = doctor.text(doctor.report())
                folder = os.path.dirname(self.log_path) if self.log_path else ""
                if not folder:
                    import tempfile

                    folder = tempfile.gettempdir()
                path = os.path.join(folder, "uvsweep-doctor.txt")
                with open(path, "w", encoding="utf-8") as handle:
                    handle.write(report + "\n")
            except Exception as err:  # noqa: BLE001 - say it, never crash the tray
                log.warning("cannot write the diagnostics report: %s", err)
                self.notifier.send("uvsweep", f"Cannot write the diagnostics report: {err}")
                return
            log.info("diagnostics report written to %s", path)
            self._opener(path, reveal=False)

        worker = threading.Thread(target=work, name="uvsweep-doctor", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [worker]
        worker.start()

    def reshow(self) -> None:
        """Show the icon again (a second `uvsweep` asked): SNI registers with the panel again,
        the others hide and show (XEmbed docks again)."""
        icon = self.icon
        if icon is None:
            return
        log.info("a second uvsweep asked to show the icon again")

        def again() -> None:
            if hasattr(icon, "reshow"):
                icon.reshow()
            elif icon.visible:
                icon.visible = False
                icon.visible = True

        self._ui(again)
        self.refresh()

    def on_bus_problem(self, text: str) -> None:
        """The SNI backend says what is wrong with the session bus ("" when all is well)."""
        if text != self.bus_problem:
            self.bus_problem = text
            self.refresh()

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
            with self.watcher.held_still():  # its probes would break the cleanup's leases
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
            self.deferred = True  # runs when the watcher sees the last active uv exit or park
        if self.settings.notifications or report.busy:
            title = "uvsweep: deferred cleanup done" if deferred else "uvsweep"
            self.notifier.send(title, self.last_result)
        self.watcher.rescan()
        self.refresh()

    def _do_clean(self, dirs: Sequence[str]) -> CleanResult:
        if self._clean is not None:
            return self._clean(dirs)
        from uvsweep import cleaner

        return cleaner.clean(dirs)

    def _auto_clean(self, dirs: Sequence[str]) -> CleanResult:
        from uvsweep import cleaner

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
        from uvsweep import remove  # imported by the cleaner already

        deadline = time.monotonic() + timeout
        if remove.request_stop():  # a cleanup mid-handoff passes its locks to a keeper first
            deadline += HANDOFF_GRACE
        with self._lock:  # a snapshot published while the watcher stops starts no timer
            self._stopping = True
            held, self._held = self._held, None
        if held is not None:
            held.cancel()
            held.join(max(0.05, deadline - time.monotonic()))
        self.watcher.stop(max(0.05, deadline - time.monotonic()))
        self.notifier.stop(max(0.05, deadline - time.monotonic()))
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def run(self, icon_factory: Callable[[TrayApp], Any]) -> None:
        """Create the icon and run its loop on this (the main) thread until Quit."""
        self.icon = icon_factory(self)
        self._ui_call = ui_marshaller(self.icon)
        if hasattr(self.icon, "on_problem"):  # SNI: the bus connection's state
            self.icon.on_problem = self.on_bus_problem
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


def icon_file(size: int = 64) -> str | None:
    """uvsweep's icon as a PNG in the user's state dir (beside the log), for notifications
    (written once per version); None when it cannot be written (they then go without it)."""
    from platformdirs import user_state_dir

    path = os.path.join(user_state_dir("uvsweep", appauthor=False), f"icon-{__version__}.png")
    if os.path.exists(path):
        return path
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        partial = f"{path}.{os.getpid()}.tmp"
        with open(partial, "wb") as handle:
            handle.write(art.png(art.render(size)))
        os.replace(partial, path)
    except OSError as err:
        log.warning("cannot write the notification icon %s: %s", path, system.reason(err))
        return None
    return path


def describe_process(process: ProcessInfo) -> str:
    """`pid 4013 (uv sync)` for a menu line."""
    words = list(process.cmdline or [process.name or "?"])
    if words:
        words[0] = os.path.basename(words[0])
    command = " ".join(words)
    if len(command) > 40:
        command = command[:39] + "\u2026"
    return f"pid {process.pid} ({command})"


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
    from uvsweep import win32

    return int(win32.load("user32").GetSystemMetrics(49))


def ui_marshaller(icon: Any) -> Callable[[Callable[[], None]], None]:
    """How to run a function on the icon's UI thread for its backend."""
    if type(icon).__module__.endswith("_darwin"):  # pragma: no cover - macOS
        from PyObjCTools import AppHelper

        return AppHelper.callAfter  # type: ignore[no-any-return]
    # pystray's Linux and Windows backends queue their own updates onto their loop
    return lambda fn: fn()


def to_pystray(items: Sequence[Item], dispatch: Callable[[str], None]) -> tuple[Any, ...]:
    """pystray MenuItems for `items`; choosing one calls `dispatch(action)`. Each carries the
    item's `key` (a backend that names entries, SNI, keeps an entry's id by it)."""
    import pystray  # only the tray imports it (it needs a display)

    def convert(item: Item) -> Any:
        if item.separator:
            return pystray.Menu.SEPARATOR
        if item.submenu is not None:
            entry = pystray.MenuItem(item.text, pystray.Menu(*[convert(i) for i in item.submenu]),
                                     enabled=item.enabled)  # fmt: skip
            entry.key = item.key
            return entry
        action = item.action

        def run(_icon: Any, _item: Any) -> None:
            if action:
                dispatch(action)

        checked = None
        if item.checked is not None:
            value = item.checked
            checked = lambda _item: value  # noqa: E731
        entry = pystray.MenuItem(item.text, run, checked=checked, default=item.default,
                                 enabled=item.enabled)  # fmt: skip
        entry.key = item.key
        return entry

    return tuple(convert(i) for i in items)


def pystray_icon(app: TrayApp, icon_type: Any = None, **options: Any) -> Any:
    """A pystray Icon for `app` (of `icon_type`, default pystray's), its menu rebuilt from
    `app.menu_items()` each time it opens."""
    import pystray  # only the tray imports it (it needs a display)

    menu = pystray.Menu(lambda: to_pystray(app.menu_items(), app.dispatch))
    if icon_type is not None:
        icon = icon_type("uvsweep", icon=app.image(), title=app.title(), menu=menu, **options)
        icon.render_at = app.image  # backends that send several sizes draw each one
        return icon
    icon_type = pystray.Icon
    app.icon_size = preferred_icon_size(icon_type.__module__)
    if icon_type.__module__ == "pystray._xorg":
        from uvsweep.tray.xorg import icon_class

        icon_type = icon_class()
    elif icon_type.__module__ in ("pystray._gtk", "pystray._appindicator"):
        from uvsweep.tray import gtk

        icon_type = gtk.icon_class(icon_type)
    elif icon_type.__module__ == "pystray._darwin":  # pragma: no cover - macOS
        from uvsweep.tray import macos

        icon_type = macos.icon_class(icon_type)
    return icon_type("uvsweep", icon=app.image(), title=app.title(), menu=menu)


def open_path(path: str, *, reveal: bool) -> None:
    """Show a folder, or a file selected in its folder, in the file manager (never blocks)."""
    import subprocess

    if system.MACOS:
        argv = ["open", "-R", path] if reveal else ["open", path]
    elif system.WINDOWS:
        argv = ["explorer", f"/select,{path}"] if reveal else ["explorer", path]
    elif reveal and shutil.which("dbus-send"):
        # the freedesktop file manager interface selects the file in its folder
        import shlex
        from pathlib import Path

        show = ["dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.FileManager1",
                "--type=method_call", "/org/freedesktop/FileManager1",
                "org.freedesktop.FileManager1.ShowItems",
                f"array:string:{Path(path).as_uri()}", "string:"]  # fmt: skip
        # no file manager serves that interface: open the folder instead
        fallback = ["xdg-open", os.path.dirname(path)]
        argv = ["sh", "-c", f"{shlex.join(show)} >/dev/null 2>&1 || exec {shlex.join(fallback)}"]
    else:
        argv = ["xdg-open", os.path.dirname(path) if reveal else path]
    if system.POSIX:
        # through a shell that puts it in the background and exits: nothing is left to reap
        argv = ["sh", "-c", '"$@" >/dev/null 2>&1 &', "sh", *argv]
    try:
        child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True)  # fmt: skip
        if system.POSIX:
            child.wait(5)
    except (OSError, subprocess.TimeoutExpired) as err:
        log.warning("cannot open %s: %s", path, err)
