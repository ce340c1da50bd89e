"""The tray menu as data, built by one pure function from the Snapshot and the app's state.

Each backend turns these items into its own menu; actions are plain strings the app dispatches
(`clean`, `reveal:<path>`...), so what the menu says and does is tested without any GUI.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from uvsweep.model import LockState, Record, Snapshot, format_age
from uvsweep.tray.art import tooltip

#: How many files the submenu lists before it says "and N more".
MAX_FILES = 40


class Item(Record):
    """One menu entry; a separator has no text."""

    __slots__ = ("action", "checked", "default", "enabled", "key", "submenu", "text")
    text: str
    action: str | None  # what the app does when it is chosen
    enabled: bool
    checked: bool | None  # None: not a toggle
    default: bool  # the item a left click on the icon runs
    submenu: tuple[Item, ...] | None
    key: str  # what the entry is, whatever it says now (a tray's stable id for it)

    def __init__(
        self,
        text: str,
        action: str | None = None,
        *,
        enabled: bool = True,
        checked: bool | None = None,
        default: bool = False,
        submenu: Sequence[Item] | None = None,
        key: str = "",
    ) -> None:
        self._init(
            text=text, action=action, enabled=enabled, checked=checked, default=default,
            submenu=tuple(submenu) if submenu is not None else None,
            key=key or action or re.sub(r"\d+", "#", text) or "--",
        )  # fmt: skip

    @property
    def separator(self) -> bool:
        """Whether this is a separator line."""
        return not self.text


SEPARATOR = Item("", enabled=False)


class MenuState:
    """What the menu shows besides the snapshot."""

    def __init__(
        self,
        *,
        auto_clean: bool = False,
        notifications: bool = True,
        autostart: bool | None = None,
        cleaning: bool = False,
        deferred_pids: Sequence[int] = (),
        last_result: str = "",
        uv_running: int = 0,
        uv_processes: Sequence[str] = (),
        problems: Sequence[str] = (),
        about: Sequence[str] = (),
        log_path: str = "",
    ) -> None:
        self.auto_clean = auto_clean
        self.notifications = notifications
        self.autostart = autostart  # None: the OS state could not be read
        self.cleaning = cleaning  # a cleanup is running now
        self.deferred_pids = tuple(deferred_pids)  # a cleanup waits for these uv processes
        self.last_result = last_result  # "Removed 3, kept 1 (held)"
        self.uv_running = uv_running
        self.uv_processes = tuple(uv_processes)  # "pid 4013: uv sync", one per uv process
        self.problems = tuple(problems)  # what is wrong: the bus, a dir, polling instead of events
        self.about = tuple(about)  # the About submenu's lines (version, what is watched)
        self.log_path = log_path  # the log file, for "Open log"


def _file_line(item_state: str, age: str, guards: str) -> str:
    return f"{item_state} \u00b7 {age} \u00b7 {guards}"


def build(snapshot: Snapshot | None, state: MenuState, now: float) -> tuple[Item, ...]:
    """The whole menu, top to bottom."""
    items: list[Item] = []
    if snapshot is None:
        items.append(Item("Scanning\u2026", enabled=False, key="summary"))
        orphaned = 0
    else:
        orphaned = snapshot.count(LockState.ORPHANED)
        attention = snapshot.count(LockState.FOREIGN) + snapshot.count(LockState.SUSPICIOUS)
        items.append(Item(tooltip(orphaned, attention), enabled=False, key="summary"))
        if state.uv_running:
            items.append(Item(_uv_line(state), enabled=False, key="uv-running"))
    for problem in state.problems:
        items.append(Item(f"\u26a0 {problem}", enabled=False, key=f"problem:{problem}"))
    if snapshot is not None:
        if state.last_result:
            items.append(Item(state.last_result, enabled=False, key="last-result"))
        items.append(Item(f"Lock files ({len(snapshot.files)})", submenu=_files(snapshot, now),
                          key="files"))  # fmt: skip
    items.append(SEPARATOR)
    if state.cleaning:
        items.append(Item("Cleaning\u2026", enabled=False, key="clean"))
    elif state.deferred_pids:
        items.append(Item(f"Will clean when uv is idle ({orphaned})", enabled=False, key="clean"))
    else:
        items.append(Item(f"Clean now ({orphaned})", "clean", enabled=orphaned > 0, default=True))
    items.append(Item("Clean automatically when uv is idle", "toggle-auto-clean",
                      checked=state.auto_clean))  # fmt: skip
    items.append(Item("Rescan now", "rescan"))
    dirs = snapshot.dirs if snapshot is not None else ()
    if len(dirs) > 1:
        items.append(Item("Open temp folder", submenu=[Item(d, f"open:{d}") for d in dirs],
                          key="open"))  # fmt: skip
    else:
        items.append(Item("Open temp folder", f"open:{dirs[0]}" if dirs else None,
                          enabled=bool(dirs), key="open"))  # fmt: skip
    items.append(SEPARATOR)
    items.append(Item("Notifications", "toggle-notifications", checked=state.notifications))
    items.append(Item("Start at login", "toggle-autostart", checked=bool(state.autostart),
                      enabled=state.autostart is not None))  # fmt: skip
    if state.log_path:
        items.append(Item("Open log", f"open:{state.log_path}", key="open-log"))
    about = [Item(line, enabled=False, key=f"about:{n}") for n, line in enumerate(state.about)]
    about += [SEPARATOR, Item("Homepage", "homepage"),
              Item("Diagnostics report (uvsweep doctor)", "diagnostics")]  # fmt: skip
    items.append(Item("About uvsweep", submenu=about, key="about"))
    items.append(SEPARATOR)
    items.append(Item("Quit", "quit"))
    return tuple(items)


def _uv_line(state: MenuState) -> str:
    """`Waiting for uv: pid 4013 (uv sync)` while a cleanup waits, else `uv is running: ...`;
    at most two processes by name, then how many more."""
    head = "Waiting for uv" if state.deferred_pids else "uv is running"
    shown = list(state.uv_processes[:2])
    if not shown:
        noun = "process" if state.uv_running == 1 else "processes"
        return f"{head} ({state.uv_running} {noun})"
    rest = state.uv_running - len(shown)
    return f"{head}: " + "; ".join(shown) + (f"; and {rest} more" if rest > 0 else "")


def _files(snapshot: Snapshot, now: float) -> list[Item]:
    if not snapshot.files:
        return [Item("No uv lock files", enabled=False, key="no-files")]
    out = []
    for item in snapshot.files[:MAX_FILES]:
        guards = f"{item.label.kind.value} {item.label.path}" if item.label else "unknown"
        line = _file_line(item.state.value, format_age(now - item.mtime), guards)
        out.append(Item(line, f"reveal:{item.path}"))
    if len(snapshot.files) > MAX_FILES:
        rest = len(snapshot.files) - MAX_FILES
        out.append(Item(f"\u2026 and {rest} more (uvsweep scan lists them all)", enabled=False,
                        key="more"))  # fmt: skip
    return out
