"""Render the icon art: the master image and every PNG size, from `uvsweep.tray.art`.

Run: `uv run python assets/render.py`. Writes `assets/uvsweep-master.png` (1024 px) and
`assets/icons/uvsweep-<N>.png` for the sizes trays and launchers ask for. The tray itself draws
its icon (with the badge) at run time at the size each backend asks for, from the same code.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "app"))

from uvsweep.tray import art  # noqa: E402

SIZES = (16, 20, 22, 24, 32, 40, 48, 64, 128, 256, 512)


def main() -> None:
    art.glyph(1024).save(HERE / "uvsweep-master.png", optimize=True)
    out = HERE / "icons"
    out.mkdir(exist_ok=True)
    for size in SIZES:
        art.glyph(size).save(out / f"uvsweep-{size}.png", optimize=True)
    print(f"wrote {HERE / 'uvsweep-master.png'} and {len(SIZES)} sizes in {out}")


if __name__ == "__main__":
    main()
