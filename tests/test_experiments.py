import json
from pathlib import Path

import pytest
import yaml

from synthbridge.cli import main
from synthbridge.errors import UserError
from synthbridge.experiments import ExperimentConfig, plan_cells, read_results, run_experiment
from synthbridge.reporting import build_report

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
    grids = plan_cells(tiny_config(grids=({"shots": [1]}, {"shots": [3], "arms": ["real"], "volume_arms": [], "synthetic_steps": []})))
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
    for preset in sorted(Path(__file__).resolve().parents[1].joinpath("configs").glob("*.yaml")):
        cfg = ExperimentConfig.from_yaml(preset)
        assert plan_cells(cfg), preset


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

    # the report is a pure function of the folder
    result = build_report(tmp_path / "exp")
    page = (tmp_path / "exp" / "report.html").read_text()
    assert "<table>" in page and "data:image/png;base64," in page and "naive mixing" in page
    assert (tmp_path / "exp" / "report.md").exists() and (tmp_path / "exp" / "results.csv").exists()
    assert any("Bridged transfer beats real only" in line for line in result["findings"])
    assert {row["arm"] for row in result["rows"]} == {"real", "mixed", "bridged"}
    # a gap measure in the folder is shown as a percentage of correctly told-apart images
    (tmp_path / "exp" / "analysis").mkdir(exist_ok=True)
    (tmp_path / "exp" / "analysis" / "gap-digits.json").write_text(json.dumps(
        {"dataset": "digits", "style": False, "fd": 19.06, "kid_mean": 0.3188, "real_vs_synthetic_accuracy": 0.916}))
    build_report(tmp_path / "exp")
    assert "| digits | plain prompts | 19.06 | 318.80 | 91.6% |" in (tmp_path / "exp" / "report.md").read_text()


def test_two_concurrent_workers_fill_one_store(tmp_path, monkeypatch):
    # `synthbridge demo` hands the cells to `synthbridge run --cell i/2` processes sharing one results store
    from synthbridge.demo import run_workers

    config = tmp_path / "grid.yaml"
    config.write_text(yaml.safe_dump(json.loads(json.dumps(tiny_config().to_dict()))))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    # no set made beforehand: the synthetic set is made once, under a lock, whichever worker gets there first
    run_workers(config, tmp_path / "exp", 2, total=len(plan_cells(tiny_config())))
    lines = [json.loads(l)["cell"] for l in (tmp_path / "exp" / "results.jsonl").read_text().splitlines()]
    assert sorted(lines) == sorted(c.id for c in plan_cells(tiny_config()))
    assert sorted(p.name for p in (tmp_path / "exp" / "logs").iterdir()) == ["worker-0.log", "worker-1.log"]


def test_a_failed_worker_is_a_one_line_error_naming_its_log(tmp_path):
    from synthbridge.demo import run_workers

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


def test_volume_finding_needs_a_significant_gain_not_just_rising_means():
    from synthbridge.reporting import findings

    cfg = {"volumes": [100, 25, 500], "arms": ["real", "bridged"], "volume_arms": ["bridged"]}

    def table(by_volume):
        return {("mnist5k", "mini_resnet", 2): {"bridged": {v: {None: seeds} for v, seeds in by_volume.items()}}}

    noisy = {25: {0: 70.0, 1: 80.0, 2: 74.0}, 100: {0: 75.0, 1: 72.0, 2: 77.0}, 500: {0: 69.0, 1: 86.0, 2: 76.0}}
    steady = {25: {0: 70.0, 1: 80.0, 2: 74.0}, 100: {0: 71.0, 1: 81.2, 2: 75.1}, 500: {0: 72.0, 1: 82.1, 2: 76.2}}
    [noisy_line] = [line for line in findings([], table(noisy), cfg) if line.startswith("Gains keep growing")]
    [steady_line] = [line for line in findings([], table(steady), cfg) if line.startswith("Gains keep growing")]
    assert "DOES NOT HOLD" in noisy_line and "in 0 of 1 settings" in noisy_line  # means rise, seeds disagree
    assert "HOLDS" in steady_line and "DOES NOT" not in steady_line


def test_findings_say_how_the_settings_that_resolve_two_points_came_out():
    from synthbridge.reporting import findings

    cfg = {"volumes": [100], "arms": ["real", "bridged"], "volume_arms": []}
    many = range(16)
    steady = {"real": {None: {None: {s: 70.0 + s % 4 for s in many}}},  # bridged +3 +- 1: resolves < 1 point
              "bridged": {100: {None: {s: 73.0 + s % 4 + (s % 2) for s in many}}}}
    noisy = {"real": {None: {None: {0: 60.0, 1: 70.0, 2: 65.0}}},  # 3 seeds, gains -9..+7: resolves ~20 points
             "bridged": {100: {None: {0: 51.0, 1: 77.0, 2: 64.0}}}}
    table = {("digits", "mini_resnet", 2): steady, ("digits", "mini_vit", 2): noisy}
    [line] = [line for line in findings([], table, cfg) if line.startswith("Bridged transfer")]
    assert "significantly better in 1, significantly worse in 0 of 2 settings" in line
    assert "of the 1 settings whose seeds resolve 2 points, bridged++ was significantly better in 1" in line
    [alone] = [line for line in findings([], {("digits", "mini_resnet", 2): steady}, cfg) if line.startswith("Bridged")]
    assert "HOLDS" in alone and "whose seeds resolve" not in alone  # every setting resolves: nothing to add


def test_paired_gain_says_how_large_a_gain_its_seeds_resolve():
    from scipy import stats

    from synthbridge.reporting import paired_gain

    real = {seed: 70.0 + seed for seed in range(10)}
    arm = {seed: real[seed] + (1.0 if seed % 2 else 3.0) for seed in range(10)}  # gains 3, 1, 3, 1, ...: mean 2
    gain = paired_gain(arm, real)
    sd = stats.tstd([3.0, 1.0] * 5)
    assert gain["gain"] == pytest.approx(2.0) and gain["n"] == 10 and gain["significant"]
    assert gain["resolves"] == pytest.approx(stats.t.ppf(0.975, 9) * sd / 10 ** 0.5)
    three = paired_gain({s: arm[s] for s in range(3)}, real)
    assert three["resolves"] > gain["resolves"]  # fewer seeds resolve only larger gains
    assert paired_gain({0: 71.0}, {0: 70.0})["resolves"] is None


def test_worker_shares_cover_the_grid_once_and_balance_its_cost():
    from synthbridge.data import load_dataset
    from synthbridge.experiments import cell_cost, share

    cfg = ExperimentConfig.from_yaml(Path(__file__).resolve().parents[1] / "configs" / "embedded.yaml")
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


def test_volume_comparisons_use_the_seeds_every_volume_has():
    from synthbridge.reporting import volume_runs

    arms = {"bridged": {25: {None: {0: 70.0, 1: 72.0}}, 100: {None: {s: 80.0 + s for s in range(10)}},
                        500: {None: {0: 74.0, 1: 76.0}, 400: {0: 1.0}}}}
    assert volume_runs(arms, "bridged") == {25: {0: 70.0, 1: 72.0}, 100: {0: 80.0, 1: 81.0}, 500: {0: 74.0, 1: 76.0}}
    assert volume_runs(arms, "mixed") == {}
