"""The study, as one recipe: what `synthbridge run` (and `synthbridge demo`) do with a grid.

    run_experiment(ExperimentConfig.from_yaml("embedded"), "exp/")

Per grid:      0. record the grid in EXP_DIR, pick this worker's cells, skip the finished ones
Per set:       1. what its method learns from the real images: a style token,     inversion / adaptation
                  per-class tokens, a LoRA adapter (once per dataset and real subset)
               2. generation of the synthetic set, once, at the largest volume      generation
               3. the synthetic-real gap of each set (FD, KID, classifier)          gap
Per cell:      4. train the cell's strategy (real, mixed, bridged, ...)             training
               5. LEEP before and after the synthetic stage (bridged cells)         transfer
               6. one line in the results store                                     experiments.store
Then:          7. the report (tables, plots, sample grids, findings)                reporting

Every step calls into its stage and is resumable: rerun the same command after a crash and it finishes
what is missing. Several workers (`cell_slice=(i, n)`, SLURM array tasks) share one EXP_DIR.
"""

from __future__ import annotations

import time
from pathlib import Path

from synthbridge.experiments.cells import Cell, plan_cells, share
from synthbridge.experiments.config import ExperimentConfig
from synthbridge.experiments.runner import (
    cell_leep,
    finish_cell,
    open_experiment,
    sets_needed,
    train_cell,
    unfinished,
)
from synthbridge.experiments.schedule import set_order
from synthbridge.experiments.sets import (
    SetNeed,
    analyse_set,
    analysis_is_current,
    ensure_learned,
    ensure_set,
    set_key,
)
from synthbridge.experiments.store import append_result
from synthbridge.io import progress


def make_sets(cfg: ExperimentConfig, exp_dir: Path, grid: list[Cell], cells: list[Cell],
              worker: tuple[int, int] | None = None) -> dict[tuple, Path]:
    """Steps 1-3 for the sets `cells` read, each at the largest volume of the whole `grid`. `worker` (i, n): this
    process is one of n making the sets together; it starts with its own share (`set_order`)."""
    sets = {}
    needs = sets_needed(grid, cells)
    analysed = analysed_sets(sets_needed(grid, grid))
    for need in set_order(cfg, needs, *worker) if worker else needs:
        learned = ensure_learned(cfg, exp_dir, need)  # 1.
        folder = ensure_set(cfg, exp_dir, need, learned)  # 2.
        if cfg.analysis and need.key in analysed:
            analyse_set(cfg, exp_dir, need, folder)  # 3.
        sets[need.key] = folder
    return sets


ANALYSED_SUBSETS = 3  # gap measures of a method's per-subset sets: of the first 3 seeds' subsets (a few-shot grid
# with 16 seeds makes 16 sets of each learned method; their gaps differ little, and each measure costs a set's
# features)


def analysed_sets(needs: list[SetNeed]) -> set[tuple]:
    """The keys of the sets whose gap is measured: every set shared by a dataset, and of the sets learned from a
    few-shot subset those of the first ANALYSED_SUBSETS seeds (in seed order) per dataset, method and shots."""
    keys, seeds = set(), {}
    for need in needs:
        if need.seed is None:
            keys.add(need.key)
        else:
            seeds.setdefault((need.dataset, need.method, need.shots), []).append(need.seed)
    for (dataset, method, shots), found in seeds.items():
        keys.update((dataset, method, shots, seed) for seed in sorted(found)[:ANALYSED_SUBSETS])
    return keys


def run_experiment(cfg: ExperimentConfig, exp_dir: str | Path, *, cell_slice: tuple[int, int] | None = None,
                   show_progress: bool = True, sets_only: bool = False) -> dict:
    """Run (or finish) every cell of the grid that belongs to this worker; returns counts and seconds.
    `sets_only`: make the whole grid's shared sets (steps 1-3, with `cell_slice` as this worker's place among
    the workers making them) and train nothing."""
    from synthbridge.experiments.arms import ARMS

    exp_dir = Path(exp_dir)
    began = time.perf_counter()
    # 0. the grid's record, and this worker's unfinished cells
    open_experiment(cfg, exp_dir)
    cells = plan_cells(cfg)
    mine = share(cfg, cells, *cell_slice) if cell_slice else cells
    todo = unfinished(exp_dir, mine)

    # 1-3. per dataset: style inversion, generation, gap (each made once, whoever needs it first)
    if sets_only:
        make_sets(cfg, exp_dir, cells, cells, worker=cell_slice)
        return {"cells": len(cells), "mine": len(mine), "ran": 0, "seconds": round(time.perf_counter() - began, 1)}
    # (the sets of finished cells too, when the grid asks for analysis they lack: an analysis-only config change)
    analysed = analysed_sets(sets_needed(cells, cells))
    stale = cfg.analysis and any(not analysis_is_current(cfg, exp_dir, need)
                                 for need in sets_needed(cells, mine) if need.key in analysed)
    sets = make_sets(cfg, exp_dir, cells, mine if stale else todo)

    # 4-6. per cell: train, LEEP, store
    bar = progress(total=len(mine), initial=len(mine) - len(todo), desc="cells", unit="cell", enabled=show_progress)
    for cell in todo:
        bar.set_postfix_str(f"{cell.dataset} {cell.model} {cell.arm} shots={cell.shots} v={cell.volume} seed={cell.seed}")
        arm = ARMS.get(cell.arm)
        synthetic_dir = sets.get(set_key(cell)) if arm.uses_synthetic else None
        record = train_cell(cfg, exp_dir, cell, synthetic_dir)  # 4.
        if cfg.analysis and arm.training.bridges:
            record["leep"] = cell_leep(cfg, exp_dir, cell, synthetic_dir)  # 5. (from the stage weights still there)
        finish_cell(exp_dir, record)  # the weights `train.keep` does not keep go
        append_result(exp_dir, record)  # 6.
        bar.update(1)
    bar.close()
    return {"cells": len(cells), "mine": len(mine), "ran": len(todo), "seconds": round(time.perf_counter() - began, 1)}


def run_study(cfg: ExperimentConfig, exp_dir: str | Path, *, cell_slice: tuple[int, int] | None = None,
              report: bool = True, show_progress: bool = True, sets_only: bool = False) -> dict:
    """Steps 0-7: the grid, then (if `report`) its report. Returns run_experiment's counts, plus the report."""
    summary = run_experiment(cfg, exp_dir, cell_slice=cell_slice, show_progress=show_progress, sets_only=sets_only)
    if report:
        from synthbridge.reporting import build_report

        summary["report"] = build_report(exp_dir)  # 7.
    return summary
