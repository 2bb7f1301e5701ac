"""Tests of `synthbridge.inversion` (dataset style inversion) on a tiny random Stable Diffusion pipeline.

Behaviour asserted: only the new token's embedding changes (every other row, the UNet and the VAE stay
bit-identical); the file loads into a fresh pipeline with plain diffusers and the token then encodes to the
learned vector; `load_style` refuses what does not fit; a run interrupted after a checkpoint and resumed
ends with the same embedding as an uninterrupted one; bad input is one line and exit code 2.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

import synthbridge.diffusion.finetune as finetune
from helpers import point_mini_at
from synthbridge.cli import main
from synthbridge.data import load_dataset
from synthbridge.diffusion.styles import load_style, read_style
from synthbridge.errors import UserError
from synthbridge.inversion import InvertConfig, default_token, invert, style_grid
from synthbridge.io import read_json

# The tiny test tokenizer knows "photo" as one token (see synthbridge.embedded.tiny.COMMON_WORDS).
INITIALIZER = "photo"


@pytest.fixture
def make_config(tiny_sd_path, tmp_path):
    def make(out="style", **overrides) -> InvertConfig:
        values = dict(out=str(tmp_path / out), dataset="digits", generator=str(tiny_sd_path), shots=2,
                      initializer_word=INITIALIZER, steps=4, batch_size=4, show_progress=False)
        values.update(overrides)
        return InvertConfig(**values)

    return make


def fresh_pipeline(path: Path):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(str(path), safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: tensor.detach().clone() for name, tensor in module.state_dict().items()}


def cli(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# --- what is trained and what is not ------------------------------------------------------------------------------

def test_only_the_new_embedding_row_changes(make_config, tiny_sd_path, digits):
    pipe = fresh_pipeline(tiny_sd_path)
    unet, vae, text = snapshot(pipe.unet), snapshot(pipe.vae), snapshot(pipe.text_encoder)
    old_rows = pipe.text_encoder.get_input_embeddings().weight.shape[0]
    initializer_id = pipe.tokenizer.convert_tokens_to_ids(INITIALIZER + "</w>")

    summary = invert(make_config(), pipeline=pipe, bundle=digits)

    assert all(torch.equal(unet[k], v) for k, v in pipe.unet.state_dict().items())
    assert all(torch.equal(vae[k], v) for k, v in pipe.vae.state_dict().items())
    embedding = pipe.text_encoder.get_input_embeddings().weight
    embedding_key = next(k for k, v in pipe.text_encoder.named_parameters() if v is embedding)
    after = pipe.text_encoder.state_dict()
    assert all(torch.equal(text[k], v) for k, v in after.items() if k != embedding_key)
    weight = after[embedding_key]
    assert weight.shape[0] == old_rows + 1
    assert torch.equal(weight[:old_rows], text[embedding_key])  # every old row, bit for bit
    token_id = pipe.tokenizer.convert_tokens_to_ids(summary["token"])
    assert token_id == old_rows
    assert not torch.equal(weight[token_id], text[embedding_key][initializer_id])  # it learned something
    assert not any(p.requires_grad for m in (pipe.unet, pipe.vae, pipe.text_encoder) for p in m.parameters())

    out = Path(summary["config"]["out"])
    saved = load_file(str(out / "learned_embeds.safetensors"))
    assert list(saved) == ["<digits-style>"] and saved["<digits-style>"].shape == (16,)
    assert torch.equal(saved["<digits-style>"], weight[token_id])
    info = read_json(out / "invert.json")
    for key in ("token", "initializer_word", "generator", "dataset", "config", "final_loss", "loss_curve", "seconds",
                "environment"):
        assert key in info, key
    assert info["token"] == "<digits-style>" and info["num_images"] == 20 and info["steps"] == 4
    assert info["config"]["resolution"] == 16  # the tiny generator's native size
    assert info["template"] == "a photo of the {class}, {style}"  # the embedded world's default, as a literal
    assert [point["step"] for point in info["loss_curve"]] == [1, 2, 3, 4]
    assert not (out / "checkpoint.pt").exists()


def test_learned_file_loads_in_plain_diffusers(make_config, tiny_sd_path, digits):
    # no initializer given: the tiny tokenizer splits "style", so the first neutral word it knows is used
    summary = invert(make_config(steps=2, initializer_word=None), bundle=digits)
    assert summary["initializer_word"] == summary["config"]["initializer_word"] == "photo"
    out, token = Path(summary["config"]["out"]), summary["token"]
    learned = load_file(str(out / "learned_embeds.safetensors"))[token]

    pipe = fresh_pipeline(tiny_sd_path)
    pipe.load_textual_inversion(str(out / "learned_embeds.safetensors"), token=token)  # diffusers alone
    ids = pipe.tokenizer(f"a digit 7 photo in the style of {token}", add_special_tokens=False).input_ids
    token_id = pipe.tokenizer.convert_tokens_to_ids(token)
    assert ids.count(token_id) == 1
    assert torch.equal(pipe.text_encoder.get_input_embeddings().weight[token_id], learned)

    # load_style does the same, and accepts a pipeline that already holds this very embedding
    other = fresh_pipeline(tiny_sd_path)
    assert load_style(other, out) == token
    assert torch.equal(other.text_encoder.get_input_embeddings().weight[token_id], learned)
    assert load_style(other, out) == token


def test_load_style_refuses_what_does_not_fit(make_config, tiny_sd_path, digits, tmp_path):
    summary = invert(make_config(steps=1), bundle=digits)
    out, token = Path(summary["config"]["out"]), summary["token"]
    pipe = fresh_pipeline(tiny_sd_path)

    with pytest.raises(UserError, match="does not exist"):
        load_style(pipe, tmp_path / "nowhere")
    no_info = tmp_path / "no-info"  # the file alone, as diffusers' textual_inversion.py leaves it: its token loads
    no_info.mkdir()
    (no_info / "learned_embeds.safetensors").write_bytes((out / "learned_embeds.safetensors").read_bytes())
    assert load_style(fresh_pipeline(tiny_sd_path), no_info) == token
    (no_info / "checkpoint.pt").write_bytes(b"")  # but an unfinished synthbridge run is no style yet
    with pytest.raises(UserError, match="no invert.json.*--resume"):
        load_style(pipe, no_info)
    (no_info / "checkpoint.pt").unlink()
    (no_info / "invert.json").write_text(json.dumps({"token": token}))
    (no_info / "learned_embeds.safetensors").unlink()
    with pytest.raises(UserError, match="no learned_embeds.safetensors"):
        load_style(pipe, no_info)

    wide = tmp_path / "wide"  # learned for a text encoder of another width
    wide.mkdir()
    save_file({token: torch.zeros(768)}, str(wide / "learned_embeds.safetensors"))
    (wide / "invert.json").write_text(json.dumps({"token": token, "generator": "runwayml/stable-diffusion-v1-5"}))
    with pytest.raises(UserError, match="width 768.*is 16"):
        load_style(pipe, wide)
    assert token not in pipe.tokenizer.get_vocab()  # nothing half-loaded

    changed = tmp_path / "changed"  # same token, other vector, into a pipeline that already holds the token
    changed.mkdir()
    save_file({token: torch.ones(16)}, str(changed / "learned_embeds.safetensors"))
    (changed / "invert.json").write_text(json.dumps({"token": token}))
    load_style(pipe, out)
    with pytest.raises(UserError, match="already has another embedding"):
        load_style(pipe, changed)


# --- resume -----------------------------------------------------------------------------------------------------

def test_resume_gives_the_same_embedding_as_an_uninterrupted_run(make_config, digits, monkeypatch):
    whole = invert(make_config("whole", steps=6, checkpoint_every=2), bundle=digits)
    expected = load_file(str(Path(whole["config"]["out"]) / "learned_embeds.safetensors"))

    config = make_config("interrupted", steps=6, checkpoint_every=2)
    real_loss, calls = finetune.denoising_loss, []

    def crash_at_step_5(*args, **kwargs):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(finetune, "denoising_loss", crash_at_step_5)
    with pytest.raises(KeyboardInterrupt):
        invert(config, bundle=digits)
    monkeypatch.setattr(finetune, "denoising_loss", real_loss)
    out = Path(config.out)
    assert (out / "checkpoint.pt").is_file() and not (out / "learned_embeds.safetensors").exists()

    with pytest.raises(UserError, match="pass --resume"):
        invert(config, bundle=digits)
    with pytest.raises(UserError, match=r"other parameters \(lr"):
        invert(make_config("interrupted", steps=6, checkpoint_every=2, lr=1e-2), bundle=digits, resume=True)

    resumed = invert(config, bundle=digits, resume=True)
    assert resumed["resumed_from_step"] == 4
    got = load_file(str(out / "learned_embeds.safetensors"))
    assert torch.equal(got["<digits-style>"], expected["<digits-style>"])
    assert [p["loss"] for p in resumed["loss_curve"]] == [p["loss"] for p in whole["loss_curve"]]
    assert not (out / "checkpoint.pt").exists()

    # a finished folder: --resume returns it, a plain rerun is refused, --overwrite learns it again
    assert invert(config, bundle=digits, resume=True)["final_loss"] == resumed["final_loss"]
    with pytest.raises(UserError, match="holds a finished style; pass --resume"):
        invert(config, bundle=digits)
    assert invert(config, bundle=digits, overwrite=True)["resumed_from_step"] == 0
    # nothing to resume is refused, as `train --resume` and `lora --resume` refuse it (one folder rule)
    with pytest.raises(UserError, match="nothing to resume"):
        invert(make_config("never-started", steps=6), bundle=digits, resume=True)


# --- bad input: one line, exit code 2 -------------------------------------------------------------------------

def test_bad_input_is_one_clear_line(make_config, tiny_sd_path, tmp_path, capsys):
    base = ["invert", "--dataset", "digits", "--generator", str(tiny_sd_path), "--steps", "1", "--no-progress",
            "--initializer-word", INITIALIZER]
    cases = [
        (["--out", str(tmp_path / "a"), "--token", "photo"], "already in the generator's vocabulary"),
        (["--out", str(tmp_path / "b"), "--initializer-word", "xyzzy"], "initializer word 'xyzzy' is 5 tokens"),
        (["--out", str(tmp_path / "c"), "--shots", "1000"], "--shots 1000 is more than class"),
        (["--out", str(tmp_path / "d"), "--generator", str(tmp_path / "missing")], "does not exist"),
        (["--out", str(tmp_path / "d"), "--token", "my style"], "without spaces"),
        (["--out", str(tmp_path / "d"), "--template", "a photo of {class}"], "has no {style}"),
    ]
    file = tmp_path / "file.txt"
    file.write_text("not a folder")
    cases.append((["--out", str(file / "out")], "cannot write to style folder"))
    empty = tmp_path / "empty"
    for split in ("train", "test"):
        (empty / split / "cat").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(empty / "test" / "cat" / "0.png")
    cases.append((["--out", str(tmp_path / "e"), "--dataset", f"imagefolder:{empty}"], "has no images"))
    for extra, message in cases:
        code, out, err = cli(capsys, *base, *extra)
        assert code == 2, (extra, out, err)
        assert message in err, (extra, err)
        assert err.count("\n") == 1 and "Traceback" not in err, err


def test_missing_embedded_generator_or_style_names_the_fix(tmp_path, monkeypatch):
    point_mini_at(monkeypatch, tmp_path / "no-generator")
    with pytest.raises(UserError, match="build-generator"):
        invert(InvertConfig(out=str(tmp_path / "s"), generator="mini", show_progress=False))
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "checkpoint.pt").write_bytes(b"")
    with pytest.raises(UserError, match="--resume"):
        read_style(tmp_path / "half")


def test_default_token_and_config_checks():
    from synthbridge.embedded.tiny import tiny_tokenizer
    from synthbridge.inversion.train import default_initializer

    assert default_initializer(tiny_tokenizer()) == "photo"  # "style" is 4 tokens in the tiny vocabulary
    assert default_token("mnist5k") == "<mnist5k-style>"
    assert default_token("imagefolder:/data/My Aircraft/") == "<my-aircraft-style>"
    with pytest.raises(UserError, match="--steps must be a whole number > 0"):
        InvertConfig(out="x", steps=0).check()
    with pytest.raises(UserError, match="multiple of 8"):
        InvertConfig(out="x", resolution=30).check()
    with pytest.raises(UserError, match="unknown invert config keys stepz"):
        InvertConfig.from_dict({"out": "x", "stepz": 3})


# --- the grid ---------------------------------------------------------------------------------------------------

def test_style_grid_shows_real_plain_and_style_rows(make_config, tiny_sd_path, tmp_path):
    from synthbridge.data import few_shot

    bundle = load_dataset("digits")
    bundle.train = few_shot(bundle.train, 1, 0, bundle.classes)
    summary = invert(make_config(steps=1, shots=None), bundle=bundle)
    png = style_grid(summary["config"]["out"], out=tmp_path / "grid.png", per_class=1, bundle=bundle)
    from synthbridge.grids import CELL, GAP, HEADER_HEIGHT, LABEL_WIDTH, PAD

    with Image.open(png) as image:
        grid = np.asarray(image.convert("RGB"))
    step = CELL + PAD
    assert grid.shape[:2] == (HEADER_HEIGHT + 10 * step, LABEL_WIDTH + 3 * step + 2 * GAP)  # ten rows, three panels
    cell = lambda row, panel: grid[HEADER_HEIGHT + row * step:HEADER_HEIGHT + row * step + CELL,
                                   LABEL_WIDTH + panel * (step + GAP):LABEL_WIDTH + panel * (step + GAP) + CELL]
    for row in (0, 9):  # the real panel shows each class's one real image, upscaled
        real = bundle.train.load([i for i, t in enumerate(bundle.train.targets) if t == row][0])
        assert np.array_equal(cell(row, 0), np.asarray(real.convert("RGB").resize((CELL, CELL), Image.Resampling.NEAREST)))
    # the plain and the style prompt share each cell's seed, but not their images: the token changes them
    assert all(not np.array_equal(cell(row, 1), cell(row, 2)) for row in range(10))


def test_the_token_vector_stays_within_the_norm_cap(make_config, tiny_sd_path):
    # default cap: the largest norm among the vocabulary's embeddings, recorded in the config
    pipe = fresh_pipeline(tiny_sd_path)
    largest = float(pipe.text_encoder.get_input_embeddings().weight.detach().norm(dim=1).max())
    info = invert(make_config(out="default", lr=1.0))
    assert info["config"]["max_norm"] == pytest.approx(largest, rel=1e-5)
    assert info["embedding_norm"]["learned"] <= largest * (1 + 1e-5)
    # an explicit small cap binds (a large learning rate would take the vector far beyond it), 0 lifts it
    capped = invert(make_config(out="capped", lr=1.0, max_norm=0.05))
    assert capped["embedding_norm"]["learned"] == pytest.approx(0.05, rel=1e-4)
    free = invert(make_config(out="free", lr=1.0, max_norm=0.0))
    assert free["embedding_norm"]["learned"] > 0.05
    with pytest.raises(UserError, match="--max-norm"):
        invert(make_config(out="bad", max_norm=-1.0))


def test_the_fine_tuning_loop_encodes_each_image_once_and_checkpoints_gradients_on_request(make_config, digits,
                                                                                            monkeypatch):
    """The latent cache: an image is read and VAE-encoded the first time a step uses it, never again; and
    --gradient-checkpointing recomputes the UNet's activations (torch's checkpoint runs) without changing a number."""
    import torch.utils.checkpoint
    from diffusers import AutoencoderKL

    encoded, real_encode = [], AutoencoderKL.encode
    monkeypatch.setattr(AutoencoderKL, "encode", lambda self, x, *a, **k: encoded.append(len(x)) or
                        real_encode(self, x, *a, **k))
    plain = invert(make_config("plain", steps=12, batch_size=8), bundle=digits)
    assert 12 * 8 > plain["num_images"] == sum(encoded)  # 96 draws of 20 images: each encoded once
    checkpointed, real_checkpoint = [], torch.utils.checkpoint.checkpoint
    monkeypatch.setattr(torch.utils.checkpoint, "checkpoint",
                        lambda *a, **k: checkpointed.append(1) or real_checkpoint(*a, **k))
    saved = invert(make_config("checkpointed", steps=12, batch_size=8, gradient_checkpointing=True), bundle=digits)
    assert checkpointed
    assert saved["final_loss"] == plain["final_loss"]
    a, b = (load_file(str(Path(s["config"]["out"]) / "learned_embeds.safetensors")) for s in (plain, saved))
    assert torch.equal(a["<digits-style>"], b["<digits-style>"])


def test_deterministic_kernels_hold_for_the_loop_only(make_config, digits, monkeypatch):
    """--deterministic: torch's deterministic algorithms while the loop runs (on CUDA, what makes a resumed run equal
    an uninterrupted one bit for bit, measured on an H200), the process's own setting before and after."""
    seen, real_loss = [], finetune.denoising_loss
    monkeypatch.setattr(finetune, "denoising_loss",
                        lambda *a, **k: seen.append(torch.are_deterministic_algorithms_enabled()) or real_loss(*a, **k))
    plain = invert(make_config("plain", steps=3), bundle=digits)
    exact = invert(make_config("exact", steps=3, deterministic=True), bundle=digits)
    assert seen == [False] * 3 + [True] * 3 and not torch.are_deterministic_algorithms_enabled()
    assert exact["final_loss"] == plain["final_loss"]  # the CPU's kernels are deterministic already


def test_a_style_folder_of_another_format_is_one_line(make_config, digits):
    """A finished style from before folder formats (no "format" in invert.json) is not reused with guessed defaults:
    --resume refuses it in one line, --overwrite learns it again."""
    config = make_config("old", steps=2)
    invert(config, bundle=digits)
    info = json.loads((Path(config.out) / "invert.json").read_text())
    del info["format"]
    (Path(config.out) / "invert.json").write_text(json.dumps(info))
    with pytest.raises(UserError, match="is a style folder in folder format 0, made by another synthbridge version"):
        invert(config, bundle=digits, resume=True)
    assert invert(config, bundle=digits, overwrite=True)["format"] == 1
