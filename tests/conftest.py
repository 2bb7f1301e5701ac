"""Shared test fixtures: tiny components built in code, no downloads (as diffusers' own tests do)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def one_torch_thread():
    """Tiny models gain nothing from threads, and on a shared 2-core machine OpenMP threads that spin while
    other jobs (or the test's own subprocesses) run make each call many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's 8x8 digits as a DatasetBundle (read-only: shared by the whole session)."""
    from synthbridge.data import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="session")
def tiny_sd_path(tmp_path_factory) -> Path:
    """A randomly initialised Stable Diffusion folder in the full SD layout, written with save_pretrained:
    model_index.json, unet/, vae/, text_encoder/, tokenizer/ (CLIP BPE: vocab.json, merges.txt,
    tokenizer.json), scheduler/ (DDIM, clip_sample=False); no safety checker. It makes 16x16 images
    (latents 4x8x8), text width 16, in milliseconds on a CPU. Load it with
    `StableDiffusionPipeline.from_pretrained(path, safety_checker=None, requires_safety_checker=False)`.
    Treat it as read-only: it is shared by the whole session."""
    from synthbridge.embedded.tiny import save_tiny_pipeline

    return save_tiny_pipeline(tmp_path_factory.mktemp("tiny-sd") / "pipeline", size="test", seed=0)


@pytest.fixture(scope="session")
def tiny_sdxl_path(tmp_path_factory) -> Path:
    """A randomly initialised SDXL folder (tests/helpers_sdxl.py) written with save_pretrained: two CLIP text
    encoders, a text_time UNet, 32x32 images. Read-only: shared by the whole session."""
    from helpers_sdxl import save_tiny_sdxl

    return save_tiny_sdxl(tmp_path_factory.mktemp("tiny-sdxl") / "pipeline", seed=0)
