"""A notification server of our own on a private session bus, to press a notification's button
as a person would (dunst can only do that through its dmenu context menu).

No `from __future__ import annotations` here: dbus-fast reads the D-Bus signatures from the
annotations at run time.
"""

import asyncio
import threading

from dbus_fast.aio import MessageBus
from dbus_fast.service import ServiceInterface, method, signal


class FakeNotifications(ServiceInterface):
    """org.freedesktop.Notifications: records what it is asked to show."""

    def __init__(self):
        super().__init__("org.freedesktop.Notifications")
        self.shown = []  # (id, summary, body, actions)

    @method()
    def GetCapabilities(self) -> "as":
        return ["actions", "body"]

    @method()
    def Notify(
        self,
        app_name: "s",
        replaces_id: "u",
        app_icon: "s",
        summary: "s",
        body: "s",
        actions: "as",
        hints: "a{sv}",
        expire_timeout: "i",
    ) -> "u":
        self.shown.append((len(self.shown) + 1, summary, body, list(actions)))
        return len(self.shown)

    @method()
    def CloseNotification(self, ident: "u"):
        pass

    @method()
    def GetServerInformation(self) -> "ssss":
        return ["fake", "uvsweep tests", "1.0", "1.2"]

    @signal()
    def ActionInvoked(self, ident, key) -> "us":
        return [ident, key]

    @signal()
    def NotificationClosed(self, ident, reason) -> "uu":
        return [ident, reason]


class Server:
    """Runs FakeNotifications on the bus at `address`, in a thread of its own."""

    def __init__(self, address):
        self.service = FakeNotifications()
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(address,), daemon=True)
        self.thread.start()
        assert self.ready.wait(10), "the fake notification server did not start"

    def _run(self, address):
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start(address))
        self.loop.run_forever()

    async def _start(self, address):
        self.bus = await MessageBus(bus_address=address).connect()
        self.bus.export("/org/freedesktop/Notifications", self.service)
        await self.bus.request_name("org.freedesktop.Notifications")
        self.ready.set()

    def press(self, ident, key):
        """Emit ActionInvoked for notification `ident`, as a click on its button does."""
        self.loop.call_soon_threadsafe(self.service.ActionInvoked, ident, key)

    def stop(self):
        async def close():
            self.bus.disconnect()
            await self.bus.wait_for_disconnect()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(5)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()
