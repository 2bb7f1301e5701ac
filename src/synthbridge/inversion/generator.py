"""The generator as inversion sees it: one door to `synthbridge.generation.pipeline`.

In: a generator name ("mini", a local diffusers folder, a hub id in the local cache). Out: the loaded
StableDiffusionPipeline and its `GeneratorInfo` (identity, native size, sampler defaults). Kept in one
place so that inversion and `generate` always agree on what a generator name means.
"""

from __future__ import annotations

import torch

from synthbridge.errors import UserError
from synthbridge.generation.pipeline import (GeneratorInfo, describe_generator, load_generator, locate_generator,
                                             render, set_scheduler, torch_dtype)


def generator_info(name: str) -> GeneratorInfo:
    """Identity and defaults of a generator from its folder's files; a missing generator is a UserError."""
    folder, recorded_name = locate_generator(name)
    return describe_generator(recorded_name, folder)


def open_generator(info: GeneratorInfo, dtype: str, device: torch.device, pipeline=None):
    """The pipeline of `info` on `device` in `dtype`. `pipeline`: one the caller already loaded for it."""
    if pipeline is None:
        return load_generator(info, dtype, device, quiet=True)
    wanted = torch_dtype(dtype, device)
    if pipeline.unet.dtype != wanted:
        raise UserError(f"the given pipeline is {pipeline.unet.dtype}, but the config asks for {dtype}; "
                        f"load it in {wanted} or change --dtype")
    return pipeline.to(device)


__all__ = ["GeneratorInfo", "generator_info", "open_generator", "render", "set_scheduler", "torch_dtype"]
