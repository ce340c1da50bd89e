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

    def __init__(self, address, own_watcher=True):
        self.address = address
        self.own_watcher = own_watcher
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
        if self.own_watcher:  # else only a client of someone else's watcher (a real panel's)
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

    def cache_menu(self, service):
        """A CachedMenu of `service`'s menu, kept as a panel keeps it."""
        return CachedMenu(self, service)

    def fresh_menu(self, service):
        """{id: (props, [child ids])} from a fresh GetLayout of the whole menu."""
        _revision, root = self.layout(service)
        out = {}
        _index(root, out)
        return out

    def stop(self):
        if self.loop.is_closed():
            return

        async def close():
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()
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


def _index(node, into):
    """Put a GetLayout node and all below it into {id: (props, [child ids])}."""
    ident, props, children = node
    into[ident] = ({k: v.value for k, v in props.items()}, [c.value[0] for c in children])
    for child in children:
        _index(child.value, into)


class CachedMenu:
    """A strict dbusmenu client that caches the menu by id as panels do: GetLayout once, then
    LayoutUpdated(revision, parent) -> GetLayout(parent) replaces that subtree's structure, and
    an id it knew keeps any property the new layout leaves out (libdbusmenu's client merges, so
    a property that went away must be announced); ItemsPropertiesUpdated -> apply the updated
    properties and drop the removed ones. It never reads the menu otherwise, so what the item
    forgets to announce stays wrong here.

    Signals are handled one at a time in the order they came; `errors` lists what a strict
    host would refuse (an update for an id it has never been shown).
    """

    def __init__(self, host, service):
        self.host = host
        self.service = service
        self.entries = {}  # id -> (props, [child ids])
        self.revision = 0
        self.errors = []
        self.signals = 0
        self._queue = None
        self._busy = False
        host.run(self._start())

    async def _start(self):
        self._queue = asyncio.Queue()
        menu = await self.host._menu(self.service)
        menu.on_layout_updated(
            lambda revision, parent: self._queue.put_nowait(("layout", revision, parent))
        )
        menu.on_items_properties_updated(
            lambda updated, removed: self._queue.put_nowait(("props", updated, removed))
        )
        self._menu = menu
        revision, root = await menu.call_get_layout(0, -1, [])
        self.revision = revision
        _index(root, self.entries)
        self._task = asyncio.get_running_loop().create_task(self._consume())

    async def _consume(self):
        while True:
            event = await self._queue.get()
            self._busy = True
            self.signals += 1
            try:
                if event[0] == "layout":
                    await self._relayout(event[2])
                else:
                    self._apply(event[1], event[2])
            except Exception as err:
                self.errors.append(f"{event[0]}: {type(err).__name__}: {err}")
            finally:
                self._busy = False

    def _drop(self, ident):
        props_children = self.entries.pop(ident, None)
        if props_children is not None:
            for child in props_children[1]:
                self._drop(child)

    async def _relayout(self, parent):
        if parent not in self.entries:
            self.errors.append(f"LayoutUpdated for unknown parent {parent}")
            parent = 0
        revision, node = await self._menu.call_get_layout(parent, -1, [])
        self.revision = revision
        known = {i: props for i, (props, _children) in self.entries.items()}
        self._drop(parent)
        fresh = {}
        _index(node, fresh)
        for ident, (props, children) in fresh.items():
            # as libdbusmenu does: an id it knew keeps the properties the layout leaves out
            self.entries[ident] = ({**known.get(ident, {}), **props}, children)

    def _apply(self, updated, removed):
        for ident, props in updated:
            if ident not in self.entries:
                self.errors.append(f"ItemsPropertiesUpdated for unknown id {ident}")
                continue
            self.entries[ident][0].update({k: v.value for k, v in props.items()})
        for ident, names in removed:
            if ident not in self.entries:
                self.errors.append(f"removed properties for unknown id {ident}")
                continue
            for name in names:
                self.entries[ident][0].pop(name, None)

    def settled(self):
        """Whether every signal received so far has been handled."""
        return self.host.run(self._idle())

    async def _idle(self):
        await asyncio.sleep(0.05)
        return self._queue.empty() and not self._busy

    def view(self):
        """The cache now (a copy, read on the host's loop)."""

        async def copy():
            return {i: (dict(p), list(c)) for i, (p, c) in self.entries.items()}

        return self.host.run(copy())


def flatten(node):
    """[(id, props)] for a GetLayout node and all below it."""
    ident, props, children = node
    out = [(ident, {k: v.value for k, v in props.items()})]
    for child in children:
        out += flatten(child.value)
    return out
