"""Stage of the flow between prompts and generation: dataset style inversion.

One new token learned by textual inversion over the whole real training set (all classes together),
then used in every generation prompt ("a {class} photo in the style of <mnist5k-style>").

    from synthbridge.inversion import InvertConfig, invert, load_style
    summary = invert(InvertConfig(out="STYLE/", dataset="mnist5k", generator="mini"))
    token = load_style(pipe, "STYLE/")   # any StableDiffusionPipeline of the same generator

In: a dataset and a Stable Diffusion generator. Out: a style folder (learned_embeds.safetensors in
diffusers' textual-inversion format, invert.json). Modules: `config` (InvertConfig), `train` (the
numbered steps of `invert`), `style` (the folder on disk, `load_style`), `grid` (real | plain | style
image grids), `cli` (`synthbridge invert`).
"""

from __future__ import annotations

from synthbridge.inversion.config import WORLD_DEFAULTS, InvertConfig, default_token
from synthbridge.inversion.grid import image_grid, style_grid
from synthbridge.inversion.style import STYLE_EMBEDS, STYLE_INFO, load_style, read_style
from synthbridge.inversion.train import add_token, invert

__all__ = ["InvertConfig", "STYLE_EMBEDS", "STYLE_INFO", "WORLD_DEFAULTS", "add_token", "default_token", "image_grid",
           "invert", "load_style", "read_style", "style_grid"]
