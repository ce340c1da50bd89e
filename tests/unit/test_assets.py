"""Every icon form renders from the master: PNG sizes, .ico, .icns, the template, hicolor."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]


def load_render() -> object:
    spec = importlib.util.spec_from_file_location("render", ROOT / "assets" / "render.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_form_is_rendered(tmp_path: Path) -> None:
    render = load_render()
    written = render.render(tmp_path)  # type: ignore[attr-defined]
    assert all(p.exists() for p in written)
    with Image.open(tmp_path / "uvsweep.ico") as ico:
        assert {(16, 16), (20, 20), (24, 24), (32, 32), (48, 48), (256, 256)} <= set(
            ico.info["sizes"]
        )
    with Image.open(tmp_path / "uvsweep.icns") as icns:
        assert icns.size == (1024, 1024)
    with Image.open(tmp_path / "uvsweepTemplate@2x.png") as template:
        assert template.size == (44, 44) and template.mode == "RGBA"
        data = template.tobytes()
        colours = {data[i : i + 3] for i in range(0, len(data), 4) if data[i + 3]}
        assert colours == {b"\x00\x00\x00"}  # black and alpha only: macOS tints it
    for size in (16, 22, 24, 32, 48, 64, 128, 256, 512):
        with Image.open(tmp_path / "hicolor" / f"{size}x{size}" / "apps" / "uvsweep.png") as png:
            assert png.size == (size, size)


def test_the_committed_master_is_what_the_code_draws() -> None:
    from uvsweep.tray import art

    with Image.open(ROOT / "assets" / "uvsweep-master.png") as master:
        assert master.convert("RGBA").tobytes() == art.glyph(1024).tobytes()
