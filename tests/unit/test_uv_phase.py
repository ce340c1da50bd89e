"""Who is uv and whether it is active or parked: the rules, and the table on a /proc laid out as
the kernel lays it out (files written by the test; the real kernel runs in test_uv_gate.py)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from tests.fake_proc import BTIME, FakeProc
from uvsweep import cleaner, uvphase
from uvsweep.model import LockUser
from uvsweep.processes import ProcessTable


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("uv", True), ("uvx", True), ("uvw", True), ("uv.exe", True), ("UVX.EXE", True),
        ("uv@0.13.9", True), ("uvx@0.13.9", True), ("uv@0.13.9.exe", True),
        ("uv-0.13.9", False), ("myuv", False), ("uvicorn", False), ("uv@", False),
    ],
)  # fmt: skip
def test_uv_names(name: str, expected: bool) -> None:
    assert uvphase.is_uv_name(name) is expected


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (("uv", "run", "x"), ("run",)),
        (("uv", "-q", "--directory", "run", "sync"), ("sync",)),
        (("uv", "--cache-dir=/c", "tool", "run", "ruff"), ("tool", "run")),
        (("uv", "tool", "uvx", "--from", "x", "y"), ("tool", "uvx")),
        (("uv", "--no-cache", "pip", "install", "x"), ("pip",)),
        (("uv",), ()),
    ],
)
def test_the_subcommand_skips_global_options(argv: tuple[str, ...], words: tuple[str, ...]) -> None:
    assert uvphase.subcommand(argv) == words


def test_runners_and_python_m_uv() -> None:
    assert uvphase.is_runner(("uv", "run", "--script", "s.py"))
    assert uvphase.is_runner(("/x/uv", "tool", "uvx", "ruff"))
    assert not uvphase.is_runner(("uv", "sync"))
    assert not uvphase.is_runner(("uv", "tool", "install", "ruff"))
    assert uvphase.is_python_m_uv(("/usr/bin/python3", "-I", "-m", "uv", "sync"))
    assert not uvphase.is_python_m_uv(("python3", "-m", "uvicorn"))
    assert not uvphase.is_python_m_uv(("python3", "script.py", "-m", "uv"))


QUERY_CODE = (
    "import sys; sys.path = ['/c/.tmpX'] + sys.path; from python.get_interpreter_info import main;"
    " main()"
)
QUERY = ("/usr/bin/python3", "-I", "-B", "-c", QUERY_CODE)
BACKEND = ("/c/builds-v0/.tmpY/bin/python", "-c",
           "import sys\nimport setuptools.build_meta as backend\nimport json")  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "kind"),
    [
        (QUERY, "an interpreter query"),
        (BACKEND, "a build backend"),
        (("/v/bin/python", "/tmp/.tmpZ/pip_compileall.py"), "bytecode compilation"),
        (("/usr/bin/git", "fetch", "origin"), "git"),
        (("sleep", "60"), None),
        (("/v/bin/python", "-c", "import time; time.sleep(9)"), None),
    ],
)
def test_uvs_own_helpers_are_told_from_the_users_command(
    argv: tuple[str, ...], kind: str | None
) -> None:
    assert uvphase.helper_kind(argv) == kind


RUN = ("uv", "run", "--", "sleep", "60")


def phase(
    argv: tuple[str, ...] | None = RUN,
    children: list[uvphase.Child] | None = None,
    locks: tuple[bool, bool] | None = (False, False),
    wrapper: bool = False,
) -> str:
    return uvphase.phase(argv, wrapper=wrapper, children=children or [], locks=locks)[0]


def test_parked_only_once_the_users_command_runs_and_no_lock_says_otherwise() -> None:
    sleeping = [uvphase.Child(7, ("sleep", "60"))]
    assert phase(children=sleeping) == "parked"
    assert phase(children=sleeping, locks=None) == "parked"  # no lock table (macOS, Windows)
    assert phase(children=[]) == "active"  # not started yet
    assert phase(children=[uvphase.Child(7, QUERY)]) == "active"
    assert phase(children=[uvphase.Child(7, BACKEND)]) == "active"
    assert phase(children=[uvphase.Child(7, RUN, forked=True)]) == "active"  # before its exec
    assert phase(children=sleeping, locks=(True, False)) == "active"  # waits for a lock
    assert phase(children=sleeping, locks=(False, True)) == "active"  # holds an exclusive one
    assert phase(("uv", "sync"), children=sleeping) == "active"
    assert phase(None, children=sleeping) == "active"  # its command line is hidden


def test_a_launcher_is_parked_once_its_uv_runs() -> None:
    uvx = ("uvx", "ruff")
    assert phase(uvx, wrapper=True) == "active"
    assert phase(uvx, wrapper=True, children=[uvphase.Child(8, ("uv",), is_uv=True)]) == "parked"


# ---- the table on a /proc written by the test -----------------------------------------------


@pytest.fixture
def proc(tmp_path: Path) -> FakeProc:
    return FakeProc(tmp_path / "proc")


def judged(proc: FakeProc) -> dict[int, tuple[str, str]]:
    table = ProcessTable(platform="linux", proc=str(proc.root))
    return {p.pid: (p.phase, p.phase_reason) for p in table.uv_processes()}


def test_uv_under_any_name(proc: FakeProc, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / ".lock").touch()
    proc.add(10, ("/opt/uv", "sync"))  # by its name
    proc.add(11, ("/home/me/bin/myuv", "sync"), exe="/opt/uv")  # a symlink: by its executable
    proc.add(12, ("./uv-0.13.9", "sync"), env={"UV_CACHE_DIR": str(cache)})  # by its cache lock
    proc.lock(12, (cache / ".lock").stat().st_ino)
    proc.add(13, ("./uv-0.12.0", "sync"), cwd=str(tmp_path), env={})
    proc.lock(13, (cache / ".lock").stat().st_ino, waiting=True)  # `--cache-dir` unknown: no
    proc.add(14, ("/usr/bin/python3", "-m", "uv", "sync"))  # python -m uv
    proc.add(15, ("/usr/bin/python3", "-m", "uvicorn", "app"))
    proc.add(16, ("./uv-0.11.0", "--cache-dir", "cache", "sync"), cwd=str(tmp_path))
    proc.lock(16, (cache / ".lock").stat().st_ino)  # a relative --cache-dir, from its cwd
    proc.add(17, ("/opt/uv", "run", "x"), state="Z")  # a zombie is not alive
    assert sorted(judged(proc)) == [10, 11, 12, 14, 16]


def test_uv_by_its_name_alone_or_its_argv0_alone(proc: FakeProc) -> None:
    """Kills `_name_and_parent`'s name `raw[left + 1 : right]` -> `left + 0` (the "(" kept),
    `_named_uv`'s argv[0] `split(b"\\0", 1)[0]` -> `[1]` and its `-m uv` check's
    `info is not None and is_uv_process(info)` -> `or` (run 4): each sign counts alone, and
    `-m uv` only for a python."""
    proc.add(70, ("/usr/bin/python3", "tool.py"), comm="uv")  # its name (a renamed process)
    proc.add(71, ("uv", "sync"), comm="python3")  # its argv[0] (`exec -a uv`)
    proc.add(72, ("/usr/bin/python3", "uv"), comm="python3")  # an argument is no argv[0]
    proc.add(73, ("/usr/bin/node", "-m", "uv"), comm="node")  # `-m uv` of no python
    assert sorted(judged(proc)) == [70, 71]


def test_a_cache_lock_after_one_with_no_pid_still_counts(proc: FakeProc, tmp_path: Path) -> None:
    """Kills `cache_lock_pids`' `continue` after a pid that is no process -> `break`,
    `_parse_locks`' waiter `del parts[1]` -> `[2]` and `_cache_dirs`' `word == "--cache-dir"
    and ...` -> `or` (run 4): an OFD lock (pid -1) or one from another PID namespace (pid 0)
    printed before a uv's cache lock must not hide that uv, a uv waiting for its cache lock
    counts, only `--cache-dir` names a cache dir on a command line, and a hidden working dir
    drops only the relative cache dirs (`not os.path.isabs(directory) and not cwd`, `not`
    removed); `$XDG_CACHE_HOME/uv` is a cache dir (its loop run zero times), so is
    `--cache-dir=DIR` (`split("=", 1)[1]` -> `[2]`, `split("=", 2)`), and `--cache-dir` as the
    last word is no traceback (`index + 1 < len(argv)` -> `+ 0`) and `--cache-dir DIR` may be
    the last two (`+ 1` -> `+ 2`); an empty dir (an unset variable) is none, not the working
    dir (`not directory or ...` -> `and`); `~/.cache/uv` of its `$HOME` counts (the homes'
    loop run zero times); uv may be pid 1 (`pid <= 0`
    -> `<= 1`);
    a pid that is gone is no uv and no traceback (`info is not None and info.uid ...` ->
    `or`)."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / ".lock").touch()
    inode = (cache / ".lock").stat().st_ino
    proc.lock(-1, 5)
    proc.lock(0, 6)
    proc.add(12, ("./uv-0.13.9", "sync"), env={"UV_CACHE_DIR": str(cache)})
    proc.lock(12, inode)
    proc.add(13, ("./uv-0.12.0", "sync"), env={"UV_CACHE_DIR": str(cache)})
    proc.lock(13, inode, waiting=True)  # waits for the cache: a uv all the same
    proc.add(16, ("./uv-0.13.0", "sync"), env={"UV_CACHE_DIR": str(cache)})
    (proc.root / "16" / "cwd").unlink()  # its working dir hidden: absolute dirs still count
    proc.lock(16, inode)
    xdg = tmp_path / "xdg"
    (xdg / "uv").mkdir(parents=True)
    (xdg / "uv" / ".lock").touch()
    proc.add(17, ("./uv-0.13.1", "sync"), env={"XDG_CACHE_HOME": str(xdg)})
    proc.lock(17, (xdg / "uv" / ".lock").stat().st_ino)  # `$XDG_CACHE_HOME/uv`
    other = tmp_path / "other=1"  # `--cache-dir=DIR` with an "=" in DIR
    other.mkdir()
    (other / ".lock").touch()
    proc.add(18, ("./uv-0.13.2", f"--cache-dir={other}", "sync"), env={})
    proc.lock(18, (other / ".lock").stat().st_ino)  # `--cache-dir=DIR`
    proc.add(1, ("./uv-0.13.3", "sync"), env={"UV_CACHE_DIR": str(cache)})
    proc.lock(1, inode)  # uv as pid 1 (a container's)
    proc.lock(4242, inode)  # a pid gone before its details were read: no uv, no traceback
    proc.add(20, ("./uv-0.13.4", "--cache-dir", str(other)), env={})  # its last two words
    proc.lock(20, (other / ".lock").stat().st_ino)
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / ".lock").touch()  # a tool's own `.lock` in its working dir is no cache's
    proc.add(21, ("./tool", "run"), env={}, cwd=str(workdir))
    proc.lock(21, (workdir / ".lock").stat().st_ino)
    home = tmp_path / "home"
    (home / ".cache" / "uv").mkdir(parents=True)
    (home / ".cache" / "uv" / ".lock").touch()
    proc.add(22, ("./uv-0.13.5", "sync"), env={"HOME": str(home)})
    proc.lock(22, (home / ".cache" / "uv" / ".lock").stat().st_ino)  # `~/.cache/uv`
    proc.add(19, ("./tool", "--cache-dir"), env={})  # no word after it (bad input)
    proc.lock(19, inode + 1)
    # another program's lock on a `.lock` in a dir its command line names is no uv cache's
    data = tmp_path / "data"
    data.mkdir()
    (data / ".lock").touch()
    proc.add(14, ("./tool", "--data", str(data), "run"), env={})
    proc.lock(14, (data / ".lock").stat().st_ino)
    assert sorted(judged(proc)) == [1, 12, 13, 16, 17, 18, 20, 22]


def test_a_lock_line_too_short_to_read_is_skipped_and_the_rest_read(
    proc: FakeProc, tmp_path: Path
) -> None:
    """Kills `_parse_locks`' `except (IndexError, ValueError)` narrowed, its `len(parts) > 1`
    -> `>= 1`, `> 0` or `<= 1` and `len(parts) < 2 or parts[1] != "FLOCK"` -> `and` (run 4): a
    line cut short or of one word (bad input) is skipped, never a traceback of the gate; a
    POSIX lock on a cache's `.lock` is another program's (uv uses flock); a uv's cache lock
    after them still counts."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / ".lock").touch()
    proc.add(12, ("./uv-0.13.9", "sync"), env={"UV_CACHE_DIR": str(cache)})
    proc.lock(12, (cache / ".lock").stat().st_ino)
    proc.add(15, ("./tool", "x"), env={"UV_CACHE_DIR": str(cache)})
    locks = proc.root / "locks"
    locks.write_text(
        "1: FLOCK  ADVISORY  READ\n"
        "garbage\n"
        f"3: POSIX  ADVISORY  WRITE 15 fe:00:{(cache / '.lock').stat().st_ino} 0 EOF\n"
        + locks.read_text()
    )
    assert sorted(judged(proc)) == [12]


@pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to a uid with no name needs root")
def test_a_lock_holder_whose_uid_has_no_name_is_no_traceback(
    proc: FakeProc, tmp_path: Path
) -> None:
    """Kills `_cache_dirs`' `except (ImportError, KeyError)` around `pwd.getpwuid` narrowed
    (run 4): a process whose uid has no passwd entry (a container's) has no home dir to look
    in, never a traceback of the gate."""
    proc.add(18, ("./tool", "run"), env={})
    os.chown(proc.root / "18", 54321, 54321)
    proc.lock(18, 77)
    assert judged(proc) == {}


def test_alive_is_neither_a_zombie_nor_a_pid_that_is_gone(proc: FakeProc) -> None:
    """Kills `alive`'s `found is not None and ...` -> `or` (run 4)."""
    proc.add(90, ("/opt/uv", "sync"))
    proc.add(91, ("/opt/uv", "sync"), state="Z")
    table = ProcessTable(platform="linux", proc=str(proc.root))
    assert table.alive(90) and not table.alive(91) and not table.alive(92)


def test_a_process_file_that_opens_but_cannot_be_read_is_unknown(proc: FakeProc) -> None:
    """Kills `_read`'s `except OSError` around the reads narrowed (run 4): a `/proc` file that
    opens but fails to read (here EISDIR; a process exiting mid-read gives ESRCH) is unknown
    (None), never a traceback."""
    proc.add(93, ("/opt/uv", "sync"))
    (proc.root / "93" / "environ").mkdir()
    table = ProcessTable(platform="linux", proc=str(proc.root))
    assert table.environ(93) is None


def test_a_process_started_when_its_stat_says(proc: FakeProc) -> None:
    """Kills `_linux_info`'s `found[1] / os.sysconf("SC_CLK_TCK")` -> `*` (run 4): the start
    time (shown as a uv process's age) is boot time plus the stat's ticks in seconds."""
    import os

    proc.add(94, ("/opt/uv", "sync"))  # started 100 ticks after boot
    info = ProcessTable(platform="linux", proc=str(proc.root)).info(94)
    assert info is not None and info.started == BTIME + 100 / os.sysconf("SC_CLK_TCK")


def test_is_uv_process_by_its_name_or_its_argv0() -> None:
    """Kills `is_uv_process`' `return True` for a uv name -> `False` and its argv[0]
    `cmdline[0]` -> `[1]` (run 4): what the table asks off Linux, and of `python -m uv`."""
    from uvsweep.model import ProcessInfo
    from uvsweep.processes import is_uv_process

    def info(name: str | None, cmdline: tuple[str, ...] | None) -> ProcessInfo:
        return ProcessInfo(7, name, 0, "root", cmdline, "/", None)

    assert is_uv_process(info("uv", None))  # its command line hidden
    assert is_uv_process(info("python3", ("/opt/uv", "sync")))
    assert not is_uv_process(info("python3", ("/usr/bin/python3", "uv")))
    assert is_uv_process(info("python3", ("/usr/bin/python3", "-m", "uv", "sync")))


def test_the_holder_of_a_pid_that_is_gone_says_it_exited(proc: FakeProc) -> None:
    """Kills `holder`'s `LockUser(pid=pid, alive=False)` -> `alive=True` and its `not pid or
    pid < 0` -> `and` (run 4): a lock entry's pid that no longer runs is named as exited (a
    child of it may hold the file now); one we cannot see is unknown."""
    table = ProcessTable(platform="linux", proc=str(proc.root))
    assert "exited" in table.holder(4242).describe()
    # a pid we cannot see (0: another PID namespace; -1: an OFD lock) is unknown, not exited
    assert table.holder(0) == table.holder(-1) == table.holder(None) == LockUser(pid=None)


def test_no_boot_time_means_no_start_time(proc: FakeProc) -> None:
    """Kills `_linux_info`'s `found and boot is not None` -> `or` (run 4): a `/proc/stat`
    without `btime` leaves the start time unknown, never a traceback."""
    (proc.root / "stat").write_text("cpu 0\n")
    proc.add(95, ("/opt/uv", "sync"))
    info = ProcessTable(platform="linux", proc=str(proc.root)).info(95)
    assert info is not None and info.started is None


def test_a_process_parent_and_ancestors_from_its_stat(proc: FakeProc) -> None:
    """Kills `_linux_stat`'s parent `fields[1]` -> `[2]` (run 4): the parent is the stat's
    ppid, and the ancestors (which the gate never waits for) follow it."""
    proc.add(96, ("/bin/sh",), ppid=1)
    proc.add(97, ("/opt/uv", "run", "uvsweep"), ppid=96)
    table = ProcessTable(platform="linux", proc=str(proc.root))
    assert table.parent(97) == 96 and table.ancestors(97) == {97, 96, 1}


def test_a_zombie_child_does_not_park_its_uv(proc: FakeProc) -> None:
    """Kills `_name_and_parent`'s state `chr(fields[0][0])` -> `fields[1]` (run 4): a child
    that has exited (a zombie) is no command that runs, so its uv is still active."""
    proc.add(100, ("/opt/uv", "run", "--", "sleep", "60"), exe="/opt/uv")
    proc.add(101, ("sleep", "60"), ppid=100, state="Z")
    assert judged(proc)[100][0] == "active"


def test_a_hidden_uvs_cache_is_looked_for_in_its_users_home(
    proc: FakeProc, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills `_cache_dirs`' `info.uid is not None` -> `is None` (run 4): a uv whose environment
    is hidden (another user's) is found by the lock on the cache in its user's home dir (the
    passwd entry, injected: the home is the test's)."""
    import pwd

    home = tmp_path / "home"
    (home / ".cache" / "uv").mkdir(parents=True)
    (home / ".cache" / "uv" / ".lock").touch()
    owner = (proc.root).stat().st_uid  # the fake /proc's pid dirs are the test's

    def getpwuid(uid: int) -> object:
        if uid != owner:
            raise KeyError(uid)
        return pwd.struct_passwd(("me", "x", uid, uid, "", str(home), "/bin/sh"))

    monkeypatch.setattr(pwd, "getpwuid", getpwuid)
    proc.add(23, ("./uv-0.13.6", "sync"))  # no environ: hidden
    proc.lock(23, (home / ".cache" / "uv" / ".lock").stat().st_ino)
    assert sorted(judged(proc)) == [23]


def test_a_kernel_thread_is_never_uv(proc: FakeProc) -> None:
    """Kills `_named_uv`'s `return False` for a zombie, a gone pid or a kernel thread ->
    `True` (run 4): a kernel thread (PF_KTHREAD in its stat flags) is never uv, or the gate
    would wait for it for ever."""
    proc.add(2, ("",), comm="kthreadd")
    flags = 0x00200000  # PF_KTHREAD
    (proc.root / "2" / "stat").write_text(f"2 (kthreadd) S 0 0 0 0 0 {flags}" + " 0" * 13 + "\n")
    proc.add(96, ("/opt/uv", "sync"))
    assert sorted(judged(proc)) == [96]


def test_a_file_owner_is_named_by_login_and_by_number_without_one() -> None:
    """Kills `OwnerNames`' `user_name(uid) or str(uid)` -> `and` (run 4)."""
    from uvsweep.processes import OwnerNames

    names = OwnerNames()
    assert names(0) == "root" and names(54321) == "54321"


def test_a_stat_line_too_short_to_read_is_no_process_and_no_crash(proc: FakeProc) -> None:
    """Kills `_name_and_parent`'s `except (IndexError, ValueError)` narrowed and `_named_uv`'s
    `stat is None or ...` -> `and` (run 4): a stat line cut short (bad input) or gone makes
    that pid unknown, never a traceback of the gate."""
    proc.add(80, ("/opt/uv", "sync"))
    (proc.root / "80" / "stat").write_text("80 (uv) S\n")
    proc.add(81, ("/opt/uv", "sync"))
    proc.add(82, ("/opt/uv", "sync"))
    (proc.root / "82" / "stat").unlink()  # gone between the listing and the read
    table = ProcessTable(platform="linux", proc=str(proc.root))
    assert [p.pid for p in table.uv_processes()] == [81]
    assert not table.alive(80) and table.parent(80) is None  # `_linux_stat` alike
    (proc.root / "81" / "stat").write_text("81 (uv) S x" + " y" * 20 + "\n")  # not numbers
    fresh = ProcessTable(platform="linux", proc=str(proc.root))
    assert fresh.uv_processes() == [] and not fresh.alive(81) and fresh.parent(81) is None


def test_phases_on_the_table(proc: FakeProc) -> None:
    proc.add(20, ("/opt/uv", "run", "--", "sleep", "60"), exe="/opt/uv")
    proc.add(21, ("sleep", "60"), ppid=20, exe="/usr/bin/sleep")
    proc.add(30, ("/opt/uv", "run", "--", "sleep", "60"), exe="/opt/uv")
    proc.add(31, QUERY, ppid=30, exe="/usr/bin/python3.11")
    proc.add(40, ("/opt/uv", "run", "--", "sleep", "60"), exe="/opt/uv")
    proc.add(41, ("/opt/uv", "run", "--", "sleep", "60"), ppid=40, exe="/opt/uv")  # not exec'd
    proc.add(50, ("/opt/uv", "run", "--", "sleep", "60"), exe="/opt/uv")
    proc.add(51, ("sleep", "60"), ppid=50)
    proc.lock(50, 777, mode="WRITE")
    proc.add(60, ("/opt/uv", "tool", "uvx", "ruff"), exe="/opt/uv")
    proc.add(61, ("ruff", "check"), ppid=60)
    proc.add(62, ("sleep", "1"), ppid=60, state="Z")  # a reaped-late child does not count
    found = judged(proc)
    assert found[20] == ("parked", "its command runs as pid 21 (sleep 60); uv only waits")
    assert found[30] == ("active", "it runs an interpreter query (pid 31)")
    assert found[40][0] == "active" and found[41][0] == "active"
    assert found[50] == ("active", "it holds an exclusive lock (it is changing an environment)")
    assert found[60][0] == "parked"


def test_running_uv_is_what_the_gate_waits_for(proc: FakeProc) -> None:
    proc.add(20, ("/opt/uv", "run", "--", "sleep", "60"), exe="/opt/uv")
    proc.add(21, ("sleep", "60"), ppid=20)
    proc.add(30, ("/opt/uv", "sync"))
    table = ProcessTable(platform="linux", proc=str(proc.root))
    gate = cleaner.uv_gate(table)
    assert [p.pid for p in gate.active] == [30] and [p.pid for p in gate.parked] == [20]
    assert [p.pid for p in cleaner.running_uv(ProcessTable("linux", str(proc.root)))] == [30]


def test_denied_processes_are_said_off_linux() -> None:
    table = ProcessTable(platform="darwin", proc="/nonexistent")
    table.denied.update({101, 102})
    notes = cleaner.hidden_notes(table, platform="darwin")
    assert notes and "2 processes of other users were denied" in notes[0]
    assert cleaner.hidden_notes(ProcessTable(platform="darwin"), platform="darwin") == ()


# ---- macOS and Windows: psutil, through the double that exposes exactly that OS's API ---------


def test_windows_launchers_and_denied_details(monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.psutil_double import FakeProcess, FakePsutil

    def proc(pid: int, ppid: int, cmdline: tuple[str, ...], exe: str, **kw: object) -> FakeProcess:
        name = exe.rsplit("\\", 1)[-1]
        return FakeProcess(pid, name=name, cmdline=cmdline, exe=exe, ppid=ppid, **kw)  # type: ignore[arg-type]

    double = FakePsutil("win32", [
        proc(10, 1, ("uvx.exe", "ruff"), "C:\\bin\\uvx.exe"),  # uvx.exe spawns uv.exe
        proc(11, 10, ("C:\\bin\\uv.exe", "tool", "uvx", "ruff"), "C:\\bin\\uv.exe"),
        proc(12, 11, ("ruff.exe", "check"), "C:\\tools\\ruff.exe"),
        proc(20, 1, ("python.exe", "-m", "uv", "sync"), "C:\\py\\python.exe"),  # no uv.exe yet
        proc(30, 1, ("uv-0.13.9.exe", "sync"), "C:\\bin\\uv-0.13.9.exe"),  # no lock table here
        proc(40, 1, ("svc.exe",), "C:\\Windows\\svc.exe", denied={"exe", "cmdline", "environ"}),
        proc(50, 1, ("uv.exe", "run", "x"), "C:\\bin\\uv.exe", zombie=True),
    ])  # fmt: skip
    monkeypatch.setitem(sys.modules, "psutil", double)
    table = ProcessTable(platform="win32")
    found = {p.pid: p.phase for p in table.uv_processes()}
    assert found == {10: "parked", 11: "parked", 20: "active"}
    assert table.denied == {40}
    assert "1 process of other users was denied" in cleaner.hidden_notes(table, "win32")[0]


def test_a_child_is_uvs_own_fork_by_its_command_line_or_by_its_executable(
    proc: FakeProc,
) -> None:
    """Kills `_judged`'s `child_argv == argv or (own_exe is not None and ...)` -> `and`, and
    `own_exe is not None` -> `is None` (run 5): a child of `uv run` that has uv's command line
    (its executable hidden) or uv's executable (its command line not readable yet) is uv
    itself between its fork and its exec, which may still take locks: uv is active, not
    parked behind the user's command."""
    run = ("/opt/uv", "run", "--", "sleep", "60")
    proc.add(110, run, exe="/opt/uv")
    proc.add(111, run, ppid=110)  # uv's argv, no executable to read
    proc.add(120, run, exe="/opt/uv")
    proc.add(121, ("sleep", "60"), ppid=120, exe="/opt/uv")
    (proc.root / "121" / "cmdline").write_bytes(b"")  # uv's executable, no argv yet
    proc.add(130, run, exe="/opt/uv")
    proc.add(131, ("sleep", "60"), ppid=130)  # the user's command: uv only waits
    found = judged(proc)
    assert found[110] == ("active", "it is starting a process (pid 111)")
    assert found[120] == ("active", "it is starting a process (pid 121)")
    assert found[130][0] == "parked"


def test_a_uv_whose_command_line_cannot_be_read_is_no_launcher(proc: FakeProc) -> None:
    """Kills `_judged`'s `... if argv else False` -> `True` (run 5): a uv found by its name
    whose command line cannot be read is active (it could be any command), never taken for a
    launcher (uvx) parked behind a uv child of its own."""
    proc.add(140, ("uv",), comm="uv")
    (proc.root / "140" / "cmdline").write_bytes(b"")
    proc.add(141, ("/opt/uv", "sync"), ppid=140)
    assert judged(proc)[140] == ("active", "its command line cannot be read")


def test_a_process_with_the_flags_of_roots_processes_is_no_kernel_thread(
    proc: FakeProc,
) -> None:
    """Kills `_PF_KTHREAD = 0x00200000` -> `0x001fffff` (run 5): only the kernel-thread flag
    makes a process a kernel thread; root's uv, whose stat flags carry PF_SUPERPRIV (0x100)
    and PF_RANDOMIZE (as bash's do here: 0x400100), is uv, and kthreadd (0x208040) is not."""
    for pid, name, flags in ((2, "kthreadd", 0x208040), (150, "uv", 0x400100)):
        proc.add(pid, (name,), comm=name)
        (proc.root / str(pid) / "stat").write_text(
            f"{pid} ({name}) S 0 0 0 0 0 {flags}" + " 0" * 13 + "\n"
        )
    assert sorted(judged(proc)) == [150]
