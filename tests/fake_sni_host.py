"""A StatusNotifierWatcher of our own on a private bus, and a panel's view of an item and menu.

No `from __future__ import annotations`: dbus-fast reads D-Bus signatures from annotations.
"""

import asyncio
import threading

from dbus_fast import Variant
from dbus_fast.aio import MessageBus
from dbus_fast.service import PropertyAccess, ServiceInterface, dbus_property, method, signal


class Watcher(ServiceInterface):
    def __init__(self):
        super().__init__("org.kde.StatusNotifierWatcher")
        self.items = []

    @method()
    def RegisterStatusNotifierItem(self, service: "s"):
        self.items.append(service)
        self.StatusNotifierItemRegistered(service)

    @method()
    def RegisterStatusNotifierHost(self, service: "s"):
        pass

    @dbus_property(access=PropertyAccess.READ)
    def RegisteredStatusNotifierItems(self) -> "as":
        return list(self.items)

    @dbus_property(access=PropertyAccess.READ)
    def IsStatusNotifierHostRegistered(self) -> "b":
        return True

    @dbus_property(access=PropertyAccess.READ)
    def ProtocolVersion(self) -> "i":
        return 0

    @signal()
    def StatusNotifierItemRegistered(self, service) -> "s":
        return service


class Host:
    """Owns the watcher name and reads items as a panel would, from a thread of its own."""

    def __init__(self, address):
        self.address = address
        self.watcher = Watcher()
        self.loop = asyncio.new_event_loop()
        self.layout_updates = []
        self.property_updates = []
        ready = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self.thread.start()
        assert ready.wait(10), "the fake SNI host did not start"

    def _run(self, ready):
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self._start())
        ready.set()
        self.loop.run_forever()

    async def _start(self):
        self.bus = await MessageBus(bus_address=self.address).connect()
        self.bus.export("/StatusNotifierWatcher", self.watcher)
        await self.bus.request_name("org.kde.StatusNotifierWatcher")

    def run(self, coroutine, timeout=10):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    async def _item(self, service):
        intro = await self.bus.introspect(service, "/StatusNotifierItem")
        return self.bus.get_proxy_object(service, "/StatusNotifierItem", intro).get_interface(
            "org.kde.StatusNotifierItem"
        )

    async def _menu(self, service):
        intro = await self.bus.introspect(service, "/MenuBar")
        return self.bus.get_proxy_object(service, "/MenuBar", intro).get_interface(
            "com.canonical.dbusmenu"
        )

    def item_properties(self, service):
        async def read():
            item = await self._item(service)
            return {
                "Title": await item.get_title(),
                "Status": await item.get_status(),
                "IconPixmap": await item.get_icon_pixmap(),
                "ToolTip": await item.get_tool_tip(),
                "Menu": await item.get_menu(),
                "ItemIsMenu": await item.get_item_is_menu(),
            }

        return self.run(read())

    def layout(self, service):
        async def read():
            menu = await self._menu(service)
            return await menu.call_get_layout(0, -1, [])

        return self.run(read())

    def watch_layout(self, service):
        async def subscribe():
            menu = await self._menu(service)
            menu.on_layout_updated(lambda revision, parent: self.layout_updates.append(revision))
            menu.on_items_properties_updated(
                lambda updated, removed: self.property_updates.append(
                    {ident: {k: v.value for k, v in props.items()} for ident, props in updated}
                )
            )

        self.run(subscribe())

    def group_properties(self, service, ids):
        async def read():
            menu = await self._menu(service)
            rows = await menu.call_get_group_properties(ids, [])
            return {ident: {k: v.value for k, v in props.items()} for ident, props in rows}

        return self.run(read())

    def about_to_show(self, service, ident):
        async def call():
            menu = await self._menu(service)
            return await menu.call_about_to_show(ident)

        return self.run(call())

    def watch_status(self, service, into):
        async def subscribe():
            item = await self._item(service)
            item.on_new_status(into.append)
            item.on_new_icon(lambda: into.append("NewIcon"))
            item.on_new_tool_tip(lambda: into.append("NewToolTip"))

        self.run(subscribe())

    def click(self, service, ident):
        async def event():
            menu = await self._menu(service)
            await menu.call_event(ident, "clicked", Variant("s", ""), 0)

        self.run(event())

    def activate(self, service):
        async def call():
            item = await self._item(service)
            await item.call_activate(0, 0)

        self.run(call())

    def stop(self):
        async def close():
            self.bus.disconnect()
            await asyncio.wait_for(self.bus.wait_for_disconnect(), 2)

        try:
            self.run(close())
        except Exception:
            pass
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
            self.loop.close()


def flatten(node):
    """[(id, props)] for a GetLayout node and all below it."""
    ident, props, children = node
    out = [(ident, {k: v.value for k, v in props.items()})]
    for child in children:
        out += flatten(child.value)
    return out
