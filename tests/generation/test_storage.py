"""Tests of generation's storage options (`--image-format png|webp|jpg --quality Q --save-size N`).

Behaviour asserted: the files have the format, suffix and size asked for (resized with PIL's LANCZOS from the
generated image); the manifest and generation.json record format, quality and size; the folder reads back
through synthbridge's `load_synthetic` and torchvision's `ImageFolder`; other storage parameters are refused
without --overwrite, which replaces the files; a set recorded before the options existed still resumes;
bad values are one line and exit code 2.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from synthbridge.cli import main
from synthbridge.data import load_synthetic
from synthbridge.errors import UserError
from synthbridge.generation import generate, regenerate_image
from synthbridge.io import read_json, read_jsonl, write_json

CLASSES = ("1", "3", "7")


def pixels(path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB")).copy()


@pytest.mark.parametrize("image_format, pil_format, suffix", [("webp", "WEBP", ".webp"), ("jpg", "JPEG", ".jpg")])
def test_lossy_formats_are_written_recorded_and_read_back(make_config, digits, image_format, pil_format, suffix):
    from torchvision.datasets import ImageFolder

    summary = generate(make_config(image_format=image_format, quality=80, save_size=8), bundle=digits)
    out = summary["out"]
    files = sorted(p for p in Path(out).glob("*/*") if p.is_file())
    assert len(files) == 6 and all(f.suffix == suffix for f in files)
    for file in files:
        with Image.open(file) as image:
            assert image.format == pil_format and image.size == (8, 8)  # 16-pixel images saved at 8
    lines = read_jsonl(f"{out}/manifest.jsonl")
    assert all(line["path"].endswith(suffix) for line in lines)
    assert {(line["image_format"], line["quality"], line["save_size"]) for line in lines} == {(image_format, 80, 8)}
    record = read_json(f"{out}/generation.json")
    assert (record["set"]["image_format"], record["set"]["quality"], record["set"]["save_size"]) == (image_format, 80, 8)
    assert record["config"]["image_format"] == image_format

    images = load_synthetic(out, list(CLASSES))  # synthbridge's own reader, labels from the manifest
    assert len(images) == 6 and sorted(images.targets) == [0, 0, 1, 1, 2, 2]
    assert images.load(0).size == (8, 8)
    folder = ImageFolder(out)  # torchvision: class folders, any of its image suffixes
    assert folder.classes == list(CLASSES) and len(folder) == 6
    assert folder[0][0].size == (8, 8)


def test_save_size_is_a_lanczos_resize_of_the_generated_image(make_config, digits):
    native = generate(make_config("native"), bundle=digits)
    small = generate(make_config("small", save_size=8), bundle=digits)
    assert native["set"]["save_size"] == 16 and native["set"]["quality"] is None  # png: lossless, quality unused
    assert small["set"]["save_size"] == 8
    path = "7/00001.png"
    with Image.open(f"{native['out']}/{path}") as image:
        expected = np.asarray(image.convert("RGB").resize((8, 8), Image.Resampling.LANCZOS))
    assert np.array_equal(pixels(f"{small['out']}/{path}"), expected)
    # a single image made again, alone, is the file (the same resize, in the padded batch shape)
    assert np.array_equal(np.asarray(regenerate_image(small["out"], "7", 1)), pixels(f"{small['out']}/{path}"))


def test_other_storage_is_refused_without_overwrite(make_config, digits):
    first = generate(make_config(), bundle=digits)
    out = first["out"]
    for change, key in (({"image_format": "jpg"}, "image_format"), ({"save_size": 8}, "save_size")):
        with pytest.raises(UserError, match=key) as info:
            generate(make_config(**change), bundle=digits)
        assert "\n" not in str(info.value) and "--overwrite" in str(info.value)
    # png ignores --quality: the same set, resumed (nothing to make)
    assert generate(make_config(quality=50), bundle=digits)["run"]["generated"] == 0

    replaced = generate(make_config(image_format="jpg", overwrite=True), bundle=digits)
    assert replaced["counts"]["images"] == 6
    names = sorted(p.name for p in Path(out).glob("*/*"))
    assert names and all(name.endswith(".jpg") for name in names)  # no PNG of the old set is left beside them


def test_a_set_of_another_folder_format_is_one_line_and_overwrite_makes_it_again(make_config, digits, capsys):
    """A set made before folder formats (no "format" in generation.json; its storage keys absent, as before the
    storage options) is refused in one line, not read with guessed defaults; --overwrite makes it again."""
    out = generate(make_config(per_class=1), bundle=digits)["out"]
    record = read_json(f"{out}/generation.json")
    del record["format"]
    for key in ("image_format", "quality", "save_size"):
        del record["set"][key]
    write_json(f"{out}/generation.json", record)
    with pytest.raises(UserError, match=r"is a synthetic set in folder format 0, made by another synthbridge version "
                                        r"\(this one reads format 1\); make it again \(--overwrite"):
        generate(make_config(per_class=2), bundle=digits)
    remade = generate(make_config(per_class=2, overwrite=True), bundle=digits)
    assert remade["counts"]["images"] == 6 and read_json(f"{out}/generation.json")["format"] == 1


@pytest.mark.parametrize("extra, message", [
    (["--image-format", "gif"], "invalid choice: 'gif'"),
    (["--quality", "101"], "--quality must be a whole number from 1 to 100"),
    (["--save-size", "0"], "--save-size"),
])
def test_bad_storage_values_are_one_line_and_exit_code_2(extra, message, tiny_sd_path, tmp_path, capsys):
    args = ["generate", "--no-progress", "--dataset", "digits", "--generator", str(tiny_sd_path), "--per-class", "1",
            "--out", str(tmp_path / "S"), "--classes", "1", "--steps", "1", *extra]
    try:
        code = main(args)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert message in err


def test_synthbridge_reads_every_suffix_torchvision_reads():
    from torchvision.datasets.folder import IMG_EXTENSIONS

    from synthbridge.data.folders import IMAGE_SUFFIXES
    from synthbridge.generation.config import IMAGE_FORMATS

    assert set(IMG_EXTENSIONS) <= IMAGE_SUFFIXES
    assert {suffix for _, suffix in IMAGE_FORMATS.values()} <= set(IMG_EXTENSIONS)
