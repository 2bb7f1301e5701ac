"""The Python API: one function per command, with the command's name, importable from the top-level package.

    import synthbridge

    synthbridge.generate(dataset="imagefolder:data/train", generator="sd15/", per_class=100, out="synth/")
    synthbridge.train(dataset="imagefolder:data/train", shots=10, strategy="bridged", synthetic="synth/",
                      out="runs/bridged")
    synthbridge.run("embedded-quick", out="exp/")      # a grid: a preset name, a YAML file or an ExperimentConfig
    synthbridge.report("exp/"); synthbridge.advise("exp/")

Each takes its command's typed config (`GenerateConfig`, `InvertConfig`, `LoraTrainConfig`, `TrainConfig`,
`ExperimentConfig`, also exported here) or the config's fields as keywords (checked as the YAML keys are: an unknown
field is a `UserError` naming the valid ones), and returns what the command records (the summary or metrics dict).
Bad input raises `synthbridge.UserError` with the one line the command would print.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from synthbridge.errors import UserError


def _config(kind, config, fields: dict, command: str):
    """`config` itself, or `kind.from_dict(fields)` (not both)."""
    if config is not None and fields:
        raise UserError(f"synthbridge.{command}: give a {kind.__name__} or its fields as keywords, not both")
    if config is None:
        return kind.from_dict(fields)
    if not isinstance(config, kind):
        raise UserError(f"synthbridge.{command}: expected a {kind.__name__}, got {type(config).__name__}")
    return config


def generate(config=None, *, pipeline=None, **fields: Any) -> dict:
    """`synthbridge generate`: a synthetic set into `out` (resumable); returns generation.json's summary."""
    from synthbridge.generation import GenerateConfig
    from synthbridge.generation import generate as make

    return make(_config(GenerateConfig, config, fields, "generate"), pipeline=pipeline)


def invert(config=None, *, resume: bool = False, overwrite: bool = False, **fields: Any) -> dict:
    """`synthbridge invert`: the dataset's style token (or per-class tokens) into `out`; returns invert.json."""
    from synthbridge.inversion import InvertConfig
    from synthbridge.inversion import invert as learn

    return learn(_config(InvertConfig, config, fields, "invert"), resume=resume, overwrite=overwrite)


def lora(config=None, *, resume: bool = False, overwrite: bool = False, **fields: Any) -> dict:
    """`synthbridge lora`: a LoRA adapter of the generator (or one per class) into `out`; returns its summary."""
    from synthbridge.adaptation import LoraTrainConfig, train_lora

    return train_lora(_config(LoraTrainConfig, config, fields, "lora"), resume=resume, overwrite=overwrite)


def train(config=None, *, out: str | Path, resume: bool = False, overwrite: bool = False, **fields: Any) -> dict:
    """`synthbridge train`: one strategy end to end into the run folder `out`; returns metrics.json."""
    from synthbridge.training import TrainConfig
    from synthbridge.training import train as fit

    return fit(_config(TrainConfig, config, fields, "train"), out, resume=resume, overwrite=overwrite)


def run(config, *, out: str | Path, report: bool = True, cell: tuple[int, int] | None = None,
        sets_only: bool = False, show_progress: bool = True) -> dict:
    """`synthbridge run`: an experiment grid (an ExperimentConfig, a YAML file or a shipped preset's name) into
    `out`, resumable; returns the counts of cells run (and, with `report`, the report's summary)."""
    from synthbridge.experiments import ExperimentConfig
    from synthbridge.study import run_study

    if isinstance(config, (str, Path)):
        config = ExperimentConfig.from_yaml(str(config))
    grid = _config(ExperimentConfig, config, {}, "run")
    return run_study(grid, out, cell_slice=cell, report=report and not sets_only, show_progress=show_progress,
                     sets_only=sets_only)


def report(exp_dir: str | Path) -> dict:
    """`synthbridge report`: report.md, report.html, results.csv and figures/ in the experiment folder; returns the
    headline rows, findings, answers, the advisor's entries and the page's path."""
    from synthbridge.reporting import build_report

    return build_report(exp_dir)


def advise(exp_dir: str | Path) -> list[dict]:
    """`synthbridge advise`: per volume sweep of the experiment folder, whether the next doubling will pay."""
    from synthbridge.experiments.store import read_experiment
    from synthbridge.reporting import advise as advise_folder
    from synthbridge.reporting import collect_records

    _, records = read_experiment(exp_dir)
    return advise_folder(Path(exp_dir), collect_records(records))


__all__ = ["advise", "generate", "invert", "lora", "report", "run", "train"]
