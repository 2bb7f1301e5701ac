"""Few-step sampling with diffusers' own components (issue 24 item 4): `--scheduler lcm` with an LCM-LoRA (any plain
diffusers LoRA folder as --lora) and `--timestep-spacing trailing`, recorded in the set's identity, each image still
a function of its seed."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synthbridge.errors import UserError
from synthbridge.generation import generate, regenerate_image
from synthbridge.io import read_json, read_jsonl


def _plain_lora_folder(tiny_sd_path, tmp_path) -> Path:
    """A folder as an LCM-LoRA download is: pytorch_lora_weights.safetensors alone (no synthbridge lora.json)."""
    from synthbridge.adaptation import LORA_WEIGHTS, LoraTrainConfig, train_lora

    train_lora(LoraTrainConfig(out=str(tmp_path / "trained"), dataset="digits", generator=str(tiny_sd_path), shots=2,
                               steps=2, rank=2, batch_size=4, show_progress=False))
    folder = tmp_path / "lcm-lora"
    folder.mkdir()
    shutil.copy(tmp_path / "trained" / LORA_WEIGHTS, folder / LORA_WEIGHTS)
    return folder


def test_lcm_sampling_with_a_plain_lora_folder_is_recorded_and_reproducible(make_config, digits, tiny_sd_path,
                                                                           tmp_path):
    from synthbridge.diffusion.pipeline import describe_generator, load_generator, locate_generator

    lora = _plain_lora_folder(tiny_sd_path, tmp_path)
    folder, generator_id = locate_generator(str(tiny_sd_path))
    pipe = load_generator(describe_generator(generator_id, folder), "fp32", "cpu", quiet=True)
    config = make_config(out="lcm", scheduler="lcm", steps=2, timestep_spacing="trailing", guidance_scale=1.0,
                         lora=str(lora))
    summary = generate(config, pipeline=pipe, bundle=digits)
    assert summary["status"] == "complete" and summary["run"]["generated"] == 6
    assert type(pipe.scheduler).__name__ == "LCMScheduler" and pipe.scheduler.config.timestep_spacing == "trailing"
    params = read_json(Path(config.out) / "generation.json")["set"]
    assert (params["scheduler"], params["timestep_spacing"], params["steps"]) == ("lcm", "trailing", 2)
    assert params["lora_sha256"]
    lines = read_jsonl(Path(config.out) / "manifest.jsonl")
    assert {(line["scheduler"], line["timestep_spacing"]) for line in lines} == {("lcm", "trailing")}
    # LCM adds noise between its steps: from the image's own generator, so regenerating an image alone gives its file
    with Image.open(Path(config.out) / "7" / "00001.png") as saved:
        assert np.array_equal(np.asarray(regenerate_image(config.out, "7", 1)), np.asarray(saved))
    # the spacing is part of the set: a rerun without it is another set
    with pytest.raises(UserError, match="timestep_spacing"):
        generate(make_config(out="lcm", scheduler="lcm", steps=2, guidance_scale=1.0, lora=str(lora)), bundle=digits)


def test_an_unknown_timestep_spacing_is_one_line():
    from synthbridge.generation import GenerateConfig

    with pytest.raises(UserError, match="unknown --timestep-spacing 'late'; choose one of: leading, trailing, linspace"):
        GenerateConfig(out="x", timestep_spacing="late", per_class=1).check()
