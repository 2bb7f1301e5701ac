"""The cells of a grid: what each trains, what it costs, and which worker runs it.

A cell is one `synthbridge train` run: (dataset, model, arm, shots, seed, volume[, synthetic stage
length]). Its id is a hash of those coordinates, so the same cell has the same id in every process.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from synthbridge.experiments.arms import ARMS, Arm
from synthbridge.experiments.config import ExperimentConfig


@dataclass(frozen=True)
class Cell:
    dataset: str
    model: str
    arm: str
    shots: int | None
    seed: int
    volume: int | None  # synthetic images per class (None for arms without synthetic images)
    synthetic_steps: int | None = None  # the synthetic stage's length, when the grid varies it

    @property
    def id(self) -> str:
        return hashlib.sha1(json.dumps(asdict(self), sort_keys=True).encode()).hexdigest()[:12]


def plan_cells(cfg: ExperimentConfig) -> list[Cell]:
    """Every cell of the grid, in a stable order (cheap, headline cells first)."""
    cells: list[Cell] = []
    headline = cfg.volumes[0]  # the headline volume is shared by all sub-grids
    for grid in cfg.sub_grids():
        for dataset in grid.datasets:
            for model in grid.models:
                for shots in grid.shots:
                    for seed in grid.seeds:
                        for arm_name in grid.arms:
                            arm = ARMS.get(arm_name)
                            cells.append(Cell(dataset, model, arm_name, shots, seed, headline if arm.uses_synthetic else None))
                        for arm_name in grid.volume_arms:
                            cells += [Cell(dataset, model, arm_name, shots, seed, v) for v in grid.volumes if v != headline]
                        for steps in grid.synthetic_steps:
                            cells.append(Cell(dataset, model, "bridged", shots, seed, headline, steps))
    return list(dict.fromkeys(cells))


def train_config(cfg: ExperimentConfig, cell: Cell, synthetic_dir: Path | None):
    """The TrainConfig of a cell: the grid's shared `train` settings with the cell's coordinates and arm."""
    from synthbridge.training import TrainConfig

    base = TrainConfig.from_dict(cfg.train)
    arm: Arm = ARMS.get(cell.arm)
    synthetic_stage = base.synthetic_stage
    if not arm.mixup:
        synthetic_stage = replace(synthetic_stage, mixup=False)
    if cell.synthetic_steps is not None:
        synthetic_stage = replace(synthetic_stage, steps=cell.synthetic_steps, epochs=None)
    return replace(base, dataset=cell.dataset, model=cell.model, strategy=arm.strategy, shots=cell.shots,
                   seed=cell.seed, synthetic=str(synthetic_dir) if synthetic_dir else None,
                   synthetic_per_class=cell.volume if arm.uses_synthetic else None, head_reinit=arm.head_reinit,
                   synthetic_stage=synthetic_stage, pretrained=base.pretrained and arm.pretrained,
                   data_root=cfg.data_root or base.data_root)


def stage_costs(cfg: ExperimentConfig, cell: Cell, bundle) -> list[tuple[str, int]]:
    """(stage, images its training steps process) for each stage of a cell."""
    from synthbridge.models import input_size

    arm = ARMS.get(cell.arm)
    train_cfg = train_config(cfg, cell, None).resolve(input_size=input_size(cell.model), image_size=bundle.image_size)
    num_real = cell.shots * bundle.num_classes if cell.shots else len(bundle.train)
    return arm.training.stage_costs(train_cfg, num_real, (cell.volume or 0) * bundle.num_classes)


def cell_cost(cfg: ExperimentConfig, cell: Cell, bundle) -> int:
    """The images a cell's training steps process (its strategy's `cost`): the estimate `share` balances.
    Backbones differ in cost per image; cells of one backbone are spread evenly."""
    return sum(cost for _, cost in stage_costs(cfg, cell, bundle))


def shared_stage(cell: Cell) -> tuple | None:
    """What a cell's first stage on synthetic images is trained from (its `training.stage_cache` identity, seen
    from the grid): cells with the same value share one stage-1 run. None for cells without such a stage."""
    from synthbridge.experiments.sets import set_key

    arm = ARMS.get(cell.arm)
    if not arm.training.bridges:
        return None
    return (set_key(cell), cell.model, cell.volume, cell.seed, cell.synthetic_steps, arm.mixup, arm.pretrained)


def plan(cfg: ExperimentConfig) -> dict:
    """What a grid will do: its cells, its stage-1 runs with and without reuse, the images its training steps
    process with and without reuse (and, with reuse, per model), its sets and the images they generate, its token
    and adapter trainings (for the datasets here or of known size, `estimate.KNOWN_SIZES`): the counts
    `estimate.gpu_hours` prices."""
    cells = plan_cells(cfg)
    groups: dict[tuple, list[Cell]] = {}
    for cell in cells:
        if (key := shared_stage(cell)) is not None:
            groups.setdefault(key, []).append(cell)
    from synthbridge.experiments.estimate import planning_bundle

    bundles, missing = {}, []
    for name in dict.fromkeys(c.dataset for c in cells):  # on disk, else the known sizes of a standard dataset
        if (bundle := planning_bundle(name, cfg.data_root)) is not None:
            bundles[name] = bundle
        else:
            missing.append(name)
    first = {id(group[0]) for group in groups.values()}
    without, by_model = 0, {}
    for cell in cells:
        if cell.dataset not in bundles:
            continue
        for stage, cost in stage_costs(cfg, cell, bundles[cell.dataset]):
            without += cost
            reused = stage == "synthetic" and shared_stage(cell) is not None and id(cell) not in first
            if not reused:
                by_model[cell.model] = by_model.get(cell.model, 0) + cost
    from synthbridge.experiments.methods import METHODS
    from synthbridge.experiments.runner import sets_needed

    needs = sets_needed(cells, cells)
    learned = [n for n in needs if METHODS.get(n.method).learns_from_real]
    adaptations = {(n.dataset, kind, getattr(METHODS.get(n.method), kind), n.shots, n.seed)
                   for n in learned for kind in ("inversion", "lora") if getattr(METHODS.get(n.method), kind)}
    counted = [a for a in adaptations if a[0] in bundles]
    return {"cells": len(cells), "sets": len(needs), "sets_learned_from_real": len(learned),
            "adaptations": len(adaptations), "stage1_runs_without_reuse": sum(len(g) for g in groups.values()),
            "stage1_runs_with_reuse": len(groups), "images_without_reuse": without,
            "images_with_reuse": sum(by_model.values()), "images_by_model": by_model,
            "set_images": sum(n.per_class * bundles[n.dataset].num_classes for n in needs if n.dataset in bundles),
            "token_runs": sum(1 for a in counted if a[1] == "inversion"),
            "adapter_runs": sum(bundles[a[0]].num_classes if a[2] == "class" else 1 for a in counted if a[1] == "lora"),
            "datasets_not_found": missing}


def share(cfg: ExperimentConfig, cells: list[Cell], index: int, count: int) -> list[Cell]:
    """Worker `index` of `count`'s cells (in grid order): the grid split by estimated cost, longest cells
    first, each to the least loaded worker. Every worker computes the same split, so the shares cover the
    grid once; a round-robin split of a grid whose arms alternate cheap and dear left one of two demo
    workers with 25% more work."""
    from synthbridge.data import load_dataset

    if count == 1:
        return list(cells)
    bundles = {name: load_dataset(name, data_root=cfg.data_root) for name in dict.fromkeys(c.dataset for c in cells)}
    from synthbridge.experiments.schedule import balance

    owner = balance([cell_cost(cfg, cell, bundles[cell.dataset]) for cell in cells], count)
    return [cell for cell, worker in zip(cells, owner) if worker == index]
