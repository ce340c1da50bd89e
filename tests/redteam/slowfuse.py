"""A tiny FUSE file system (one flat dir, empty files) whose daemon can be slow for one process.

Run as root: `python slowfuse.py MOUNTPOINT`. It mounts itself (`/dev/fuse`, `default_permissions`,
`allow_other`), says `mounted`, and serves until its stdin ends (then it unmounts). Lines on stdin:
- `stall PID`: a permission refresh (`GETATTR` of a file, which the kernel sends from inside
  `open()`, after the path lookup and before the open file description is counted: `may_open` ->
  `fuse_permission`) asked by process PID is not answered; the daemon says `held` on stdout;
- `release`: the held requests are answered (`released`);
- `autorelease MS`: the held requests are answered MS milliseconds after the daemon has answered
  the next `UNLINK` (an open held for a given time past a cleaner's unlink; nothing is said).

This is what a FUSE daemon under load does to every open whose cached attributes are stale
(fuse-overlayfs in a rootless container, sshfs, any passthrough file system): it answers late.
Locks are the kernel's own (no `FUSE_POSIX_LOCKS`/`FUSE_FLOCK_LOCKS`), as for most FUSE mounts.
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
import stat
import struct
import sys
import time

IN_HEADER = struct.Struct("<IIQQIIIHH")
OUT_HEADER = struct.Struct("<IiQ")
ATTR = struct.Struct("<QQQQQQIIIIIIIIII")
ROOT = 1

LOOKUP, FORGET, GETATTR, SETATTR, MKNOD, UNLINK, OPEN = 1, 2, 3, 4, 8, 10, 14
STATFS, RELEASE, FLUSH, INIT, OPENDIR, READDIR, RELEASEDIR = 17, 18, 25, 26, 27, 28, 29
CREATE, INTERRUPT, DESTROY, BATCH_FORGET = 35, 36, 38, 42
SILENT = {FORGET, BATCH_FORGET, INTERRUPT}  # no reply


class Node:
    def __init__(self, ino: int, mode: int, uid: int, gid: int) -> None:
        self.ino, self.mode, self.uid, self.gid = ino, mode, uid, gid
        self.nlink = 2 if stat.S_ISDIR(mode) else 1
        self.time = time.time()

    def attr(self) -> bytes:
        sec = int(self.time)
        nsec = int((self.time - sec) * 1e9)
        return ATTR.pack(self.ino, 0, 0, sec, sec, sec, nsec, nsec, nsec, self.mode,
                         self.nlink, self.uid, self.gid, 0, 4096, 0)  # fmt: skip


class SlowFuse:
    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.nodes: dict[int, Node] = {ROOT: Node(ROOT, stat.S_IFDIR | 0o1777, 0, 0)}
        self.names: dict[str, int] = {}
        self.next_ino = 2
        self.stalled: int | None = None
        self.held: list[tuple[int, int]] = []  # (unique, nodeid)
        self.autorelease: float | None = None  # seconds after the next UNLINK
        self.release_at: float | None = None  # (time.monotonic)

    def reply(self, unique: int, error: int = 0, body: bytes = b"") -> None:
        data = OUT_HEADER.pack(OUT_HEADER.size + len(body), -error, unique) + body
        try:
            os.write(self.fd, data)
        except OSError as err:
            if err.errno != errno.ENOENT:  # the request was interrupted meanwhile
                raise

    def entry(self, nodeid: int) -> bytes:
        # the name is trusted for an hour, the attributes never: every permission check of an
        # open asks the daemon again (as after any attribute timeout)
        return struct.pack("<QQQQII", nodeid, 0, 3600, 0, 0, 0) + self.nodes[nodeid].attr()

    def attr_out(self, nodeid: int) -> bytes:
        return struct.pack("<QII", 0, 0, 0) + self.nodes[nodeid].attr()

    def make(self, name: str, mode: int, uid: int, gid: int) -> int:
        nodeid = self.next_ino
        self.next_ino += 1
        self.nodes[nodeid] = Node(nodeid, mode, uid, gid)
        self.names[name] = nodeid
        return nodeid

    def handle(self, data: bytes) -> None:
        _len, opcode, unique, nodeid, uid, gid, pid, _ext, _pad = IN_HEADER.unpack_from(data)
        arg = data[IN_HEADER.size :]
        if opcode in SILENT:
            return
        if opcode == INIT:
            # (whatever the kernel offers: protocol 7.31, no flags, the kernel's own locks)
            body = struct.pack("<IIIIHHIIHHI", 7, 31, 0, 0, 16, 12, 131072, 1, 0, 0, 0)
            self.reply(unique, 0, body + bytes(28))
        elif opcode == LOOKUP:
            name = arg.split(b"\0")[0].decode()
            if name in self.names:
                self.reply(unique, 0, self.entry(self.names[name]))
            else:
                self.reply(unique, errno.ENOENT)
        elif opcode == GETATTR:
            if nodeid not in self.nodes:
                self.reply(unique, errno.ENOENT)
            elif nodeid != ROOT and pid == self.stalled:
                self.held.append((unique, nodeid))
                print("held", flush=True)
            else:
                self.reply(unique, 0, self.attr_out(nodeid))
        elif opcode == SETATTR:
            valid = struct.unpack_from("<I", arg)[0]
            mode, _u4, new_uid, new_gid = struct.unpack_from("<IIII", arg, 68)
            node = self.nodes[nodeid]
            if valid & 1:  # FATTR_MODE
                node.mode = stat.S_IFMT(node.mode) | stat.S_IMODE(mode)
            if valid & 2:  # FATTR_UID
                node.uid = new_uid
            if valid & 4:  # FATTR_GID
                node.gid = new_gid
            if valid & (16 | 32):  # FATTR_ATIME, FATTR_MTIME
                node.time = time.time()
            self.reply(unique, 0, self.attr_out(nodeid))
        elif opcode in (CREATE, MKNOD):
            flags, mode, umask = struct.unpack_from("<III", arg)
            if opcode == MKNOD:
                mode, flags = flags, 0
            name = arg[16:].split(b"\0")[0].decode()
            if name in self.names:
                self.reply(unique, errno.EEXIST)
                return
            new = self.make(name, stat.S_IFREG | (stat.S_IMODE(mode) & ~umask), uid, gid)
            body = self.entry(new)
            if opcode == CREATE:
                body += struct.pack("<QII", 0, 0, 0)
            self.reply(unique, 0, body)
        elif opcode == UNLINK:
            name = arg.split(b"\0")[0].decode()
            if name not in self.names:
                self.reply(unique, errno.ENOENT)
                return
            self.nodes[self.names.pop(name)].nlink = 0
            self.reply(unique)
            if self.autorelease is not None and self.release_at is None:
                self.release_at = time.monotonic() + self.autorelease
        elif opcode in (OPEN, OPENDIR):
            self.reply(unique, 0, struct.pack("<QII", 0, 0, 0))
        elif opcode in (RELEASE, RELEASEDIR, FLUSH):
            self.reply(unique)
        elif opcode == READDIR:
            offset, size = struct.unpack_from("<QQI", arg)[1:]
            entries = [(".", ROOT, stat.S_IFDIR), ("..", ROOT, stat.S_IFDIR)]
            entries += [(n, i, stat.S_IFREG) for n, i in sorted(self.names.items())]
            body = b""
            for index in range(offset, len(entries)):
                name, ino, kind = entries[index]
                raw = name.encode()
                record = struct.pack("<QQII", ino, index + 1, len(raw), kind >> 12) + raw
                record += bytes(-len(record) % 8)
                if len(body) + len(record) > size:
                    break
                body += record
            self.reply(unique, 0, body)
        elif opcode == STATFS:
            self.reply(unique, 0, struct.pack("<QQQQQIII", 1000, 1000, 1000, 1000, 1000,
                                              4096, 255, 4096) + bytes(28))  # fmt: skip
        elif opcode == DESTROY:
            self.reply(unique)
            raise SystemExit(0)
        else:
            self.reply(unique, errno.ENOSYS)

    def command(self, line: str) -> None:
        word, _, rest = line.strip().partition(" ")
        if word == "stall":
            self.stalled = int(rest)
            print("stalling", flush=True)
        elif word == "release":
            self.release()
            print("released", flush=True)
        elif word == "autorelease":
            self.autorelease = float(rest) / 1000
            print("armed", flush=True)

    def release(self) -> None:
        self.stalled = self.autorelease = self.release_at = None
        held, self.held = self.held, []
        for unique, nodeid in held:
            self.reply(unique, 0, self.attr_out(nodeid))


def main(mountpoint: str) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open("/dev/fuse", os.O_RDWR | os.O_CLOEXEC)
    options = (
        f"fd={fd},rootmode=40000,user_id=0,group_id=0,allow_other,default_permissions"
    ).encode()
    ms_nosuid, ms_nodev = 2, 4
    if libc.mount(b"slowfuse", mountpoint.encode(), b"fuse", ms_nosuid | ms_nodev, options):
        raise OSError(ctypes.get_errno(), "mount")
    server = SlowFuse(fd)
    print("mounted", flush=True)
    pending = b""  # stdin read raw: several lines may come in one read
    try:
        while True:
            wait = None if server.release_at is None else server.release_at - time.monotonic()
            if wait is not None and wait <= 0:
                server.release()
                continue
            ready, _, _ = select.select([fd, 0], [], [], wait)
            if 0 in ready:
                chunk = os.read(0, 4096)
                if not chunk:
                    break
                pending += chunk
                while b"\n" in pending:
                    line, _, pending = pending.partition(b"\n")
                    server.command(line.decode())
            if fd in ready:
                try:
                    data = os.read(fd, 1 << 18)
                except OSError as err:
                    if err.errno in (errno.EINTR, errno.EAGAIN, errno.ENOENT):
                        continue
                    if err.errno == errno.ENODEV:  # unmounted
                        break
                    raise
                server.handle(data)
    finally:
        libc.umount2(mountpoint.encode(), 2)  # MNT_DETACH
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1]))
