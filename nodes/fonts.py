"""The one caption/title font every editing engine draws with, and its glyph coverage.

DejaVu Sans Bold, as matplotlib's wheel ships it (mpl-data/fonts/ttf): full Latin (Italian, French,
German, Polish, Vietnamese...), Greek and Cyrillic, from a registry package, so no system font and no
download. Pillow's built-in default font has no accented capitals (È drew as a missing-glyph box), so it
is never used. Text with characters the font cannot draw (Chinese, Devanagari, ...) is refused with
the characters named, never drawn as boxes.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from . import bridge

FONT_FILE = "DejaVuSans-Bold.ttf"
FONT_NAME = "DejaVu Sans Bold"


@lru_cache(maxsize=1)
def caption_font_path() -> str:
    """Path of DejaVu Sans Bold inside the installed matplotlib wheel."""
    try:
        import matplotlib
    except ImportError:
        raise bridge.MissingDependency(
            f"Captions need the {FONT_NAME} font that matplotlib's wheel ships: pip install matplotlib "
            "(in the 'video' extra).") from None
    path = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / FONT_FILE
    if not path.is_file():
        raise bridge.MissingDependency(f"{FONT_FILE} is missing from matplotlib's data folder {path.parent}; "
                                       "reinstall matplotlib.")
    return str(path)


@lru_cache(maxsize=1)
def _codepoints() -> frozenset[int]:
    from fontTools.ttLib import TTFont

    with TTFont(caption_font_path(), lazy=True) as font:
        return frozenset(font.getBestCmap())


def missing_glyphs(text: str) -> list[str]:
    """Characters of `text` the caption font has no glyph for (whitespace and controls ignored)."""
    cmap = _codepoints()
    return sorted({c for c in text if not c.isspace() and ord(c) >= 32 and ord(c) not in cmap})


def check_text(text: str, node: str) -> None:
    """Refuse text the font would draw as boxes, naming the node, the characters and the font."""
    missing = missing_glyphs(text)
    if missing:
        shown = " ".join(f"{c!r} (U+{ord(c):04X})" for c in missing[:8]) + (" ..." if len(missing) > 8 else "")
        raise ValueError(f"{node}: input 'text' has {len(missing)} character(s) the caption font {FONT_NAME} "
                         f"cannot draw: {shown}. It covers Latin, Greek and Cyrillic scripts.")


@lru_cache(maxsize=32)
def load_font(size: int):
    from PIL import ImageFont

    return ImageFont.truetype(caption_font_path(), size=max(1, int(size)))


def outline_width(outline: int, font_size: int, box: bool) -> int:
    """Stroke width in pixels: `outline` when >= 0; -1 = automatic (none on a box, size/12 without one,
    so light text stays readable over a bright background)."""
    if outline >= 0:
        return int(outline)
    return 0 if box else max(1, round(font_size / 8))


def outline_colour(rgb: tuple[int, int, int]) -> tuple[int, int, int]:
    """A dark outline around light text and a light one around dark text."""
    luma = 0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]
    return (0, 0, 0) if luma >= 100 else (255, 255, 255)
