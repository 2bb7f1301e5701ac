"""A tiny random instruction-editing pipeline (diffusers' StableDiffusionInstructPix2PixPipeline: a UNet that reads
the noisy latents and the image's latents, 8 channels) saved as a diffusers folder, for DiffuseMix's tests."""

from __future__ import annotations

from pathlib import Path

import torch


def save_tiny_pix2pix(path: Path, seed: int = 0) -> Path:
    from diffusers import StableDiffusionInstructPix2PixPipeline, UNet2DConditionModel

    from synthbridge.embedded.tiny import tiny_pipeline

    base = tiny_pipeline("test", seed)
    torch.manual_seed(seed + 3)
    config = dict(base.unet.config)
    unet = UNet2DConditionModel(**{key: value for key, value in config.items() if not key.startswith("_")
                                   and key != "in_channels"}, in_channels=8)
    pipe = StableDiffusionInstructPix2PixPipeline(
        vae=base.vae, text_encoder=base.text_encoder, tokenizer=base.tokenizer, unet=unet, scheduler=base.scheduler,
        safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(path, safe_serialization=True)
    return path
