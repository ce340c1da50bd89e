"""Render every form of the icon art from one master, drawn by `uvsweep.tray.art`.

Run: `uv run python assets/render.py [OUTDIR]` (default: this folder). Writes:
- `uvsweep-master.png`: the 1024 px master
- `icons/uvsweep-<N>.png`: the PNG sizes trays and launchers ask for
- `uvsweep.ico`: Windows, 16 to 256 px in one file
- `uvsweep.icns`: macOS, 16 to 1024 px in one file
- `uvsweepTemplate.png` and `uvsweepTemplate@2x.png`: the macOS menu-bar template (black with
  alpha; macOS tints it for light and dark menu bars)
- `hicolor/<N>x<N>/apps/uvsweep.png`: the freedesktop icon theme set for Linux

The tray draws its own icon, with the badge, at run time from the same code.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "app"))

from PIL import Image  # noqa: E402

from uvsweep.tray import art  # noqa: E402

PNG_SIZES = (16, 20, 22, 24, 32, 40, 48, 64, 128, 256, 512)
ICO_SIZES = (16, 20, 24, 32, 40, 48, 64, 128, 256)
ICNS_SIZES = (16, 32, 64, 128, 256, 512, 1024)
HICOLOR_SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)


def template(size: int) -> Image.Image:
    """The glyph's shape in black, with its alpha: a macOS template image."""
    glyph = art.glyph(size)
    black = Image.new("RGBA", glyph.size, (0, 0, 0, 255))
    black.putalpha(glyph.getchannel("A"))
    return black


def render(out: Path) -> list[Path]:
    """Write every form into `out`; the files written."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    master = art.glyph(1024)
    master.save(out / "uvsweep-master.png", optimize=True)
    written.append(out / "uvsweep-master.png")
    (out / "icons").mkdir(exist_ok=True)
    for size in PNG_SIZES:
        path = out / "icons" / f"uvsweep-{size}.png"
        art.glyph(size).save(path, optimize=True)
        written.append(path)
    # each size drawn at its size (not one image scaled down by the encoder)
    ico = [art.glyph(size) for size in ICO_SIZES]
    ico[-1].save(out / "uvsweep.ico", format="ICO", sizes=[(s, s) for s in ICO_SIZES],
                 append_images=ico[:-1])  # fmt: skip
    written.append(out / "uvsweep.ico")
    icns = [art.glyph(size) for size in ICNS_SIZES]
    icns[-1].save(out / "uvsweep.icns", format="ICNS", append_images=icns[:-1])
    written.append(out / "uvsweep.icns")
    for name, size in (("uvsweepTemplate.png", 22), ("uvsweepTemplate@2x.png", 44)):
        template(size).save(out / name, optimize=True)
        written.append(out / name)
    for size in HICOLOR_SIZES:
        folder = out / "hicolor" / f"{size}x{size}" / "apps"
        folder.mkdir(parents=True, exist_ok=True)
        art.glyph(size).save(folder / "uvsweep.png", optimize=True)
        written.append(folder / "uvsweep.png")
    return written


def main() -> None:
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE
    written = render(out)
    print(f"wrote {len(written)} files under {out}")


if __name__ == "__main__":
    main()
