"""pystray's GTK and AppIndicator backends, made to survive a missing notification service.

Both create a D-Bus proxy for `org.freedesktop.Notifications` as their loop starts, and when the
session bus cannot provide one (no notification server, and activation fails) the error ends the
tray before it shows. This subclass carries on without the tray's own notifications: uvsweep's
notifier has its own, and falls back to the log.
"""

from __future__ import annotations

import logging

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

log = logging.getLogger("uvsweep.tray")


class _NoNotifier:
    """Stands in for pystray's notifier where there is none (its `_finalize` hides it)."""

    def hide(self) -> None:
        pass

    def notify(self, *_args: Any) -> None:
        pass


def icon_class(base: type) -> type:
    """`base` (a pystray GTK-based Icon class) with a notifier that may be missing."""

    class NotifierOptionalIcon(base):  # type: ignore[misc]
        def _initialize(self) -> None:
            try:
                super()._initialize()
            except Exception as err:  # noqa: BLE001 - GLib raises its own error types
                log.warning("the tray's own notifications are unavailable: %s", err)
                self.HAS_NOTIFICATION = False
                self._notifier = _NoNotifier()
                self._mark_ready()

    return NotifierOptionalIcon
