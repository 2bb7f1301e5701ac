"""LoRA adapters of the generator fitted to the real images (`synthbridge lora`)."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import synthbridge.diffusion.finetune as finetune
from synthbridge.adaptation import LORA_WEIGHTS, LoraTrainConfig, train_lora
from synthbridge.errors import UserError


def tiny(tiny_sd_path, out, **overrides) -> LoraTrainConfig:
    base = dict(out=str(out), dataset="digits", generator=str(tiny_sd_path), shots=2, steps=6, rank=2,
                batch_size=4, checkpoint_every=3, show_progress=False)
    base.update(overrides)
    return LoraTrainConfig(**base)


def plain_pipeline(path):
    from diffusers import StableDiffusionPipeline

    return StableDiffusionPipeline.from_pretrained(path, safety_checker=None, requires_safety_checker=False)


def unet_output(pipe) -> torch.Tensor:
    torch.manual_seed(0)
    latents = torch.randn(1, pipe.unet.config.in_channels, 8, 8)
    text = torch.randn(1, 77, pipe.unet.config.cross_attention_dim)
    with torch.no_grad():
        return pipe.unet(latents, torch.tensor([500]), text).sample


def test_an_adapter_loads_in_plain_diffusers_and_changes_the_unet(tiny_sd_path, tmp_path, monkeypatch):
    summary = train_lora(tiny(tiny_sd_path, tmp_path / "lora", text_encoder=True))
    run = summary["runs"]["all"]
    assert run["num_images"] == 20 and run["trainable_parameters"] > 0 and len(run["loss_curve"]) > 0
    record = json.loads((tmp_path / "lora" / "lora.json").read_text())
    assert record["config"]["rank"] == 2 and record["seconds"] > 0
    weights = load_file(tmp_path / "lora" / LORA_WEIGHTS)
    assert any(k.startswith("unet.") for k in weights) and any(k.startswith("text_encoder.") for k in weights)
    pipe = plain_pipeline(tiny_sd_path)
    base = unet_output(pipe)
    pipe.load_lora_weights(str(tmp_path / "lora"))
    assert not torch.allclose(unet_output(pipe), base)  # trained: the up-projections are no longer zero
    # a rerun with the same config reuses the finished adapter; another config is refused
    reused = train_lora(tiny(tiny_sd_path, tmp_path / "lora", text_encoder=True), resume=True)["runs"]["all"]
    assert reused["seconds"] == run["seconds"] and reused["final_loss"] == run["final_loss"]
    # ... without loading the generator (a grid worker asks for every adapter its sets need), also when moved
    (tmp_path / "lora").rename(tmp_path / "moved")
    monkeypatch.setattr("synthbridge.diffusion.pipeline.load_generator", lambda *a, **k: pytest.fail("loaded"))
    moved = train_lora(tiny(tiny_sd_path, tmp_path / "moved", text_encoder=True), resume=True)
    assert moved["runs"]["all"]["folder"] == str(tmp_path / "moved") and moved["adapters"] == {"all": "."}
    with pytest.raises(UserError, match="another config"):
        train_lora(tiny(tiny_sd_path, tmp_path / "moved", rank=3), resume=True)


def test_an_interrupted_run_resumes_to_the_same_adapter(tiny_sd_path, tmp_path, monkeypatch):
    train_lora(tiny(tiny_sd_path, tmp_path / "straight"))
    original = finetune.save_checkpoint

    def crash_after_saving(*args, **kwargs):
        original(*args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(finetune, "save_checkpoint", crash_after_saving)
    with pytest.raises(KeyboardInterrupt):
        train_lora(tiny(tiny_sd_path, tmp_path / "resumed"))
    monkeypatch.setattr(finetune, "save_checkpoint", original)
    assert (tmp_path / "resumed" / "checkpoint.pt").exists()
    resumed = train_lora(tiny(tiny_sd_path, tmp_path / "resumed"), resume=True)
    assert resumed["runs"]["all"]["resumed_from_step"] == 3
    a, b = load_file(tmp_path / "straight" / LORA_WEIGHTS), load_file(tmp_path / "resumed" / LORA_WEIGHTS)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert not (tmp_path / "resumed" / "checkpoint.pt").exists()


def test_per_class_adapters_one_folder_each(tiny_sd_path, tmp_path):
    summary = train_lora(tiny(tiny_sd_path, tmp_path / "classes", per_class=True, classes=("3", "7"), steps=3))
    assert set(summary["runs"]) == {"3", "7"} and summary["runs"]["3"]["num_images"] == 2
    index = json.loads((tmp_path / "classes" / "lora.json").read_text())
    assert index["per_class"] and set(index["adapters"]) == {"3", "7"}
    first, second = (load_file(tmp_path / "classes" / index["adapters"][c] / LORA_WEIGHTS) for c in ("3", "7"))
    assert any(not torch.equal(first[k], second[k]) for k in first)  # each class its own adapter
    pipe = plain_pipeline(tiny_sd_path)
    pipe.load_lora_weights(str(tmp_path / "classes" / index["adapters"]["7"]))


def test_bad_input_is_one_line(tiny_sd_path, tmp_path):
    with pytest.raises(UserError, match="--rank must be a whole number > 0"):
        tiny(tiny_sd_path, tmp_path / "a", rank=0).check()
    with pytest.raises(UserError, match="add --per-class"):
        tiny(tiny_sd_path, tmp_path / "b", classes=("3",)).check()
    with pytest.raises(UserError, match="class 'cat' is not in dataset 'digits'"):
        train_lora(tiny(tiny_sd_path, tmp_path / "c", per_class=True, classes=("cat",)))
    done = subprocess.run([sys.executable, "-m", "synthbridge", "lora", "--out", str(tmp_path / "d"), "--rank", "0"],
                          capture_output=True, text=True, env={"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) <= 3 and "rank" in done.stderr


def test_generate_with_an_adapter_records_it_and_draws_other_images(tiny_sd_path, tmp_path):
    from PIL import Image

    from synthbridge.generation import GenerateConfig, generate

    train_lora(tiny(tiny_sd_path, tmp_path / "lora", steps=4, lr=1e-2))
    common = dict(dataset="digits", generator=str(tiny_sd_path), per_class=1, classes=("3",), steps=2,
                  batch_size=1, show_progress=False)
    generate(GenerateConfig(out=str(tmp_path / "plain"), **common))
    generate(GenerateConfig(out=str(tmp_path / "adapted"), lora=str(tmp_path / "lora"), **common))
    generate(GenerateConfig(out=str(tmp_path / "zero"), lora=str(tmp_path / "lora"), lora_scale=0.0, **common))
    pixels = {name: np.asarray(Image.open(next((tmp_path / name).glob("*/*.png")))) for name in ("plain", "adapted", "zero")}
    assert not np.array_equal(pixels["plain"], pixels["adapted"])  # the same seed, drawn through the adapter
    assert np.abs(pixels["plain"].astype(int) - pixels["zero"].astype(int)).max() <= 1  # weight 0: the plain generator
    line = json.loads((tmp_path / "adapted" / "manifest.jsonl").read_text().splitlines()[0])
    assert line["lora_scale"] == 1.0 and line["lora_sha256"] and line["lora"].endswith("lora")
    with pytest.raises(UserError, match="other parameters"):  # another adapter weight is another set
        generate(GenerateConfig(out=str(tmp_path / "adapted"), lora=str(tmp_path / "lora"), lora_scale=0.5, **common))
    with pytest.raises(UserError, match="has no pytorch_lora_weights"):
        generate(GenerateConfig(out=str(tmp_path / "x"), lora=str(tmp_path / "plain"), **common))


def test_an_adapter_folder_of_another_format_is_one_line(tiny_sd_path, tmp_path):
    """A finished adapter from before folder formats (no "format" in lora.json) is refused in one line before any
    model loads; --overwrite trains it again."""
    config = tiny(tiny_sd_path, tmp_path / "old", steps=2)
    train_lora(config)
    info = json.loads((tmp_path / "old" / "lora.json").read_text())
    del info["format"]
    (tmp_path / "old" / "lora.json").write_text(json.dumps(info))
    with pytest.raises(UserError, match="is a LoRA adapter folder in folder format 0, made by another synthbridge"):
        train_lora(config, resume=True)
    assert train_lora(config, overwrite=True)["runs"]["all"]["format"] == 1
