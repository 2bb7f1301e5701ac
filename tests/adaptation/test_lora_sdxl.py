"""LoRA adapters of an SDXL generator (`synthbridge lora` on the tiny random SDXL of tests/helpers_sdxl.py).

Behaviour asserted: the adapter trains with SDXL's conditioning (both text encoders, pooled embedding, size/crop
numbers), is written with unet., text_encoder. and text_encoder_2. keys that plain diffusers' load_lora_weights
reads, and changes the UNet's and both encoders' outputs; an interrupted run resumes to the same adapter bit for
bit; `generate --lora` on the SDXL folder draws other images; a family LoRA cannot train is one line.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import synthbridge.diffusion.finetune as finetune
from helpers_sdxl import write_flux_like_folder
from synthbridge.adaptation import LORA_WEIGHTS, LoraTrainConfig, train_lora
from synthbridge.errors import UserError


def tiny(generator, out, **overrides) -> LoraTrainConfig:
    base = dict(out=str(out), dataset="digits", generator=str(generator), shots=1, steps=4, rank=2, batch_size=4,
                checkpoint_every=2, show_progress=False)
    base.update(overrides)
    return LoraTrainConfig(**base)


def plain_sdxl(path):
    from diffusers import StableDiffusionXLPipeline

    pipe = StableDiffusionXLPipeline.from_pretrained(str(path))
    pipe.set_progress_bar_config(disable=True)
    return pipe


def outputs(pipe) -> list[torch.Tensor]:
    """The UNet's prediction on fixed inputs (with SDXL's added conditioning) and both text encoders' hidden states."""
    torch.manual_seed(0)
    latents = torch.randn(1, pipe.unet.config.in_channels, 16, 16)
    text = torch.randn(1, 77, pipe.unet.config.cross_attention_dim)
    added = {"text_embeds": torch.randn(1, pipe.text_encoder_2.config.projection_dim),
             "time_ids": torch.tensor([[32.0, 32, 0, 0, 32, 32]])}
    ids = pipe.tokenizer(["a photo of the digit 7"], padding="max_length", max_length=77, return_tensors="pt").input_ids
    with torch.no_grad():
        return [pipe.unet(latents, torch.tensor([500]), text, added_cond_kwargs=added).sample,
                pipe.text_encoder(ids)[0], pipe.text_encoder_2(ids)[0]]


def test_an_sdxl_adapter_loads_in_plain_diffusers_and_changes_the_unet_and_both_encoders(tiny_sdxl_path, tmp_path):
    summary = train_lora(tiny(tiny_sdxl_path, tmp_path / "lora", text_encoder=True, lr=1e-2))
    run = summary["runs"]["all"]
    assert run["pipeline_class"] == "StableDiffusionXLPipeline"
    assert run["adapted"] == ["unet", "text_encoder", "text_encoder_2"] and run["num_images"] == 10
    assert np.isfinite(run["final_loss"]) and run["trainable_parameters"] > 0
    weights = load_file(tmp_path / "lora" / LORA_WEIGHTS)
    assert {key.split(".")[0] for key in weights} == {"unet", "text_encoder", "text_encoder_2"}
    pipe = plain_sdxl(tiny_sdxl_path)
    before = outputs(pipe)
    pipe.load_lora_weights(str(tmp_path / "lora"))
    after = outputs(pipe)
    for name, old, new in zip(("unet", "text_encoder", "text_encoder_2"), before, after):
        assert not torch.allclose(old, new), name  # trained: the up-projections are no longer zero


def test_an_interrupted_sdxl_run_resumes_to_the_same_adapter(tiny_sdxl_path, tmp_path, monkeypatch):
    train_lora(tiny(tiny_sdxl_path, tmp_path / "straight", text_encoder=True))
    original = finetune.save_checkpoint

    def crash_after_saving(*args, **kwargs):
        original(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(finetune, "save_checkpoint", crash_after_saving)
    with pytest.raises(KeyboardInterrupt):
        train_lora(tiny(tiny_sdxl_path, tmp_path / "resumed", text_encoder=True))
    monkeypatch.setattr(finetune, "save_checkpoint", original)
    checkpoint = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)
    assert set(checkpoint["trained"]) == {"unet", "text_encoder", "text_encoder_2"} and checkpoint["step"] == 2
    resumed = train_lora(tiny(tiny_sdxl_path, tmp_path / "resumed", text_encoder=True), resume=True)
    assert resumed["runs"]["all"]["resumed_from_step"] == 2
    a, b = load_file(tmp_path / "straight" / LORA_WEIGHTS), load_file(tmp_path / "resumed" / LORA_WEIGHTS)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_generate_with_an_sdxl_adapter_draws_other_images(tiny_sdxl_path, tmp_path):
    from PIL import Image

    from synthbridge.generation import GenerateConfig, generate

    train_lora(tiny(tiny_sdxl_path, tmp_path / "lora", steps=2, lr=1e-2))
    common = dict(dataset="digits", generator=str(tiny_sdxl_path), per_class=1, classes=("3",), steps=2,
                  batch_size=1, show_progress=False)
    generate(GenerateConfig(out=str(tmp_path / "plain"), **common))
    generate(GenerateConfig(out=str(tmp_path / "adapted"), lora=str(tmp_path / "lora"), **common))
    plain, adapted = (np.asarray(Image.open(next((tmp_path / name).glob("*/*.png")))) for name in ("plain", "adapted"))
    assert not np.array_equal(plain, adapted)  # the same seed, drawn through the adapter


def test_a_family_lora_cannot_train_is_one_line_before_loading(tmp_path):
    flux = write_flux_like_folder(tmp_path / "flux")  # config files only: loading any weights would fail otherwise
    with pytest.raises(UserError, match=r"^lora trains adapters for Stable Diffusion 1.x/2.x and SDXL .*FluxPipeline") as error:
        train_lora(tiny(flux, tmp_path / "out"))
    assert "\n" not in str(error.value)
