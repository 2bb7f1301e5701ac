"""Soft labels (Diff-Mix's (1 - s^g, s^g) between the source and the target class): read from the manifest, used as
targets throughout training, composed with timm's mixup and cutmix exactly as timm composes hard labels."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from timm.data import Mixup

from helpers import write_synthetic_folder
from synthbridge.cli import main
from synthbridge.data import ConcatImages, load_synthetic
from synthbridge.data.folders import soft_targets
from synthbridge.training.loop import SoftMixup

CLASSES = [str(d) for d in range(10)]


def soft_set(root, per_class: int = 4, labelled: bool = True):
    """A synthetic set whose even images carry a soft label: 0.7 their class, 0.3 the next class."""
    write_synthetic_folder(root, CLASSES, per_class=per_class, size=8)
    lines = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]
    for line in lines:
        if labelled and line["seed"] % 2 == 0:
            neighbour = CLASSES[(CLASSES.index(line["class"]) + 1) % 10]
            line["label"] = {neighbour: 0.3, line["class"]: 0.7}
    (root / "manifest.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return root


def test_soft_labels_are_read_per_image_through_subsets_and_pools(tmp_path):
    images = load_synthetic(soft_set(tmp_path / "S"), CLASSES)
    weights = soft_targets(images, 10)
    assert weights.shape == (40, 10) and torch.allclose(weights.sum(1), torch.ones(40))
    for row, target in enumerate(images.targets):
        expected = torch.zeros(10)
        if row % 2 == 0:  # write_synthetic_folder's seed is the index in its class; 4 per class keeps rows even
            expected[target], expected[(target + 1) % 10] = 0.7, 0.3
        else:
            expected[target] = 1.0
        assert torch.allclose(weights[row], expected)
    subset = images.subset([1, 2, 5])
    assert torch.equal(soft_targets(subset, 10), weights[[1, 2, 5]])
    plain = load_synthetic(soft_set(tmp_path / "P", labelled=False), CLASSES)
    assert soft_targets(plain, 10) is None  # hard labels only: training keeps its hard-label path
    pooled = soft_targets(ConcatImages([plain, images]), 10)
    assert torch.equal(pooled[:40], F.one_hot(torch.tensor(plain.targets), 10).float()) and torch.equal(pooled[40:], weights)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_soft_mixup_of_one_hot_targets_is_timms_mixup_of_the_labels(smoothing):
    images, labels = torch.randn(8, 3, 16, 16), torch.tensor([0, 3, 2, 9, 4, 4, 1, 7])
    results = []
    for mixer, targets in ((Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=smoothing, num_classes=10), labels),
                           (SoftMixup(smoothing, 10, enabled=True), F.one_hot(labels, 10).float())):
        np.random.seed(5)  # timm draws lambda and mixup-or-cutmix from numpy's generator (the loop seeds it per step)
        results.append(mixer(images.clone(), targets))
    (timm_images, timm_targets), (soft_images, soft_targets_) = results
    assert torch.equal(timm_images, soft_images) and torch.allclose(timm_targets, soft_targets_, atol=1e-6)
    # a soft target is mixed the same way: the convex combination timm gives the positions
    soft = torch.softmax(torch.randn(8, 10), 1)
    np.random.seed(5)
    _, mixed = SoftMixup(0.0, 10, enabled=True)(images.clone(), soft)
    lam = float(timm_targets[0, 0] - smoothing / 10) / (1 - smoothing) if labels[0] != labels[-1] else None
    assert lam is not None and torch.allclose(mixed, lam * soft + (1 - lam) * soft.flip(0), atol=1e-5)


@pytest.mark.parametrize("pipeline", ["memory", "loader"])
def test_training_uses_the_soft_labels(tmp_path, pipeline):
    """The same images, with and without their soft labels, train other weights (with mixup on, and off)."""
    weights = {}
    for labelled in (True, False):
        folder = soft_set(tmp_path / f"S-{labelled}", labelled=labelled)
        for mixup in (True, False):
            out = tmp_path / f"run-{labelled}-{mixup}"
            assert main(["train", "--dataset", "digits", "--shots", "2", "--strategy", "synthetic", "--synthetic",
                         str(folder), "--synthetic-steps", "3", "--synthetic-batch-size", "8", "--pipeline", pipeline,
                         "--report-to", "none", "--no-pretrained", "--out", str(out)]
                        + ([] if mixup else ["--no-mixup"])) == 0
            weights[labelled, mixup] = load_file(out / "model.safetensors")
    for mixup in (True, False):
        differ = [k for k in weights[True, mixup] if not torch.equal(weights[True, mixup][k], weights[False, mixup][k])]
        assert differ, mixup
