"""The tray icon and badge, checked on pixels."""

from __future__ import annotations

import pytest
from PIL import Image

from uvsweep.tray import art

SIZES = [16, 20, 22, 24, 32, 44, 48, 64, 128]


def pixels(image: Image.Image) -> list[tuple[int, ...]]:
    """RGBA tuples (getdata() is deprecated in Pillow 13)."""
    data = image.convert("RGBA").tobytes()
    return [tuple(data[i : i + 4]) for i in range(0, len(data), 4)]


def colour_pixels(
    image: Image.Image,
    colour: tuple[int, int, int, int],
    box: tuple[int, int, int, int] | None = None,
    tolerance: int = 40,
) -> int:
    region = image.crop(box) if box else image
    r0, g0, b0, _ = colour
    return sum(
        1 for r, g, b, a in pixels(region)
        if a > 200 and abs(r - r0) + abs(g - g0) + abs(b - b0) < tolerance
    )  # fmt: skip


@pytest.mark.parametrize("size", SIZES)
def test_rendered_at_the_size_asked(size: int) -> None:
    for count in (0, 5, 150):
        image = art.render(size, count, attention=True)
        assert image.size == (size, size) and image.mode == "RGBA"


@pytest.mark.parametrize("size", SIZES)
def test_no_badge_at_zero(size: int) -> None:
    assert colour_pixels(art.render(size, 0), art.BADGE) == 0


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("count", [1, 7, 42, 99, 100, 5000])
def test_badge_in_the_top_right_with_white_digits(size: int, count: int) -> None:
    image = art.render(size, count)
    half = size // 2
    top_right = (half, 0, size, half + 2)
    assert colour_pixels(image, art.BADGE, top_right) >= size * size // 40
    assert colour_pixels(image, art.BADGE, (0, size - size // 4, size // 4, size)) == 0
    # the digits: white pixels where the badge is
    badge_box = image.getbbox()
    assert badge_box is not None
    assert colour_pixels(image, art.BADGE_TEXT, (0, 0, size, round(size * 0.62)), 60) >= 2


def test_badge_text() -> None:
    assert [art.badge_text(n) for n in (0, -1, 1, 99, 100, 12345)] == [
        "",
        "",
        "1",
        "99",
        "99+",
        "99+",
    ]


@pytest.mark.parametrize("size", [16, 32])
def test_99_plus_is_a_wider_pill_than_one_digit(size: int) -> None:
    def badge_width(count: int) -> int:
        image = art.render(size, count)
        columns = [x for x in range(size) if any(
            colour_pixels(image, art.BADGE, (x, 0, x + 1, size)) for _ in (0,))]  # fmt: skip
        return max(columns) - min(columns) + 1

    assert badge_width(100) > badge_width(3)


@pytest.mark.parametrize("size", SIZES)
def test_attention_mark_is_amber_bottom_right(size: int) -> None:
    plain, marked = art.render(size, 3), art.render(size, 3, attention=True)
    corner = (size // 2, size // 2, size, size)
    assert colour_pixels(plain, art.ATTENTION, corner) == 0
    assert colour_pixels(marked, art.ATTENTION, corner) >= max(4, size * size // 60)


def test_crisp_at_2x_not_a_stretched_16() -> None:
    native = art.render(32, 3)
    stretched = art.render(16, 3).resize((32, 32), Image.Resampling.NEAREST)
    differing = sum(1 for a, b in zip(pixels(native), pixels(stretched), strict=True) if a != b)
    assert differing > 32 * 32 // 5


def test_too_small_is_refused() -> None:
    with pytest.raises(ValueError, match="too small"):
        art.render(4, 1)


def test_tooltip() -> None:
    assert art.tooltip(0) == "No orphaned uv lock files"
    assert art.tooltip(1) == "1 orphaned uv lock file"
    assert art.tooltip(3) == "3 orphaned uv lock files"
    assert art.tooltip(3, 1) == "3 orphaned uv lock files (1 needs attention)"
