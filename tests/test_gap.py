"""Tests of `synthbridge.gap`: FD, KID and the real-vs-synthetic classifier on the embedded backbone.

Behaviour asserted: the measures agree with direct formulas (scipy's matrix square root, the unbiased
MMD^2 written out); a synthetic set identical to the real one has FD ~ 0, KID ~ 0 and a classifier at
chance; shifted and noised copies are farther on every measure; the JSON and grid files are written;
bad input is one line and exit code 2.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from synthbridge.cli import main
from synthbridge.data import few_shot, load_dataset
from synthbridge.errors import UserError
from synthbridge.gap import GapConfig, frechet_distance, kernel_distance, measure_gap, real_vs_synthetic_accuracy
from synthbridge.io import safe_name


@pytest.fixture(scope="module")
def mnist5k():
    return load_dataset("mnist5k")


def copy_as_synthetic(bundle, root: Path, shots: int, change=None) -> Path:
    """The `shots`-per-class real images (as `GapConfig(shots=...)` picks them) in the synthetic layout."""
    images = few_shot(bundle.train, shots, 0, bundle.classes)
    rng = np.random.default_rng(0)
    lines = []
    for i in range(len(images)):
        name = bundle.classes[images.targets[i]]
        pixels = np.asarray(images.load(i).convert("L"), dtype=np.float32)
        if change is not None:
            pixels = change(pixels, rng)
        rel = f"{safe_name(name)}/{i:05d}.png"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(root / rel)
        lines.append(json.dumps({"class": name, "path": rel}))
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return root


def shifted(pixels: np.ndarray, rng) -> np.ndarray:
    """A grey background and noise: the content is the same, the look is not."""
    return pixels * 0.6 + 80 + rng.normal(0, 25, pixels.shape)


# --- the measures against direct formulas ---------------------------------------------------------------------------

def test_frechet_distance_matches_the_formula():
    from scipy import linalg

    rng = np.random.default_rng(0)
    a = rng.normal(0, 1, (400, 6))
    b = rng.normal(0.5, 2, (300, 6)) @ rng.normal(0, 1, (6, 6))
    mean_a, mean_b = a.mean(0), b.mean(0)
    cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = ((mean_a - mean_b) ** 2).sum() + np.trace(cov_a + cov_b - 2 * linalg.sqrtm(cov_a @ cov_b).real)
    assert frechet_distance(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(expected, rel=1e-6)
    assert frechet_distance(torch.from_numpy(a), torch.from_numpy(a)) == pytest.approx(0, abs=1e-6)


def test_kernel_distance_is_the_unbiased_mmd():
    rng = np.random.default_rng(1)
    x, y = rng.normal(0, 1, (50, 4)), rng.normal(0.3, 1, (50, 4))
    kernel = lambda p, q: (p @ q.T / 4 + 1) ** 3
    m = len(x)
    k_xx, k_yy, k_xy = kernel(x, x), kernel(y, y), kernel(x, y)
    expected = ((k_xx.sum() - np.trace(k_xx)) + (k_yy.sum() - np.trace(k_yy))) / (m * (m - 1)) - 2 * k_xy.mean()
    # one subset of all samples: the random subset is the whole set, so it is exactly the formula
    mean, std = kernel_distance(torch.from_numpy(x), torch.from_numpy(y), subsets=1, subset_size=m, seed=0)
    assert mean == pytest.approx(expected, rel=1e-9) and std == 0
    # seeded: the same subsets every time
    assert kernel_distance(torch.from_numpy(x), torch.from_numpy(y), 5, 20, 3) == \
        kernel_distance(torch.from_numpy(x), torch.from_numpy(y), 5, 20, 3)


def test_classifier_is_at_chance_on_one_distribution_and_not_on_two():
    rng = np.random.default_rng(2)
    same = real_vs_synthetic_accuracy(torch.from_numpy(rng.normal(0, 1, (300, 8))),
                                      torch.from_numpy(rng.normal(0, 1, (200, 8))), folds=5, seed=0)
    apart = real_vs_synthetic_accuracy(torch.from_numpy(rng.normal(0, 1, (300, 8))),
                                       torch.from_numpy(rng.normal(1, 1, (200, 8))), folds=5, seed=0)
    assert abs(same[0] - 0.5) < 0.1 and same[2] == 200  # balanced: 200 of each
    assert apart[0] > 0.9


# --- end to end on the embedded backbone ----------------------------------------------------------------------------

def test_identical_set_is_close_and_a_shifted_set_is_far(mnist5k, tmp_path):
    same = copy_as_synthetic(mnist5k, tmp_path / "same", shots=20)
    moved = copy_as_synthetic(mnist5k, tmp_path / "moved", shots=20, change=shifted)
    common = dict(dataset="mnist5k", shots=20, kid_subset_size=100, kid_subsets=20)

    result = measure_gap(GapConfig(synthetic=str(same), out=str(tmp_path / "gap.json"), grid=str(tmp_path / "grid.png"),
                                   grid_per_class=2, **common), bundle=mnist5k)
    far = measure_gap(GapConfig(synthetic=str(moved), **common), bundle=mnist5k)

    assert result["num_real"] == result["num_synthetic"] == 200 and result["feature_dim"] == 128
    assert result["fd"] < 1e-6 * max(1.0, far["fd"])
    # KID's subsets of two identical sets share images, which only lowers the unbiased estimate below 0
    assert result["kid_mean"] <= 0 < far["kid_mean"]
    assert abs(result["real_vs_synthetic_accuracy"] - 0.5) < 0.1
    assert far["fd"] > 1.0 and far["real_vs_synthetic_accuracy"] > 0.9
    # per class: a classifier of the real images recognises copies of them, and fewer of the shifted ones
    assert set(result["recognition"]["per_class"]) == set(mnist5k.classes)
    assert result["recognition"]["overall"] > 95 and far["recognition"]["overall"] < result["recognition"]["overall"]
    written = json.loads((tmp_path / "gap.json").read_text())
    for key in ("fd", "kid_mean", "kid_std", "real_vs_synthetic_accuracy", "num_real", "num_synthetic", "model",
                "seconds", "config", "environment"):
        assert key in written, key
    with Image.open(tmp_path / "grid.png") as grid:
        assert grid.size[1] > 10 * 32  # one row per class


def test_max_images_caps_both_sides(mnist5k, tmp_path):
    same = copy_as_synthetic(mnist5k, tmp_path / "same", shots=5)
    result = measure_gap(GapConfig(synthetic=str(same), max_images=30, kid_subsets=5), bundle=mnist5k)
    assert result["num_real"] == 30 and result["num_synthetic"] == 30 and result["kid_subset_size"] == 15  # half the smaller set


def test_cli_prints_a_table_and_bad_input_is_one_line(mnist5k, tmp_path, capsys):
    same = copy_as_synthetic(mnist5k, tmp_path / "same", shots=5)
    code = main(["gap", "--synthetic", str(same), "--shots", "5", "--kid-subsets", "5", "--out", str(tmp_path / "g.json")])
    out = capsys.readouterr().out
    assert code == 0 and "FD" in out and "real-vs-synthetic accuracy" in out and (tmp_path / "g.json").is_file()

    file = tmp_path / "file.txt"
    file.write_text("x")
    for args, message in [
        (["--synthetic", str(tmp_path / "nowhere")], "does not exist"),
        (["--synthetic", str(same), "--model", "no_such_model"], "unknown model"),
        (["--synthetic", str(same), "--out", str(file / "g.json")], "names a file, not a folder"),
        (["--synthetic", str(same), "--shots", "5000"], "--shots 5000 is more than class"),
    ]:
        code = main(["gap", *args])
        err = capsys.readouterr().err
        assert code == 2 and message in err and err.count("\n") == 1, (args, err)


def test_config_rejects_unknown_keys():
    with pytest.raises(UserError, match="unknown gap config keys fid"):
        GapConfig.from_dict({"synthetic": "S", "fid": 1})


def test_random_weights_and_an_input_size_fetch_nothing_and_are_recorded(mnist5k, tmp_path, capsys):
    same = copy_as_synthetic(mnist5k, tmp_path / "same", shots=3)
    args = ["gap", "--synthetic", str(same), "--shots", "3", "--kid-subsets", "3", "--model", "vit_tiny_patch16_224",
            "--no-pretrained", "--input-size", "32"]
    assert main([*args, "--out", str(tmp_path / "a.json")]) == 0
    assert "random weights, 32 px" in capsys.readouterr().out
    assert main([*args, "--out", str(tmp_path / "b.json")]) == 0
    a, b = (json.loads((tmp_path / f"{n}.json").read_text()) for n in "ab")
    assert (a["model"], a["weights"], a["input_size"], a["feature_dim"]) == ("vit_tiny_patch16_224", "random", 32, 192)
    assert a["fd"] == b["fd"]  # random weights, but seeded: the same features every run


def test_weights_that_cannot_be_fetched_are_one_whole_line_naming_gaps_own_flags(mnist5k, tmp_path, capsys, monkeypatch):
    import re

    import timm

    from synthbridge.cli.main import build_parser

    same = copy_as_synthetic(mnist5k, tmp_path / "same", shots=2)
    real_create = timm.create_model

    def offline(name, pretrained=False, **kwargs):
        if pretrained:  # what timm raises offline, with a long first line
            raise RuntimeError("Cannot find the requested files in the local cache " + "and outgoing traffic " * 20)
        return real_create(name, pretrained=False, **kwargs)

    monkeypatch.setattr(timm, "create_model", offline)
    assert main(["gap", "--synthetic", str(same), "--shots", "2", "--model", "resnet18"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot get ImageNet weights for 'resnet18'" in err
    assert "traffic ..." in err and "traffi " not in err  # shortened at a word, never mid-word
    gap_flags = {flag for action in build_parser()._subparsers._group_actions[0].choices["gap"]._actions
                 for flag in action.option_strings}
    named = set(re.findall(r"--[a-z][a-z-]*", err))
    assert {"--checkpoint", "--no-pretrained", "--model"} <= named <= gap_flags


def test_the_default_feature_model_follows_the_image_size():
    from synthbridge.gap import default_model

    assert default_model(28) == "mini_resnet" and default_model(96) == "resnet50" and default_model(None) == "resnet50"
