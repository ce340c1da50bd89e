"""The tray app on a real desktop (issue 6): time to a visible icon, badge latency, idle cost.

Run: `uv run python benchmarks/tray_bench.py [--events N] [--idle SECONDS]`. Needs Xvfb,
dbus-daemon, trayer and x11-utils (what `.ci/run` installs). The tray runs with pystray's xorg
backend docked in trayer, so no GTK is measured, against a dir of its own.

- Start to visible: from `uvsweep tray` being started to its icon window being docked in the tray.
  The baseline is `python -c pass` started the same way.
- Badge latency: a lock file appears -> the icon's title (set with the badge, on the same update)
  says so, over N events (goal: p95 < 150 ms). Read with `xprop` in a loop, so the figure
  includes up to one `xprop` round (its cost is measured and printed as the baseline).
- Idle with 50 lock files for SECONDS: CPU, wakeups (voluntary context switches of every thread)
  and RSS (goals: < 0.1 % of one core, RSS < 45 MB). Baseline: a sleeping Python.

Writes the "Tray" section of benchmarks/RESULTS.md. Bytecode is compiled first.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import record
from scan_bench import compile_bytecode
from watch_bench import pct, proc_totals


def start_tray(exe: str, locks: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([exe, "tray", "--dir", str(locks)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip


class Session:
    def __init__(self) -> None:
        read_fd, write_fd = os.pipe()
        self.procs = [subprocess.Popen(
            ["Xvfb", "-displayfd", str(write_fd), "-screen", "0", "800x600x24", "-nolisten", "tcp"],
            pass_fds=(write_fd,), stderr=subprocess.DEVNULL,
        )]  # fmt: skip
        os.close(write_fd)
        with os.fdopen(read_fd) as pipe:
            display = ":" + pipe.readline().strip()
        argv = ["dbus-daemon", "--session", "--fork", "--print-address=1", "--print-pid=1"]
        bus = subprocess.run(argv, capture_output=True, text=True, check=True)
        address, pid = bus.stdout.split()[:2]
        self.bus_pid = int(pid)
        self.env = {**os.environ, "DISPLAY": display, "DBUS_SESSION_BUS_ADDRESS": address,
                    "NO_AT_BRIDGE": "1", "PYSTRAY_BACKEND": "xorg"}  # fmt: skip
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        while subprocess.run(
            ["xdpyinfo"], env=self.env, capture_output=True, check=False
        ).returncode:
            time.sleep(0.05)
        self.procs.append(subprocess.Popen(
            ["trayer", "--edge", "top", "--align", "right", "--widthtype", "request"],
            env=self.env, stderr=subprocess.DEVNULL,
        ))  # fmt: skip
        while "panel" not in self.tree():
            time.sleep(0.05)

    def tree(self) -> str:
        argv = ["xwininfo", "-root", "-tree"]
        return subprocess.run(
            argv, env=self.env, capture_output=True, text=True, check=False
        ).stdout

    def icon_id(self) -> str | None:
        match = re.search(r"(0x[0-9a-f]+) \"[^\"]*\": \(\"uvsweepSystemTrayIcon\"", self.tree())
        return match.group(1) if match else None

    def title(self, window: str) -> str:
        argv = ["xprop", "-id", window, "WM_NAME"]
        out = subprocess.run(argv, env=self.env, capture_output=True, text=True, check=False).stdout
        return out.split("=", 1)[-1].strip().strip('"')

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
            proc.wait()
        os.kill(self.bus_pid, signal.SIGTERM)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument("--idle", type=float, default=60.0)
    args = parser.parse_args()
    compile_bytecode()
    exe = str(Path(sys.executable).with_name("uvsweep"))
    session = Session()
    scratch = Path(tempfile.mkdtemp(prefix="uvsweep-tray-bench-"))
    try:
        env = {**session.env, "XDG_RUNTIME_DIR": str(scratch),
               "UVSWEEP_CONFIG": str(scratch / "settings.toml")}  # fmt: skip
        locks = scratch / "locks"
        locks.mkdir()
        # start to a docked icon, five times; and the interpreter alone, the same way
        starts, floors = [], []
        for _ in range(5):
            began = time.monotonic()
            app = start_tray(exe, locks, env)
            while session.icon_id() is None:
                time.sleep(0.005)
            starts.append(time.monotonic() - began)
            app.send_signal(signal.SIGTERM)
            app.wait(10)
            while session.icon_id() is not None:
                time.sleep(0.01)
            began = time.monotonic()
            subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
            floors.append(time.monotonic() - began)
        # badge latency
        app = start_tray(exe, locks, env)
        while (window := session.icon_id()) is None:
            time.sleep(0.01)
        while session.title(window) != "No orphaned uv lock files":
            time.sleep(0.01)
        latencies, probes = [], []
        for index in range(args.events):
            expected = f"{index + 1} orphaned uv lock file" + ("" if index == 0 else "s")
            began = time.monotonic()
            (locks / f"uv-{index:016x}.lock").touch()
            while session.title(window) != expected:
                pass
            latencies.append(time.monotonic() - began)
            began = time.monotonic()
            session.title(window)
            probes.append(time.monotonic() - began)
        for index in range(args.events, 50):
            (locks / f"uv-{index:016x}.lock").touch()
        time.sleep(3)
        cpu0, sw0, _ = proc_totals(app.pid)
        time.sleep(args.idle)
        cpu1, sw1, rss = proc_totals(app.pid)
        app.send_signal(signal.SIGTERM)
        app.wait(10)
        code = f"import time; time.sleep({args.idle + 10})"
        sleeper = subprocess.Popen([sys.executable, "-c", code], env=env)
        time.sleep(3)
        bcpu0, bsw0, _ = proc_totals(sleeper.pid)
        time.sleep(min(args.idle, 10))
        bcpu1, bsw1, brss = proc_totals(sleeper.pid)
        sleeper.kill()
        sleeper.wait()
    finally:
        session.close()

    ms = [x * 1000 for x in latencies]
    p95 = pct(ms, 0.95)
    cpu = 100 * (cpu1 - cpu0) / args.idle
    window_s = min(args.idle, 10)
    base_cpu, base_wakeups = 100 * (bcpu1 - bcpu0) / window_s, (bsw1 - bsw0) / window_s
    body = f"""
### Start to a docked icon (xorg backend in trayer under Xvfb, bytecode compiled)

Median of 5: **{statistics.median(starts) * 1000:.0f} ms** (goal < 1000 ms); `python -c pass`
started the same way: {statistics.median(floors) * 1000:.0f} ms.

### Badge latency ({args.events} lock files created one by one)

p50 {statistics.median(ms):.1f} ms, **p95 {p95:.1f} ms** (goal < 150 ms:
{"met" if p95 < 150 else "NOT met"}). One `xprop` read of the title costs
{statistics.median(probes) * 1000:.1f} ms (p50), which the figures include at most once.

### Idle with 50 lock files for {args.idle:.0f} s

| process | CPU (% of one core) | wakeups per second | RSS |
|---|---|---|---|
| `uvsweep tray` | {cpu:.3f} % | {(sw1 - sw0) / args.idle:.2f} | {rss / 1e6:.1f} MB |
| baseline: a sleeping `python` | {base_cpu:.3f} % | {base_wakeups:.2f} | {brss / 1e6:.1f} MB |

Goals (< 0.1 % CPU, RSS < 45 MB): {"met" if cpu < 0.1 and rss / 1e6 < 45 else "NOT met"}.
"""
    print(body)
    record("Tray", body)


if __name__ == "__main__":
    main()
