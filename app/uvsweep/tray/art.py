"""The tray icon and its badge, drawn with Pillow at exactly the size a backend asks for (pure).

The glyph is a padlock with a sweeping stroke, drawn at 4x and reduced, so it is crisp at 16 px
and at 2x alike rather than a stretched bitmap. The badge counts orphaned lock files: nothing at
0, then 1 to 99, then `99+`, white on red in the top-right corner, its digits drawn at the final
size so they stay sharp. A small amber dot in the bottom-right corner says that something needs
attention that cleanup cannot fix (foreign or suspicious files).

`assets/render.py` draws the master image and every packaged size with these same functions.
"""

from __future__ import annotations

import struct
import zlib

from PIL import Image, ImageDraw, ImageFont

INK = (124, 58, 237, 255)  # the glyph: violet
INK_DARK = (76, 29, 149, 255)
BADGE = (229, 72, 77, 255)  # red: orphaned files to clean
BADGE_TEXT = (255, 255, 255, 255)
ATTENTION = (245, 165, 36, 255)  # amber: foreign or suspicious files
OUTLINE = (255, 255, 255, 255)
SUPERSAMPLE = 4


def badge_text(count: int) -> str:
    """What the badge says: nothing at 0, the count up to 99, then `99+`."""
    if count <= 0:
        return ""
    return str(count) if count <= 99 else "99+"


def glyph(size: int) -> Image.Image:
    """The bare icon (no badge), RGBA, `size` x `size`."""
    big = size * SUPERSAMPLE
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    unit = big / 16
    # the shackle: a thick arc over the body
    stroke = max(1, round(2.2 * unit))
    draw.arc(
        (4.2 * unit, 1.2 * unit, 11.8 * unit, 9.5 * unit), start=180, end=360, fill=INK_DARK,
        width=stroke,
    )  # fmt: skip
    draw.line((4.2 * unit + stroke / 2, 5.4 * unit, 4.2 * unit + stroke / 2, 7.5 * unit),
              fill=INK_DARK, width=stroke)  # fmt: skip
    draw.line((11.8 * unit - stroke / 2, 5.4 * unit, 11.8 * unit - stroke / 2, 7.5 * unit),
              fill=INK_DARK, width=stroke)  # fmt: skip
    # the body
    draw.rounded_rectangle((2.2 * unit, 7 * unit, 13.8 * unit, 15.2 * unit), radius=2 * unit,
                           fill=INK)  # fmt: skip
    # the sweep: three light strokes across the body
    light = (255, 255, 255, 210)
    for index, y in enumerate((9.6, 11.3, 13.0)):
        x0 = (4.2 + index * 0.9) * unit
        draw.line((x0, y * unit, 11.8 * unit, (y - 0.9) * unit), fill=light,
                  width=max(1, round(0.9 * unit)))  # fmt: skip
    return image.resize((size, size), Image.Resampling.LANCZOS)


def _font(pixels: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=pixels)
    except (TypeError, OSError):  # pragma: no cover - Pillow without FreeType
        return ImageFont.load_default()


def _badge(image: Image.Image, text: str) -> None:
    size = image.width
    draw = ImageDraw.Draw(image)
    height = max(7, round(size * 0.62))
    font_px = max(6, round(height * (0.86 if len(text) == 1 else 0.78)))
    font = _font(font_px)
    while True:
        left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
        width = max(height, right - left + round(height * 0.45))
        if width <= size or font_px <= 5:
            break
        font_px -= 1
        font = _font(font_px)
    width = min(width, size)
    box = (size - width, 0, size - 1, height - 1)
    draw.rounded_rectangle(box, radius=height / 2, fill=BADGE, outline=OUTLINE,
                           width=max(1, size // 32))  # fmt: skip
    cx = size - width / 2
    cy = height / 2
    draw.text((cx - (left + right) / 2, cy - (top + bottom) / 2), text, font=font,
              fill=BADGE_TEXT)  # fmt: skip


def _attention(image: Image.Image) -> None:
    size = image.width
    draw = ImageDraw.Draw(image)
    diameter = max(5, round(size * 0.36))
    box = (size - diameter, size - diameter, size - 1, size - 1)
    draw.ellipse(box, fill=ATTENTION, outline=OUTLINE, width=max(1, size // 32))


#: The state marks, bottom-left: waiting for uv (blue), cleaning (green), something is wrong
#: (dark red, with a white bar).
MARKS = {"waiting": (37, 99, 235, 255), "cleaning": (22, 163, 74, 255), "error": (153, 27, 27, 255)}


def _mark(image: Image.Image, mark: str) -> None:
    size = image.width
    draw = ImageDraw.Draw(image)
    diameter = max(5, round(size * 0.4))
    box = (0, size - diameter, diameter - 1, size - 1)
    draw.ellipse(box, fill=MARKS[mark], outline=OUTLINE, width=max(1, size // 32))
    cx, cy, r = diameter / 2, size - diameter / 2, diameter / 2
    width = max(1, round(diameter / 6))
    if mark == "error":  # an exclamation mark
        draw.line((cx, cy - r * 0.5, cx, cy + r * 0.1), fill=OUTLINE, width=width)
        draw.point((round(cx), round(cy + r * 0.4)), fill=OUTLINE)
    elif mark == "waiting":  # clock hands
        draw.line((cx, cy, cx, cy - r * 0.55), fill=OUTLINE, width=width)
        draw.line((cx, cy, cx + r * 0.45, cy), fill=OUTLINE, width=width)
    else:  # cleaning: a sweep
        draw.line((cx - r * 0.5, cy + r * 0.3, cx + r * 0.5, cy - r * 0.3), fill=OUTLINE,
                  width=width)  # fmt: skip


def render(size: int, orphaned: int = 0, *, attention: bool = False,
           mark: str = "") -> Image.Image:  # fmt: skip
    """The tray icon at `size` px: the glyph, the badge for `orphaned`, the attention mark,
    and a state `mark` ("waiting", "cleaning", "error" or "")."""
    if size < 8:
        raise ValueError(f"icon size {size} is too small (8 px at least)")
    image = glyph(size)
    if attention:
        _attention(image)
    if mark:
        _mark(image, mark)
    text = badge_text(orphaned)
    if text:
        _badge(image, text)
    return image


def tooltip(orphaned: int, attention: int = 0) -> str:
    """`3 orphaned uv lock files`, or `No orphaned uv lock files`; plus what needs attention."""
    if orphaned <= 0:
        text = "No orphaned uv lock files"
    else:
        text = f"{orphaned} orphaned uv lock file" + ("" if orphaned == 1 else "s")
    if attention:
        text += f" ({attention} need{'s' if attention == 1 else ''} attention)"
    return text


def png(image: Image.Image) -> bytes:
    """`image` as a PNG file (8-bit RGBA, not interlaced).

    Written here rather than with `image.save(..., "PNG")`: Pillow's save first loads its common
    format plugins (BMP, GIF, JPEG, PPM, PNG, and with them `fractions` and `decimal`), about
    2 MB that would then stay in the long-running tray for one small file.
    """
    rgba = image.convert("RGBA")
    width, height = rgba.size
    raw = rgba.tobytes()
    stride = width * 4
    # filter type 0 (none) before each row
    rows = b"".join(b"\0" + raw[y * stride : (y + 1) * stride] for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))  # fmt: skip

    header = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)  # 8 bits, RGBA
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))  # fmt: skip
