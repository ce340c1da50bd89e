"""A pystray backend that speaks StatusNotifierItem and com.canonical.dbusmenu with dbus-fast.

pystray without PyGObject falls back to XEmbed on Linux: no menu, and nothing at all on GNOME
(with the AppIndicator extension) or Wayland. Those hosts speak StatusNotifierItem over the
session bus, and so does this backend, in pure Python:

- `org.kde.StatusNotifierItem` at /StatusNotifierItem: Title, ToolTip, Status (NeedsAttention
  while there are orphaned files), IconPixmap (ARGB32 in network byte order, several sizes),
  ItemIsMenu, Menu; Activate runs the menu's default item. NewIcon, NewToolTip, NewStatus and
  NewTitle are emitted when those change.
- `com.canonical.dbusmenu` at /MenuBar: GetLayout, GetGroupProperties, GetProperty, Event,
  EventGroup, AboutToShow(Group), with checkmarks, disabled items and submenus; LayoutUpdated
  when the menu changes.
- It registers with `org.kde.StatusNotifierWatcher`, and again whenever a watcher (re)appears.

The bus runs on an asyncio loop on pystray's loop thread; updates from other threads are handed
to it, never run on the caller's thread. (No `from __future__ import annotations` here: dbus-fast
reads the D-Bus signatures from the annotations.)
"""

import asyncio
import contextlib
import logging
import os
import threading

from dbus_fast import BusType, Message, MessageType, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.service import PropertyAccess, ServiceInterface, dbus_property, method, signal

log = logging.getLogger("uvsweep.tray.sni")

WATCHER = "org.kde.StatusNotifierWatcher"
ITEM_PATH = "/StatusNotifierItem"
MENU_PATH = "/MenuBar"
PIXMAP_SIZES = (16, 22, 24, 32, 48, 64)


def argb_pixmap(image):
    """(width, height, ARGB32 bytes in network byte order) for a Pillow RGBA image."""
    rgba = image.convert("RGBA")
    raw = rgba.tobytes()
    out = bytearray(len(raw))
    out[0::4] = raw[3::4]  # A
    out[1::4] = raw[0::4]  # R
    out[2::4] = raw[1::4]  # G
    out[3::4] = raw[2::4]  # B
    return [rgba.width, rgba.height, bytes(out)]


class MenuNode:
    """One dbusmenu entry built from a pystray MenuItem (id 0 is the root)."""

    def __init__(self, ident, item, children):
        self.ident = ident
        self.item = item
        self.children = children

    def properties(self):
        item = self.item
        if item is None:
            return {"children-display": Variant("s", "submenu")}
        if item is _separator():
            return {"type": Variant("s", "separator")}
        props = {
            "label": Variant("s", str(item.text).replace("_", "__")),
            "enabled": Variant("b", bool(item.enabled)),
            "visible": Variant("b", bool(item.visible)),
        }
        if item.checked is not None:
            props["toggle-type"] = Variant("s", "checkmark")
            props["toggle-state"] = Variant("i", 1 if item.checked else 0)
        if item.submenu:
            props["children-display"] = Variant("s", "submenu")
        return props


def _separator():
    import pystray  # noqa: PLC0415

    return pystray.Menu.SEPARATOR


def build_tree(menu):
    """A pystray Menu -> (root MenuNode, {id: node}); ids follow the order items appear."""
    nodes = {}
    counter = [0]

    def make(item, items):
        ident = counter[0]
        counter[0] += 1
        node = MenuNode(ident, item, [])
        nodes[ident] = node
        for child in items or ():
            sub = child.submenu.items if getattr(child, "submenu", None) else ()
            node.children.append(make(child, sub))
        return node

    root = make(None, menu.items if menu is not None else ())
    return root, nodes


def layout(node, depth, names):
    """dbusmenu's (ia{sv}av) for `node`, `depth` levels down (-1: all)."""
    props = node.properties()
    if names:
        props = {k: v for k, v in props.items() if k in names}
    children = []
    if depth != 0:
        children = [Variant("(ia{sv}av)", layout(c, depth - 1, names)) for c in node.children]
    return [node.ident, props, children]


class ItemInterface(ServiceInterface):
    """org.kde.StatusNotifierItem."""

    def __init__(self, backend):
        super().__init__("org.kde.StatusNotifierItem")
        self.backend = backend

    @dbus_property(access=PropertyAccess.READ)
    def Category(self) -> "s":
        return "ApplicationStatus"

    @dbus_property(access=PropertyAccess.READ)
    def Id(self) -> "s":
        return "uvsweep"

    @dbus_property(access=PropertyAccess.READ)
    def Title(self) -> "s":
        return self.backend.title_text()

    @dbus_property(access=PropertyAccess.READ)
    def Status(self) -> "s":
        return self.backend.status

    @dbus_property(access=PropertyAccess.READ)
    def WindowId(self) -> "i":
        return 0

    @dbus_property(access=PropertyAccess.READ)
    def IconName(self) -> "s":
        return ""

    @dbus_property(access=PropertyAccess.READ)
    def IconPixmap(self) -> "a(iiay)":
        return self.backend.pixmaps

    @dbus_property(access=PropertyAccess.READ)
    def AttentionIconName(self) -> "s":
        return ""

    @dbus_property(access=PropertyAccess.READ)
    def AttentionIconPixmap(self) -> "a(iiay)":
        return self.backend.pixmaps

    @dbus_property(access=PropertyAccess.READ)
    def ToolTip(self) -> "(sa(iiay)ss)":
        return ["", [], self.backend.title_text(), ""]

    @dbus_property(access=PropertyAccess.READ)
    def ItemIsMenu(self) -> "b":
        return False

    @dbus_property(access=PropertyAccess.READ)
    def Menu(self) -> "o":
        return MENU_PATH

    @method()
    def Activate(self, x: "i", y: "i"):
        self.backend.activate()

    @method()
    def SecondaryActivate(self, x: "i", y: "i"):
        pass

    @method()
    def ContextMenu(self, x: "i", y: "i"):
        pass  # hosts show the dbusmenu themselves

    @method()
    def Scroll(self, delta: "i", orientation: "s"):
        pass

    @signal()
    def NewIcon(self):
        pass

    @signal()
    def NewAttentionIcon(self):
        pass

    @signal()
    def NewTitle(self):
        pass

    @signal()
    def NewToolTip(self):
        pass

    @signal()
    def NewStatus(self, status) -> "s":
        return status


class MenuInterface(ServiceInterface):
    """com.canonical.dbusmenu."""

    def __init__(self, backend):
        super().__init__("com.canonical.dbusmenu")
        self.backend = backend

    @dbus_property(access=PropertyAccess.READ)
    def Version(self) -> "u":
        return 3

    @dbus_property(access=PropertyAccess.READ)
    def TextDirection(self) -> "s":
        return "ltr"

    @dbus_property(access=PropertyAccess.READ)
    def Status(self) -> "s":
        return "normal"

    @dbus_property(access=PropertyAccess.READ)
    def IconThemePath(self) -> "as":
        return []

    @method()
    def GetLayout(self, parent_id: "i", depth: "i", names: "as") -> "u(ia{sv}av)":
        node = self.backend.nodes.get(parent_id, self.backend.root)
        return [self.backend.revision, layout(node, depth, set(names))]

    @method()
    def GetGroupProperties(self, ids: "ai", names: "as") -> "a(ia{sv})":
        out = []
        for ident in ids or list(self.backend.nodes):
            node = self.backend.nodes.get(ident)
            if node is not None:
                props = node.properties()
                if names:
                    props = {k: v for k, v in props.items() if k in names}
                out.append([ident, props])
        return out

    @method()
    def GetProperty(self, ident: "i", name: "s") -> "v":
        node = self.backend.nodes.get(ident)
        props = node.properties() if node else {}
        return props.get(name, Variant("s", ""))

    @method()
    def Event(self, ident: "i", event_id: "s", data: "v", timestamp: "u"):
        if event_id == "clicked":
            self.backend.click(ident)

    @method()
    def EventGroup(self, events: "a(isvu)") -> "ai":
        missing = []
        for ident, event_id, _data, _timestamp in events:
            if ident not in self.backend.nodes:
                missing.append(ident)
            elif event_id == "clicked":
                self.backend.click(ident)
        return missing

    @method()
    def AboutToShow(self, ident: "i") -> "b":
        return self.backend.refresh_menu()

    @method()
    def AboutToShowGroup(self, ids: "ai") -> "aiai":
        self.backend.refresh_menu()
        return [[], []]

    @signal()
    def LayoutUpdated(self, revision, parent) -> "ui":
        return [revision, parent]

    @signal()
    def ItemsPropertiesUpdated(self, updated, removed) -> "a(ia{sv})a(ias)":
        return [updated, removed]


class SniService:
    """The D-Bus side: exports the item and its menu, registers, and keeps them current.

    `icon` is the pystray Icon it shows; everything here runs on `loop`.
    """

    def __init__(self, icon, bus_address=None):
        self.icon = icon
        self.bus_address = bus_address
        self.bus = None
        self.status = "Active"
        self.pixmaps = []
        self.revision = 1
        self.root, self.nodes = build_tree(None)
        self.item = ItemInterface(self)
        self.menu = MenuInterface(self)
        self.registered = False

    # -- what the host reads --------------------------------------------------------------------

    def title_text(self):
        return str(self.icon.title or self.icon.name or "")

    def render_pixmaps(self):
        image = self.icon.icon
        if image is None:
            self.pixmaps = []
            return
        render = getattr(self.icon, "render_at", None)
        sizes = []
        for size in PIXMAP_SIZES:
            sized = render(size) if render else image.resize((size, size))
            sizes.append(argb_pixmap(sized))
        self.pixmaps = sizes

    def rebuild_menu(self):
        self.root, self.nodes = build_tree(self.icon.menu)
        self.revision += 1

    def refresh_menu(self):
        """Rebuild the menu and tell the host what changed: the layout when items came or went,
        else just the properties that changed. Whether anything changed."""
        before_tree, before_props = self._tree(), self._props()
        self.rebuild_menu()
        if self.bus is None:
            return True
        if self._tree() != before_tree:
            self.menu.LayoutUpdated(self.revision, 0)
            return True
        after = self._props()
        updated = [
            [ident, {k: Variant(*kv) for k, kv in props.items()}]
            for ident, props in after.items()
            if before_props.get(ident) != props
        ]
        if updated:
            self.menu.ItemsPropertiesUpdated(updated, [])
        return bool(updated)

    def _tree(self):
        return [(i, [c.ident for c in n.children]) for i, n in sorted(self.nodes.items())]

    def _props(self):
        return {i: {k: (v.signature, v.value) for k, v in n.properties().items()}
                for i, n in self.nodes.items()}  # fmt: skip

    # -- what the host asks for ------------------------------------------------------------------

    def activate(self):
        for node in self.nodes.values():
            item = node.item
            if item is not None and getattr(item, "default", False) and item.enabled:
                self._run_action(item)
                return

    def click(self, ident):
        node = self.nodes.get(ident)
        if node is not None and node.item is not None and node.item.enabled:
            self._run_action(node.item)

    def _run_action(self, item):
        # off the bus loop: an action may take a while, and must never block the host's call
        threading.Thread(target=lambda: item(self.icon), name="uvsweep-sni-action",
                         daemon=True).start()  # fmt: skip

    # -- updates from pystray ----------------------------------------------------------------------

    def update_icon(self):
        self.render_pixmaps()
        if self.bus is not None:
            self.item.NewIcon()

    def update_title(self):
        if self.bus is not None:
            self.item.NewTitle()
            self.item.NewToolTip()
        status = "NeedsAttention" if getattr(self.icon, "needs_attention", False) else "Active"
        if status != self.status:
            self.status = status
            if self.bus is not None:
                self.item.NewStatus(status)

    def update_menu(self):
        self.refresh_menu()

    # -- the bus -----------------------------------------------------------------------------------

    async def start(self):
        if self.bus_address:
            self.bus = await MessageBus(bus_address=self.bus_address).connect()
        else:
            self.bus = await MessageBus(bus_type=BusType.SESSION).connect()
        self.render_pixmaps()
        self.rebuild_menu()
        self.bus.export(ITEM_PATH, self.item)
        self.bus.export(MENU_PATH, self.menu)
        self.bus.add_message_handler(self._on_message)
        rule = (
            "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',"
            f"member='NameOwnerChanged',arg0='{WATCHER}'"
        )
        await self._call_bus("AddMatch", "s", [rule])
        await self.register()
        self._watch_bus = asyncio.get_running_loop().create_task(self._on_bus_gone(self.bus))

    async def _on_bus_gone(self, bus):
        with contextlib.suppress(Exception):  # an unexpected end arrives as EOFError
            await bus.wait_for_disconnect()
        if self.bus is bus:  # not our own stop(): the session bus went away
            self.bus = None
            self.registered = False
            log.warning("the session bus went away: the tray icon is gone until uvsweep restarts;"
                        " scanning and cleanup go on")  # fmt: skip

    async def _call_bus(self, member, signature, body):
        return await self.bus.call(Message(
            destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
            interface="org.freedesktop.DBus", member=member, signature=signature, body=body,
        ))  # fmt: skip

    async def register(self):
        reply = await self.bus.call(Message(
            destination=WATCHER, path="/StatusNotifierWatcher", interface=WATCHER,
            member="RegisterStatusNotifierItem", signature="s", body=[self.bus.unique_name],
        ))  # fmt: skip
        self.registered = reply is not None and reply.message_type == MessageType.METHOD_RETURN
        if not self.registered:
            log.info("no StatusNotifierWatcher answered; waiting for one to appear")
        return self.registered

    def _on_message(self, message):
        if (message.message_type == MessageType.SIGNAL and message.member == "NameOwnerChanged"
                and message.body and message.body[0] == WATCHER):  # fmt: skip
            if message.body[2]:  # a (new) watcher: register with it
                asyncio.get_running_loop().create_task(self.register())
            else:
                self.registered = False

    async def stop(self):
        if self.bus is not None:
            bus, self.bus = self.bus, None  # the watch below now knows this is no accident
            bus.disconnect()
        watch = getattr(self, "_watch_bus", None)
        if watch is not None:
            # gone already, or slow: we are leaving anyway
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(watch), 1.0)


def _quiet_when_the_bus_is_gone(loop, context):
    """A write to a bus that went away fails in futures nobody awaits (signals): that has been
    said once already (`_on_bus_gone`), so it is not said again for each of them."""
    if isinstance(context.get("exception"), (BrokenPipeError, ConnectionError, EOFError)):
        return
    loop.default_exception_handler(context)


def watcher_present(timeout=1.0, bus_address=None):
    """Whether a StatusNotifierWatcher is on the session bus (for the backend chooser)."""
    if not (bus_address or os.environ.get("DBUS_SESSION_BUS_ADDRESS")):
        return False

    async def ask():
        bus = await (MessageBus(bus_address=bus_address) if bus_address else
                     MessageBus(bus_type=BusType.SESSION)).connect()  # fmt: skip
        try:
            reply = await bus.call(Message(
                destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus", member="NameHasOwner", signature="s",
                body=[WATCHER],
            ))  # fmt: skip
            return bool(reply and reply.body and reply.body[0])
        finally:
            bus.disconnect()
            with contextlib.suppress(Exception):  # closed for good: no socket left to the GC
                await bus.wait_for_disconnect()

    try:
        return asyncio.run(asyncio.wait_for(ask(), timeout))
    except Exception:  # noqa: BLE001 - no bus, no answer: no watcher
        return False


def icon_class():
    """A pystray Icon class that shows itself through StatusNotifierItem."""
    from pystray import _base  # noqa: PLC0415

    class SniIcon(_base.Icon):
        HAS_MENU = True
        HAS_DEFAULT_ACTION = True
        HAS_MENU_RADIO = False
        HAS_NOTIFICATION = False

        def __init__(self, *args, bus_address=None, **kwargs):
            self.needs_attention = False
            self._loop = None
            self._service = None
            self._bus_address = bus_address
            super().__init__(*args, **kwargs)

        def _service_call(self, name):
            def call():
                if self._service is not None:
                    getattr(self._service, name)()

            return call

        def _call(self, fn):
            loop = self._loop
            if loop is None or self._service is None:
                return
            if threading.current_thread() is self._loop_thread:
                fn()
            else:
                loop.call_soon_threadsafe(fn)

        def _show(self):
            self._call(self._service_call("update_icon"))

        def _hide(self):
            pass

        def _update_icon(self):
            self._call(self._service_call("update_icon"))

        def _update_title(self):
            self._call(self._service_call("update_title"))

        def _update_menu(self):
            self._call(self._service_call("update_menu"))

        def _run(self):
            self._loop = asyncio.new_event_loop()
            self._loop.set_exception_handler(_quiet_when_the_bus_is_gone)
            self._loop_thread = threading.current_thread()
            self._service = SniService(self, self._bus_address)
            try:
                self._loop.run_until_complete(self._service.start())
                self._mark_ready()
                self._loop.run_forever()
            finally:
                self._loop.run_until_complete(self._service.stop())
                self._loop.close()
                self._loop = None

        def _run_detached(self):
            self._detached = threading.Thread(target=self._run, name="uvsweep-sni", daemon=True)
            self._detached.start()

        def _stop(self):
            loop = self._loop
            if loop is not None:
                loop.call_soon_threadsafe(loop.stop)
            detached = getattr(self, "_detached", None)
            if detached is not None and detached is not threading.current_thread():
                detached.join(2)

        def _notify(self, message, title=None):
            pass

        def _remove_notification(self):
            pass

    return SniIcon
