"""Stage: experiments. `run_experiment(cfg, EXP_DIR)` runs a grid of training cells, resumably.

EXP_DIR/
  experiment.json            the config of the grid (a rerun must match it)
  styles/<dataset>/          dataset style inversion, once per dataset
  synthetic/<dataset>[-dsi]/ synthetic sets, generated once at the largest volume; smaller volumes
                             use the first N images of each class (deterministic, nested subsets)
  analysis/                  gap measures per synthetic set, LEEP of the pretrained backbones
  runs/<cell id>/            one `synthbridge train` run folder per cell
  results.jsonl              one line per finished cell (the results store)

Rerunning skips finished cells and resumes an interrupted one. `cell_slice=(i, n)` runs worker i's
share of n (see `share`: split by estimated cost), so separate processes or SLURM array tasks share
one EXP_DIR without losing or duplicating a record.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from tqdm.auto import tqdm

from synthbridge.errors import UserError
from synthbridge.experiments.arms import ARMS, Arm
from synthbridge.experiments.config import ExperimentConfig
from synthbridge.experiments.store import append_result, locked, read_results
from synthbridge.io import ensure_writable_dir, environment, read_json, write_json

__all__ = ["ARMS", "Cell", "ExperimentConfig", "plan_cells", "prepare_sets", "read_results", "run_experiment"]


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
    unique = list(dict.fromkeys(cells))
    return unique


def _train_config(cfg: ExperimentConfig, cell: Cell, synthetic_dir: Path | None):
    from synthbridge.training import StageConfig, TrainConfig

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


def cell_cost(cfg: ExperimentConfig, cell: Cell, bundle) -> int:
    """The images a cell's training steps process (steps x images per step, summed over its stages): the
    estimate `share` balances. Backbones differ in cost per image; cells of one backbone are spread evenly."""
    from synthbridge.training.loop import stage_length
    from synthbridge.training.strategies import fitted_batch_size

    train_cfg = _train_config(cfg, cell, None).resolve(bundle.world)
    real, synthetic = train_cfg.real, train_cfg.synthetic_stage
    num_real = cell.shots * bundle.num_classes if cell.shots else len(bundle.train)
    num_synthetic = (cell.volume or 0) * bundle.num_classes
    stages = {"real": [(real, num_real)], "mixed": [(real, num_real + num_synthetic)],
              "synthetic": [(synthetic, num_synthetic)],
              "bridged": [(synthetic, num_synthetic), (real, num_real)]}[ARMS.get(cell.arm).strategy]
    cost = 0
    for stage, images in stages:
        stage = replace(stage, batch_size=fitted_batch_size(stage, images))  # as training will run it
        cost += stage_length(stage, images) * stage.batch_size
    return cost


def share(cfg: ExperimentConfig, cells: list[Cell], index: int, count: int) -> list[Cell]:
    """Worker `index` of `count`'s cells (in grid order): the grid split by estimated cost, longest cells
    first, each to the least loaded worker. Every worker computes the same split, so the shares cover the
    grid once; a round-robin split of a grid whose arms alternate cheap and dear left one of two demo
    workers with 25% more work."""
    from synthbridge.data import load_dataset

    if count == 1:
        return list(cells)
    bundles = {name: load_dataset(name, data_root=cfg.data_root) for name in dict.fromkeys(c.dataset for c in cells)}
    costs = [cell_cost(cfg, cell, bundles[cell.dataset]) for cell in cells]
    loads, owner = [0] * count, [0] * len(cells)
    for k in sorted(range(len(cells)), key=lambda k: (-costs[k], k)):
        worker = min(range(count), key=lambda w: (loads[w], w))
        owner[k] = worker
        loads[worker] += costs[k]
    return [cell for cell, worker in zip(cells, owner) if worker == index]


# --- artefacts shared by cells: style tokens, synthetic sets, analysis -------------------------------------------

def set_name(dataset: str, style: bool) -> str:
    from synthbridge.io import safe_name

    return safe_name(dataset) + ("-dsi" if style else "")


def ensure_style(cfg: ExperimentConfig, exp_dir: Path, dataset: str) -> Path:
    """Dataset style inversion, once per dataset (a finished folder is reused)."""
    from synthbridge.io import safe_name

    style_dir = exp_dir / "styles" / safe_name(dataset)
    with locked(exp_dir / "styles" / f".{safe_name(dataset)}.lock"):
        if not (style_dir / "learned_embeds.safetensors").exists():
            if cfg.generator == "render":
                raise UserError("style inversion needs a diffusion generator; set generator to 'mini' or a Stable Diffusion folder")
            from synthbridge.inversion import InvertConfig, invert

            resume = (style_dir / "checkpoint.pt").exists()  # an inversion interrupted earlier: continue it
            invert(InvertConfig.from_dict({**cfg.inversion, "dataset": dataset, "generator": cfg.generator,
                                           "out": str(style_dir), "data_root": cfg.data_root, "grid": True}),
                   resume=resume)
    return style_dir


def ensure_synthetic(cfg: ExperimentConfig, exp_dir: Path, dataset: str, style: bool, per_class: int) -> Path:
    """The synthetic set of a dataset (with or without its style token) at the largest volume needed."""
    out = exp_dir / "synthetic" / set_name(dataset, style)
    with locked(exp_dir / "synthetic" / f".{set_name(dataset, style)}.lock"):
        if cfg.generator == "render":
            from synthbridge.render import RenderConfig, render_folder

            render_folder(RenderConfig(dataset=dataset, per_class=per_class, out=str(out)))
        else:
            from synthbridge.generation import GenerateConfig, generate

            style_dir = ensure_style(cfg, exp_dir, dataset) if style else None
            generate(GenerateConfig.from_dict({**cfg.generation, "dataset": dataset, "generator": cfg.generator,
                                               "per_class": per_class, "out": str(out), "data_root": cfg.data_root,
                                               "style": str(style_dir) if style_dir else None}))
    return out


def analyse_set(cfg: ExperimentConfig, exp_dir: Path, dataset: str, style: bool, synthetic_dir: Path) -> None:
    """Gap measures of one synthetic set against the real train split (once)."""
    out = exp_dir / "analysis" / f"gap-{set_name(dataset, style)}.json"
    if out.exists():
        return
    from synthbridge.gap import GapConfig, measure_gap

    result = measure_gap(GapConfig(dataset=dataset, synthetic=str(synthetic_dir), data_root=cfg.data_root))
    write_json(out, {"dataset": dataset, "style": style, "synthetic": str(synthetic_dir.relative_to(exp_dir)), **result})


def leep_before(exp_dir: Path, cfg: ExperimentConfig, dataset: str, model: str) -> float | None:
    """LEEP of the pretrained backbone (its own source-task head) on the real train split, cached."""
    from synthbridge.io import safe_name

    out = exp_dir / "analysis" / f"leep-{safe_name(dataset)}-{model}.json"
    if out.exists():
        return read_json(out)["leep"]
    from synthbridge.transfer import pretrained_leep

    score = pretrained_leep(dataset, model, data_root=cfg.data_root)
    if score is not None:
        write_json(out, {"dataset": dataset, "model": model, "leep": score})
    return score


# --- the runner --------------------------------------------------------------------------------------------------

def _prepare(cfg: ExperimentConfig, exp_dir: Path) -> None:
    ensure_writable_dir(exp_dir, "experiment folder")
    record_file = exp_dir / "experiment.json"
    with locked(exp_dir / ".experiment.lock"):
        if record_file.exists():
            if read_json(record_file)["config"] != json.loads(json.dumps(cfg.to_dict())):
                raise UserError(f"{str(exp_dir)!r} holds an experiment with another config; pick a new --out "
                                f"(or restore that config to resume it)")
        else:
            write_json(record_file, {"config": cfg.to_dict(), "environment": environment(),
                                     "started_at": datetime.now(timezone.utc).isoformat()})


def prepare_sets(cfg: ExperimentConfig, exp_dir: str | Path, cells: list[Cell] | None = None
                 ) -> dict[tuple[str, bool], Path]:
    """Style inversion, synthetic sets and their gap measures for `cells` (default: the whole grid).

    Each set is made once, at the largest volume any cell of the grid needs; a finished one is reused.
    Returns {(dataset, style): folder}.
    """
    exp_dir = Path(exp_dir)
    cfg.check()
    _prepare(cfg, exp_dir)  # the grid's record first: a folder holding another grid is refused before any work
    grid = plan_cells(cfg)
    return _make_sets(cfg, exp_dir, grid, grid if cells is None else cells)


def _make_sets(cfg: ExperimentConfig, exp_dir: Path, grid: list[Cell], cells: list[Cell]) -> dict[tuple[str, bool], Path]:
    """The sets `cells` need, each at the largest volume of the whole `grid` (after `_prepare`)."""
    sets: dict[tuple[str, bool], Path] = {}
    for cell in cells:
        arm = ARMS.get(cell.arm)
        if arm.uses_synthetic and (cell.dataset, arm.style) not in sets:
            largest = max(c.volume for c in grid if c.dataset == cell.dataset and c.volume
                          and ARMS.get(c.arm).style == arm.style)
            sets[(cell.dataset, arm.style)] = ensure_synthetic(cfg, exp_dir, cell.dataset, arm.style, largest)
    if cfg.analysis:
        for (dataset, style), folder in sets.items():
            analyse_set(cfg, exp_dir, dataset, style, folder)
    return sets


def run_experiment(cfg: ExperimentConfig, exp_dir: str | Path, *, cell_slice: tuple[int, int] | None = None,
                   show_progress: bool = True) -> dict:
    """Run (or finish) every cell of the grid that belongs to this worker; returns counts and seconds."""
    from synthbridge.training import train

    exp_dir = Path(exp_dir)
    cfg.check()
    began = time.perf_counter()
    # 1. the record of the grid, and this worker's cells
    _prepare(cfg, exp_dir)
    cells = plan_cells(cfg)
    mine = share(cfg, cells, *cell_slice) if cell_slice else cells
    done = {record["cell"] for record in read_results(exp_dir)}
    todo = [cell for cell in mine if cell.id not in done]

    # 2. synthetic sets (and style inversion) at the largest volume each dataset needs
    sets = _make_sets(cfg, exp_dir, cells, todo)

    # 3. the cells: each one a training run folder and one line in the results store
    bar = tqdm(total=len(mine), initial=len(mine) - len(todo), desc="cells", unit="cell", disable=not show_progress)
    for cell in todo:
        bar.set_postfix_str(f"{cell.dataset} {cell.model} {cell.arm} shots={cell.shots} v={cell.volume} seed={cell.seed}")
        arm = ARMS.get(cell.arm)
        train_cfg = _train_config(cfg, cell, sets.get((cell.dataset, arm.style)))
        run_dir = exp_dir / "runs" / cell.id
        resume = (run_dir / "config.json").exists()
        try:
            metrics = train(train_cfg, run_dir, resume=resume)
        except UserError as exc:
            if not resume or "different config" not in str(exc):
                raise
            metrics = train(train_cfg, run_dir, overwrite=True)
        record = {"cell": cell.id, "key": asdict(cell), "arm_label": arm.label, "run_dir": f"runs/{cell.id}",
                  "metrics": {k: metrics[k] for k in ("top1", "num_test", "per_class", "stages", "seconds",
                                                      "num_train_real", "num_train_synthetic")},
                  "finished_at": datetime.now(timezone.utc).isoformat()}
        if cfg.analysis and arm.strategy == "bridged":
            from synthbridge.transfer import stage_leep

            record["leep"] = {"pretrained": leep_before(exp_dir, cfg, cell.dataset, cell.model),
                              "after_synthetic": stage_leep(run_dir, train_cfg)}
        append_result(exp_dir, record)
        bar.update(1)
    bar.close()
    return {"cells": len(cells), "mine": len(mine), "ran": len(todo), "seconds": round(time.perf_counter() - began, 1)}
