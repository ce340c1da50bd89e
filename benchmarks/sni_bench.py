"""The StatusNotifierItem tray under a burst (issue 14): 1,000 lock files created over 10 s with
`uvsweep tray` shown by a real SNI host (xfce4-panel under Xvfb, a private session bus).

Run: `uv run python benchmarks/sni_bench.py [--files N] [--seconds S] [--idle SECONDS]`. Needs
Xvfb, dbus-daemon, dbus-monitor and xfce4-panel.

- Icon updates: NewIcon signals from the item (counted by `dbus-monitor`) during the burst and
  until the badge is final, per second and in all (goal: a handful per second, not one per file).
- Tray CPU: CPU seconds of the tray process over the burst, as % of one core.
- Bus bytes: what the tray wrote to the bus socket (its own count, logged when it stops).
- Registered: the item is still in the watcher's RegisteredStatusNotifierItems at the end.
- Idle RSS with the SNI backend, 50 lock files, after SECONDS (goal < 35 MB).

Writes the "Tray (SNI)" section of benchmarks/RESULTS.md. Bytecode is compiled first.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import record
from scan_bench import compile_bytecode
from watch_bench import proc_totals

REGISTERED = [
    "dbus-send", "--session", "--print-reply", "--dest=org.kde.StatusNotifierWatcher",
    "/StatusNotifierWatcher", "org.freedesktop.DBus.Properties.Get",
    "string:org.kde.StatusNotifierWatcher",
]  # fmt: skip


class Session:
    """Xvfb, a session bus and xfce4-panel (its watcher and host up)."""

    def __init__(self, home: Path) -> None:
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
                    "NO_AT_BRIDGE": "1", "HOME": str(home), "XDG_CONFIG_HOME": str(home / "c"),
                    "XDG_STATE_HOME": str(home / "s"),
                    "XDG_CACHE_HOME": str(home / "k")}  # fmt: skip
        for name in ("PYTHONDONTWRITEBYTECODE", "PYSTRAY_BACKEND"):
            self.env.pop(name, None)
        while subprocess.run(["xdpyinfo"], env=self.env, capture_output=True,
                             check=False).returncode:  # fmt: skip
            time.sleep(0.05)
        self.procs.append(
            subprocess.Popen(
                ["xfce4-panel"], env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
        )
        deadline = time.monotonic() + 60
        while "boolean true" not in self.ask("IsStatusNotifierHostRegistered"):
            if time.monotonic() > deadline:
                raise SystemExit("xfce4-panel's StatusNotifierWatcher never came up")
            time.sleep(0.1)

    def ask(self, prop: str) -> str:
        return subprocess.run([*REGISTERED, f"string:{prop}"], env=self.env, capture_output=True,
                              text=True, check=False).stdout  # fmt: skip

    def items(self) -> list[str]:
        return re.findall(r'string "([^"]+)"', self.ask("RegisteredStatusNotifierItems"))

    def close(self) -> None:
        for proc in reversed(self.procs):
            proc.terminate()
            proc.wait()
        os.kill(self.bus_pid, signal.SIGTERM)


def title(session: Session, service: str) -> str:
    out = subprocess.run(
        ["dbus-send", "--session", "--print-reply", f"--dest={service}", "/StatusNotifierItem",
         "org.freedesktop.DBus.Properties.Get", "string:org.kde.StatusNotifierItem",
         "string:Title"],
        env=session.env, capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    found = re.search(r'string "([^"]*)"', out)
    return found.group(1) if found else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--idle", type=float, default=20.0)
    args = parser.parse_args()
    compile_bytecode()
    exe = str(Path(sys.executable).with_name("uvsweep"))
    scratch = Path(tempfile.mkdtemp(prefix="uvsweep-sni-bench-"))
    session = Session(scratch / "home")
    monitor = None
    try:
        env = {**session.env, "XDG_RUNTIME_DIR": str(scratch),
               "UVSWEEP_CONFIG": str(scratch / "settings.toml")}  # fmt: skip
        (scratch / "settings.toml").write_text("notifications = false\n")
        locks = scratch / "locks"
        locks.mkdir()
        app = subprocess.Popen([exe, "tray", "--dir", str(locks)], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 30
        while not session.items():
            if time.monotonic() > deadline:
                raise SystemExit("the tray never registered")
            time.sleep(0.05)
        service = session.items()[0].split("/")[0]
        while title(session, service) != "No orphaned uv lock files":
            time.sleep(0.05)
        time.sleep(1)
        log = scratch / "monitor.log"
        with open(log, "w") as out:
            monitor = subprocess.Popen(
                ["dbus-monitor", "--session", f"type='signal',sender='{service}'"],
                env=session.env, stdout=out, stderr=subprocess.DEVNULL,
            )  # fmt: skip
        time.sleep(0.5)
        cpu0, _, _ = proc_totals(app.pid)
        began = time.monotonic()
        for index in range(args.files):
            (locks / f"uv-{index:016x}.lock").touch()
            wait = began + (index + 1) * args.seconds / args.files - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        burst = time.monotonic() - began
        expected = f"{args.files} orphaned uv lock files"
        while title(session, service) != expected:
            time.sleep(0.05)
        settled = time.monotonic() - began
        cpu1, _, _ = proc_totals(app.pid)
        time.sleep(1)
        monitor.terminate()
        monitor.wait()
        signals = log.read_text()
        new_icons = signals.count("member=NewIcon")
        layouts = signals.count("member=LayoutUpdated")
        props = signals.count("member=ItemsPropertiesUpdated")
        registered = any(item.startswith(service) for item in session.items())
        # idle RSS: 50 lock files
        for path in sorted(locks.iterdir())[50:]:
            path.unlink()
        time.sleep(args.idle)
        _, _, rss = proc_totals(app.pid)
        app.send_signal(signal.SIGTERM)
        app.wait(10)
        tray_log = (scratch / "home" / "s" / "uvsweep" / "log" / "uvsweep.log").read_text()
        sent = re.findall(r"(\d+) bytes sent on the bus", tray_log)
        bytes_sent = int(sent[-1]) if sent else -1
    finally:
        if monitor is not None and monitor.poll() is None:
            monitor.kill()
        session.close()
        shutil.rmtree(scratch, ignore_errors=True)
    load = os.getloadavg()
    cpu = 100 * (cpu1 - cpu0) / settled
    body = f"""
### {args.files} lock files created over {args.seconds:.0f} s, shown in xfce4-panel (Xvfb)

The machine was loaded by other work while this ran (load average {load[0]:.1f} on
{os.cpu_count()} cores), so the times are upper bounds.

| measure | value |
|---|---|
| files created in | {burst:.1f} s; title final {settled:.1f} s after the first |
| icon updates (NewIcon) | {new_icons} in all, **{new_icons / settled:.1f} per second** |
| menu signals | {layouts} LayoutUpdated, {props} ItemsPropertiesUpdated |
| tray CPU over the burst | {cpu:.1f} % of one core |
| bytes the tray sent on the bus | {bytes_sent / 1e3:.0f} kB (the whole run) |
| still registered after the burst | {"yes" if registered else "NO"} |

### Idle with the SNI backend and 50 lock files, after {args.idle:.0f} s

RSS **{rss / 1e6:.1f} MB** (goal < 35 MB: {"met" if rss / 1e6 < 35 else "NOT met"}).
"""
    print(body)
    record("Tray (SNI)", body)


if __name__ == "__main__":
    main()
