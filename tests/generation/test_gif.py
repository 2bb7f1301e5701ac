"""GIF through `synthbridge generate` with an image-variation generator (a tiny random StableUnCLIPImg2Img folder):
each real image's CLIP image embedding perturbed, kept when its class's real images recognise it, decoded; the
label stays the real image's; regenerated alone it is the same bytes; bad input is one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import generate_refusal
from helpers_variation import save_tiny_unclip
from synthbridge.data import few_shot
from synthbridge.generation import GenerateConfig, generate, regenerate_image
from synthbridge.generation.adapted import RealStarts
from synthbridge.generation.variation import TRIES, Variations
from synthbridge.io import read_jsonl


@pytest.fixture(scope="module")
def unclip(tmp_path_factory) -> Path:
    return save_tiny_unclip(tmp_path_factory.mktemp("unclip") / "pipeline")


@pytest.fixture(scope="module")
def unclip_pipe(unclip):
    from diffusers import StableUnCLIPImg2ImgPipeline

    return StableUnCLIPImg2ImgPipeline.from_pretrained(unclip)


def test_a_kept_perturbation_is_recognised_as_its_class_and_drawn_from_the_seed(unclip_pipe, digits):
    starts = RealStarts.build(digits, ["1", "3", "7"], 3, 0)
    for noise in (0.2, 3.0):
        variations = Variations(unclip_pipe, starts, noise)
        records = []
        for seed in range(12):
            source = starts.source("3", seed)
            embedding, record = variations.perturbed("3", source, seed)
            similarity = variations.centroids() @ (embedding / embedding.norm())
            assert (int(similarity.argmax()) == 1) == record["class_kept"]  # "3" is the set's second class
            assert torch.equal(embedding, variations.perturbed("3", source, seed)[0])  # a function of the seed
            assert not torch.equal(embedding, variations.embedding(source))  # perturbed
            records.append(record)
        if noise == 3.0:  # a strong perturbation: the guide rejects draws, and tries up to TRIES
            assert any(r["draw"] > 0 for r in records) and all(r["draw"] < TRIES for r in records)


def test_each_real_image_is_varied_and_keeps_its_label(unclip, digits, tmp_path):
    config = GenerateConfig(out=str(tmp_path / "S"), dataset="digits", generator=str(unclip), per_class=3,
                            classes=("1", "3"), init_images="real", shots=2, steps=3, batch_size=4, show_progress=False)
    summary = generate(config, bundle=digits)
    assert summary["set"]["variation_noise"] == 0.2 and summary["set"]["strength"] is None
    shots = few_shot(digits.train, 2, 0, digits.classes).indices
    lines = read_jsonl(Path(config.out) / "manifest.jsonl")
    assert len(lines) == 6
    for line in lines:
        source = line["source"]["index"]
        assert source in shots and digits.classes[digits.train.targets[source]] == line["class"]
        assert set(line["variation"]) == {"noise", "draw", "class_kept"} and "label" not in line
    line = lines[-1]
    again = regenerate_image(config.out, line["class"], line["index"], bundle=digits)
    assert np.array_equal(np.asarray(again.convert("RGB")), np.asarray(Image.open(Path(config.out) / line["path"])
                                                                         .convert("RGB")))
    calm = GenerateConfig(**{**config.to_dict(), "out": str(tmp_path / "calm"), "variation_noise": 0.0})
    generate(calm, bundle=digits)  # the unperturbed embedding: other images
    assert any(not np.array_equal(np.asarray(Image.open(Path(config.out) / r["path"])),
                                  np.asarray(Image.open(Path(calm.out) / r["path"]))) for r in lines)


@pytest.mark.parametrize("case", ["no init images", "noise without a variation generator", "negative noise"])
def test_bad_input_is_one_line(case, unclip, tiny_sd_path, tmp_path, capsys):
    extra, message = {
        "no init images": (["--generator", str(unclip)], "it varies real images; use --init-images real"),
        "noise without a variation generator": (["--generator", str(tiny_sd_path), "--variation-noise", "0.5"],
                                                "--variation-noise is for an image-variation generator"),
        "negative noise": (["--generator", str(unclip), "--init-images", "real", "--variation-noise", "-1"],
                           "--variation-noise"),
    }[case]
    assert message in generate_refusal(capsys, tmp_path / "S", *extra, one_line=case != "negative noise")
