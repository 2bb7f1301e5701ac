"""`--compile` (models.compile): torch.compile of the classifier in `train` and of the UNet in `generate`, on the CPU
(inductor with g++). The first call compiles (a minute on 2 cores; seconds once torch's on-disk cache holds it).

Behaviour asserted: a compiled bridged run (two stages, the head re-initialised between them) writes weights with
the plain timm keys (no `_orig_mod.`) that load into an uncompiled model, records compile in config.json, and an
interrupted compiled run resumes to the same weights as one never interrupted; `generate --compile` draws the
same images up to float rounding, in the same set; a machine without the compiler inductor needs is a one-line
error before the run folder is made.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from helpers import write_synthetic_folder
from synthbridge.errors import UserError
from synthbridge.models import create_model
from synthbridge.training import StageConfig, TrainConfig, train
from synthbridge.training import loop as loop_module

pytestmark = pytest.mark.slow  # subprocesses, browsers or compilers: `make test` runs it, `make test-fast` not


def tiny(**overrides) -> TrainConfig:
    base = dict(dataset="digits", model="mini_resnet", pretrained=False, shots=2, strategy="bridged",
                real=StageConfig(steps=4, batch_size=8, warmup_steps=1),
                synthetic_stage=StageConfig(steps=2, batch_size=8, warmup_steps=1, mixup=False),
                eval_batch_size=512, evaluate_stages=False, checkpoint_every=2, compile=True, report_to="none")
    base.update(overrides)
    return TrainConfig(**base)


def test_a_compiled_run_saves_plain_weights_and_resumes_to_the_same_ones(tmp_path, monkeypatch):
    synthetic = write_synthetic_folder(tmp_path / "syn", [str(d) for d in range(10)], per_class=1)
    cfg = tiny(synthetic=str(synthetic))
    reference = train(cfg, tmp_path / "straight")
    weights = load_file(tmp_path / "straight" / "model.safetensors")
    plain = create_model("mini_resnet", 10, pretrained=False)
    assert set(weights) == set(plain.state_dict())  # no _orig_mod. prefix
    plain.load_state_dict(weights)
    assert json.loads((tmp_path / "straight" / "config.json").read_text())["config"]["compile"] is True

    calls = {"n": 0}
    original = loop_module.save_checkpoint

    def crash_after_the_first_checkpoint(*args, **kwargs):
        original(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 1:  # the real stage's checkpoint at step 2 (the synthetic stage is finished)
            raise KeyboardInterrupt

    monkeypatch.setattr(loop_module, "save_checkpoint", crash_after_the_first_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "resumed")
    monkeypatch.setattr(loop_module, "save_checkpoint", original)
    checkpoint = torch.load(tmp_path / "resumed" / "checkpoints" / "real.pt", weights_only=True)
    assert set(checkpoint["model"]) == set(plain.state_dict())
    resumed = train(cfg, tmp_path / "resumed", resume=True)
    assert resumed["stages"]["real"]["resumed_from_step"] == 2
    again = load_file(tmp_path / "resumed" / "model.safetensors")
    assert all(torch.equal(weights[k], again[k]) for k in weights)
    assert resumed["top1"] == reference["top1"]


def test_compile_without_the_compiler_inductor_needs_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("CXX", "no-such-compiler++")
    with pytest.raises(UserError, match=r"^--compile on the CPU needs a C\+\+ compiler .*'no-such-compiler\+\+'"):
        train(tiny(strategy="real"), tmp_path / "run")
    assert not (tmp_path / "run").exists()
    with pytest.raises(UserError, match="compile must be true or false"):
        tiny(compile="yes").resolve(input_size=32)


def test_generate_with_a_compiled_unet_draws_the_same_images_into_the_same_set(tiny_sd_path, tmp_path):
    from synthbridge.generation import GenerateConfig, generate

    common = dict(dataset="digits", generator=str(tiny_sd_path), classes=("3",), steps=2, batch_size=2,
                  show_progress=False)
    generate(GenerateConfig(out=str(tmp_path / "eager"), per_class=2, **common))
    generate(GenerateConfig(out=str(tmp_path / "compiled"), per_class=2, compile=True, **common))
    eager, compiled = (sorted((tmp_path / out).glob("*/*.png")) for out in ("eager", "compiled"))
    assert [p.name for p in eager] == [p.name for p in compiled] and len(eager) == 2
    for a, b in zip(eager, compiled):
        assert np.abs(np.asarray(Image.open(a), dtype=int) - np.asarray(Image.open(b), dtype=int)).max() <= 1  # rounding
    record = json.loads((tmp_path / "compiled" / "generation.json").read_text())
    assert record["config"]["compile"] is True
    # not a set key: extending the eager set with --compile continues it
    generate(GenerateConfig(out=str(tmp_path / "eager"), per_class=3, compile=True, **common))
    assert len(list((tmp_path / "eager").glob("*/*.png"))) == 3
