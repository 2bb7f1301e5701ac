"""`style_grid`: real | plain prompt | style prompt, one row per class, to look at what a style token changes
(a per-class folder: real | plain prompt | class-token prompt, the class's token in place of its phrase).

The plain and the style prompt of each cell use the same seed, so the two images differ only by the prompt.
The images are drawn at the inversion's resolution with the generator's default sampler, capped at GRID_STEPS
denoising steps: a grid is a look, and Stable Diffusion's default 50 steps made it most of an inversion's time.
"""

from __future__ import annotations

from pathlib import Path

from accelerate import PartialState
from PIL import Image

from synthbridge.data import DatasetBundle, ImageSet
from synthbridge.grids import labelled_grid, pick_per_class, save_png
from synthbridge.seeding import derive_seed

GRID_STEPS = 25  # at most this many denoising steps per grid image (the mini generator's default; SD's 50 halved)


def style_grid(style_dir: str | Path, *, out: str | Path | None = None, per_class: int = 4, seed: int = 0,
               pipeline=None, bundle: DatasetBundle | None = None, real_images: ImageSet | None = None,
               resolution: int | None = None, steps: int | None = None) -> Path:
    """Write real | plain prompt | style prompt (one row per class) for a style folder; returns the PNG path.
    For a per-class folder the third panel is each class's token prompt, and the plain prompt is the same template
    with the class phrase where the token stands (the two differ only by the token).

    `pipeline`: a loaded generator (the style is loaded into it if it lacks it); default: the folder's
    generator. `bundle`/`real_images`: the dataset and the real images to show (default: its train split).
    The sampler is the generator's default (scheduler, guidance), as `synthbridge generate` uses it, with
    `steps` denoising steps (default: the generator's default, at most GRID_STEPS). `resolution`: the images'
    pixels (default: the resolution the style was learned at, recorded in invert.json).
    """
    import torch

    from synthbridge.data import load_dataset
    from synthbridge.diffusion.pipeline import denoiser, generator_info, open_generator, set_scheduler
    from synthbridge.diffusion.sampling import render
    from synthbridge.diffusion.styles import GRID, class_tokens, load_style, read_style
    from synthbridge.prompts import TEMPLATES, build_prompt, default_template, resolve_template

    # 1. the style folder, the dataset and the generator with the style loaded
    token, _, info = read_style(style_dir)
    config = info.get("config", {})
    if bundle is None:
        bundle = load_dataset(info["dataset"], data_root=config.get("data_root"))
    tokens = class_tokens(style_dir, bundle.classes)  # None: one dataset token
    device = pipeline.device if pipeline is not None else PartialState().device
    dtype = {torch.float16: "fp16", torch.bfloat16: "bf16"}.get(denoiser(pipeline).dtype, "fp32") if pipeline else "fp32"
    generator = generator_info(info["generator"])
    pipeline = open_generator(generator, dtype, device, pipeline)
    load_style(pipeline, style_dir)
    defaults = generator.defaults
    set_scheduler(pipeline, defaults["scheduler"])
    size = int(resolution or config.get("resolution") or generator.native_size)
    steps = int(steps or min(int(defaults["steps"]), GRID_STEPS))

    # 2. prompts: the dataset's plain template and the style template, one seed per cell shared by both
    plain = TEMPLATES.get(default_template(bundle.name))
    styled = resolve_template(info.get("template") or config.get("template") or "style")  # the one it learned in
    seeds = [derive_seed(seed, "grid", name, i) for name in bundle.classes for i in range(per_class)]

    def draw(template: str, token_or_none: str | None, names: list[str] = bundle.phrases) -> list[list[Image.Image]]:
        prompts = [build_prompt(template, name, bundle.superclass, token_or_none)
                   for name in names for _ in range(per_class)]
        images: list[Image.Image] = []
        for start in range(0, len(prompts), 16):  # bounded memory at full scale
            batch, _ = render(pipeline, prompts[start:start + 16], seeds[start:start + 16], negative_prompt=None,
                              steps=steps, guidance_scale=float(defaults["guidance_scale"]), height=size, width=size)
            images += batch
        return [images[i:i + per_class] for i in range(0, len(images), per_class)]

    # 3. compose and write
    real = pick_per_class(real_images if real_images is not None else bundle.train, bundle.num_classes, per_class, seed)
    if tokens is None:
        panels = [("plain prompt", draw(plain, None)), (f"style {token}", draw(styled, token))]
    else:  # the learned template with the phrase, then with each class's token in its place
        panels = [("plain prompt", draw(styled, None)),
                  ("class token", draw(styled, None, [tokens[name] for name in bundle.classes]))]
    grid = labelled_grid([("real", real), *panels], bundle.phrases)
    return save_png(grid, out if out is not None else Path(style_dir) / GRID)
