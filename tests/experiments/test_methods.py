"""The grid's ways of fitting synthetic data to the real data: one set per method and real subset, the leakage
rule (what a set learns comes from its cells' own shots), and the report's side-by-side comparison."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from synthbridge.data import few_shot, load_dataset
from synthbridge.experiments import ExperimentConfig, plan_cells
from synthbridge.experiments.runner import sets_needed
from synthbridge.experiments.sets import set_key, set_name

TINY_TRAIN = {"real": {"steps": 3, "batch_size": 16, "warmup_steps": 1},
              "synthetic_stage": {"steps": 3, "batch_size": 16, "warmup_steps": 1}, "eval_batch_size": 2048}
METHOD_ARMS = ("real", "bridged", "bridged_dsi", "bridged_ti_class", "bridged_lora", "bridged_img2img",
               "bridged_img2img_dsi")


def grid(**overrides) -> ExperimentConfig:
    base = dict(name="methods", datasets=("digits",), models=("mini_resnet",), arms=METHOD_ARMS, volumes=(3,),
                volume_arms=(), shots=(2,), seeds=(0, 1), generator="mini", analysis=False, train=TINY_TRAIN,
                generation={"steps": 2, "batch_size": 10}, inversion={"steps": 2, "batch_size": 4},
                lora={"steps": 2, "batch_size": 4}, img2img={"strength": 0.5})
    base.update(overrides)
    return ExperimentConfig(**base)


def test_a_learned_set_is_made_per_real_subset_and_a_plain_one_per_dataset():
    cfg = grid()
    cells = plan_cells(cfg)
    needs = sets_needed(cells, cells)
    # plain once; each learned method once per seed (its cells' 2-shot subset)
    assert sorted(n.name for n in needs) == sorted(
        ["digits"] + [f"digits{suffix}-2shot-s{seed}" for suffix in ("-dsi", "-ticlass", "-lora", "-img2img",
                                                                       "-img2img-dsi") for seed in (0, 1)])
    full = plan_cells(grid(shots=(None,)))  # full-data cells learn from the whole train split: one set per dataset
    assert {set_key(c) for c in full if c.arm == "bridged_lora"} == {("digits", "lora", None, None)}
    assert set_name("digits", "img2img_dsi", 2, 5) == "digits-img2img-dsi-2shot-s5"


def test_what_a_set_learns_comes_from_its_cells_own_shots(tmp_path, monkeypatch):
    """The leakage rule: every token, adapter and image-to-image set of a few-shot cell learns from the subset
    that cell trains on (same shots, same seed, so `few_shot` picks the same images), never from more."""
    import synthbridge.adaptation as adaptation
    import synthbridge.generation as generation
    import synthbridge.inversion as inversion
    from synthbridge.study import run_experiment

    learned = []

    def fake_invert(config, **_):  # leaves the file a finished inversion leaves
        learned.append(("invert", config))
        Path(config.out).mkdir(parents=True, exist_ok=True)
        (Path(config.out) / ("invert.json" if config.per_class else "learned_embeds.safetensors")).write_text("{}")

    monkeypatch.setattr(inversion, "invert", fake_invert)
    def fake(kind):  # records what it was asked and leaves the folder the real one makes
        return lambda config, **_: (learned.append((kind, config)), Path(config.out).mkdir(parents=True, exist_ok=True))

    monkeypatch.setattr(adaptation, "train_lora", fake("lora"))
    monkeypatch.setattr(generation, "generate", fake("generate"))
    cfg = grid()
    run_experiment(cfg, tmp_path / "exp", sets_only=True, show_progress=False)
    bundle = load_dataset("digits")
    for kind, config in learned:
        if kind == "generate" and config.init_images is None:
            assert config.shots is None  # text-to-image: nothing of the real images
            continue
        shots, seed = (config.shots, config.shots_seed) if kind == "generate" else (config.shots, config.seed)
        # the folder is named for the cells that read it ("-2shot-s1": the 2-shot cells of seed 1); what it learns
        # from must be those cells' own shots: the same count, the same seed, so the same images
        named = re.search(r"-(\d+)shot-s(\d+)(\.|$)", Path(config.out).name)  # (made at a .partial name first)
        assert named and (shots, seed) == (int(named[1]), int(named[2])), (kind, config.out, shots, seed)
        trained_on = load_dataset("digits", shots=2, seed=int(named[2])).train  # what those cells train on
        assert list(few_shot(bundle.train, shots, seed, bundle.classes).indices) == list(trained_on.indices)
    kinds = [(kind, getattr(c, "per_class", False)) for kind, c in learned]
    assert kinds.count(("invert", False)) == 2 and kinds.count(("invert", True)) == 2  # DSI shared with img2img_dsi
    assert kinds.count(("lora", False)) == 2 and sum(k == "generate" for k, _ in kinds) == 11


def test_a_methods_grid_runs_and_reports_the_methods_side_by_side(tmp_path):
    from synthbridge.reporting import build_report
    from synthbridge.study import run_experiment

    cfg = grid(arms=("real", "bridged", "bridged_ti_class", "bridged_lora", "bridged_img2img", "replace_dafusion"),
               analysis=True, generation={"steps": 4, "batch_size": 10})  # DA-Fusion's strength 0.25: one step of 4
    run_experiment(cfg, tmp_path / "exp", show_progress=False)
    exp = tmp_path / "exp"
    assert sorted(p.name for p in (exp / "adapters").iterdir() if not p.name.startswith(".")) == \
        ["digits-2shot-s0", "digits-2shot-s1"]
    assert (exp / "styles" / "digits-class-2shot-s0" / "invert.json").is_file()
    report = build_report(exp)
    (entry,) = report["methods"]
    assert [r["method"] for r in entry["rows"]] == ["plain", "ti_class", "lora", "img2img", "dafusion"]
    assert entry["rows"][-1]["label"] == "DA-Fusion (replace real)"
    assert all(r["top1"]["n"] == 2 for r in entry["rows"]) and entry["rows"][1]["over_plain"]["n"] == 2
    assert all(r["gap"]["sets"] == 1 if r["method"] == "plain" else r["gap"]["sets"] == 2 for r in entry["rows"])
    # the cost of each at the same images per class: its sets (one per real subset where it learns), what they
    # learned (tokens, adapters) and its cells' training, all recorded in the folder
    costs = {r["method"]: r["cost"] for r in entry["rows"]}
    assert all(c["complete"] and c["cells"] == 2 and c["training"] > 0 for c in costs.values())
    assert costs["plain"]["sets"] == 1 and costs["lora"]["sets"] == 2 and costs["plain"]["inversion"] == 0
    assert costs["lora"]["inversion"] > 0 and costs["dafusion"]["inversion"] > 0
    for row in entry["rows"]:
        gain = row["over_real"]["gain"]
        assert row["seconds_per_point"] == (pytest.approx(row["cost"]["total"] / gain) if gain > 0 else None)
    text = (exp / "report.md").read_text()
    assert "## Ways of fitting the synthetic data to the real data" in text and entry["statement"] in text
    assert "| cost (generate + learn + train) | cost per point |" in text
    assert "LoRA adds to bridged transfer" in text
