"""LEEP (evaluation.leep) and the transferability analysis of an experiment (transfer, the analysis path)."""

from __future__ import annotations

import math

import pytest
import torch

from synthbridge.evaluation import leep


def test_leep_is_zero_for_a_source_head_that_names_the_target_and_log_one_over_k_for_noise():
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    perfect = torch.nn.functional.one_hot(labels, 3).double()  # source class z == target class y
    assert leep(perfect, labels, 3) == pytest.approx(0.0, abs=1e-9)
    uniform = torch.full((6, 5), 0.2, dtype=torch.float64)  # the source head says nothing about the target
    assert leep(uniform, labels, 3) == pytest.approx(math.log(1 / 3))
    relabelled = perfect[:, [2, 0, 1]]  # a permutation of source classes is just as transferable
    assert leep(relabelled, labels, 3) == pytest.approx(0.0, abs=1e-9)
    noisy = 0.5 * perfect + 0.5 / 3
    assert math.log(1 / 3) < leep(noisy, labels, 3) < 0


def test_an_experiment_with_analysis_records_gap_and_leep_before_and_after_the_synthetic_stage(tmp_path):
    import json

    from synthbridge.experiments import ExperimentConfig, read_results
    from synthbridge.study import run_experiment

    train = {"real": {"steps": 3, "batch_size": 16, "warmup_steps": 1},
             "synthetic_stage": {"steps": 3, "batch_size": 16, "warmup_steps": 1}, "eval_batch_size": 2048}
    cfg = ExperimentConfig(name="analysed", datasets=("digits",), models=("mini_resnet",), arms=("real", "bridged"),
                           volumes=(4,), volume_arms=(), shots=(2,), seeds=(0,), generator="render", analysis=True,
                           train=train)
    run_experiment(cfg, tmp_path / "exp", show_progress=False)
    gap = json.loads((tmp_path / "exp" / "analysis" / "gap-digits.json").read_text())
    assert gap["num_synthetic"] == 40 and gap["fd"] > 0 and gap["kid_mean"] is not None and gap["style"] is False
    records = {r["key"]["arm"]: r for r in read_results(tmp_path / "exp")}
    assert "leep" not in records["real"]  # LEEP is measured around a synthetic stage
    leep_scores = records["bridged"]["leep"]
    before = json.loads((tmp_path / "exp" / "analysis" / "leep-digits-mini_resnet.json").read_text())["leep"]
    assert leep_scores["pretrained"] == before < 0  # cached, and a log-likelihood
    # after the synthetic stage: LEEP of the stage-1 weights (with their synthetic-trained digit head)
    from accelerate import Accelerator

    from synthbridge.data import load_dataset
    from synthbridge.evaluation import leep_of_model
    from synthbridge.models import create_model, data_config
    from synthbridge.training.loop import make_transform

    weights = tmp_path / "exp" / records["bridged"]["run_dir"] / "stages" / "synthetic" / "model.safetensors"
    model = create_model("mini_resnet", 10, checkpoint=weights)
    expected = leep_of_model(model, load_dataset("digits").train, make_transform(data_config(model), "none", train=False),
                             10, Accelerator())
    assert leep_scores["after_synthetic"] == pytest.approx(expected, abs=1e-4) != leep_scores["pretrained"]
