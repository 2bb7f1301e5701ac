"""`GlyphStyle`, every knob of one image, and the style samplers of the study.

`baseline_digit_style` (the plain "render" baseline: font digits white on black),
`hand_digit_style` (its handwriting counterpart) and `random_style` (the broad generator corpus).
The backbone source task's `source_style` lives in `source`.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass

import numpy as np

from synthbridge.embedded.glyphs.fonts import _font_traits, _list_font_names

BACKGROUNDS: tuple[str, ...] = ("plain", "gradient", "noise", "stripes", "checker", "paper")
WEIGHTS: tuple[str, ...] = ("thin", "regular", "bold")


@dataclass(frozen=True)
class GlyphStyle:
    """Every knob that decides how one image looks; serialisable with `dataclasses.asdict`.

    Pixel quantities (`stroke_width`, `blur`, `elastic`) are pixels of a 64-pixel reference image
    and scale with the output size. Details that are not knobs (gradient angle, stripe period,
    pen jitter) come from the ``rng`` given to `render`.
    """

    font: str  # font file name in FONT_DIR (not a path); "" for handwriting
    hand: bool  # True: pen strokes along a glyph skeleton; False: filled font glyph
    size: float  # cap height (shapes: largest side) as a fraction of the image, 0.4-0.95
    rotation: float  # degrees, counter-clockwise
    slant: float  # horizontal shear; > 0 leans right
    dx: float  # offset of the glyph centre as a fraction of the image (> 0: right)
    dy: float  # (> 0: down)
    stroke_width: float  # pen width (hand) or outline width (outline), px at 64 px
    weight: str  # "thin" | "regular" | "bold": erode/dilate the font glyph
    outline: bool  # hollow glyph: only a contour of width stroke_width is drawn
    blur: float  # gaussian sigma, px at 64 px (0 = sharp)
    fg: tuple[int, int, int]  # glyph colour
    bg: tuple[int, int, int]  # background colour (main tone)
    background: str  # one of BACKGROUNDS
    noise: float  # std of additive per-pixel noise, in [0, 1] intensity units (0..0.2)
    elastic: float  # std of the smooth displacement field, px at 64 px (0 = none)
    shadow: bool  # drop shadow down-right of the glyph


# ---------------------------------------------------------------------------------------------
# Style samplers
# ---------------------------------------------------------------------------------------------


def _choice(rng: np.random.Generator, options, p=None):
    """rng.choice that returns plain Python objects (styles must stay JSON-friendly)."""
    return options[int(rng.choice(len(options), p=p))]


def _rgb(h: float, s: float, v: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hsv_to_rgb(h % 1.0, s, v)
    return (int(round(r * 255)), int(round(g * 255)), int(round(b * 255)))


def _luma(rgb: tuple[int, int, int]) -> float:
    return (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2]) / 255.0


def _colour_pair(rng: np.random.Generator, colourful: bool) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """(fg, bg) with a luminance difference of at least 0.35, so the glyph stays readable."""
    if not colourful or rng.random() < 0.3:
        light, dark = rng.uniform(0.75, 1.0), rng.uniform(0.0, 0.3)
        a, b = _rgb(0, 0, light), _rgb(0, 0, dark)
        return (a, b) if rng.random() < 0.5 else (b, a)
    for _ in range(20):
        fg = _rgb(rng.random(), rng.uniform(0.0, 1.0), rng.uniform(0.1, 1.0))
        bg = _rgb(rng.random(), rng.uniform(0.0, 1.0), rng.uniform(0.1, 1.0))
        if abs(_luma(fg) - _luma(bg)) >= 0.35:
            return fg, bg
    return ((255, 255, 255), bg) if _luma(bg) < 0.5 else ((0, 0, 0), bg)


def _stroke_weight(rng: np.random.Generator, font: str) -> str:
    if font and _font_traits(font).bold:  # a bold font is not thinned into a "regular" one
        return _choice(rng, ("regular", "bold"), p=(0.7, 0.3))
    return _choice(rng, WEIGHTS, p=(0.25, 0.5, 0.25))


def baseline_digit_style(rng: np.random.Generator) -> GlyphStyle:
    """The plain 'render' baseline: a font digit, white on black, centred, MNIST framing."""
    return GlyphStyle(
        font=_choice(rng, _list_font_names()),
        hand=False,
        size=float(rng.uniform(0.6, 0.8)),
        rotation=float(rng.uniform(-10, 10)),
        slant=0.0,
        dx=float(rng.uniform(-0.05, 0.05)),
        dy=float(rng.uniform(-0.05, 0.05)),
        stroke_width=0.0,
        weight="regular",
        outline=False,
        blur=0.0,
        fg=(255, 255, 255),
        bg=(0, 0, 0),
        background="plain",
        noise=0.0,
        elastic=0.0,
        shadow=False,
    )


def hand_digit_style(rng: np.random.Generator) -> GlyphStyle:
    """Handwriting counterpart of the baseline: white pen on black, centred, MNIST-like pen."""
    return GlyphStyle(
        font="",
        hand=True,
        size=float(rng.uniform(0.6, 0.8)),
        rotation=float(rng.uniform(-10, 10)),
        slant=float(rng.normal(0.0, 0.15)),
        dx=float(rng.uniform(-0.05, 0.05)),
        dy=float(rng.uniform(-0.05, 0.05)),
        stroke_width=float(rng.uniform(4.0, 7.0)),
        weight="regular",
        outline=False,
        blur=0.0,
        fg=(255, 255, 255),
        bg=(0, 0, 0),
        background="plain",
        noise=0.0,
        elastic=float(rng.uniform(1.0, 3.0)),
        shadow=False,
    )


def random_style(rng: np.random.Generator, *, hand_prob: float = 0.3, colourful: bool = True) -> GlyphStyle:
    """A broad style for the generator corpus: fonts or handwriting, any colour and texture.

    With colourful=False the colours are greys (white-on-dark or dark-on-light).
    """
    hand = bool(rng.random() < hand_prob)
    font = "" if hand else _choice(rng, _list_font_names())
    fg, bg = _colour_pair(rng, colourful)
    background = _choice(rng, BACKGROUNDS, p=(0.4, 0.12, 0.12, 0.12, 0.12, 0.12))
    outline = (not hand) and bool(rng.random() < 0.15)
    return GlyphStyle(
        font=font,
        hand=hand,
        size=float(rng.uniform(0.45, 0.9)),
        rotation=float(np.clip(rng.normal(0.0, 10.0), -30, 30)),
        slant=float(np.clip(rng.normal(0.0, 0.15), -0.4, 0.4)),
        dx=float(rng.uniform(-0.2, 0.2)),
        dy=float(rng.uniform(-0.2, 0.2)),
        stroke_width=float(rng.uniform(2.0, 7.0) if hand else rng.uniform(1.5, 3.5)),
        weight="regular" if hand else _stroke_weight(rng, font),
        outline=outline,
        blur=0.0 if rng.random() < 0.6 else float(rng.uniform(0.5, 2.0)),
        fg=fg,
        bg=bg,
        background=background,
        noise=0.0 if rng.random() < 0.6 else float(rng.uniform(0.02, 0.15)),
        elastic=float(rng.uniform(0.5, 3.0)) if hand else (0.0 if rng.random() < 0.7 else float(rng.uniform(0.5, 2.5))),
        shadow=bool(rng.random() < 0.12),
    )
