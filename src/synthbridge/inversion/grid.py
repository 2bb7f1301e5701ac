"""`style_grid`: real | plain prompt | style prompt, one row per class, to look at what a style token changes.

The plain and the style prompt of each cell use the same seed, so the two images differ only by the prompt.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from synthbridge.data import DatasetBundle, ImageSet
from synthbridge.grids import labelled_grid, pick_per_class, save_png
from synthbridge.seeding import derive_seed


def style_grid(style_dir: str | Path, *, out: str | Path | None = None, per_class: int = 4, seed: int = 0,
               pipeline=None, bundle: DatasetBundle | None = None, real_images: ImageSet | None = None) -> Path:
    """Write real | plain prompt | style prompt (one row per class) for a style folder; returns the PNG path.

    `pipeline`: a loaded generator (the style is loaded into it if it lacks it); default: the folder's
    generator. `bundle`/`real_images`: the dataset and the real images to show (default: its train split).
    The sampler is the generator's default (scheduler, steps, guidance), as `synthbridge generate` uses it.
    """
    import torch

    from synthbridge.data import load_dataset
    from synthbridge.diffusion.pipeline import generator_info, open_generator, set_scheduler
    from synthbridge.diffusion.sampling import render
    from synthbridge.diffusion.styles import GRID, load_style, read_style
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
    grid = labelled_grid([("real", real), ("plain prompt", draw(plain, None)), (f"style {token}", draw(styled, token))],
                      bundle.phrases)
    return save_png(grid, out if out is not None else Path(style_dir) / GRID)
