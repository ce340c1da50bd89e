"""uv's temp-dir lock names: the exact pattern, seahash, and Rust's `Hash` for `Path` and `str`.

uv names a lock file `uv-<16 hex>.lock`, where the hex is `cache_digest(key)`: seahash (default
seeds) over the bytes Rust's `Hash` impl feeds the hasher, printed as the u64's little-endian bytes.
Everything here is pure: no I/O, so it is the same on every OS and easy to property-test.
"""
# ruff: noqa: PLC0415 - imports inside functions: only the path that needs a module pays for it

from __future__ import annotations

import re
import struct
from enum import Enum

#: The one pattern uv's temp-dir lock files follow; nothing else in a temp dir is uv's.
LOCK_NAME_RE = re.compile(r"uv-(?:setuptools-)?[0-9a-f]{16}\.lock")

_MASK = (1 << 64) - 1
_P = 0x6EED0E9DA4D94A4F
_SEEDS = (0x16F11FE89B0D677C, 0xB480A793D8E6C86C, 0x6FE2E5AAF078EBC9, 0x14F994A4C5259381)


class PathStyle(Enum):
    """Which of Rust's `impl Hash for Path` rules to apply."""

    POSIX = "posix"
    WINDOWS = "windows"


def is_lock_name(name: str) -> bool:
    """True for exactly the names uv gives its temp-dir lock files."""
    return LOCK_NAME_RE.fullmatch(name) is not None


def digest_of(name: str) -> str | None:
    """The 16 hex digits of a lock name, or None when `name` is not one."""
    if not is_lock_name(name):
        return None
    return name[-21:-5]


def is_setuptools_name(name: str) -> bool:
    """True for the `uv-setuptools-*.lock` form (source-tree locks of uv's build frontend)."""
    return name.startswith("uv-setuptools-")


def _diffuse(x: int) -> int:
    x = (x * _P) & _MASK
    x ^= (x >> 32) >> (x >> 60)
    return (x * _P) & _MASK


def seahash(data: bytes) -> int:
    """seahash 4.x with default seeds: `seahash::hash(data)`, equal to its streaming form."""
    lanes = list(_SEEDS)
    size = len(data)
    whole = size - size % 8
    words = struct.unpack_from(f"<{whole // 8}Q", data)
    for index, word in enumerate(words):
        lane = index & 3
        lanes[lane] = _diffuse(lanes[lane] ^ word)
    if whole != size:
        lane = len(words) & 3
        lanes[lane] = _diffuse(lanes[lane] ^ int.from_bytes(data[whole:], "little"))
    return _diffuse(lanes[0] ^ lanes[1] ^ lanes[2] ^ lanes[3] ^ size)


def hex_digest(value: int) -> str:
    """uv's `to_hex`: the u64's eight little-endian bytes as lowercase hex."""
    return value.to_bytes(8, "little").hex()


def str_hash_bytes(key: str) -> bytes:
    """The bytes Rust's `impl Hash for str` writes: UTF-8, then one 0xFF byte."""
    return key.encode("utf-8", "surrogateescape") + b"\xff"


def _rotate_right_2(value: int) -> int:
    return ((value >> 2) | (value << 62)) & _MASK


def _component_bytes(body: bytes, seps: bytes, *, skip_cur_dir: bool) -> bytes:
    """The body of Rust's `impl Hash for Path`: components without separators, then chunk_bits."""
    out = bytearray()
    chunk_bits = 0
    start = 0
    for index, byte in enumerate(body):
        if byte not in seps:
            continue
        if index > start:
            out += body[start:index]
            chunk_bits = _rotate_right_2(chunk_bits + index - start)
        start = index + 1
        # A `.` right after a separator is skipped, as components() would drop it.
        if (
            skip_cur_dir
            and body[start : start + 1] == b"."
            and (start + 1 == len(body) or body[start + 1] in seps)
        ):
            start += 1
    if start < len(body):
        out += body[start:]
        chunk_bits = _rotate_right_2(chunk_bits + len(body) - start)
    out += struct.pack("<Q", chunk_bits)
    return bytes(out)


def _os_str(part: bytes) -> bytes:
    """What `impl Hash for OsStr` writes: `as_encoded_bytes()` hashed as a `[u8]` slice.

    Rust std (`library/std/src/ffi/os_str.rs`) hashes an `OsStr` through its encoded bytes, and
    `impl Hash for [u8]` writes the length first (`write_length_prefix`, a `usize`: eight
    little-endian bytes on 64-bit), then the bytes. The 0xFF/0xFE terminators belong to `str`
    and to the private WTF-8 type, never to an `OsStr` field of `Prefix`.
    """
    return struct.pack("<Q", len(part)) + part


def _next_component(path: bytes, seps: bytes) -> tuple[bytes, bytes]:
    for index, byte in enumerate(path):
        if byte in seps:
            return path[:index], path[index + 1 :]
    return path, b""


def _windows_prefix(path: bytes) -> tuple[bytes, int, bool] | None:
    """Rust's `parse_prefix` on Windows: (hash bytes of the Prefix, its length, verbatim)."""
    both, back = b"/\\", b"\\"
    head = path[:8].replace(b"/", b"\\")  # the first 8 bytes are read with `/` as `\`

    def disk(rest: bytes) -> int | None:
        if len(rest) >= 2 and rest[1:2] == b":" and rest[:1].isalpha() and rest[0] < 0x80:
            return rest[0] & ~0x20  # to_ascii_uppercase
        return None

    def variant(tag: int) -> bytes:
        return struct.pack("<q", tag)  # derived Hash writes the discriminant as an isize

    if head.startswith(b"\\\\"):
        if head.startswith(b"\\\\?\\") and b"/" not in path[:4]:
            rest = path[4:]
            if head.startswith(b"\\\\?\\UNC\\"):
                server, tail = _next_component(path[8:], back)
                share, _ = _next_component(tail, back)
                size = 8 + len(server) + (1 + len(share) if share else 0)
                return variant(1) + _os_str(server) + _os_str(share), size, True
            # `parse_drive_exact`: the byte after `C:` must be a verbatim separator (`\`) or absent
            letter = disk(rest) if len(rest) == 2 or rest[2:3] == b"\\" else None
            if letter is not None:
                return variant(2) + bytes([letter]), 6, True
            name, _ = _next_component(rest, back)
            return variant(0) + _os_str(name), 4 + len(name), True
        if head.startswith(b"\\\\.\\"):
            name, _ = _next_component(path[4:], both)
            return variant(3) + _os_str(name), 4 + len(name), False
        server, tail = _next_component(path[2:], both)
        share, _ = _next_component(tail, both)
        if server and share:
            size = 2 + len(server) + 1 + len(share)
            return variant(4) + _os_str(server) + _os_str(share), size, False
        return None
    letter = disk(path)
    if letter is not None:
        return variant(5) + bytes([letter]), 2, False
    return None


def path_hash_bytes(path: str | bytes, style: PathStyle = PathStyle.POSIX) -> bytes:
    """The exact bytes Rust's `impl Hash for Path` feeds a hasher for `path` on that OS family."""
    raw = path if isinstance(path, bytes) else path.encode("utf-8", "surrogateescape")
    if style is PathStyle.POSIX:
        return _component_bytes(raw, b"/", skip_cur_dir=True)
    prefix = _windows_prefix(raw)
    if prefix is None:
        return _component_bytes(raw, b"/\\", skip_cur_dir=True)
    prefix_bytes, size, verbatim = prefix
    seps = b"\\" if verbatim else b"/\\"
    return prefix_bytes + _component_bytes(raw[size:], seps, skip_cur_dir=not verbatim)


def path_digest(path: str | bytes, style: PathStyle = PathStyle.POSIX) -> str:
    """`cache_digest(&Path)`: the 16 hex digits uv derives from a Path key."""
    return hex_digest(seahash(path_hash_bytes(path, style)))


def str_digest(key: str) -> str:
    """`cache_digest(&str)`: the 16 hex digits uv derives from a string key (URL, script text)."""
    return hex_digest(seahash(str_hash_bytes(key)))


def lock_name(digest: str, *, setuptools: bool = False) -> str:
    """The file name uv gives the lock with this digest."""
    return f"uv-setuptools-{digest}.lock" if setuptools else f"uv-{digest}.lock"


def windows_verbatim(path: str) -> str:
    """What Rust's `fs::canonicalize` returns on Windows for a resolved path: a `\\\\?\\` path.

    `canonicalize` opens the file and asks `GetFinalPathNameByHandleW`, which answers in the
    verbatim form: `C:\\x` comes back as `\\\\?\\C:\\x` and `\\\\server\\share\\x` as
    `\\\\?\\UNC\\server\\share\\x`. `path` must already be absolute and resolved; paths that are
    verbatim already are returned as they are.
    """
    path = path.replace("/", "\\")
    if path.startswith("\\\\?\\"):
        return path
    if path.startswith("\\\\"):
        return "\\\\?\\UNC\\" + path[2:]
    return "\\\\?\\" + path


def windows_absolute(path: str, cwd: str) -> str:
    """Rust's `std::path::absolute` on Windows (`GetFullPathNameW`): `..` and `.` collapse.

    Unlike Unix, where `absolute` keeps `..`, Windows resolves the path lexically: separators
    become `\\`, `.` and `..` components are folded. Verbatim (`\\\\?\\`) paths are returned
    unchanged, as `GetFullPathNameW` is not called for them.
    """
    import ntpath  # pure string rules, importable on every OS

    if path.startswith("\\\\?\\"):
        return path
    return ntpath.normpath(ntpath.join(cwd, path))
