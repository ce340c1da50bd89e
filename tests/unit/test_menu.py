"""The tray menu, built from snapshots as data."""

from __future__ import annotations

from uvsweep.model import Label, LabelKind, LockFile, LockState, Snapshot
from uvsweep.tray.menu import MAX_FILES, Item, MenuState, build


def lock(name: str, state: LockState, age: float = 120.0, label: Label | None = None) -> LockFile:
    return LockFile(
        path=f"/tmp/{name}", name=name, state=state, mtime=1000.0 - age, size=0, uid=0,
        owner="me", holders=(), waiters=(), openers=(), reason="", blocks_uv=False, dev=1, ino=1,
    ).with_label(label)  # fmt: skip


def snap(*files: LockFile, dirs: tuple[str, ...] = ("/tmp",)) -> Snapshot:
    return Snapshot(dirs=dirs, files=files, errors=(), taken_at=1000.0, hidden_processes=0,
                    notes=())  # fmt: skip


def by_text(items: tuple[Item, ...], start: str) -> Item:
    return next(i for i in items if i.text.startswith(start))


def test_menu_with_orphans() -> None:
    files = (
        lock("uv-000000000000000a.lock", LockState.ORPHANED, 3 * 86400,
             Label(LabelKind.PROJECT, "/home/me/proj")),
        lock("uv-000000000000000b.lock", LockState.ORPHANED),
        lock("uv-000000000000000c.lock", LockState.HELD),
        lock("uv-000000000000000d.lock", LockState.FOREIGN),
    )  # fmt: skip
    items = build(snap(*files), MenuState(autostart=True), now=1000.0)
    texts = [i.text for i in items]
    assert texts[0] == "2 orphaned uv lock files (1 needs attention)"
    assert not items[0].enabled
    clean = by_text(items, "Clean now")
    assert (
        clean.text == "Clean now (2)"
        and clean.enabled
        and clean.default
        and clean.action == "clean"
    )
    listing = by_text(items, "Lock files").submenu
    assert listing is not None and len(listing) == 4
    assert listing[0].text == "orphaned \u00b7 3d \u00b7 project /home/me/proj"
    assert listing[0].action == "reveal:/tmp/uv-000000000000000a.lock"
    assert by_text(items, "Start at login").checked is True
    assert by_text(items, "Notifications").checked is True
    assert by_text(items, "Clean automatically").checked is False
    assert by_text(items, "Open temp folder").action == "open:/tmp"
    assert [i.text for i in items if i.action == "quit"] == ["Quit"]
    assert [i.action for i in items if i.action] == [
        "clean", "toggle-auto-clean", "rescan", "open:/tmp", "toggle-notifications",
        "toggle-autostart", "quit",
    ]  # fmt: skip


def test_nothing_to_clean() -> None:
    items = build(snap(), MenuState(), now=1000.0)
    assert items[0].text == "No orphaned uv lock files"
    clean = by_text(items, "Clean now")
    assert clean.text == "Clean now (0)" and not clean.enabled
    assert by_text(items, "Lock files").submenu == (
        Item("No uv lock files", enabled=False, key="no-files"),
    )
    assert not by_text(items, "Start at login").enabled  # unknown state: not a toggle to trust


def test_before_the_first_scan() -> None:
    items = build(None, MenuState(), now=0.0)
    assert items[0].text == "Scanning\u2026"
    assert not by_text(items, "Open temp folder").enabled


def test_cleaning_deferred_and_results() -> None:
    one = snap(lock("uv-000000000000000a.lock", LockState.ORPHANED))
    deferred = build(one, MenuState(deferred_pids=[42], uv_running=1,
                                    last_result="uv is running (pid 42)"), 1000.0)  # fmt: skip
    assert by_text(deferred, "Will clean when uv is idle (1)").enabled is False
    assert by_text(deferred, "Waiting for uv (1 process)")
    assert not [i for i in deferred if i.action == "clean"]
    named = build(one, MenuState(deferred_pids=[42, 43, 44], uv_running=3,
                                 uv_processes=["pid 42 (uv sync)", "pid 43 (uv run x)"]),
                  1000.0)  # fmt: skip
    line = by_text(named, "Waiting for uv: ")
    assert line.text == "Waiting for uv: pid 42 (uv sync); pid 43 (uv run x); and 1 more"
    running = build(one, MenuState(uv_running=1, uv_processes=["pid 42 (uv sync)"]), 1000.0)
    assert by_text(running, "uv is running: ").text == "uv is running: pid 42 (uv sync)"


def test_problems_open_log_and_about() -> None:
    one = snap(lock("uv-000000000000000a.lock", LockState.ORPHANED))
    items = build(one, MenuState(problems=["Tray: session bus lost; reconnecting"],
                                 about=["uvsweep 1.0", "Watching /tmp"],
                                 log_path="/home/u/.local/state/uvsweep/log/uvsweep.log"),
                  1000.0)  # fmt: skip
    problem = by_text(items, "\u26a0 Tray: session bus lost")
    assert problem.enabled is False
    assert by_text(items, "Open log").action == "open:/home/u/.local/state/uvsweep/log/uvsweep.log"
    about = by_text(items, "About uvsweep").submenu
    assert about is not None
    texts = [i.text for i in about]
    assert texts[:2] == ["uvsweep 1.0", "Watching /tmp"]
    assert [i.action for i in about if i.action] == ["homepage", "diagnostics"]
    # no log file (it could not be written): no item that would open nothing
    assert not [i for i in build(one, MenuState(), 1000.0) if i.text == "Open log"]
    busy = build(one, MenuState(cleaning=True), 1000.0)
    assert by_text(busy, "Cleaning").enabled is False


def test_many_files_are_capped_and_several_dirs_get_a_submenu() -> None:
    files = [lock(f"uv-{i:016x}.lock", LockState.ORPHANED) for i in range(MAX_FILES + 5)]
    items = build(snap(*files, dirs=("/tmp", "/var/tmp")), MenuState(), 1000.0)
    listing = by_text(items, "Lock files").submenu
    assert listing is not None and len(listing) == MAX_FILES + 1
    assert listing[-1].text.startswith("\u2026 and 5 more")
    folders = by_text(items, "Open temp folder").submenu
    assert folders is not None and [f.action for f in folders] == ["open:/tmp", "open:/var/tmp"]
