"""naming: the lock-name pattern, seahash, and Rust's Path/str hashing, against known vectors."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from uvsweep.naming import (
    PathStyle,
    digest_of,
    hex_digest,
    is_lock_name,
    lock_name,
    path_digest,
    path_hash_bytes,
    seahash,
    str_digest,
    str_hash_bytes,
)

# (Path key, digest) pairs: the first three from uv's docs for this project, the last two seen
# appear in a private TMPDIR when real uv 0.13.9 ran (interpreter and PEP 723 script locks).
KNOWN = [
    ("/usr/local", "1b696e695b7c17a7"),
    ("/usr", "b17927aca3d28934"),
    ("/tmp/uvlab/proj1", "b79920581bfcab3e"),
    ("/usr/bin/python3", "05f7b0856e340464"),
    ("/tmp/uvlab/s.py", "fc746045da44de75"),
]


@pytest.mark.parametrize(("key", "digest"), KNOWN)
def test_path_keys_hash_to_the_names_uv_uses(key: str, digest: str) -> None:
    assert path_digest(key) == digest


def test_seahash_matches_the_crates_published_vector() -> None:
    assert seahash(b"to be or not to be") == 1988685042348123509


def test_hex_digest_prints_little_endian_bytes() -> None:
    assert hex_digest(0x0102030405060708) == "0807060504030201"


@pytest.mark.parametrize(
    "name",
    ["uv-1b696e695b7c17a7.lock", "uv-setuptools-0123456789abcdef.lock"],
)
def test_lock_names_match(name: str) -> None:
    assert is_lock_name(name)
    assert digest_of(name) == name[-21:-5]


@pytest.mark.parametrize(
    "name",
    [
        "uv-1B696E695B7C17A7.lock",  # uppercase hex
        "uv-1b696e695b7c17a.lock",  # 15 digits
        "uv-1b696e695b7c17a7a.lock",  # 17 digits
        ".tmpAbC123",  # uv's temp sibling during creation
        "uv-1b696e695b7c17a7.lock.tmp",
        "uv-1b696e695b7c17a7.lock\n",
        "uv-setuptools-1b696e695b7c17a.lock",
        "xuv-1b696e695b7c17a7.lock",
        "uv-1b696e695b7c17g7.lock",
    ],
)
def test_near_miss_names_do_not_match(name: str) -> None:
    assert not is_lock_name(name)
    assert digest_of(name) is None


def test_str_keys_append_ff_and_differ_from_path_keys() -> None:
    assert str_hash_bytes("ab") == b"ab\xff"
    assert str_digest("/usr/local") != path_digest("/usr/local")


components = st.lists(
    st.text(alphabet=string.ascii_letters + string.digits + "_-é ", min_size=1, max_size=8).filter(
        lambda c: c not in (".", "..")
    ),
    min_size=1,
    max_size=6,
)


@given(components)
def test_redundant_separators_and_dot_components_do_not_change_the_hash(parts: list[str]) -> None:
    plain = "/" + "/".join(parts)
    noisy = "//" + "/./".join(parts) + "/."
    assert path_digest(noisy) == path_digest(plain)
    assert path_digest(plain + "/") == path_digest(plain)


@given(components)
def test_parent_components_are_kept(parts: list[str]) -> None:
    plain = "/" + "/".join(parts)
    assert path_digest(plain + "/../x") != path_digest(plain + "/x")


@given(components, components)
def test_component_boundaries_matter(left: list[str], right: list[str]) -> None:
    # ["ab", "c"] and ["a", "bc"] feed the same bytes; chunk_bits must tell them apart.
    joined = "".join(left)
    if len(joined) > 1:
        assert path_digest("/" + joined) != path_digest("/" + joined[:1] + "/" + joined[1:])


@given(st.binary(max_size=80), st.binary(max_size=80))
def test_seahash_depends_on_every_byte_and_the_length(a: bytes, b: bytes) -> None:
    # A broken tail, lane or length step collides on inputs like b"" vs b"\0" or one byte apart.
    assert 0 <= seahash(a) < 2**64
    if a != b:
        assert seahash(a) != seahash(b)
    assert seahash(a) != seahash(a + b"\0")


@given(components)
def test_every_digest_makes_a_valid_lock_name(parts: list[str]) -> None:
    digest = path_digest("/" + "/".join(parts))
    assert re.fullmatch(r"[0-9a-f]{16}", digest)
    assert is_lock_name(lock_name(digest))
    assert is_lock_name(lock_name(digest, setuptools=True))


# ---- Windows rules ---------------------------------------------------------------------------

W = PathStyle.WINDOWS


@given(components)
def test_windows_treats_both_slashes_as_separators(parts: list[str]) -> None:
    assert path_digest("C:\\" + "\\".join(parts), W) == path_digest("C:/" + "/".join(parts), W)


def test_windows_drive_letters_are_case_insensitive_but_the_rest_is_not() -> None:
    assert path_digest("c:\\Users\\me", W) == path_digest("C:\\Users\\me", W)
    assert path_digest("C:\\users\\me", W) != path_digest("C:\\Users\\me", W)


def test_windows_prefix_kinds_hash_differently() -> None:
    keys = [
        "C:\\x\\y",
        "\\\\?\\C:\\x\\y",
        "\\\\server\\share\\x\\y",
        "\\\\?\\UNC\\server\\share\\x\\y",
        "\\\\.\\pipe\\x\\y",
        "\\x\\y",
    ]
    assert len({path_digest(key, W) for key in keys}) == len(keys)


def test_verbatim_paths_do_not_split_on_forward_slash_or_skip_dots() -> None:
    assert path_digest("\\\\?\\C:\\a/b", W) != path_digest("\\\\?\\C:\\a\\b", W)
    assert path_digest("\\\\?\\C:\\a\\.\\b", W) != path_digest("\\\\?\\C:\\a\\b", W)
    assert path_digest("C:\\a\\.\\b", W) == path_digest("C:\\a\\b", W)


def test_windows_disk_prefix_bytes_are_the_discriminant_then_the_letter() -> None:
    # derived Hash: isize discriminant (Disk = 5), then the upper-cased drive letter
    assert path_hash_bytes("c:", W).startswith((5).to_bytes(8, "little") + b"C")


def test_posix_rules_do_not_know_drive_letters() -> None:
    assert path_digest("C:/x") != path_digest("C:/x", W)


# Bytes Rust's derived `impl Hash for Prefix` writes, recorded with rustc 1.95 on Linux: a Hasher
# that keeps every `write` was fed `Prefix::X(..)` values built directly (the enum is public, so
# no Windows is needed). Discriminant as an isize, each `OsStr` as `[u8]`: length, then bytes.
RUST_PREFIX_BYTES = {
    "\\\\?\\Volume{x}\\a": "00000000000000000900000000000000566f6c756d657b787d",
    "\\\\?\\UNC\\srv\\shr\\a": "010000000000000003000000000000007372760300000000000000736872",
    "\\\\?\\UNC\\srv": "010000000000000003000000000000007372760000000000000000",
    "\\\\?\\C:\\a": "020000000000000043",
    "\\\\.\\pipe\\a": "0300000000000000040000000000000070697065",
    "\\\\server\\share\\a": "04000000000000000600000000000000736572766572050000000000000073"
    "68617265",
    "c:\\a": "050000000000000043",
}


@pytest.mark.parametrize(("path", "prefix_hex"), RUST_PREFIX_BYTES.items())
def test_windows_prefixes_hash_as_rust_std_does(path: str, prefix_hex: str) -> None:
    prefix = bytes.fromhex(prefix_hex)
    data = path_hash_bytes(path, W)
    assert data.startswith(prefix)
    # what follows the prefix is the ordinary component walk over the rest of the path
    tail = "\\a" if path.endswith("\\a") else ""
    assert data[len(prefix) :] == path_hash_bytes(tail, W)


def test_unc_and_verbatim_unc_keys_use_length_prefixed_os_str_fields() -> None:
    # a server/share split that keeps the same bytes must still change the hash
    assert path_digest("\\\\ab\\c\\x", W) != path_digest("\\\\a\\bc\\x", W)
    assert path_digest("\\\\?\\UNC\\ab\\c\\x", W) != path_digest("\\\\?\\UNC\\a\\bc\\x", W)


def test_a_verbatim_disk_needs_a_backslash_after_the_colon() -> None:
    # `parse_drive_exact`: `\\?\C:/x` is `Verbatim("C:/x")`, not `VerbatimDisk(C)`
    data = path_hash_bytes("\\\\?\\C:/x", W)
    assert data.startswith((0).to_bytes(8, "little") + (4).to_bytes(8, "little") + b"C:/x")
