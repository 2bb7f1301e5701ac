"""Generation adapted to the real data (`generation.adapted`): image-to-image from the real training images
(--init-images real --strength), per-class LoRA adapters and per-class learned tokens.

Behaviour asserted: an image starts from the real image (index mod K) of its class, of the K-shot subset
`few_shot` picks, and records it; a low strength stays close to its source, and img2img images differ from
text-to-image ones; resume, shards and batch neighbours change no image; each class is drawn with its own
adapter (the same pixels as drawing it alone with only that adapter) in batches of one class; per-class tokens
take the place of the class phrase; bad input is one line and exit code 2.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import class_token_folder
from synthbridge.cli import main
from synthbridge.data import few_shot
from synthbridge.generation import generate, regenerate_image
from synthbridge.io import read_json, read_jsonl, safe_name


def cli(capsys, *args: str) -> tuple[int, str, str]:
    try:
        code = main(["generate", "--no-progress", *args])
    except SystemExit as exc:  # argparse rejects bad values itself (exit code 2)
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).astype(int)


def png_bytes(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.glob("*/*.png"))}


def manifest(folder) -> list[dict]:
    return read_jsonl(Path(folder) / "manifest.jsonl")


def members(bundle, name: str, indices=None) -> list[int]:
    """The real images of class `name` (indices into bundle.train) in ascending order, of `indices` or all."""
    label = bundle.classes.index(name)
    pool = range(len(bundle.train)) if indices is None else indices
    return sorted(i for i in pool if bundle.train.targets[i] == label)


# --- image-to-image from the real images ------------------------------------------------------------------------------

def test_each_image_starts_from_a_real_image_of_its_class_and_records_it(make_config, digits):
    plain = make_config(out="plain", steps=4)
    generate(plain, bundle=digits)
    config = make_config(out="real", steps=4, init_images="real", strength=0.5)
    summary = generate(config, bundle=digits)

    lines = manifest(config.out)
    assert len(lines) == 6
    for line in lines:
        assert line["init_images"] == "real" and line["strength"] == 0.5
        assert line["source"] == {"index": members(digits, line["class"])[line["index"]], "path": None}
    recorded = {k: summary["set"][k] for k in ("init_images", "strength", "shots", "shots_seed")}
    assert recorded == {"init_images": "real", "strength": 0.5, "shots": None, "shots_seed": None}
    # the same seeds and prompts, another start: other images
    assert all(not np.array_equal(pixels(Path(config.out) / r["path"]), pixels(Path(plain.out) / r["path"]))
               for r in lines)
    assert all("source" not in r for r in manifest(plain.out))  # a text-to-image line is as it was


def test_several_strengths_each_image_draws_one_and_is_the_image_of_that_strength(make_config, digits, capsys):
    """DA-Fusion's strengths: each image draws one of the set by its seed and records it; it is the very image a
    one-strength set makes at that strength (a batch is drawn at one strength), and regenerates alone."""
    common = dict(init_images="real", shots=2, per_class=6, steps=4)
    mixed = make_config(out="mixed", strength=(0.25, 1.0), **common)
    summary = generate(mixed, bundle=digits)
    assert summary["set"]["strength"] == [0.25, 1.0]
    lines = {(line["class"], line["index"]): line for line in manifest(mixed.out)}
    assert len(lines) == 18 and {line["strength"] for line in lines.values()} == {0.25, 1.0}
    for strength in (0.25, 1.0):
        alone = make_config(out=f"alone-{strength}", strength=strength, **common)
        generate(alone, bundle=digits)
        for line in manifest(alone.out):
            if lines[(line["class"], line["index"])]["strength"] == strength:
                assert line["source"] == lines[(line["class"], line["index"])]["source"]
                assert (Path(mixed.out) / line["path"]).read_bytes() == (Path(alone.out) / line["path"]).read_bytes()
    line = next(line for line in lines.values() if line["strength"] == 0.25)
    again = regenerate_image(mixed.out, line["class"], line["index"], bundle=digits)
    assert np.array_equal(np.asarray(again.convert("RGB")).astype(int), pixels(Path(mixed.out) / line["path"]))
    # the same command line: the set is complete; another set of strengths is another set
    args = ["--dataset", "digits", "--generator", mixed.generator, "--per-class", "6", "--out", mixed.out,
            "--classes", *mixed.classes, "--steps", "4", "--batch-size", "4", "--init-images", "real", "--shots", "2"]
    assert cli(capsys, *args, "--strength", "0.25,1")[0] == 0
    assert manifest(mixed.out) == list(lines.values())
    code, _, err = cli(capsys, *args, "--strength", "0.25,0.5")
    assert code == 2 and "strength" in err, err


def test_the_shots_are_the_subset_train_uses_and_cycle_over_the_index(make_config, digits):
    config = make_config(init_images="real", shots=2, shots_seed=3, per_class=3)
    summary = generate(config, bundle=digits)
    subset = few_shot(digits.train, 2, 3, digits.classes)  # what `synthbridge train --shots 2 --seed 3` trains on
    for line in manifest(config.out):
        chosen = members(digits, line["class"], subset.indices)
        assert len(chosen) == 2 and line["source"]["index"] == chosen[line["index"] % 2]  # image 2 reuses shot 0
    assert (summary["set"]["shots"], summary["set"]["shots_seed"]) == (2, 3)


def test_an_image_folder_source_is_recorded_by_its_file(make_config, tmp_path):
    from helpers import write_imagefolder
    from synthbridge.data import load_dataset

    bundle = load_dataset(f"imagefolder:{write_imagefolder(tmp_path / 'data', ['cat', 'dog'], per_class=3)}")
    config = make_config(dataset=f"imagefolder:{tmp_path / 'data'}", classes=None, init_images="real")
    generate(config, bundle=bundle)
    for line in manifest(config.out):
        index = members(bundle, line["class"])[line["index"]]
        assert line["source"] == {"index": index, "path": str(bundle.train.paths[index])}
        assert Path(line["source"]["path"]).parent.name == line["class"]


def test_a_low_strength_stays_close_to_its_source_on_the_embedded_generator(digits, tmp_path):
    """mini has a trained VAE (the tiny random one reconstructs nothing): strength 0.1 of 10 steps is one step."""
    from synthbridge.generation import GenerateConfig

    def distance(strength: float | None) -> float:
        extra = dict(init_images="real", strength=strength) if strength else {}
        out = tmp_path / f"mini-{strength}"
        generate(GenerateConfig(out=str(out), dataset="digits", generator="mini", per_class=2, classes=("1", "7"),
                                steps=10, batch_size=4, show_progress=False, **extra), bundle=digits)
        gaps = []
        for line in manifest(out):
            index = members(digits, line["class"])[line["index"]]
            real = np.asarray(digits.train.item(index)[0].resize((32, 32), Image.Resampling.LANCZOS)).astype(int)
            gaps.append(np.abs(pixels(out / line["path"]) - real).mean())
        return float(np.mean(gaps))

    near, half, plain = distance(0.1), distance(0.5), distance(None)
    assert near < 25 and near < half < plain  # measured: about 16, 34 and 63 levels of 255


def test_image_to_image_resumes_shards_and_ignores_batch_neighbours(make_config, digits, monkeypatch):
    from diffusers import StableDiffusionImg2ImgPipeline

    common = dict(init_images="real", shots=3, per_class=4, steps=4, strength=0.75)
    reference = make_config(out="reference", **common)
    generate(reference, bundle=digits)

    calls = {"n": 0}
    original = StableDiffusionImg2ImgPipeline.__call__

    def crash_after_two_batches(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 2:
            raise RuntimeError("simulated crash")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(StableDiffusionImg2ImgPipeline, "__call__", crash_after_two_batches)
    config = make_config(**common)
    with pytest.raises(RuntimeError, match="simulated crash"):
        generate(config, bundle=digits)
    assert len(manifest(config.out)) == 8
    monkeypatch.setattr(StableDiffusionImg2ImgPipeline, "__call__", original)
    assert generate(config, bundle=digits)["run"]["generated"] == 4
    assert png_bytes(Path(config.out)) == png_bytes(Path(reference.out))  # as the uninterrupted run

    for shard in ("0", "1"):
        generate(make_config(out="sharded", shard=(int(shard), 2), **common), bundle=digits)
    assert png_bytes(Path(config.out).parent / "sharded") == png_bytes(Path(reference.out))

    # alone in a padded call: the same bytes; in an unpadded call of one: equal up to float rounding
    for class_name, index in (("1", 0), ("7", 3)):
        stored = pixels(Path(reference.out) / f"{class_name}/{index:05d}.png")
        assert np.array_equal(np.asarray(regenerate_image(reference.out, class_name, index, bundle=digits)), stored)
        alone = np.asarray(regenerate_image(reference.out, class_name, index, bundle=digits, batch_size=1)).astype(int)
        assert np.abs(alone - stored).max() <= 1
    single = make_config(out="batch1", batch_size=1, **common)
    generate(single, bundle=digits)
    for path, data in png_bytes(Path(reference.out)).items():
        assert np.abs(pixels(Path(single.out) / path) - pixels(Path(reference.out) / path)).max() <= 1


def test_image_to_image_on_sdxl_goes_through_auto_pipeline_and_ignores_batch_neighbours(make_config, digits,
                                                                                       tiny_sdxl_path):
    common = dict(generator=str(tiny_sdxl_path), init_images="real", strength=0.5, steps=4)
    whole = generate(make_config(**common), bundle=digits)  # a batch of 4, then 2 padded to 4
    alone = generate(make_config(out="seven", classes=("7",), **common), bundle=digits)
    for index in range(2):
        path = f"7/{index:05d}.png"
        assert (Path(whole["out"]) / path).read_bytes() == (Path(alone["out"]) / path).read_bytes()
    regenerated = regenerate_image(whole["out"], "3", 1, bundle=digits)
    assert np.array_equal(np.asarray(regenerated), pixels(Path(whole["out"]) / "3/00001.png"))
    assert manifest(whole["out"])[0]["source"]["index"] == members(digits, "1")[0]


def test_other_start_settings_are_another_set(make_config, digits, capsys):
    from synthbridge.errors import UserError

    generate(make_config(init_images="real", strength=0.5), bundle=digits)
    for changed in (dict(strength=0.75), dict(shots=2), dict(init_images=None, strength=0.5)):
        with pytest.raises(UserError, match="other parameters") as info:
            generate(make_config(**{"init_images": "real", "strength": 0.5, **changed}), bundle=digits)
        assert "\n" not in str(info.value)


# --- per-class LoRA adapters ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def class_adapters(tiny_sd_path, tmp_path_factory, digits) -> Path:
    """Two per-class adapters (classes 1 and 3) trained by `synthbridge lora --per-class` for a few large steps.
    Read-only: shared by this file's tests."""
    from synthbridge.adaptation import LoraTrainConfig, train_lora

    out = tmp_path_factory.mktemp("lora") / "adapters"
    train_lora(LoraTrainConfig(out=str(out), dataset="digits", generator=str(tiny_sd_path), shots=2, per_class=True,
                               classes=("1", "3"), steps=3, rank=2, lr=0.5, batch_size=2, show_progress=False),
               bundle=digits)
    return out


def test_each_class_is_drawn_with_its_own_adapter_in_batches_of_one_class(make_config, digits, class_adapters,
                                                                           monkeypatch):
    from diffusers import StableDiffusionPipeline

    seen: list[list[str]] = []
    original = StableDiffusionPipeline.__call__

    def record_prompts(self, *args, **kwargs):
        seen.append(list(kwargs["prompt"]))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(StableDiffusionPipeline, "__call__", record_prompts)
    config = make_config(classes=("1", "3"), per_class=3, lora=str(class_adapters))
    summary = generate(config, bundle=digits)
    assert [len(call) for call in seen] == [4, 4]  # 3 images of one class each, padded to the batch size
    assert all(len({prompt.split()[-1] for prompt in call}) == 1 for call in seen)
    monkeypatch.setattr(StableDiffusionPipeline, "__call__", original)

    plain = make_config(out="plain", classes=("1", "3"), per_class=3)
    generate(plain, bundle=digits)
    for name in ("1", "3"):
        # the dataset-wise path with only this class's adapter draws the same pixels
        alone = make_config(out=f"alone-{name}", classes=(name,), per_class=3,
                            lora=str(class_adapters / safe_name(name)))
        generate(alone, bundle=digits)
        for index in range(3):
            path = f"{name}/{index:05d}.png"
            assert (Path(config.out) / path).read_bytes() == (Path(alone.out) / path).read_bytes()
            assert not np.array_equal(pixels(Path(config.out) / path), pixels(Path(plain.out) / path))
    assert not np.array_equal(pixels(Path(config.out) / "1/00000.png"), pixels(Path(config.out) / "3/00000.png"))
    # regenerated alone, with only its class's adapter loaded: the same bytes
    assert np.array_equal(np.asarray(regenerate_image(config.out, "3", 2)), pixels(Path(config.out) / "3/00002.png"))

    from synthbridge.diffusion.pipeline import file_sha256

    lines = manifest(config.out)
    assert {r["lora_sha256"] for r in lines} == {summary["set"]["lora_sha256"]}
    assert summary["set"]["lora_sha256"] not in {file_sha256(class_adapters / c / "pytorch_lora_weights.safetensors")
                                                 for c in ("1", "3")}  # the identity covers both adapters


def test_a_reused_pipeline_drops_the_last_sets_adapters(make_config, digits, class_adapters, tiny_sd_path):
    from diffusers import StableDiffusionPipeline

    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd_path, safety_checker=None, requires_safety_checker=False)
    generate(make_config(out="first", classes=("1", "3"), lora=str(class_adapters)), pipeline=pipe, bundle=digits)
    generate(make_config(out="again", classes=("1", "3"), lora=str(class_adapters)), pipeline=pipe, bundle=digits)
    generate(make_config(out="plain-reused", classes=("1", "3")), pipeline=pipe, bundle=digits)
    generate(make_config(out="plain", classes=("1", "3")), bundle=digits)
    root = Path(make_config().out).parent
    assert png_bytes(root / "again") == png_bytes(root / "first")
    assert png_bytes(root / "plain-reused") == png_bytes(root / "plain")


# --- per-class tokens -------------------------------------------------------------------------------------------------

def test_per_class_tokens_take_the_place_of_the_class_phrase(make_config, digits, tiny_sd_path, tmp_path):
    from diffusers import StableDiffusionPipeline
    from safetensors.torch import load_file

    style = class_token_folder(tmp_path / "tokens", ("1", "3", "7"), 16)
    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd_path, safety_checker=None, requires_safety_checker=False)
    config = make_config(style=str(style))
    summary = generate(config, pipeline=pipe, bundle=digits)
    lines = manifest(config.out)
    assert {(r["class"], r["prompt"], r["style_token"]) for r in lines} == {
        (c, f"a photo of a <class-{c}>", f"<class-{c}>") for c in ("1", "3", "7")}
    assert summary["set"]["style_token"] == {c: f"<class-{c}>" for c in ("1", "3", "7")}
    assert summary["set"]["templates"] == ["a photo of a {class}"] and summary["set"]["style_sha256"]
    # every class's vector is in the text encoder
    rows = pipe.text_encoder.get_input_embeddings().weight
    for name in ("1", "3", "7"):
        token = f"<class-{name}>"
        vector = load_file(style / "classes" / f"{name}.safetensors")[token]
        assert torch.equal(rows[pipe.tokenizer.convert_tokens_to_ids(token)].detach(), vector)
    assert np.array_equal(np.asarray(regenerate_image(config.out, "7", 1)), pixels(Path(config.out) / "7/00001.png"))
    # a user template puts the token where {class} is
    generate(make_config(out="templated", style=str(style), templates=("a drawing of the {class}",)), pipeline=pipe,
             bundle=digits)
    assert manifest(tmp_path / "templated")[0]["prompt"] == "a drawing of the <class-1>"


def test_all_three_together_through_the_command_line(tiny_sd_path, tmp_path, class_adapters, capsys):
    style = class_token_folder(tmp_path / "tokens", ("1", "3"), 16)
    out = tmp_path / "S"
    args = ["--dataset", "digits", "--generator", str(tiny_sd_path), "--per-class", "2", "--out", str(out),
            "--classes", "1", "3", "--steps", "4", "--batch-size", "4", "--init-images", "real", "--strength", "0.5",
            "--shots", "2", "--shots-seed", "1", "--style", str(style), "--lora", str(class_adapters)]
    code, stdout, err = cli(capsys, *args)
    assert code == 0, err
    assert "4 images (4 new" in stdout
    lines = manifest(out)
    assert [r["prompt"] for r in lines] == ["a photo of a <class-1>"] * 2 + ["a photo of a <class-3>"] * 2
    assert all(r["source"]["index"] is not None and r["strength"] == 0.5 for r in lines)
    record = read_json(out / "generation.json")["set"]
    assert (record["init_images"], record["strength"], record["shots"], record["shots_seed"]) == ("real", 0.5, 2, 1)
    code, _, err = cli(capsys, *args[:-2])  # without the adapters: another set
    assert code == 2 and "lora_sha256" in err and len(err.strip().splitlines()) == 1


# --- bad input: one line, exit code 2 ----------------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["strength 0", "strength above 1", "strength without init", "shots without init",
                                  "shots seed without init", "init images noise", "one of several strengths above 1",
                                  "strength not a number", "label gamma without other", "other with one class",
                                  "pairs from one shot", "pairs without ddim", "pairs with a strength",
                                  "class without real images",
                                  "more shots than a class has", "no denoising step", "missing class adapter",
                                  "missing class token"])
def test_bad_input_is_one_line_and_exit_code_2(case, tiny_sd_path, tmp_path, capsys, class_adapters, digits,
                                               monkeypatch):
    out = tmp_path / "S"
    args = ["--dataset", "digits", "--generator", str(tiny_sd_path), "--per-class", "2", "--out", str(out),
            "--classes", "1", "3", "--steps", "2"]
    if case == "class without real images":  # a registered dataset whose training split lacks digit 3
        from synthbridge.data import DATASETS, ArrayImages, DatasetBundle

        keep = [i for i, t in enumerate(digits.train.targets) if t != 3]
        lopsided = DatasetBundle("lopsided", digits.classes, digits.phrases, digits.superclass,
                                 ArrayImages(digits.train.pixels[keep], [digits.train.targets[i] for i in keep]),
                                 digits.test)
        DATASETS.names()  # plugins registered first
        monkeypatch.setitem(DATASETS._entries, "lopsided", lambda data_root=None, download=False: lopsided)
    style = class_token_folder(tmp_path / "tokens", ("1",), 16)
    extra, message = {
        "strength 0": (["--init-images", "real", "--strength", "0"], "--strength must be a number in (0, 1]"),
        "strength above 1": (["--init-images", "real", "--strength", "1.5"], "--strength must be a number in (0, 1]"),
        "strength without init": (["--strength", "0.5"], "--strength without --init-images"),
        "one of several strengths above 1": (["--init-images", "real", "--strength", "0.5,2"],
                                             "--strength must be a number in (0, 1]"),
        "strength not a number": (["--init-images", "real", "--strength", "0.5,half"],
                                  "expected a number or numbers separated by commas"),
        "label gamma without other": (["--init-images", "real", "--label-gamma", "0.8"],
                                      "--label-gamma labels images translated from another class"),
        "other with one class": (["--init-images", "other", "--classes", "1"], "give it at least two classes"),
        "pairs from one shot": (["--init-images", "pairs", "--scheduler", "ddim", "--shots", "1"],
                                "interpolates two real images of a class"),
        "pairs without ddim": (["--init-images", "pairs", "--scheduler", "euler"], "needs a Stable Diffusion 1.x/2.x"),
        "pairs with a strength": (["--init-images", "pairs", "--strength", "0.7"], "--strength does not apply"),
        "shots without init": (["--shots", "2"], "--shots without --init-images"),
        "shots seed without init": (["--shots-seed", "1"], "--shots-seed without --init-images"),
        "init images noise": (["--init-images", "noise"], "--init-images takes 'real'"),
        "class without real images": (["--dataset", "lopsided", "--init-images", "real"],
                                      "class '3' has no real training images"),
        "more shots than a class has": (["--init-images", "real", "--shots", "1000"], "--shots 1000 is more than class"),
        "no denoising step": (["--init-images", "real", "--strength", "0.2"], "leaves no denoising step"),
        "missing class adapter": (["--lora", str(class_adapters), "--classes", "1", "7"],
                                  "has no adapter for class '7'"),
        "missing class token": (["--style", str(style)], "has no token for class '3'"),
    }[case]
    code, _, err = cli(capsys, *args, *extra)
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("synthbridge generate: error:") and message in err, err


# --- Diff-Mix: image-to-image from another class, labelled softly ---------------------------------------------------

def test_an_image_translated_from_another_class_records_its_source_and_soft_label(make_config, digits):
    config = make_config(out="mix", init_images="other", strength=(0.5, 1.0), label_gamma=0.8, per_class=4, shots=2,
                         steps=4)
    summary = generate(config, bundle=digits)
    assert summary["set"]["init_images"] == "other" and summary["set"]["label_gamma"] == 0.8
    subset = set(few_shot(digits.train, 2, 0, digits.classes).indices)
    lines = manifest(config.out)
    assert len(lines) == 4 * len(config.classes)
    sources = set()
    for line in lines:
        source = line["source"]["index"]
        owner = digits.classes[digits.train.targets[source]]
        assert owner != line["class"] and owner in config.classes and source in subset  # another class's shot
        weight = line["strength"] ** 0.8
        assert line["label"] == {owner: pytest.approx(1 - weight, abs=1e-6), line["class"]: pytest.approx(weight)}
        sources.add(owner)
    assert sources == set(config.classes)  # every class is somebody's source
    line = lines[0]
    again = regenerate_image(config.out, line["class"], line["index"], bundle=digits)
    assert np.array_equal(np.asarray(again.convert("RGB")).astype(int), pixels(Path(config.out) / line["path"]))
    plain = make_config(out="same-class", init_images="real", strength=(0.5, 1.0), per_class=4, shots=2, steps=4)
    generate(plain, bundle=digits)
    assert all("label" not in line for line in manifest(plain.out))  # a start from its own class: a plain label


# --- Diff-II: two real images of the class, inverted to noise and interpolated --------------------------------------

def test_slerp_goes_from_one_end_to_the_other_on_the_sphere():
    from synthbridge.diffusion.sampling import slerp

    a, b = torch.tensor([3.0, 0.0]), torch.tensor([0.0, 3.0])
    assert torch.allclose(slerp(a, b, 0.0), a) and torch.allclose(slerp(a, b, 1.0), b)
    middle = slerp(a, b, 0.5)
    assert torch.allclose(middle.norm(), torch.tensor(3.0)) and torch.allclose(middle, torch.tensor([2.1213, 2.1213]),
                                                                             atol=1e-4)


def test_ddim_inversion_of_a_real_image_samples_back_close_to_it(digits):
    """On `mini` (a trained VAE and UNet): the inverted noise, sampled with DDIM, is much nearer its image than the
    sample of a seed's noise."""
    from synthbridge.diffusion.pipeline import describe_generator, load_generator, locate_generator, set_scheduler
    from synthbridge.diffusion.sampling import ddim_invert, render

    folder, name = locate_generator("mini")
    pipe = load_generator(describe_generator(name, folder), "fp32", torch.device("cpu"), quiet=True)
    set_scheduler(pipe, "ddim", None)
    real = digits.train.item(5)[0].convert("RGB").resize((32, 32), Image.Resampling.LANCZOS)
    common = dict(negative_prompt=None, steps=10, guidance_scale=1.0, height=32, width=32, batch_size=1)
    (back,), _ = render(pipe, [""], [0], latents=[ddim_invert(pipe, real, 10)], **common)
    (noise,), _ = render(pipe, [""], [0], **common)
    distance = lambda image: np.abs(np.asarray(image).astype(int) - np.asarray(real).astype(int)).mean()  # noqa: E731
    assert distance(back) < 0.5 * distance(noise), (distance(back), distance(noise))


def test_each_image_interpolates_two_real_images_of_its_class_and_regenerates(make_config, digits):
    config = make_config(out="pairs", init_images="pairs", scheduler="ddim", per_class=3, shots=3, steps=3)
    summary = generate(config, bundle=digits)
    assert summary["set"]["init_images"] == "pairs" and summary["set"]["strength"] is None
    subset = few_shot(digits.train, 3, 0, digits.classes).indices
    lines = manifest(config.out)
    for line in lines:
        chosen = members(digits, line["class"], subset)
        assert line["source"]["index"] in chosen and line["pair"]["index"] in chosen
        assert line["source"]["index"] != line["pair"]["index"] and 0 < line["pair"]["weight"] < 1
        assert "strength" not in line and "label" not in line
    line = lines[-1]
    again = regenerate_image(config.out, line["class"], line["index"], bundle=digits)
    assert np.array_equal(np.asarray(again.convert("RGB")).astype(int), pixels(Path(config.out) / line["path"]))
    noise = make_config(out="noise", scheduler="ddim", per_class=3, steps=3)  # the same seeds from their own noise
    generate(noise, bundle=digits)
    assert all(not np.array_equal(pixels(Path(config.out) / r["path"]), pixels(Path(noise.out) / r["path"])) for r in lines)
