"""What the idle tray keeps out of its memory (issue 14: idle RSS with SNI under 35 MB), each in a
fresh interpreter: OpenSSL (asyncio's `ssl`, hashlib's `_hashlib`), Pillow's format plugins,
`logging.handlers`; and glibc's per-thread malloc arenas."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.conftest import APP_DIR, need
from uvsweep.tray import art


def fresh(code: str, tmp_path: Path, *args: str) -> dict[str, Any]:
    """Run `code` in a new interpreter importing this tree; the JSON it prints last."""
    env = {**os.environ, "PYTHONPATH": APP_DIR, "XDG_STATE_HOME": str(tmp_path / "state")}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code), *args], env=env,
                          capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


def test_the_sni_backend_loads_no_openssl_and_still_hashes(tmp_path: Path) -> None:
    seen = fresh(
        """
        import json, sys
        import uvsweep.tray.sni
        loaded = sorted(n for n in ("ssl", "_ssl", "_hashlib") if sys.modules.get(n))
        blocked = sorted(n for n in ("ssl", "_ssl", "_hashlib") if n in sys.modules)
        import hashlib
        digest = hashlib.sha256(b"uvsweep").hexdigest()
        import asyncio.sslproto
        import ssl  # whoever needs TLS later still gets it
        print(json.dumps({"loaded": loaded, "blocked": blocked, "digest": digest,
                          "asyncio_tls": asyncio.sslproto.ssl is not None,
                          "ssl_later": hasattr(ssl, "create_default_context")}))
        """,
        tmp_path,
    )
    assert seen["loaded"] == [] and seen["blocked"] == []
    # the same digest as OpenSSL's (this process has it: pytest imported hashlib first)
    assert seen["digest"] == hashlib.sha256(b"uvsweep").hexdigest()
    assert seen["asyncio_tls"] is False
    assert seen["ssl_later"] is True


def test_without_openssl_changes_nothing_once_asyncio_is_loaded(tmp_path: Path) -> None:
    seen = fresh(
        """
        import json, sys
        import asyncio, hashlib
        from uvsweep.tray.lean import without_openssl
        with without_openssl() as blocked:
            pass
        print(json.dumps({"blocked": blocked, "ssl": "ssl" in sys.modules}))
        """,
        tmp_path,
    )
    assert seen == {"blocked": [], "ssl": True}


def test_the_notification_icon_is_written_without_pillows_plugins(tmp_path: Path) -> None:
    seen = fresh(
        """
        import json, sys
        from uvsweep.tray.app import icon_file
        path = icon_file()
        plugins = sorted(n for n in sys.modules if n.startswith("PIL.") and n.endswith("Plugin"))
        print(json.dumps({"path": path, "plugins": plugins}))
        """,
        tmp_path,
    )
    assert seen["plugins"] == []
    path = seen["path"]
    assert isinstance(path, str) and path.startswith(str(tmp_path / "state"))
    with Image.open(path) as written:
        assert written.format == "PNG"
        assert written.convert("RGBA").tobytes() == art.render(64).tobytes()


def test_png_holds_the_exact_pixels(tmp_path: Path) -> None:
    for size, count in ((16, 0), (24, 7), (64, 150), (33, 3)):
        image = art.render(size, count, attention=True, mark="error")
        path = tmp_path / f"icon-{size}.png"
        path.write_bytes(art.png(image))
        with Image.open(path) as back:
            back.load()
            assert back.format == "PNG" and back.mode == "RGBA" and back.size == (size, size)
            assert back.tobytes() == image.tobytes()


def test_the_log_file_needs_no_logging_handlers(tmp_path: Path) -> None:
    seen = fresh(
        f"""
        import json, logging, sys
        from uvsweep.tray import logfile
        logfile.setup({str(tmp_path / "log" / "uvsweep.log")!r})
        logging.getLogger("uvsweep.tray").info("started")
        logfile.close()
        print(json.dumps({{"handlers": "logging.handlers" in sys.modules,
                           "pickle": "pickle" in sys.modules}}))
        """,
        tmp_path,
    )
    assert seen == {"handlers": False, "pickle": False}
    assert "started" in (tmp_path / "log" / "uvsweep.log").read_text()


ARENAS = """
    import ctypes, json, os, sys, threading
    from uvsweep.tray import lean
    told = lean.one_malloc_arena() if sys.argv[-1] == "one" else None
    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
    libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
    libc.fclose.argtypes = [ctypes.c_void_p]
    held = []
    def allocate():
        held.extend(libc.malloc(4000) for _ in range(100))  # below the mmap threshold
    threads = [threading.Thread(target=allocate) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out = os.environ["XDG_STATE_HOME"] + ".xml"
    handle = libc.fopen(out.encode(), b"w")
    libc.malloc_info(0, handle)
    libc.fclose(handle)
    print(json.dumps({"told": told, "heaps": open(out).read().count("<heap nr=")}))
"""


@pytest.mark.linux
def test_one_malloc_arena_keeps_every_thread_in_the_main_arena(tmp_path: Path) -> None:
    need(sys.platform.startswith("linux") and "glibc" in " ".join(platform.libc_ver()),
         "glibc (malloc_info)")  # fmt: skip
    default = fresh(ARENAS + "\n", tmp_path, "default")
    assert default["heaps"] > 1  # the threads made arenas of their own
    one = fresh(ARENAS + "\n", tmp_path, "one")
    assert one == {"told": True, "heaps": 1}
