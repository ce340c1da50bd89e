"""Mutual-exclusion torture harness: workers that lock exactly as uv does, and a sweeper.

Workers take the lock on a few names the way uv's `LockedFile` does: open the existing file
read-write without creating it; if it is missing, create a temp file in the same dir, make it 0666
and rename it into place without replacing anything (Linux `renameat2(RENAME_NOREPLACE)`); then a
non-blocking exclusive flock, else a blocking one. Sometimes a worker pauses between the open and
the lock, as a preempted process would. Inside the critical section a witness file is created with
`O_EXCL`: if it already exists, two processes hold "the" lock at once, which is an overlap.

Sweepers run in a loop beside them:
  uvsweep  the real removal protocol (`uvsweep.remove.for_platform().remove`)
  gated    `uvsweep.cleaner.clean`: the uv gate first (any active uv stops a pass), then the
           protocol; run beside parked uv processes, which must not stop it
  rm       a naive `rm -f uv-*.lock`
  trylock  `LOCK_EX|LOCK_NB`, then unlink, then close (what systemd-tmpfiles does)

Run: python tests/mutex_harness.py run SWEEPER [SECTIONS] [WORKERS]  -> one JSON line.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import json
import os
import random
import subprocess
import sys
import tempfile
import time

NAMES = tuple(f"uv-{index:016x}.lock" for index in range(0xA1, 0xA7))
RENAME_NOREPLACE = 1
AT_FDCWD = -100
_libc = ctypes.CDLL(None, use_errno=True)


def rename_noreplace(src: str, dst: str) -> None:
    """`renameat2(src, dst, RENAME_NOREPLACE)`, as uv's persist_noclobber; link+unlink elsewhere."""
    func = getattr(_libc, "renameat2", None)
    if func is None:
        os.link(src, dst)
        os.unlink(src)
        return
    if func(AT_FDCWD, src.encode(), AT_FDCWD, dst.encode(), RENAME_NOREPLACE) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err), dst)


def uv_open(directory: str, name: str) -> int:
    """Open (creating if need be) the lock file exactly as uv does; an fd, not yet locked."""
    path = os.path.join(directory, name)
    while True:
        try:
            return os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            pass
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp")
        try:
            os.fchmod(fd, 0o666)
            rename_noreplace(tmp, path)
        except OSError as err:
            os.close(fd)
            os.unlink(tmp)
            if err.errno != errno.EEXIST:
                raise
        else:
            return fd


def worker(directory: str, witness_dir: str, sections: int, seed: int) -> dict[str, int]:
    """Take the locks `sections` times; count overlaps seen through the witness files."""
    rng = random.Random(seed)
    overlaps = 0
    for _ in range(sections):
        name = rng.choice(NAMES)
        fd = uv_open(directory, name)
        if rng.random() < 0.05:
            time.sleep(rng.random() * 0.002)  # preempted between open and lock
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fcntl.flock(fd, fcntl.LOCK_EX)
        witness = os.path.join(witness_dir, name)
        try:
            os.close(os.open(witness, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            mine = True
        except FileExistsError:
            overlaps += 1
            mine = False
        if rng.random() < 0.1:
            time.sleep(rng.random() * 0.001)
        if mine:
            os.unlink(witness)
        os.close(fd)  # releases the lock
        if rng.random() < 0.3:
            time.sleep(rng.random() * 0.001)  # idle: the file is orphaned for a while
    return {"sections": sections, "overlaps": overlaps}


_LATECOMER = """
import fcntl, json, os, random, sys, time
witness_dir, seed = sys.argv[1], int(sys.argv[2])
rng = random.Random(seed)
sections = overlaps = 0
for line in sys.stdin:
    path, pause = line.split()
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        print("gone", flush=True)
        continue
    print("opened", flush=True)
    time.sleep(float(pause))
    fcntl.flock(fd, fcntl.LOCK_EX)
    witness = os.path.join(witness_dir, os.path.basename(path))
    try:
        os.close(os.open(witness, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        mine = True
    except FileExistsError:
        overlaps += 1
        mine = False
    sections += 1
    time.sleep(rng.random() * 0.001)
    if mine:
        os.unlink(witness)
    os.close(fd)
    print("done", flush=True)
print(json.dumps({"sections": sections, "overlaps": overlaps}), flush=True)
"""


class Latecomer:
    """A uv-like process that opens a file on request, just before the sweeper's unlink."""

    def __init__(self, witness_dir: str, seed: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _LATECOMER, witness_dir, str(seed)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        )  # fmt: skip
        self.busy = False
        self._said = b""  # what it wrote that is not a whole line yet

    def _heard(self, timeout: float) -> list[str]:
        """The whole lines it has written since last asked, waiting up to `timeout` seconds for
        some. (Read from the pipe itself: a buffered `readline` takes every line there is, and
        `select` would then say nothing more is coming.)"""
        import select

        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        if select.select([fd], [], [], timeout)[0]:
            self._said += os.read(fd, 65536)
        *lines, self._said = self._said.split(b"\n")
        return [line.decode().strip() for line in lines]

    def _take(self, lines: list[str]) -> None:
        for line in lines:
            # ("gone": it found no file; after a wait on the sweeper's lease too)
            if line in ("done", "gone"):
                self.busy = False

    def poll(self) -> None:
        if self.busy:
            self._take(self._heard(0))

    def open_now(self, path: str, pause: float) -> None:
        """Open `path` (if it is there) and return once it is open, or once the open waits on
        the sweeper's write lease (taken before the unlink, kept to the close: the open goes on
        when the sweeper gives the lease up or closes the file, on the inode it resolved); the
        lock is taken after `pause`."""
        import time

        assert self.proc.stdin is not None
        try:
            ino: int | None = os.stat(path).st_ino
        except FileNotFoundError:
            ino = None
        self.proc.stdin.write(f"{path} {pause}\n".encode())
        self.proc.stdin.flush()
        self.busy = True
        deadline = time.monotonic() + 30
        while not (lines := self._heard(0.001)):
            if ino is not None and _waits_on_a_lease(self.proc.pid, ino):
                return
            assert time.monotonic() < deadline, "the latecomer neither opened nor waits"
        self._take(lines)

    def finish(self) -> dict[str, int]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        lines = (self._said + self.proc.stdout.read()).decode().splitlines()
        self.proc.wait()
        result: dict[str, int] = json.loads(lines[-1])
        return result


def _waits_on_a_lease(pid: int, ino: int) -> bool:
    """Whether process `pid` is in `open()`, waiting for the write lease on inode `ino` to go
    (the kernel shows the lease as breaking, and the process asleep in `__break_lease`)."""
    try:
        with open(f"/proc/{pid}/wchan") as handle:
            if "break_lease" not in handle.read():
                return False
        return lease_breaking(ino)
    except OSError:
        return False


def lease_breaking(ino: int) -> bool:
    """Whether `/proc/locks` shows a lease on inode `ino` being broken (an open waits on it)."""
    with open("/proc/locks") as handle:
        return any(
            "LEASE" in line and "BREAK" in line and line.split()[-3].endswith(f":{ino}")
            for line in handle
        )


def latecomers_remover(witness_dir: str) -> tuple[object, list[Latecomer]]:
    """uvsweep's remover, with two latecomers at every unlink they are free for: one takes its
    lock at once (a waiter), one after a pause (uv preempted between its open and its lock)."""
    from uvsweep.remove.posix import LinuxRemover

    late = [Latecomer(witness_dir, 1), Latecomer(witness_dir, 2)]
    rng = random.Random(7)

    class WithLatecomers(LinuxRemover):
        def unlink(self, target) -> None:  # type: ignore[no-untyped-def]
            for index, comer in enumerate(late):
                comer.poll()
                if not comer.busy:
                    comer.open_now(target.path, 0.0 if index == 0 else rng.random() * 0.02)
            super().unlink(target)

    return WithLatecomers(), late


def sweep_once(kind: str, directory: str, remover: object) -> int:
    """One pass of a sweeper; how many files it removed."""
    if kind == "gated":
        from uvsweep import cleaner

        report = cleaner.clean([directory])
        sweep_once.handoffs += report.handoffs  # type: ignore[attr-defined]
        sweep_once.busy += report.busy  # type: ignore[attr-defined]
        sweep_once.blockers.update(p.pid for p in report.active_uv)  # type: ignore[attr-defined]
        return len(report.removed)
    if kind in ("uvsweep", "latecomers"):
        from uvsweep.remove import Policy, Remover

        assert isinstance(remover, Remover)
        result = remover.remove([directory], Policy())
        sweep_once.handoffs += result.handoffs  # type: ignore[attr-defined]
        return len(result.removed)
    removed = 0
    for name in os.listdir(directory):
        if not name.startswith("uv-"):
            continue
        path = os.path.join(directory, name)
        if kind == "rm":
            try:
                os.unlink(path)
                removed += 1
            except FileNotFoundError:
                pass
            continue
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.unlink(path)
            removed += 1
        except OSError:
            pass
        finally:
            os.close(fd)
    return removed


sweep_once.handoffs = 0  # type: ignore[attr-defined]
sweep_once.busy = 0  # type: ignore[attr-defined]  # gated passes the gate stopped
sweep_once.blockers = set()  # type: ignore[attr-defined]  # the uv pids that stopped them


def sweeper(kind: str, directory: str, stop_file: str) -> dict[str, object]:
    """Sweep until `stop_file` appears."""
    remover = None
    late: list[Latecomer] = []
    if kind == "uvsweep":
        from uvsweep.remove import for_platform

        remover = for_platform()
    elif kind == "latecomers":
        remover, late = latecomers_remover(os.path.join(os.path.dirname(directory), "witness"))
    passes = removed = 0
    while not os.path.exists(stop_file):
        removed += sweep_once(kind, directory, remover)
        passes += 1
    handoffs: int = sweep_once.handoffs  # type: ignore[attr-defined]
    totals = [comer.finish() for comer in late]
    busy: int = sweep_once.busy  # type: ignore[attr-defined]
    blockers = sorted(sweep_once.blockers)  # type: ignore[attr-defined]
    return {
        "passes": passes, "removed": removed, "handoffs": handoffs,
        "late_sections": sum(t["sections"] for t in totals),
        "late_overlaps": sum(t["overlaps"] for t in totals),
        "busy": busy, "blockers": blockers,
    }  # fmt: skip


def run(directory: str, kind: str, sections: int = 10_000, workers: int = 4) -> dict[str, object]:
    """Workers and one sweeper of `kind` on `directory`; the totals."""
    witness_dir = os.path.join(directory, "witness")
    lock_dir = os.path.join(directory, "locks")
    os.makedirs(witness_dir)
    os.makedirs(lock_dir)
    stop_file = os.path.join(directory, "stop")
    me = os.path.abspath(__file__)
    env = dict(os.environ)
    started = time.monotonic()
    sweep = subprocess.Popen(
        [sys.executable, me, "sweeper", kind, lock_dir, stop_file], stdout=subprocess.PIPE,
        env=env,
    )  # fmt: skip
    per_worker = -(-sections // workers)
    procs = [
        subprocess.Popen(
            [sys.executable, me, "worker", lock_dir, witness_dir, str(per_worker), str(seed)],
            stdout=subprocess.PIPE,
            env=env,
        )
        for seed in range(workers)
    ]
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"worker failed with {proc.returncode}"
        results.append(json.loads(out))
    with open(stop_file, "w"):
        pass
    out, _ = sweep.communicate(timeout=600)
    assert sweep.returncode == 0, f"sweeper failed with {sweep.returncode}"
    swept = json.loads(out)
    return {
        "sweeper": kind,
        "sections": sum(r["sections"] for r in results),
        "overlaps": sum(r["overlaps"] for r in results) + swept["late_overlaps"],
        "late_sections": swept["late_sections"],
        "removed": swept["removed"],
        "passes": swept["passes"],
        "handoffs": swept["handoffs"],
        "busy_passes": swept["busy"],
        "blockers": swept["blockers"],
        "seconds": round(time.monotonic() - started, 2),
    }


def main(argv: list[str]) -> int:
    """Entry point for the worker and sweeper child processes, and for a manual run."""
    command = argv[0]
    if command == "worker":
        result = worker(argv[1], argv[2], int(argv[3]), int(argv[4]))
    elif command == "sweeper":
        result = sweeper(argv[1], argv[2], argv[3])
    elif command == "run":
        with tempfile.TemporaryDirectory() as scratch:
            target = os.path.join(scratch, "run")
            os.makedirs(target)
            sections = int(argv[2]) if len(argv) > 2 else 10_000
            count = int(argv[3]) if len(argv) > 3 else 4
            result = run(target, argv[1], sections, count)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
