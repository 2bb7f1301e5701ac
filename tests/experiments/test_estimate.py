"""`run GRID --plan --rates`: GPU-hours per phase before anything runs (issue 24 item 6), on a machine without the
datasets (their sizes from `estimate.KNOWN_SIZES`), from the figures of a benchmarks/gpu_check.py JSON."""

from __future__ import annotations

import json

import pytest
import yaml

from synthbridge.cli import main
from synthbridge.experiments.estimate import KNOWN_SIZES

RATES = {"date": "2026-12-04", "dry_run": False, "machine": {"gpu": "Test GPU", "gpu_count": 1},
         "steps": {"diffusion_commands": {"ok": True, "generate": {"images_per_second": 10.0, "sampling_steps": 25},
                                          "finetune": {"batch_size": 8, "invert": {"steps_per_second": 2.0},
                                                       "lora": {"steps_per_second": 1.0}}},
                   "train_command": {"ok": True, "input_size": 224, "runs": {
                       "resnet18/memory": {"model": "resnet18", "pipeline": "memory", "mixed_sizes": False,
                                           "stages": {"real": {"images_per_second": 1000.0}}}}}}}


def _files(tmp_path, grid: dict, rates: dict = RATES):
    (tmp_path / "grid.yaml").write_text(yaml.safe_dump(grid))
    (tmp_path / "rates.json").write_text(json.dumps(rates))
    return str(tmp_path / "grid.yaml"), str(tmp_path / "rates.json")


def _hours(out: str, phase: str) -> float:
    line = next(line for line in out.splitlines() if line.startswith(f"  {phase} "))
    return float(line.split()[1].replace(",", ""))


def test_a_plan_prices_every_phase_from_the_rates_without_the_datasets(tmp_path, capsys):
    grid = {"datasets": ["aircraft"], "models": ["resnet18"], "arms": ["real", "bridged_dsi", "bridged_lora_class"],
            "volumes": [10], "volume_arms": [], "synthetic_steps": [], "shots": [None], "seeds": [0],
            "generator": "mini", "generation": {"steps": 50}, "inversion": {"steps": 100, "batch_size": 16},
            "lora": {"steps": 30, "batch_size": 4}, "data_root": str(tmp_path / "nothing-here")}
    config, rates = _files(tmp_path, grid)
    assert main(["run", config, "--plan", "--rates", rates]) == 0
    out = capsys.readouterr().out
    classes = KNOWN_SIZES["aircraft"][0]
    assert "not counted" not in out and "GPU-hours on Test GPU x1" in out
    # two sets (dsi, lora_class) of 10 images per class at half the rate (50 steps where 25 were measured)
    assert _hours(out, "generation") == pytest.approx(round(2 * 10 * classes / 5.0 / 3600, 1))
    # one token: 100 steps of batch 16, at the batch-8 rate halved
    assert "1 token runs x 100 steps of batch 16 at 1.0 steps/s" in out
    # one adapter per class, 30 steps each of batch 4: not counted faster than at batch 8
    assert f"{classes} adapters x 30 steps of batch 4 at 1.0 steps/s" in out
    assert _hours(out, "lora") == pytest.approx(round(classes * 30 / 1.0 / 3600, 1))
    assert "resnet18" in out and "(measured)" in out


def test_the_shipped_h200_rates_price_the_study(capsys):
    assert main(["run", "study-full", "--plan", "--rates", "h200"]) == 0
    out = capsys.readouterr().out
    assert "GPU-hours on NVIDIA H200" in out and "not counted" not in out
    for phase in ("generation", "inversion", "training"):
        assert _hours(out, phase) > 0
    assert "vit_large_patch16_224" in out and "scaled by FLOPs" in out


@pytest.mark.parametrize("rates, message", [
    ("no-such-machine", "neither a file nor a shipped rate file (h200)"),
    ({**RATES, "dry_run": True}, "is a --dry-run's"),
    ({"not": "a check"}, "is not a JSON written by benchmarks/gpu_check.py"),
])
def test_bad_rates_are_one_line(rates, message, tmp_path, capsys):
    grid = {"datasets": ["digits"], "models": ["mini_resnet"], "arms": ["real"], "generator": "render", "seeds": [0]}
    config, path = _files(tmp_path, grid, rates if isinstance(rates, dict) else RATES)
    assert main(["run", config, "--plan", "--rates", path if isinstance(rates, dict) else rates]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert main(["run", config, "--out", str(tmp_path / "exp"), "--rates", "h200"]) == 2
    assert "--rates prices a --plan" in capsys.readouterr().err
