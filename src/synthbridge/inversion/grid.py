"""Side-by-side image grids, to look at what a style token changes.

In: labelled panels of images, one row per class. Out: one PIL image (or a PNG file) with the panels
next to each other: e.g. real | plain prompt | style prompt. `style_grid` makes that comparison for a
style folder: the plain and the style prompt of each cell use the same seed, so the two images differ
only by the prompt.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from synthbridge.data import DatasetBundle, ImageSet
from synthbridge.io import atomic_path
from synthbridge.seeding import derive_seed

CELL = 64  # pixels per image in the grid: 32px images are upscaled (nearest) so strokes stay visible
GAP = 8  # pixels between panels
PAD = 2  # pixels between images, so neighbouring cells do not merge
LABEL_WIDTH = 70
HEADER_HEIGHT = 16


def image_grid(panels: Sequence[tuple[str, Sequence[Sequence[Image.Image]]]], row_labels: Sequence[str],
               cell: int = CELL) -> Image.Image:
    """Panels left to right (title, rows of images), one row per label; short rows leave blank cells."""
    columns = [max((len(row) for row in rows), default=0) for _, rows in panels]
    step = cell + PAD
    width = LABEL_WIDTH + sum(n * step for n in columns) + GAP * (len(panels) - 1)
    height = HEADER_HEIGHT + step * len(row_labels)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)
    for r, label in enumerate(row_labels):
        draw.text((4, HEADER_HEIGHT + r * step + cell // 2 - 6), str(label)[:11], fill="black")
    x = LABEL_WIDTH
    for (title, rows), count in zip(panels, columns):
        draw.text((x + 2, 2), title, fill="black")
        for r, row in enumerate(rows):
            for c, image in enumerate(row):
                tile = image.convert("RGB").resize((cell, cell), Image.Resampling.NEAREST)
                canvas.paste(tile, (x + c * step, HEADER_HEIGHT + r * step))
        x += count * step + GAP
    return canvas


def save_png(image: Image.Image, path: str | Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        image.save(tmp, format="PNG")
    return path


def pick_per_class(images: ImageSet, num_classes: int, per_class: int, seed: int) -> list[list[Image.Image]]:
    """`per_class` images of each class (seeded choice), as rows."""
    targets = np.asarray(images.targets)
    rng = np.random.default_rng(derive_seed(seed, "grid", "real") % 2**32)
    rows = []
    for label in range(num_classes):
        members = np.flatnonzero(targets == label)
        chosen = rng.choice(members, size=min(per_class, len(members)), replace=False) if len(members) else []
        rows.append([images.load(int(i)).convert("RGB") for i in sorted(chosen)])
    return rows


def style_grid(style_dir: str | Path, *, out: str | Path | None = None, per_class: int = 4, seed: int = 0,
               pipeline=None, bundle: DatasetBundle | None = None, real_images: ImageSet | None = None) -> Path:
    """Write real | plain prompt | style prompt (one row per class) for a style folder; returns the PNG path.

    `pipeline`: a loaded generator (the style is loaded into it if it lacks it); default: the folder's
    generator. `bundle`/`real_images`: the dataset and the real images to show (default: its train split).
    The sampler is the generator's default (scheduler, steps, guidance), as `synthbridge generate` uses it.
    """
    import torch

    from synthbridge.data import load_dataset
    from synthbridge.inversion.generator import generator_info, open_generator, render, set_scheduler
    from synthbridge.inversion.style import GRID, load_style, read_style
    from synthbridge.prompts import TEMPLATES, build_prompt, default_template, resolve_template

    # 1. the style folder, the dataset and the generator with the style loaded
    token, _, info = read_style(style_dir)
    config = info.get("config", {})
    if bundle is None:
        bundle = load_dataset(info["dataset"], data_root=config.get("data_root"))
    device = pipeline.device if pipeline is not None else torch.device("cpu")
    dtype = {torch.float16: "fp16", torch.bfloat16: "bf16"}.get(pipeline.unet.dtype, "fp32") if pipeline else "fp32"
    generator = generator_info(info["generator"])
    pipeline = open_generator(generator, dtype, device, pipeline)
    load_style(pipeline, style_dir)
    defaults = generator.defaults
    set_scheduler(pipeline, defaults["scheduler"])
    size = generator.native_size

    # 2. prompts: the dataset's plain template and the style template, one seed per cell shared by both
    plain = TEMPLATES.get(default_template(bundle.name))
    styled = resolve_template(info.get("template") or config.get("template") or "style")  # the one it learned in
    seeds = [derive_seed(seed, "grid", name, i) for name in bundle.classes for i in range(per_class)]

    def draw(template: str, token_or_none: str | None) -> list[list[Image.Image]]:
        prompts = [build_prompt(template, phrase, bundle.superclass, token_or_none)
                   for phrase in bundle.phrases for _ in range(per_class)]
        images: list[Image.Image] = []
        for start in range(0, len(prompts), 16):  # bounded memory at full scale
            batch, _ = render(pipeline, prompts[start:start + 16], seeds[start:start + 16], negative_prompt=None,
                              steps=int(defaults["steps"]), guidance_scale=float(defaults["guidance_scale"]),
                              height=int(defaults.get("height") or size), width=int(defaults.get("width") or size))
            images += batch
        return [images[i:i + per_class] for i in range(0, len(images), per_class)]

    # 3. compose and write
    real = pick_per_class(real_images if real_images is not None else bundle.train, bundle.num_classes, per_class, seed)
    grid = image_grid([("real", real), ("plain prompt", draw(plain, None)), (f"style {token}", draw(styled, token))],
                      bundle.phrases)
    return save_png(grid, out if out is not None else Path(style_dir) / GRID)
