"""Linux: one read of `/proc/locks` and one walk of `/proc/*/fd` per scan.

`/proc/locks` prints the device from the superblock (it can differ from `st_dev` on btrfs and
overlayfs) and pids as seen from our PID namespace (0 or absent for other containers), so an entry
is trusted when its device matches, and otherwise only when our own try-lock agrees it is held.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import re
from collections.abc import Callable, Collection, Container, Iterable, Sequence

from uvsweep import system
from uvsweep.model import Record
from uvsweep.probe import LockProbe, Observation, ProbeResult
from uvsweep.probe.posix import (
    SYSCALLS,
    Beside,
    FileKey,
    PosixBackend,
    Syscalls,
    holder_list,
    opened_key,
)
from uvsweep.processes import ProcessTable


class LockEntry(Record):
    """One line of `/proc/locks`."""

    __slots__ = ("ino", "kind", "major", "minor", "mode", "pid", "waiting")
    kind: str  # FLOCK, POSIX, OFDLCK, LEASE...
    mode: str  # WRITE or READ
    pid: int  # 0 or -1 where the holder is not visible (another namespace, OFD locks)
    major: int
    minor: int
    ino: int
    waiting: bool

    def __init__(
        self, kind: str, mode: str, pid: int, major: int, minor: int, ino: int, waiting: bool
    ) -> None:
        self._init(
            kind=kind, mode=mode, pid=pid, major=major, minor=minor, ino=ino, waiting=waiting
        )


def parse_locks(text: str, own_pid: int | None = None) -> dict[int, list[LockEntry]]:
    """`/proc/locks` text -> entries by inode. Lines it cannot read are skipped, never fatal.

    With `own_pid`, that process's exclusive locks are left out before any parsing: a cleaner
    holding thousands of locks reads thousands of its own lines.
    """
    table: dict[int, list[LockEntry]] = {}
    lines = text.splitlines()
    if own_pid is not None:
        mark = f"WRITE {own_pid} "
        lines = [line for line in lines if mark not in line or "->" in line]
    for line in lines:
        parts = line.split()
        if len(parts) < 6:
            continue
        index = 1
        waiting = parts[1] == "->"
        if waiting:
            index = 2
        try:
            kind, mode = parts[index], parts[index + 2]
            pid = int(parts[index + 3])
            major, minor, ino = parts[index + 4].split(":")
            entry = LockEntry(kind, mode, pid, int(major, 16), int(minor, 16), int(ino), waiting)
        except (IndexError, ValueError):
            continue
        table.setdefault(entry.ino, []).append(entry)
    return table


#: (major, minor) as `/proc/locks` prints a file's device (its superblock's `s_dev`).
Device = tuple[int, int]


def device_key(device: Device, ino: int) -> str:
    """How `/proc/locks` prints a file: `MAJOR:MINOR:INODE`, the device numbers in hex."""
    return f"{device[0]:02x}:{device[1]:02x}:{ino}"


def printed_device(dev: int, known: dict[int, Device]) -> Device:
    """The device `/proc/locks` prints for files of `st_dev` `dev`: the one learned for it, or
    `st_dev`'s own major and minor (what it is on every file system but btrfs and overlayfs)."""
    found = known.get(dev)
    return found if found is not None else (os.major(dev), os.minor(dev))


class LockTable:
    """One read of `/proc/locks`: other processes' entries by inode, our own locks' devices.

    The trust rule, the one place it is written: an entry is on a file when its inode *and* its
    device match. `/proc/locks` prints the superblock's device, which is `st_dev` on most file
    systems but not on btrfs subvolumes or overlayfs, so the device a file is printed with is
    learned from our own exclusive lock on it whenever we hold one (`/proc/self/fdinfo`, or
    `own`), remembered per `st_dev` for the run (`known`), and only otherwise taken to be
    `st_dev` itself. An entry on the same inode number but another device is another file (fresh
    tmpfs mounts hand out the same inode numbers), except where the device could not be learned:
    then the caller decides with a try-lock, or, holding the file, keeps it to be safe.

    Ours (`own_keys`, never among `others`): a FLOCK lock held (not awaited) on a file we hold
    exclusively right now (`held`: whoever it names, since nobody else can hold it while we do;
    a keeper's inherited lock is printed with the pid of the cleaner that took it), and any
    exclusive lock our own pid holds. Only FLOCK records of ours say anything about a device or
    anchor a read (see `read_lock_table`): a POSIX lock of ours on some other file does not.
    """

    def __init__(
        self,
        others: dict[int, list[LockEntry]],
        own_lines: Sequence[str] = (),
        own_pid: int = 0,
        own_keys: set[str] | None = None,
    ) -> None:
        self.others = others
        self.own_keys: set[str] = set(own_keys or ())
        pid = str(own_pid)
        for line in own_lines:  # our own lines, as tests and older callers give them
            parts = line.split()
            if len(parts) >= 6 and parts[1] == "FLOCK" and parts[4] == pid:
                self.own_keys.add(parts[5])
        self._own: dict[int, set[Device]] | None = None
        #: False when the reads never showed every anchor asked for (see `read_lock_table`)
        self.complete = True

    @property
    def own(self) -> dict[int, set[Device]]:
        """The devices of our own FLOCK locks, by inode (split only when first asked)."""
        if self._own is None:
            self._own = {}
            for key in self.own_keys:
                try:
                    major, minor, ino = key.split(":")
                    self._own.setdefault(int(ino), set()).add((int(major, 16), int(minor, 16)))
                except ValueError:
                    continue
        return self._own

    def shows(self, dev: int, ino: int, known: dict[int, Device]) -> bool:
        """Whether our own FLOCK record on this file (device and inode) is in the table."""
        return device_key(printed_device(dev, known), ino) in self.own_keys

    def unseen(self, dev: int, ino: int, known: dict[int, Device]) -> bool:
        """Whether our own lock on this file never showed in the reads (`complete` is False):
        whoever waits behind it went unseen too."""
        return not self.complete and not self.shows(dev, ino, known)

    def device_of(
        self, dev: int, ino: int, known: dict[int, Device], own: bool = True
    ) -> tuple[Device, bool]:
        """(the device `/proc/locks` prints for this file, whether that is certain).

        `own=False` for a file we do not hold (before our lock, or an unlinked old generation):
        our own locks then say nothing about it, for one of them could be on another file
        system's file with the same inode number. Nothing here learns a device for `known`:
        only our own fd's fdinfo does (`LinuxRemover.locked_one`).
        """
        guess = (os.major(dev), os.minor(dev))
        if known.get(dev, guess) == guess and all(
            (e.major, e.minor) == guess for e in self.others.get(ino, ())
        ):
            # every entry is on the device st_dev names: device numbers of mounted file
            # systems are unique, so they are on this file system, and on this inode
            return guess, True
        mine = self.own.get(ino) if own else None
        if mine:
            if len(mine) == 1:  # for this file only: a device is learned from fdinfo alone
                (found,) = mine
                return found, True
            if guess in mine:  # our locks on two files with one inode number: st_dev decides
                return guess, True
        if dev in known:
            return known[dev], True
        return guess, False

    def entries(
        self, dev: int, ino: int, known: dict[int, Device], own: bool = True
    ) -> tuple[list[LockEntry], list[LockEntry]]:
        """(entries on this very file, entries on its inode number whose device is unsure).

        The second list is empty when the device is certain: those entries are other files'.
        """
        on_inode = self.others.get(ino)
        if not on_inode:
            return [], []
        device, certain = self.device_of(dev, ino, known, own)
        mine = [e for e in on_inode if (e.major, e.minor) == device]
        if certain:
            return mine, []
        return mine, [e for e in on_inode if (e.major, e.minor) != device]


def parse_lock_table(text: str, own_pid: int, held: Container[str] = ()) -> LockTable:
    """`/proc/locks` text -> a `LockTable` (see there for which lines are ours).

    `held`: the `device_key`s of the files we hold exclusively now. A cleaner holding thousands
    of locks reads thousands of its own lines: they are recognised by two fields, never parsed.
    """
    pid = str(own_pid)
    own: set[str] = set()
    others: dict[int, list[LockEntry]] = {}
    lines = text.splitlines()
    # The bulk of a cleaner's table, its own exclusive flocks ("N: FLOCK  ADVISORY  WRITE
    # <pid> MAJ:MIN:INO 0 EOF"), is taken out in C: a line holding the mark is one the loop
    # below would count as ours, but only if it starts the way the kernel prints one, so the
    # shortcut is taken only when every line with the mark matched the pattern (each match
    # lies within one line, and starts it); else every line goes through the loop.
    mark = f": FLOCK  ADVISORY  WRITE {pid} "
    if mark in text:
        keys = _own_flocks(pid).findall("\n" + text)
        rest = [line for line in lines if mark not in line]
        if len(keys) + len(rest) == len(lines):
            own.update(keys)
            lines = rest
    for line in lines:
        parts = line.split(None, 7)  # "N:", kind, ADVISORY, mode, pid, MAJ:MIN:INO, the rest
        if len(parts) < 6:
            continue
        if parts[1] != "->":
            key = parts[5]
            mine = parts[4] == pid and parts[3] == "WRITE"
            if parts[1] == "FLOCK" and (mine or key in held):
                own.add(key)  # ours: held by us (or by a copy of the description we hold)
                continue
            if mine:
                continue  # our own lock of another kind: never somebody else's
        entry = _entry(parts)
        if entry is not None:
            others.setdefault(entry.ino, []).append(entry)
    return LockTable(others, own_pid=own_pid, own_keys=own)


@functools.lru_cache(maxsize=4)
def _own_flocks(pid: str) -> re.Pattern[str]:
    """What `parse_lock_table` finds its own lines with: the key of each line, led by a
    newline, that reads `N: FLOCK  ADVISORY  WRITE <pid> KEY`."""
    return re.compile(r"\n\d+: FLOCK  ADVISORY  WRITE " + pid + r" (\S+)")


def _entry(parts: Sequence[str]) -> LockEntry | None:
    """One `/proc/locks` line, split, as a `LockEntry`; None if it cannot be read."""
    waiting = parts[1] == "->"
    index = 2 if waiting else 1
    try:
        kind, mode = parts[index], parts[index + 2]
        pid = int(parts[index + 3])
        major, minor, ino = parts[index + 4].split(":")
        return LockEntry(kind, mode, pid, int(major, 16), int(minor, 16), int(ino), waiting)
    except (IndexError, ValueError):
        return None


#: How many reads of `/proc/locks` may be spent to see every anchor (see `read_lock_table`).
ANCHORED_READS = 25


def read_lock_table(
    proc: str,
    own_pid: int,
    calls: Syscalls = SYSCALLS,
    reads: int = 1,
    anchored: Callable[[LockTable], bool] | None = None,
    held: Collection[str] = (),
) -> LockTable:
    """`<proc>/locks` as a `LockTable`: the lines of `reads` reads or more, taken together.

    One read is not one snapshot: `/proc/locks` is a seq_file that the kernel fills a page per
    read() call, finding its place again by *position*, so a lock released anywhere between two
    calls shifts the records not yet printed and one of them is skipped, with its whole tree of
    waiters. What a read does show is whole: a lock and every process waiting behind it come
    from one call. So a caller that knows which records must be there reads again, up to
    `ANCHORED_READS` times, until the union of the reads shows them: `held`, the `device_key`s
    of the files it holds exclusively (their FLOCK records, whatever pid they name), and
    `anchored`, a test of its own (a holder our try-lock met). Each anchor's record, once in,
    brings its waiters as they were at that moment. `LockTable.complete` says whether it did (if
    not, the union is still returned: the callers count a missing anchor as in use). OSError if
    the file cannot be read.
    """
    texts: list[str] = []
    table = LockTable({})
    wanted = set(held)
    needs_anchor = anchored is not None or bool(wanted)
    for done in range(max(reads, ANCHORED_READS if needs_anchor else 1)):
        texts.append(calls.read(f"{proc}/locks").decode("latin-1"))
        if done + 1 < reads:
            continue
        table = parse_lock_table(_union(texts), own_pid, wanted)
        if wanted <= table.own_keys and (anchored is None or anchored(table)):
            return table
    table.complete = False
    return table


def _union(texts: Sequence[str]) -> str:
    """The lines of several reads of `/proc/locks`, each once (the leading position dropped)."""
    if len(texts) == 1:
        return texts[0]
    seen: dict[str, None] = {}
    for text in texts:
        for line in text.splitlines():
            # "12: FLOCK ..." / "12: -> FLOCK ...": the number is a position, not an identity
            seen.setdefault(line.partition(":")[2] if ":" in line else line, None)
    return "\n".join(f"0:{line}" for line in seen)


class TableWarmer:
    """Keeps a removal's reads of `/proc/locks` from each waiting for an RCU grace period: a
    byte of the table is read every `EVERY` files the removal goes through (`tick`), the first
    time on a thread of its own. What it reads is never looked at: it changes how soon the
    removal's own reads are answered, never what they say.

    Why it pays: the kernel prints `/proc/locks` on the write side of a per-CPU rwsem
    (`file_rwsem`), and the first writer after a quiet spell waits for an RCU grace period
    (`rcu_sync_enter`; 6-10 ms measured here), while one within about a grace period of the
    last (15 ms and more here) does not. A removal reads the table (only for a batch with a
    file the kernel's lease was refused for: `LinuxRemover.users_before_unlink`) up to twice a
    batch, each time after 15-30 ms of opening or unlinking files: up to ten grace periods for
    10,000 files. A root cleaner's batch whose files are all locked and leased reads no table,
    and for it a warmer would be only its cost (below): so a removal starts one only in the
    batch after the first that read the table (`PosixRemover.begin_batch`: a file held by
    someone else, kept by the policy or refused its lease; every batch of a cleaner that is not
    root, which reads it to know it can), which leaves that first read's grace period and none
    of the later ones. Its first read is made on a thread; the later ones on the removal's own
    thread: a thread woken by a timer would take the interpreter's lock from it every few
    milliseconds.

    It needs no room of its own in the fd table: the removal has grown the table to its batch
    before it starts (`LinuxRemover.listing`, `grow_fd_table`), so its thread shares a table
    that no longer doubles.

    What it costs: one fd from the first file on (started only with fds to spare), a read of a
    few microseconds every `EVERY` files, and meanwhile every lock call on the machine takes
    the rwsem's slow path (a full memory barrier more) and may wait out one of these reads.
    Nothing at all for a removal that finds no file to open. Any error stops it quietly: the
    removal's reads are then only slower.
    """

    EVERY = 128

    def __init__(self, path: str = "/proc/locks") -> None:
        self.path = path
        self.fd = -1
        self.reads = 0  # how many reads it made (for tests)
        self.ticks = 0  # how many files it was told of (for tests)
        self._count = self.EVERY - 1  # the first tick starts it
        self._first: Beside | None = None
        self._off = False  # stopped, or it could not start

    def tick(self) -> None:
        """One more file gone through: read a byte of the table every `EVERY` of them."""
        self.ticks += 1
        self._count += 1
        if self._count < self.EVERY or self._off:
            return
        self._count = 0
        if self._first is None:
            self._start()
        elif self.fd >= 0 and not self._first.thread.is_alive():
            self._read()

    def _start(self) -> None:
        try:
            self.fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            self._first = Beside(self._read)  # the one grace period it waits for
        except (OSError, RuntimeError):  # (RuntimeError: no thread can start now)
            self.stop()

    def _read(self) -> None:
        try:
            os.lseek(self.fd, 0, os.SEEK_SET)
            os.read(self.fd, 1)
        except OSError:
            self._close()  # the removal's reads are then only slower
        else:
            self.reads += 1

    def _close(self) -> None:
        fd, self.fd = self.fd, -1
        if fd >= 0:
            with contextlib.suppress(OSError):
                os.close(fd)

    def stop(self) -> None:
        """Wait for the first read (nothing of ours may run on when the caller forks) and close
        the fd; idempotent, and it never starts again."""
        self._off = True
        if self._first is not None:
            self._first.wait()
        self._close()


def grow_fd_table(fd: int, room: int) -> None:
    """Grow the fd table so that fds below `room` need no growth: a copy of `fd` is made at
    the first free fd from `room - 1` on (never over an open one) and closed again. Where that
    cannot be done (the limit, no fd left), the table grows as files are opened, as before.

    Why: a table that grows by doubling as files are opened waits for an RCU grace period at
    each doubling while another thread shares it (`expand_fdtable`): five or six of them for
    a first batch of 2,048 files in a process with threads (the tray's), none once grown."""
    import fcntl  # noqa: PLC0415 - Unix only (this module imports everywhere)

    if room <= 1:
        return
    try:
        copy = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, room - 1)
    except OSError:
        return
    os.close(copy)


def read_locks(
    proc: str = "/proc", own_pid: int | None = None, calls: Syscalls = SYSCALLS
) -> dict[int, list[LockEntry]]:
    """`<proc>/locks`, parsed (see `parse_locks`); OSError if it cannot be read."""
    # binary, then decode: a text-mode open first imports a codec (~10 ms of a cold scan)
    return parse_locks(calls.read(f"{proc}/locks").decode("latin-1"), own_pid)


class LinuxBackend(PosixBackend):
    """The Linux backend."""

    def __init__(
        self,
        processes: ProcessTable | None = None,
        proc: str = "/proc",
    ) -> None:
        super().__init__(processes or ProcessTable(proc=proc))
        self.proc = proc
        self.table: dict[int, list[LockEntry]] | None = None
        #: Open files only where /proc/locks cannot decide (the watcher: its own opens would
        #: show up among the file system events it reacts to).
        self.quiet = False

    def load_lock_table(self, result: ProbeResult) -> None:
        """See the base class."""
        try:
            self.table = read_locks(self.proc)
        except OSError as err:
            self.table = None
            result.notes.append(
                f"{self.proc}/locks unreadable ({err.strerror}): waiters are unknown"
            )

    def probe_needed(self, st: os.stat_result) -> bool:
        """See the base class: quietly, only when an entry has this inode but not the device."""
        if not self.quiet or self.table is None:
            return True
        mine, unsure = LockTable(self.table).entries(st.st_dev, st.st_ino, {}, own=False)
        return bool(unsure) and not mine  # entries on the inode number, none on this device

    def lock_entries(self, obs: Observation, probe: LockProbe) -> None:
        """See the base class."""
        if not self.table:
            return
        # the trust rule of `LockTable` (the remover's too): entries on this very device; where
        # none is, and our try-lock found the file held, those on its inode number
        mine, unsure = LockTable(self.table).entries(obs.dev, obs.ino, {}, own=False)
        trusted = mine or (unsure if probe is LockProbe.HELD else [])
        obs.holders = holder_list(self.processes, [e.pid for e in trusted if not e.waiting])
        obs.waiters = holder_list(self.processes, [e.pid for e in trusted if e.waiting])

    def find_openers(
        self, wanted: dict[FileKey, Observation], result: ProbeResult
    ) -> dict[FileKey, list[int]]:
        """See the base class and `walk_fds`."""
        names = {obs.name for obs in wanted.values()}
        try:
            found, hidden = walk_fds(self.proc, self.processes.pids(), names, set(wanted))
        except OSError as err:
            result.notes.append(
                f"the open files of processes could not be listed ({system.reason(err)}): a file"
                " shown orphaned may be open"
            )
            return {}
        result.hidden_processes += hidden
        return found


#: What `readlink` of a listed fd fails with when the process's fds are not ours to look into.
_REFUSED = frozenset({errno.EACCES, errno.EPERM})

#: What `_listing` gives for a process (or thread) that has exited meanwhile: no names.
_GONE: list[str] = []


def _listing(calls: Syscalls, where: str) -> list[str] | None:
    """The names in one of a process's `/proc` dirs: `_GONE` (empty) once it has exited, None
    when it will not let us look (hidden). OSError otherwise (EMFILE, ENOMEM...: who has what
    open is unknown then, never "nobody")."""
    try:
        return calls.list_dir(where)
    except PermissionError:
        return None
    except OSError as err:
        if err.errno in (errno.ENOENT, errno.ESRCH):
            return _GONE
        raise


def _thread_fds(proc: str, pid: int, calls: Syscalls) -> tuple[str, list[str] | None]:
    """(the fd dir, its fds) of the first other thread of `pid` that lists any (its zombie
    leader lists none), ("", []) when none does, and None for the fds when a listing is
    refused (hidden, as a refused `/proc/PID/fd` is)."""
    tids = _listing(calls, f"{proc}/{pid}/task")
    if tids is None:
        return "", None
    for tid in tids:
        if tid != str(pid):
            fd_dir = f"{proc}/{pid}/task/{tid}/fd"
            fds = _listing(calls, fd_dir)
            if fds is None or fds:
                return fd_dir, fds
    return "", []


def walk_fds(
    proc: str,
    pids: Iterable[int],
    names: Container[str],
    wanted: Container[FileKey],
    calls: Syscalls = SYSCALLS,
    own_pid: int | None = None,
    hidden_pids: set[int] | None = None,
) -> tuple[dict[FileKey, list[int]], int]:
    """One walk of `/proc/<pid>/fd` for `pids` (never our own): who has which wanted file open.

    Only links whose target has one of `names` (unlinked ones included) are stat'ed, and the inode
    decides. Returns the pids per file and how many processes would not let us look (their fds
    not listed, or listed but their links refused: root without `CAP_SYS_PTRACE`, Docker's
    default, reads no other user's); those pids are added to `hidden_pids`. OSError
    when a process's fds cannot be listed for another reason than its exit (no fds left to list
    them with): the callers then count the files as in use.
    """
    me = calls.getpid() if own_pid is None else own_pid
    found: dict[FileKey, list[int]] = {}
    hidden = 0
    for pid in pids:
        if pid == me:
            continue
        fd_dir = f"{proc}/{pid}/fd"
        fds = _listing(calls, fd_dir)
        if fds is _GONE:
            continue  # exited meanwhile
        if fds == []:
            # none: a kernel thread, or a process whose main thread has exited while others
            # run on (its zombie leader lists no fds; theirs are under task/TID/fd)
            fd_dir, fds = _thread_fds(proc, pid, calls)
        if fds is None:
            hidden += 1
            if hidden_pids is not None:
                hidden_pids.add(pid)
            continue
        for fd in fds:
            link = f"{fd_dir}/{fd}"
            try:
                target = calls.readlink(link)
            except OSError as err:
                if err.errno not in _REFUSED:
                    continue  # closed meanwhile
                # listed, but where its fds point is not ours to read (root without
                # CAP_SYS_PTRACE, a security module): as hidden as a process we cannot list
                hidden += 1
                if hidden_pids is not None:
                    hidden_pids.add(pid)
                break
            key = opened_key(target, link, names, calls.stat)
            if key is not None and key in wanted:
                found.setdefault(key, []).append(pid)
    return found, hidden
