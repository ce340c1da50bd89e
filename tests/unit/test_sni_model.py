"""The dbusmenu model of the SNI backend: ids that stay with their entry, and what a host is
told when the menu changes (pure: no bus)."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("dbus_fast", reason="dbus-fast comes with desktop-notifier on Linux only")


@pytest.fixture(autouse=True)
def _dummy_pystray(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYSTRAY_BACKEND", "dummy")


def menu(*entries: Any) -> Any:
    import pystray

    return pystray.Menu(*entries)


def item(text: str, key: str = "", checked: bool | None = None, enabled: bool = True,
         submenu: Any = None) -> Any:  # fmt: skip
    import pystray

    action = submenu if submenu is not None else (lambda: None)
    checker = None if checked is None else (lambda _i: checked)
    entry = pystray.MenuItem(text, action, checked=checker, enabled=enabled)
    if key:
        entry.key = key
    return entry


def ids_by_label(model: Any) -> dict[str, int]:
    return {p["label"][1]: i for i, p in model.props.items() if "label" in p}


def test_ids_follow_the_entry_not_its_position() -> None:
    from uvsweep.tray.sni import MenuModel

    model = MenuModel()
    model.update(menu(item("Clean now (4)", "clean"), item("Quit", "quit")))
    before, revision = ids_by_label(model), model.revision
    # a line comes in above: every entry keeps its id, the host is told the layout changed
    changes = model.update(menu(item("uv is running", "uv"), item("Clean now (5)", "clean"),
                                item("Quit", "quit")))  # fmt: skip
    after = ids_by_label(model)
    assert after["Clean now (5)"] == before["Clean now (4)"]
    assert after["Quit"] == before["Quit"]
    assert changes.layout_parent == 0
    assert model.revision == revision + 1
    # the label change of an entry the host reads again with the layout is not sent twice
    assert changes.updated == []


def test_text_without_a_key_keeps_its_id_when_only_its_numbers_change() -> None:
    from uvsweep.tray.sni import MenuModel

    model = MenuModel()
    model.update(menu(item("Lock files (3)"), item("Quit")))
    first = ids_by_label(model)["Lock files (3)"]
    changes = model.update(menu(item("Lock files (4)"), item("Quit")))
    assert ids_by_label(model)["Lock files (4)"] == first
    assert changes.layout_parent is None  # nothing came, went or moved
    assert changes.updated == [(first, {"label": ("s", "Lock files (4)")})]  # only what changed


def test_properties_that_go_away_are_announced_as_removed() -> None:
    from uvsweep.tray.sni import MenuModel

    model = MenuModel()
    model.update(menu(item("Start at login", "autostart", checked=True), item("Quit", "quit")))
    ident = ids_by_label(model)["Start at login"]
    changes = model.update(menu(item("Start at login", "autostart"), item("Quit", "quit")))
    assert changes.layout_parent is None
    assert changes.removed == [(ident, ["toggle-state", "toggle-type"])]
    assert "toggle-type" not in model.props[ident]


def test_an_id_is_never_given_to_another_entry() -> None:
    from uvsweep.tray.sni import MenuModel

    model = MenuModel()
    model.update(menu(item("A", "a"), item("B", "b")))
    gone = ids_by_label(model)["B"]
    model.update(menu(item("A", "a")))
    model.update(menu(item("A", "a"), item("C", "c")))
    assert ids_by_label(model)["C"] != gone


def test_a_change_inside_a_submenu_relayouts_only_that_submenu() -> None:
    from uvsweep.tray.sni import MenuModel

    model = MenuModel()
    model.update(menu(item("Files (1)", "files", submenu=menu(item("one", "1"))),
                      item("Quit", "quit")))  # fmt: skip
    files = ids_by_label(model)["Files (1)"]
    changes = model.update(menu(item("Files (2)", "files", submenu=menu(item("one", "1"),
                                                                        item("two", "2"))),
                                item("Quit", "quit")))  # fmt: skip
    assert changes.layout_parent == files
    assert changes.updated == []  # its own label comes with the subtree the host reads again
    assert model.layout(files, -1, [])[1]["label"].value == "Files (2)"


def test_duplicate_keys_among_siblings_get_distinct_ids() -> None:
    from uvsweep.tray.sni import MenuModel

    model = MenuModel()
    model.update(menu(item("x", "same"), item("y", "same")))
    assert len(model.children[0]) == 2 and len(set(model.children[0])) == 2
