"""The full-scale journey a new user takes, offline and in seconds: an ImageFolder of 96-pixel images, a tiny
random Stable Diffusion 1.x or SDXL pipeline (written with save_pretrained), `resnet18` and a ViT at
`--input-size 96` without ImageNet weights, through `synthbridge run` with analysis on and then `synthbridge report`.

Behaviour asserted: the run finishes every cell; the sets and the style come from the generator's own family (SDXL:
a token vector in each of its two text encoders); the gap and LEEP analysis is written, on the grid's own model
and weights (no ImageNet weights: LEEP-before is None); the input size is recorded and used (the ViT's 6x6
patch grid); the full profile keeps only the final weights; nothing touched the network.
"""

from __future__ import annotations

import json
import os
import socket

import pytest
import yaml

from helpers import write_photo_folder
from synthbridge.cli import main

pytestmark = pytest.mark.slow  # subprocesses, browsers or compilers: `make test` runs it, `make test-fast` not

FAMILIES = {"tiny_sd_path": ("StableDiffusionPipeline", 1), "tiny_sdxl_path": ("StableDiffusionXLPipeline", 2)}


@pytest.fixture
def no_network(monkeypatch):
    """HF_HUB_OFFLINE=1, and any internet connection attempted is an error (local sockets still work)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    real_connect = socket.socket.connect

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            raise AssertionError(f"the journey tried to reach the network: {address}")
        return real_connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", connect)


@pytest.mark.parametrize("generator", ["tiny_sd_path", "tiny_sdxl_path"], ids=["sd", "sdxl"])
def test_run_and_report_at_full_scale_with_random_weights_and_input_size_96(tmp_path, generator, request, no_network,
                                                                              capsys):
    generator_path = request.getfixturevalue(generator)  # before no_network matters: both are built in code
    data = write_photo_folder(tmp_path / "photos", {"train": 4, "test": 2})
    stage = {"steps": 2, "batch_size": 10, "warmup_steps": 0}
    grid = {"name": "journey", "datasets": [f"imagefolder:{data}"], "models": ["resnet18", "vit_tiny_patch16_224"],
            "arms": ["real", "bridged", "bridged_dsi"], "volumes": [4], "volume_arms": [], "shots": [None],
            "seeds": [0], "generator": str(generator_path), "generation": {"steps": 2, "batch_size": 10},
            "inversion": {"steps": 2, "batch_size": 4},
            "train": {"pretrained": False, "input_size": 96, "real": stage, "synthetic_stage": stage,
                      "eval_batch_size": 16}, "analysis": True}
    (tmp_path / "grid.yaml").write_text(yaml.safe_dump(grid))
    exp = tmp_path / "exp"

    assert main(["run", str(tmp_path / "grid.yaml"), "--out", str(exp)]) == 0
    assert "6 cells run" in capsys.readouterr().out
    records = json.loads("[" + ",".join((exp / "results.jsonl").read_text().splitlines()) + "]")
    assert len(records) == 6 and {r["key"]["model"] for r in records} == {"resnet18", "vit_tiny_patch16_224"}

    # the generator's own family drew the sets and learned the style (SDXL: a token vector in each text encoder)
    family, encoders = FAMILIES[generator]
    sets = [json.loads(p.read_text()) for p in (exp / "synthetic").glob("*/generation.json")]
    assert sets and {record["generator"]["pipeline"] for record in sets} == {family}
    assert [json.loads(p.read_text())["text_encoders"] for p in (exp / "styles").glob("*/invert.json")] == [encoders]

    # the analysis: gap measures on the grid's model (resnet18, random weights like the cells, at 96 px) and LEEP
    set_name = next(p.stem.removeprefix("gap-") for p in (exp / "analysis").glob("gap-*.json") if "-dsi" not in p.stem)
    for name in (set_name, set_name + "-dsi"):
        gap = json.loads((exp / "analysis" / f"gap-{name}.json").read_text())
        assert (gap["model"], gap["weights"], gap["input_size"]) == ("resnet18", "random", 96)
        assert gap["num_real"] == 20 and gap["num_synthetic"] == 20 and gap["fd"] >= 0
        assert (exp / "analysis" / f"fidelity-{name}.json").is_file()
    for record in records:
        assert record["metrics"]["input_size"] == 96 and record["metrics"]["num_train_synthetic"] in (0, 20)
        if record["key"]["arm"].startswith("bridged"):
            assert record["leep"]["pretrained"] is None  # no pretrained weights, no checkpoint: nothing fetched
            assert record["leep"]["after_synthetic"] < 0  # the stage-1 model's LEEP (a log-likelihood)

    # the input size is recorded and used; the full profile (96 px) keeps only the final weights
    vit = next(r for r in records if r["key"]["model"] == "vit_tiny_patch16_224" and r["key"]["arm"] == "bridged")
    run_dir = exp / vit["run_dir"]
    config = json.loads((run_dir / "config.json").read_text())["config"]
    assert (config["input_size"], config["profile"], config["keep"], config["pretrained"]) == (96, "full", "final", False)
    assert config["num_workers"] == max(0, min(4, len(os.sched_getaffinity(0)) - 1))  # from the cores, not 4
    from safetensors.torch import load_file

    assert load_file(run_dir / "model.safetensors")["pos_embed"].shape[1] == 1 + 6 * 6  # class token + 6x6 patches
    assert (run_dir / "stages" / "synthetic" / "stage.json").is_file()
    assert not list((run_dir / "stages").glob("*/model.safetensors"))

    assert main(["report", str(exp)]) == 0
    assert (exp / "report.html").is_file() and (exp / "report.md").is_file()
    assert "journey" in (exp / "report.md").read_text()
