"""The simulated kernel as macOS shows it, and the real DarwinRemover running on it.

macOS differs from the Linux flavour of `kernel.Kernel` in what the remover can see, not in how
files and locks behave: `flock` locks belong to the open file and every waiter is woken to retry
when the lock goes (xnu's `lf_setlock`/`lf_wakelock` for `F_FLOCK`, as Linux does), and uv's
create path is the same (`renamex_np(RENAME_EXCL)` is `RENAME_NOREPLACE`). What is different:

- **paths**: `$TMPDIR` is `/var/folders/<xx>/<id>/T`, and `/var` is a symlink to `/private/var`.
  uv and the remover name files through `/var/...`; the kernel reports the resolved vnode path,
  `/private/var/...` (`proc_pidfdinfo(PROC_PIDFDVNODEPATHINFO)`, `F_GETPATH`, psutil). Both
  spellings reach the same dir here;
- **no `/proc`** (no lock table, no fd links): who has a file open comes from libproc,
  `proc_listallpids` then, per process, `proc_pidinfo(PROC_PIDLISTFDS)` and
  `proc_pidfdinfo(PROC_PIDFDVNODEPATHINFO)` for each vnode fd: `(vst_dev, vst_ino, path)`, also
  for an unlinked file. The list is read one process at a time (a scheduling point before each),
  as the real calls are: a process may open the file after it was listed.
"""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator
from typing import Any

from tests.sim.kernel import EPOCH, SIM_DEV, TMP, Kernel, _err
from tests.sim.world import LOCK_NAME, Actor, Body, Scenario, SimKeeper, SimProcesses, uv_worker

#: `$TMPDIR` as uv, `confstr` and the remover name it, and the path the kernel reports.
DARWIN_TMP = "/var/folders/zz/sim0000000000000000000000/T"
DARWIN_REAL_TMP = "/private" + DARWIN_TMP


class DarwinKernel(Kernel):
    """`Kernel` with macOS's paths (`/var` -> `/private/var`) and without `/proc`."""

    @staticmethod
    def _resolve(path: str) -> str:
        for alias in (DARWIN_REAL_TMP, DARWIN_TMP):
            if path == alias or path.startswith(alias + "/"):
                return TMP + path[len(alias) :]
        if path == TMP or path.startswith(TMP + "/"):
            return "/nonexistent" + path  # the Linux sim's dir does not exist on this Mac
        return path

    def _in_dir(self, pid: int, name: str, dir_fd: int | None) -> str:
        return super()._in_dir(pid, self._resolve(name) if name.startswith("/") else name, dir_fd)

    def open_dir(self, pid: int, path: str) -> int:
        return super().open_dir(pid, self._resolve(path.rstrip("/")))

    def list_dir(self, pid: int, where: int | str) -> list[str]:
        if isinstance(where, str):
            raise _err(errno.ENOENT, where)  # no /proc
        return super().list_dir(pid, where)

    def read(self, path: str) -> bytes:
        raise _err(errno.ENOENT, path)

    def readlink(self, pid: int, path: str) -> str:
        raise _err(errno.ENOENT, path)

    def stat(self, path: str) -> Any:
        raise _err(errno.ENOENT, path)

    def vnodes(self, pid: int) -> list[tuple[int, int, str]] | None:
        """One process's open vnodes as libproc gives them; [] when it is gone."""
        proc = self.procs.get(pid)
        if proc is None or not proc.alive:
            return []  # ESRCH
        found = []
        for _fd, ofd in sorted(proc.fds.items()):
            inode = ofd.inode
            if inode is None:
                found.append((SIM_DEV, self.dir_inode.ino, DARWIN_REAL_TMP))
                continue
            path = DARWIN_REAL_TMP + inode.path[len(TMP) :]  # the resolved vnode path
            found.append((SIM_DEV, inode.ino, path))
        return found


def libproc_lister(actor: Actor) -> Callable[[], Iterator[tuple[int, list[Any] | None]]]:
    """`Libproc.open_files` for `actor`'s process, on the simulated kernel."""

    def open_files() -> Iterator[tuple[int, list[Any] | None]]:
        kernel: DarwinKernel = actor.world.kernel
        actor.park(("proc_listallpids",))
        pids = sorted(pid for pid, proc in kernel.procs.items() if proc.alive)
        actor.observe(("proc_listallpids",), pids)
        for pid in pids:
            what = ("proc_pidinfo", pid)
            actor.park(what)
            files = kernel.vnodes(pid)
            actor.observe(what, files)
            yield pid, files

    return open_files


def darwin_remover(actor: Actor, remover_type: Callable[..., Any] | None = None) -> Any:
    """The real `DarwinRemover` (or `remover_type`) as `actor`'s process would build it."""
    from uvsweep.remove.darwin import DarwinRemover

    kernel = actor.world.kernel
    return (remover_type or DarwinRemover)(
        open_files=libproc_lister(actor),
        calls=actor.calls,
        processes=SimProcesses(kernel),
        clock=lambda: EPOCH + kernel.now,
        keeper=SimKeeper(actor),
    )


def darwin_remover_run(remover_type: Callable[..., Any] | None = None) -> Callable[[], Body]:
    def make() -> Body:
        def body(actor: Actor) -> Any:
            from uvsweep.remove import Policy

            return darwin_remover(actor, remover_type).remove([DARWIN_TMP], Policy())

        return body

    return make


def _uv_on_macos(rounds: int, exact: bool, name: str = LOCK_NAME) -> Body:
    return uv_worker(rounds, exact, directory=DARWIN_TMP, name=name)


def darwin_scenario(
    uv: int = 2,
    removers: int = 1,
    rounds: int = 1,
    existing: bool = True,
    files: int = 1,
    uv_exact: bool = False,
    remover_type: Callable[..., Any] | None = None,
) -> Scenario:
    """A `Scenario` on the macOS kernel with uv (through `/var/...`) and the macOS remover."""
    return Scenario(
        uv=uv, removers=removers, rounds=rounds, existing=existing, files=files,
        uv_exact=uv_exact,
        remover=darwin_remover_run(remover_type), kernel=DarwinKernel, worker=_uv_on_macos,
        os_name="macOS",
    )  # fmt: skip
