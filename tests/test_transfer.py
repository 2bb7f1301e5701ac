"""LEEP (evaluation.leep) and the transferability analysis of an experiment (transfer, the analysis path)."""

from __future__ import annotations

import json
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


def test_leep_before_uses_the_cells_own_weights_and_fetches_nothing_without_them(tmp_path, monkeypatch):
    import timm
    from safetensors.torch import load_file, save_file

    from synthbridge.experiments.sets import leep_before
    from synthbridge.models import LOCAL_WEIGHTS
    from synthbridge.training import TrainConfig
    from synthbridge.transfer import pretrained_leep

    # no pretrained weights and no checkpoint: None, and no model is even built (nothing to fetch)
    built = []
    monkeypatch.setattr(timm, "create_model", lambda *a, **k: built.append(k) or pytest.fail("built a model"))
    cell = TrainConfig(dataset="digits", model="resnet18", pretrained=False)
    assert leep_before(tmp_path, cell) is None and not built and not (tmp_path / "analysis").exists()
    monkeypatch.undo()

    # a checkpoint: its own head is the source head (here the embedded backbone's file: the same LEEP as pretrained)
    weights = LOCAL_WEIGHTS.get("mini_resnet").path
    pretrained = pretrained_leep("digits", "mini_resnet")
    from_file = leep_before(tmp_path, TrainConfig(dataset="digits", model="mini_resnet", pretrained=False,
                                                  checkpoint=str(weights)))
    assert from_file == pretrained < 0
    (cached,) = (tmp_path / "analysis").glob("leep-digits-mini_resnet-*.json")  # named by the file's hash
    assert json.loads(cached.read_text())["weights"]["checkpoint"] == str(weights)
    # a checkpoint without a classifier has no source head: None
    headless = {k: v for k, v in load_file(weights).items() if not k.startswith("fc.")}
    save_file(headless, str(tmp_path / "headless.safetensors"))
    assert pretrained_leep("digits", "mini_resnet", pretrained=False, checkpoint=tmp_path / "headless.safetensors") is None


def test_an_experiment_without_pretrained_weights_records_leep_before_as_none(tmp_path):
    from synthbridge.experiments import ExperimentConfig, read_results
    from synthbridge.study import run_experiment

    train = {"pretrained": False, "real": {"steps": 2, "batch_size": 16, "warmup_steps": 0},
             "synthetic_stage": {"steps": 2, "batch_size": 16, "warmup_steps": 0}, "eval_batch_size": 2048,
             "keep": "final"}
    cfg = ExperimentConfig(name="scratch", datasets=("digits",), models=("mini_resnet",), arms=("bridged",),
                           volumes=(4,), volume_arms=(), shots=(2,), seeds=(0,), generator="render", analysis=True,
                           train=train)
    run_experiment(cfg, tmp_path / "exp", show_progress=False)
    (record,) = read_results(tmp_path / "exp")
    assert record["leep"]["pretrained"] is None
    # measured while the stage weights were there; then the run kept only its final model (keep: final)
    assert record["leep"]["after_synthetic"] < 0
    run_dir = tmp_path / "exp" / record["run_dir"]
    assert json.loads((run_dir / "leep.json").read_text()) == record["leep"]
    assert not (run_dir / "stages" / "synthetic" / "model.safetensors").exists()
    assert (run_dir / "model.safetensors").exists()
    gap = json.loads((tmp_path / "exp" / "analysis" / "gap-digits.json").read_text())
    assert (gap["model"], gap["weights"]) == ("mini_resnet", "random")  # the grid's model, with the cells' weights
