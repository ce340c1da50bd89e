"""The notification helper and its packaging, per OS, on Linux with the OS's behaviour modelled.

desktop-notifier is replaced by a fake package (on `sys.path` in the helper's process) that
behaves as the real one does on the OS in question.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import types
from pathlib import Path
from typing import Any

import pytest

from tests import procs
from uvsweep import autostart
from uvsweep.tray import notify, notifyd

ROOT = Path(__file__).resolve().parents[2]

FAKE_NOTIFIER = """
import asyncio, logging, os
logger = logging.getLogger("desktop_notifier")
MODE = os.environ["FAKE_NOTIFIER"]

class Button:
    def __init__(self, title, on_pressed=None):
        self.title, self.on_pressed = title, on_pressed

class Icon:
    def __init__(self, path=None):
        self.path = path

class _Native:
    def __init__(self):
        self.authorised = False

    async def request_authorisation(self):
        await asyncio.sleep(0.2)  # the user answers the prompt
        self.authorised = MODE != "macos-denied"
        return self.authorised

    async def send(self, title, message, buttons=(), on_dispatched=None, **_kw):
        if MODE.startswith("macos") and not self.authorised:
            await asyncio.sleep(6)  # the first send opens the permission prompt and waits
        on_dispatched()

class DesktopNotifier:
    def __init__(self, app_name, app_icon=None):
        if MODE == "dummy":
            from desktop_notifier.backends.dummy import DummyNotificationCenter
            logger.warning("Notification Center can only be used from an app bundle")
            self._backend = DummyNotificationCenter()
        else:
            self._backend = _Native()

    async def request_authorisation(self):
        return await self._backend.request_authorisation()

    async def send(self, **kwargs):
        await self._backend.send(**kwargs)
"""

FAKE_DUMMY = '''
class DummyNotificationCenter:
    """desktop-notifier's dummy backend: shows nothing, and says it did."""
    async def send(self, title, message, buttons=(), on_dispatched=None, **_kw):
        on_dispatched()
'''

#: Windows' event loops cannot read stdin through connect_read_pipe (CPython gh-87694), nor
#: watch it with add_reader (the Proactor loop has none)
WINDOWS_LOOP = """
import asyncio
def refuse(*_args, **_kwargs):
    raise NotImplementedError("not on this loop (as on Windows)")
for cls in (asyncio.BaseEventLoop, asyncio.SelectorEventLoop):
    cls.connect_read_pipe = refuse
    cls.add_reader = refuse
"""


@pytest.fixture
def fake_notifier(tmp_path: Path) -> Path:
    package = tmp_path / "fake" / "desktop_notifier"
    (package / "backends").mkdir(parents=True)
    (package / "__init__.py").write_text(FAKE_NOTIFIER)
    (package / "backends" / "__init__.py").write_text("")
    (package / "backends" / "dummy.py").write_text(FAKE_DUMMY)
    return tmp_path / "fake"


def helper(fake: Path, mode: str, *, windows_loop: bool = False, platform: str = "linux") -> Any:
    code = textwrap.dedent(f"""
        import asyncio, sys
        sys.path.insert(0, {str(fake)!r})
        {"exec(" + repr(WINDOWS_LOOP) + ")" if windows_loop else ""}
        from uvsweep.tray import notifyd
        asyncio.run(notifyd.serve(None, platform={platform!r}))
    """)
    env = {**os.environ, "FAKE_NOTIFIER": mode}
    pipe = subprocess.PIPE
    argv = [sys.executable, "-c", code]
    return procs.popen(argv, stdin=pipe, stdout=pipe, stderr=pipe, text=True, env=env)


def ask(proc: Any, ident: int = 1) -> dict[str, Any]:
    proc.stdin.write(json.dumps({"id": ident, "title": "t", "message": "m", "button": None}) + "\n")
    proc.stdin.flush()
    line = proc.stdout.readline()
    assert line, f"the helper answered nothing: {proc.stderr.read()}"
    return json.loads(line)  # type: ignore[no-any-return]


def finish(proc: Any) -> int:
    proc.stdin.close()
    try:
        return int(proc.wait(20))
    finally:
        procs.stop(proc, grace=0)
        proc.stdout.close()
        proc.stderr.close()


def test_the_helper_reads_its_requests_on_a_windows_event_loop(fake_notifier: Path) -> None:
    """Finding 5: `connect_read_pipe(sys.stdin)` does not work on Windows' loop, and the request
    was already written: nothing came back and the fallback never ran."""
    proc = helper(fake_notifier, "native", windows_loop=True)
    try:
        assert ask(proc) == {"id": 1, "status": "dispatched"}
        assert ask(proc, 2) == {"id": 2, "status": "dispatched"}
    finally:
        assert finish(proc) == 0


def test_desktop_notifiers_dummy_backend_is_a_failure(fake_notifier: Path) -> None:
    """Finding 7: from a Python that is not an app bundle, macOS gets the dummy backend, which
    reports "dispatched" for notifications nobody sees."""
    proc = helper(fake_notifier, "dummy", platform="darwin")
    try:
        reply = ask(proc)
        assert reply["status"] == "failed" and "app bundle" in reply["reason"]
    finally:
        finish(proc)


def test_macos_waits_for_the_permission_prompt(fake_notifier: Path) -> None:
    """Finding 7: the first notification timed out (5 s) while the permission prompt was open."""
    proc = helper(fake_notifier, "macos", platform="darwin")
    try:
        assert ask(proc) == {"id": 1, "status": "dispatched"}
    finally:
        finish(proc)


def test_macos_permission_denied_is_a_failure(fake_notifier: Path) -> None:
    proc = helper(fake_notifier, "macos-denied", platform="darwin")
    try:
        reply = ask(proc)
        assert reply["status"] == "failed" and "not allowed" in reply["reason"]
    finally:
        finish(proc)


def test_a_helper_that_dies_without_answering_falls_back() -> None:
    shown: list[tuple[str, str]] = []
    done = threading.Event()

    def fallback(title: str, message: str) -> bool:
        shown.append((title, message))
        done.set()
        return True

    dies = [sys.executable, "-c", "import sys; sys.stdin.readline(); sys.exit(3)"]
    notifier = notify.Notifier(fallback=fallback, command=dies)
    notifier.start()
    try:
        notifier.send("uvsweep", "3 new orphaned uv lock files")
        assert done.wait(20), "the message was lost"
    finally:
        notifier.stop()
        for thread in threading.enumerate():
            if thread.name == "uvsweep-notify":  # the reader of the helper that died
                thread.join(10)
    assert shown == [("uvsweep", "3 new orphaned uv lock files")]
    assert notifier.backend == "pystray" and "exited (3)" in notifier.failure


def test_helpers_open_no_console_window_on_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    assert notify.no_window_flags("win32") == 0x08000000  # CREATE_NO_WINDOW
    assert notify.no_window_flags("linux") == 0
    seen: dict[str, Any] = {}

    class Popen:
        def __init__(self, argv: Any, **kwargs: Any) -> None:
            seen.update(kwargs)
            raise OSError("stop here")

    monkeypatch.setattr(notify.subprocess, "Popen", Popen)
    monkeypatch.setattr(notify, "no_window_flags", lambda: 0x08000000)
    notifier = notify.Notifier(fallback=lambda _t, _m: True, command=["x"])
    notifier.start()
    notifier.send("t", "m")
    assert seen["creationflags"] == 0x08000000


def test_the_installer_shortcut_carries_desktop_notifiers_app_id() -> None:
    """Finding 9: toasts are sent under the AppUserModelID desktop-notifier registers (its app
    name); the Start-menu shortcut must carry the same one."""
    iss = (ROOT / "packaging" / "windows" / "uvsweep.iss").read_text(encoding="utf-8")
    ids = [line.split("AppUserModelID:")[1].strip().strip('"') for line in iss.splitlines()
           if "AppUserModelID:" in line and not line.startswith(";")]  # fmt: skip
    assert ids == [notifyd.APP_NAME]


def test_windows_starts_the_windowed_program() -> None:
    """Finding 6: the Run key, the shortcut and `autostart enable` start `uvsweepw.exe`."""
    iss = (ROOT / "packaging" / "windows" / "uvsweep.iss").read_text(encoding="utf-8")
    starts = [line for line in iss.splitlines()
              if not line.startswith(";") and "tray" in line and ".exe" in line]  # fmt: skip
    assert len(starts) == 3 and all("uvsweepw.exe" in line for line in starts)
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["scripts"]["uvsweep"] == "uvsweep.cli:main"  # the CLI keeps its console
    assert project["gui-scripts"]["uvsweepw"] == "uvsweep.cli:main"


def test_autostart_on_windows_uses_the_windowed_program(tmp_path: Path) -> None:
    (tmp_path / "uvsweep.exe").touch()
    (tmp_path / "uvsweepw.exe").touch()
    for executable, frozen in ((tmp_path / "uvsweep.exe", True), (tmp_path / "python.exe", False)):
        assert autostart.installed_command(str(executable), frozen=frozen, platform="win32") == [
            str(tmp_path / "uvsweepw.exe"),
            "tray",
        ]


class _Recorder:
    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __call__(self, kind: str) -> Any:
        def record(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((kind, args, kwargs))
            return type(kind, (), {"scripts": [], "pure": [], "binaries": [], "datas": []})()

        return record


@pytest.mark.parametrize("platform", ["win32", "darwin", "linux"])
def test_the_pyinstaller_spec_per_os(platform: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The spec run with PyInstaller's build steps recorded, as on each OS."""
    recorder = _Recorder()
    hooks = types.ModuleType("PyInstaller.utils.hooks")
    hooks.collect_submodules = lambda name: [name]  # type: ignore[attr-defined]
    for name in ("PyInstaller", "PyInstaller.utils"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "PyInstaller.utils.hooks", hooks)
    monkeypatch.setattr(sys, "platform", platform)
    spec = ROOT / "packaging" / "uvsweep.spec"
    names = {kind: recorder(kind) for kind in ("Analysis", "PYZ", "EXE", "COLLECT", "BUNDLE")}
    exec(compile(spec.read_text(encoding="utf-8"), str(spec), "exec"),
         {"SPECPATH": str(spec.parent), "__name__": "__main__", **names})  # fmt: skip
    exes = {call[2]["name"]: call[2]["console"] for call in recorder.calls if call[0] == "EXE"}
    if platform == "win32":
        assert exes == {"uvsweep": True, "uvsweepw": False}
    elif platform == "darwin":
        assert exes == {"uvsweep": False}
        bundle = next(call for call in recorder.calls if call[0] == "BUNDLE")
        assert bundle[2]["info_plist"]["LSUIElement"] is True
        assert bundle[2]["info_plist"]["NSHighResolutionCapable"] is True
    else:
        assert exes == {"uvsweep": True}


def test_a_windowed_program_without_stdout_or_stderr_runs(lockdir: Path) -> None:
    """Finding 6: pythonw and PyInstaller's windowed builds have no sys.stdout or sys.stderr."""
    (lockdir / "uv-00000000000000aa.lock").touch()
    code = (
        "import sys; sys.stdout = sys.stderr = None\n"
        "from uvsweep.cli import main\n"
        f"raise SystemExit(main(['scan', '--json', '--dir', {str(lockdir)!r}]))\n"
    )
    argv = [sys.executable, "-c", code]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr  # a finished scan, not a traceback
    assert "Traceback" not in done.stderr


def test_doctor_says_a_plain_python_on_macos_has_no_notifications() -> None:
    from uvsweep.doctor import notification_service

    plain = notification_service(platform="darwin", executable="/usr/local/bin/python3")
    assert plain.startswith("none:") and "app bundle" in plain
    bundled = "/Applications/uvsweep.app/Contents/MacOS/uvsweep"
    assert "notification center" in notification_service(platform="darwin", executable=bundled)


def test_a_malformed_request_is_skipped(fake_notifier: Path) -> None:
    proc = helper(fake_notifier, "native")
    try:
        proc.stdin.write('not json\n{"title": "no id"}\n[1, 2]\n')
        assert ask(proc, 7) == {"id": 7, "status": "dispatched"}
    finally:
        assert finish(proc) == 0
