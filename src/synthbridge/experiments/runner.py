"""The steps `synthbridge.study` chains for a grid: open the experiment folder, list the sets its cells
need, train one cell, and store its record. Each step is resumable on its own.

EXP_DIR/
  experiment.json                  the config of the grid (a rerun must match it)
  styles/, synthetic/, analysis/   what cells share, made once (see `experiments.sets`)
  runs/<cell id>/                  one `synthbridge train` run folder per cell (+ leep.json for bridged cells
                                   with analysis on)
  stage1/                          finished synthetic stages, trained once for every cell that shares one
                                   (`training.stage_cache`: bridged cells that differ only in their real shots)
  results/<cell id>.json           one file per finished cell (the results store, `experiments.store`)
  results.jsonl                    the same records, one line each (rewritten from results/)
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from synthbridge.errors import UserError
from synthbridge.experiments.arms import ARMS
from synthbridge.experiments.cells import Cell, train_config
from synthbridge.experiments.config import ANALYSIS_KEYS, ExperimentConfig
from synthbridge.experiments.sets import SetNeed, leep_before, set_key
from synthbridge.experiments.store import locked, read_results
from synthbridge.io import FORMAT, check_format, ensure_writable_dir, environment, read_json, write_json

STAGE_CACHE = "stage1"
LEEP_FILE = "leep.json"


def open_experiment(cfg: ExperimentConfig, exp_dir: Path) -> None:
    """Check the grid and record it in EXP_DIR/experiment.json; a folder holding another grid is refused.
    A config that differs only in analysis or report keys (`ANALYSIS_KEYS`: analysis, gap_model, name) is the
    same grid: its finished cells and sets stay, and the record takes the new values (the old ones are kept
    under `changed`)."""
    cfg.check()
    ensure_writable_dir(exp_dir, "experiment folder")
    record_file = exp_dir / "experiment.json"
    plain = lambda data: json.loads(json.dumps(data))
    with locked(exp_dir / ".experiment.lock"):
        if not record_file.exists():
            write_json(record_file, {"format": FORMAT, "config": cfg.to_dict(), "environment": environment(),
                                     "started_at": datetime.now(timezone.utc).isoformat()})
            return
        record = read_json(record_file)
        check_format(record, exp_dir, "an experiment folder",
                     again="run its grid again into a new --out")
        old, new = record["config"], plain(cfg.to_dict())
        old_grid, new_grid = _without_analysis(old), plain(cfg.training_dict())
        # a key this version added and the record lacks holds its default: the grid it ran with
        defaults = plain(ExperimentConfig().training_dict())
        old_grid = {**{k: defaults[k] for k in new_grid.keys() - old_grid.keys() if k in defaults}, **old_grid}
        if old_grid != new_grid:
            differ = sorted(k for k in old_grid.keys() | new_grid.keys() if old_grid.get(k) != new_grid.get(k))
            raise UserError(f"{str(exp_dir)!r} holds an experiment with another config ({', '.join(differ)} differ); "
                            f"pick a new --out (or restore that config to resume it)")
        if changed := {k: old.get(k) for k in ANALYSIS_KEYS if old.get(k) != new.get(k)}:
            history = record.get("changed", []) + [{"at": datetime.now(timezone.utc).isoformat(), "was": changed}]
            write_json(record_file, {**record, "config": new, "changed": history})


def _without_analysis(config: dict) -> dict:
    """A recorded config without the analysis and report keys."""
    return {k: v for k, v in config.items() if k not in ANALYSIS_KEYS}


def unfinished(exp_dir: Path, cells: list[Cell]) -> list[Cell]:
    """The cells the results store does not hold yet."""
    done = {record["cell"] for record in read_results(exp_dir)}
    return [cell for cell in cells if cell.id not in done]


def sets_needed(grid: list[Cell], cells: list[Cell]) -> list[SetNeed]:
    """The sets `cells` read (`sets.set_key`), in the order of their first cell; each at the largest volume any
    cell of `grid` asks for with the same dataset and method."""
    needs: dict[tuple, SetNeed] = {}
    for cell in cells:
        arm = ARMS.get(cell.arm)
        if arm.uses_synthetic and (key := set_key(cell)) not in needs:
            largest = max(c.volume for c in grid if c.dataset == cell.dataset and c.volume
                          and ARMS.get(c.arm).method == arm.method)
            needs[key] = SetNeed(*key, per_class=largest)
    return list(needs.values())


def train_cell(cfg: ExperimentConfig, exp_dir: Path, cell: Cell, synthetic_dir: Path | None) -> dict:
    """Train one cell into EXP_DIR/runs/<id> (resuming an interrupted run); returns its record for the store. Every
    stage's weights stay in the run folder until `finish_cell` (the cell's LEEP reads the stage-1 model)."""
    from synthbridge.training import train
    from synthbridge.training.trainer import RunMismatch

    arm = ARMS.get(cell.arm)
    train_cfg = train_config(cfg, cell, synthetic_dir)
    run_dir = exp_dir / "runs" / cell.id
    resume = (run_dir / "config.json").exists()
    stage_cache = exp_dir / STAGE_CACHE
    try:
        metrics = train(train_cfg, run_dir, resume=resume, stage_cache=stage_cache, cache=True, prune=False)
    except RunMismatch:  # a run folder left by another version of this cell: start it again
        metrics = train(train_cfg, run_dir, overwrite=True, stage_cache=stage_cache, cache=True, prune=False)
    return {"cell": cell.id, "key": asdict(cell), "arm_label": arm.label, "run_dir": f"runs/{cell.id}",
            "set": synthetic_dir.name if synthetic_dir else None,
            "metrics": {k: metrics[k] for k in ("top1", "num_test", "per_class", "stages", "seconds",
                                                "num_train_real", "num_train_synthetic", "input_size", "kept")},
            "finished_at": datetime.now(timezone.utc).isoformat()}


def finish_cell(exp_dir: Path, record: dict) -> None:
    """Drop the run's weights its `train.keep` does not keep (after the cell's LEEP has read them)."""
    from synthbridge.training.trainer import prune_run

    prune_run(exp_dir / record["run_dir"], record["metrics"]["kept"])


def cell_leep(cfg: ExperimentConfig, exp_dir: Path, cell: Cell, synthetic_dir: Path | None) -> dict:
    """LEEP of a bridged cell's backbone on the real train split: of the weights it starts from (None without
    pretrained weights or checkpoint), and after the synthetic stage. Measured once, while the run's stage
    weights are there (between `train_cell` and `finish_cell`), into runs/<id>/leep.json; later calls read it."""
    from synthbridge.transfer import stage_leep

    out = exp_dir / "runs" / cell.id / LEEP_FILE
    if out.exists():
        return read_json(out)
    train_cfg = train_config(cfg, cell, synthetic_dir)
    scores = {"pretrained": leep_before(exp_dir, train_cfg), "after_synthetic": stage_leep(out.parent, train_cfg)}
    write_json(out, scores)
    return scores
