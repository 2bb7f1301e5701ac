"""On-the-fly replacement (`replace`, `bridged_replace`: DA-Fusion's way of using its images): each real image of a
batch is swapped, with probability p, for a synthetic image made from it; deterministic per step, the same on any
number of processes; a set that names no sources, or none of the run's shots, is a one-line error."""

from __future__ import annotations

import json

import pytest

from helpers import write_synthetic_folder
from synthbridge.cli import main
from synthbridge.data import few_shot, load_synthetic
from synthbridge.data.folders import made_from
from synthbridge.seeding import StepBatches
from synthbridge.training.strategies import Replacement


def versions_of_shots(root, digits, shots: int, seed: int, per_real: int = 2):
    """A synthetic set with `per_real` images made from each of the K shots `train --shots K --seed seed` draws, its
    manifest naming each image's source as `generate --init-images real` does."""
    subset = few_shot(digits.train, shots, seed, digits.classes)
    write_synthetic_folder(root, digits.classes, per_class=shots * per_real, size=8)
    lines = [json.loads(line) for line in (root / "manifest.jsonl").read_text().splitlines()]
    for line in lines:
        label = digits.classes.index(line["class"])
        members = [i for i, t in zip(subset.indices, subset.targets) if t == label]
        line["source"] = {"index": members[line["seed"] % shots], "path": None}
    (root / "manifest.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return subset, root


def test_each_swapped_image_is_a_version_of_the_real_image_it_replaces(tmp_path, digits):
    real, folder = versions_of_shots(tmp_path / "S", digits, shots=2, seed=3)
    synthetic = load_synthetic(folder, digits.classes)
    sizes = [len(real), len(synthetic)]

    def keys(p: float, step: int, rank: int = 0, replicas: int = 1):
        swap = Replacement(real, synthetic, p, shots=2) if p is not None else None
        return StepBatches(sizes, [20, 0], 0, "real", 0, 100, rank, replicas, swap).keys(step)

    swapped = kept = 0
    for step in range(40):
        for (source, index, seed), (plain_source, plain_index, plain_seed) in zip(keys(0.5, step), keys(None, step)):
            assert plain_source == 0 and seed == plain_seed  # the same slot, its augmentation seed kept
            if source == 1:  # a version of the very real image the slot drew
                assert made_from(synthetic, index) == real.indices[plain_index]
                swapped += 1
            else:
                assert index == plain_index
                kept += 1
    assert 0.4 < swapped / (swapped + kept) < 0.6  # p = 0.5 over 800 draws
    assert keys(0.5, 7) == keys(0.5, 7)  # a pure function of (seed, stage, step): a resumed run swaps the same
    assert sorted(keys(0.5, 7, 0, 2) + keys(0.5, 7, 1, 2)) == sorted(keys(0.5, 7))  # two processes: one global batch
    assert all(source == 0 for source, _, _ in keys(0.0, 3))
    assert all(source == 1 for source, _, _ in keys(1.0, 3))  # every shot has versions here


def test_train_replace_runs_from_versions_of_its_own_shots_and_refuses_other_sets(tmp_path, digits, capsys):
    _, folder = versions_of_shots(tmp_path / "S", digits, shots=2, seed=0)
    common = ["train", "--dataset", "digits", "--shots", "2", "--seed", "0", "--real-steps", "3", "--real-batch-size",
              "8", "--synthetic-steps", "3", "--synthetic-batch-size", "8", "--report-to", "none", "--no-pretrained"]
    for strategy, stages in (("replace", ["real"]), ("bridged_replace", ["synthetic", "real"])):
        out = tmp_path / strategy
        assert main([*common, "--strategy", strategy, "--synthetic", str(folder), "--replace-probability", "0.5",
                     "--out", str(out)]) == 0
        metrics = json.loads((out / "metrics.json").read_text())
        assert list(metrics["stages"]) == stages and metrics["stages"]["real"]["batch_size"] == 8
        config = json.loads((out / "config.json").read_text())["config"]
        assert config["replace_probability"] == 0.5 and config["strategy"] == strategy
    capsys.readouterr()

    plain = write_synthetic_folder(tmp_path / "plain", digits.classes, per_class=2, size=8)  # made from noise
    shots = set(few_shot(digits.train, 2, 0, digits.classes).indices)
    _, other = versions_of_shots(tmp_path / "other", digits, shots=2, seed=0)
    lines = [json.loads(line) for line in (other / "manifest.jsonl").read_text().splitlines()]
    for line in lines:  # made from real images the run does not train on (another seed's shots, say)
        label = digits.classes.index(line["class"])
        line["source"]["index"] = next(i for i, t in enumerate(digits.train.targets) if t == label and i not in shots)
    (other / "manifest.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    for synthetic, message in ((plain, "names no source image"), (other, "no real training image has a synthetic")):
        code = main([*common, "--strategy", "replace", "--synthetic", str(synthetic), "--out", str(tmp_path / "x")])
        err = capsys.readouterr().err
        assert code == 2 and len(err.strip().splitlines()) == 1 and message in err, err


@pytest.mark.parametrize("value", ["-0.1", "1.5", "half"])
def test_a_bad_replace_probability_is_refused(value, capsys, tmp_path):
    with pytest.raises(SystemExit) as exited:
        main(["train", "--strategy", "replace", "--replace-probability", value, "--out", str(tmp_path / "r")])
    assert exited.value.code == 2 and "--replace-probability" in capsys.readouterr().err
