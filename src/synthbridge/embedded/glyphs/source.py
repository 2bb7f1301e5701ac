"""The backbone source task: letters, symbols and shapes but never digits, drawn colourful,
textured, outlined and shadowed, so the source differs from the digit targets in content *and*
style (as ImageNet differs from aircraft).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from synthbridge.embedded.glyphs.compose import render
from synthbridge.embedded.glyphs.fonts import DIGITS, LETTERS, SYMBOLS, _list_font_names
from synthbridge.embedded.glyphs.shapes import SHAPES
from synthbridge.embedded.glyphs.styles import BACKGROUNDS, GlyphStyle, _choice, _luma, _rgb, _stroke_weight
from synthbridge.errors import UserError

SOURCE_CLASSES: tuple[str, ...] = (
    tuple(LETTERS) + SYMBOLS + tuple(f"shape:{name}" for name in SHAPES)
)
# The source task must not contain the target's content (digits): that is the point of it.
assert not any(ch in DIGITS for cls in SOURCE_CLASSES for ch in cls), "digit in SOURCE_CLASSES"
assert len(set(SOURCE_CLASSES)) == len(SOURCE_CLASSES) >= 70


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
