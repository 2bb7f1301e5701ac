"""Tiny, randomly initialised Stable Diffusion pipelines built in code (for tests and benchmarks).

In: a size preset and a seed. Out: a `StableDiffusionPipeline` with the full SD structure (UNet with
cross-attention, VAE, CLIP text encoder and BPE tokenizer, DDIM scheduler; no safety checker), or a
folder written by `save_pretrained` that loads like any local SD folder. Nothing is downloaded: the
tokenizer's byte-level BPE vocabulary is built here, as diffusers' own tests build tiny components.

    path = save_tiny_pipeline(tmp_path / "tiny-sd")            # 16x16 images, ~40k parameters
    pipe = StableDiffusionPipeline.from_pretrained(path, safety_checker=None, requires_safety_checker=False)
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

# Words that get whole-word BPE merges, so common prompts tokenise to a few tokens as with the real
# CLIP vocabulary; anything else still tokenises, letter by letter (every byte is in the vocabulary).
COMMON_WORDS = ("a", "an", "the", "of", "in", "on", "good", "photo", "picture", "type", "style", "digit", "digits",
                "handwritten", "number", "image", "drawing", "object", "dog", "cat", "car", "bird", "flower", "plane",
                "aircraft", "food", "blurry", "low", "quality", "white", "black", "background")

# name -> (unet block_out_channels, vae block_out_channels, unet sample_size): "test" makes 16x16 images
# in milliseconds; "bench" makes 32x32 images with a ~0.5 M parameter UNet, closer to real proportions.
SIZES = {
    "test": ((16, 32), (8, 16), 8),
    "bench": ((24, 48), (16, 32), 16),
}


def _bytes_to_unicode() -> dict[int, str]:
    """CLIP's reversible byte -> printable character table (the alphabet of byte-level BPE)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    chars, extra = list(printable), 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars)))


def tiny_clip_vocab(words: tuple[str, ...] = COMMON_WORDS) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """A byte-level BPE vocabulary in CLIP's format: every byte alone and word-final ("x</w>"), the two
    special tokens, and left-to-right merges that build each of `words` into one token."""
    alphabet = list(_bytes_to_unicode().values())
    tokens = alphabet + [c + "</w>" for c in alphabet]
    merges: list[tuple[str, str]] = []
    for word in words:
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        while len(parts) > 1:
            merged = parts[0] + parts[1]
            rule = (parts[0], parts[1])
            if rule not in merges:
                merges.append(rule)
                tokens.append(merged)
            parts = [merged] + parts[2:]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    vocab = {token: i for i, token in enumerate(dict.fromkeys(tokens))}
    return vocab, merges


def tiny_tokenizer(model_max_length: int = 77):
    """A CLIPTokenizer over `tiny_clip_vocab()` (passed as objects: transformers 5 ignores vocab_file=)."""
    from transformers import CLIPTokenizer

    vocab, merges = tiny_clip_vocab()
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=model_max_length)


def tiny_pipeline(size: str = "test", seed: int = 0):
    """A random StableDiffusionPipeline in float32 on the CPU; every component is seeded by `seed`."""
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    unet_channels, vae_channels, sample_size = SIZES[size]
    tokenizer = tiny_tokenizer()
    text_width = 32 if size == "bench" else 16

    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        block_out_channels=unet_channels, layers_per_block=1, sample_size=sample_size, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=text_width, attention_head_dim=(2, 4), norm_num_groups=8)
    torch.manual_seed(seed + 1)
    vae = AutoencoderKL(
        block_out_channels=vae_channels, in_channels=3, out_channels=3, latent_channels=4, norm_num_groups=4,
        down_block_types=("DownEncoderBlock2D",) * len(vae_channels),
        up_block_types=("UpDecoderBlock2D",) * len(vae_channels),
        sample_size=sample_size * 2 ** (len(vae_channels) - 1))
    torch.manual_seed(seed + 2)
    # Real SD text encoders have exactly one embedding per tokenizer entry; textual inversion relies on it.
    text_encoder = CLIPTextModel(CLIPTextConfig(
        hidden_size=text_width, intermediate_size=2 * text_width, num_attention_heads=2, num_hidden_layers=2,
        vocab_size=len(tokenizer), max_position_embeddings=tokenizer.model_max_length,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    # SD 1.x's own scheduler numbers; clip_sample=False because latents are not bounded to [-1, 1].
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1)
    return StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)


def save_tiny_pipeline(path: str | Path, size: str = "test", seed: int = 0) -> Path:
    """Write `tiny_pipeline(size, seed)` as a diffusers folder (model_index.json, unet/, vae/, ...)."""
    path = Path(path)
    pipe = tiny_pipeline(size, seed)
    pipe.save_pretrained(path, safe_serialization=True)
    # transformers 5 writes only tokenizer.json; the classic vocab.json/merges.txt pair is added so the
    # folder looks like a real SD checkpoint to any loader.
    vocab, merges = tiny_clip_vocab()
    (path / "tokenizer" / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (path / "tokenizer" / "merges.txt").write_text(
        "#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    return path
