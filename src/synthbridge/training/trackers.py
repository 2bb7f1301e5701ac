"""Devices, precision, processes and trackers for a training run, through accelerate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from accelerate import Accelerator
from accelerate.utils import is_mlflow_available, is_tensorboard_available, is_wandb_available

from synthbridge.errors import UserError

if TYPE_CHECKING:
    from synthbridge.training.config import TrainConfig

TRACKERS = {"tensorboard": ("tensorboard", is_tensorboard_available), "wandb": ("wandb", is_wandb_available),
            "mlflow": ("mlflow", is_mlflow_available)}  # name -> (package to install, accelerate's check)


def device_type() -> str:
    """The kind of device `make_accelerator` trains on: cuda, mps or cpu, as accelerate's process state picks it
    (a GPU where there is one, unless `accelerate launch --cpu`, ACCELERATE_USE_CPU or an earlier CPU-only state in
    this process say otherwise). Known before the accelerator is made, so that `TrainConfig.resolve` can settle its
    `auto` choices (precision, pipeline, channels_last) for the device the run will use."""
    from accelerate import PartialState

    gpu = torch.cuda.is_available() or (hasattr(torch.backends, "mps") and torch.backends.mps.is_available())
    return PartialState(cpu=not gpu).device.type


def make_accelerator(cfg: TrainConfig, out: Path) -> Accelerator:
    """Device, precision, processes (accelerate launch / torchrun) and trackers, in one place. `cfg` is resolved
    (its mixed precision is no, fp16 or bf16)."""
    trackers = resolve_trackers(cfg.report_to)
    return accelerator_in(cfg.mixed_precision, log_with=trackers or None, project_dir=str(out))


def accelerator_in(mixed_precision: str, **kwargs) -> Accelerator:
    """An Accelerator on the device accelerate picks, in `mixed_precision` (no, fp16, bf16). accelerate fixes the
    precision once per process, at its first Accelerator; a process that runs several pieces of work in their own
    precisions (a `run` grid's cells in bf16, their LEEP analysis in fp32) sets it for each."""
    from accelerate.state import AcceleratorState

    fixed = AcceleratorState._shared_state.get("_mixed_precision")
    if fixed is not None and fixed != mixed_precision:
        AcceleratorState._reset_state()
    return Accelerator(mixed_precision=mixed_precision, cpu=device_type() == "cpu", **kwargs)


def start_trackers(accelerator: Accelerator, cfg: TrainConfig) -> None:
    """Start the accelerator's trackers (they write into the run folder: call it once the folder is prepared)."""
    if accelerator.log_with:
        flat = {k: (json.dumps(v) if isinstance(v, (dict, list, tuple)) or v is None else v) for k, v in cfg.to_dict().items()}
        accelerator.init_trackers("synthbridge", config=flat)


def resolve_trackers(report_to: str) -> list[str]:
    """'auto': TensorBoard when installed; 'none'; or a comma list of tensorboard, wandb, mlflow."""
    if report_to == "none":
        return []
    if report_to == "auto":
        return ["tensorboard"] if is_tensorboard_available() else []
    names = [n.strip() for n in report_to.split(",") if n.strip()]
    for name in names:
        if name not in TRACKERS:
            raise UserError(f"unknown tracker {name!r} in --report-to; use auto, none, tensorboard, wandb or mlflow")
        package, available = TRACKERS[name]
        if not available():
            raise UserError(f"--report-to {name} needs the {package!r} package; pip install {package}")
    return names
