"""Tests of `invert --per-class` (DA-Fusion's form: one token per class) on the embedded mini generator and the tiny
random Stable Diffusion folder.

Behaviour asserted: the folder holds classes/<class>.safetensors (one token each, diffusers' format) and an
invert.json naming every class's token and file, and no learned_embeds.safetensors; each file loads with plain
diffusers' load_textual_inversion into the mini pipeline and the tiny SD one, and the token's row is then the
saved vector; the prompt of a class holds only its own token, so a class without images keeps its token where it
started (the mean embedding of its class name, "7" for "digit 7") while a class with images moves its; an interrupted run
resumed ends bit-identical to an uninterrupted one; `diffusion.styles` reads, digests and loads every class token
and refuses missing files and other datasets' classes; the grid shows real | plain | class token; bad input is
one line and exit code 2.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

import synthbridge.diffusion.finetune as finetune
from synthbridge.cli import main
from synthbridge.data import load_dataset
from synthbridge.diffusion.styles import class_tokens, load_style, read_style, style_digest, style_files
from synthbridge.embedded.assets import GENERATOR_DIR
from synthbridge.errors import UserError
from synthbridge.inversion import CLASS_TOKEN, InvertConfig, invert, style_grid
from synthbridge.io import read_json, safe_name

DIGIT_CLASSES = [str(d) for d in range(10)]  # the class names of digits and mnist5k; their phrases are "digit 7"


@pytest.fixture
def make_config(tiny_sd_path, tmp_path):
    def make(out="classes-style", **overrides) -> InvertConfig:
        values = dict(out=str(tmp_path / out), dataset="digits", generator=str(tiny_sd_path), per_class=True,
                      shots=2, steps=4, batch_size=4, show_progress=False)
        values.update(overrides)
        return InvertConfig(**values)

    return make


def fresh_pipeline(path: Path):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(str(path), safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def class_vectors(out: Path) -> dict[str, torch.Tensor]:
    """token -> saved vector, over every class file of a per-class folder."""
    return {token: vector for file in sorted((out / "classes").iterdir()) for token, vector in load_file(str(file)).items()}


def name_mean(pipe, words: str) -> torch.Tensor:
    """Where a class token starts: the mean embedding of its class name's tokens."""
    ids = pipe.tokenizer.encode(words, add_special_tokens=False)
    return pipe.text_encoder.get_input_embeddings().weight[ids].detach().mean(dim=0)


def assert_loads_in_plain_diffusers(pipe, out: Path, tokens: dict[str, str]) -> None:
    """Each class file alone (the token from its key), then all of them in one call, into a fresh pipeline."""
    saved = class_vectors(out)
    first = next(iter(tokens))
    pipe.load_textual_inversion(str(out / f"classes/{safe_name(first)}.safetensors"))  # the key names the token
    rest = [name for name in tokens if name != first]
    pipe.load_textual_inversion([str(out / f"classes/{safe_name(name)}.safetensors") for name in rest],
                                token=[tokens[name] for name in rest])
    table = pipe.text_encoder.get_input_embeddings().weight
    for name, token in tokens.items():
        ids = pipe.tokenizer(f"a photo of the {token}", add_special_tokens=False).input_ids
        token_id = pipe.tokenizer.convert_tokens_to_ids(token)
        assert ids.count(token_id) == 1, token
        assert torch.equal(table[token_id].detach(), saved[token]), token


# --- the folder: files and invert.json --------------------------------------------------------------------------

def test_per_class_run_on_the_mini_generator_writes_one_file_per_class(tmp_path):
    config = InvertConfig(out=str(tmp_path / "mini-classes"), dataset="mnist5k", generator="mini", per_class=True,
                          shots=2, steps=3, batch_size=4, show_progress=False)
    summary = invert(config)
    out = Path(config.out)

    info = read_json(out / "invert.json")
    assert info == json.loads(json.dumps(summary))
    assert info["per_class"] is True
    assert info["tokens"] == {name: CLASS_TOKEN.format(index=k) for k, name in enumerate(DIGIT_CLASSES)}
    assert info["files"] == {name: f"classes/{safe_name(name)}.safetensors" for name in DIGIT_CLASSES}
    # the mini generator's caption form with the class phrase replaced: "a photo of the digit 7" -> "... the <class-7>"
    assert info["template"] == "a photo of the {class}"
    assert info["num_images"] == 20 and info["images_per_class"] == dict.fromkeys(DIGIT_CLASSES, 2)
    for key in ("config", "loss_curve", "final_loss", "seconds", "generator", "dataset", "environment"):
        assert key in info, key
    assert info["config"]["per_class"] is True and info["config"]["token"] is None
    assert not (out / "learned_embeds.safetensors").exists() and not (out / "checkpoint.pt").exists()

    saved = class_vectors(out)
    assert sorted(saved) == sorted(info["tokens"].values())
    for name, token in info["tokens"].items():
        state = load_file(str(out / info["files"][name]))
        assert list(state) == [token] and state[token].shape == (info["embedding_dim"],)
        assert float(state[token].norm()) <= info["config"]["max_norm"] * (1 + 1e-5)  # every row is capped

    assert_loads_in_plain_diffusers(fresh_pipeline(GENERATOR_DIR), out, info["tokens"])
    assert class_tokens(out, DIGIT_CLASSES) == info["tokens"]


def test_tiny_sd_classes_load_in_plain_diffusers_and_through_load_style(make_config, tiny_sd_path, digits):
    summary = invert(make_config(), bundle=digits)
    out, tokens = Path(summary["config"]["out"]), summary["tokens"]
    assert summary["template"] == "a photo of the {class}" and summary["embedding_dim"] == 16

    assert_loads_in_plain_diffusers(fresh_pipeline(tiny_sd_path), out, tokens)

    pipe = fresh_pipeline(tiny_sd_path)
    assert load_style(pipe, out) == tokens  # every class token, in one load
    saved = class_vectors(out)
    table = pipe.text_encoder.get_input_embeddings().weight
    for token in tokens.values():
        assert torch.equal(table[pipe.tokenizer.convert_tokens_to_ids(token)].detach(), saved[token])
    assert load_style(pipe, out) == tokens  # a pipeline that holds these very rows is accepted

    # the folder's files and digest cover every class: another vector for one class changes the digest
    files = style_files(out)
    assert sorted(f.relative_to(out).as_posix() for f in files) == sorted(summary["files"].values())
    digest = style_digest(files)
    changed = out.parent / "changed"
    shutil.copytree(out, changed)
    from synthbridge.diffusion.styles import save_embedding

    save_embedding(changed / summary["files"]["7"], tokens["7"], torch.ones(16))
    assert style_digest(style_files(changed)) != digest
    with pytest.raises(UserError, match="already has another embedding for '<class-7>'"):
        load_style(pipe, changed)


# --- what each token learns from ------------------------------------------------------------------------------

def test_only_a_class_own_images_move_its_token(make_config, tiny_sd_path):
    bundle = load_dataset("digits")
    threes = [i for i, target in enumerate(bundle.train.targets) if target == 3][:4]
    bundle.train = bundle.train.subset(threes)  # every image is a 3: only <class-3> is ever in a prompt
    pipe = fresh_pipeline(tiny_sd_path)
    start = {name: name_mean(pipe, name) for name in bundle.classes}  # "7", not "digit 7": the word all share is left out
    old_rows = pipe.text_encoder.get_input_embeddings().weight.detach().clone()

    summary = invert(make_config(shots=None, steps=3, lr=0.05), pipeline=pipe, bundle=bundle)

    saved = class_vectors(Path(summary["config"]["out"]))
    tokens = summary["tokens"]
    assert summary["images_per_class"]["3"] == 4 and summary["images_per_class"]["7"] == 0
    assert summary["initializers"] == {name: name for name in bundle.classes}
    assert not torch.allclose(saved[tokens["3"]], start["3"])  # it learned from the 3s
    for name in bundle.classes:  # every other token is bit for bit where it started: no gradient leaked to it
        if name != "3":
            assert torch.equal(saved[tokens[name]], start[name]), name
    table = pipe.text_encoder.get_input_embeddings().weight
    assert torch.equal(table[:old_rows.shape[0]], old_rows)  # the vocabulary's rows never move
    assert torch.equal(table[pipe.tokenizer.convert_tokens_to_ids(tokens["3"])].detach(), saved[tokens["3"]])


def test_class_tokens_start_from_the_class_words_the_phrases_do_not_share():
    from synthbridge.inversion import class_initializers

    assert class_initializers(["digit 0", "digit 1"]) == ["0", "1"]
    assert class_initializers(["Boeing 737-300", "Airbus A320"]) == ["Boeing 737-300", "Airbus A320"]
    assert class_initializers(["red fox", "fox"]) == ["red", "fox"]  # nothing would be left of 'fox': kept whole
    assert class_initializers(["cat"]) == ["cat"]


# --- resume -----------------------------------------------------------------------------------------------------

def test_resume_gives_the_same_class_tokens_as_an_uninterrupted_run(make_config, digits, monkeypatch):
    whole = invert(make_config("whole", steps=6, checkpoint_every=2), bundle=digits)
    expected = class_vectors(Path(whole["config"]["out"]))

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
    assert (out / "checkpoint.pt").is_file() and not (out / "classes").exists()
    with pytest.raises(UserError, match="no invert.json|no learned_embeds"):
        read_style(out)

    with pytest.raises(UserError, match=r"other parameters \(per_class True -> False"):
        invert(make_config("interrupted", steps=6, checkpoint_every=2, per_class=False, initializer_word="photo"),
               bundle=digits, resume=True)
    resumed = invert(config, bundle=digits, resume=True)
    assert resumed["resumed_from_step"] == 4
    got = class_vectors(out)
    assert sorted(got) == sorted(expected)
    assert all(torch.equal(got[token], expected[token]) for token in expected)
    assert [p["loss"] for p in resumed["loss_curve"]] == [p["loss"] for p in whole["loss_curve"]]

    # finished: --resume returns it; a missing class file is named; --overwrite learns it all again
    assert invert(config, bundle=digits, resume=True)["final_loss"] == resumed["final_loss"]
    (out / resumed["files"]["4"]).unlink()
    with pytest.raises(UserError, match="no classes/4.safetensors"):
        invert(config, bundle=digits, resume=True)
    again = invert(config, bundle=digits, overwrite=True)
    assert again["resumed_from_step"] == 0 and (out / again["files"]["4"]).is_file()


# --- the folder as `diffusion.styles` reads it --------------------------------------------------------------------

def test_styles_read_per_class_folders_and_refuse_what_does_not_fit(make_config, digits, tiny_sd_path, tmp_path):
    summary = invert(make_config(steps=1), bundle=digits)
    out = Path(summary["config"]["out"])
    dataset_wise = invert(make_config("dataset-wise", per_class=False, initializer_word="photo", steps=1), bundle=digits)
    assert class_tokens(dataset_wise["config"]["out"]) is None
    assert dataset_wise["per_class"] is False

    token, file, info = read_style(out)  # a single token asked of a per-class folder: its first class's
    assert (token, file.relative_to(out).as_posix()) == ("<class-0>", "classes/0.safetensors") and info["per_class"]

    with pytest.raises(UserError, match=r"learned for 10 classes of 'digits', not this dataset's 3 \(tokens for '3'"):
        class_tokens(out, ["0", "1", "2"])
    with pytest.raises(UserError, match="no token for 'ten'"):
        class_tokens(out, [*DIGIT_CLASSES[:9], "ten"])

    broken = tmp_path / "broken"
    shutil.copytree(out, broken)
    (broken / summary["files"]["6"]).unlink()
    pipe = fresh_pipeline(tiny_sd_path)
    for reader in (read_style, class_tokens, lambda folder: load_style(pipe, folder)):
        with pytest.raises(UserError, match=r"has no classes/6.safetensors \(the token of class '6'\)") as error:
            reader(broken)
        assert "\n" not in str(error.value)
    assert "<class-0>" not in pipe.tokenizer.get_vocab()  # nothing half-loaded


# --- the grid -------------------------------------------------------------------------------------------------

def test_grid_shows_real_plain_and_class_token_rows(make_config, tmp_path):
    from synthbridge.data import few_shot
    from synthbridge.grids import CELL, GAP, HEADER_HEIGHT, LABEL_WIDTH, PAD

    bundle = load_dataset("digits")
    bundle.train = few_shot(bundle.train, 1, 0, bundle.classes)
    summary = invert(make_config(steps=1, shots=None), bundle=bundle)
    png = style_grid(summary["config"]["out"], out=tmp_path / "grid.png", per_class=1, bundle=bundle)
    with Image.open(png) as image:
        grid = np.asarray(image.convert("RGB"))
    step = CELL + PAD
    assert grid.shape[:2] == (HEADER_HEIGHT + 10 * step, LABEL_WIDTH + 3 * step + 2 * GAP)  # ten rows, three panels
    cell = lambda row, panel: grid[HEADER_HEIGHT + row * step:HEADER_HEIGHT + row * step + CELL,
                                   LABEL_WIDTH + panel * (step + GAP):LABEL_WIDTH + panel * (step + GAP) + CELL]
    # the plain and the class-token prompt share each cell's seed, not their images: the token replaces the phrase
    assert all(not np.array_equal(cell(row, 1), cell(row, 2)) for row in range(10))
    renamed = dataclasses.replace(bundle, classes=[f"class {name}" for name in bundle.classes])  # another dataset's
    with pytest.raises(UserError, match="not this dataset's 10"):
        style_grid(summary["config"]["out"], out=tmp_path / "other.png", per_class=1, bundle=renamed)


# --- the command line -------------------------------------------------------------------------------------------

def test_cli_per_class_run_and_bad_input(tiny_sd_path, tiny_sdxl_path, tmp_path, capsys):
    base = ["invert", "--dataset", "digits", "--generator", str(tiny_sd_path), "--steps", "1", "--shots", "1",
            "--no-progress", "--per-class"]
    out = tmp_path / "ok"
    assert main([*base, "--out", str(out), "--grid"]) == 0
    printed = capsys.readouterr().out
    assert "10 class tokens (<class-0>, ...) learned on 10 images" in printed and "grid.png" in printed
    assert (out / "grid.png").is_file() and (out / "classes" / "9.safetensors").is_file()

    cases = [
        (["--token", "<my-style>"], "drop --token"),
        (["--initializer-word", "photo"], "drop --initializer-word"),
        (["--template", "a {class} photo in the style of {style}"], "must not contain {style}"),
        (["--generator", str(tiny_sdxl_path)], "--per-class learns one token per class for Stable Diffusion 1.x/2.x"),
    ]
    for extra, message in cases:
        code = main([*base, "--out", str(tmp_path / "bad"), *extra])
        err = capsys.readouterr().err
        assert code == 2, (extra, err)
        assert message in err, (extra, err)
        assert err.count("\n") == 1 and "Traceback" not in err, err
    assert not (tmp_path / "bad" / "classes").exists()
