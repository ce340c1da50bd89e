"""`FakeProc`: a /proc tree on disk (per-pid comm, cmdline, stat, exe, cwd, environ; locks;
stat's boot time) for the process table and the uv gate to read instead of the real one."""

from __future__ import annotations

import os
from pathlib import Path

BTIME = 1_700_000_000


class FakeProc:
    """A /proc tree: per-pid comm, cmdline, stat, exe, cwd and environ; /proc/locks; /proc/stat."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir()
        (root / "stat").write_text(f"cpu 0\nbtime {BTIME}\n")
        self.locks: list[str] = []
        (root / "locks").write_text("")

    def add(self, pid: int, argv: tuple[str, ...], *, ppid: int = 1, exe: str | None = None,
            comm: str | None = None, env: dict[str, str] | None = None, state: str = "S",
            cwd: str = "/") -> None:  # fmt: skip
        base = self.root / str(pid)
        base.mkdir()
        (base / "comm").write_text((comm or os.path.basename(argv[0]))[:15] + "\n")
        (base / "cmdline").write_bytes(b"\0".join(a.encode() for a in argv) + b"\0")
        name = comm or os.path.basename(argv[0])
        (base / "stat").write_text(f"{pid} ({name}) {state} {ppid} " + "0 " * 17 + "100 0 0\n")
        if exe:
            (base / "exe").symlink_to(exe)
        (base / "cwd").symlink_to(cwd)
        if env is not None:
            (base / "environ").write_bytes(b"".join(f"{k}={v}\0".encode() for k, v in env.items()))

    def lock(self, pid: int, inode: int, mode: str = "READ", waiting: bool = False) -> None:
        arrow = "-> " if waiting else ""
        self.locks.append(
            f"{len(self.locks) + 1}: {arrow}FLOCK  ADVISORY  {mode} {pid} fe:00:{inode} 0 EOF"
        )
        (self.root / "locks").write_text("\n".join(self.locks) + "\n")
