"""Fonts: which of matplotlib's bundled font files draw which characters, and canonical glyph masks.

A font is used for a character only after a rendering check proved that it draws that character
properly (`list_fonts`, `fonts_for`, `can_draw`); `_resolve_font` falls back to the most similar
font (`_font_traits`) when a style's font lacks a character, and `_glyph` is the cached canonical
mask of a character that the compositor transforms onto the canvas.
"""

from __future__ import annotations

import string
from functools import cache, lru_cache
from pathlib import Path
from typing import NamedTuple

import matplotlib
import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

from synthbridge.errors import UserError

FONT_DIR: Path = Path(matplotlib.get_data_path()) / "fonts" / "ttf"

DIGITS: str = string.digits
LETTERS: str = string.ascii_uppercase + string.ascii_lowercase
# Symbols for the source task and the corpus. Chosen so none looks like a digit; mirror pairs
# ("]", "}", ")") are left out because a mirrored glyph is not a new class.
SYMBOLS: tuple[str, ...] = tuple("+-×÷=#@&%$?!<>*/~^§±[{")

# The characters the font check knows about; other characters are only drawn by the reference
# (Unicode-complete) fonts.
_UNIVERSE: str = LETTERS + DIGITS + "".join(SYMBOLS)
_REF_PREFIXES = ("DejaVu", "STIXGeneral")  # fonts with a correct Unicode cmap: used as templates
_CAP_PX = 96  # canonical glyph masks are drawn with this cap height ("H") in pixels
_MISSING = "\U0010fffd"  # a private-use code point no font draws: its glyph is the font's tofu


@lru_cache(maxsize=4096)
def _font(name: str, px: int) -> ImageFont.FreeTypeFont:
    """ImageFont per (font, pixel size): loading a TTF costs far more than drawing a glyph."""
    return ImageFont.truetype(str(FONT_DIR / name), px)


@cache
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
# Canonical glyph masks
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
