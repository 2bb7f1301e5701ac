"""DiffuseMix through `synthbridge generate` with an instruction-editing generator (a tiny random InstructPix2Pix
folder): each real image edited with an instruction drawn by its seed, half real and half edit, blended with a
fractal; the label stays the real image's class; regenerated alone it is the same bytes; bad input is one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import class_token_folder, generate_refusal
from helpers_editing import save_tiny_pix2pix
from synthbridge.data import few_shot
from synthbridge.generation import GenerateConfig, generate, regenerate_image
from synthbridge.generation.diffusemix import EDITS, HALVES, fractal, hybrid
from synthbridge.io import read_jsonl


@pytest.fixture(scope="module")
def pix2pix(tmp_path_factory) -> Path:
    return save_tiny_pix2pix(tmp_path_factory.mktemp("pix2pix") / "pipeline")


def test_a_hybrid_is_half_real_half_edit_blended_with_its_fractal():
    real, edited = Image.new("RGB", (8, 6), (200, 10, 10)), Image.new("RGB", (8, 6), (10, 10, 200))
    seen = set()
    for seed in range(40):
        image, record = hybrid(real, edited, seed, 0.25)
        pixels, shade = np.asarray(image).astype(float), fractal(seed, 8, 6).astype(float)
        kept = {"left": (slice(None), slice(0, 4)), "right": (slice(None), slice(4, 8)),
                "top": (slice(0, 3), slice(None)), "bottom": (slice(3, 6), slice(None))}[record["original"]]
        expected = np.where(np.zeros((6, 8, 1), bool), 0, np.asarray(edited).astype(float))
        expected[kept] = np.asarray(real).astype(float)[kept]
        assert np.abs(pixels - (0.75 * expected + 0.25 * shade)).max() <= 0.5 and image.size == (8, 6)
        seen.add(record["original"])
        assert np.array_equal(np.asarray(hybrid(real, edited, seed, 0.25)[0]), np.asarray(image))  # from its seed
    assert seen == set(HALVES)
    assert not np.array_equal(fractal(1, 16, 16), fractal(2, 16, 16)) and fractal(1, 16, 16).shape == (16, 16, 3)


def test_each_real_image_is_edited_mixed_and_keeps_its_label(pix2pix, digits, tmp_path):
    config = GenerateConfig(out=str(tmp_path / "S"), dataset="digits", generator=str(pix2pix), per_class=3,
                            classes=("1", "3"), init_images="real", shots=2, steps=3, batch_size=4, show_progress=False)
    summary = generate(config, bundle=digits)
    assert summary["set"]["edits"] == list(EDITS) and summary["set"]["fractal_blend"] == 0.2
    shots = few_shot(digits.train, 2, 0, digits.classes).indices
    lines = read_jsonl(Path(config.out) / "manifest.jsonl")
    assert len(lines) == 6
    for line in lines:
        source = line["source"]["index"]
        assert source in shots and digits.classes[digits.train.targets[source]] == line["class"]  # its own label
        assert line["prompt"] in EDITS and "label" not in line and set(line["edit"]) == {"original", "fractal_blend"}
        # the real image's half is exactly the real image blended with the image's fractal
        real = np.asarray(digits.train.item(source)[0].convert("RGB").resize((16, 16), Image.Resampling.LANCZOS),
                          dtype=float)
        stored = np.asarray(Image.open(Path(config.out) / line["path"]).convert("RGB"), dtype=float)
        kept = {"left": (slice(None), slice(0, 8)), "right": (slice(None), slice(8, 16)),
                "top": (slice(0, 8), slice(None)), "bottom": (slice(8, 16), slice(None))}[line["edit"]["original"]]
        expected = 0.8 * real[kept] + 0.2 * fractal(line["seed"], 16, 16)[kept]
        assert np.abs(stored[kept] - expected).max() <= 0.5
    line = lines[-1]
    again = regenerate_image(config.out, line["class"], line["index"], bundle=digits)
    assert np.array_equal(np.asarray(again.convert("RGB")), np.asarray(Image.open(Path(config.out) / line["path"])
                                                                         .convert("RGB")))


@pytest.mark.parametrize("case", ["no init images", "edits without an editor", "fractal blend above 1", "with a style"])
def test_bad_input_is_one_line(case, pix2pix, tiny_sd_path, tmp_path, capsys):
    extra, message = {
        "no init images": (["--generator", str(pix2pix)], "it edits real images; add --init-images real"),
        "edits without an editor": (["--generator", str(tiny_sd_path), "--edits", "snowy"],
                                    "are for an instruction-editing generator"),
        "fractal blend above 1": (["--generator", str(pix2pix), "--init-images", "real", "--fractal-blend", "1.5"],
                                  "--fractal-blend must be a number from 0 to 1"),
        "with a style": (["--generator", str(pix2pix), "--init-images", "real", "--style",
                          str(class_token_folder(tmp_path / "tokens", ("1", "3"), 16))], "--style and --lora fit"),
    }[case]
    assert message in generate_refusal(capsys, tmp_path / "S", *extra)
