"""The macOS tray's parts on Linux: AppKit faked, as strict as it is about threads and sizes."""

from __future__ import annotations

import sys
import threading
import types
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from uvsweep.settings import Settings
from uvsweep.tray import macos
from uvsweep.tray.app import TrayApp, ui_marshaller


class MainThreadOnly:
    """A pystray macOS icon: AppKit may only be touched from the main thread."""

    def __init__(self) -> None:
        self.touched_from: list[str] = []

    def __setattr__(self, name: str, value: Any) -> None:
        if name in ("visible", "icon", "title", "needs_attention"):
            self.touched_from.append(threading.current_thread().name)
        object.__setattr__(self, name, value)

    def update_menu(self) -> None:
        self.touched_from.append(threading.current_thread().name)

    def stop(self) -> None:
        pass


MainThreadOnly.__module__ = "pystray._darwin"


class FakeNotifier:
    backend = "fake"

    def start(self) -> None:
        pass

    def stop(self, timeout: float = 1.0) -> None:
        pass

    def send(self, *args: Any, **kwargs: Any) -> None:
        pass


def test_the_icon_is_shown_from_the_main_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 8: pystray runs setup on its own thread; `visible = True` there is AppKit off the
    main thread."""
    queued: list[Any] = []
    helper = types.ModuleType("PyObjCTools.AppHelper")
    helper.callAfter = queued.append  # type: ignore[attr-defined]
    package = types.ModuleType("PyObjCTools")
    package.AppHelper = helper  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "PyObjCTools", package)
    monkeypatch.setitem(sys.modules, "PyObjCTools.AppHelper", helper)
    app = TrayApp([str(tmp_path)], Settings(), notifier=FakeNotifier())  # type: ignore[arg-type]
    icon = MainThreadOnly()
    app.icon = icon
    app._ui_call = ui_marshaller(icon)
    setup = threading.Thread(target=app._setup, args=(icon,), name="pystray-setup")
    setup.start()
    setup.join()
    assert icon.touched_from == [], "the setup thread touched AppKit"
    for fn in queued:  # the main run loop runs what was queued
        fn()
    assert "visible" in icon.__dict__ and icon.__dict__["visible"] is True
    assert set(icon.touched_from) == {threading.main_thread().name}


class FakeNSImage:
    def __init__(self) -> None:
        self.data = b""
        self.size: tuple[float, float] | None = None

    @classmethod
    def alloc(cls) -> FakeNSImage:
        return cls()

    def initWithData_(self, data: bytes) -> FakeNSImage:
        self.data = data
        return self

    def setSize_(self, size: tuple[float, float]) -> None:
        self.size = size


def test_the_menu_bar_icon_keeps_its_retina_pixels() -> None:
    """Finding 8: pystray shrank the 44 px icon to 22 px for a 22 pt menu bar: blurry at 2x."""
    shown: list[FakeNSImage] = []
    button = types.SimpleNamespace(setImage_=shown.append)
    icon = types.SimpleNamespace(
        _status_bar=types.SimpleNamespace(thickness=lambda: 22.0),
        _status_item=types.SimpleNamespace(button=lambda: button),
        _icon=Image.new("RGBA", (44, 44), (255, 0, 0, 255)),
        _icon_image=None,
    )
    appkit = types.SimpleNamespace(NSImage=FakeNSImage)
    foundation = types.SimpleNamespace(NSData=bytes)
    macos.set_retina_image(icon, appkit, foundation)
    assert len(shown) == 1 and shown[0].size == (22.0, 22.0)  # points
    import io

    assert Image.open(io.BytesIO(shown[0].data)).size == (44, 44)  # pixels: two per point
    macos.set_retina_image(icon, appkit, foundation)
    assert len(shown) == 1  # cached while the image and the bar stay the same


def test_the_retina_class_keeps_the_backend_module() -> None:
    module = types.ModuleType("fake_darwin_backend")
    module.AppKit = types.SimpleNamespace(NSImage=FakeNSImage)  # type: ignore[attr-defined]
    module.Foundation = types.SimpleNamespace(NSData=bytes)  # type: ignore[attr-defined]
    sys.modules["fake_darwin_backend"] = module
    try:
        base = type("Icon", (), {"__module__": "fake_darwin_backend"})
        retina = macos.icon_class(base)
        assert retina.__module__ == "fake_darwin_backend" and issubclass(retina, base)
    finally:
        del sys.modules["fake_darwin_backend"]
