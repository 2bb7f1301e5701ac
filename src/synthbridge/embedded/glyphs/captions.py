"""Captions: a short deterministic English description of a `GlyphStyle` (`describe`)."""

from __future__ import annotations

import colorsys

from synthbridge.embedded.glyphs.fonts import _font_traits, _Traits
from synthbridge.embedded.glyphs.styles import GlyphStyle


def _colour_name(rgb: tuple[int, int, int]) -> str:
    """Plain English colour name from hue/saturation/value bands (deterministic)."""
    h, s, v = colorsys.rgb_to_hsv(*(c / 255.0 for c in rgb))
    if v < 0.18:
        return "black"
    if s < 0.18:
        if v > 0.85:
            return "white"
        return "dark grey" if v < 0.45 else ("grey" if v < 0.7 else "light grey")
    deg = h * 360
    if deg < 15 or deg >= 345:
        name = "red"
    elif deg < 40:
        name = "orange" if v >= 0.6 else "brown"
    elif deg < 68:
        name = "yellow" if v >= 0.6 else "olive"
    elif deg < 160:
        name = "green"
    elif deg < 195:
        name = "cyan"
    elif deg < 255:
        name = "blue"
    elif deg < 290:
        name = "purple"
    else:
        name = "pink" if v >= 0.6 else "magenta"
    if v < 0.45 and name not in ("brown", "olive"):
        return f"dark {name}"
    if s < 0.45 and v > 0.75:
        return f"light {name}"
    return name


_BACKGROUND_WORDS = {
    "plain": "plain",
    "gradient": "gradient",
    "noise": "mottled",
    "stripes": "striped",
    "checker": "checkered",
    "paper": "paper-textured",
}


def describe(style: GlyphStyle) -> str:
    """Short deterministic English description of a style, for captions.

    E.g. "bold serif font, slanted right, large, top left, red on a striped blue background,
    noisy" or "handwritten, thick pen, wobbly, white on a plain black background".
    """
    parts: list[str] = []
    if style.hand:
        parts.append("handwritten")
        pen = "thin" if style.stroke_width < 3.5 else ("thick" if style.stroke_width > 5.5 else "medium")
        parts.append(f"{pen} pen")
    else:
        traits = _font_traits(style.font) if style.font else _Traits("sans-serif", False, False)
        level = {"thin": -1, "regular": 0, "bold": 1}[style.weight] + int(traits.bold)
        words = [{-1: "thin", 0: "", 1: "bold", 2: "heavy"}[level]]
        words.append("italic" if traits.italic else "")
        words.append(traits.kind)
        parts.append(" ".join(w for w in words if w) + " font")
        if style.outline:
            parts.append("outlined")
    if abs(style.slant) >= 0.15:
        parts.append("slanted right" if style.slant > 0 else "slanted left")
    if abs(style.rotation) >= 12:
        parts.append("rotated counter-clockwise" if style.rotation > 0 else "rotated clockwise")
    if style.elastic >= 2.0:
        parts.append("wobbly")
    if style.blur >= 0.8:
        parts.append("blurry")
    if style.size < 0.55:
        parts.append("small")
    elif style.size > 0.8:
        parts.append("large")
    vertical = "top" if style.dy < -0.1 else ("bottom" if style.dy > 0.1 else "")
    horizontal = "left" if style.dx < -0.1 else ("right" if style.dx > 0.1 else "")
    if vertical or horizontal:
        parts.append(" ".join(w for w in (vertical, horizontal) if w))
    parts.append(f"{_colour_name(style.fg)} on a {_BACKGROUND_WORDS[style.background]} "
                 f"{_colour_name(style.bg)} background")
    if style.shadow:
        parts.append("with a drop shadow")
    if style.noise >= 0.04:
        parts.append("noisy")
    return ", ".join(parts)
