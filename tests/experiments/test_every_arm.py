"""Every registered arm runs (issue 25: 12 of the 19 arms ran in no test): one tiny grid with each arm once, on the
embedded generator, each cell's record holding the stages its strategy trains, from the set its method fits."""

from __future__ import annotations

import pytest

from helpers_editing import save_tiny_pix2pix
from helpers_variation import save_tiny_unclip
from synthbridge.experiments import ExperimentConfig, read_results
from synthbridge.experiments.arms import ARMS
from synthbridge.experiments.sets import set_name
from synthbridge.io import read_jsonl
from synthbridge.study import run_experiment
from synthbridge.training.strategies import STRATEGIES

TINY_TRAIN = {"real": {"steps": 2, "batch_size": 16, "warmup_steps": 1},
              "synthetic_stage": {"steps": 2, "batch_size": 16, "warmup_steps": 1}, "eval_batch_size": 2048}


@pytest.mark.slow
def test_every_arm_runs_with_its_strategy_and_its_method(tmp_path):
    # DiffuseMix's instruction-editing model and GIF's image-variation model: none is embedded
    editor, variation = save_tiny_pix2pix(tmp_path / "pix2pix"), save_tiny_unclip(tmp_path / "unclip")
    cfg = ExperimentConfig(name="every-arm", datasets=("digits",), models=("mini_resnet",), arms=tuple(ARMS.names()),
                           editor=str(editor), image_variation=str(variation),
                           volumes=(2,), volume_arms=(), synthetic_steps=(), shots=(2,), seeds=(0,), generator="mini",
                           analysis=False, train=TINY_TRAIN, generation={"steps": 4, "batch_size": 10},
                           inversion={"steps": 2, "batch_size": 4}, lora={"steps": 2, "batch_size": 4},
                           img2img={"strength": 0.5})
    run_experiment(cfg, tmp_path / "exp", show_progress=False)
    records = {record["key"]["arm"]: record for record in read_results(tmp_path / "exp")}
    assert sorted(records) == sorted(ARMS.names())
    for name, record in records.items():
        arm = ARMS.get(name)
        strategy = STRATEGIES.get(arm.strategy)
        stages = list(record["metrics"]["stages"])
        expected = {"real": ["real"], "synthetic": ["synthetic"], "mixed": ["mixed"], "replace": ["real"],
                    "bridged": ["synthetic", "real"], "bridged_replace": ["synthetic", "real"]}[arm.strategy]
        assert stages == expected, (name, stages)
        assert 0 <= record["metrics"]["top1"] <= 100
        if strategy.needs_synthetic:  # the set its method fits, learned from the cell's own shots where it learns
            learns = arm.fitting.learns_from_real
            assert record["set"] == set_name("digits", arm.method, 2 if learns else None, 0 if learns else None)
            assert record["metrics"]["num_train_synthetic"] == 2 * 10, name  # 2 per class, 10 classes
            lines = read_jsonl(tmp_path / "exp" / "synthetic" / record["set"] / "manifest.jsonl")
            if arm.fitting.img2img:  # made from the cell's shots: of its own class, of another (Diff-Mix), or two
                other = arm.fitting.start == "other"  # of its own interpolated (Diff-II)
                assert all(("label" in line) == other and ("pair" in line) == (arm.fitting.start == "pairs")
                           for line in lines), name
                assert all(len(line["label"]) == 2 for line in lines if other), name
        else:
            assert record["set"] is None and record["metrics"]["num_train_synthetic"] == 0
