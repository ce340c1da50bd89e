"""Shared fixtures: real temp dirs, real processes that hold locks, real uv, other users."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import hypothesis  # noqa: F401 - see below
import pytest

from tests import procs
from tests.helpers import FakeUv, StartFakeUv

if TYPE_CHECKING:
    from tests.uv_processes import Start

# Imported up front, not by its plugin at the end of the session: on CPython 3.11 an AST built
# after dbus-fast's compiled code has run on the main thread can fail with "AST constructor
# recursion depth mismatch" (seen when pytest rewrote hypothesis during the terminal summary).

APP_DIR = str(Path(__file__).resolve().parents[1] / "app")
REQUIRE_SYSTEM = os.environ.get("UVSWEEP_REQUIRE_SYSTEM") == "1"


def need(condition: bool, reason: str) -> None:
    """Skip when a system requirement is missing; with UVSWEEP_REQUIRE_SYSTEM=1, fail instead."""
    if condition:
        return
    if REQUIRE_SYSTEM:
        pytest.fail(f"UVSWEEP_REQUIRE_SYSTEM=1 but {reason}")
    pytest.skip(reason)


# ---- nothing a test starts outlives it ---------------------------------------------------------

_UV_BEFORE: set[int] = set()


def pytest_sessionstart(session: pytest.Session) -> None:
    """Mark every process the suite will start; note the uv processes that ran before it."""
    procs.start_marking()
    _UV_BEFORE.update(pid for pid in procs.pids() if procs.name(pid) in procs.UV_NAMES)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Fail the run if a uv, fake uv, uvsweep or keeper the suite started is still running."""
    left = [
        pid for pid in procs.ours() - _UV_BEFORE
        if procs.name(pid) in procs.UV_NAMES or b"uvsweep" in procs.read(pid, "cmdline")
    ]  # fmt: skip
    if not left:
        return
    said = procs.end(left)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.ensure_newline()
        reporter.write_sep("=", "uv processes the suite started outlived it", red=True)
        for line in said:
            reporter.write_line(line)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


_LEFT_BY_TEST = pytest.StashKey[list[str]]()
_BEFORE = pytest.StashKey[set[int]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """When the test's body ends, note what it left running that no fixture keeps (a `clean`
    it could not stop, a keeper it did not wait for): the teardown ends it and fails the test."""
    try:
        return (yield)
    finally:
        if _BEFORE in item.stash:
            left = procs.wait_gone(procs.left_by_test(item.stash[_BEFORE]), timeout=1.0)
            item.stash[_LEFT_BY_TEST] = [procs.describe(pid) for pid in left]


@pytest.fixture(autouse=True)
def _no_leaked_processes(request: pytest.FixtureRequest) -> Iterator[None]:
    """Set up before, and checked after, every other fixture of a test: whatever the test and its
    fixtures started must be gone by then (fixtures end what they start with `procs.stop`); what
    is left is ended, group and all, and the test fails; so does a test whose body left running
    what no fixture keeps (see `procs.keep`), even if a fixture's teardown ended it."""
    procs.forget_kept()
    before = procs.ours()
    request.node.stash[_BEFORE] = before
    yield
    left_by_test = request.node.stash.get(_LEFT_BY_TEST, [])
    left = procs.wait_gone(procs.ours() - before, timeout=1.0)  # some are exiting just now
    said = procs.end(left)
    procs.forget_kept()
    if left_by_test or said:
        pytest.fail(
            "the test left processes running:\n  "
            + "\n  ".join(dict.fromkeys([*left_by_test, *said])),
            pytrace=False,
        )


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leaked, f"test leaked threads: {leaked}"


@pytest.fixture(autouse=True)
def _private_config(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Never read the developer's own settings file, nor write to their log dir.
    path = tmp_path_factory.mktemp("config") / "settings.toml"
    monkeypatch.setenv("UVSWEEP_CONFIG", str(path))
    monkeypatch.setenv("XDG_STATE_HOME", str(path.parent / "state"))


@pytest.fixture
def lockdir(tmp_path: Path) -> Path:
    """An empty temp dir of our own to fill with lock files."""
    path = tmp_path / "tmp"
    path.mkdir()
    return path


class Holder:
    """A child process that holds (or waits for) an flock on a file, as uv does."""

    def __init__(self, path: Path, *, wait: bool = False) -> None:
        code = textwrap.dedent(
            """
            import fcntl, os, sys, time
            fd = os.open(sys.argv[1], os.O_RDWR)
            print("opened", flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
            print("locked", flush=True)
            time.sleep(600)
            """
        )
        self.proc: subprocess.Popen[str] = procs.popen(
            [sys.executable, "-c", code, str(path)],
            stdout=subprocess.PIPE,
            text=True,
            lasting=True,
        )
        assert self.proc.stdout is not None
        assert self.proc.stdout.readline().strip() == "opened"
        if not wait:
            assert self.proc.stdout.readline().strip() == "locked"
        else:
            time.sleep(0.2)  # give it time to block in flock()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        """Kill it (its whole process group) and reap it."""
        procs.stop(self.proc, grace=0)


@pytest.fixture
def hold() -> Iterator[type[Holder]]:
    """Start lock-holding children; every one is killed at the end of the test."""
    started: list[Holder] = []

    class Tracked(Holder):
        def __init__(self, path: Path, *, wait: bool = False) -> None:
            super().__init__(path, wait=wait)
            started.append(self)

    yield Tracked
    for holder in started:
        holder.stop()


@contextmanager
def child_with_file(
    path: Path, *, write: bool = True, lock: bool = False
) -> Iterator[subprocess.Popen[str]]:
    """A child process with `path` open (read-write or read-only), locked or not (uv between its
    open and its lock), until the block ends."""
    code = (
        "import fcntl, os, sys, time\n"
        f"fd = os.open(sys.argv[1], os.{'O_RDWR' if write else 'O_RDONLY'})\n"
        f"{'fcntl.flock(fd, fcntl.LOCK_EX)' if lock else ''}\n"
        "print('ok', flush=True)\n"
        "time.sleep(60)\n"
    )
    child: subprocess.Popen[str] = procs.popen([sys.executable, "-c", code, str(path)],
                                               stdout=subprocess.PIPE, text=True,
                                               lasting=True)  # fmt: skip
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "ok"
        yield child
    finally:
        procs.stop(child, grace=0)


def flock_held(path: Path) -> bool:
    """Whether someone else holds an exclusive flock on `path` right now."""
    import fcntl  # Unix only: conftest itself must import on Windows

    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def lock_free(fd: int) -> bool:
    """Whether nobody holds a flock on the file `fd` refers to (an exclusive try-lock through
    `fd`, let go again at once)."""
    import fcntl  # Unix only: conftest itself must import on Windows

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    fcntl.flock(fd, fcntl.LOCK_UN)
    return True


# ---- real uv ---------------------------------------------------------------------------------


def uv_binary() -> str | None:
    """The uv the dev group installs into the venv (else one on PATH)."""
    scripts = sysconfig.get_path("scripts")
    candidate = os.path.join(scripts, "uv")
    return candidate if os.path.exists(candidate) else shutil.which("uv")


def base_python() -> str:
    """A non-venv interpreter: the one this venv was made from."""
    return os.path.realpath(getattr(sys, "_base_executable", sys.executable))


@pytest.fixture
def uv_env(tmp_path: Path, lockdir: Path) -> dict[str, str]:
    """Environment for running real uv offline with `lockdir` as its temp dir."""
    env = dict(os.environ)
    env.update(
        TMPDIR=str(lockdir),
        UV_OFFLINE="1",
        UV_PYTHON_DOWNLOADS="never",
        UV_NO_PROGRESS="1",
        UV_CACHE_DIR=str(tmp_path / "uv-cache"),
        UV_PYTHON=base_python(),
    )
    for name in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "UV_SYSTEM_PYTHON"):
        env.pop(name, None)
    return env


@pytest.fixture
def uv() -> str:
    found = uv_binary()
    need(found is not None, "uv is not installed (it comes with `uv sync`'s dev group)")
    assert found is not None
    return found


def make_project(root: Path, name: str = "demo", extra: str = "") -> Path:
    """A minimal project with no dependencies: `uv sync` works offline."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pyproject.toml").write_text(
        f'[project]\nname = "{name}"\nversion = "0"\nrequires-python = ">=3.10"\n'
        f"dependencies = []\n{extra}"
    )
    return root


# ---- another user ----------------------------------------------------------------------------


def other_user_python() -> tuple[int, int, str] | None:
    """(uid, gid, interpreter) for running code as `nobody`, or None when we cannot."""
    if os.geteuid() != 0:
        return None
    try:
        import pwd

        nobody = pwd.getpwnam("nobody")
    except (ImportError, KeyError):
        return None
    for python in ("/usr/bin/python3", base_python()):
        if os.path.exists(python) and subprocess.run(
            ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups",
             python, "-c", "pass"],
            capture_output=True, check=False,
        ).returncode == 0:  # fmt: skip
            return nobody.pw_uid, nobody.pw_gid, python
    return None


def run_cli_as_nobody(args: list[str], cwd: str) -> subprocess.CompletedProcess[str]:
    """Run `uvsweep ARGS` as the user `nobody` (the test must have checked other_user_python)."""
    found = other_user_python()
    assert found is not None
    uid, gid, python = found
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": APP_DIR, "UVSWEEP_CONFIG": "/nonexistent/s.toml"}
    if "UVSWEEP_ACCEPT_HIDDEN_PROCESSES" in os.environ:  # the suite runs in a PID namespace
        env["UVSWEEP_ACCEPT_HIDDEN_PROCESSES"] = os.environ["UVSWEEP_ACCEPT_HIDDEN_PROCESSES"]
    return procs.run(
        ["setpriv", f"--reuid={uid}", f"--regid={gid}", "--clear-groups", python, "-m", "uvsweep",
         *args],
        capture_output=True, text=True, env=procs.marked_env(env), cwd=cwd, timeout=60,
    )  # fmt: skip


@pytest.fixture
def shared_tmp() -> Iterator[Path]:
    """A world-traversable dir (pytest's own tmp tree is private to its user), removed after."""
    import tempfile

    path = Path(tempfile.mkdtemp(prefix="uvsweep-test-", dir="/tmp"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for child in path.rglob("*"):
            if child.is_dir() and not child.is_symlink():
                child.chmod(0o755)
        shutil.rmtree(path)


def make_wheel(directory: Path, name: str = "tinydep", version: str = "1.0") -> Path:
    """A minimal pure-Python wheel, so uv can install something offline via --find-links."""
    import base64
    import hashlib
    import zipfile

    directory.mkdir(parents=True, exist_ok=True)
    dist_info = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"VALUE = {version!r}\n",
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: uvsweep-tests\n"
        "Root-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    record.append(f"{dist_info}/RECORD,,")
    files[f"{dist_info}/RECORD"] = "\n".join(record) + "\n"
    wheel = directory / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


# ---- a desktop session: Xvfb, a private session bus, a notification server, a tray host -------

DESKTOP_PACKAGES = "xvfb, dbus and x11-utils (Debian: xvfb dbus-x11 x11-utils)"


class Desktop:
    """A private X display and session bus, with programs started on them; all stopped after."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.before = procs.ours()
        read_fd, write_fd = os.pipe()
        xvfb = procs.popen(
            ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "800x600x24", "-nolisten", "tcp"],
            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            lasting=True,
        )  # fmt: skip
        self.procs.append(xvfb)
        os.close(write_fd)
        with os.fdopen(read_fd) as pipe:
            number = pipe.readline().strip()
        self.display = f":{number}"
        bus = procs.run(
            ["dbus-daemon", "--session", "--fork", "--print-address=1", "--print-pid=1"],
            capture_output=True, text=True, check=True, timeout=30,
        )  # fmt: skip
        address, pid = bus.stdout.split()[:2]
        self.bus_pid = int(pid)
        procs.keep(self.bus_pid)
        self.env = {
            **os.environ, "DISPLAY": self.display, "DBUS_SESSION_BUS_ADDRESS": address,
            "NO_AT_BRIDGE": "1", "XDG_SESSION_TYPE": "x11",
        }  # fmt: skip
        deadline = time.monotonic() + 10
        while procs.run(["xdpyinfo"], env=self.env, capture_output=True,
                             check=False).returncode != 0:  # fmt: skip
            assert time.monotonic() < deadline, "Xvfb did not come up"
            time.sleep(0.05)

    def start(self, *argv: str) -> subprocess.Popen[bytes]:
        proc: subprocess.Popen[bytes] = procs.popen(
            argv, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, lasting=True
        )
        self.procs.append(proc)
        return proc

    def run(self, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return procs.run(list(argv), env=self.env, capture_output=True, text=True,
                              timeout=timeout, check=False)  # fmt: skip

    def stop(self) -> None:
        """End every program started on it (each one's process group), the bus, then Xvfb."""
        for proc in reversed(self.procs):
            procs.stop(proc)
        procs.stop(self.bus_pid)
        # and what the bus started for them (xfconfd, a notification daemon): a test's own
        # leftovers were named when its body ended
        procs.end(procs.ours() - self.before)


@pytest.fixture
def desktop() -> Iterator[Desktop]:
    need(all(shutil.which(p) for p in ("Xvfb", "dbus-daemon", "xdpyinfo")), DESKTOP_PACKAGES)
    session = Desktop()
    try:
        yield session
    finally:
        session.stop()


@pytest.fixture
def dunst(desktop: Desktop) -> Desktop:
    """A real notification server (dunst) on the desktop's private bus."""
    need(shutil.which("dunst") is not None and shutil.which("dunstctl") is not None,
         "dunst is not installed (Debian: dunst)")  # fmt: skip
    desktop.start("dunst")
    deadline = time.monotonic() + 10
    while desktop.run("dunstctl", "is-paused").returncode != 0:
        assert time.monotonic() < deadline, "dunst did not come up"
        time.sleep(0.05)
    return desktop


@pytest.fixture
def trayer(desktop: Desktop) -> Desktop:
    """An XEmbed system tray (trayer) docked at the top right of the desktop."""
    need(shutil.which("trayer") is not None, "trayer is not installed (Debian: trayer)")
    desktop.start("trayer", "--edge", "top", "--align", "right", "--widthtype", "request",
                  "--height", "24", "--transparent", "false", "--tint", "0xdddddd")  # fmt: skip
    deadline = time.monotonic() + 10
    while "panel" not in desktop.run("xwininfo", "-root", "-tree").stdout:
        assert time.monotonic() < deadline, "trayer did not come up"
        time.sleep(0.05)
    return desktop


@pytest.fixture(autouse=True, scope="session")
def _inside_a_pid_namespace() -> None:
    """Run inside a child PID namespace (`unshare --pid --fork --mount-proc`), the suite's dirs
    are its own: say so once, as a container's image would, so `clean` does not refuse them."""
    if sys.platform.startswith("linux"):
        from uvsweep import visibility

        if not visibility.detect().sees_all_namespaces:
            os.environ["UVSWEEP_ACCEPT_HIDDEN_PROCESSES"] = "1"


@pytest.fixture
def session_bus(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A private session bus (dbus-daemon) at a fixed socket path; its address. Killed after."""
    need(shutil.which("dbus-daemon") is not None, "dbus-daemon is not installed (Debian: dbus)")
    import tempfile

    from tests.gui import BUSES, SessionBus

    # a short path: unix socket paths are limited to 108 bytes
    directory = Path(tempfile.mkdtemp(prefix="uvsweep-bus-"))
    bus = SessionBus(directory)
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", bus.address)
    monkeypatch.setenv("PYSTRAY_BACKEND", "dummy")  # pystray's own backends need a display
    BUSES.append(bus)
    try:
        yield bus.address
    finally:
        bus.kill()
        BUSES.remove(bus)
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def fake_uv(tmp_path: Path) -> Iterator[StartFakeUv]:
    """Start processes named `uv` (copies of `sleep`): the gate sees them as uv. Ended after."""
    started: list[FakeUv] = []
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()

    def start(seconds: float = 60) -> FakeUv:
        fake = FakeUv(bin_dir, seconds)
        started.append(fake)
        return fake

    yield start
    for fake in started:
        procs.stop(fake.proc, grace=0)


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Start]:
    """Start a process in a session of its own, its output in a log of the test's; every one is
    ended, children too, at the end (these are uv processes the test leaves running on purpose)."""
    started: list[subprocess.Popen[bytes]] = []
    logs = tmp_path / "logs"
    logs.mkdir()

    def run(argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        with open(logs / f"{len(started)}.log", "wb") as log:
            proc: subprocess.Popen[bytes] = procs.popen(
                argv, stdout=log, stderr=log, lasting=True, **kwargs
            )
        started.append(proc)
        return proc

    yield run
    for proc in started:
        procs.stop(proc, grace=0)


@pytest.fixture
def running(lockdir: Path) -> Iterator[Callable[..., tuple[Any, Any, Any]]]:
    """`running(**settings)`: a real `TrayApp` on `lockdir` (its watcher, cleaner) with a stand-in
    icon, notifier and autostart (`tests.tray_doubles`): (app, icon, notifier). Stopped after;
    `running.opened` lists what it asked the file manager to open."""
    from tests.helpers import eventually
    from tests.tray_doubles import FakeAutostart, FakeIcon, FakeNotifier
    from uvsweep.settings import Settings
    from uvsweep.tray.app import TrayApp

    apps: list[TrayApp] = []
    opened: list[tuple[str, bool]] = []

    def start(**settings: Any) -> tuple[TrayApp, FakeIcon, FakeNotifier]:
        saved: list[Settings] = []
        notifier = FakeNotifier()
        app = TrayApp([str(lockdir)], Settings(**settings), save_settings=saved.append,
                      notifier=notifier, autostart=FakeAutostart(),  # type: ignore[arg-type]
                      opener=lambda path, reveal: opened.append((path, reveal)))  # fmt: skip
        app.saved = saved  # type: ignore[attr-defined]
        icon = FakeIcon()
        app.icon = icon
        app.start_background()
        apps.append(app)
        eventually(lambda: app.snapshot is not None)
        return app, icon, notifier

    start.opened = opened  # type: ignore[attr-defined]
    yield start
    for app in apps:
        app.stop_background()
