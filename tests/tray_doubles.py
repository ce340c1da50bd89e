"""Stand-ins for the tray app's icon, notifier and autostart (the `running` fixture in conftest
starts a real `TrayApp`, with its real watcher and cleaner, on them)."""

from __future__ import annotations

from typing import Any

from uvsweep.autostart import Status


class FakeIcon:
    """What the app does to its icon, recorded."""

    HAS_NOTIFICATION = True

    def __init__(self) -> None:
        self.icon: Any = None
        self.title = ""
        self.menu_updates = 0
        self.notified: list[tuple[str, str]] = []

    def update_menu(self) -> None:
        self.menu_updates += 1

    def notify(self, message: str, title: str | None = None) -> None:
        self.notified.append((title or "", message))

    def stop(self) -> None:
        pass


class FakeNotifier:
    backend = "fake"

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, bool]] = []

    def start(self) -> None:
        pass

    def stop(self, timeout: float = 1.0) -> None:
        pass

    def send(self, title: str, message: str, button: object = None) -> None:
        self.sent.append((title, message, button is not None))


class FakeAutostart:
    def __init__(self) -> None:
        self.enabled = False

    def status(self) -> Status:
        return Status(self.enabled, "/fake")

    def enable(self, command: list[str]) -> Status:
        self.enabled = True
        return self.status()

    def disable(self) -> Status:
        self.enabled = False
        return self.status()
