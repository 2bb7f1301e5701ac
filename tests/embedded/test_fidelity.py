"""`fidelity`: recognition and diversity of the generator's digits."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from synthbridge.embedded import fidelity as fidelity_lib
from synthbridge.embedded.build import RECORD_FILE


def test_fidelity_report_has_the_expected_keys(quick_generator, tmp_path):
    from synthbridge.models import create_model, data_config
    from synthbridge.training.loop import make_transform

    folder, _ = quick_generator
    judges = {}
    for name in ("real", "domain"):  # untrained judges: this checks the bookkeeping, not the numbers
        torch.manual_seed(0)
        model = create_model("mini_resnet", 10, pretrained=False).eval()
        judges[name] = fidelity_lib.Judge(model, make_transform(data_config(model), "none", train=False), {"test_top1": 0})
    cfg = fidelity_lib.FidelityConfig(per_class=3, diversity_sizes=(2, 3), batch_size=15, num_inference_steps=2)
    report = fidelity_lib.measure_fidelity(folder, cfg, out=tmp_path / "f.json", sheet=tmp_path / "sheet.png",
                                           record=True, judges=judges, progress=False)
    assert json.loads((tmp_path / "f.json").read_text())["recognition"] == report["recognition"]
    for judge in ("real_classifier", "in_domain_classifier"):
        figures = report["recognition"][judge]
        assert figures["num_images"] == 30 and set(figures["per_class"]) == set("0123456789")
        assert figures["top1"] == pytest.approx(sum(figures["per_class"].values()) / 10, abs=0.01)  # 3 images a digit
    for source in ("generator", "render_baseline"):
        assert set(report["diversity"][source]) == {"2", "3"}
        assert 0 < report["diversity"][source]["3"]["mean_pairwise_distance"] <= 2  # distinct images, unit vectors
        assert 1 <= report["diversity"][source]["3"]["vendi"] <= 3 + 1e-6
    assert report["sampling"]["num_inference_steps"] == 2
    assert (tmp_path / "sheet.png").is_file()
    saved = json.loads((folder / RECORD_FILE).read_text())
    assert saved["fidelity"]["real_classifier_top1"] == report["recognition"]["real_classifier"]["top1"]


def test_diversity_measures_behave():
    rng = np.random.default_rng(0)
    same = np.ones((20, 8))
    spread = rng.normal(size=(20, 8))
    assert fidelity_lib.mean_pairwise_distance(same) == pytest.approx(0, abs=1e-6)
    assert fidelity_lib.vendi_score(same) == pytest.approx(1, abs=1e-6)
    assert fidelity_lib.mean_pairwise_distance(spread) > 1
    assert 1 < fidelity_lib.vendi_score(spread[:5]) < fidelity_lib.vendi_score(spread) <= 8 + 1e-6
    # all-positive features (post-ReLU): a shared offset must not hide the spread
    assert fidelity_lib.vendi_score(10 + spread) == pytest.approx(fidelity_lib.vendi_score(spread), rel=1e-6)
