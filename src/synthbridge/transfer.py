"""Transferability: LEEP of a model's own head on the real training split.

The study measures how synthetic fine-tuning changes a backbone's transferability to the real data
(LEEP rises on all 10 datasets). Here: LEEP of the backbone a cell starts from, with its source-task head,
and LEEP of the stage-1 model (after fine-tuning on synthetic images) with its synthetic-trained head,
both on the whole real training split of the dataset, at the cell's input size.

The starting weights are the cell's own: its pretrained weights, or its checkpoint (LEEP needs the head it
was trained with). A cell without either (random init) has no source head: its LEEP-before is None, and
nothing is fetched that training did not fetch.
"""

from __future__ import annotations

from pathlib import Path

from synthbridge.data import load_dataset
from synthbridge.evaluation import leep_of_model
from synthbridge.models import create_model, data_config, source_classes
from synthbridge.training.loop import make_transform
from synthbridge.training.trackers import accelerator_in

GRID_ADVICE = "set train: {pretrained: false} or train: {checkpoint: FILE} in the grid"


def pretrained_leep(dataset: str, model: str, data_root=None, *, pretrained: bool = True,
                    checkpoint: str | Path | None = None, input_size: int | None = None) -> float | None:
    """LEEP of the starting model with its source head: `checkpoint` (with the head it holds), else the
    pretrained weights (ImageNet-1k for timm's, the 88 glyph classes of the embedded backbones), at
    `input_size` pixels. None when there is no source head: no pretrained weights and no checkpoint, or a
    checkpoint without a classifier."""
    from synthbridge.models.factory import checkpoint_classes

    if checkpoint is not None:
        classes = checkpoint_classes(model, checkpoint)
        if classes is None:
            return None
        network = create_model(model, classes, checkpoint=checkpoint, input_size=input_size)
    elif pretrained:
        network = create_model(model, source_classes(model), pretrained=True, input_size=input_size, advice=GRID_ADVICE)
    else:
        return None
    return _leep(network, dataset, data_root)


def stage_leep(run_dir: str | Path, cfg) -> float | None:
    """LEEP of a bridged run's stage-1 model (its synthetic-trained head) on the real train split, at the run's
    input size; None when the run kept no stage weights."""
    weights = Path(run_dir) / "stages" / "synthetic" / "model.safetensors"
    if not weights.exists():
        return None
    bundle = load_dataset(cfg.dataset, data_root=cfg.data_root, cached=True)
    network = create_model(cfg.model, bundle.num_classes, checkpoint=weights, input_size=cfg.input_size)
    return _leep(network, cfg.dataset, cfg.data_root)


def _leep(network, dataset: str, data_root) -> float:
    """LEEP of `network`'s own head on the real train split, through its evaluation transform, on the device
    accelerate picks for this process (a GPU where there is one), in fp32 wherever it runs: the same score in a
    grid and alone."""
    bundle = load_dataset(dataset, data_root=data_root, cached=True)
    transform = make_transform(data_config(network), "none", train=False)
    return round(leep_of_model(network, bundle.train, transform, bundle.num_classes, accelerator_in("no")), 4)
