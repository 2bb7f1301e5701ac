"""Backgrounds: plain colour, gradient, mottled noise, stripes, checker and paper textures."""

from __future__ import annotations

import colorsys
import math

import numpy as np
from PIL import Image
from scipy import ndimage

from synthbridge.embedded.glyphs.styles import BACKGROUNDS, GlyphStyle
from synthbridge.errors import UserError


def _smooth_field(rng: np.random.Generator, canvas: int, cells: int) -> np.ndarray:
    """Smooth random field in [0, 1]: a coarse random grid upsampled bicubically."""
    grid = rng.random((cells, cells)).astype(np.float32)
    field = np.asarray(Image.fromarray(grid).resize((canvas, canvas), Image.BICUBIC))
    return np.clip(field, 0.0, 1.0)


def _tone(rgb: np.ndarray, fg: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A second tone of the background's hue for patterns, that never hides the glyph.

    The tone moves away from the glyph colour's brightness (a light glyph gets darker stripes),
    so the pattern never lowers glyph/background contrast. When there is no room (black
    background behind a white glyph) it moves towards the glyph by at most 40% of the gap.
    """
    h, s, v = colorsys.rgb_to_hsv(*(rgb.tolist()))
    v_fg = colorsys.rgb_to_hsv(*(fg.tolist()))[2]
    direction = -1.0 if v_fg >= v else 1.0
    v2 = min(1.0, max(0.0, v + direction * rng.uniform(0.2, 0.4)))
    if abs(v2 - v) < 0.12:
        v2 = v - direction * min(0.25, 0.4 * abs(v_fg - v))
    return np.array(colorsys.hsv_to_rgb(h, s, v2), np.float32)


def _background(style: GlyphStyle, canvas: int, rng: np.random.Generator) -> np.ndarray:
    """(canvas, canvas, 3) float32 background; pattern details (angle, period) come from rng."""
    base = np.array(style.bg, np.float32) / 255.0
    kind = style.background
    if kind == "plain":
        return np.broadcast_to(base, (canvas, canvas, 3)).copy()
    other = _tone(base, np.array(style.fg, np.float32) / 255.0, rng)
    yy, xx = (np.mgrid[0:canvas, 0:canvas].astype(np.float32) + 0.5) / canvas
    angle = rng.uniform(0, math.pi)
    u = xx * math.cos(angle) + yy * math.sin(angle)
    if kind == "gradient":
        u = (u - u.min()) / max(float(u.max() - u.min()), 1e-6)
        mix = u
    elif kind == "noise":
        mix = _smooth_field(rng, canvas, int(rng.integers(3, 7)))
    elif kind == "stripes":
        period = rng.uniform(0.12, 0.3)
        mix = (np.sin(2 * math.pi * u / period + rng.uniform(0, 2 * math.pi)) > 0).astype(np.float32)
    elif kind == "checker":
        cell = rng.uniform(0.12, 0.3)
        v = -xx * math.sin(angle) + yy * math.cos(angle)
        mix = ((np.floor(u / cell) + np.floor(v / cell)) % 2).astype(np.float32)
    elif kind == "paper":
        # Paper: faint blotches plus fine grain, in the base colour's own tone.
        blotch = _smooth_field(rng, canvas, int(rng.integers(4, 9))) - 0.5
        grain = rng.normal(0.0, 1.0, (canvas, canvas)).astype(np.float32)
        grain = ndimage.uniform_filter1d(grain, size=3, axis=int(rng.integers(0, 2)))  # fibres
        shade = 1.0 + 0.12 * blotch + 0.05 * grain  # small: paper must not hide the ink
        return np.clip(base[None, None, :] * shade[..., None] + 0.02 * grain[..., None], 0, 1)
    else:
        raise UserError(f"unknown background {kind!r}; choose one of {', '.join(BACKGROUNDS)}")
    return base * (1 - mix[..., None]) + other * mix[..., None]
