"""pystray's xorg (XEmbed) backend, made safe to update from other threads.

pystray runs an update asked for by another thread by sending a client message to its own window
over its one X connection, while the main loop uses that same connection to wait for replies.
python-xlib does not survive that: the main thread can wait for a reply for ever (seen here with a
watcher updating the badge while the tray redrew the icon). This subclass sends those messages
over a second connection of its own, so only the main loop ever touches the first, and lets one
cross-thread call through at a time (pystray has a single queue for their results).
"""

from __future__ import annotations

import threading

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

#: The methods pystray's xorg backend runs on its main loop when called from another thread.
MARSHALLED = ("_show", "_hide", "_update_icon", "_update_title", "_stop")


def icon_class() -> type:
    """The thread-safe xorg Icon class (imports Xlib and pystray's xorg backend)."""
    import Xlib.display  # noqa: PLC0415
    import Xlib.X  # noqa: PLC0415
    from pystray import _xorg  # noqa: PLC0415

    class ThreadSafeXorgIcon(_xorg.Icon):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._sender: Any = None
            self._sender_lock = threading.Lock()
            self._one_call = threading.Lock()
            for name in MARSHALLED:
                atom = self._display.intern_atom(f"_PYSTRAY_{name.upper()}")
                setattr(self, name, self._marshal(getattr(self, name), atom))

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

        def close_sender(self) -> None:
            with self._sender_lock:
                if self._sender is not None:
                    self._sender.close()
                    self._sender = None

    return ThreadSafeXorgIcon
