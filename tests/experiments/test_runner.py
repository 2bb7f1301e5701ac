import json
from dataclasses import replace

import pytest
import yaml

from synthbridge.cli import main
from synthbridge.errors import UserError
from synthbridge.experiments import ExperimentConfig, plan_cells, read_results
from synthbridge.study import run_experiment

TINY_TRAIN = {"real": {"steps": 4, "batch_size": 16, "warmup_steps": 1},
              "synthetic_stage": {"steps": 3, "batch_size": 16, "warmup_steps": 1}, "eval_batch_size": 2048}


def tiny_config(**overrides) -> ExperimentConfig:
    base = dict(name="tiny", datasets=("digits",), models=("mini_resnet",), arms=("real", "mixed", "bridged"),
                volumes=(4, 8), volume_arms=("bridged",), synthetic_steps=(5,), shots=(2,), seeds=(0, 1),
                generator="render", analysis=False, train=TINY_TRAIN)
    base.update(overrides)
    return ExperimentConfig(**base)


def test_plan_cells_covers_the_grid_once():
    cells = plan_cells(tiny_config())
    # per seed: real, mixed@4, bridged@4, bridged@8, bridged@4 with 5 synthetic steps
    assert len(cells) == 2 * 5 and len({c.id for c in cells}) == len(cells)
    assert {c.volume for c in cells if c.arm == "real"} == {None}
    grids = plan_cells(tiny_config(grids=({"shots": [1]},
                                          {"shots": [3], "arms": ["real"], "volume_arms": [], "synthetic_steps": []})))
    assert len(grids) == 2 * 5 + 2 * 1


def test_config_from_yaml_rejects_unknown_keys(tmp_path):
    (tmp_path / "c.yaml").write_text("datasets: [digits]\nmodles: [x]\n")
    with pytest.raises(UserError, match="unknown experiment config keys modles"):
        ExperimentConfig.from_yaml(tmp_path / "c.yaml")
    with pytest.raises(UserError, match="does not exist"):
        ExperimentConfig.from_yaml(tmp_path / "missing.yaml")
    with pytest.raises(UserError, match="unknown arm 'bridgd'"):
        tiny_config(arms=("bridgd",)).check()


def test_presets_are_valid_configs():
    from synthbridge.experiments.config import preset_names, preset_path

    assert len(preset_names()) == 6
    for preset in preset_names():  # by name (package data) and by file path alike
        with preset_path(preset) as path:
            assert plan_cells(ExperimentConfig.from_yaml(preset)) == plan_cells(ExperimentConfig.from_yaml(path)), preset


def test_interrupted_run_finishes_with_every_cell_once(tmp_path, monkeypatch):
    cfg = tiny_config()
    import synthbridge.training as training

    real_train, calls = training.train, {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 4:
            raise KeyboardInterrupt  # Ctrl-C in the middle of the grid
        return real_train(*args, **kwargs)

    monkeypatch.setattr(training, "train", flaky)
    with pytest.raises(KeyboardInterrupt):
        run_experiment(cfg, tmp_path / "exp", show_progress=False)
    assert len(read_results(tmp_path / "exp")) == 3
    monkeypatch.setattr(training, "train", real_train)
    summary = run_experiment(cfg, tmp_path / "exp", show_progress=False)
    assert summary["ran"] == 7
    lines = [json.loads(l) for l in (tmp_path / "exp" / "results.jsonl").read_text().splitlines()]
    assert sorted(l["cell"] for l in lines) == sorted(c.id for c in plan_cells(cfg))  # each cell exactly once
    assert run_experiment(cfg, tmp_path / "exp", show_progress=False)["ran"] == 0
    with pytest.raises(UserError, match="another config"):
        run_experiment(tiny_config(seeds=(5,)), tmp_path / "exp", show_progress=False)
    # the report builds from the finished folder alone: one headline row per arm, over both seeds
    from synthbridge.reporting import build_report

    report = build_report(tmp_path / "exp")
    rows = {(row["label"], row["shots"]): row for row in report["rows"]}
    assert set(rows) == {("real only", 2), ("naive mixing", 2), ("bridged++", 2)}
    assert all(row["n"] == 2 for row in rows.values()) and (tmp_path / "exp" / "report.html").is_file()


@pytest.mark.slow
def test_two_concurrent_workers_fill_one_store(tmp_path, monkeypatch):
    # `synthbridge demo` hands the cells to `synthbridge run --cell i/2` processes sharing one results store
    from synthbridge.experiments.schedule import run_workers

    config = tmp_path / "grid.yaml"
    config.write_text(yaml.safe_dump(json.loads(json.dumps(tiny_config().to_dict()))))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # no set made beforehand: the synthetic set is made once, under a lock, whichever worker gets there first
    run_workers(config, tmp_path / "exp", 2, total=len(plan_cells(tiny_config())))
    lines = [json.loads(l)["cell"] for l in (tmp_path / "exp" / "results.jsonl").read_text().splitlines()]
    assert sorted(lines) == sorted(c.id for c in plan_cells(tiny_config()))
    assert sorted(p.name for p in (tmp_path / "exp" / "logs").iterdir()) == ["cells-worker-0.log", "cells-worker-1.log"]


def test_workers_making_the_sets_start_with_their_own_share():
    from synthbridge.experiments.schedule import set_order
    from synthbridge.experiments.sets import SetNeed

    cfg = tiny_config(inversion={"steps": 400})
    needs = [SetNeed("a", "plain", None, None, 500), SetNeed("a", "dsi", None, None, 100),
             SetNeed("b", "plain", None, None, 100), SetNeed("b", "dsi", None, None, 100)]
    first, second = set_order(cfg, needs, 0, 2), set_order(cfg, needs, 1, 2)
    assert sorted(first, key=needs.index) == sorted(second, key=needs.index) == needs  # each worker visits every set
    # largest first, each to the least loaded: the 500-image set alone, against both style sets and the small one
    assert first[:2] == [needs[0], needs[2]] and second[:2] == [needs[1], needs[3]]


@pytest.mark.slow
def test_a_failed_worker_is_a_one_line_error_naming_its_log(tmp_path):
    from synthbridge.experiments.schedule import run_workers

    config = tmp_path / "grid.yaml"
    config.write_text(yaml.safe_dump(json.loads(json.dumps(tiny_config(datasets=("nosuchset",)).to_dict()))))
    with pytest.raises(UserError, match=r"worker failed \(exit 2\).*nosuchset.*worker-\d\.log.*resume"):
        run_workers(config, tmp_path / "exp", 2, total=10)


def test_run_and_report_errors_are_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "not an experiment folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "x.yaml", "--out", str(tmp_path), "--cell", "2/2"])
    assert "0 <= i < n" in capsys.readouterr().err


def test_worker_shares_cover_the_grid_once_and_balance_its_cost():
    from synthbridge.data import load_dataset
    from synthbridge.experiments.cells import cell_cost, share

    cfg = ExperimentConfig.from_yaml("embedded")
    cells = plan_cells(cfg)
    bundles = {name: load_dataset(name) for name in cfg.datasets}
    cost = {cell: cell_cost(cfg, cell, bundles[cell.dataset]) for cell in cells}
    real5 = next(c for c in cells if c.arm == "real" and c.shots == 5)
    real10 = next(c for c in cells if c.arm == "real" and c.shots == 10)
    mixed10 = next(c for c in cells if c.arm == "mixed" and c.shots == 10)
    assert cost[real5] == 80 * 50  # 5 shots x 10 classes: a batch of 50 real images, not 64
    assert cost[real10] == cost[mixed10] == 80 * 64
    for n in (2, 3):
        shares = [share(cfg, cells, i, n) for i in range(n)]
        assert sorted(c.id for s in shares for c in s) == sorted(c.id for c in cells)  # each cell exactly once
        loads = [sum(cost[c] for c in s) for s in shares]
        assert max(loads) - min(loads) <= max(cost.values())
        assert all(s == [c for c in cells if c in s] for s in shares)  # grid order kept within a share
    assert share(cfg, cells, 0, 1) == cells


def test_bridged_cells_that_differ_in_shots_train_their_synthetic_stage_once(tmp_path, monkeypatch):
    import synthbridge.training.trainer as trainer

    cfg = tiny_config(arms=("bridged", "bridged_no_reinit"), volumes=(4,), volume_arms=(), synthetic_steps=(),
                      shots=(1, 2), seeds=(0,))
    trained = []
    real_train_stage = trainer.train_stage
    monkeypatch.setattr(trainer, "train_stage", lambda *a, **k: trained.append(a[5]) or real_train_stage(*a, **k))
    run_experiment(cfg, tmp_path / "shared", show_progress=False)
    # four cells (2 arms x 2 shot counts) share one synthetic stage: it is trained once, then loaded
    assert trained.count("synthetic") == 1 and trained.count("real") == 4
    shared = {r["cell"]: r for r in read_results(tmp_path / "shared")}
    reused = [r["metrics"]["stages"]["synthetic"].get("reused_from") for r in shared.values()]
    assert sum(r is not None for r in reused) == 3 and len(set(filter(None, reused))) == 1
    assert len(list((tmp_path / "shared" / "stage1").glob("*/model.safetensors"))) == 1

    # the same grid trained without sharing gives the same accuracies, cell by cell
    monkeypatch.setattr(trainer, "shareable", lambda *a, **k: False)
    trained.clear()
    run_experiment(cfg, tmp_path / "alone", show_progress=False)
    assert trained.count("synthetic") == 4
    alone = {r["cell"]: r for r in read_results(tmp_path / "alone")}
    for cell, record in shared.items():
        assert record["metrics"]["top1"] == alone[cell]["metrics"]["top1"]
        assert record["metrics"]["per_class"] == alone[cell]["metrics"]["per_class"]
        assert record["metrics"]["stages"]["synthetic"]["top1"] == alone[cell]["metrics"]["stages"]["synthetic"]["top1"]


@pytest.mark.slow
def test_two_concurrent_workers_train_each_shared_synthetic_stage_once(tmp_path, monkeypatch):
    from synthbridge.experiments.schedule import run_workers

    cfg = tiny_config(arms=("real", "bridged"), volumes=(4,), volume_arms=(), synthetic_steps=(), shots=(1, 2, 3),
                      seeds=(0, 1))
    config = tmp_path / "grid.yaml"
    config.write_text(yaml.safe_dump(json.loads(json.dumps(cfg.to_dict()))))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    run_workers(config, tmp_path / "exp", 2, total=len(plan_cells(cfg)))
    records = [r for r in read_results(tmp_path / "exp") if r["key"]["arm"] == "bridged"]
    assert len(records) == 6  # 3 shot counts x 2 seeds
    trained = [r for r in records if "reused_from" not in r["metrics"]["stages"]["synthetic"]]
    assert sorted(r["key"]["seed"] for r in trained) == [0, 1]  # one synthetic stage per seed, whoever got there first
    assert len(list((tmp_path / "exp" / "stage1").glob("*/stage.json"))) == 2
    by_seed = {}
    for r in records:  # every cell of a seed starts stage 2 from the same stage-1 model
        by_seed.setdefault(r["key"]["seed"], set()).add(r["metrics"]["stages"]["synthetic"]["top1"])
    assert all(len(top1s) == 1 for top1s in by_seed.values())


def test_plan_counts_the_stage1_runs_and_the_compute_reuse_saves(tmp_path, capsys):
    from synthbridge.experiments.cells import plan

    cfg = tiny_config(arms=("real", "bridged", "bridged_no_reinit"), volumes=(4,), volume_arms=(), synthetic_steps=(),
                      shots=(1, 2), seeds=(0, 1))
    summary = plan(cfg)
    # 2 seeds x (real, bridged, bridged_no_reinit) x 2 shot counts; the 8 bridged-type cells share 2 synthetic stages
    assert (summary["cells"], summary["stage1_runs_without_reuse"], summary["stage1_runs_with_reuse"]) == (12, 8, 2)
    # each synthetic stage: 3 steps x a batch of 16 (40 images); 6 of the 8 are not trained again
    assert summary["images_without_reuse"] - summary["images_with_reuse"] == 6 * 3 * 16
    assert (summary["sets"], summary["sets_learned_from_real"], summary["adaptations"]) == (1, 0, 0)
    # a style token per seed's shots, at each shot count: 2 x 2 inversions and sets, besides the plain set
    dsi = plan(tiny_config(arms=("real", "bridged", "bridged_dsi"), volumes=(4,), volume_arms=(), synthetic_steps=(),
                           shots=(1, 2), seeds=(0, 1)))
    assert (dsi["sets"], dsi["sets_learned_from_real"], dsi["adaptations"]) == (5, 4, 4)
    config = tmp_path / "grid.yaml"
    config.write_text(yaml.safe_dump(json.loads(json.dumps(cfg.to_dict()))))
    assert main(["run", str(config), "--plan"]) == 0
    assert "stage-1 (synthetic stage) runs: 8 without reuse, 2 with reuse" in capsys.readouterr().out
    assert not (tmp_path / "exp").exists()


def test_a_change_of_analysis_or_report_keys_only_keeps_finished_cells_and_sets(tmp_path, monkeypatch):
    import synthbridge.training as training

    cfg = tiny_config(arms=("real", "bridged"), volumes=(4,), synthetic_steps=(), seeds=(0,))
    run_experiment(cfg, tmp_path / "exp", show_progress=False)
    trained = []
    monkeypatch.setattr(training, "train", lambda *a, **k: trained.append(a) or pytest.fail("trained a cell again"))
    renamed = tiny_config(arms=("real", "bridged"), volumes=(4,), synthetic_steps=(), seeds=(0,), analysis=True,
                          name="renamed", gap_model="mini_vit")
    summary = run_experiment(renamed, tmp_path / "exp", show_progress=False)
    assert summary["ran"] == 0 and not trained and len(read_results(tmp_path / "exp")) == 2
    record = json.loads((tmp_path / "exp" / "experiment.json").read_text())
    assert (record["config"]["name"], record["config"]["analysis"], record["config"]["gap_model"]) == \
        ("renamed", True, "mini_vit")  # the new values are recorded, the old ones kept
    assert record["changed"][0]["was"] == {"name": "tiny", "analysis": False, "gap_model": None}
    # the sets the finished cells read get the analysis the new config asks for, without training anything
    assert json.loads((tmp_path / "exp" / "analysis" / "gap-digits.json").read_text())["model"] == "mini_vit"
    run_experiment(renamed, tmp_path / "exp", show_progress=False, sets_only=True)  # and `run --sets-only` keeps it
    assert not trained
    # anything else is another grid: refused, naming what differs
    with pytest.raises(UserError, match=r"another config \(seeds differ\)"):
        run_experiment(tiny_config(arms=("real", "bridged"), volumes=(4,), synthetic_steps=(), seeds=(0, 1)),
                       tmp_path / "exp", show_progress=False)
    # a key a later version added (here: as if `editor` and `image_variation` were new) holds its default in a
    # record without it: the same grid, resumed; given a value, it is another grid, named
    for key in ("editor", "image_variation"):
        del record["config"][key]
    (tmp_path / "exp" / "experiment.json").write_text(json.dumps(record))
    assert run_experiment(renamed, tmp_path / "exp", show_progress=False)["ran"] == 0 and not trained
    with pytest.raises(UserError, match=r"another config \(editor differ\)"):
        run_experiment(replace(renamed, editor="/some/pix2pix"), tmp_path / "exp", show_progress=False)


def test_gap_measures_use_the_grids_model_and_weights_and_are_remade_for_another(tmp_path, monkeypatch):
    import synthbridge.gap as gap_module
    from synthbridge.experiments.sets import SetNeed, analyse_set, gap_config

    cfg = tiny_config(models=("resnet18", "vit_tiny_patch16_224"), train={"pretrained": False, "input_size": 96})
    config = gap_config(cfg, "digits", tmp_path / "syn")
    assert (config.model, config.pretrained, config.checkpoint, config.input_size) == ("resnet18", False, None, 96)
    sub_grids = tiny_config(models=("mini_resnet",), grids=({"models": ["vit_tiny_patch16_224"]},), gap_model=None)
    assert gap_config(sub_grids, "digits", tmp_path / "syn").model == "vit_tiny_patch16_224"

    measured = []

    def fake_measure(config):
        measured.append(config.model)
        return {"model": config.model, "config": config.to_dict(),
                "recognition": {"per_class": {}, "overall": None}}

    monkeypatch.setattr(gap_module, "measure_gap", fake_measure)
    (tmp_path / "exp" / "syn").mkdir(parents=True)
    for model in ("mini_resnet", "mini_resnet", "mini_vit"):
        analyse_set(tiny_config(gap_model=model), tmp_path / "exp", SetNeed("digits", "plain", None, None, 10),
                    tmp_path / "exp" / "syn")
    assert measured == ["mini_resnet", "mini_vit"]  # once per feature model
