"""Procedural glyph renderer: fonts, handwriting-like pen strokes and simple shapes, no real data.

What goes in: a text (one character such as ``"7"``, ``"g"``, ``"§"``, or a shape name such as
``"shape:star"``), a `GlyphStyle` (every knob that decides how the image looks), an output size
and a ``numpy.random.Generator``. What comes out: an RGB ``PIL.Image.Image`` of ``size x size``.

The same renderer serves three jobs in the study:

* the plain "render" baseline of synthetic digits (`baseline_digit_style`): a font digit drawn
  white on black, centred and framed like MNIST;
* the *source* pretraining task for the tiny backbones (`SOURCE_CLASSES`, `source_style`,
  `source_image`): letters, symbols and shapes but never digits, drawn colourful, textured,
  outlined and shadowed, so the source differs from the target in content *and* style (as
  ImageNet differs from aircraft);
* a broad captioned corpus for the tiny text-to-image model (`random_style`, `describe`):
  digits, letters, symbols and shapes, from fonts and from handwriting-like pen trajectories.

Fonts are the TrueType files bundled with matplotlib (`FONT_DIR`); a font is used for a character
only after a rendering check proved that it draws that character properly (`list_fonts`,
`fonts_for`). Everything is deterministic given the ``rng`` (no global random state).

Units: ``size``, ``dx`` and ``dy`` are fractions of the image; ``stroke_width``, ``blur`` and
``elastic`` are pixels of a 64-pixel reference image, so a style looks the same at any output size.
"""

from __future__ import annotations

import colorsys
import dataclasses
import math
import string
import zlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import NamedTuple

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from scipy import ndimage

from synthbridge.errors import UserError

__all__ = [
    "FONT_DIR",
    "DIGITS",
    "LETTERS",
    "SYMBOLS",
    "SHAPES",
    "SOURCE_CLASSES",
    "BACKGROUNDS",
    "GlyphStyle",
    "list_fonts",
    "fonts_for",
    "can_draw",
    "render",
    "render_hand",
    "glyph_alpha",
    "baseline_digit_style",
    "hand_digit_style",
    "random_style",
    "source_style",
    "source_image",
    "describe",
    "contact_sheet",
]

FONT_DIR: Path = Path(matplotlib.get_data_path()) / "fonts" / "ttf"

DIGITS: str = string.digits
LETTERS: str = string.ascii_uppercase + string.ascii_lowercase
# Symbols for the source task and the corpus. Chosen so none looks like a digit; mirror pairs
# ("]", "}", ")") are left out because a mirrored glyph is not a new class.
SYMBOLS: tuple[str, ...] = tuple("+-×÷=#@&%$?!<>*/~^§±[{")
SHAPES: tuple[str, ...] = (
    "circle", "square", "triangle", "diamond", "pentagon", "hexagon", "star",
    "cross", "ring", "arrow", "heart", "crescent", "bolt", "trapezoid",
)
BACKGROUNDS: tuple[str, ...] = ("plain", "gradient", "noise", "stripes", "checker", "paper")
WEIGHTS: tuple[str, ...] = ("thin", "regular", "bold")

SOURCE_CLASSES: tuple[str, ...] = (
    tuple(LETTERS) + SYMBOLS + tuple(f"shape:{name}" for name in SHAPES)
)
# The source task must not contain the target's content (digits): that is the point of it.
assert not any(ch in DIGITS for cls in SOURCE_CLASSES for ch in cls), "digit in SOURCE_CLASSES"
assert len(set(SOURCE_CLASSES)) == len(SOURCE_CLASSES) >= 70

# The characters the font check knows about; other characters are only drawn by the reference
# (Unicode-complete) fonts.
_UNIVERSE: str = LETTERS + DIGITS + "".join(SYMBOLS)
_REF_PREFIXES = ("DejaVu", "STIXGeneral")  # fonts with a correct Unicode cmap: used as templates
_CAP_PX = 96  # canonical glyph masks are drawn with this cap height ("H") in pixels
_MISSING = "\U0010fffd"  # a private-use code point no font draws: its glyph is the font's tofu


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
# Fonts: which font files draw which characters
# ---------------------------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _font(name: str, px: int) -> ImageFont.FreeTypeFont:
    """ImageFont per (font, pixel size): loading a TTF costs far more than drawing a glyph."""
    return ImageFont.truetype(str(FONT_DIR / name), px)


@lru_cache(maxsize=None)
def _cap_px(name: str, px: int = 64) -> float:
    """Height of "H" at `px`: the fonts' em boxes differ, cap height is what the eye compares."""
    left, top, right, bottom = _font(name, px).getbbox("H", anchor="ls")
    return float(bottom - top)


def _draw_text(name: str, text: str, px: int) -> np.ndarray:
    """Glyph coverage (uint8) of `text` at `px`, tightly cropped; shape (0, 0) when empty."""
    font = _font(name, px)
    left, top, right, bottom = font.getbbox(text, anchor="ls")
    width, height = right - left + 4, bottom - top + 4
    if right <= left or bottom <= top:
        return np.zeros((0, 0), np.uint8)
    canvas = Image.new("L", (width, height), 0)
    ImageDraw.Draw(canvas).text((2 - left, 2 - top), text, font=font, fill=255, anchor="ls")
    arr = np.asarray(canvas)
    rows, cols = np.nonzero(arr.max(axis=1))[0], np.nonzero(arr.max(axis=0))[0]
    if rows.size == 0:
        return np.zeros((0, 0), np.uint8)
    return arr[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _template(name: str, text: str, px: int = 40) -> np.ndarray | None:
    """24x24 unit-norm template of `text` placed on the font's baseline, cap height normalised.

    Keeping the baseline position (not just the cropped ink) is what tells "o" from "O" and an
    old-style "3" (with a descender) from a lining one.
    """
    cap = _cap_px(name)
    if cap <= 0:
        return None
    size = max(8, int(round(px * 0.7 * 64 / cap)))  # cap height -> 0.7 * px
    font = _font(name, size)
    canvas = Image.new("L", (3 * px, 2 * px), 0)
    ImageDraw.Draw(canvas).text((px, int(1.4 * px)), text, font=font, fill=255, anchor="ls")
    arr = np.asarray(canvas, dtype=np.float32)
    cols = np.nonzero(arr.max(axis=0))[0]
    if cols.size == 0:
        return None
    centre = (cols[0] + cols[-1]) // 2
    arr = arr[:, max(0, centre - px) : centre + px]
    arr = np.pad(arr, ((0, 0), (0, 2 * px - arr.shape[1])))
    small = np.asarray(Image.fromarray(arr.astype(np.uint8)).resize((24, 24), Image.BILINEAR))
    vec = small.astype(np.float32).ravel()
    vec -= vec.mean()
    norm = float(np.linalg.norm(vec))
    return vec / norm if norm > 0 else None


class _FontCheck(NamedTuple):
    ok: dict[str, frozenset[str]]  # font name -> characters of _UNIVERSE it draws correctly
    distinct: dict[str, bool]  # font name -> letters and digits are all different glyphs


@lru_cache(maxsize=1)
def _font_check() -> _FontCheck:
    """Decide per (font, character) whether the font really draws that character.

    Matplotlib's TeX fonts (cm*) use TeX encodings: "<" draws "¡", "{" an em dash, cmmi10's
    digits are old-style, cmsy10/cmex10 map letters to math symbols; the Display, STIXNonUni and
    STIXSiz* files hold no ASCII at all and LastResort draws one placeholder for everything. So a
    glyph counts only if it is non-empty, not the font's tofu, and looks like the same character
    in the reference fonts (DejaVu, STIXGeneral; leave-one-out): correlation >= 0.7 with the
    character's own template and among the 8 nearest characters of the whole alphabet. The
    thresholds were set by looking: they keep every DejaVu/STIXGeneral glyph and the letters
    and digits of cmr10/cmb10/cmss10/cmti10/cmtt10, and reject every remapped glyph.
    """
    names = sorted(p.name for p in FONT_DIR.glob("*.ttf"))
    # Cheap pre-filter: a font that cannot draw "H", "a" and "0" is not a text font.
    names = [n for n in names if all(_draw_text(n, c, 32).size for c in "Ha0")]
    feats: dict[str, np.ndarray] = {}
    present: dict[str, np.ndarray] = {}
    for name in names:
        rows = [_template(name, ch) for ch in _UNIVERSE]
        present[name] = np.array([r is not None for r in rows])
        feats[name] = np.stack([r if r is not None else np.zeros(576, np.float32) for r in rows])
    refs = [n for n in names if n.startswith(_REF_PREFIXES)]
    ok: dict[str, frozenset[str]] = {}
    distinct: dict[str, bool] = {}
    for name in names:
        others = [r for r in refs if r != name]
        # sims[i, j]: best correlation of this font's char i with any reference's char j
        sims = np.max(np.einsum("id,rjd->rij", feats[name], np.stack([feats[r] for r in others])), axis=0)
        own = np.diag(sims)
        rank = 1 + (sims > own[:, None]).sum(axis=1)
        tofu = _draw_text(name, _MISSING, 40)
        good = present[name] & (own >= 0.7) & (rank <= 8)
        chars = set()
        for i, ch in enumerate(_UNIVERSE):
            if good[i]:
                glyph = _draw_text(name, ch, 40)
                if glyph.size and not (glyph.shape == tofu.shape and np.array_equal(glyph, tofu)):
                    chars.add(ch)
        ok[name] = frozenset(chars)
        alnum = [_draw_text(name, ch, 40) for ch in LETTERS + DIGITS]
        distinct[name] = len({(a.shape, a.tobytes()) for a in alnum}) == len(alnum)
    return _FontCheck(ok, distinct)


@lru_cache(maxsize=1)
def _list_font_names() -> tuple[str, ...]:
    check = _font_check()
    need = set(LETTERS + DIGITS)
    return tuple(n for n in sorted(check.ok) if need <= check.ok[n] and check.distinct[n])


def list_fonts() -> list[Path]:
    """Sorted font files that draw every ASCII letter and digit as distinct, correct glyphs.

    On matplotlib 3.x this is the 12 DejaVu text fonts, the 4 STIXGeneral fonts and the TeX
    fonts cmb10, cmr10, cmss10, cmti10, cmtt10. The check runs once (about a second) and is cached.
    """
    return [FONT_DIR / n for n in _list_font_names()]


@lru_cache(maxsize=4096)
def _fonts_for_names(text: str) -> tuple[str, ...]:
    check = _font_check()
    result = []
    for name in _list_font_names():
        good = True
        for ch in text:
            if ch in _UNIVERSE:
                good = ch in check.ok[name]
            else:
                # Unknown characters: trust only fonts with a Unicode cmap, and only if the
                # glyph is drawn and is not the tofu box.
                glyph = _draw_text(name, ch, 40)
                tofu = _draw_text(name, _MISSING, 40)
                good = (
                    name.startswith(_REF_PREFIXES)
                    and glyph.size > 0
                    and not (glyph.shape == tofu.shape and np.array_equal(glyph, tofu))
                )
            if not good:
                break
        if good:
            result.append(name)
    return tuple(result)


def fonts_for(text: str) -> list[Path]:
    """Fonts of `list_fonts` that draw every character of `text` correctly."""
    return [FONT_DIR / n for n in _fonts_for_names(text)]


def can_draw(font: str, text: str) -> bool:
    """Whether font file `font` (a name in FONT_DIR) draws every character of `text` correctly."""
    return font in _fonts_for_names(text)


class _Traits(NamedTuple):
    kind: str  # "sans-serif" | "serif" | "monospace"
    bold: bool
    italic: bool


def _font_traits(name: str) -> _Traits:
    """Family kind, boldness and slant from the file name (all bundled fonts follow a pattern)."""
    stem = name.rsplit(".", 1)[0]
    if stem.startswith("DejaVuSansMono") or stem == "cmtt10":
        kind = "monospace"
    elif stem.startswith("DejaVuSans") or stem == "cmss10":
        kind = "sans-serif"
    else:
        kind = "serif"
    bold = "Bold" in stem or "Bol" in stem or stem == "cmb10"
    italic = any(k in stem for k in ("Oblique", "Italic", "Ita")) or stem == "cmti10"
    return _Traits(kind, bold, italic)


def _resolve_font(text: str, font: str) -> str:
    """The style's font if it draws `text`, else the most similar font that does.

    Styles are drawn before the text is known, and not every font has every symbol (cm fonts
    lack "×", "§", ...); falling back to a font with the same kind/weight/slant keeps the style's
    description true.
    """
    candidates = _fonts_for_names(text)
    if not candidates:
        raise UserError(f"no bundled font draws {text!r}; use letters, digits or {''.join(SYMBOLS)}")
    if font in candidates:
        return font
    want = _font_traits(font) if font else _Traits("sans-serif", False, False)

    def distance(name: str) -> tuple[int, str]:
        have = _font_traits(name)
        return (2 * (have.kind != want.kind) + (have.bold != want.bold) + (have.italic != want.italic), name)

    return min(candidates, key=distance)


# ---------------------------------------------------------------------------------------------
# Geometry: canonical glyph masks, skeletons and shapes
# ---------------------------------------------------------------------------------------------


class _Glyph(NamedTuple):
    """A canonical glyph: coverage mask (cap height _CAP_PX) and the centre/size of its ink."""

    mask: np.ndarray  # uint8 coverage (uint8 keeps the cache small: ~13 kB per glyph)
    cx: float
    cy: float
    w: float
    h: float


@lru_cache(maxsize=2048)
def _glyph(font: str, text: str, weight: str) -> _Glyph:
    """Canonical font glyph, with the weight change already applied (cached per weight).

    Thin/bold are an erosion/dilation by ~2.5% of the cap height, done here once at canonical
    resolution, so the effect is the same at every output size and costs nothing per image.
    """
    px = max(8, int(round(64 * _CAP_PX / _cap_px(font))))
    arr = _draw_text(font, text, px)
    pad = 8
    img = Image.fromarray(np.pad(arr, pad))
    if weight == "bold":
        img = img.filter(ImageFilter.MaxFilter(5))
    elif weight == "thin":
        img = img.filter(ImageFilter.MinFilter(3))
    mask = np.asarray(img)
    rows = np.nonzero(mask.max(axis=1) > 25)[0]
    cols = np.nonzero(mask.max(axis=0) > 25)[0]
    if rows.size == 0:  # a thin erosion can wipe hairlines of tiny glyphs: keep the regular one
        return _glyph(font, text, "regular")
    return _Glyph(
        mask,
        (cols[0] + cols[-1] + 1) / 2.0,
        (rows[0] + rows[-1] + 1) / 2.0,
        float(cols[-1] + 1 - cols[0]),
        float(rows[-1] + 1 - rows[0]),
    )


def _regular_polygon(n: int, rotation: float = -math.pi / 2, radius: float = 0.5) -> np.ndarray:
    angles = rotation + 2 * math.pi * np.arange(n) / n
    return np.stack([radius * np.cos(angles), radius * np.sin(angles)], axis=1)


def _normalise(polys: list[tuple[np.ndarray, bool]]) -> list[tuple[np.ndarray, bool]]:
    """Centre the shape's bounding box on 0 and scale its longest side to 1."""
    pts = np.concatenate([p for p, _ in polys])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    centre, scale = (lo + hi) / 2, float(max(hi - lo))
    return [((p - centre) / scale, hole) for p, hole in polys]


@lru_cache(maxsize=None)
def _shape(name: str) -> tuple[tuple[np.ndarray, bool], ...]:
    """Polygons (x right, y down, longest side 1) of a shape; a True flag marks a hole."""
    if name == "circle":
        polys = [(_regular_polygon(72), False)]
    elif name == "square":
        polys = [(np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], float), False)]
    elif name == "triangle":
        polys = [(np.array([[0, -0.5], [0.577, 0.5], [-0.577, 0.5]]), False)]
    elif name == "diamond":
        polys = [(np.array([[0, -0.5], [0.34, 0], [0, 0.5], [-0.34, 0]]), False)]
    elif name == "pentagon":
        polys = [(_regular_polygon(5), False)]
    elif name == "hexagon":
        polys = [(_regular_polygon(6, 0.0), False)]
    elif name == "star":
        outer, inner = _regular_polygon(5), _regular_polygon(5, -math.pi / 2 + math.pi / 5, 0.2)
        polys = [(np.stack([outer, inner], axis=1).reshape(-1, 2), False)]
    elif name == "cross":
        a = 1 / 6  # arm half-width: a thick cross, unlike the thin "+" of a font
        polys = [(np.array([[-a, -.5], [a, -.5], [a, -a], [.5, -a], [.5, a], [a, a], [a, .5],
                            [-a, .5], [-a, a], [-.5, a], [-.5, -a], [-a, -a]]), False)]
    elif name == "ring":
        polys = [(_regular_polygon(72), False), (_regular_polygon(72, radius=0.3), True)]
    elif name == "arrow":
        polys = [(np.array([[-.5, -.11], [.08, -.11], [.08, -.3], [.5, 0], [.08, .3], [.08, .11],
                            [-.5, .11]]), False)]
    elif name == "heart":
        t = np.linspace(0, 2 * math.pi, 72, endpoint=False)
        x = 16 * np.sin(t) ** 3
        y = -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
        polys = [(np.stack([x, y], axis=1), False)]
    elif name == "crescent":
        # Outer arc of the unit circle on the left, closed by an arc of a circle centred right.
        outer_t = np.linspace(math.radians(60), math.radians(300), 40)
        outer = 0.5 * np.stack([np.cos(outer_t), np.sin(outer_t)], axis=1)
        c = 0.3
        r2 = math.hypot(0.25 - c, 0.5 * math.sin(math.radians(60)))
        a0 = math.atan2(-outer[-1, 1], outer[-1, 0] - c)
        inner_t = np.linspace(-a0, a0, 30) + math.pi
        inner = np.stack([c + r2 * np.cos(inner_t), -r2 * np.sin(inner_t)], axis=1)
        polys = [(np.concatenate([outer, inner[::-1]]), False)]
    elif name == "bolt":
        polys = [(np.array([[.12, -.5], [-.28, .06], [-.02, .06], [-.14, .5], [.3, -.1], [.03, -.1]]), False)]
    elif name == "trapezoid":
        polys = [(np.array([[-.3, -.3], [.3, -.3], [.5, .3], [-.5, .3]]), False)]
    else:
        raise UserError(f"unknown shape {name!r}; choose one of {', '.join(SHAPES)}")
    return tuple(_normalise(polys))


def _zhang_suen(mask: np.ndarray) -> np.ndarray:
    """One-pixel-wide skeleton of a boolean mask (Zhang & Suen 1984), vectorised with numpy.

    Each sub-iteration looks at the 8 neighbours of all pixels at once through shifted views and
    peels off the deletable boundary pixels together, so a 64x64 glyph thins in well under 1 ms.
    """
    img = np.pad(mask.astype(np.uint8), 1)
    while True:
        changed = False
        for step in (0, 1):
            c = img[1:-1, 1:-1]
            p2, p3, p4 = img[:-2, 1:-1], img[:-2, 2:], img[1:-1, 2:]
            p5, p6, p7 = img[2:, 2:], img[2:, 1:-1], img[2:, :-2]
            p8, p9 = img[1:-1, :-2], img[:-2, :-2]
            ring = (p2, p3, p4, p5, p6, p7, p8, p9, p2)
            count = p2 + p3 + p4 + p5 + p6 + p7 + p8 + p9
            transitions = sum(((a == 0) & (b == 1)).astype(np.uint8) for a, b in zip(ring, ring[1:]))
            if step == 0:
                cond = (p2 * p4 * p6 == 0) & (p4 * p6 * p8 == 0)
            else:
                cond = (p2 * p4 * p8 == 0) & (p2 * p6 * p8 == 0)
            delete = (c == 1) & (count >= 2) & (count <= 6) & (transitions == 1) & cond
            if delete.any():
                c[delete] = 0  # c is a view: this edits img in place
                changed = True
        if not changed:
            return img[1:-1, 1:-1].astype(bool)


_NEIGHBOURS = ((-1, 0), (1, 0), (0, -1), (0, 1), (-1, -1), (-1, 1), (1, -1), (1, 1))


def _trace(skel: np.ndarray) -> list[tuple[np.ndarray, bool, bool]]:
    """Walk a skeleton into polylines: (points (n, 2) as x, y; start is free end; end is free end).

    Pixels are graph nodes joined to their 8 neighbours, except a diagonal link when the two
    pixels also meet through a shared 4-neighbour (that link would make tiny triangles at every
    corner). Runs of degree-2 pixels between end/junction pixels become polylines; leftover
    cycles ("O", "0") become closed polylines.
    """
    pixels = {(int(y), int(x)) for y, x in zip(*np.nonzero(skel))}
    adj: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for y, x in sorted(pixels):
        nbs = []
        for dy, dx in _NEIGHBOURS:
            q = (y + dy, x + dx)
            if q not in pixels:
                continue
            if dy and dx and ((y + dy, x) in pixels or (y, x + dx) in pixels):
                continue
            nbs.append(q)
        adj[(y, x)] = nbs
    nodes = [p for p in sorted(adj) if len(adj[p]) != 2]
    node_set = set(nodes)
    seen: set[frozenset] = set()
    lines: list[tuple[list[tuple[int, int]], bool, bool]] = []
    for start in nodes:
        if not adj[start]:
            lines.append(([start], True, True))  # a dot ("i", "j", "!")
            continue
        for nb in adj[start]:
            if frozenset((start, nb)) in seen:
                continue
            seen.add(frozenset((start, nb)))
            path, prev, cur = [start, nb], start, nb
            while cur not in node_set:
                nxt = [q for q in adj[cur] if q != prev]
                if not nxt or frozenset((cur, nxt[0])) in seen:
                    break
                seen.add(frozenset((cur, nxt[0])))
                prev, cur = cur, nxt[0]
                path.append(cur)
            lines.append((path, len(adj[start]) == 1, len(adj[cur]) == 1))
    for start in sorted(adj):  # cycles without any end or junction pixel
        for nb in adj[start]:
            if frozenset((start, nb)) in seen:
                continue
            seen.add(frozenset((start, nb)))
            path, prev, cur = [start, nb], start, nb
            while cur != start:
                nxt = [q for q in adj[cur] if q != prev and frozenset((cur, q)) not in seen]
                if not nxt:
                    break
                seen.add(frozenset((cur, nxt[0])))
                prev, cur = cur, nxt[0]
                path.append(cur)
            lines.append((path, False, False))
    return [(np.array([(x, y) for y, x in p], float), a, b) for p, a, b in lines]


def _smooth_polyline(pts: np.ndarray, step: float, closed: bool) -> np.ndarray:
    """Resample at even arc length and average neighbours: removes the pixel staircase."""
    if len(pts) < 2:
        return pts
    if closed:
        pts = np.concatenate([pts, pts[:1]])
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    arc = np.concatenate([[0.0], np.cumsum(seg)])
    n = max(2, int(round(arc[-1] / step)) + 1)
    s = np.linspace(0, arc[-1], n)
    res = np.stack([np.interp(s, arc, pts[:, 0]), np.interp(s, arc, pts[:, 1])], axis=1)
    if len(res) >= 5:
        mode = "wrap" if closed else "nearest"
        sm = ndimage.uniform_filter1d(res, size=5, axis=0, mode=mode)
        if not closed:  # keep the stroke's true ends
            sm[0], sm[-1] = res[0], res[-1]
        res = sm
    return res


class _Skeleton(NamedTuple):
    """Pen strokes of a glyph in cap-height units, centred on the glyph's ink box."""

    strokes: tuple[tuple[np.ndarray, bool, bool], ...]  # (points, start free, end free)
    w: float
    h: float


def _length(pts: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(pts, axis=0), axis=1).sum()) if len(pts) > 1 else 0.0


def _inside(point: np.ndarray, poly: np.ndarray) -> bool:
    """Even-odd ray casting: is `point` inside the closed polygon `poly`?"""
    x, y = float(point[0]), float(point[1])
    xa, ya = poly[:, 0], poly[:, 1]
    xb, yb = np.roll(xa, -1), np.roll(ya, -1)
    crosses = (ya > y) != (yb > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        x_at = xa + (y - ya) * (xb - xa) / (yb - ya)
    return bool(np.count_nonzero(crosses & (x < x_at)) % 2)


@lru_cache(maxsize=4096)
def _skeleton(font: str, text: str) -> _Skeleton:
    """Skeleton strokes of a font glyph, cached per (font, text).

    The glyph is drawn with a 40 px cap height, smoothed and thresholded (fewer spurs), thinned,
    traced, and short spurs (serifs, corner whiskers: < 18% of the cap height, from a free end
    to a junction) are dropped, because a pen does not draw serifs.
    """
    cap = 40.0
    arr = _draw_text(font, text, max(8, int(round(64 * cap / _cap_px(font)))))
    arr = np.pad(arr, 3).astype(np.float32) / 255.0
    mask = ndimage.gaussian_filter(arr, 1.0) > 0.5
    if not mask.any():
        mask = arr > 0.3
    skel = _zhang_suen(mask)
    # Zhang-Suen erases small square blobs completely (a 2x2 block has no "inside"); put the
    # centre of any vanished component back so dots survive.
    labels, count = ndimage.label(mask, structure=np.ones((3, 3)))
    for index in range(1, count + 1):
        part = labels == index
        if not (skel & part).any():
            ys, xs = np.nonzero(part)
            k = int(np.argmin((ys - ys.mean()) ** 2 + (xs - xs.mean()) ** 2))
            skel[ys[k], xs[k]] = True
    lines = _trace(skel)
    for _ in range(2):
        spur = 0.18 * cap
        kept = []
        for pts, free_a, free_b in lines:
            if free_a != free_b and _length(pts) < spur and len(lines) > 1:
                continue
            kept.append((pts, free_a, free_b))
        lines = kept
    # A dot or dash inside a loop is a typographic detail (the dotted zero of DejaVu Sans Mono),
    # not something people write; dots outside loops ("i", "j", "!") stay.
    loops = [pts for pts, a, b in lines if not a and not b and len(pts) > 8]
    lines = [
        (pts, a, b) for pts, a, b in lines
        if not (a and b and _length(pts) < 0.2 * cap
                and any(_inside(pts.mean(axis=0), loop) for loop in loops))
    ]
    ys, xs = np.nonzero(mask)
    cx, cy = (xs.min() + xs.max() + 1) / 2, (ys.min() + ys.max() + 1) / 2
    strokes = []
    for pts, free_a, free_b in lines:
        closed = not free_a and not free_b and len(pts) > 3 and np.abs(pts[0] - pts[-1]).max() <= 1
        pts = _smooth_polyline(pts, 1.5, closed)
        strokes.append((((pts - [cx, cy]) / cap).astype(np.float32), free_a, free_b))
    return _Skeleton(tuple(strokes), (xs.max() + 1 - xs.min()) / cap, (ys.max() + 1 - ys.min()) / cap)


def _shape_strokes(name: str) -> _Skeleton:
    """A hand-drawn shape is its outline: each polygon boundary becomes one closed stroke."""
    strokes = []
    for poly, _ in _shape(name):
        closed = np.concatenate([poly, poly[:1]])
        strokes.append((_smooth_polyline(closed * 40.0, 1.5, False) / 40.0, False, False))
    pts = np.concatenate([p for p, _ in _shape(name)])
    w, h = pts.max(axis=0) - pts.min(axis=0)
    return _Skeleton(tuple(strokes), float(w), float(h))


# --- Handwritten digit forms -------------------------------------------------------------------------------------
# Font skeletons give typographic forms only (a closed-top "4", a "1" with a foot and a flag). People also
# write digits in forms no font has: an open-top "4", a bare stroke "1", a "7" with a bar, a "9" with a
# straight stem. These are pen paths in the order a hand draws them, written from a description of each
# form (no images): x right, y down, cap height 1, centred. Each entry is a list of strokes; a stroke is a
# list of pieces, ("arc", cx, cy, rx, ry, start_deg, end_deg) (y down: 270 is the top, 90 the bottom) or
# ("line", (x, y), (x, y), ...).

_DIGIT_FORMS: dict[str, tuple[tuple[tuple, ...], ...]] = {
    "0": (
        ((("arc", 0.0, 0.0, 0.27, 0.5, 260, 260 - 370),),),  # counter-clockwise from the top, a little overlap
        ((("arc", 0.0, 0.0, 0.24, 0.5, 280, 280 + 365),),),
    ),
    "1": (
        ((("line", (0.02, -0.5), (-0.02, 0.5)),),),  # one stroke
        ((("line", (-0.16, -0.33), (0.03, -0.5), (0.0, 0.5)),),),  # with a flag
    ),
    "2": (
        ((("arc", 0.0, -0.24, 0.25, 0.26, 195, 375), ("line", (-0.26, 0.5), (0.28, 0.5))),),
        ((("arc", 0.0, -0.25, 0.23, 0.25, 200, 370), ("line", (-0.24, 0.46), (-0.12, 0.42), (0.0, 0.5), (0.27, 0.47))),),
    ),
    "3": (
        ((("arc", 0.0, -0.25, 0.23, 0.25, 205, 450), ("arc", 0.0, 0.24, 0.27, 0.26, 270, 520)),),
        ((("line", (-0.22, -0.5), (0.24, -0.5), (-0.02, -0.05)), ("arc", 0.0, 0.2, 0.26, 0.3, 265, 510)),),
    ),
    "4": (
        ((("line", (-0.06, -0.5), (-0.28, 0.12), (0.3, 0.12)),), (("line", (0.16, -0.3), (0.14, 0.5)),)),  # open
        ((("line", (0.14, 0.5), (0.14, -0.5), (-0.28, 0.14), (0.3, 0.14)),),),  # closed, one stroke
        ((("line", (-0.22, -0.5), (-0.24, 0.05), (0.28, 0.05)),), (("line", (0.16, -0.5), (0.16, 0.5)),)),  # square
    ),
    "5": (
        ((("line", (-0.2, -0.5), (-0.23, -0.04)), ("arc", 0.0, 0.2, 0.26, 0.3, 215, 505)),
         (("line", (-0.2, -0.5), (0.25, -0.5)),)),
        ((("line", (0.25, -0.5), (-0.19, -0.5), (-0.22, -0.06)), ("arc", 0.0, 0.21, 0.25, 0.29, 210, 500)),),
    ),
    "6": (
        ((("line", (0.2, -0.5), (0.02, -0.4), (-0.16, -0.18), (-0.25, 0.08), (-0.25, 0.22)),
          ("arc", 0.0, 0.22, 0.25, 0.27, 180, 180 - 355)),),
        ((("line", (0.12, -0.5), (-0.1, -0.2), (-0.24, 0.18)), ("arc", 0.0, 0.25, 0.24, 0.25, 190, 190 - 350)),),
    ),
    "7": (
        ((("line", (-0.27, -0.5), (0.27, -0.5), (-0.06, 0.5)),),),
        ((("line", (-0.27, -0.42), (-0.27, -0.5), (0.27, -0.5), (-0.02, 0.5)),),),
        ((("line", (-0.27, -0.5), (0.27, -0.5), (-0.06, 0.5)),), (("line", (-0.1, 0.0), (0.22, 0.0)),)),  # barred
    ),
    "8": (
        ((("arc", 0.0, -0.26, 0.21, 0.24, 0, -360),), (("arc", 0.0, 0.24, 0.26, 0.26, 270, 270 + 360),)),
        ((("line", (0.2, -0.38)), ("arc", 0.0, -0.26, 0.21, 0.24, -30, -180), ("line", (0.22, 0.2)),
          ("arc", 0.0, 0.24, 0.25, 0.26, 0, 180), ("line", (0.2, -0.38))),),  # one stroke, crossing in the middle
    ),
    "9": (
        ((("arc", 0.0, -0.22, 0.24, 0.27, 0, -360), ("line", (0.24, -0.22), (0.2, 0.5))),),  # straight stem
        ((("arc", 0.0, -0.22, 0.24, 0.27, 0, -360), ("line", (0.24, -0.2), (0.2, 0.2), (0.05, 0.5))),),  # curved
    ),
}

HAND_FORM_PROB = 0.7  # share of handwritten digits drawn from _DIGIT_FORMS rather than a font's skeleton


def _form_piece(piece: tuple) -> np.ndarray:
    if piece[0] == "arc":
        _, cx, cy, rx, ry, start, end = piece
        t = np.radians(np.linspace(start, end, max(8, int(abs(end - start) / 5))))
        return np.stack([cx + rx * np.cos(t), cy + ry * np.sin(t)], axis=1)
    return np.asarray(piece[1:], dtype=np.float64)


@lru_cache(maxsize=None)
def _digit_form(text: str, variant: int) -> _Skeleton:
    """Pen strokes of one handwritten form of a digit, in the units of `_skeleton` (cap height, centred)."""
    cap = 40.0
    raw = [np.concatenate([_form_piece(piece) for piece in stroke]) for stroke in _DIGIT_FORMS[text][variant]]
    ink = np.concatenate(raw)
    lo, hi = ink.min(axis=0), ink.max(axis=0)
    strokes = []
    for pts in raw:
        closed = bool(np.abs(pts[0] - pts[-1]).max() < 0.06)
        pts = _smooth_polyline((pts - (lo + hi) / 2) * cap, 1.5, False) / cap
        strokes.append((pts.astype(np.float32), not closed, not closed))
    return _Skeleton(tuple(strokes), float(hi[0] - lo[0]), float(hi[1] - lo[1]))


# ---------------------------------------------------------------------------------------------
# Placement, backgrounds and compositing
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
    scale = style.size * canvas
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


# ---------------------------------------------------------------------------------------------
# Styles
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


def source_style(rng: np.random.Generator) -> GlyphStyle:
    """Style for the backbone source task: colourful, textured, outlined, shadowed; never hand.

    Never white-on-black plain: the source must differ from the digit targets in style, not
    only content. Rotation stays within +-30 degrees so "<"/">" and "b"/"q" remain distinct.
    """
    font = _choice(rng, _list_font_names())
    for _ in range(20):
        bg = _rgb(rng.random(), rng.uniform(0.35, 1.0), rng.uniform(0.35, 1.0))
        fg = _rgb(rng.random(), rng.uniform(0.4, 1.0), rng.uniform(0.2, 1.0))
        if rng.random() < 0.25:  # some near-white/near-black glyphs, but on coloured ground
            fg = _rgb(0, 0, 1.0) if _luma(bg) < 0.55 else _rgb(0, 0, 0.05)
        if abs(_luma(fg) - _luma(bg)) >= 0.3:
            break
    else:
        fg = (255, 255, 255) if _luma(bg) < 0.5 else (0, 0, 0)
    return GlyphStyle(
        font=font,
        hand=False,
        size=float(rng.uniform(0.5, 0.9)),
        rotation=float(rng.uniform(-30, 30)),
        slant=float(rng.uniform(-0.3, 0.3)),
        dx=float(rng.uniform(-0.15, 0.15)),
        dy=float(rng.uniform(-0.15, 0.15)),
        stroke_width=float(rng.uniform(1.5, 3.5)),
        weight=_stroke_weight(rng, font),
        outline=bool(rng.random() < 0.35),
        blur=0.0 if rng.random() < 0.7 else float(rng.uniform(0.4, 1.5)),
        fg=fg,
        bg=bg,
        background=_choice(rng, BACKGROUNDS, p=(0.1, 0.2, 0.2, 0.2, 0.15, 0.15)),
        noise=0.0 if rng.random() < 0.5 else float(rng.uniform(0.02, 0.1)),
        elastic=0.0 if rng.random() < 0.7 else float(rng.uniform(0.5, 2.0)),
        shadow=bool(rng.random() < 0.4),
    )


def source_image(class_index: int, rng: np.random.Generator, size: int = 32) -> Image.Image:
    """One image of SOURCE_CLASSES[class_index] in a fresh `source_style`."""
    if not 0 <= class_index < len(SOURCE_CLASSES):
        raise UserError(f"source class index must be in 0..{len(SOURCE_CLASSES) - 1}, got {class_index}")
    return render(SOURCE_CLASSES[class_index], source_style(rng), size, rng)


# ---------------------------------------------------------------------------------------------
# Captions
# ---------------------------------------------------------------------------------------------


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


def contact_sheet(images: list[Image.Image], cols: int = 16, scale: int = 2, gap: int = 2) -> Image.Image:
    """Tile equally sized images into one grid (for looking at outputs)."""
    if not images:
        raise UserError("contact_sheet needs at least one image")
    w, h = images[0].size
    rows = (len(images) + cols - 1) // cols
    sheet = Image.new("RGB", (cols * (w * scale + gap) + gap, rows * (h * scale + gap) + gap), (128, 128, 128))
    for i, im in enumerate(images):
        r, c = divmod(i, cols)
        sheet.paste(im.convert("RGB").resize((w * scale, h * scale), Image.NEAREST),
                    (gap + c * (w * scale + gap), gap + r * (h * scale + gap)))
    return sheet
