import json

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

    assert len(preset_names()) == 5
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


def test_two_concurrent_workers_fill_one_store(tmp_path, monkeypatch):
    # `synthbridge demo` hands the cells to `synthbridge run --cell i/2` processes sharing one results store
    from synthbridge.embedded.demo import run_workers

    config = tmp_path / "grid.yaml"
    config.write_text(yaml.safe_dump(json.loads(json.dumps(tiny_config().to_dict()))))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # no set made beforehand: the synthetic set is made once, under a lock, whichever worker gets there first
    run_workers(config, tmp_path / "exp", 2, total=len(plan_cells(tiny_config())))
    lines = [json.loads(l)["cell"] for l in (tmp_path / "exp" / "results.jsonl").read_text().splitlines()]
    assert sorted(lines) == sorted(c.id for c in plan_cells(tiny_config()))
    assert sorted(p.name for p in (tmp_path / "exp" / "logs").iterdir()) == ["worker-0.log", "worker-1.log"]


def test_a_failed_worker_is_a_one_line_error_naming_its_log(tmp_path):
    from synthbridge.embedded.demo import run_workers

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
    real2 = next(c for c in cells if c.arm == "real" and c.shots == 2)
    mixed2 = next(c for c in cells if c.arm == "mixed" and c.shots == 2)
    assert cost[real2] == 80 * 20 and cost[mixed2] == 80 * 64  # 2 shots x 10 classes: a batch of 20 real images
    for n in (2, 3):
        shares = [share(cfg, cells, i, n) for i in range(n)]
        assert sorted(c.id for s in shares for c in s) == sorted(c.id for c in cells)  # each cell exactly once
        loads = [sum(cost[c] for c in s) for s in shares]
        assert max(loads) - min(loads) <= max(cost.values())
        assert all(s == [c for c in cells if c in s] for s in shares)  # grid order kept within a share
    assert share(cfg, cells, 0, 1) == cells
