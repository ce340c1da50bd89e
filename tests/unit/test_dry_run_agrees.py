"""`clean --dry-run` and `clean` agree, for each OS backend (issue 17): both ask the one rule,
`Policy.may_remove`, with the same answer to "may this process take other users' files?".

Before, the dry run decided that by `os.geteuid() == 0` (everyone was root where there is no
geteuid, as on Windows) while the Windows remover asked whether the user is an administrator:
a non-administrator's `clean --dry-run --all-users` listed other users' files that the real run
keeps.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests import darwin_model
from tests.conftest import Holder
from tests.darwin_model import LibprocModel
from tests.psutil_double import FakeProcess, FakePsutil
from tests.windows_model import WindowsModel
from uvsweep import cleaner
from uvsweep.model import CleanResult
from uvsweep.probe.darwin import DarwinBackend, Libproc
from uvsweep.probe.linux import LinuxBackend
from uvsweep.probe.windows import FILE_ATTRIBUTE_REPARSE_POINT, WindowsBackend
from uvsweep.processes import ProcessTable
from uvsweep.remove.darwin import DarwinRemover
from uvsweep.remove.posix import LinuxRemover
from uvsweep.remove.windows import WindowsRemover
from uvsweep.visibility import Visibility

OLD, YOUNG, HELD, FOREIGN, LINK, ODD = (f"uv-00000000000000{x}.lock" for x in
                                         ("a1", "a2", "a3", "a4", "a5", "a6"))  # fmt: skip
SEES_ALL = Visibility(os.getpid(), "host", None, sees_all_users=True, sees_all_namespaces=True)
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0


def outcome(result: CleanResult) -> tuple[set[str], dict[str, str]]:
    """What went and, for what stayed, its state (the reasons are worded by each side)."""
    return set(result.removed), {s.path: s.state.value for s in result.skipped}


def both_runs(dirs: list[str], **seams: Any) -> tuple[CleanResult, CleanResult]:
    common = {"gate": False, "seen": SEES_ALL, "accept_hidden": True, **seams}
    dry = cleaner.clean(dirs, dry_run=True, **common)
    return dry, cleaner.clean(dirs, **{k: v for k, v in common.items() if k != "backend"})


# ---- Linux: real files, real flock ---------------------------------------------------------


def fill_posix(lockdir: Path, hold: type[Holder]) -> Holder:
    for name in (OLD, YOUNG, HELD, FOREIGN, ODD):
        (lockdir / name).touch()
    (lockdir / ODD).write_text("not empty")
    os.symlink(lockdir / OLD, lockdir / LINK)
    past = time.time() - 3600
    for name in (OLD, HELD, FOREIGN, ODD):
        os.utime(lockdir / name, (past, past))
    if IS_ROOT:
        os.chown(lockdir / FOREIGN, 65534, 65534)
    return hold(lockdir / HELD)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's /proc")
@pytest.mark.parametrize("all_users", [False, True])
def test_linux_dry_run_and_clean_agree(lockdir: Path, hold: type[Holder], all_users: bool) -> None:
    if all_users and not IS_ROOT:
        pytest.skip("--all-users is root's")
    fill_posix(lockdir, hold)
    processes = ProcessTable()
    dry, real = both_runs(
        [str(lockdir)], min_age=60, all_users=all_users, processes=processes,
        backend=LinuxBackend(processes=processes), remover=LinuxRemover(processes=processes),
    )  # fmt: skip
    assert outcome(dry) == outcome(real)
    removed, kept = outcome(real)
    gone = {OLD, FOREIGN} if all_users or not IS_ROOT else {OLD}
    assert removed == {str(lockdir / name) for name in gone}
    assert kept[str(lockdir / YOUNG)] == "orphaned" and kept[str(lockdir / HELD)] == "held"


# ---- Windows: the strict model of its file calls, admin or not ------------------------------


@pytest.fixture
def psutil_as_on_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    procs = [FakeProcess(pid, name="uv.exe", username="HOST\\me") for pid in (1, 99)]
    monkeypatch.setitem(sys.modules, "psutil", FakePsutil("win32", procs))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the model runs on Linux")
@pytest.mark.usefixtures("psutil_as_on_windows")
@pytest.mark.parametrize(("admin", "all_users"), [(False, True), (True, True), (True, False)])
def test_windows_dry_run_and_clean_agree(admin: bool, all_users: bool) -> None:
    fs = WindowsModel()
    fs.add(OLD)
    fs.add(FOREIGN, mine=False)
    fs.add(LINK, attrs=FILE_ATTRIBUTE_REPARSE_POINT)
    fs.add(ODD, size=9)
    processes = ProcessTable(platform="win32")
    remover = WindowsRemover(
        files=fs, processes=processes, lstat=fs.lstat, listdir=fs.listdir,  # type: ignore[arg-type]
        clock=time.time, is_admin=lambda: admin,
    )  # fmt: skip
    backend = WindowsBackend(files=fs, processes=processes,  # type: ignore[arg-type]
                             lstat=fs.lstat, listdir=fs.listdir)  # fmt: skip
    dry, real = both_runs([fs.DIR], all_users=all_users, processes=processes, backend=backend,
                          remover=remover)  # fmt: skip
    assert outcome(dry) == outcome(real)
    removed, kept = outcome(real)
    assert (fs.path(FOREIGN) in removed) == (admin and all_users)
    assert fs.path(OLD) in removed
    assert kept[fs.path(LINK)] == kept[fs.path(ODD)] == "suspicious"


# ---- macOS: real files and flock, libproc and psutil as macOS answers them -------------------


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the model runs on Linux")
@pytest.mark.parametrize("all_users", [False, True])
def test_darwin_dry_run_and_clean_agree(
    lockdir: Path, hold: type[Holder], all_users: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if all_users and not IS_ROOT:
        pytest.skip("--all-users is root's")
    held = fill_posix(lockdir, hold)
    monkeypatch.setitem(sys.modules, "psutil",
                        darwin_model.psutil_double([held.pid], refused=[999999]))  # fmt: skip
    libproc = Libproc(LibprocModel([held.pid], refused=[999999]).library())
    processes = ProcessTable(platform="darwin")
    dry, real = both_runs(
        [str(lockdir)], min_age=60, all_users=all_users, processes=processes,
        backend=DarwinBackend(processes=processes, open_files=libproc.open_files),
        remover=DarwinRemover(open_files=libproc.open_files, processes=processes),
    )  # fmt: skip
    assert outcome(dry) == outcome(real)
    removed, kept = outcome(real)
    assert str(lockdir / OLD) in removed and kept[str(lockdir / HELD)] == "held"
    assert (str(lockdir / FOREIGN) in removed) == (all_users and IS_ROOT)
