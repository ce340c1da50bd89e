"""pystray's xorg (XEmbed) backend: safe to update from other threads, clickable, and docking
into a tray that starts after it.

- pystray 0.19.5's window never asks for button presses, so a left click did nothing: it now
  runs the menu's default item (Clean now), as on the other backends.
- Without a tray host at start it never docked: it now listens for the MANAGER message a tray
  host broadcasts when it takes the selection, and docks then (also after a host restarts).
- It asked to be docked again with every icon update, and trayer then laid the icon out anew
  (seen collapsing it to 1x22 px after a click): it asks only when it is not docked.
- XEmbed windows have no alpha, and pystray pasted the icon on black: the window's background is
  now the tray's (ParentRelative), and the icon is composited over it.

pystray runs an update asked for by another thread by sending a client message to its own window
over its one X connection, while the main loop uses that same connection to wait for replies.
python-xlib does not survive that: the main thread can wait for a reply for ever (seen here with a
watcher updating the badge while the tray redrew the icon). This subclass sends those messages
over a second connection of its own, so only the main loop ever touches the first, and lets one
cross-thread call through at a time (pystray has a single queue for their results).
"""
# ruff: noqa: PLC0415 - imports inside functions: only the path that needs a module pays for it

from __future__ import annotations

import logging
import threading

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

log = logging.getLogger("uvsweep.tray.xorg")

#: Behind the icon where the tray's background cannot be read back.
FALLBACK_BACKGROUND = (221, 221, 221)

#: The methods pystray's xorg backend runs on its main loop when called from another thread.
MARSHALLED = ("_show", "_hide", "_update_icon", "_update_title", "_stop")


class _NotDockedYet(logging.Filter):
    """pystray logs a traceback when there is no tray to dock into; that is not an error here
    (the icon docks as soon as a tray starts), so it becomes one calm line at INFO."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage() == "Failed to dock icon":
            record.msg, record.args = "no system tray to dock into yet; waiting for one", ()
            record.exc_info = None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


def icon_class() -> type:
    """The thread-safe xorg Icon class (imports Xlib and pystray's xorg backend)."""
    import Xlib.display
    import Xlib.X
    from pystray import _xorg

    pystray_log = logging.getLogger("pystray._base")  # where pystray's Icon logs
    if not any(isinstance(f, _NotDockedYet) for f in pystray_log.filters):
        pystray_log.addFilter(_NotDockedYet())

    class ThreadSafeXorgIcon(_xorg.Icon):  # type: ignore[misc]
        _icon_data: Any  # pystray's cache of the image drawn, at the window's size

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._sender: Any = None
            self._sender_lock = threading.Lock()
            self._one_call = threading.Lock()
            for name in MARSHALLED:
                atom = self._display.intern_atom(f"_PYSTRAY_{name.upper()}")
                setattr(self, name, self._marshal(getattr(self, name), atom))
            self._listen_for_tray_hosts()

        def _marshal(self, in_loop: Callable[[], None], atom: int) -> Callable[[], None]:
            def call() -> None:
                loop = getattr(self, "_thread", None)
                if loop is None or threading.current_thread().ident == loop.ident:
                    in_loop()  # on the main loop already (or before it runs): pystray's own path
                    return
                with self._one_call:
                    with self._sender_lock:
                        if self._sender is None:
                            self._sender = Xlib.display.Display()
                        window = self._sender.create_resource_object("window", self._window.id)
                        self._sender.send_event(
                            window,
                            Xlib.display.event.ClientMessage(
                                type=Xlib.X.ClientMessage, client_type=atom, window=self._window.id,
                                data=(32, (Xlib.X.CurrentTime, 0, 0, 0, 0)),
                            ),
                            event_mask=Xlib.X.NoEventMask,
                        )  # fmt: skip
                        self._sender.flush()
                    result = self._queue.get()
                    if result is not True:
                        raise result[1]

            return call

        def _create_window(self) -> Any:
            window = super()._create_window()
            window.change_attributes(
                event_mask=Xlib.X.ExposureMask | Xlib.X.StructureNotifyMask
                | Xlib.X.ButtonPressMask,
                # the tray's own background shows through where the icon is transparent
                background_pixmap=Xlib.X.ParentRelative,
            )  # fmt: skip
            return window

        def _show(self) -> None:
            # pystray asks to be docked on every show and icon update; a tray that is asked
            # again re-embeds the window, and trayer then lays it out anew (seen collapsing it
            # to 1x22 px after a click): dock only when not docked
            if self._systray_manager is None:
                super()._show()
            else:
                self._draw()

        def _update_icon(self) -> None:
            if self._systray_manager is None:
                super()._update_icon()
                return
            self._icon_data = None  # redrawn from the new image, at the window's size
            self._draw()
            self._icon_valid = True

        def _assert_icon_data(self, width: int, height: int) -> None:
            """The icon composited over what the tray shows behind it: XEmbed windows have no
            alpha, and pystray pasted the RGBA image on black."""
            if self._icon_data and self._icon_data.size == (width, height):
                return
            from PIL import Image

            render = getattr(self, "render_at", None)
            if render is not None and width == height:
                image = render(width).convert("RGBA")
            else:
                image = self._icon.convert("RGBA").resize((width, height),
                                                           Image.Resampling.LANCZOS)  # fmt: skip
            back = self._background(width, height)
            back.paste(image, (0, 0), image)
            back.tostring = back.tobytes
            self._icon_data = back

        def _background(self, width: int, height: int) -> Any:
            """What the tray draws behind the window (its ParentRelative background), read
            back from the server; a light grey where it cannot be read."""
            from PIL import Image

            try:
                self._window.clear_area(0, 0, width, height)
                raw = self._window.get_image(0, 0, width, height, Xlib.X.ZPixmap, 0xFFFFFFFF)
                if len(raw.data) >= width * height * 4:
                    return Image.frombytes("RGB", (width, height), bytes(raw.data), "raw",
                                           "BGRX")  # fmt: skip
            except Exception:
                log.debug("cannot read the tray's background", exc_info=True)
            return Image.new("RGB", (width, height), FALLBACK_BACKGROUND)

        def _listen_for_tray_hosts(self) -> None:
            """Hear a tray host that starts (or restarts) later: it says MANAGER on the root."""
            root = self._display.screen().root
            root.change_attributes(event_mask=Xlib.X.StructureNotifyMask)
            self._display.flush()
            manager = self._display.intern_atom("MANAGER")
            on_message = self._message_handlers.get(Xlib.X.ClientMessage, lambda _e: None)

            def on_client_message(event: Any) -> None:
                if event.client_type == manager and event.data[1][1] == self._net_system_tray_sx:
                    if self._systray_manager is None and self.visible:
                        self._dock_window()
                    return
                on_message(event)

            self._message_handlers[Xlib.X.ClientMessage] = on_client_message

        def close_sender(self) -> None:
            with self._sender_lock:
                if self._sender is not None:
                    self._sender.close()
                    self._sender = None

    return ThreadSafeXorgIcon
