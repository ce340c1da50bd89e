"""The per-OS psutil double is as strict as psutil, and the process table works against it."""

from __future__ import annotations

import sys

import psutil
import pytest

from tests.psutil_double import FakeProcess, FakePsutil, as_dict_attributes, process_attributes
from uvsweep.processes import ProcessTable


def test_the_reader_agrees_with_the_installed_psutil_on_this_os() -> None:
    assert sys.platform.startswith("linux")
    assert as_dict_attributes("linux") == psutil._as_dict_attrnames  # type: ignore[attr-defined]
    public = {n for n in dir(psutil.Process) if not n.startswith("_")}
    assert process_attributes("linux") == public


def test_each_os_gets_exactly_its_own_api() -> None:
    win, mac = process_attributes("win32"), process_attributes("darwin")
    assert "uids" not in win and "gids" not in win and "num_fds" not in win
    assert "num_handles" in win and "uids" in mac and "num_handles" not in mac
    assert "ionice" in win and "ionice" not in mac
    double = FakePsutil("win32", [FakeProcess(7)])
    proc = double.Process(7)
    assert not hasattr(proc, "uids")
    with pytest.raises(ValueError, match="invalid attr name 'uids'"):
        proc.as_dict(["name", "uids"])
    assert double.Process(7).as_dict(["name"]) == {"name": "uv"}
    with pytest.raises(double.NoSuchProcess):
        double.Process(8)


def test_as_dict_puts_ad_value_for_denied_attributes() -> None:
    double = FakePsutil("darwin", [FakeProcess(7, denied={"cwd"})])
    assert double.Process(7).as_dict(["cwd", "uids"], ad_value="?") == {
        "cwd": "?",
        "uids": (501, 501, 501),
    }


@pytest.mark.parametrize("platform", ["win32", "darwin"])
def test_the_process_table_works_on_each_os(platform: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # Before the fix, Windows asked as_dict for `uids`: ValueError on every scan and clean.
    double = FakePsutil(platform, [
        FakeProcess(40, name="uv.exe", username="HOST\\me", ppid=4),
        FakeProcess(41, name="python", denied={"cmdline", "cwd", "username"}),
        FakeProcess(42, name="uv", zombie=True),
    ])  # fmt: skip
    monkeypatch.setitem(sys.modules, "psutil", double)
    table = ProcessTable(platform=platform)
    info = table.info(40)
    assert info is not None and info.name == "uv.exe" and info.user == "HOST\\me"
    assert info.uid == (None if platform == "win32" else 501)
    hidden = table.info(41)
    assert hidden is not None and hidden.user is None and hidden.cmdline is None
    assert table.parent(40) == 4
    assert [p.pid for p in table.uv_processes()] == [40]  # the zombie does not count
    assert table.holder(40).describe().startswith("40 uv.exe")


@pytest.mark.parametrize("platform", ["win32", "darwin"])
def test_a_process_that_is_gone_is_not_alive(
    platform: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills `alive`'s `except psutil.Error: return False` -> `True` (run 4): off Linux, a pid
    psutil no longer finds is not alive (nor is a zombie)."""
    double = FakePsutil(platform, [FakeProcess(40, name="uv"), FakeProcess(42, zombie=True)])
    monkeypatch.setitem(sys.modules, "psutil", double)
    table = ProcessTable(platform=platform)
    assert table.alive(40) and not table.alive(42) and not table.alive(43)


@pytest.mark.parametrize("platform", ["win32", "darwin"])
def test_a_process_environment_off_linux_or_none_when_denied(
    platform: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills `environ`'s `dict(found) if found is not None else None` inverted (run 4)."""
    double = FakePsutil(platform, [
        FakeProcess(40, environ={"UV_CACHE_DIR": "/c"}),
        FakeProcess(41, denied={"environ"}),
    ])  # fmt: skip
    monkeypatch.setitem(sys.modules, "psutil", double)
    table = ProcessTable(platform=platform)
    assert table.environ(40) == {"UV_CACHE_DIR": "/c"} and table.environ(41) is None


@pytest.mark.parametrize("platform", ["win32", "darwin"])
def test_a_process_that_is_gone_has_no_parent_children_executable_or_environment(
    platform: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Kills `parent`'s, `children`'s and `_psutil_call`'s `except psutil.Error` narrowed
    (run 5): off Linux, a pid that has exited when the table asks about it (psutil's
    NoSuchProcess) has no parent, no children, no executable and no environment, and is no
    traceback of the gate."""
    double = FakePsutil(platform, [
        FakeProcess(40, name="uv", ppid=1), FakeProcess(41, name="sleep", ppid=40),
    ])  # fmt: skip
    monkeypatch.setitem(sys.modules, "psutil", double)
    table = ProcessTable(platform=platform)
    assert table.parent(41) == 40 and table.children(40) == [41] and table.exe(41)
    assert table.parent(43) is None and table.children(43) == []
    assert table.exe(43) is None and table.environ(43) is None
