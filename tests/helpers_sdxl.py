"""A tiny, randomly initialised Stable Diffusion XL pipeline built in code (no downloads), for the tests.

SDXL's structure in miniature: a UNet with `addition_embed_type="text_time"` (the pooled text embedding
and six size/crop numbers are added to the time embedding), two CLIP text encoders (`CLIPTextModel` and
`CLIPTextModelWithProjection`, whose hidden states are concatenated for cross-attention) with a tokenizer
each (the tiny CLIP BPE tokenizer the SD tests use), a VAE and SDXL's own Euler scheduler. It makes 32x32
images (latents 4x16x16) in tens of milliseconds on a CPU.

    path = save_tiny_sdxl(tmp_path / "tiny-sdxl")       # model_index.json names StableDiffusionXLPipeline
"""

from __future__ import annotations

from pathlib import Path

import torch

TEXT_WIDTHS = (16, 24)  # the two text encoders' widths differ, as in SDXL (768 and 1280)
PROJECTION_DIM = 16  # width of text_encoder_2's pooled, projected output
TIME_EMBED_DIM = 8  # per size/crop number


def tiny_sdxl_pipeline(seed: int = 0):
    """A random StableDiffusionXLPipeline in float32 on the CPU; every component seeded from `seed`."""
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from synthbridge.embedded.tiny import tiny_tokenizer

    tokenizer, tokenizer_2 = tiny_tokenizer(), tiny_tokenizer()
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(16, 32), layers_per_block=1, sample_size=16, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        attention_head_dim=(2, 4), use_linear_projection=True, norm_num_groups=8,
        cross_attention_dim=sum(TEXT_WIDTHS), addition_embed_type="text_time", addition_time_embed_dim=TIME_EMBED_DIM,
        projection_class_embeddings_input_dim=6 * TIME_EMBED_DIM + PROJECTION_DIM)
    torch.manual_seed(seed + 1)
    vae = AutoencoderKL(block_out_channels=(8, 16), in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=4,
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2,
                        sample_size=32)

    def text_config(width: int) -> CLIPTextConfig:
        return CLIPTextConfig(
            hidden_size=width, intermediate_size=2 * width, num_attention_heads=2, num_hidden_layers=2,
            projection_dim=PROJECTION_DIM, vocab_size=len(tokenizer), max_position_embeddings=tokenizer.model_max_length,
            bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)

    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(text_config(TEXT_WIDTHS[0]))
    torch.manual_seed(seed + 3)
    text_encoder_2 = CLIPTextModelWithProjection(text_config(TEXT_WIDTHS[1]))
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       steps_offset=1, timestep_spacing="leading")
    return StableDiffusionXLPipeline(vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2,
                                     tokenizer=tokenizer, tokenizer_2=tokenizer_2, unet=unet, scheduler=scheduler,
                                     add_watermarker=False)


def save_tiny_sdxl(path: str | Path, seed: int = 0) -> Path:
    """Write `tiny_sdxl_pipeline(seed)` with save_pretrained: a folder any diffusers loader reads."""
    path = Path(path)
    tiny_sdxl_pipeline(seed).save_pretrained(path, safe_serialization=True)
    return path


def write_flux_like_folder(path: str | Path) -> Path:
    """The config files (no weights) of a FLUX-like folder: a transformer, CLIP + T5 text encoders and a flow-matching
    scheduler. Enough for everything that reads a generator's files before loading it."""
    import json

    path = Path(path)
    files = {
        "model_index.json": {"_class_name": "FluxPipeline", "_diffusers_version": "0.32.0",
                             "transformer": ["diffusers", "FluxTransformer2DModel"], "vae": ["diffusers", "AutoencoderKL"],
                             "text_encoder": ["transformers", "CLIPTextModel"], "tokenizer": ["transformers", "CLIPTokenizer"],
                             "text_encoder_2": ["transformers", "T5EncoderModel"],
                             "tokenizer_2": ["transformers", "T5TokenizerFast"],
                             "scheduler": ["diffusers", "FlowMatchEulerDiscreteScheduler"]},
        "transformer/config.json": {"_class_name": "FluxTransformer2DModel", "in_channels": 64},
        "vae/config.json": {"_class_name": "AutoencoderKL", "block_out_channels": [8, 16]},
        "scheduler/scheduler_config.json": {"_class_name": "FlowMatchEulerDiscreteScheduler", "shift": 3.0},
    }
    for name, content in files.items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(json.dumps(content), encoding="utf-8")
    return path
