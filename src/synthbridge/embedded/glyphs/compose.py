"""Composition: place a glyph, draw its coverage (font glyph, filled shape or pen strokes), bend it,
put it on a background with outline and shadow, downsample, blur and add noise; the public
`render`, `render_hand` and `glyph_alpha`, and `contact_sheet` for looking at outputs.
"""

from __future__ import annotations

import dataclasses
import math
import zlib

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from scipy import ndimage

from synthbridge.embedded.glyphs.fonts import _CAP_PX, _fonts_for_names, _glyph, _resolve_font
from synthbridge.embedded.glyphs.shapes import _shape
from synthbridge.embedded.glyphs.strokes import _DIGIT_FORMS, _digit_form, _shape_strokes, _skeleton
from synthbridge.embedded.glyphs.styles import BACKGROUNDS, WEIGHTS, GlyphStyle
from synthbridge.embedded.glyphs.textures import _background, _smooth_field
from synthbridge.errors import UserError

HAND_FORM_PROB = 0.7  # share of handwritten digits drawn from _DIGIT_FORMS rather than a font's skeleton


# ---------------------------------------------------------------------------------------------
# Placement and compositing
# ---------------------------------------------------------------------------------------------


def _supersample(size: int) -> int:
    """Render at 2x-4x then box-downsample: antialiasing for edges, stripes and thin pens."""
    return int(min(4, max(2, round(96 / size))))


def _placement(style: GlyphStyle, canvas: int, w: float, h: float, unit: float,
               aspect: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Matrix A and centre t mapping source coords (relative to the ink centre) to canvas pixels.

    `unit` is the source length of one cap height (shape: longest side). The glyph is scaled down
    if its transformed box would not fit, and the offset is clipped so at most 7% of the box
    sticks out on any side (>= 85% of the box stays inside the image).
    """
    theta = math.radians(style.rotation)
    rot = np.array([[math.cos(theta), math.sin(theta)], [-math.sin(theta), math.cos(theta)]])
    shear = np.array([[aspect, -style.slant], [0.0, 1.0]])
    mat = (style.size * canvas / unit) * rot @ shear
    corners = np.array([[-w, -h], [w, -h], [w, h], [-w, h]]) / 2 @ mat.T
    ext = corners.max(axis=0) - corners.min(axis=0)
    fit = min(1.0, 0.98 * canvas / max(float(ext.max()), 1e-6))
    mat, ext = mat * fit, ext * fit
    lo = ext * (0.5 - 0.07)
    centre = np.array([0.5 + style.dx, 0.5 + style.dy]) * canvas
    centre = np.clip(centre, lo, canvas - lo)
    return mat, centre



def _alpha_font(text: str, style: GlyphStyle, canvas: int, rng: np.random.Generator) -> np.ndarray:
    """Glyph coverage on the supersampled canvas for a font glyph or a filled shape."""
    if text.startswith("shape:"):
        polys = _shape(text[6:])
        pts = np.concatenate([p for p, _ in polys])
        w, h = pts.max(axis=0) - pts.min(axis=0)
        mat, centre = _placement(style, canvas, float(w), float(h), 1.0)
        img = Image.new("L", (canvas, canvas), 0)
        draw = ImageDraw.Draw(img)
        for poly, hole in polys:
            xy = poly @ mat.T + centre
            draw.polygon([tuple(p) for p in xy.tolist()], fill=0 if hole else 255)
        alpha = np.asarray(img, dtype=np.float32) / 255.0
        if style.weight != "regular":  # shapes have no font weight: grow/shrink a little
            k = 3 if style.weight == "thin" else 5
            alpha = (ndimage.grey_erosion if style.weight == "thin" else ndimage.grey_dilation)(alpha, size=k)
        if style.elastic > 0:
            alpha = _elastic_image(alpha, style.elastic * canvas / 64, rng)
        return alpha
    glyph = _glyph(_resolve_font(text, style.font), text, style.weight)
    mat, centre = _placement(style, canvas, glyph.w, glyph.h, _CAP_PX)
    inv = np.linalg.inv(mat)
    if style.elastic > 0:
        # One resampling with affine + displacement together: no double interpolation blur.
        yy, xx = np.mgrid[0:canvas, 0:canvas].astype(np.float32) + 0.5
        amp = style.elastic * canvas / 64
        xx = xx + _displacement(rng, canvas, amp)
        yy = yy + _displacement(rng, canvas, amp)
        rel_x, rel_y = xx - centre[0], yy - centre[1]
        src_x = inv[0, 0] * rel_x + inv[0, 1] * rel_y + glyph.cx - 0.5
        src_y = inv[1, 0] * rel_x + inv[1, 1] * rel_y + glyph.cy - 0.5
        src = glyph.mask.astype(np.float32) / 255.0
        return ndimage.map_coordinates(src, [src_y, src_x], order=1, cval=0.0).astype(np.float32)
    # PIL wants the output->input map: src = c_src + inv @ (out - centre)
    off = np.array([glyph.cx, glyph.cy]) - inv @ centre
    coeffs = (inv[0, 0], inv[0, 1], off[0], inv[1, 0], inv[1, 1], off[1])
    src = Image.fromarray(glyph.mask)
    out = src.transform((canvas, canvas), Image.AFFINE, coeffs, resample=Image.BILINEAR)
    return np.asarray(out, dtype=np.float32) / 255.0


def _displacement(rng: np.random.Generator, canvas: int, amp: float) -> np.ndarray:
    """Smooth zero-mean displacement (pixels) with std about `amp`."""
    field = _smooth_field(rng, canvas, 5) - 0.5
    return (field * (amp / 0.2)).astype(np.float32)  # a bicubic field of U(-.5,.5) has std ~0.2


def _elastic_image(alpha: np.ndarray, amp: float, rng: np.random.Generator) -> np.ndarray:
    canvas = alpha.shape[0]
    yy, xx = np.mgrid[0:canvas, 0:canvas].astype(np.float32)
    xx += _displacement(rng, canvas, amp)
    yy += _displacement(rng, canvas, amp)
    return ndimage.map_coordinates(alpha, [yy, xx], order=1, cval=0.0).astype(np.float32)


def _compose(alpha: np.ndarray, style: GlyphStyle, size: int, ss: int,
             rng: np.random.Generator, pen: bool) -> Image.Image:
    """Background, shadow, (outlined) glyph; downsample; blur; noise."""
    canvas = size * ss
    bg = _background(style, canvas, rng)
    if style.outline and not pen:
        # Contour around the glyph, the glyph's inside left as background (hollow letters).
        r = max(1, int(round(style.stroke_width * canvas / 64)))
        alpha = np.clip(ndimage.maximum_filter(alpha, size=2 * r + 1) - alpha, 0.0, 1.0)
    fg = np.array(style.fg, np.float32) / 255.0
    img = bg
    if style.shadow:
        shift = max(1, int(round(0.05 * canvas)))
        shadow = np.zeros_like(alpha)
        shadow[shift:, shift:] = alpha[:-shift, :-shift]
        shadow = ndimage.gaussian_filter(shadow, 0.02 * canvas) * 0.7
        img = img * (1 - shadow[..., None]) + (bg * 0.25) * shadow[..., None]
    img = img * (1 - alpha[..., None]) + fg * alpha[..., None]
    out = Image.fromarray(np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8), "RGB")
    if ss > 1:
        out = out.reduce(ss)
    if style.blur > 0:
        out = out.filter(ImageFilter.GaussianBlur(style.blur * size / 64))
    if style.noise > 0:
        arr = np.asarray(out, dtype=np.float32) + rng.normal(0.0, style.noise * 255, (size, size, 3))
        out = Image.fromarray(np.clip(arr + 0.5, 0, 255).astype(np.uint8), "RGB")
    return out


def _default_rng(text: str, style: GlyphStyle) -> np.random.Generator:
    """Without an rng the image is still a pure function of (text, style)."""
    seed = zlib.crc32(repr((text, dataclasses.astuple(style))).encode("utf-8"))
    return np.random.default_rng(seed)


def _check(text: str, style: GlyphStyle, size: int) -> None:
    if not text:
        raise UserError("text to render is empty; give one character or 'shape:<name>'")
    if size < 4:
        raise UserError(f"image size must be >= 4 pixels, got {size}")
    if style.background not in BACKGROUNDS:
        raise UserError(f"unknown background {style.background!r}; choose one of {', '.join(BACKGROUNDS)}")
    if style.weight not in WEIGHTS:
        raise UserError(f"unknown weight {style.weight!r}; choose one of {', '.join(WEIGHTS)}")


# ---------------------------------------------------------------------------------------------
# Public rendering
# ---------------------------------------------------------------------------------------------


def glyph_alpha(text: str, style: GlyphStyle, size: int = 32,
                rng: np.random.Generator | None = None) -> np.ndarray:
    """Glyph coverage in [0, 1] at `size` (no background, outline or shadow); for masks/tests.

    Uses the rng exactly as `render` would up to the background, so the geometry matches.
    """
    _check(text, style, size)
    rng = rng if rng is not None else _default_rng(text, style)
    ss = _supersample(size)
    alpha = _hand_alpha(text, style, size * ss, rng) if style.hand else _alpha_font(text, style, size * ss, rng)
    return alpha.reshape(size, ss, size, ss).mean(axis=(1, 3))


def render(text: str, style: GlyphStyle, size: int = 32,
           rng: np.random.Generator | None = None) -> Image.Image:
    """Draw `text` (one character, or "shape:<name>") in `style` as a size x size RGB image.

    Deterministic given (text, style, rng state); with rng=None a seed is derived from the text
    and the style. Hand styles go to `render_hand`.
    """
    _check(text, style, size)
    rng = rng if rng is not None else _default_rng(text, style)
    if style.hand:
        return render_hand(text, style, size, rng)
    ss = _supersample(size)
    return _compose(_alpha_font(text, style, size * ss, rng), style, size, ss, rng, pen=False)


def _hand_alpha(text: str, style: GlyphStyle, canvas: int, rng: np.random.Generator) -> np.ndarray:
    """Pen strokes on the supersampled canvas: skeleton -> jitter -> elastic -> pressure pen."""
    if text.startswith("shape:"):
        skel, unit = _shape_strokes(text[6:]), 1.0
    else:
        fonts = _fonts_for_names(text)
        if not fonts:
            raise UserError(f"no bundled font draws {text!r}")
        # Writers differ in letter forms ("4" open or closed, "7" with a bar, "a" one- or
        # two-storey): a random font's skeleton supplies the form, or for a digit, half the time,
        # one of the written forms no font has.
        if text in _DIGIT_FORMS and rng.random() < HAND_FORM_PROB:
            skel, unit = _digit_form(text, int(rng.integers(len(_DIGIT_FORMS[text])))), 1.0
        else:
            skel, unit = _skeleton(fonts[int(rng.integers(len(fonts)))], text), 1.0
    aspect = float(np.exp(rng.normal(0.0, 0.1)))  # narrow or wide writers
    mat, centre = _placement(style, canvas, skel.w, skel.h, unit, aspect)
    # Elastic field on points: a few random low-frequency waves; cheap and smooth.
    amp = style.elastic * canvas / 64
    waves = rng.normal(0.0, 1.0, (2, 3, 2)) * 1.2  # (axis, wave, frequency xy) in cycles/image
    phases = rng.uniform(0, 2 * math.pi, (2, 3))
    weights = rng.normal(0.0, 1.0, (2, 3)) / math.sqrt(3)
    pen = max(1.0, style.stroke_width * canvas / 64)
    img = Image.new("L", (canvas, canvas), 0)
    draw = ImageDraw.Draw(img)
    for pts, free_a, free_b in skel.strokes:
        pts = np.asarray(pts, np.float64)
        n = len(pts)
        # Each stroke lands a little off (stroke offset) and wobbles slowly along its length
        # (two random waves per axis over the arc length; a per-point random walk looked shaky).
        arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
        freq = rng.uniform(0.4, 1.4, (2, 2))  # cycles per cap height
        wob_amp = rng.normal(0.0, 0.012, (2, 2))
        wob_phase = rng.uniform(0, 2 * math.pi, (2, 2))
        wobble = np.einsum("ak,nak->na", wob_amp,
                           np.sin(2 * math.pi * freq[None] * arc[:, None, None] + wob_phase[None]))
        xy = (pts + wobble + rng.normal(0.0, 0.015, 2)) @ mat.T + centre
        if amp > 0:
            phase = np.einsum("awf,nf->anw", waves, xy / canvas) * 2 * math.pi + phases[:, None, :]
            xy = xy + amp * np.einsum("aw,anw->na", weights, np.sin(phase)) * math.sqrt(2)
        # Pressure: slow random variation, tapering at free stroke ends.
        t = np.linspace(0.0, 1.0, n)
        pressure = 0.8 + 0.2 * np.sin(2 * math.pi * (rng.uniform(0.3, 1.2) * t + rng.uniform()))
        if free_a:
            pressure *= 0.6 + 0.4 * np.clip(t * n / 4, 0, 1)
        if free_b:
            pressure *= 0.6 + 0.4 * np.clip((1 - t) * n / 4, 0, 1)
        widths = pen * pressure
        if n == 1:  # a dot
            x, y = xy[0]
            r = widths[0] * 0.6
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
            continue
        pts_list = xy.tolist()
        for i in range(n - 1):
            w = float(widths[i] + widths[i + 1]) / 2
            draw.line((tuple(pts_list[i]), tuple(pts_list[i + 1])), fill=255, width=max(1, int(round(w))))
            r = w / 2
            x, y = pts_list[i + 1]
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255)  # round joints, no notches
        x, y = pts_list[0]
        r = widths[0] / 2
        draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    # Ink spreads a little into the paper: a soft edge even without style.blur.
    img = img.filter(ImageFilter.GaussianBlur(0.35 * canvas / 64))
    return np.asarray(img, dtype=np.float32) / 255.0


def render_hand(text: str, style: GlyphStyle, size: int = 32,
                rng: np.random.Generator | None = None) -> Image.Image:
    """Handwriting-like image: pen strokes along the skeleton of a random font's glyph.

    The skeleton (cached per font and text) is jittered per stroke, bent by a smooth elastic
    field of strength `style.elastic`, drawn with a round pen of width `style.stroke_width`
    whose pressure varies along the stroke and tapers at free ends, softened like ink, then
    composited like a font glyph. `style.font`, `style.weight` and `style.outline` are ignored.
    """
    _check(text, style, size)
    rng = rng if rng is not None else _default_rng(text, style)
    ss = _supersample(size)
    return _compose(_hand_alpha(text, style, size * ss, rng), style, size, ss, rng, pen=True)


def contact_sheet(images: list[Image.Image], cols: int = 16, scale: int = 2, gap: int = 2) -> Image.Image:
    """Tile equally sized square images into one grid on grey, `scale` times larger (for looking at outputs)."""
    from synthbridge.grids import tile

    if not images:
        raise UserError("contact_sheet needs at least one image")
    cells = list(images) + [None] * (-len(images) % cols)
    return tile(cells, cols, cell=images[0].size[0] * scale, pad=gap, background=128)
