"""A tiny random image-variation pipeline (diffusers' StableUnCLIPImg2ImgPipeline: a CLIP image encoder whose
embedding, with a noise-level embedding, conditions the UNet) saved as a diffusers folder, for GIF's tests."""

from __future__ import annotations

from pathlib import Path

import torch


def save_tiny_unclip(path: Path, seed: int = 0) -> Path:
    from diffusers import DDPMScheduler, StableUnCLIPImg2ImgPipeline, UNet2DConditionModel
    from diffusers.pipelines.stable_diffusion.stable_unclip_image_normalizer import StableUnCLIPImageNormalizer
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    from synthbridge.embedded.tiny import tiny_pipeline

    base = tiny_pipeline("test", seed)
    embedding = 8  # the CLIP image embedding's width
    torch.manual_seed(seed + 4)
    encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=16, projection_dim=embedding, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
        image_size=16, patch_size=8))
    config = {key: value for key, value in dict(base.unet.config).items() if not key.startswith("_")}
    unet = UNet2DConditionModel(**{**config, "class_embed_type": "projection",
                                   "projection_class_embeddings_input_dim": 2 * embedding})
    pipe = StableUnCLIPImg2ImgPipeline(
        feature_extractor=CLIPImageProcessor(crop_size=16, size=16), image_encoder=encoder,
        image_normalizer=StableUnCLIPImageNormalizer(embedding_dim=embedding),
        image_noising_scheduler=DDPMScheduler(beta_schedule="squaredcos_cap_v2"), tokenizer=base.tokenizer,
        text_encoder=base.text_encoder, unet=unet, scheduler=base.scheduler, vae=base.vae)
    pipe.save_pretrained(path, safe_serialization=True)
    return path
