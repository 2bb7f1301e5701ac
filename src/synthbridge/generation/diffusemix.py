"""DiffuseMix's images (Islam et al., CVPR 2024): a real image edited by an instruction-editing model (diffusers'
`StableDiffusionInstructPix2PixPipeline`, any local folder), one half of the edit joined to the other half of the
real image, the result blended with a fractal image; the label stays the real image's class.

    EDITS                               DiffuseMix's editing prompts (the default of `generate --edits`)
    edit_prompt(edits, seed, c, i)      the prompt image (c, i) is edited with, drawn from its seed
    hybrid(real, edited, seed, blend)   the stored image and its record ("original": which half is the real image)
    fractal(seed, width, height)        a coloured Julia set drawn from `seed` (no fractal image collection needed)

Everything is a function of the image's seed, so a resume, a shard or a regeneration makes the same bytes.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from synthbridge.seeding import derive_seed

EDITS = ("autumn", "snowy", "sunset", "watercolor art", "rainbow", "aurora", "mosaic", "ukiyo-e",
         "a sketch with crayon")
HALVES = ("left", "right", "top", "bottom")  # where the real image's half lies in the hybrid


def edit_prompt(edits: Sequence[str], seed: int, class_name: str, index: int) -> str:
    return edits[derive_seed(seed, "edit", class_name, index) % len(edits)]


def fractal(seed: int, width: int, height: int) -> np.ndarray:
    """A Julia set z -> z^2 + c with c on the circle of radius 0.7885 at an angle drawn from `seed`, its escape
    times coloured with a palette drawn from `seed`: uint8 RGB, height x width."""
    rng = np.random.default_rng(derive_seed(seed, "fractal"))
    c = 0.7885 * np.exp(1j * rng.uniform(0, 2 * np.pi))
    x, y = np.meshgrid(np.linspace(-1.6, 1.6, width), np.linspace(-1.6, 1.6, height))
    z, escape = x + 1j * y, np.zeros((height, width))
    for step in range(48):
        inside = np.abs(z) <= 2
        z[inside] = z[inside] ** 2 + c
        escape[inside] = step
    phase, speed = rng.uniform(0, 2 * np.pi, 3), rng.uniform(0.1, 0.4, 3)
    colour = [(np.sin(speed[k] * escape + phase[k]) + 1) * 127.5 for k in range(3)]
    return np.stack(colour, axis=-1).round().astype(np.uint8)


def hybrid(real: Image.Image, edited: Image.Image, seed: int, blend: float) -> tuple[Image.Image, dict]:
    """The real image's half (which one drawn from `seed`: left, right, top or bottom) beside the edit's other half,
    blended with `fractal(seed)` at weight `blend`: (1 - blend) x hybrid + blend x fractal, rounded to uint8."""
    real_pixels = np.asarray(real.convert("RGB"), dtype=np.float64)
    edited_pixels = np.asarray(edited.convert("RGB").resize(real.size, Image.Resampling.LANCZOS), dtype=np.float64)
    height, width = real_pixels.shape[:2]
    half = HALVES[derive_seed(seed, "half") % len(HALVES)]
    keep = np.zeros((height, width, 1), dtype=bool)
    if half == "left":
        keep[:, : width // 2] = True
    elif half == "right":
        keep[:, width // 2:] = True
    elif half == "top":
        keep[: height // 2] = True
    else:
        keep[height // 2:] = True
    mixed = np.where(keep, real_pixels, edited_pixels)
    if blend:
        mixed = (1.0 - blend) * mixed + blend * fractal(seed, width, height)
    image = Image.fromarray(np.clip(np.rint(mixed), 0, 255).astype(np.uint8))
    return image, {"original": half, "fractal_blend": blend}


__all__ = ["EDITS", "HALVES", "edit_prompt", "fractal", "hybrid"]
