"""The StatusNotifierItem tray (issue 14): a burst of 1,000 lock files created over 10 s with
`uvsweep tray` shown by a real SNI host (xfce4-panel under Xvfb, a private session bus), and its
resident memory at idle.

Run: `uv run python benchmarks/sni_bench.py [--files N] [--seconds S] [--idle SECONDS]
[--rounds N] [--before CHECKOUT]`. Needs Xvfb, dbus-daemon, dbus-monitor and xfce4-panel.

- Icon updates: NewIcon signals from the item (counted by `dbus-monitor`) during the burst and
  until the badge is final, per second and in all (goal: a handful per second, not one per file).
- Tray CPU: CPU seconds of the tray process over the burst, as % of one core.
- Bus bytes: what the tray wrote to the bus socket (its own count, logged when it stops).
- Registered: the item is still in the watcher's RegisteredStatusNotifierItems at the end.
- Idle RSS with the SNI backend (goal < 35 MB): the tray on 50 lock files, SECONDS after its item
  registered (a first start: it writes its notification icon), median of N starts, against a
  sleeping `python` measured in the same run; and again SECONDS after the burst, once the dir is
  back to 50 files. `--before CHECKOUT` (another checkout of the project, e.g. a `git worktree`
  of an older commit) runs that code too, with this venv, interleaved with this tree's runs.

Writes the "Tray (SNI)" section of benchmarks/RESULTS.md. Bytecode is compiled first (the app
and the libraries the tray imports, as an installed wheel has them).
"""

from __future__ import annotations

import argparse
import compileall
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

from _common import ROOT, record
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


#: What the tray imports beyond the standard library (compiled like the app).
TRAY_LIBRARIES = ("PIL", "dbus_fast", "watchdog", "pystray", "six.py", "platformdirs")


def compile_bytecode(trees: list[Path]) -> None:
    """Compile each tree's app and the tray's libraries, as an installed wheel would have them."""
    site = Path(sysconfig.get_path("purelib"))
    for target in [tree / "app" / "uvsweep" for tree in trees] + [site / n for n in TRAY_LIBRARIES]:
        if target.is_dir():
            compileall.compile_dir(str(target), quiet=1)
        elif target.exists():
            compileall.compile_file(str(target), quiet=1)


def rss_parts(pid: int) -> dict[str, int]:
    """VmRSS, RssAnon and RssFile of `pid`, in bytes."""
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile"):
            out[key] = int(value.split()[0]) * 1024
    return out


class Tray:
    """One `uvsweep tray` on `locks`, with its own runtime and state dirs (a first start), from
    this tree or from another checkout (`source`)."""

    def __init__(self, session: Session, scratch: Path, locks: Path,
                 source: Path | None = None) -> None:  # fmt: skip
        self.session, self.scratch = session, scratch
        scratch.mkdir(parents=True, exist_ok=True)
        env = {**session.env, "XDG_RUNTIME_DIR": str(scratch), "XDG_STATE_HOME": str(scratch / "s"),
               "UVSWEEP_CONFIG": str(scratch / "settings.toml")}  # fmt: skip
        if source is not None:
            env["PYTHONPATH"] = str(source / "app")  # ahead of this tree's editable install
        (scratch / "settings.toml").write_text("notifications = false\n")
        exe = str(Path(sys.executable).with_name("uvsweep"))
        self.proc = subprocess.Popen([exe, "tray", "--dir", str(locks)], env=env,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 30
        while not self.service():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.proc.kill()
                self.proc.wait()
                raise SystemExit("the tray never registered")
            time.sleep(0.05)

    def service(self) -> str:
        """Its bus name, once its item is registered."""
        for item in self.session.items():
            service = item.split("/")[0]
            if self.proc.pid == self.session_pid(service):
                return service
        return ""

    def session_pid(self, service: str) -> int:
        out = subprocess.run(
            ["dbus-send", "--session", "--print-reply", "--dest=org.freedesktop.DBus",
             "/org/freedesktop/DBus", "org.freedesktop.DBus.GetConnectionUnixProcessID",
             f"string:{service}"],
            env=self.session.env, capture_output=True, text=True, check=False,
        ).stdout  # fmt: skip
        found = re.search(r"uint32 (\d+)", out)
        return int(found.group(1)) if found else -1

    def stop(self) -> str:
        """SIGTERM it; its log."""
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)
        log = self.scratch / "s" / "uvsweep" / "log" / "uvsweep.log"
        return log.read_text() if log.exists() else ""


def fifty_locks(path: Path) -> Path:
    path.mkdir(parents=True)
    for index in range(50):
        (path / f"uv-{index:016x}.lock").touch()
    return path


def idle_rss(session: Session, scratch: Path, variants: dict[str, Path | None], rounds: int,
             seconds: float) -> dict[str, list[dict[str, int]]]:  # fmt: skip
    """RSS parts of each variant (None: a sleeping python) after `seconds` idle, `rounds` starts
    each, interleaved so that the machine's load falls on all alike."""
    out: dict[str, list[dict[str, int]]] = {name: [] for name in variants}
    for round_ in range(rounds):
        for index, (name, source) in enumerate(variants.items()):
            where = scratch / f"idle-{round_}-{index}"
            if name == "python":
                env = {**session.env}
                proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                                        env=env)  # fmt: skip
                time.sleep(seconds)
                out[name].append(rss_parts(proc.pid))
                proc.kill()
                proc.wait()
                continue
            tray = Tray(session, where, fifty_locks(where / "locks"), source)
            try:
                time.sleep(seconds)
                out[name].append(rss_parts(tray.proc.pid))
            finally:
                tray.stop()
    return out


def burst(session: Session, scratch: Path, source: Path | None, files: int, seconds: float,
          idle: float) -> dict[str, float]:  # fmt: skip
    """`files` lock files over `seconds` with the tray running; then back to 50, idle."""
    locks = scratch / "locks"
    locks.mkdir(parents=True)
    tray = Tray(session, scratch / "tray", locks, source)
    service = tray.service()
    monitor = None
    try:
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
        cpu0, _, _ = proc_totals(tray.proc.pid)
        began = time.monotonic()
        for index in range(files):
            (locks / f"uv-{index:016x}.lock").touch()
            wait = began + (index + 1) * seconds / files - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        created = time.monotonic() - began
        expected = f"{files} orphaned uv lock files"
        while title(session, service) != expected:
            time.sleep(0.05)
        settled = time.monotonic() - began
        cpu1, _, _ = proc_totals(tray.proc.pid)
        time.sleep(1)
        monitor.terminate()
        monitor.wait()
        signals = log.read_text()
        registered = any(item.startswith(service + "/") for item in session.items())
        for path in sorted(locks.iterdir())[50:]:
            path.unlink()
        time.sleep(idle)
        rss = rss_parts(tray.proc.pid)
    finally:
        if monitor is not None and monitor.poll() is None:
            monitor.kill()
        tray_log = tray.stop()
    sent = re.findall(r"(\d+) bytes sent on the bus", tray_log)
    return {
        "created": created, "settled": settled, "cpu": 100 * (cpu1 - cpu0) / settled,
        "new_icons": signals.count("member=NewIcon"),
        "layouts": signals.count("member=LayoutUpdated"),
        "props": signals.count("member=ItemsPropertiesUpdated"),
        "registered": registered, "bytes_sent": int(sent[-1]) if sent else -1,
        "rss": rss["VmRSS"],
    }  # fmt: skip


def revision(tree: Path) -> str:
    """`abc1234 2026-11-29` (and whether it has uncommitted changes), or the folder's name."""
    git = ["git", "-C", str(tree)]
    done = subprocess.run([*git, "log", "-1", "--format=%h %cs"], capture_output=True, text=True,
                          check=False)  # fmt: skip
    if done.returncode or not done.stdout.strip():
        return tree.name
    dirty = subprocess.run([*git, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, check=False).stdout.strip()  # fmt: skip
    return done.stdout.strip() + (" with uncommitted changes" if dirty else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--idle", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", type=Path, help="another checkout to measure beside this one")
    args = parser.parse_args()
    before = args.before.resolve() if args.before else None
    compile_bytecode([ROOT] + ([before] if before else []))
    trays: dict[str, Path | None] = {"this tree": None}
    if before is not None:
        trays["before"] = before
    scratch = Path(tempfile.mkdtemp(prefix="uvsweep-sni-bench-"))
    session = Session(scratch / "home")
    try:
        idle = idle_rss(session, scratch, {"python": None, **trays}, args.rounds, args.idle)
        bursts = {name: burst(session, scratch / f"burst-{i}", source, args.files, args.seconds,
                              args.idle)
                  for i, (name, source) in enumerate(trays.items())}  # fmt: skip
    finally:
        session.close()
        shutil.rmtree(scratch, ignore_errors=True)
    load = os.getloadavg()
    mine = bursts["this tree"]

    def median(name: str, key: str = "VmRSS") -> float:
        return statistics.median(r[key] for r in idle[name]) / 1e6

    base = median("python")
    names = {"this tree": f"this tree ({revision(ROOT)})"}
    if before is not None:
        names["before"] = f"before: {revision(before)}"
    rows = "\n".join(
        f"| `uvsweep tray`, {names[name]} | **{median(name):.1f} MB**"
        f" ({median(name, 'RssAnon'):.1f} anon + {median(name, 'RssFile'):.1f} file) |"
        f" {median(name) / base:.2f}x |"
        f" {bursts[name]['rss'] / 1e6:.1f} MB |"
        for name in trays
    )
    verdict = "met" if max(median("this tree"), mine["rss"] / 1e6) < 35 else "NOT met"
    compare = ""
    rate = mine["new_icons"] / mine["settled"]
    if before is not None:
        compare = (
            f"\nThis tree / before: **{median('this tree') / median('before'):.2f}x** at"
            f" idle, {mine['rss'] / bursts['before']['rss']:.2f}x after the burst.\n"
        )
    body = f"""
### {args.files} lock files created over {args.seconds:.0f} s, shown in xfce4-panel (Xvfb)

Load average {load[0]:.1f} on {os.cpu_count()} cores at the end of the run (other work shared
the machine), so the times are upper bounds.

| measure | value |
|---|---|
| files created in | {mine["created"]:.1f} s; title final {mine["settled"]:.1f} s after the first |
| icon updates (NewIcon) | {mine["new_icons"]} in all, **{rate:.1f} per second** |
| menu signals | {mine["layouts"]} LayoutUpdated, {mine["props"]} ItemsPropertiesUpdated |
| tray CPU over the burst | {mine["cpu"]:.1f} % of one core |
| bytes the tray sent on the bus | {mine["bytes_sent"] / 1e3:.0f} kB (the whole run) |
| still registered after the burst | {"yes" if mine["registered"] else "NO"} |

### Idle RSS with the SNI backend, 50 lock files (bytecode compiled)

{args.idle:.0f} s after the item registered (a first start), median of {args.rounds} starts, runs
interleaved; and {args.idle:.0f} s after the burst above, once the dir was back to 50 files.

| process | idle RSS | / sleeping `python` | after the burst |
|---|---|---|---|
| baseline: a sleeping `python` | {base:.1f} MB | 1.00x | |
{rows}
{compare}
Goal: < 35 MB, at idle and after the burst: {verdict}.
"""
    print(body)
    record("Tray (SNI)", body)


if __name__ == "__main__":
    main()
