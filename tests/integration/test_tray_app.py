"""The tray controller with a stand-in icon, but a real watcher, cleaner, files and processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import APP_DIR, Holder
from tests.helpers import A, B, StartFakeUv, eventually
from tests.tray_doubles import FakeIcon, FakeNotifier
from uvsweep.settings import Settings
from uvsweep.tray import app as tray
from uvsweep.tray.app import TrayApp, summarize
from uvsweep.tray.instance import SingleInstance

pytestmark = [pytest.mark.integration, pytest.mark.linux,
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux")]  # fmt: skip


def red_pixels(image: Any) -> int:
    data = image.convert("RGBA").tobytes()
    return sum(1 for i in range(0, len(data), 4)
               if data[i] > 200 and data[i + 1] < 110 and data[i + 3] > 200)  # fmt: skip


def test_badge_and_title_follow_the_files(lockdir: Path, running: Any) -> None:
    app, icon, _ = running()
    eventually(lambda: icon.title == "No orphaned uv lock files")
    assert red_pixels(icon.icon) == 0
    (lockdir / A).touch()
    (lockdir / B).touch()
    eventually(lambda: icon.title == "2 orphaned uv lock files")
    assert red_pixels(icon.icon) > 0
    assert app.menu_items()[0].text == "2 orphaned uv lock files"


def test_clean_now_removes_them_and_reports(
    lockdir: Path, running: Any, hold: type[Holder]
) -> None:
    app, icon, notifier = running()
    (lockdir / A).touch()
    (lockdir / B).touch()
    hold(lockdir / B)
    eventually(lambda: icon.title == "1 orphaned uv lock file")
    app.dispatch("clean")
    eventually(lambda: not (lockdir / A).exists() and not app.cleaning)
    assert (lockdir / B).exists()
    assert app.last_result == "Removed 1 uv lock file; kept 1 (held)"
    assert ("uvsweep", "Removed 1 uv lock file; kept 1 (held)", False) in notifier.sent
    eventually(lambda: icon.title == "No orphaned uv lock files")


def test_clean_now_while_uv_runs_is_deferred_until_it_exits(
    lockdir: Path,
    running: Any,
    fake_uv: StartFakeUv,
) -> None:
    fake = fake_uv(60)
    app, _icon, notifier = running()
    (lockdir / A).touch()
    eventually(lambda: app.counts()[0] == 1)
    app.dispatch("clean")
    eventually(lambda: app.deferred)
    assert (lockdir / A).exists()
    assert notifier.sent[-1][1] == f"uv is running (pid {fake.pid}): will clean when it is idle"
    assert any(i.text == "Will clean when uv is idle (1)" for i in app.menu_items())
    fake.proc.kill()
    eventually(lambda: not (lockdir / A).exists())
    eventually(lambda: notifier.sent[-1][0] == "uvsweep: deferred cleanup done")
    assert notifier.sent[-1][1] == "Removed 1 uv lock file"


def test_new_orphans_are_notified_once_coalesced(lockdir: Path, running: Any) -> None:
    app, _icon, notifier = running()
    (lockdir / A).touch()
    eventually(lambda: notifier.sent)
    assert notifier.sent == [("uvsweep", "1 orphaned uv lock file, 1 new", True)]  # "Clean now"
    (lockdir / B).touch()
    eventually(lambda: app.counts()[0] == 2)
    time.sleep(0.2)
    assert len(notifier.sent) == 1  # rate-limited: at most one per 30 minutes


def test_no_notifications_when_turned_off(lockdir: Path, running: Any) -> None:
    app, icon, notifier = running(notifications=False)
    (lockdir / A).touch()
    eventually(lambda: app.counts()[0] == 1)
    time.sleep(0.2)
    assert notifier.sent == []
    app.dispatch("clean")  # the result still reaches the user: in the tooltip
    eventually(lambda: icon.title == "No orphaned uv lock files \u2014 Removed 1 uv lock file")
    assert notifier.sent == []


def test_toggles_are_saved_and_autostart_reads_the_os(lockdir: Path, running: Any) -> None:
    app, _icon, _ = running()
    app.dispatch("toggle-notifications")
    app.dispatch("toggle-auto-clean")
    assert [s.notifications for s in app.saved] == [False, False]
    assert [s.auto_clean for s in app.saved] == [False, True]
    start_item = next(i for i in app.menu_items() if i.text == "Start at login")
    assert start_item.checked is False and start_item.enabled
    app.dispatch("toggle-autostart")
    assert app.autostart.enabled  # type: ignore[union-attr]
    assert next(i for i in app.menu_items() if i.text == "Start at login").checked is True
    (lockdir / A).touch()
    old = time.time() - 7200
    os.utime(lockdir / A, (old, old))
    eventually(lambda: not (lockdir / A).exists())  # auto-clean is on and uv is idle
    # the result is set once the clean returns (after the unlink and the check that follows it)
    eventually(lambda: app.last_result.startswith("Automatically: Removed 1"))


def test_open_and_reveal(lockdir: Path, running: Any) -> None:
    app, _icon, _ = running()
    app.dispatch(f"open:{lockdir}")
    app.dispatch(f"reveal:{lockdir / A}")
    assert running.opened == [(str(lockdir), False), (str(lockdir / A), True)]


def test_quit_stops_everything_within_a_second(lockdir: Path) -> None:
    before = set(threading.enumerate())
    app = TrayApp([str(lockdir)], Settings(), notifier=FakeNotifier())  # type: ignore[arg-type]
    app.icon = FakeIcon()
    app.start_background()
    eventually(lambda: app.snapshot is not None)
    began = time.monotonic()
    app.quit()
    app.stop_background()
    assert time.monotonic() - began < 1.0
    assert set(threading.enumerate()) - before == set()


def test_summaries() -> None:
    from uvsweep.model import CleanResult, LockState, Skipped

    report = CleanResult(["/tmp"], dry_run=False)
    report.removed = ["/tmp/a", "/tmp/b"]
    report.skipped = [Skipped("/tmp/c", LockState.HELD, ""), Skipped("/tmp/d", LockState.HELD, ""),
                      Skipped("/tmp/e", LockState.FOREIGN, "")]  # fmt: skip
    assert summarize(report) == "Removed 2 uv lock files; kept 3 (mostly held)"


def test_session_and_backend_choice() -> None:
    from uvsweep.tray import backends
    from uvsweep.tray.backends import Choice, choose

    assert backends.graphical_session({}, "linux").startswith("no graphical session")
    assert backends.graphical_session({"WAYLAND_DISPLAY": "wayland-0"}, "linux") == ""
    assert backends.graphical_session({}, "darwin") == ""
    x11 = {"DISPLAY": ":0"}
    none = {"sni": lambda: False, "appindicator": lambda: False, "gtk": lambda: False}
    # the setting wins over the environment, which wins over the list
    assert choose("gtk", {**x11, "PYSTRAY_BACKEND": "xorg"}, "linux") == Choice(
        "gtk", "forced by the `tray_backend` setting"
    )
    assert choose("", {**x11, "PYSTRAY_BACKEND": "xorg"}, "linux").name == "xorg"
    # the list, in order, with why
    assert choose("", x11, "linux", probes={**none, "sni": lambda: True}).name == "sni"
    assert choose("", x11, "linux", probes={**none, "gtk": lambda: True}).name == "gtk"
    got = choose("", x11, "linux", probes=none)
    assert got.name == "xorg" and "XEmbed" in got.why
    # SNI needs no display; nothing else works without one
    assert choose("", {}, "linux", probes={**none, "sni": lambda: True}).name == "sni"
    assert choose("", {}, "linux", probes=none).name == "none"
    assert choose("", {}, "darwin").name == "darwin"
    # a name nobody knows: said, and the list decides (never a crash in pystray's import)
    bad = choose("qt", x11, "linux", probes=none)
    assert bad.name == "xorg" and "names no known backend ('qt')" in bad.why


def test_the_tray_and_doctor_choose_alike(monkeypatch: pytest.MonkeyPatch) -> None:
    from uvsweep import doctor
    from uvsweep.tray import backends

    calls: list[str] = []
    monkeypatch.setattr(backends, "sni_host_present", lambda env=None: calls.append("sni") or False)
    monkeypatch.setattr(backends, "gi_has", lambda ns, v: ns == "Gtk")
    env = {"DISPLAY": ":0"}
    assert doctor.tray_backend("", env, "linux") == (
        backends.choose("", env, "linux").name,
        backends.choose("", env, "linux").why,
    )
    assert doctor.tray_backend("", env, "linux")[0] == "gtk"
    assert calls  # doctor asked the bus as the tray does


def test_a_second_instance_says_so_and_exits_0(tmp_path: Path) -> None:
    runtime = tmp_path / "run"
    runtime.mkdir()
    first = SingleInstance(str(runtime / "uvsweep.lock"))
    assert first.acquire()
    try:
        env = {**os.environ, "XDG_RUNTIME_DIR": str(runtime), "DISPLAY": ":9999",
               "PYTHONPATH": APP_DIR}  # fmt: skip
        done = subprocess.run([sys.executable, "-m", "uvsweep"], capture_output=True, text=True,
                              env=env, timeout=60, check=False)  # fmt: skip
        assert done.returncode == 0
        assert done.stdout.strip() == f"uvsweep is already running (pid {os.getpid()})."
    finally:
        first.release()
    assert SingleInstance(str(runtime / "uvsweep.lock")).acquire()  # free again


def test_a_display_that_cannot_be_opened(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path), "DISPLAY": ":9999",
           "PYTHONPATH": APP_DIR, "PYSTRAY_BACKEND": "xorg"}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "uvsweep", "tray"], capture_output=True,
                          text=True, env=env, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 6
    assert done.stderr.startswith("uvsweep: cannot show a tray icon")
    assert "Traceback" not in done.stderr


def test_doctor_without_a_desktop(lockdir: Path) -> None:
    from tests.helpers import uvsweep

    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS")}  # fmt: skip
    exe = os.path.join(os.path.dirname(sys.executable), "uvsweep")
    done = subprocess.run([exe, "doctor"], capture_output=True, text=True, env=env, timeout=60,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)
    assert lines["tray backend"].startswith("none: no graphical session")
    assert lines["notifications"].startswith("none: no session bus")
    assert lines["inotify"].startswith("max_user_watches=")
    info = json.loads(uvsweep("doctor", "--json").stdout)
    assert {"tray backend", "notifications", "start at login", "dirs", "uv processes",
            "hidden", "inotify", "lock table"} <= set(info)  # fmt: skip


@pytest.mark.gui
def test_doctor_in_a_desktop_session(dunst: Any) -> None:
    exe = os.path.join(os.path.dirname(sys.executable), "uvsweep")
    env = {**dunst.env, "PYSTRAY_BACKEND": "gtk"}
    done = subprocess.run([exe, "doctor"], capture_output=True, text=True, env=env, timeout=60,
                          check=False)  # fmt: skip
    lines = dict(line.split(": ", 1) for line in done.stdout.splitlines() if ": " in line)
    assert lines["tray backend"] == "gtk: forced by PYSTRAY_BACKEND"
    assert lines["notifications"] == "org.freedesktop.Notifications is served (desktop-notifier)"


def test_icon_sizes_per_backend() -> None:
    assert tray.preferred_icon_size("pystray._xorg", {}) == 24
    assert tray.preferred_icon_size("pystray._gtk", {"GDK_SCALE": "2"}) == 48
    assert tray.preferred_icon_size("pystray._appindicator", {"GDK_SCALE": "x"}) == 24
    assert tray.preferred_icon_size("pystray._darwin", {}) == 44
    assert tray.preferred_icon_size("pystray._win32", {}, lambda: 20) == 20
    assert tray.preferred_icon_size("pystray._win32", {}, lambda: 0) == 16


def test_reveal_falls_back_to_opening_the_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # fake xdg-open and dbus-send on PATH: no file manager answers ShowItems, so the folder opens
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "opened"
    (bin_dir / "xdg-open").write_text(f'#!/bin/sh\necho "$@" >> {log}\n')
    (bin_dir / "dbus-send").write_text("#!/bin/sh\nexit 1\n")
    for tool in bin_dir.iterdir():
        tool.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    tray.open_path(str(tmp_path / "uv-00000000000000aa.lock"), reveal=True)
    tray.open_path(str(tmp_path), reveal=False)
    eventually(lambda: log.exists() and len(log.read_text().splitlines()) == 2)
    assert sorted(log.read_text().splitlines()) == [str(tmp_path)] * 2


def test_states_and_errors_show_in_the_menu_and_the_icon(lockdir: Path, running: Any) -> None:
    from uvsweep.tray import art

    app, _icon, _ = running()
    assert app.mark() == "" and not app.problems()
    plain = app.image(32).tobytes()
    # the SNI backend lost the bus: a menu line and the error mark until it is back
    app.on_bus_problem("session bus lost; reconnecting")
    assert app.mark() == "error"
    lines = [i.text for i in app.menu_items() if not i.enabled]
    assert "\u26a0 Tray: session bus lost; reconnecting" in lines
    assert app.image(32).tobytes() != plain
    assert app.image(32).tobytes() == art.render(32, 0, mark="error").tobytes()
    app.on_bus_problem("")
    assert app.mark() == "" and app.image(32).tobytes() == plain
    # cleaning, then waiting for uv
    app.cleaning = True
    assert app.mark() == "cleaning"
    app.cleaning, app.deferred = False, True
    assert app.mark() == "waiting"


def test_an_unlistable_dir_is_an_error_line(shared_tmp: Path) -> None:
    # a "dir" the scan cannot list (also as root, whom chmod 000 does not stop): a file
    bogus = shared_tmp / "not-a-dir"
    bogus.write_text("")
    app = TrayApp([str(bogus)], Settings(), notifier=FakeNotifier())  # type: ignore[arg-type]
    app.icon = FakeIcon()
    app.start_background()
    try:
        eventually(lambda: app.snapshot is not None)
        eventually(lambda: bool(app.problems()))
        assert app.problems()[0].startswith(f"{bogus}: ")
        assert app.mark() == "error"
    finally:
        app.quit()
        app.stop_background()


def test_about_and_diagnostics(lockdir: Path, running: Any, tmp_path: Path) -> None:
    from uvsweep import __version__
    from uvsweep.tray.backends import Choice

    app, _icon, _ = running()
    app.backend = Choice("sni", "a StatusNotifierWatcher is on the session bus")
    app.log_path = str(tmp_path / "log" / "uvsweep.log")
    os.makedirs(tmp_path / "log")
    about = next(i for i in app.menu_items() if i.text == "About uvsweep").submenu
    assert about is not None
    texts = [i.text for i in about]
    assert f"uvsweep {__version__}" in texts and f"Watching {lockdir}" in texts
    assert "Tray: sni; notifications: fake" in texts
    app.dispatch("homepage")
    assert running.opened[-1] == (tray.HOMEPAGE, False)
    app.dispatch("diagnostics")  # doctor's report, written next to the log, then opened
    report = tmp_path / "log" / "uvsweep-doctor.txt"
    eventually(lambda: bool(running.opened) and running.opened[-1][0] == str(report), 60)
    text = report.read_text()
    assert "tray backend:" in text and "tray log: " in text
    assert next(i for i in app.menu_items() if i.text == "Open log").action == (
        f"open:{app.log_path}")  # fmt: skip


def test_the_single_instance_channel(tmp_path: Path) -> None:
    first = SingleInstance(str(tmp_path / "uvsweep.lock"))
    assert first.acquire()
    shown = threading.Event()
    assert first.serve(shown.set)
    second = SingleInstance(str(tmp_path / "uvsweep.lock"))
    assert not second.acquire()
    assert second.ask_to_show() and shown.is_set()
    began = time.monotonic()
    first.release()  # the listener ends at once (it blocks in accept, no polling)
    assert time.monotonic() - began < 1.0
    assert not (tmp_path / "uvsweep.sock").exists()
    assert not second.ask_to_show()  # nobody listens: said, not raised
    assert not [t for t in threading.enumerate() if t.name == "uvsweep-instance"]


def test_the_trays_watcher_never_probes_during_the_trays_own_cleanup(
    lockdir: Path, running: Any
) -> None:
    """A probe opens each file, and on Linux an open breaks the write lease a cleanup keeps on
    a file from before its unlink, so the cleanup would keep that file instead of removing it
    (CI caught the tray's own watcher doing so to the tray's cleanup). While the tray cleans,
    a file event waits: its probe and rescan run once the cleanup is over."""
    from uvsweep.model import CleanResult

    app, _icon, _notifier = running(safety_rescan=600)
    seen: list[float] = []
    app.watcher.subscribe(lambda _snapshot, _change: seen.append(time.monotonic()))
    during: list[int] = []
    ended: list[float] = []

    def clean(dirs: list[str]) -> CleanResult:
        before = len(seen)
        (lockdir / A).touch()  # a new file: the watcher would probe it at once, then rescan
        time.sleep(0.6)
        during.append(len(seen) - before)
        ended.append(time.monotonic())
        return CleanResult(dirs)

    app._clean = clean
    app.dispatch("clean")
    eventually(lambda: bool(during) and not app.cleaning)
    assert during == [0], "the watcher looked at the files while the tray was cleaning"
    eventually(lambda: any(when >= ended[0] for when in seen))  # and once it was over
    assert app.counts()[0] == 1
