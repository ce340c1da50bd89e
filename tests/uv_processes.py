"""Real uv processes for the gate's tests: parked ones (running a user's command) and the facts
a test reads about them itself from /proc. Processes are started with the `start` fixture
(conftest), each in a session of its own, ended as a whole after the test."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path

from tests.conftest import make_project, need, uv_binary
from tests.helpers import wait_for

#: The `start` fixture: `start(argv, **popen_kwargs)`, output to a log file of the test's.
Start = Callable[..., subprocess.Popen[bytes]]


def real_uv() -> str:
    found = uv_binary()
    need(found is not None, "uv is not installed (it comes with `uv sync`'s dev group)")
    assert found is not None
    return found


def children(pid: int) -> list[list[str]]:
    """The command lines of `pid`'s live children, read from /proc by the test."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_bytes()
            fields = stat[stat.rfind(b")") + 2 :].split()
            if int(fields[1]) != pid or fields[0] in (b"Z", b"X"):
                continue
            raw = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        found.append(raw.decode(errors="replace").rstrip("\0").split("\0"))
    return found


def has_child(pid: int, program: str) -> Callable[[], bool]:
    return lambda: any(
        any(os.path.basename(word) == program for word in argv[:3]) for argv in children(pid)
    )


def waits_for_a_lock(pid: int) -> Callable[[], bool]:
    def check() -> bool:
        lines = Path("/proc/locks").read_text().splitlines()
        return any("->" in line and f" {pid} " in line for line in lines)

    return check


def tool_wheel(directory: Path) -> Path:
    """A wheel with a console script `sleeper` that touches $SLEEPER_MARKER and sleeps."""
    directory.mkdir(parents=True, exist_ok=True)
    info = "sleeper-1.0.dist-info"
    files = {
        "sleeper/__init__.py": "import os, pathlib, time\n\ndef main():\n"
        "    pathlib.Path(os.environ['SLEEPER_MARKER']).touch()\n    time.sleep(600)\n",
        f"{info}/METADATA": "Metadata-Version: 2.1\nName: sleeper\nVersion: 1.0\n",
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: uvsweep-tests\n"
        "Root-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/entry_points.txt": "[console_scripts]\nsleeper = sleeper:main\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    files[f"{info}/RECORD"] = "\n".join([*record, f"{info}/RECORD,,"]) + "\n"
    wheel = directory / "sleeper-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return directory


SCRIPT = """\
#!/usr/bin/env -S {uv} run --script
# /// script
# requires-python = ">=3.8"
# dependencies = []
# ///
import pathlib, sys, time
pathlib.Path(sys.argv[1]).touch()
time.sleep(600)
"""


def start_parked(
    how: str, uv: str, start: Start, tmp_path: Path, env: dict[str, str]
) -> subprocess.Popen[bytes]:
    """A uv that runs a user's command, started and waited for until that command runs."""
    marker = tmp_path / "started"
    if how == "run":
        proc = start([uv, "run", "--no-project", "--", "sleep", "600"], env=env, cwd=tmp_path)
        wait_for("`sleep 600` under uv run", has_child(proc.pid, "sleep"))
        return proc
    if how == "project":
        project = make_project(tmp_path / "proj")
        proc = start([uv, "run", "--", "sleep", "600"], env=env, cwd=project)
        wait_for("`sleep 600` under uv run in a project", has_child(proc.pid, "sleep"))
        return proc
    if how == "uvx":
        wheels = tool_wheel(tmp_path / "wheels")
        argv = (
            [str(Path(uv).with_name("uvx"))]
            if os.path.basename(uv) == "uv"
            else [uv, "tool", "run"]
        )  # a symlink named otherwise cannot be uvx: `uvx` finds uv by its own name
        proc = start([*argv, "--find-links", str(wheels), "sleeper"],
                     env={**env, "SLEEPER_MARKER": str(marker)}, cwd=tmp_path)  # fmt: skip
    else:  # "script" (uv run --script) or "shebang" (the script run as a program)
        script = tmp_path / "sleepy.py"
        script.write_text(SCRIPT.format(uv=os.path.basename(uv)))
        script.chmod(0o755)
        if how == "script":
            argv = [uv, "run", "--script", str(script), str(marker)]
        else:
            argv = [str(script), str(marker)]
            env = {**env, "PATH": f"{os.path.dirname(uv)}:{env.get('PATH', '/usr/bin:/bin')}"}
        proc = start(argv, env=env, cwd=tmp_path)
    wait_for(f"the command of {how}", marker.exists)
    return proc
