"""Stage of the flow: dataset style inversion (before generation, which uses the learned token).

One new token learned by textual inversion over the whole real training set (all classes together),
then used in every generation prompt ("a {class} photo in the style of <mnist5k-style>"); or, with
`per_class=True`, one token per class (`<class-K>`, DA-Fusion's form) in place of the class phrase.

    from synthbridge.inversion import InvertConfig, invert
    summary = invert(InvertConfig(out="STYLE/", dataset="mnist5k", generator="mini"))
    token = synthbridge.diffusion.load_style(pipe, "STYLE/")   # any pipeline of the same generator

In: a dataset and a Stable Diffusion generator. Out: a style folder (learned_embeds.safetensors in
diffusers' textual-inversion format, invert.json). Modules: `config` (InvertConfig), `train` (the
numbered steps of `invert`), `grid` (real | plain | style image grids). The folder's format and
`load_style` are `synthbridge.diffusion.styles`.
"""

from synthbridge.inversion.config import CLASS_TOKEN, PROFILES, InvertConfig, class_token, default_token
from synthbridge.inversion.grid import style_grid
from synthbridge.inversion.train import add_class_tokens, add_token, class_initializers, invert

__all__ = ["CLASS_TOKEN", "InvertConfig", "PROFILES", "add_class_tokens", "add_token", "class_initializers",
           "class_token", "default_token", "invert", "style_grid"]
