"""Tests of `synthbridge.prompts` and `synthbridge.generation` on a tiny random Stable Diffusion pipeline.

Behaviour asserted: files and manifest written; a batched image equals the same image made alone;
an interrupted or damaged folder is completed by a rerun; other parameters are refused, --overwrite
replaces and a larger --per-class extends; two shards make what one run makes; blank, NSFW and
filtered-out images are replaced by the next seed and failures are reported; bad input is one line
and exit code 2.
"""

from __future__ import annotations

import importlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import point_mini_at
from synthbridge.cli import main
from synthbridge.data import load_synthetic
from synthbridge.diffusion.pipeline import SCHEDULERS, file_sha256
from synthbridge.errors import UserError
from synthbridge.generation import folder as store
from synthbridge.generation import generate, image_seed, regenerate_image
from synthbridge.io import read_json, read_jsonl
from synthbridge.prompts import (
    TEMPLATES,
    build_prompt,
    default_template,
    read_templates_file,
    resolve_template,
    resolve_templates,
)

CLASSES = ("1", "3", "7")


def cli(capsys, *args: str) -> tuple[int, str, str]:
    try:
        code = main(["generate", "--no-progress", *args])
    except SystemExit as exc:  # argparse rejects bad values itself (exit code 2)
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def cli_args(tiny_sd_path, out, *extra: str) -> list[str]:
    return ["--dataset", "digits", "--generator", str(tiny_sd_path), "--per-class", "2", "--out", str(out),
            "--classes", *CLASSES, "--steps", "2", "--batch-size", "4", *extra]


def pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).copy()


def png_bytes(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.glob("*/*.png"))}


def manifest(folder: Path) -> list[dict]:
    return read_jsonl(folder / "manifest.jsonl")


# --- prompts ---------------------------------------------------------------------------------------------------

def test_prompt_registry_and_defaults():
    assert TEMPLATES.get("study") == "a good photo of the {class}"
    assert {"study", "photo", "superclass", "style"} <= set(TEMPLATES.names())
    assert default_template("mnist5k") == default_template("digits") == "photo"
    assert default_template("aircraft") == "study"
    assert build_prompt(TEMPLATES.get("superclass"), "digit 7", "handwritten digit") == \
        "a photo of a digit 7, a type of handwritten digit"
    assert build_prompt(TEMPLATES.get("style"), "Boeing 737", "aircraft", "<s*>") == \
        "a Boeing 737 photo in the style of <s*>"
    assert resolve_templates("digits") == ["a photo of the {class}"]
    assert resolve_templates("aircraft") == ["a good photo of the {class}"]
    assert resolve_templates("digits", style_token="<s*>") == [TEMPLATES.get("style")]
    # a style learned in another template is used in that one (a user's --template still wins)
    learned = "a photo of the {class}, {style}"
    assert resolve_templates("digits", style_token="<s*>", style_template=learned) == [learned]
    assert resolve_templates("digits", ["style"], style_token="<s*>", style_template=learned) == [TEMPLATES.get("style")]


@pytest.mark.parametrize("template, message", [
    ("a photo of a thing", "has no {class}"),
    ("fancy", "unknown prompt template"),
    ("a {clas} photo", "unknown placeholder"),
])
def test_bad_templates_are_one_line_errors(template, message):
    with pytest.raises(UserError, match=message.replace("{", r"\{").replace("}", r"\}")) as info:
        resolve_template(template)
    assert "\n" not in str(info.value)


def test_templates_file_and_style_rules(tmp_path):
    file = tmp_path / "templates.txt"
    file.write_text("# comment\nphoto\n\na sketch of the {class}\n")
    assert read_templates_file(file) == ["photo", "a sketch of the {class}"]
    assert resolve_templates("digits", ["superclass"], file) == [
        TEMPLATES.get("superclass"), TEMPLATES.get("photo"), "a sketch of the {class}"]
    with pytest.raises(UserError, match="needs every template"):
        resolve_templates("digits", ["photo"], style_token="<s*>")
    with pytest.raises(UserError, match="no --style"):
        resolve_templates("digits", ["style"])


# --- generate: files, reproducibility ---------------------------------------------------------------------------

def test_generate_writes_images_manifest_and_summary(make_config, digits):
    config = make_config(classes=None, templates=("photo", "a drawing of the {class}"))
    summary = generate(config, bundle=digits)
    out = Path(config.out)

    lines = manifest(out)
    assert [(r["class"], r["index"]) for r in lines] == [(c, i) for c in digits.classes for i in range(2)]
    for record in lines:
        assert (out / record["path"]).is_file()
        assert record["path"] == f"{record['class']}/{record['index']:05d}.png"
        assert record["seed"] == image_seed(0, record["class"], record["index"])
        assert record["prompt"] == (f"a photo of the digit {record['class']}" if record["index"] == 0
                                    else f"a drawing of the digit {record['class']}")
        assert record["regenerated_from_seeds"] == [] and record["scheduler"] == "ddim" and record["steps"] == 2
        assert (record["height"], record["width"], record["dtype"]) == (16, 16, "fp32")
        assert pixels(out / record["path"]).shape == (16, 16, 3)
    assert not store.part_files(out)

    record = read_json(out / "generation.json")
    assert record["status"] == summary["status"] == "complete"
    assert record["counts"]["images"] == 20 and record["counts"]["missing"] == 0
    assert record["set"]["guidance_scale"] == 7.5  # SD default: the folder has no synthbridge.json
    assert record["images_per_second"] > 0 and record["seconds"] > 0
    assert record["environment"]["versions"]["diffusers"]
    assert summary["run"]["generated"] == 20

    images = load_synthetic(out, digits.classes)
    assert len(images) == 20 and sorted(set(images.targets)) == list(range(10))


def test_sampler_defaults_come_from_the_generator_folder(make_config, digits, tiny_sd_path, tmp_path, monkeypatch):
    tuned = tmp_path / "tuned"
    shutil.copytree(tiny_sd_path, tuned)
    (tuned / "synthbridge.json").write_text(json.dumps({"defaults": {
        "guidance_scale": 2.0, "num_inference_steps": 3, "scheduler": "DPMSolverMultistepScheduler"}}))
    summary = generate(make_config(out="tuned-out", generator=str(tuned), steps=None, per_class=1), bundle=digits)
    assert (summary["set"]["guidance_scale"], summary["set"]["steps"], summary["set"]["scheduler"]) == (2.0, 3, "dpm++")

    # the embedded generator without a synthbridge.json: guidance 3.0, recorded as "mini"
    point_mini_at(monkeypatch, tiny_sd_path)
    summary = generate(make_config(out="mini-out", generator="mini", per_class=1), bundle=digits)
    assert summary["set"]["guidance_scale"] == 3.0 and summary["set"]["generator"] == "mini"
    assert {r["generator"] for r in manifest(tmp_path / "mini-out")} == {"mini"}


@pytest.mark.parametrize("scheduler", SCHEDULERS)
def test_batched_image_is_bit_identical_to_the_image_made_alone(make_config, digits, scheduler):
    config = make_config(scheduler=scheduler, batch_size=4, per_class=2)  # batches of 4 and 2 (padded to 4)
    generate(config, bundle=digits)
    out = Path(config.out)
    for class_name, index in (("1", 0), ("7", 1), ("3", 1)):
        alone = np.asarray(regenerate_image(out, class_name, index))  # a call with only this image's seed
        assert np.array_equal(alone, pixels(out / f"{class_name}/{index:05d}.png"))
        # an unpadded call of one image runs other kernels: equal up to float rounding
        single = np.asarray(regenerate_image(out, class_name, index, batch_size=1)).astype(int)
        assert np.abs(single - pixels(out / f"{class_name}/{index:05d}.png")).max() <= 1


# --- resume -----------------------------------------------------------------------------------------------------

def test_rerun_completes_an_interrupted_run(make_config, digits, monkeypatch):
    from diffusers import StableDiffusionPipeline

    reference = make_config(out="reference", per_class=4)
    generate(reference, bundle=digits)

    calls = {"n": 0}
    original = StableDiffusionPipeline.__call__

    def crash_after_two_batches(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 2:
            raise RuntimeError("simulated crash")
        return original(self, *args, **kwargs)

    monkeypatch.setattr(StableDiffusionPipeline, "__call__", crash_after_two_batches)
    config = make_config(per_class=4)
    with pytest.raises(RuntimeError, match="simulated crash"):
        generate(config, bundle=digits)
    out = Path(config.out)
    assert len(manifest(out)) == 8  # two batches of four made it to the manifest
    assert read_json(out / "generation.json")["status"] == "running"

    monkeypatch.setattr(StableDiffusionPipeline, "__call__", original)
    summary = generate(config, bundle=digits)
    assert summary["run"]["generated"] == 4 and summary["status"] == "complete"
    lines = manifest(out)
    assert len({r["path"] for r in lines}) == len(lines) == 12
    assert png_bytes(out) == png_bytes(Path(reference.out))  # same set as the uninterrupted run


def test_rerun_of_a_complete_set_loads_no_model(make_config, digits, monkeypatch):
    config = make_config(per_class=2)
    generate(config, bundle=digits)
    out = Path(config.out)
    before, record = png_bytes(out), read_json(out / "generation.json")

    def no_load(*args, **kwargs):
        raise AssertionError("a complete set loaded its generator")

    module = importlib.import_module("synthbridge.generation.generate")  # the package exports the function
    monkeypatch.setattr(module, "load_generator", no_load)
    summary = generate(config, bundle=digits)
    assert summary["run"]["generated"] == 0 and summary["run"]["nothing_to_make"]
    assert summary["status"] == "complete" and summary["counts"] == record["counts"]
    assert png_bytes(out) == before and read_json(out / "generation.json") == record  # nothing rewritten
    # a smaller volume of the same set is complete too; a larger one, or a missing image, loads the generator
    assert generate(make_config(per_class=1), bundle=digits)["run"]["nothing_to_make"]
    with pytest.raises(AssertionError, match="loaded its generator"):
        generate(make_config(per_class=3), bundle=digits)
    (out / manifest(out)[0]["path"]).unlink()
    with pytest.raises(AssertionError, match="loaded its generator"):
        generate(config, bundle=digits)


def test_rerun_repairs_a_damaged_folder(make_config, digits):
    config = make_config(per_class=2)
    generate(config, bundle=digits)
    out = Path(config.out)
    before = png_bytes(out)

    lines = manifest(out)
    (out / lines[0]["path"]).unlink()  # listed, file gone
    kept = [r for r in lines if r["path"] != lines[1]["path"]]  # file there, line gone (crash before the append)
    text = "".join(json.dumps(r) + "\n" for r in kept) + '{"class": "3", "pa'  # torn last line
    (out / "manifest.jsonl").write_text(text)
    stale = out / lines[0]["path"]
    (stale.parent / f".{stale.name}.abc123.tmp.png").write_bytes(b"partial")  # left by a hard kill
    (out / "manifest.0of1.jsonl").write_text(json.dumps(lines[2]) + "\n")  # an unmerged part with a duplicate

    summary = generate(config, bundle=digits)
    assert summary["run"]["generated"] == 2
    lines_after = manifest(out)
    assert len({r["path"] for r in lines_after}) == len(lines_after) == 6
    assert png_bytes(out) == before
    assert not list(out.glob("*/.*.tmp.png")) and not store.part_files(out)


# --- the set: refuse, overwrite, extend --------------------------------------------------------------------------

def test_other_parameters_are_refused_overwrite_replaces_and_per_class_extends(tiny_sd_path, tmp_path, capsys):
    out = tmp_path / "S"
    assert cli(capsys, *cli_args(tiny_sd_path, out))[0] == 0
    first = png_bytes(out)

    code, _, err = cli(capsys, *cli_args(tiny_sd_path, out, "--guidance-scale", "5"))
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "guidance_scale" in err and "--overwrite" in err

    code, stdout, _ = cli(capsys, *cli_args(tiny_sd_path, out), "--per-class", "3")  # the later flag wins
    assert code == 0 and "(3 new" in stdout
    extended = png_bytes(out)
    assert len(extended) == 9 and all(extended[path] == data for path, data in first.items())

    code, stdout, _ = cli(capsys, *cli_args(tiny_sd_path, out), "--per-class", "1")  # never shrinks the set
    assert code == 0 and "(0 new" in stdout
    assert png_bytes(out) == extended and read_json(out / "generation.json")["per_class"] == 3

    code, _, _ = cli(capsys, *cli_args(tiny_sd_path, out, "--guidance-scale", "5", "--overwrite"))
    assert code == 0
    record = read_json(out / "generation.json")
    assert record["set"]["guidance_scale"] == 5.0 and record["per_class"] == 2 and len(manifest(out)) == 6
    replaced = png_bytes(out)
    assert set(replaced) == set(first) and replaced != first


# --- scale out ---------------------------------------------------------------------------------------------------

def test_two_shards_make_exactly_what_one_run_makes(tiny_sd_path, tmp_path, capsys):
    single, sharded = tmp_path / "single", tmp_path / "sharded"
    assert cli(capsys, *cli_args(tiny_sd_path, single, "--per-class", "3"))[0] == 0
    assert cli(capsys, *cli_args(tiny_sd_path, sharded, "--per-class", "3", "--shard", "0/2"))[0] == 0
    assert read_json(sharded / "generation.json")["status"] == "incomplete"
    assert cli(capsys, *cli_args(tiny_sd_path, sharded, "--per-class", "3", "--shard", "1/2"))[0] == 0

    assert png_bytes(sharded) == png_bytes(single)
    assert manifest(sharded) == manifest(single)
    assert read_json(sharded / "generation.json")["status"] == "complete"
    assert not store.part_files(sharded)
    before = (sharded / "manifest.jsonl").read_bytes()
    with store.folder_lock(sharded):
        store.merge(sharded, list(CLASSES))  # merging again changes nothing
    assert (sharded / "manifest.jsonl").read_bytes() == before


def test_shards_and_processes_partition_the_work():
    items = store.work_items(["a", "b", "c"], 5)
    # shard i/n, then accelerate process p/P inside it, as generate() splits them
    parts = [store.split(store.split(items, i, 2), p, 3) for i in range(2) for p in range(3)]
    flat = [item for part in parts for item in part]
    order = lambda w: (w.class_position, w.index)  # noqa: E731
    assert sorted(flat, key=order) == sorted(items, key=order)
    assert len(set(flat)) == len(items)


# --- quality control ---------------------------------------------------------------------------------------------

def _patch_outputs(monkeypatch, black: set[int] = frozenset(), nsfw: set[int] = frozenset()):
    """Make the pipeline return a black image for the seeds in `black` and flag those in `nsfw`."""
    from diffusers import StableDiffusionPipeline

    original = StableDiffusionPipeline.__call__

    def patched(self, *args, **kwargs):
        output = original(self, *args, **kwargs)
        flags = []
        for i, generator in enumerate(kwargs["generator"]):
            seed = generator.initial_seed()
            if seed in black or seed in nsfw:  # the safety checker blacks out what it flags
                output.images[i] = Image.new("RGB", output.images[i].size)
            flags.append(seed in nsfw)
        output.nsfw_content_detected = flags
        return output

    monkeypatch.setattr(StableDiffusionPipeline, "__call__", patched)


def test_blank_and_nsfw_images_are_replaced_by_the_next_seed(make_config, digits, monkeypatch):
    black_seed, nsfw_seed = image_seed(0, "3", 0), image_seed(0, "7", 1)
    _patch_outputs(monkeypatch, black={black_seed}, nsfw={nsfw_seed})
    config = make_config()
    summary = generate(config, bundle=digits)
    out = Path(config.out)

    lines = {(r["class"], r["index"]): r for r in manifest(out)}
    assert len(lines) == 6
    assert lines[("3", 0)]["regenerated_from_seeds"] == [black_seed]
    assert lines[("3", 0)]["rejected_reasons"] == ["blank"]
    assert lines[("3", 0)]["seed"] == image_seed(0, "3", 0, 1)
    assert lines[("7", 1)]["rejected_reasons"] == ["nsfw"]
    assert pixels(out / "3/00000.png").std() > 2
    assert sum(bool(r["regenerated_from_seeds"]) for r in lines.values()) == 2
    assert summary["counts"]["per_class"]["3"]["reasons"] == {"blank": 1}
    assert summary["failing_classes"] == []


def test_a_class_the_generator_cannot_draw_is_reported_not_kept(make_config, digits, monkeypatch, caplog):
    doomed = {image_seed(0, "7", i, k) for i in range(2) for k in range(3)}
    _patch_outputs(monkeypatch, black=doomed)
    config = make_config(max_retries=2)
    summary = generate(config, bundle=digits)
    out = Path(config.out)

    assert {r["class"] for r in manifest(out)} == {"1", "3"}
    rejected = read_jsonl(out / "rejected.jsonl")
    assert [(r["class"], r["rejected_reasons"]) for r in rejected] == [("7", ["blank"] * 3)] * 2
    assert summary["failing_classes"] == ["7"] and summary["counts"]["given_up"] == 2
    assert read_json(out / "generation.json")["failing_classes"] == ["7"]
    assert "class '7': most images failed" in caplog.text
    assert generate(config, bundle=digits)["run"]["generated"] == 0  # given-up images are finished work


def _always_three_classifier(folder: Path, classes: list[str], with_run_config: bool) -> Path:
    """A real timm classifier (mini_resnet) whose head always answers class '3'."""
    import timm
    from safetensors.torch import save_file

    import synthbridge.embedded.models  # noqa: F401  (registers mini_resnet with timm)

    model = timm.create_model("mini_resnet", pretrained=False, num_classes=len(classes))
    with torch.no_grad():
        model.fc.weight.zero_()
        model.fc.bias.zero_()
        model.fc.bias[classes.index("3")] = 10.0
    folder.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"),
              metadata={"model": "mini_resnet", "num_classes": str(len(classes))})
    if with_run_config:
        (folder / "config.json").write_text(json.dumps({"config": {"model": "mini_resnet"}, "classes": classes}))
        return folder
    return folder / "model.safetensors"


@pytest.mark.parametrize("as_run_folder", [True, False])
def test_filter_keeps_only_images_of_the_prompted_class(make_config, digits, tmp_path, as_run_folder):
    model = _always_three_classifier(tmp_path / "run", list(digits.classes), as_run_folder)
    config = make_config(classes=("3", "5"), filter=True, filter_model=str(model), max_retries=1)
    summary = generate(config, bundle=digits)
    out = Path(config.out)

    lines = manifest(out)
    assert [r["class"] for r in lines] == ["3", "3"] and all(r["filter_score"] > 0.99 for r in lines)
    rejected = read_jsonl(out / "rejected.jsonl")
    assert [(r["class"], r["rejected_reasons"]) for r in rejected] == [("5", ["filter", "filter"])] * 2
    assert summary["failing_classes"] == ["5"] and summary["status"] == "complete"
    assert summary["run"]["filter"]["kind"] == "timm"


def test_clip_zero_shot_filter(make_config, digits, tmp_path):
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    from synthbridge.embedded.tiny import tiny_tokenizer
    from synthbridge.generation.filters import load_filter

    tokenizer = tiny_tokenizer()
    torch.manual_seed(0)
    model = CLIPModel(CLIPConfig(
        text_config=dict(hidden_size=16, intermediate_size=32, num_attention_heads=2, num_hidden_layers=1,
                         vocab_size=len(tokenizer), max_position_embeddings=77, eos_token_id=tokenizer.eos_token_id,
                         bos_token_id=tokenizer.bos_token_id, pad_token_id=tokenizer.pad_token_id),
        vision_config=dict(hidden_size=16, intermediate_size=32, num_attention_heads=2, num_hidden_layers=1,
                           image_size=16, patch_size=8),
        projection_dim=8))
    processor = CLIPProcessor(image_processor=CLIPImageProcessor(size={"shortest_edge": 16},
                                                                 crop_size={"height": 16, "width": 16}),
                              tokenizer=tokenizer)
    clip = tmp_path / "clip"
    model.save_pretrained(clip)
    processor.save_pretrained(clip)

    config = make_config(filter=True, filter_model=str(clip), max_retries=1)
    summary = generate(config, bundle=digits)
    out = Path(config.out)
    assert summary["run"]["filter"]["kind"] == "clip-zero-shot"
    finished = summary["counts"]["images"] + summary["counts"]["given_up"]
    assert finished == 6 and summary["status"] == "complete"
    # every kept image is one CLIP assigns to its class (PNG is lossless: same pixels, same verdict)
    check = load_filter(str(clip), None, digits.classes, digits.phrases, digits.superclass, torch.device("cpu"))
    lines = manifest(out)
    verdicts = check([Image.open(out / r["path"]) for r in lines], [r["class"] for r in lines])
    assert all(accepted for accepted, _ in verdicts)


# --- style --------------------------------------------------------------------------------------------------------

def _style_folder(path: Path, token: str, dim: int, template: str | None = None) -> Path:
    from safetensors.torch import save_file

    path.mkdir(parents=True)
    embedding = torch.randn(dim, generator=torch.Generator().manual_seed(0))
    save_file({token: embedding}, str(path / "learned_embeds.safetensors"))
    (path / "invert.json").write_text(json.dumps({"token": token} | ({"template": template} if template else {})))
    return path


def test_style_token_is_loaded_and_recorded(make_config, digits, tiny_sd_path, tmp_path):
    from diffusers import StableDiffusionPipeline

    style = _style_folder(tmp_path / "style", "<digit-style>", 16)
    config = make_config(style=str(style))
    generate(config, bundle=digits)
    lines = manifest(Path(config.out))
    assert lines[0]["prompt"] == "a digit 1 photo in the style of <digit-style>"
    assert {r["style_token"] for r in lines} == {"<digit-style>"}
    assert {r["style_sha256"] for r in lines} == {file_sha256(style / "learned_embeds.safetensors")}

    # a pipeline reused across calls (an experiment grid) keeps the token it already holds
    pipe = StableDiffusionPipeline.from_pretrained(tiny_sd_path, safety_checker=None, requires_safety_checker=False)
    for name in ("again1", "again2"):
        generate(make_config(out=name, style=str(style)), pipeline=pipe, bundle=digits)
    assert png_bytes(tmp_path / "again1") == png_bytes(Path(config.out))

    # a style whose invert.json records the template it was learned in is generated in that template
    learned = _style_folder(tmp_path / "learned", "<digit-style>", 16, template="a photo of the {class}, {style}")
    generate(make_config(out="learned-out", style=str(learned)), pipeline=pipe, bundle=digits)
    assert manifest(tmp_path / "learned-out")[0]["prompt"] == "a photo of the digit 1, <digit-style>"

    wrong = _style_folder(tmp_path / "wrong", "<wrong>", 8)  # learned for a text encoder of another width
    with pytest.raises(UserError, match="learned for a text encoder of width 8"):
        generate(make_config(out="wrong-out", style=str(wrong)), bundle=digits)


# --- bad input: one line, exit code 2 ------------------------------------------------------------------------------

@pytest.mark.parametrize("case", ["unknown class", "unwritable out", "template without class", "unknown template",
                                  "missing generator folder", "missing mini", "style without embeddings",
                                  "fp16 on cpu", "bad shard", "bad size", "filter without model", "hub offline"])
def test_bad_input_is_one_line_and_exit_code_2(case, tiny_sd_path, tmp_path, capsys, monkeypatch):
    out = tmp_path / "S"
    args = cli_args(tiny_sd_path, out)
    expect = {
        "unknown class": (["--classes", "11"], "unknown class '11'"),
        "unwritable out": (["--out", str(tmp_path / "file.txt" / "out")], "cannot write to output folder"),
        "template without class": (["--template", "a photo of a thing"], "has no {class}"),
        "unknown template": (["--template", "fancy"], "unknown prompt template 'fancy'"),
        "missing generator folder": (["--generator", str(tmp_path / "no-such-generator")], "does not exist"),
        "missing mini": (["--generator", "mini"], "synthbridge build-generator"),
        "style without embeddings": (["--style", str(tmp_path / "style")], "learned_embeds.safetensors"),
        "fp16 on cpu": (["--dtype", "fp16", "--device", "cpu"], "needs a GPU"),
        "bad shard": (["--shard", "2/2"], "0 <= i < n"),
        "bad size": (["--height", "20"], "multiple of 8"),
        "filter without model": (["--filter"], "--filter needs --filter-model"),
        "hub offline": (["--generator", "nobody-here/no-such-model"], "cannot load generator"),
    }
    extra, message = expect[case]
    (tmp_path / "file.txt").write_text("a file, not a folder")
    if case == "missing mini":
        point_mini_at(monkeypatch, tmp_path / "no-generator")
    if case == "style without embeddings":
        (tmp_path / "style").mkdir()
        (tmp_path / "style" / "invert.json").write_text('{"token": "<s>"}')
    if case == "hub offline":
        import huggingface_hub.constants

        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    code, _, err = cli(capsys, *args, *extra)
    assert code == 2
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("synthbridge generate: error:") and message in err


def test_a_prompt_longer_than_the_tokenizer_allows_is_one_line_per_class_once(make_config, digits, caplog):
    import logging

    long_template = "a photo of the {class}" + ", very detailed" * 40  # far past CLIP's 77 tokens
    with caplog.at_level(logging.WARNING):
        generate(make_config(templates=(long_template, "a photo of the {class}"), per_class=2), bundle=digits)
    notices = [r.getMessage() for r in caplog.records if "longer than the generator's limit" in r.getMessage()]
    assert len(notices) == len(CLASSES)  # once per class, not once per image or per call
    assert all("tokens" in n and "limit of 77" in n for n in notices) and "class '1'" in notices[0]
    assert not any("was truncated" in r.getMessage() or "Token indices" in r.getMessage() for r in caplog.records)
