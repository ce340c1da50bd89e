"""What this process can see of the others: PID namespaces, `/proc` hidepid, our pid in `/proc`.

Every check uvsweep makes for holders, waiters and openers reads the kernel's tables through
`/proc`. Two things make those tables incomplete without an error:

- A **child PID namespace** (a container sharing `/tmp` with its host, `unshare --pid`): with its
  own `/proc`, processes outside it are not listed, their fds cannot be walked, and since Linux 4.9
  their lines are left out of `/proc/locks`. A `/proc` of the parent namespace shows pids that are
  not ours (`os.getpid()` differs from `/proc/self`), so our own locks must be found by the pid
  `/proc` gives us, never by `os.getpid()`.
- **hidepid** on the `/proc` mount (`hidepid=1|2`, or `invisible`, `noaccess`, `ptraceable` since
  Linux 5.8): other users' processes are hidden (2, invisible) or their details are (1, noaccess),
  unless we are root or in the mount's `gid=` group.

The initial PID namespace is recognised by its fixed inode number (`PROC_PID_INIT_INO`,
0xEFFFFFFC, in `include/linux/proc_ns.h`); `NSpid` in `/proc/self/status` with more than one pid
says the same from a parent's `/proc`. Off Linux this reports that it cannot tell (`unknown`)
and adds no note: macOS and Windows hide other users' details per process (psutil's
AccessDenied), which the callers count as they go.
"""

from __future__ import annotations

import os

from uvsweep import system
from uvsweep.model import Record

#: The inode of the initial PID namespace (`PROC_PID_INIT_INO` in the kernel).
INITIAL_PID_NS_INODE = 0xEFFFFFFC

#: hidepid values that hide other users' processes entirely, or only their details.
_HIDES_PROCESSES = frozenset({"2", "invisible"})
_HIDES_DETAILS = frozenset({"1", "noaccess", "ptraceable"})


class Visibility(Record):
    """What this process can see of other processes, with a note for each blind spot."""

    __slots__ = (
        "hidepid",
        "notes",
        "own_pid",
        "pid_namespace",
        "sees_all_namespaces",
        "sees_all_users",
    )  # fmt: skip
    own_pid: int  # our pid as `/proc` shows it (in `/proc/locks` and `/proc/<pid>`)
    pid_namespace: str  # "initial", "child" or "unknown"
    hidepid: str | None  # the `/proc` mount's hidepid option, None without one
    sees_all_users: bool  # False when hidepid hides other users' processes or their fds from us
    sees_all_namespaces: bool  # False with the /proc of a child PID namespace
    notes: tuple[str, ...]  # one line each, for scan, clean, doctor and the JSON notes

    def __init__(
        self,
        own_pid: int,
        pid_namespace: str,
        hidepid: str | None,
        sees_all_users: bool,
        sees_all_namespaces: bool,
        notes: tuple[str, ...] = (),
    ) -> None:
        self._init(
            own_pid=own_pid, pid_namespace=pid_namespace, hidepid=hidepid,
            sees_all_users=sees_all_users, sees_all_namespaces=sees_all_namespaces, notes=notes,
        )  # fmt: skip

    @property
    def complete(self) -> bool:
        """Whether every process that could open a file in a shared dir is visible to us."""
        return self.sees_all_users and self.sees_all_namespaces


def _own_pid(proc: str) -> int:
    try:
        return int(os.readlink(f"{proc}/self"))
    except (OSError, ValueError):
        return os.getpid()


def _ns_inode(link_path: str) -> int | None:
    try:
        link = os.readlink(link_path)  # "pid:[4026531836]"
        return int(link[link.index("[") + 1 : link.index("]")])
    except (OSError, ValueError):
        return None


def _proc_shows_everything(proc: str, ours: str) -> bool:
    """Whether `proc` belongs to the initial PID namespace (so it lists every process).

    A child namespace may use its parent's `/proc` (`unshare --pid` without `--mount-proc`):
    then it still sees everything. The `/proc`'s namespace is its pid 1's, where we may read it.
    """
    if ours == "initial":
        return True
    inode = _ns_inode(f"{proc}/1/ns/pid")
    if inode is not None:
        return inode == INITIAL_PID_NS_INODE
    # pid 1's namespace is not ours to read (another namespace's): the kernel's own kthreadd,
    # pid 2 with parent 0, is listed only by the initial namespace's /proc
    try:
        with open(f"{proc}/2/stat", "rb") as handle:
            fields = handle.read().split()
    except OSError:
        return False
    return len(fields) > 3 and fields[1] == b"(kthreadd)" and fields[3] == b"0"


def pid_namespace(proc: str = "/proc") -> str:
    """`initial`, `child` or `unknown`."""
    inode = _ns_inode(f"{proc}/self/ns/pid")
    if inode is not None:
        return "initial" if inode == INITIAL_PID_NS_INODE else "child"
    try:
        with open(f"{proc}/self/status", "rb") as handle:
            for line in handle.read().splitlines():
                if line.startswith(b"NSpid:"):
                    return "child" if len(line.split()) > 2 else "unknown"
    except OSError:
        pass
    return "unknown"


def proc_mount_options(proc: str = "/proc", mountinfo: str | None = None) -> dict[str, str]:
    """The super options of the proc file system mounted at `proc` (`hidepid`, `gid`...)."""
    if mountinfo is None:
        try:
            with open(f"{proc}/self/mountinfo", "rb") as handle:
                mountinfo = handle.read().decode("utf-8", "replace")
        except OSError:
            return {}
    target = os.path.realpath(proc)
    found: dict[str, str] = {}
    for line in mountinfo.splitlines():
        # id parent maj:min root mountpoint options [optional...] - fstype source superoptions
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 5 or len(tail) < 3 or tail[0] != "proc":
            continue
        if fields[4] != target:
            continue
        found = {}  # the last mount at the path wins (it covers the earlier ones)
        for option in tail[2].split(","):
            key, _, value = option.partition("=")
            found[key] = value
    return found


def detect(
    proc: str = "/proc", *, mountinfo: str | None = None, euid: int | None = None
) -> Visibility:
    """What this process (or a process of `euid`) can see, with notes (none when it sees all)."""
    if not system.LINUX or not os.path.isdir(f"{proc}/self"):
        return Visibility(
            os.getpid(), "unknown", None, sees_all_users=True, sees_all_namespaces=True
        )
    own_pid = _own_pid(proc)
    namespace = pid_namespace(proc)
    options = proc_mount_options(proc, mountinfo)
    hidepid = options.get("hidepid")
    euid = os.geteuid() if euid is None else euid
    exempt = euid == 0
    gid = options.get("gid")
    if gid is not None and gid.isdigit():
        exempt = exempt or int(gid) in {os.getegid(), *os.getgroups()}
    hides = hidepid in _HIDES_PROCESSES or hidepid in _HIDES_DETAILS
    sees_all_users = exempt or not hides
    sees_all_namespaces = _proc_shows_everything(proc, namespace)
    notes: list[str] = []
    if not sees_all_namespaces:
        notes.append(
            "uvsweep runs in a child PID namespace (a container?): processes outside it, their"
            " open files and their locks cannot be seen"
        )
    if not sees_all_users:
        what = "other users' processes" if hidepid in _HIDES_PROCESSES else (
            "other users' open files and command lines"
        )  # fmt: skip
        notes.append(f"{proc} is mounted with hidepid={hidepid}: {what} cannot be seen")
    return Visibility(
        own_pid, namespace, hidepid, sees_all_users=sees_all_users,
        sees_all_namespaces=sees_all_namespaces, notes=tuple(notes),
    )  # fmt: skip
