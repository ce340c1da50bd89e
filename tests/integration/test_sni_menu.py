"""A host that caches the dbusmenu by id, as panels do, always equals a fresh GetLayout: random
sequences of snapshots and tray states through the real menu builder and the SNI backend."""

from __future__ import annotations

import time
from typing import Any

import pytest

pytest.importorskip("dbus_fast", reason="dbus-fast comes with desktop-notifier on Linux only")

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fake_sni_host import Host
from tests.helpers import eventually

pytestmark = [pytest.mark.gui, pytest.mark.integration]

STATES = ("orphaned", "held", "waiting", "foreign", "suspicious")


@st.composite
def snapshots(draw: Any) -> Any:
    from uvsweep.model import LockFile, LockState, Snapshot

    dirs = draw(st.sampled_from([("/tmp",), ("/tmp", "/var/tmp")]))
    names = draw(st.sets(st.integers(0, 50), max_size=44))
    files = tuple(
        LockFile(f"{dirs[0]}/uv-{n:016x}.lock", f"uv-{n:016x}.lock",
                 LockState(draw(st.sampled_from(STATES))), 1000.0 + n, 0, 0, "me")
        for n in sorted(names)
    )  # fmt: skip
    if draw(st.booleans()):
        return None  # still scanning
    return Snapshot(dirs=dirs, files=files, errors=(), taken_at=2000.0, hidden_processes=0)


@st.composite
def tray_states(draw: Any) -> Any:
    from uvsweep.tray.menu import MenuState

    return MenuState(
        auto_clean=draw(st.booleans()), notifications=draw(st.booleans()),
        autostart=draw(st.sampled_from([None, True, False])), cleaning=draw(st.booleans()),
        deferred_pids=draw(st.sampled_from([(), (42,)])),
        last_result=draw(st.sampled_from(["", "Removed 3 uv lock files", "Removed 1"])),
        uv_running=draw(st.integers(0, 2)),
    )  # fmt: skip


def labels(items: Any) -> list[str]:
    out = []
    for item in items:
        if item.separator:
            continue
        out.append(item.text.replace("_", "__"))
        out += labels(item.submenu or ())
    return out


def test_a_caching_host_equals_a_fresh_layout_after_every_change(
    session_bus: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import pystray
    from PIL import Image

    from uvsweep.tray import sni
    from uvsweep.tray.app import to_pystray
    from uvsweep.tray.menu import MenuState, build

    monkeypatch.setattr(sni, "MIN_INTERVAL", 0.0)
    current: list[Any] = [build(None, MenuState(), 2000.0)]
    menu = pystray.Menu(lambda: to_pystray(current[0], lambda _action: None))
    icon = sni.icon_class()("uvsweep", icon=Image.new("RGBA", (32, 32)), title="t", menu=menu,
                            bus_address=session_bus)  # fmt: skip
    host = Host(session_bus)
    icon.run_detached()
    try:
        service = eventually(lambda: host.watcher.items and host.watcher.items[0])
        cache = host.cache_menu(service)

        def fresh_labels() -> list[str]:
            fresh = host.fresh_menu(service)
            out: list[str] = []

            def walk(ident: int) -> None:
                for child in fresh[ident][1]:
                    if "label" in fresh[child][0]:
                        out.append(fresh[child][0]["label"])
                    walk(child)

            walk(0)
            return out

        @settings(
            max_examples=25,
            deadline=None,
            derandomize=True,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
        )
        @given(st.lists(st.tuples(snapshots(), tray_states()), min_size=1, max_size=4))
        def rounds(steps: list[Any]) -> None:  # fmt: skip
            for snapshot, state in steps:
                current[0] = build(snapshot, state, 2000.0)
                icon.update_menu()
                want = labels(current[0])
                eventually(lambda want=want: fresh_labels() == want)  # the item has the new menu...
                # ...and the host that only listened to the signals has it too
                eventually(lambda: cache.settled() and cache.view() == host.fresh_menu(service))
                assert not cache.errors, cache.errors

        started = time.monotonic()
        rounds()
        assert cache.signals > 0
        print(f"{cache.signals} signals in {time.monotonic() - started:.1f} s")
    finally:
        icon.stop()
        host.stop()
