"""The macOS menu-bar icon, sharp on Retina screens.

pystray's AppKit backend resizes the icon to the status bar's thickness *in pixels* (22) and hands
AppKit a 22x22 px image, which a Retina screen draws at 2x: blurry. Here the 44 px image goes to
AppKit whole, sized to the thickness in points, so each point gets two pixels.

AppKit and Foundation are passed in (pystray's own imports of them on macOS), so this is tested
on any OS with fakes.
"""
# ruff: noqa: PLC0415 - imports inside functions: only the path that needs a module pays for it

from __future__ import annotations

import io

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


def set_retina_image(icon: Any, appkit: Any, foundation: Any) -> None:
    """pystray's `_assert_image`, keeping every pixel: the image's size is set in points."""
    thickness = float(icon._status_bar.thickness())
    source = icon._icon
    cached = getattr(icon, "_uvsweep_image_key", None)
    key = (id(source), thickness)
    if getattr(icon, "_icon_image", None) is not None and cached == key:
        return
    data = io.BytesIO()
    source.save(data, "png")
    image = appkit.NSImage.alloc().initWithData_(foundation.NSData(data.getvalue()))
    image.setSize_((thickness, thickness))  # points: a 44 px image is drawn at 2x
    icon._icon_image = image
    icon._uvsweep_image_key = key
    icon._status_item.button().setImage_(image)


def icon_class(base: type) -> type:
    """pystray's macOS `Icon` with a Retina-sharp image (`base` is `pystray._darwin.Icon`)."""
    import sys

    module = sys.modules[base.__module__]

    class RetinaIcon(base):  # type: ignore[misc]
        def _assert_image(self) -> None:
            set_retina_image(self, module.AppKit, module.Foundation)

    RetinaIcon.__module__ = base.__module__  # what the tray checks to pick the UI marshaller
    return RetinaIcon
