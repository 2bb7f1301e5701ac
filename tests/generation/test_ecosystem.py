"""What users bring from the ecosystem draws as it is: a token saved the way diffusers' textual_inversion.py saves
it (learned_embeds.safetensors alone, {token: vector}) and a LoRA weights file as diffusers' training scripts save it
(one .safetensors, no synthbridge record beside it) or as kohya's sd-scripts save it (lora_unet_* keys with
lora_down / lora_up / alpha), each recorded in the set's identity by its hash."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from helpers import generate_refusal
from synthbridge.diffusion.pipeline import file_sha256
from synthbridge.generation import generate
from synthbridge.io import read_jsonl


def pixels(folder: Path) -> dict[str, np.ndarray]:
    return {p.relative_to(folder).as_posix(): np.asarray(Image.open(p)) for p in sorted(folder.glob("*/*.png"))}


def same(a: Path, b: Path) -> bool:
    """Whether two sets hold the same images, pixel for pixel."""
    first, second = pixels(a), pixels(b)
    return first.keys() == second.keys() and all(np.array_equal(first[k], second[k]) for k in first)


def test_a_plain_diffusers_token_folder_draws_with_the_token_its_file_names(make_config, digits, tmp_path, capsys):
    folder = tmp_path / "textual_inversion_output"  # what `textual_inversion.py --output_dir` leaves, trimmed
    folder.mkdir()
    save_file({"<my-style>": torch.randn(16, generator=torch.Generator().manual_seed(0))},
              str(folder / "learned_embeds.safetensors"))
    config = make_config(out="styled", style=str(folder))
    summary = generate(config, bundle=digits)
    assert summary["set"]["style_token"] == "<my-style>"
    assert summary["set"]["style_sha256"] == file_sha256(folder / "learned_embeds.safetensors")
    assert all("<my-style>" in line["prompt"] for line in read_jsonl(Path(config.out) / "manifest.jsonl"))
    plain = make_config(out="plain")
    generate(plain, bundle=digits)
    assert not same(Path(config.out), Path(plain.out))  # the token is in the prompt and the text encoder

    a1111 = tmp_path / "a1111"  # a file that does not name its token
    a1111.mkdir()
    save_file({"emb_params": torch.randn(1, 16)}, str(a1111 / "learned_embeds.safetensors"))
    assert "names no token" in generate_refusal(capsys, tmp_path / "S", "--generator", make_config().generator,
                                                "--style", str(a1111))


@pytest.fixture(scope="module")
def adapter(tiny_sd_path, tmp_path_factory, digits) -> Path:
    """A dataset-wise adapter trained by `synthbridge lora`, its up-projections made large so it shows."""
    from synthbridge.adaptation import LoraTrainConfig, train_lora

    out = tmp_path_factory.mktemp("lora") / "adapter"
    train_lora(LoraTrainConfig(out=str(out), dataset="digits", generator=str(tiny_sd_path), shots=2, steps=2, rank=2,
                               batch_size=2, show_progress=False), bundle=digits)
    weights = load_file(str(out / "pytorch_lora_weights.safetensors"))
    assert any(".lora.up." in k for k in weights)  # diffusers' format: up (B) and down (A) projections
    big = {k: (torch.randn(v.shape, generator=torch.Generator().manual_seed(1)) if ".lora.up." in k else v)
           for k, v in weights.items()}
    save_file(big, str(out / "pytorch_lora_weights.safetensors"))
    return out


def test_a_lora_weights_file_draws_as_its_folder_does(make_config, digits, adapter, tmp_path):
    file = tmp_path / "my_lora.safetensors"  # the file alone, as a training script leaves it
    shutil.copy(adapter / "pytorch_lora_weights.safetensors", file)
    from_file = make_config(out="file", lora=str(file))
    summary = generate(from_file, bundle=digits)
    assert summary["set"]["lora_sha256"] == file_sha256(file) and summary["set"]["lora"] == str(file.resolve())
    from_folder = make_config(out="folder", lora=str(adapter))
    generate(from_folder, bundle=digits)
    plain = make_config(out="plain")
    generate(plain, bundle=digits)
    assert same(Path(from_file.out), Path(from_folder.out)) and not same(Path(from_file.out), Path(plain.out))


def kohya_state(diffusers_state: dict, alpha: float) -> dict:
    """The adapter as kohya's sd-scripts save an SD 1.x LoRA: `lora_unet_<module path, dots as underscores>` with
    `.lora_down.weight` (A), `.lora_up.weight` (B) and `.alpha` (a scalar: the scale is alpha / rank)."""
    state = {}
    for key, value in diffusers_state.items():
        module, kind = key.removeprefix("unet.").split(".lora.")
        name = "lora_unet_" + module.replace(".", "_")
        state[f"{name}.lora_{kind}"] = value
        state[f"{name}.alpha"] = torch.tensor(alpha)
    return state


def test_a_kohya_lora_file_draws_as_the_same_weights_in_diffusers_format(make_config, digits, adapter, tmp_path):
    alpha = json.loads((adapter / "lora.json").read_text())["config"]["alpha"]
    kohya = tmp_path / "my_kohya_lora.safetensors"
    save_file(kohya_state(load_file(str(adapter / "pytorch_lora_weights.safetensors")), alpha), str(kohya))
    from_kohya = make_config(out="kohya", lora=str(kohya))
    summary = generate(from_kohya, bundle=digits)
    assert summary["set"]["lora_sha256"] == file_sha256(kohya)
    from_folder = make_config(out="folder", lora=str(adapter))
    generate(from_folder, bundle=digits)
    first, second = pixels(Path(from_kohya.out)), pixels(Path(from_folder.out))
    assert first.keys() == second.keys()
    assert max(np.abs(first[k].astype(int) - second[k].astype(int)).max() for k in first) <= 1  # float rounding
