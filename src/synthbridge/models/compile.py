"""`compile_model(module, device)`: `torch.compile` (inductor) of a network for training or sampling.

Inductor needs a toolchain where it runs: a C++ compiler on the CPU (g++, or $CXX), triton on a GPU. A missing one
is a one-line UserError before any work starts; a compilation that still fails (at the first call, where torch
compiles) becomes one line too, through `compile_errors`. Compiling changes results by float rounding only.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import sys
from collections.abc import Iterator

import torch

from synthbridge.errors import UserError


def check_compile(device: torch.device) -> None:
    """Refuse --compile where inductor cannot build kernels for `device` (the same compiler it would look for)."""
    if device.type == "cpu":
        compiler = os.environ.get("CXX", "clang++" if sys.platform == "darwin" else "g++")
        if shutil.which(compiler) is None:
            raise UserError(f"--compile on the CPU needs a C++ compiler for torch's inductor ({compiler!r} is not on "
                            f"PATH; set CXX or install g++), or drop --compile")
    elif device.type == "cuda" and importlib.util.find_spec("triton") is None:
        raise UserError("--compile on a GPU needs triton for torch's inductor (pip install triton), or drop --compile")


def compile_model(module: torch.nn.Module, device: torch.device, **options) -> torch.nn.Module:
    """torch.compile(module, **options) after `check_compile(device)`; the compiled module's state_dict has an
    `_orig_mod.` prefix, so save `module` itself (or `accelerator.unwrap_model(..., keep_torch_compile=False)`)."""
    check_compile(device)
    return torch.compile(module, **options)


@contextlib.contextmanager
def compile_errors(what: str) -> Iterator[None]:
    """A failed compilation inside (torch compiles at the first call) as one UserError line naming `what`."""
    from torch._dynamo.exc import BackendCompilerFailed  # inductor's errors (InductorError) derive from it

    try:
        yield
    except BackendCompilerFailed as exc:
        detail = next((line.strip() for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
        raise UserError(f"--compile: torch.compile could not build {what} ({detail[:200]}); drop --compile") from None


def compile_denoiser(pipe, device: torch.device) -> None:
    """A diffusers pipeline's denoising network compiled in place (`pipe.unet`, or `pipe.transformer` for SD 3,
    PixArt, FLUX), as diffusers' own guide does: it runs once per sampling step, the rest (text encoders, VAE)
    once per image batch. Once is enough: an already compiled denoiser is kept."""
    from diffusers.utils.torch_utils import is_compiled_module

    name = "unet" if getattr(pipe, "unet", None) is not None else "transformer"
    module = getattr(pipe, name)
    if not is_compiled_module(module):
        setattr(pipe, name, compile_model(module, device))
