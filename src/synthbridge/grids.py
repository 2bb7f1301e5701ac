"""Image grids people look at: tiles of images (torchvision's `make_grid`), labelled side-by-side panels.

`labelled_grid` puts panels left to right (real | plain prompt | style prompt, say), one row per class,
with the class names on the left and a title over each panel: what `invert --grid`, `gap --grid` and
the report's sample grids show. Small images are upscaled with nearest neighbours so strokes stay visible.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw
from torchvision.transforms.functional import pil_to_tensor, to_pil_image
from torchvision.utils import make_grid

from synthbridge.data import ImageSet
from synthbridge.io import atomic_path
from synthbridge.seeding import derive_seed

CELL = 64  # pixels per image: 32px images are upscaled (nearest)
GAP = 8  # pixels between panels
PAD = 2  # pixels between images, so neighbouring cells do not merge
LABEL_WIDTH = 70
HEADER_HEIGHT = 16


def tile(images: Sequence[Image.Image | None], columns: int, *, cell: int | None = None, pad: int = PAD,
         background: int = 255) -> Image.Image:
    """Images in rows of `columns` (None leaves a blank cell), each resized to `cell` pixels (nearest;
    default: the first image's size), `pad` pixels apart."""
    size = cell or next(image for image in images if image is not None).size[0]
    blank = torch.full((3, size, size), background, dtype=torch.uint8)
    tensors = [blank if image is None else
               pil_to_tensor(image.convert("RGB").resize((size, size), Image.Resampling.NEAREST)) for image in images]
    grid = make_grid(torch.stack(tensors), nrow=columns, padding=pad, pad_value=background)
    return to_pil_image(grid)


def labelled_grid(panels: Sequence[tuple[str, Sequence[Sequence[Image.Image]]]], row_labels: Sequence[str],
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
        if count:
            cells = [row[c] if c < len(row) else None for row in rows for c in range(count)]
            cells += [None] * (count * len(row_labels) - len(cells))
            # make_grid pads around every cell: drop the outer padding so cells sit at x + c * step
            panel = tile(cells, count, cell=cell)
            canvas.paste(panel.crop((PAD, PAD, PAD + count * step, PAD + len(row_labels) * step)), (x, HEADER_HEIGHT))
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
