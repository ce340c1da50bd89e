"""A small simulated Windows kernel: one temp dir, files, handles with share modes, file locks.

The Windows flavour of `kernel.Kernel`, for running the real `WindowsRemover` (through the
`Win32Remove` seam) against uv-like processes. Only what the removal protocol and uv touch is
modelled, as the vendor docs (`CreateFileW`, `LockFileEx`, `UnlockFileEx`, `CloseHandle`,
`SetFileInformationByHandle`, `FILE_DISPOSITION_INFORMATION_EX`, `FILE_RENAME_INFORMATION`,
`NtQueryInformationFile`) and NTFS describe it:

- a dir of names -> files (case-insensitive names, as NTFS looks them up); a file has a file
  index (what `st_ino` and `GetFileInformationByHandle` report) and lives on while a handle
  refers to it, with or without a name;
- handles (per process) with an access mask and share modes. An open whose data access (read,
  write, delete) another handle does not share, or that does not share an access another handle
  has, fails with `ERROR_SHARING_VIOLATION` (`IoCheckShareAccess`); access that is only
  attributes or the security descriptor is not checked;
- `CreateFileW` with `OPEN_EXISTING` (`ERROR_FILE_NOT_FOUND` when missing) or `OPEN_ALWAYS`
  (created when missing); any open of a file with a **delete pending** fails with
  `ERROR_ACCESS_DENIED` (`STATUS_DELETE_PENDING`): what uv >= 0.7.19 warns about and then runs
  without its lock;
- the delete disposition through a handle that has `DELETE` access: classic
  (`FileDispositionInfo`: the name goes when the last handle is closed) or POSIX
  (`FileDispositionInfoEx` with `DELETE | POSIX_SEMANTICS`: "the link is removed from the visible
  namespace as soon as the POSIX delete handle has been closed", while other handles keep the
  file). Either way the file refuses opens from the moment it is marked; clearing the
  disposition (`DO_NOT_DELETE`) undoes the mark;
- a rename through a handle (`FileRenameInfo[Ex]`, needs `DELETE` access on it): the old name is
  free at once; without `REPLACE_IF_EXISTS` an existing target name fails with
  `ERROR_ALREADY_EXISTS`. (`FILE_RENAME_POSIX_SEMANTICS` only changes what a *replacing* rename
  does to the replaced file's handles, so it needs no state here);
- `LockFileEx` byte-range locks (offset, length; uv's is offset 0, length 2^64 - 1, "the whole
  file") belong to an **owner: the open file object and the process** (FsRtl's lock records
  carry both), and the handle needs read or write access. An exclusive request conflicts with
  every lock it overlaps, its own owner's included; a shared request conflicts with an
  overlapping exclusive lock of another owner. Ranges that do not overlap never conflict.
  `LOCKFILE_FAIL_IMMEDIATELY` gives `ERROR_LOCK_VIOLATION`; without it the request waits. When a
  lock goes (`UnlockFileEx`, or the owner's handle closed, or its process's exit), the waiting
  requests are granted **in the unlock itself**, in the order they came, each that no longer
  conflicts (the FsRtl lock package's waiting-lock list): a woken waiter already holds the
  lock, and a third process's try-lock cannot slip in between. `UnlockFileEx` must name exactly
  the offset and length of a lock of the same owner (not a part, not two adjacent locks at
  once), else `ERROR_NOT_LOCKED`; of an exclusive and a shared lock on one range the exclusive
  one goes first. A range that wraps past 2^64 is `ERROR_INVALID_LOCK_RANGE`; zero-length locks
  are not modelled (refused: the code under test never takes one);
- handle inheritance (`CreateProcess` with `bInheritHandles` and a handle list): the child gets
  a handle of the same number on the **same file object**, but no lock: a lock's owner is the
  process that took it, so the child can neither use nor release its parent's locks, and its
  own locks on the same file object are another owner's. A process that exits (or is killed)
  loses every lock it owns; its inherited handles in other processes stay open;
- `NtQueryInformationFile(FileProcessIdsUsingFileInformation)`: every process with a handle on
  the file (the caller's included; a process waiting in `LockFileEx` has one);
- `os.lstat` as CPython does it on Windows: `CreateFileW` for attributes (share mode not
  checked); when that is refused (a delete pending) CPython falls back to `FindFirstFileW`,
  which knows no file index or volume (`st_ino == st_dev == 0`). `os.listdir` lists every name,
  the delete-pending ones included.

As in `kernel.Kernel`, every method is called by one actor at a time with the caller's pid, and a
waiting `LockFileEx` returns `BLOCKED` for the caller to park on. Errors are `OSError`s of the
subclass CPython gives for that Win32 error on Windows (`FileNotFoundError`, `PermissionError`,
`FileExistsError`), with `winerror` set.
"""

from __future__ import annotations

import errno
import ntpath
import os
import stat
from dataclasses import dataclass, field

from tests.sim.kernel import BLOCKED, EPOCH

#: Where the simulated temp dir is (`%TEMP%`), the path the remover is given.
WIN_TMP = "C:\\Users\\sim\\AppData\\Local\\Temp"
#: The volume's serial number (what `st_dev` and `GetFileInformationByHandle` report).
VOLUME_SERIAL = 0x5A1E_0001

GENERIC_READ, GENERIC_WRITE = 0x80000000, 0x40000000
DELETE, READ_CONTROL, FILE_READ_ATTRIBUTES = 0x00010000, 0x00020000, 0x80
FILE_SHARE_READ, FILE_SHARE_WRITE, FILE_SHARE_DELETE = 0x1, 0x2, 0x4
SHARE_ALL = FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE
OPEN_EXISTING, OPEN_ALWAYS = 3, 4

ERROR_FILE_NOT_FOUND = 2
ERROR_PATH_NOT_FOUND = 3
ERROR_ACCESS_DENIED = 5
ERROR_INVALID_HANDLE = 6
ERROR_SHARING_VIOLATION = 32
ERROR_LOCK_VIOLATION = 33
ERROR_NOT_LOCKED = 158
ERROR_ALREADY_EXISTS = 183
ERROR_INVALID_LOCK_RANGE = 307

#: uv's lock (Rust std's `File::try_lock`/`lock`, and fs4 before it): offset 0, length
#: `u32::MAX` high and low, "the whole file"
WHOLE_FILE = (0, (1 << 64) - 1)

#: the errno CPython gives each Win32 error (`winerror_to_errno`), which picks the subclass
_ERRNO = {
    ERROR_FILE_NOT_FOUND: errno.ENOENT,
    ERROR_PATH_NOT_FOUND: errno.ENOENT,
    ERROR_ACCESS_DENIED: errno.EACCES,
    ERROR_INVALID_HANDLE: errno.EBADF,
    ERROR_SHARING_VIOLATION: errno.EACCES,
    ERROR_LOCK_VIOLATION: errno.EACCES,
    ERROR_NOT_LOCKED: errno.EACCES,
    ERROR_ALREADY_EXISTS: errno.EEXIST,
    ERROR_INVALID_LOCK_RANGE: errno.EINVAL,
}
_TEXT = {
    ERROR_FILE_NOT_FOUND: "The system cannot find the file specified",
    ERROR_PATH_NOT_FOUND: "The system cannot find the path specified",
    ERROR_ACCESS_DENIED: "Access is denied",
    ERROR_INVALID_HANDLE: "The handle is invalid",
    ERROR_SHARING_VIOLATION: "The process cannot access the file because it is being used by"
    " another process",
    ERROR_LOCK_VIOLATION: "The process cannot access the file because another process has"
    " locked a portion of the file",
    ERROR_NOT_LOCKED: "The segment is already unlocked",
    ERROR_ALREADY_EXISTS: "Cannot create a file when that file already exists",
    ERROR_INVALID_LOCK_RANGE: "A requested file lock operation cannot be processed due to an"
    " invalid byte range",
}


ERROR_NAMES = {code: name for name, code in list(globals().items()) if name.startswith("ERROR_")}
_ACCESS_NAMES = [
    (GENERIC_READ, "GENERIC_READ"), (GENERIC_WRITE, "GENERIC_WRITE"), (DELETE, "DELETE"),
    (READ_CONTROL, "READ_CONTROL"), (FILE_READ_ATTRIBUTES, "FILE_READ_ATTRIBUTES"),
]  # fmt: skip


def access_text(access: int) -> str:
    """`GENERIC_READ|DELETE`: an access mask as the trace shows it."""
    return "|".join(name for bit, name in _ACCESS_NAMES if access & bit) or "0"


def share_text(share: int) -> str:
    if share == SHARE_ALL:
        return "SHARE_ALL"
    names = [(FILE_SHARE_READ, "READ"), (FILE_SHARE_WRITE, "WRITE"), (FILE_SHARE_DELETE, "DELETE")]
    return "SHARE_" + ("|".join(name for bit, name in names if share & bit) or "NONE")


def disposition_text(disposition: int) -> str:
    return {OPEN_EXISTING: "OPEN_EXISTING", OPEN_ALWAYS: "OPEN_ALWAYS"}.get(
        disposition, str(disposition)
    )


def win_error(code: int, name: str | None = None) -> OSError:
    """The OSError CPython raises for Win32 error `code` (subclass by its errno; `winerror`)."""
    err = (
        OSError(_ERRNO[code], _TEXT[code])
        if name is None
        else OSError(_ERRNO[code], _TEXT[code], name)
    )
    err.winerror = code  # type: ignore[attr-defined]
    return err


def _data_access(access: int) -> tuple[bool, bool, bool]:
    """(reads, writes, deletes): the access that share modes are checked against."""
    return bool(access & GENERIC_READ), bool(access & GENERIC_WRITE), bool(access & DELETE)


@dataclass
class WinFile:
    index: int  # the file index (st_ino)
    mtime: float
    name: str | None  # its name in the dir (case kept); None once the name is gone
    size: int = 0
    delete: str | None = None  # the delete disposition: None, "classic" or "posix"
    # the file object a POSIX delete was set through (the name goes with its last handle)
    delete_by: FileObject | None = None


@dataclass(eq=False)
class FileObject:
    """What one `CreateFileW` opened: shared by the handles a child inherits."""

    key: tuple[int, int]  # (pid, handle number) of the open that made it: its name in states


@dataclass(eq=False)
class Handle:
    file: WinFile
    pid: int
    number: int
    access: int
    share: int
    fobj: FileObject = field(default_factory=lambda: FileObject((0, 0)))


@dataclass
class ByteLock:
    handle: Handle  # the handle it was taken through (its owner: the file object and the pid)
    exclusive: bool
    offset: int = WHOLE_FILE[0]
    length: int = WHOLE_FILE[1]

    def owner(self) -> tuple[FileObject, int]:
        return self.handle.fobj, self.handle.pid

    def overlaps(self, offset: int, length: int) -> bool:
        return self.offset < offset + length and offset < self.offset + self.length


@dataclass
class LockWait:
    handle: Handle
    exclusive: bool
    offset: int = WHOLE_FILE[0]
    length: int = WHOLE_FILE[1]


@dataclass
class WinProcess:
    pid: int
    name: str
    handles: dict[int, Handle] = field(default_factory=dict)
    alive: bool = True


class WinKernel:
    """The shared state every actor's Win32 calls act on (the interface `explore` needs too)."""

    def __init__(self) -> None:
        self.names: dict[str, WinFile] = {}  # casefolded name -> file
        self.next_index = 100
        self.locks: list[ByteLock] = []
        self.waits: list[LockWait] = []  # in the order they came
        self.procs: dict[int, WinProcess] = {}
        self.now = 0.0
        self.version = 0
        # one-way messages between processes (a keeper's "ready" on its stdout pipe): the
        # channel's name -> what was written, "" until then; EOF once its writer is gone
        self.channels: dict[str, str] = {}
        self.writers: dict[str, int] = {}  # channel -> the pid whose exit closes it

    # ---- set-up --------------------------------------------------------------------------------

    def spawn(self, pid: int, name: str) -> WinProcess:
        proc = WinProcess(pid, name)
        self.procs[pid] = proc
        self._changed()
        return proc

    def make_file(self, name: str, size: int = 0) -> WinFile:
        """A file that is there before anything runs (an orphaned lock file, say)."""
        self.next_index += 1
        found = WinFile(self.next_index, EPOCH - 3600, name, size)
        self.names[name.casefold()] = found
        return found

    def _changed(self) -> None:
        self.version += 1

    # ---- names and handles ---------------------------------------------------------------------

    def _base(self, path: str) -> str:
        head, base = ntpath.split(path)
        if head.casefold() != WIN_TMP.casefold():
            raise win_error(ERROR_PATH_NOT_FOUND, path)
        return base

    def _handle(self, pid: int, number: int) -> Handle:
        found = self.procs[pid].handles.get(number)
        if found is None:
            raise win_error(ERROR_INVALID_HANDLE)
        return found

    def _handles_on(self, file: WinFile) -> list[Handle]:
        return [h for p in self.procs.values() for h in p.handles.values() if h.file is file]

    # ---- CreateFileW, and os.lstat / os.listdir ------------------------------------------------

    def create_file(self, pid: int, path: str, access: int, share: int, disposition: int) -> int:
        """`CreateFileW`: a handle number, or the OSError Windows gives."""
        base = self._base(path)
        found = self.names.get(base.casefold())
        if found is None:
            if disposition != OPEN_ALWAYS:
                raise win_error(ERROR_FILE_NOT_FOUND, path)
            self.next_index += 1
            found = WinFile(self.next_index, EPOCH + self.now, base)
            self.names[base.casefold()] = found
        elif found.delete is not None:
            raise win_error(ERROR_ACCESS_DENIED, path)  # STATUS_DELETE_PENDING
        else:
            self._check_share(found, access, share, path)
        handles = self.procs[pid].handles
        number = 0x100
        while number in handles:  # the process's lowest free slot (handle tables are per process)
            number += 4
        handle = Handle(found, pid, number, access, share, FileObject((pid, number)))
        handles[number] = handle
        self._changed()
        return handle.number

    def _check_share(self, file: WinFile, access: int, share: int, path: str) -> None:
        reads, writes, deletes = _data_access(access)
        if not (reads or writes or deletes):
            return  # attributes or security only: share modes are not checked
        for other in self._handles_on(file):
            o_reads, o_writes, o_deletes = _data_access(other.access)
            if (
                (reads and not other.share & FILE_SHARE_READ)
                or (writes and not other.share & FILE_SHARE_WRITE)
                or (deletes and not other.share & FILE_SHARE_DELETE)
                or (o_reads and not share & FILE_SHARE_READ)
                or (o_writes and not share & FILE_SHARE_WRITE)
                or (o_deletes and not share & FILE_SHARE_DELETE)
            ):
                raise win_error(ERROR_SHARING_VIOLATION, path)

    def lstat(self, path: str) -> os.stat_result:
        """`os.lstat` on Windows (see the module doc for a delete-pending file)."""
        found = self.names.get(self._base(path).casefold())
        if found is None:
            raise win_error(ERROR_FILE_NOT_FOUND, path)
        index, dev = (0, 0) if found.delete is not None else (found.index, VOLUME_SERIAL)
        mode = stat.S_IFREG | 0o666  # CPython: 0o666 unless FILE_ATTRIBUTE_READONLY
        return os.stat_result(
            (mode, index, dev, 1, 0, 0, found.size, found.mtime, found.mtime, found.mtime)
        )

    def listdir(self, path: str) -> list[str]:
        if path.rstrip("\\").casefold() != WIN_TMP.casefold():
            raise win_error(ERROR_PATH_NOT_FOUND, path)
        return sorted(f.name for f in self.names.values() if f.name is not None)

    # ---- calls on a handle ---------------------------------------------------------------------

    def identity(self, pid: int, number: int) -> tuple[int, int]:
        """`GetFileInformationByHandle`: (volume serial, file index)."""
        return VOLUME_SERIAL, self._handle(pid, number).file.index

    def processes_using(self, pid: int, number: int) -> list[int]:
        """`FileProcessIdsUsingFileInformation`: every process with a handle on the file."""
        file = self._handle(pid, number).file
        return sorted({h.pid for h in self._handles_on(file)})

    def rename(self, pid: int, number: int, new_name: str, replace: bool = False) -> None:
        """`FileRenameInfo[Ex]` through a handle, to a name in the same dir."""
        handle = self._handle(pid, number)
        file = handle.file
        if not handle.access & DELETE or file.name is None or file.delete is not None:
            raise win_error(ERROR_ACCESS_DENIED, new_name)
        if "\\" in new_name or "/" in new_name:
            raise win_error(ERROR_PATH_NOT_FOUND, new_name)  # only same-dir renames are modelled
        if new_name.casefold() in self.names and new_name.casefold() != file.name.casefold():
            if not replace:
                raise win_error(ERROR_ALREADY_EXISTS, new_name)
            raise NotImplementedError("a replacing rename is not modelled")
        del self.names[file.name.casefold()]
        file.name = new_name
        self.names[new_name.casefold()] = file
        self._changed()

    def set_disposition(self, pid: int, number: int, delete: bool, posix: bool) -> None:
        """`FileDispositionInfo` (classic) or `FileDispositionInfoEx` (`POSIX_SEMANTICS`)."""
        handle = self._handle(pid, number)
        if delete and not handle.access & DELETE:
            raise win_error(ERROR_ACCESS_DENIED)
        file = handle.file
        if delete:
            file.delete = "posix" if posix else "classic"
            file.delete_by = handle.fobj if posix else None
        else:
            file.delete, file.delete_by = None, None
        self._changed()

    def close(self, pid: int, number: int) -> None:
        """`CloseHandle`: the locks this process owns through the handle's file object go
        (waiters granted), and the name if its delete is due (a POSIX delete: once the file
        object it was set through has no handle left, in any process)."""
        handle = self._handle(pid, number)
        del self.procs[pid].handles[number]
        self.waits = [w for w in self.waits if w.handle is not handle]
        self._drop_locks(handle)
        file = handle.file
        others = self._handles_on(file)
        fobj_gone = not any(h.fobj is handle.fobj for h in others)
        if file.delete is not None and (
            not others or (file.delete_by is handle.fobj and fobj_gone)
        ):
            self._unname(file)
        self._changed()

    def inherit(self, parent: int, child: int, numbers: list[int]) -> None:
        """A child process created with these handles inherited: the same numbers, the same
        file objects, access and share modes; none of the parent's locks."""
        handles = self.procs[child].handles
        for number in numbers:
            handle = self._handle(parent, number)
            if number in handles:
                raise ValueError(f"handle {number:#x} is taken in the child")
            handles[number] = Handle(
                handle.file, child, number, handle.access, handle.share, handle.fobj
            )
        self._changed()

    def _unname(self, file: WinFile) -> None:
        if file.name is not None and self.names.get(file.name.casefold()) is file:
            del self.names[file.name.casefold()]
        file.name = None

    def exit(self, pid: int) -> None:
        """The process ends: its waits are cancelled and every handle is closed."""
        proc = self.procs[pid]
        if not proc.alive:
            return
        self.waits = [w for w in self.waits if w.handle.pid != pid]
        for number in sorted(proc.handles):
            self.close(pid, number)
        proc.alive = False
        self._changed()

    # ---- LockFileEx ----------------------------------------------------------------------------

    def lock(
        self, pid: int, number: int, exclusive: bool, fail_immediately: bool,
        offset: int = WHOLE_FILE[0], length: int = WHOLE_FILE[1],
    ) -> object:  # fmt: skip
        """`LockFileEx` over [offset, offset + length): None when granted, `BLOCKED` when it
        has to wait."""
        handle = self._handle(pid, number)
        _check_range(offset, length)
        if not handle.access & (GENERIC_READ | GENERIC_WRITE):
            raise win_error(ERROR_ACCESS_DENIED)
        if not self._conflicts(handle, exclusive, offset, length):
            self.locks.append(ByteLock(handle, exclusive, offset, length))
            self._changed()
            return None
        if fail_immediately:
            raise win_error(ERROR_LOCK_VIOLATION)
        self.waits.append(LockWait(handle, exclusive, offset, length))
        self._changed()
        return BLOCKED

    def _conflicts(self, handle: Handle, exclusive: bool, offset: int, length: int) -> bool:
        owner = (handle.fobj, handle.pid)
        for lock in self.locks:
            if lock.handle.file is not handle.file or not lock.overlaps(offset, length):
                continue
            if exclusive:
                return True  # an exclusive request conflicts even with its own owner's locks
            if lock.exclusive and lock.owner() != owner:
                return True  # a shared one only with another owner's exclusive lock
        return False

    def unlock(
        self, pid: int, number: int, offset: int = WHOLE_FILE[0], length: int = WHOLE_FILE[1]
    ) -> None:
        """`UnlockFileEx`: exactly the range of a lock this process owns through the handle's
        file object (the exclusive one first)."""
        handle = self._handle(pid, number)
        _check_range(offset, length)
        owner = (handle.fobj, pid)
        mine = [
            lock for lock in self.locks
            if lock.handle.file is handle.file and lock.owner() == owner
            and (lock.offset, lock.length) == (offset, length)
        ]  # fmt: skip
        if not mine:
            raise win_error(ERROR_NOT_LOCKED)
        mine.sort(key=lambda lock: not lock.exclusive)
        self.locks.remove(mine[0])
        self._grant_waiters()
        self._changed()

    def _drop_locks(self, handle: Handle) -> None:
        """The handle's process closes it: every lock that process owns through its file
        object goes (`IopCloseFile` unlocks all of the process's locks on the file object)."""
        owner = (handle.fobj, handle.pid)
        before = len(self.locks)
        self.locks = [lock for lock in self.locks if lock.owner() != owner]
        if len(self.locks) != before:
            self._grant_waiters()

    def _grant_waiters(self) -> None:
        """Grant every waiting request that no longer conflicts, in the order they came."""
        for wait in list(self.waits):
            if not self._conflicts(wait.handle, wait.exclusive, wait.offset, wait.length):
                self.waits.remove(wait)
                self.locks.append(ByteLock(wait.handle, wait.exclusive, wait.offset, wait.length))

    def blocked(self, pid: int) -> bool:
        """Whether `pid` waits in `LockFileEx` (not runnable until granted)."""
        return any(w.handle.pid == pid for w in self.waits)

    def holds_lock(self, pid: int, number: int) -> bool:
        handle = self._handle(pid, number)
        return any(lock.handle is handle for lock in self.locks)

    def lock_ranges(self, file: WinFile) -> list[tuple[int, int, int, bool]]:
        """(owner pid, offset, length, exclusive) of every lock on `file` (for tests)."""
        return [
            (lock.handle.pid, lock.offset, lock.length, lock.exclusive)
            for lock in self.locks if lock.handle.file is file
        ]  # fmt: skip

    # ---- a pipe for one word (a keeper's "ready") ----------------------------------------------

    def open_channel(self, name: str, writer: int) -> None:
        self.channels[name] = ""
        self.writers[name] = writer
        self._changed()

    def write_channel(self, pid: int, name: str, text: str) -> None:
        if self.writers.get(name) != pid:
            raise win_error(ERROR_INVALID_HANDLE)
        self.channels[name] += text
        self._changed()

    def read_channel(self, name: str) -> str | None:
        """What was written; None while nothing was and the writer lives; "" at EOF."""
        text = self.channels[name]
        writer = self.procs.get(self.writers[name])
        if text or (writer is not None and writer.alive):
            return text or None
        return ""

    # ---- for the scheduler ---------------------------------------------------------------------

    def fingerprint(self) -> tuple[object, ...]:
        """Everything observable, handles named by (pid, number) so equal states compare equal."""
        files: dict[int, WinFile] = {f.index: f for f in self.names.values()}
        handles = []
        for pid, proc in sorted(self.procs.items()):
            for number, h in sorted(proc.handles.items()):
                files[h.file.index] = h.file
                handles.append((pid, number, h.file.index, h.access, h.share, h.fobj.key))
            handles.append((pid, proc.alive))

        def key(h: Handle | None) -> tuple[int, int] | None:
            return None if h is None else (h.pid, h.number)

        shape = tuple(
            (f.index, f.name, f.size, f.mtime, f.delete, f.delete_by and f.delete_by.key)
            for _, f in sorted(files.items())
        )
        names = tuple(sorted((name, f.index) for name, f in self.names.items()))
        locks = tuple((key(lk.handle), lk.exclusive, lk.offset, lk.length) for lk in self.locks)
        waits = tuple((key(w.handle), w.exclusive, w.offset, w.length) for w in self.waits)
        return (names, shape, tuple(handles), locks, waits, self.next_index, self.now,
                tuple(sorted(self.channels.items())))  # fmt: skip


def _check_range(offset: int, length: int) -> None:
    if length == 0:
        raise NotImplementedError("a zero-length lock is not modelled")
    if not (0 <= offset < 1 << 64 and 0 < length < 1 << 64) or offset + length > 1 << 64:
        raise win_error(ERROR_INVALID_LOCK_RANGE)
