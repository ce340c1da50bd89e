"""A pystray backend that speaks StatusNotifierItem and com.canonical.dbusmenu with dbus-fast.

pystray without PyGObject falls back to XEmbed on Linux: no menu, and nothing at all on GNOME
(with the AppIndicator extension) or Wayland. Those hosts speak StatusNotifierItem over the
session bus, and so does this backend, in pure Python:

- `org.kde.StatusNotifierItem` at /StatusNotifierItem: Title, ToolTip, Status (NeedsAttention
  while there are orphaned files), IconPixmap (ARGB32 in network byte order, several sizes),
  ItemIsMenu, Menu; Activate runs the menu's default item. NewIcon, NewToolTip, NewStatus and
  NewTitle are emitted when (and only when) what they announce changed.
- `com.canonical.dbusmenu` at /MenuBar: GetLayout, GetGroupProperties, GetProperty, Event,
  EventGroup, AboutToShow(Group), with checkmarks, disabled items and submenus. Every menu entry
  keeps its id for as long as it exists (ids follow what an entry is, never where it is), so a host
  that caches by id stays right: `LayoutUpdated` whenever entries come, go or move, and
  `ItemsPropertiesUpdated` with the properties that changed and those that went away.
- It registers with the item registry, `org.kde.StatusNotifierWatcher` (called "the registry"
  here: uvsweep's own watcher is another thing), again whenever one (re)appears, and
  after a reconnect when the bus connection itself was lost (with backoff).

Threads: every D-Bus call runs on the bus loop's thread. pystray calls `_update_icon`,
`_update_title` and `_update_menu` from any thread; they only mark what changed, marshalled onto
the loop (`call_soon_threadsafe`), and one pump there sends it, at most every `MIN_INTERVAL`
seconds, and never before the previous round has left the socket.
"""
# ruff: noqa: PLC0415 - imports inside functions: only the path that needs a module pays for it

from uvsweep.tray.lean import without_openssl

with without_openssl():  # the tray never uses TLS: asyncio and dbus-fast come without OpenSSL
    import asyncio
    import contextlib
    import logging
    import os
    import re
    import socket
    import threading
    from collections.abc import Awaitable, Callable, Iterable, Sequence
    from typing import Annotated, Any

    from dbus_fast import BusType, Message, MessageType, PropertyAccess, Variant
    from dbus_fast.aio import MessageBus
    from dbus_fast.annotations import DBusSignature
    from dbus_fast.service import ServiceInterface, dbus_property, method, signal

log = logging.getLogger("uvsweep.tray.sni")

REGISTRY = "org.kde.StatusNotifierWatcher"
ITEM_PATH = "/StatusNotifierItem"
MENU_PATH = "/MenuBar"
ITEM_IFACE = "org.kde.StatusNotifierItem"
MENU_IFACE = "com.canonical.dbusmenu"
PIXMAP_SIZES = (16, 22, 24, 32, 48, 64)
#: The shortest time between two rounds of updates sent to the host (a burst is one round).
MIN_INTERVAL = 0.5
#: Reconnect backoff after the bus connection is lost: first wait, longest wait (seconds).
BACKOFF = (0.25, 15.0)

# D-Bus signatures as typing.Annotated, which dbus-fast reads (4.0 and later)
Str = Annotated[str, DBusSignature("s")]
Int = Annotated[int, DBusSignature("i")]
UInt = Annotated[int, DBusSignature("u")]
Bool = Annotated[bool, DBusSignature("b")]
ObjPath = Annotated[str, DBusSignature("o")]
StrList = Annotated[list[str], DBusSignature("as")]
IntList = Annotated[list[int], DBusSignature("ai")]
Pixmaps = Annotated[list[list[Any]], DBusSignature("a(iiay)")]
ToolTip = Annotated[list[Any], DBusSignature("(sa(iiay)ss)")]
LayoutReply = Annotated[list[Any], DBusSignature("u(ia{sv}av)")]
GroupProps = Annotated[list[list[Any]], DBusSignature("a(ia{sv})")]
AnyVariant = Annotated[Variant, DBusSignature("v")]
Events = Annotated[list[list[Any]], DBusSignature("a(isvu)")]
TwoIntLists = Annotated[list[list[int]], DBusSignature("aiai")]
LayoutSignal = Annotated[list[int], DBusSignature("ui")]
PropsSignal = Annotated[list[Any], DBusSignature("a(ia{sv})a(ias)")]

#: A property as (D-Bus signature, value): comparable, and turned into a Variant when sent.
Prop = tuple[str, Any]
Props = dict[str, Prop]


def argb_pixmap(image: Any) -> list[Any]:
    """[width, height, ARGB32 bytes in network byte order] for a Pillow image."""
    rgba = image.convert("RGBA")
    raw = rgba.tobytes()
    out = bytearray(len(raw))
    out[0::4] = raw[3::4]  # A
    out[1::4] = raw[0::4]  # R
    out[2::4] = raw[1::4]  # G
    out[3::4] = raw[2::4]  # B
    return [rgba.width, rgba.height, bytes(out)]


# ---- the menu: stable ids, and what changed since the host last heard -------------------------


def _is_separator(item: Any) -> bool:
    import pystray

    return item is pystray.Menu.SEPARATOR


def entry_key(item: Any) -> str:
    """What an entry is, for its id: the app's own key when it gave one, else its text with the
    numbers left out ("Clean now (#)"), so a changing count keeps the entry's id."""
    key = getattr(item, "key", None)
    if key:
        return str(key)
    if _is_separator(item):
        return "--"
    return re.sub(r"\d+", "#", str(item.text))


def entry_props(item: Any) -> Props:
    """The dbusmenu properties of a pystray MenuItem."""
    if _is_separator(item):
        return {"type": ("s", "separator")}
    props: Props = {
        "label": ("s", str(item.text).replace("_", "__")),
        "enabled": ("b", bool(item.enabled)),
        "visible": ("b", bool(item.visible)),
    }
    if item.checked is not None:
        props["toggle-type"] = ("s", "checkmark")
        props["toggle-state"] = ("i", 1 if item.checked else 0)
    if item.submenu:
        props["children-display"] = ("s", "submenu")
    return props


ROOT_PROPS: Props = {"children-display": ("s", "submenu")}


class MenuChanges:
    """What the host must be told after a rebuild."""

    def __init__(self) -> None:
        self.layout_parent: int | None = None  # LayoutUpdated(revision, this) when not None
        self.updated: list[tuple[int, Props]] = []  # changed or added properties
        self.removed: list[tuple[int, list[str]]] = []  # properties that went away

    def __bool__(self) -> bool:
        return self.layout_parent is not None or bool(self.updated) or bool(self.removed)


class MenuModel:
    """The menu as the host knows it: ids that stay with their entry, properties, children.

    An entry's id comes from its path of keys (`entry_key`); an id is never given to another
    entry, even after its own entry went away.
    """

    def __init__(self) -> None:
        self.revision = 1
        self.props: dict[int, Props] = {0: dict(ROOT_PROPS)}
        self.children: dict[int, list[int]] = {0: []}
        self.items: dict[int, Any] = {}
        self._ids: dict[tuple[str, ...], int] = {(): 0}
        self._next = 1

    def _id(self, path: tuple[str, ...]) -> int:
        ident = self._ids.get(path)
        if ident is None:
            ident = self._ids[path] = self._next
            self._next += 1
        return ident

    def update(self, menu: Any) -> MenuChanges:
        """Rebuild from a pystray Menu (or None); what changed."""
        props: dict[int, Props] = {0: dict(ROOT_PROPS)}
        children: dict[int, list[int]] = {}
        items: dict[int, Any] = {}
        paths: dict[int, tuple[str, ...]] = {0: ()}

        def walk(ident: int, path: tuple[str, ...], entries: Iterable[Any]) -> None:
            kids = children[ident] = []
            seen: dict[str, int] = {}
            for item in entries:
                key = entry_key(item)
                seen[key] = seen.get(key, 0) + 1
                if seen[key] > 1:  # the same key twice among siblings: the second is key#2
                    key = f"{key}#{seen[key]}"
                child_path = (*path, key)
                child = self._id(child_path)
                kids.append(child)
                paths[child] = child_path
                props[child] = entry_props(item)
                items[child] = item
                submenu = None if _is_separator(item) else item.submenu
                walk(child, child_path, submenu if submenu else ())

        walk(0, (), menu if menu is not None else ())
        changes = MenuChanges()
        # entries came, went or moved under these (new entries come with their parent's change)
        moved = [i for i in children if i in self.props and self.children.get(i) != children[i]]
        if moved:
            self.revision += 1
            changes.layout_parent = moved[0] if len(moved) == 1 else 0
        refetched = self._subtree(changes.layout_parent, children)
        for ident, new in props.items():
            old = self.props.get(ident)
            if old is None:
                continue  # a new entry: the host reads it with the layout
            changed = {k: v for k, v in new.items() if old.get(k) != v}
            if changed and ident not in refetched:  # else its new values come with the layout
                changes.updated.append((ident, changed))
            # always said: a host merges a layout it reads again into what it knew of an id
            gone = sorted(k for k in old if k not in new)
            if gone:
                changes.removed.append((ident, gone))
        self.props, self.children, self.items = props, children, items
        self._ids = {path: ident for ident, path in paths.items()}
        return changes

    @staticmethod
    def _subtree(root: int | None, children: dict[int, list[int]]) -> set[int]:
        if root is None:
            return set()
        out, todo = set(), [root]
        while todo:
            ident = todo.pop()
            out.add(ident)
            todo += children.get(ident, [])
        return out

    def layout(self, ident: int, depth: int, names: Sequence[str]) -> list[Any]:
        """dbusmenu's (ia{sv}av) for `ident`, `depth` levels down (-1: all)."""
        kids: list[Variant] = []
        if depth != 0:
            kids = [Variant("(ia{sv}av)", self.layout(c, depth - 1, names))
                    for c in self.children.get(ident, [])]  # fmt: skip
        return [ident, self.variants(ident, names), kids]

    def variants(self, ident: int, names: Sequence[str] = ()) -> dict[str, Variant]:
        """An entry's properties as Variants (only `names`, when given)."""
        props = self.props.get(ident, {})
        return {k: Variant(*v) for k, v in props.items() if not names or k in names}


# ---- the D-Bus interfaces ----------------------------------------------------------------------


class ItemInterface(ServiceInterface):
    """org.kde.StatusNotifierItem: reads the state the service last published."""

    def __init__(self, service: "SniService") -> None:
        super().__init__(ITEM_IFACE)
        self.service = service

    @dbus_property(access=PropertyAccess.READ)
    def Category(self) -> Str:
        return "ApplicationStatus"

    @dbus_property(access=PropertyAccess.READ)
    def Id(self) -> Str:
        return "uvsweep"

    @dbus_property(access=PropertyAccess.READ)
    def Title(self) -> Str:
        return self.service.title

    @dbus_property(access=PropertyAccess.READ)
    def Status(self) -> Str:
        return self.service.status

    @dbus_property(access=PropertyAccess.READ)
    def WindowId(self) -> Int:
        return 0

    @dbus_property(access=PropertyAccess.READ)
    def IconName(self) -> Str:
        return ""

    @dbus_property(access=PropertyAccess.READ)
    def IconPixmap(self) -> Pixmaps:
        return self.service.pixmaps

    @dbus_property(access=PropertyAccess.READ)
    def AttentionIconName(self) -> Str:
        return ""

    @dbus_property(access=PropertyAccess.READ)
    def AttentionIconPixmap(self) -> Pixmaps:
        # none: hosts then show IconPixmap, which carries the badge already; sending it twice
        # doubled what a host reads after every NewIcon or NewTitle
        return []

    @dbus_property(access=PropertyAccess.READ)
    def ToolTip(self) -> ToolTip:
        return ["", [], self.service.title, ""]

    @dbus_property(access=PropertyAccess.READ)
    def ItemIsMenu(self) -> Bool:
        return False

    @dbus_property(access=PropertyAccess.READ)
    def Menu(self) -> ObjPath:
        return MENU_PATH

    @method()
    def Activate(self, x: Int, y: Int) -> None:
        self.service.activate()

    @method()
    def SecondaryActivate(self, x: Int, y: Int) -> None:
        pass

    @method()
    def ContextMenu(self, x: Int, y: Int) -> None:
        pass  # hosts show the dbusmenu themselves

    @method()
    def Scroll(self, delta: Int, orientation: Str) -> None:
        pass

    # Declared for introspection; the service sends them itself (`SniService._signal`), so it
    # can wait until each round has left the socket.
    @signal()
    def NewIcon(self) -> None:
        pass

    @signal()
    def NewAttentionIcon(self) -> None:
        pass

    @signal()
    def NewTitle(self) -> None:
        pass

    @signal()
    def NewToolTip(self) -> None:
        pass

    @signal()
    def NewStatus(self) -> Str:
        return self.service.status


class MenuInterface(ServiceInterface):
    """com.canonical.dbusmenu."""

    def __init__(self, service: "SniService") -> None:
        super().__init__(MENU_IFACE)
        self.service = service

    @property
    def model(self) -> MenuModel:
        return self.service.model

    @dbus_property(access=PropertyAccess.READ)
    def Version(self) -> UInt:
        return 3

    @dbus_property(access=PropertyAccess.READ)
    def TextDirection(self) -> Str:
        return "ltr"

    @dbus_property(access=PropertyAccess.READ)
    def Status(self) -> Str:
        return "normal"

    @dbus_property(access=PropertyAccess.READ)
    def IconThemePath(self) -> StrList:
        return []

    @method()
    def GetLayout(self, parent_id: Int, depth: Int, names: StrList) -> LayoutReply:
        parent = parent_id if parent_id in self.model.props else 0
        return [self.model.revision, self.model.layout(parent, depth, names)]

    @method()
    def GetGroupProperties(self, ids: IntList, names: StrList) -> GroupProps:
        wanted = ids or list(self.model.props)
        return [[i, self.model.variants(i, names)] for i in wanted if i in self.model.props]

    @method()
    def GetProperty(self, ident: Int, name: Str) -> AnyVariant:
        prop = self.model.props.get(ident, {}).get(name)
        return Variant(*prop) if prop else Variant("s", "")

    @method()
    def Event(self, ident: Int, event_id: Str, data: AnyVariant, timestamp: UInt) -> None:
        if event_id == "clicked":
            self.service.click(ident)

    @method()
    def EventGroup(self, events: Events) -> IntList:
        missing = []
        for ident, event_id, _data, _timestamp in events:
            if ident not in self.model.props:
                missing.append(ident)
            elif event_id == "clicked":
                self.service.click(ident)
        return missing

    @method()
    def AboutToShow(self, ident: Int) -> Bool:
        return self.service.menu_opening()

    @method()
    def AboutToShowGroup(self, ids: IntList) -> TwoIntLists:
        self.service.menu_opening()
        return [[], []]

    @signal()
    def LayoutUpdated(self) -> LayoutSignal:
        return [self.model.revision, 0]

    @signal()
    def ItemsPropertiesUpdated(self) -> PropsSignal:
        return [[], []]


# ---- flow control --------------------------------------------------------------------------------


class PacedSocket:
    """Stands in for the bus socket in dbus-fast's message writer: a full send buffer sends
    nothing and the writer waits until the socket is writable again, instead of dropping the
    connection.

    Upstream cause: `dbus_fast.aio.message_bus._MessageWriter.write_callback` (dbus-fast 5.2.0,
    the same code since its python-dbus-next origin; reported there as altdesktop/python-dbus-next
    issue #153, "Aio write_callback terminates connection upon EAGAIN", with the fix in its open
    PR #154) calls `sock.send()` on the non-blocking socket and treats every exception, the
    BlockingIOError (EAGAIN) of a merely full buffer included, as fatal: it finalizes the bus, and
    the next write then fails with EBADF. A `send` that returns 0 on EAGAIN takes its existing
    "partial write: wait for writable" path instead. Also counts the bytes sent.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.sent = 0
        self.stalls = 0  # how often the buffer was full

    def send(self, data: Any, flags: int = 0) -> int:
        try:
            count = self._sock.send(data, flags)
        except (BlockingIOError, InterruptedError):
            self.stalls += 1
            return 0
        self.sent += count
        return count

    def sendmsg(self, buffers: Any, ancdata: Any = (), flags: int = 0) -> int:
        # only used with unix fds, which this backend never sends: no pacing needed
        count = self._sock.sendmsg(buffers, ancdata, flags)
        self.sent += count
        return count

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


def pace(bus: MessageBus) -> PacedSocket | None:
    """Put a PacedSocket under `bus`'s writer (right after `connect()`); None if this dbus-fast
    has no such writer (then the service's own back-pressure is all there is)."""
    writer = getattr(bus, "_writer", None)
    sock = getattr(writer, "sock", None)
    if not isinstance(sock, socket.socket):
        log.debug("dbus-fast's writer has no socket to pace; relying on back-pressure alone")
        return None
    paced = PacedSocket(sock)
    setattr(writer, "sock", paced)  # noqa: B010 - a private attribute of dbus-fast's writer
    return paced


# ---- the service ---------------------------------------------------------------------------------


class SniService:
    """The D-Bus side: exports the item and its menu, registers, keeps them current, and
    reconnects when the bus connection is lost. Everything here runs on the loop's thread.

    `icon` is the pystray Icon it shows; `on_problem(text)` hears about the connection ("" when
    all is well again).
    """

    def __init__(self, icon: Any, bus_address: str | None = None,
                 on_problem: Callable[[str], None] | None = None) -> None:  # fmt: skip
        self.icon = icon
        self.bus_address = bus_address
        self.on_problem = on_problem
        self.bus: MessageBus | None = None
        self.status = "Active"
        self.title = ""
        self.pixmaps: list[list[Any]] = []
        self.model = MenuModel()
        self.registered = False
        self.connections = 0  # how many times it connected
        self.rounds = 0  # update rounds sent
        self.signals = 0  # signals sent
        self.bytes_sent = 0  # on connections before the current one
        self._paced: PacedSocket | None = None
        self._dirty: set[str] = set()
        self._wake: asyncio.Event | None = None
        self._main: asyncio.Task[Any] | None = None
        self._stopping = False

    # -- what changed (called on the loop's thread) ------------------------------------------------

    def mark(self, *what: str) -> None:
        """Note that the icon, title or menu changed; the pump sends it soon."""
        self._dirty.update(what)
        if self._wake is not None:
            self._wake.set()

    @property
    def sent(self) -> int:
        """Bytes sent on the bus so far (all connections)."""
        return self.bytes_sent + (self._paced.sent if self._paced else 0)

    def _title_text(self) -> str:
        return str(self.icon.title or self.icon.name or "")

    def _status_text(self) -> str:
        return "NeedsAttention" if getattr(self.icon, "needs_attention", False) else "Active"

    def _render(self) -> list[list[Any]]:
        image = self.icon.icon
        if image is None:
            return []
        render = getattr(self.icon, "render_at", None)
        return [argb_pixmap(render(size) if render else image.resize((size, size)))
                for size in PIXMAP_SIZES]  # fmt: skip

    def _publish(self, dirty: set[str]) -> list[tuple[str, str, str, list[Any]]]:
        """Bring the published state up to date; the signals that say what changed."""
        out: list[tuple[str, str, str, list[Any]]] = []
        if "icon" in dirty:
            pixmaps = self._render()
            if pixmaps != self.pixmaps:
                self.pixmaps = pixmaps
                out.append(("NewIcon", "", ITEM_PATH, []))
        if "title" in dirty:
            title = self._title_text()
            if title != self.title:
                self.title = title
                out += [("NewTitle", "", ITEM_PATH, []), ("NewToolTip", "", ITEM_PATH, [])]
        status = self._status_text()
        if status != self.status:
            self.status = status
            out.append(("NewStatus", "s", ITEM_PATH, [status]))
        if "menu" in dirty:
            changes = self.model.update(self.icon.menu)
            if changes.layout_parent is not None:
                out.append(("LayoutUpdated", "ui", MENU_PATH,
                            [self.model.revision, changes.layout_parent]))  # fmt: skip
            if changes.updated or changes.removed:
                updated = [[i, {k: Variant(*v) for k, v in p.items()}] for i, p in changes.updated]
                removed = [[i, names] for i, names in changes.removed]
                out.append(("ItemsPropertiesUpdated", "a(ia{sv})a(ias)", MENU_PATH,
                            [updated, removed]))  # fmt: skip
        return out

    def _send(self, bus: MessageBus, signals: list[tuple[str, str, str, list[Any]]]) -> list[Any]:
        futures = []
        for member, signature, path, body in signals:
            interface = MENU_IFACE if path == MENU_PATH else ITEM_IFACE
            message = Message.new_signal(path, interface, member, signature, body)
            future = bus.send(message)
            future.add_done_callback(_seen)  # a bus that went away: the reconnect says so
            futures.append(future)
            self.signals += 1
        return futures

    def menu_opening(self) -> bool:
        """AboutToShow: bring the menu up to date now; whether it changed (the host then reads
        the layout again)."""
        self._dirty.discard("menu")
        signals = self._publish({"menu"})
        if self.bus is not None and signals:
            self._send(self.bus, signals)
        return bool(signals)

    async def _pump(self, bus: MessageBus) -> None:
        """Send what changed: one round at most every MIN_INTERVAL, and the next round only once
        this one has left the socket (back-pressure)."""
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        last = 0.0
        while True:
            await self._wake.wait()
            delay = last + MIN_INTERVAL - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)  # what comes meanwhile joins this round
            self._wake.clear()
            dirty, self._dirty = self._dirty, set()
            last = loop.time()
            signals = self._publish(dirty)
            if signals:
                self.rounds += 1
                await asyncio.gather(*self._send(bus, signals))

    # -- what the host asks for --------------------------------------------------------------------

    def activate(self) -> None:
        for item in self.model.items.values():
            if getattr(item, "default", False) and item.enabled:
                self._run_action(item)
                return

    def click(self, ident: int) -> None:
        item = self.model.items.get(ident)
        if item is not None and item.enabled and not item.submenu:
            self._run_action(item)

    def _run_action(self, item: Any) -> None:
        # off the bus loop: an action may take a while, and must never block the host's call
        threading.Thread(target=lambda: item(self.icon), name="uvsweep-sni-action",
                         daemon=True).start()  # fmt: skip

    # -- the bus -----------------------------------------------------------------------------------

    async def run(self) -> None:
        """Connect, serve, and reconnect with backoff whenever the connection is lost, until
        `stop()`."""
        self._wake = asyncio.Event()
        self._main = asyncio.current_task()
        delay = BACKOFF[0]
        lost = False
        while not self._stopping:
            try:
                bus = await self._connect()
            except Exception as err:  # noqa: BLE001 - no bus yet: try again later
                if not lost:
                    log.warning("cannot reach the session bus (%s); trying again", err)
                    lost = True
                    self._problem("the session bus is unreachable; retrying")
                await asyncio.sleep(delay)
                delay = min(delay * 2, BACKOFF[1])
                continue
            if lost:
                log.warning("reconnected to the session bus; the tray icon is back")
                self._problem("")
            delay, lost = BACKOFF[0], False
            pump = asyncio.get_running_loop().create_task(self._pump(bus))
            error: BaseException | None = None
            try:
                await _disconnected(bus)
            except Exception as err:  # noqa: BLE001 - how it ended is only told
                error = err
            finally:
                with contextlib.suppress(Exception):
                    bus.disconnect()  # dbus-fast leaves the socket open when the peer went away
                pump.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await pump
                if self._paced is not None:
                    self.bytes_sent += self._paced.sent
                    self._paced = None
                self.bus = None
                self.registered = False
            if not self._stopping:
                lost = True
                log.warning("lost the session bus connection (%s); reconnecting",
                            repr(error) if error else "closed")  # fmt: skip
                self._problem("session bus lost; reconnecting")
                await asyncio.sleep(delay)

    def _problem(self, text: str) -> None:
        if self.on_problem is not None:
            try:
                self.on_problem(text)
            except Exception:
                log.exception("reporting the bus state failed")

    async def _connect(self) -> MessageBus:
        if self.bus_address:
            bus = MessageBus(bus_address=self.bus_address)
        else:
            bus = MessageBus(bus_type=BusType.SESSION)
        try:
            await bus.connect()
            paced = pace(bus)  # dbus-fast makes its writer in connect(); nothing written yet
            # what the host reads first is current
            self._dirty.clear()
            self.pixmaps = self._render()
            self.title, self.status = self._title_text(), self._status_text()
            self.model.update(self.icon.menu)
            bus.export(ITEM_PATH, ItemInterface(self))
            bus.export(MENU_PATH, MenuInterface(self))
            bus.add_message_handler(self._on_message)
            rule = (
                "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',"
                f"member='NameOwnerChanged',arg0='{REGISTRY}'"
            )
            await bus.call(Message(
                destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus", member="AddMatch", signature="s", body=[rule],
            ))  # fmt: skip
            self.bus, self._paced = bus, paced
            self.connections += 1
            await self.register()
        except BaseException:
            bus.disconnect()
            raise
        return bus

    async def register(self) -> bool:
        """Register with the StatusNotifierWatcher; whether one took it."""
        bus = self.bus
        if bus is None or bus.unique_name is None:
            return False
        reply = await bus.call(Message(
            destination=REGISTRY, path="/StatusNotifierWatcher", interface=REGISTRY,
            member="RegisterStatusNotifierItem", signature="s", body=[bus.unique_name],
        ))  # fmt: skip
        self.registered = reply is not None and reply.message_type == MessageType.METHOD_RETURN
        if not self.registered:
            log.info("no StatusNotifierWatcher answered; waiting for one to appear")
        return self.registered

    def _on_message(self, message: Message) -> None:
        if (message.message_type == MessageType.SIGNAL and message.member == "NameOwnerChanged"
                and message.body and message.body[0] == REGISTRY):  # fmt: skip
            if message.body[2]:  # a (new) registry: register with it
                task = asyncio.get_running_loop().create_task(self.register())
                task.add_done_callback(_quiet_task_end)
            else:
                self.registered = False

    def stop(self) -> None:
        """End `run()` (on the loop's thread)."""
        self._stopping = True
        if self._main is not None:
            self._main.cancel()

    async def close(self) -> None:
        """Disconnect for good (after `run()` ended or was cancelled), and log what was sent."""
        self._stopping = True
        log.info("StatusNotifierItem: %d connection(s), %d update rounds, %d signals, %d bytes"
                 " sent on the bus", self.connections, self.rounds, self.signals,
                 self.sent)  # fmt: skip
        bus, self.bus = self.bus, None
        if bus is not None:
            bus.disconnect()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(_disconnected(bus), 1.0)


def _seen(future: "asyncio.Future[Any]") -> None:
    """Retrieve a send's outcome, so a failed one is not reported again when collected."""
    if not future.cancelled():
        future.exception()


def _disconnected(bus: MessageBus) -> Awaitable[None]:
    """`bus.wait_for_disconnect()` (not annotated in dbus-fast)."""
    return bus.wait_for_disconnect()  # type: ignore[no-untyped-call]


def _quiet_task_end(task: "asyncio.Task[Any]") -> None:
    """A registration that failed because the bus went away: the reconnect says so."""
    if not task.cancelled() and task.exception() is not None:
        log.debug("registration failed: %s", task.exception())


def _quiet_when_the_bus_is_gone(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """A write to a bus that went away fails in futures nobody awaits (replies): the reconnect
    says that once; it is not said again for each of them."""
    if isinstance(context.get("exception"), (OSError, EOFError)):
        return
    loop.default_exception_handler(context)


def registry_present(timeout: float = 1.0, bus_address: str | None = None) -> bool:
    """Whether a StatusNotifierWatcher is on the session bus (for the backend chooser)."""
    if not (bus_address or os.environ.get("DBUS_SESSION_BUS_ADDRESS")):
        return False

    async def ask() -> bool:
        bus = await (MessageBus(bus_address=bus_address) if bus_address else
                     MessageBus(bus_type=BusType.SESSION)).connect()  # fmt: skip
        try:
            reply = await bus.call(Message(
                destination="org.freedesktop.DBus", path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus", member="NameHasOwner", signature="s",
                body=[REGISTRY],
            ))  # fmt: skip
            return bool(reply and reply.body and reply.body[0])
        finally:
            bus.disconnect()
            with contextlib.suppress(Exception):  # closed for good: no socket left to the GC
                await _disconnected(bus)

    try:
        return asyncio.run(asyncio.wait_for(ask(), timeout))
    except Exception:  # noqa: BLE001 - no bus, no answer: no registry
        return False


def icon_class() -> Any:
    """A pystray Icon class that shows itself through StatusNotifierItem."""
    from pystray import _base

    class SniIcon(_base.Icon):  # type: ignore[misc]
        HAS_MENU = True
        HAS_DEFAULT_ACTION = True
        HAS_MENU_RADIO = False
        HAS_NOTIFICATION = False

        def __init__(self, *args: Any, bus_address: str | None = None, **kwargs: Any) -> None:
            self.needs_attention = False
            #: told "" or what is wrong with the bus connection (on the loop's thread)
            self.on_problem: Callable[[str], None] | None = None
            self._loop: asyncio.AbstractEventLoop | None = None
            self._loop_thread: threading.Thread | None = None
            self._service: SniService | None = None
            self._bus_address = bus_address
            self._stopped = threading.Event()
            self._detached: threading.Thread | None = None
            super().__init__(*args, **kwargs)

        @property
        def service(self) -> SniService | None:
            """The D-Bus side (for tests and benchmarks: its counters)."""
            return self._service

        def _mark(self, what: str) -> None:
            loop, service = self._loop, self._service
            if loop is None or service is None:
                return  # not running yet: the first connection publishes everything
            if threading.current_thread() is self._loop_thread:
                service.mark(what)
            else:
                with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                    loop.call_soon_threadsafe(service.mark, what)

        def _show(self) -> None:
            self._mark("icon")

        def _hide(self) -> None:
            pass

        def _update_icon(self) -> None:
            self._mark("icon")

        def _update_title(self) -> None:
            self._mark("title")

        def _update_menu(self) -> None:
            self._mark("menu")

        def reshow(self) -> None:
            """Register again (a second `uvsweep` asked us to show ourselves)."""
            loop, service = self._loop, self._service
            if loop is not None and service is not None:

                def again() -> None:
                    task = loop.create_task(service.register())
                    task.add_done_callback(_quiet_task_end)

                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(again)

        def _problem(self, text: str) -> None:
            if self.on_problem is not None:
                self.on_problem(text)

        def _run(self) -> None:
            loop = asyncio.new_event_loop()
            loop.set_exception_handler(_quiet_when_the_bus_is_gone)
            service = SniService(self, self._bus_address, on_problem=self._problem)
            self._loop_thread = threading.current_thread()
            self._service, self._loop = service, loop
            main = loop.create_task(service.run())
            self._mark_ready()
            try:
                if not self._stopped.is_set():
                    loop.run_until_complete(main)
            except asyncio.CancelledError:
                pass
            finally:
                main.cancel()
                with contextlib.suppress(BaseException):
                    loop.run_until_complete(main)
                loop.run_until_complete(service.close())
                self._loop = None
                loop.close()

        def _run_detached(self) -> None:
            self._detached = threading.Thread(target=self._run, name="uvsweep-sni", daemon=True)
            self._detached.start()

        def stop(self) -> None:
            self._stopped.set()  # also before the loop runs (pystray's stop() would not stop)
            if not self._running:
                self._stop()
            super().stop()

        def _stop(self) -> None:
            self._stopped.set()
            loop, service = self._loop, self._service
            if loop is not None and service is not None:
                with contextlib.suppress(RuntimeError):
                    loop.call_soon_threadsafe(service.stop)
            detached = self._detached
            if detached is not None and detached is not threading.current_thread():
                detached.join(2)

        def _notify(self, message: str, title: str | None = None) -> None:
            pass

        def _remove_notification(self) -> None:
            pass

    return SniIcon
