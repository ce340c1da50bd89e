"""A model of the Windows file calls uvsweep makes, strict where Windows is strict.

What it enforces, as NTFS does (see the Win32 docs of `CreateFileW`, `LockFileEx`,
`SetFileInformationByHandle` and `NtQueryInformationFile`):

- a name refers to a file; handles refer to files, not names; every handle has an access mask
  and share modes, and an open that conflicts with another handle's fails with
  `ERROR_SHARING_VIOLATION`;
- a file with a delete pending refuses every new open with `ERROR_ACCESS_DENIED` (this is what
  uv >= 0.7.19 meets, warns about, and then runs without its lock);
- `FileDispositionInfoEx(DELETE | POSIX_SEMANTICS)`: the name goes when the handle that set it is
  closed, while other handles keep the file; the classic disposition keeps the name until the
  last handle closes;
- a rename through a handle needs `DELETE` access on it and `FILE_SHARE_DELETE` from every other
  handle, fails if the new name exists, and frees the old name at once;
- `LockFileEx` byte-range locks belong to a handle; an exclusive lock conflicts with any other
  handle's lock; closing a handle drops its locks. uv's and the remover's first lock are over
  the whole file (`Handle.lock`); the handoff's fences are single bytes (`Handle.ranges`): an
  exclusive request conflicts with every lock it overlaps (its own handle's too), and
  `UnlockFileEx` must name exactly a range the handle locked (`ERROR_NOT_LOCKED`);
- a child's inherited handle (`inherit`) is the same file but holds none of the parent's locks
  (here it gets a number of its own; on Windows it keeps the parent's number);
- `FileProcessIdsUsingFileInformation` lists every process with a handle on the file.

uv's own calls are modelled as `uv_open` (Rust's `OpenOptions` read, write, create: `OPEN_ALWAYS`,
sharing read, write and delete) and `try_lock`.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from typing import Any

GENERIC_READ, GENERIC_WRITE, DELETE = 0x80000000, 0x40000000, 0x00010000
SHARE_READ, SHARE_WRITE, SHARE_DELETE = 0x1, 0x2, 0x4
SHARE_ALL = SHARE_READ | SHARE_WRITE | SHARE_DELETE
ME = os.getpid()


def access_denied(what: str) -> PermissionError:
    err = PermissionError(13, f"Access is denied ({what})")
    err.winerror = 5  # type: ignore[attr-defined]
    return err


def sharing_violation() -> PermissionError:
    err = PermissionError(13, "The process cannot access the file because it is being used")
    err.winerror = 32  # type: ignore[attr-defined]
    return err


class File:
    def __init__(self, index: int, *, size: int = 0, attrs: int = 0, mine: bool = True) -> None:
        self.index, self.size, self.attrs, self.mine = index, size, attrs, mine
        self.mtime = 0.0
        self.delete_pending = False
        self.alive = True


class Handle:
    def __init__(self, number: int, file: File, pid: int, access: int, share: int) -> None:
        self.number, self.file, self.pid, self.access, self.share = number, file, pid, access, share
        self.lock: str | None = None  # "shared" or "exclusive", over the whole file
        self.ranges: list[tuple[int, int]] = []  # exclusive byte ranges: (offset, length)
        self.delete_disposition: str | None = None  # "posix" or "classic"


class Stat:
    def __init__(self, f: File) -> None:
        self.st_mode = stat.S_IFREG | 0o666
        self.st_size, self.st_nlink, self.st_mtime = f.size, 1, f.mtime
        self.st_dev, self.st_ino, self.st_file_attributes = 7, f.index, f.attrs


class WindowsModel:
    """One volume, one dir (`C:\\T`), the handles of every process, and hooks for races."""

    DIR = "C:\\T"

    def __init__(self, posix_delete: bool = True) -> None:
        self.names: dict[str, File] = {}  # full path -> file
        self.handles: dict[int, Handle] = {}
        self.next_number = 100
        self.next_index = 1
        self.posix_delete = posix_delete  # False: FAT, or Windows before 10 1607
        self.log: list[str] = []
        self.hooks: dict[str, Callable[..., Any]] = {}  # event name -> called on that event
        self.pids_fail = False
        #: called with the call's name before every call the code under test makes: the other
        #: processes take their steps there
        self.on_call: Callable[[str], None] | None = None

    # ---- helpers for tests --------------------------------------------------------------------

    def path(self, name: str) -> str:
        return f"{self.DIR}\\{name}"

    def add(self, name: str, **kwargs: Any) -> File:
        f = File(self.next_index, **kwargs)
        self.next_index += 1
        self.names[self.path(name)] = f
        return f

    def _step(self, call: str) -> None:
        if self.on_call is not None:
            self.on_call(call)

    def _fire(self, event: str, *args: Any) -> None:
        hook = self.hooks.pop(event, None)
        if hook is not None:
            hook(*args)

    def ours(self) -> list[Handle]:
        return [h for h in self.handles.values() if h.pid == ME]

    def holder_of(self, path: str) -> int | None:
        """The pid holding an exclusive lock on the file now at `path`."""
        f = self.names.get(path)
        for h in self.handles.values():
            if f is not None and h.file is f and (h.lock == "exclusive" or h.ranges):
                return h.pid
        return None

    # ---- os-level seams -----------------------------------------------------------------------

    def lstat(self, path: str) -> Stat:
        self._step("lstat")
        self._fire("lstat " + path)
        f = self.names.get(path)
        if f is None:
            raise FileNotFoundError(2, "The system cannot find the file specified", path)
        st = Stat(f)
        if f.delete_pending:
            # CreateFileW is refused; CPython's stat falls back to FindFirstFileW, which knows
            # no file index
            st.st_ino = 0
        return st

    def listdir(self, directory: str) -> list[str]:
        if directory != self.DIR:
            raise FileNotFoundError(3, "The system cannot find the path specified")
        return [p.rsplit("\\", 1)[1] for p in self.names] + ["notes.txt"]

    # ---- CreateFileW --------------------------------------------------------------------------

    def create_file(self, path: str, pid: int, access: int, share: int, create: bool) -> int:
        f = self.names.get(path)
        if f is None:
            if not create:
                raise FileNotFoundError(2, "The system cannot find the file specified", path)
            f = self.add(path.rsplit("\\", 1)[1])
        if f.delete_pending:
            raise access_denied("delete pending")
        for other in self.handles.values():
            if other.file is not f:
                continue
            if (
                (access & (GENERIC_READ) and not other.share & SHARE_READ)
                or (access & GENERIC_WRITE and not other.share & SHARE_WRITE)
                or (access & DELETE and not other.share & SHARE_DELETE)
            ):
                raise sharing_violation()
            if (
                (other.access & GENERIC_READ and not share & SHARE_READ)
                or (other.access & GENERIC_WRITE and not share & SHARE_WRITE)
                or (other.access & DELETE and not share & SHARE_DELETE)
            ):
                raise sharing_violation()
        self.next_number += 1
        self.handles[self.next_number] = Handle(self.next_number, f, pid, access, share)
        return self.next_number

    def uv_open(self, name: str, pid: int) -> int:
        """uv opening its lock file: read, write, `OPEN_ALWAYS`, sharing everything."""
        return self.create_file(self.path(name), pid, GENERIC_READ | GENERIC_WRITE, SHARE_ALL,
                                create=True)  # fmt: skip

    def try_lock(self, number: int, exclusive: bool = True) -> bool:
        """A whole-file `LockFileEx` (uv's), fail-immediately."""
        mine = self.handles[number]
        if mine.ranges or (exclusive and mine.lock):
            return False  # an exclusive request conflicts with its own handle's locks too
        for other in self.handles.values():
            if other is mine or other.file is not mine.file:
                continue
            if other.ranges:
                return False  # any byte lies in the whole file
            if other.lock is None:
                continue
            if exclusive or other.lock == "exclusive":
                return False
        mine.lock = "exclusive" if exclusive else "shared"
        return True

    def inherit(self, number: int, pid: int) -> int:
        """A child `pid` inheriting handle `number`: the same file, no locks; its number."""
        h = self.handles[number]
        self.next_number += 1
        self.handles[self.next_number] = Handle(self.next_number, h.file, pid, h.access, h.share)
        return self.next_number

    def close_handle(self, number: int) -> None:
        h = self.handles.pop(number)
        f = h.file
        if h.delete_disposition == "posix":
            self._unname(f)
        if not any(o.file is f for o in self.handles.values()):
            if f.delete_pending:
                self._unname(f)
            f.alive = False

    def _unname(self, f: File) -> None:
        for path in [p for p, g in self.names.items() if g is f]:
            del self.names[path]

    # ---- the Win32Files / Win32Remove protocols (the remover's pid is ours) --------------------

    def open(self, path: str) -> int:
        self._step("open")
        self.log.append("open")
        return self.create_file(path, ME, GENERIC_READ, SHARE_ALL, create=False)

    def open_for_delete(self, path: str) -> int:
        self._step("open_for_delete")
        self.log.append("open")
        return self.create_file(path, ME, GENERIC_READ | DELETE, SHARE_ALL, create=False)

    def open_generation(self, path: str) -> int:
        self._step("open_generation")
        self.log.append("create")
        number = self.create_file(path, ME, GENERIC_READ | GENERIC_WRITE, SHARE_ALL, create=True)
        if self.handles[number].file.attrs & 0x400:
            self.close_handle(number)
            raise OSError(22, "a reparse point is at the name")
        return number

    def identity(self, number: int) -> tuple[int, int]:
        self._step("identity")
        return 7, self.handles[number].file.index

    def owner(self, number: int) -> tuple[str, bool]:
        self._step("owner")
        mine = self.handles[number].file.mine
        return ("HOST\\me" if mine else "HOST\\bob"), mine

    def try_lock_shared(self, number: int) -> bool:
        self._step("try_lock_shared")
        got = self.try_lock(number, exclusive=False)
        if got:
            self.handles[number].lock = None
        return got

    def lock_exclusive(self, number: int) -> bool:
        self._step("lock_exclusive")
        got = self.try_lock(number)
        if got:
            self.log.append("lock")
        return got

    def lock_range(self, number: int, offset: int, length: int) -> bool:
        self._step("lock_range")
        assert length > 0, "zero-length locks are not modelled"
        mine = self.handles[number]
        for other in self.handles.values():
            if other.file is not mine.file:
                continue
            if other.lock is not None or any(
                start < offset + length and offset < start + size for start, size in other.ranges
            ):
                return False
        mine.ranges.append((offset, length))
        self.log.append(f"lock [{offset},{offset + length})")
        return True

    def unlock_range(self, number: int, offset: int, length: int) -> None:
        self._step("unlock_range")
        mine = self.handles[number]
        if (offset, length) not in mine.ranges:
            err = PermissionError(13, "The segment is already unlocked")
            err.winerror = 158  # type: ignore[attr-defined]  # ERROR_NOT_LOCKED
            raise err
        mine.ranges.remove((offset, length))
        self.log.append(f"unlock [{offset},{offset + length})")
        self._fire("unlock_range", number)

    def unlock(self, number: int) -> None:
        self._step("unlock")
        self.handles[number].lock = None
        self.log.append("unlock")
        self._fire("unlock", number)

    def pids_using(self, number: int) -> list[int]:
        self._step("pids_using")
        if self.pids_fail:
            raise PermissionError(5, "Access is denied")
        self.log.append("pids")
        self._fire("pids", number)
        f = self.handles[number].file
        return sorted({h.pid for h in self.handles.values() if h.file is f})

    def rename(self, number: int, new_name: str) -> None:
        self._step("rename")
        h = self.handles[number]
        assert "\\" not in new_name and "/" not in new_name, "a rename within the same dir"
        if not h.access & DELETE:
            raise access_denied("rename needs DELETE access")
        if any(o is not h and o.file is h.file and not o.share & SHARE_DELETE
               for o in self.handles.values()):  # fmt: skip
            raise sharing_violation()
        target = self.path(new_name)
        if target in self.names:
            raise FileExistsError(183, "Cannot create a file when that file already exists")
        old = [p for p, g in self.names.items() if g is h.file]
        assert len(old) == 1
        del self.names[old[0]]
        self.names[target] = h.file
        self.log.append("rename")
        self._fire("rename", number)

    def set_delete(self, number: int) -> None:
        self._step("set_delete")
        h = self.handles[number]
        if not h.access & DELETE:
            raise access_denied("delete needs DELETE access")
        assert h.lock == "exclusive", "the delete must happen while our lock is held"
        h.file.delete_pending = True
        h.delete_disposition = "posix" if self.posix_delete else "classic"
        self.log.append("delete")

    def close(self, number: int) -> None:
        self._step("close")
        self.log.append("close")
        self.close_handle(number)
