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

The package, by concern (each module imports only the ones above it):

    fonts.py      character sets, font discovery and checks, font traits, canonical glyph masks
    shapes.py     procedural shapes ("shape:<name>") as polygons
    strokes.py    pen paths: glyph skeletons, shape outlines, handwritten digit forms
    styles.py     `GlyphStyle` and the style samplers (baseline, hand, random)
    textures.py   backgrounds
    compose.py    placement, coverage, compositing; `render`, `render_hand`, `glyph_alpha`, `contact_sheet`
    source.py     the backbone source task (`SOURCE_CLASSES`, `source_style`, `source_image`)
    captions.py   `describe`
"""

from synthbridge.embedded.glyphs.captions import describe
from synthbridge.embedded.glyphs.compose import contact_sheet, glyph_alpha, render, render_hand
from synthbridge.embedded.glyphs.fonts import DIGITS, FONT_DIR, LETTERS, SYMBOLS, can_draw, fonts_for, list_fonts
from synthbridge.embedded.glyphs.shapes import SHAPES
from synthbridge.embedded.glyphs.source import SOURCE_CLASSES, source_image, source_style
from synthbridge.embedded.glyphs.styles import (
    BACKGROUNDS,
    WEIGHTS,
    GlyphStyle,
    baseline_digit_style,
    hand_digit_style,
    random_style,
)

__all__ = [
    "FONT_DIR",
    "DIGITS",
    "LETTERS",
    "SYMBOLS",
    "SHAPES",
    "SOURCE_CLASSES",
    "BACKGROUNDS",
    "WEIGHTS",
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
