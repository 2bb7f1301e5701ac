"""Transferability: LEEP of a model's own head on the real training split.

The study measures how synthetic fine-tuning changes a backbone's transferability to the real data
(LEEP rises on all 10 datasets). Here: LEEP of the pretrained backbone with its source-task head,
and LEEP of the stage-1 model (after fine-tuning on synthetic images) with its synthetic-trained head,
both on the whole real training split of the dataset.
"""

from __future__ import annotations

from pathlib import Path

from accelerate import Accelerator

from synthbridge.data import load_dataset
from synthbridge.evaluation import leep_of_model
from synthbridge.models import create_model, data_config, source_classes
from synthbridge.training.loop import make_transform


def pretrained_leep(dataset: str, model: str, data_root=None) -> float | None:
    """LEEP of the pretrained model with its source head (its pretrained classes: ImageNet-1k for timm's
    ImageNet weights, the 88 glyph classes of the embedded backbones)."""
    bundle = load_dataset(dataset, data_root=data_root, cached=True)
    network = create_model(model, source_classes(model), pretrained=True)
    transform = make_transform(data_config(network), "none", train=False)
    return round(leep_of_model(network, bundle.train, transform, bundle.num_classes, Accelerator()), 4)


def stage_leep(run_dir: str | Path, cfg) -> float | None:
    """LEEP of a bridged run's stage-1 model (its synthetic-trained head) on the real train split."""
    weights = Path(run_dir) / "stages" / "synthetic" / "model.safetensors"
    if not weights.exists():
        return None
    bundle = load_dataset(cfg.dataset, data_root=cfg.data_root, cached=True)
    network = create_model(cfg.model, bundle.num_classes, checkpoint=weights)
    transform = make_transform(data_config(network), "none", train=False)
    return round(leep_of_model(network, bundle.train, transform, bundle.num_classes, Accelerator()), 4)
