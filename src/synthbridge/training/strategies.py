"""The strategies the study compares, as a registry of short functions.

Each strategy lists its stages; a stage names the images it trains on and the StageConfig it uses.
`bridged` is two stages with the classifier re-initialised between them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

from synthbridge.data import ConcatImages, ImageSet
from synthbridge.errors import UserError
from synthbridge.registry import Registry
from synthbridge.training.config import StageConfig, TrainConfig


@dataclass
class Stage:
    name: str  # "real", "synthetic" or "mixed": used for folders, checkpoints and metrics keys
    sources: list[ImageSet]  # the image sets it reads
    per_batch: list[int]  # how many images of each source go into one global batch
    config: StageConfig
    reinit_head_before: bool = False  # re-initialise the classifier before this stage


STRATEGIES: Registry[Callable[..., list[Stage]]] = Registry("strategy")
NEEDS_SYNTHETIC = {"synthetic", "mixed", "bridged"}


@STRATEGIES.register("real")
def real(cfg: TrainConfig, real_images: ImageSet, synthetic_images: ImageSet | None) -> list[Stage]:
    """Fine-tune on the real training split only."""
    return [Stage("real", [real_images], [cfg.real.batch_size], cfg.real)]


@STRATEGIES.register("synthetic")
def synthetic(cfg: TrainConfig, real_images: ImageSet, synthetic_images: ImageSet) -> list[Stage]:
    """Fine-tune on synthetic images only (the real split is used for testing alone)."""
    return [Stage("synthetic", [synthetic_images], [cfg.synthetic_stage.batch_size], cfg.synthetic_stage)]


@STRATEGIES.register("mixed")
def mixed(cfg: TrainConfig, real_images: ImageSet, synthetic_images: ImageSet) -> list[Stage]:
    """Real and synthetic images in one training set, with the real stage's hyperparameters.

    As in the study, the two sets are pooled and sampled uniformly; with `real_fraction` every batch
    holds that share of real images instead.
    """
    batch = cfg.real.batch_size
    if cfg.real_fraction is None:
        return [Stage("mixed", [ConcatImages([real_images, synthetic_images])], [batch], cfg.real)]
    real_count = min(batch - 1, max(1, round(cfg.real_fraction * batch)))
    return [Stage("mixed", [real_images, synthetic_images], [real_count, batch - real_count], cfg.real)]


@STRATEGIES.register("bridged")
def bridged(cfg: TrainConfig, real_images: ImageSet, synthetic_images: ImageSet) -> list[Stage]:
    """Stage 1 on synthetic images (mixup on by default), new classifier head, stage 2 on real images."""
    return [
        Stage("synthetic", [synthetic_images], [cfg.synthetic_stage.batch_size], cfg.synthetic_stage),
        Stage("real", [real_images], [cfg.real.batch_size], cfg.real, reinit_head_before=cfg.head_reinit),
    ]


def plan(cfg: TrainConfig, real_images: ImageSet, synthetic_images: ImageSet | None) -> list[Stage]:
    make = STRATEGIES.get(cfg.strategy)
    if cfg.strategy in NEEDS_SYNTHETIC and synthetic_images is None:
        raise UserError(f"strategy {cfg.strategy!r} needs --synthetic DIR (make one with `synthbridge render` or `generate`)")
    return [fit_batch(stage) for stage in make(cfg, real_images, synthetic_images)]


def fitted_batch_size(config: StageConfig, images: int) -> int:
    """A batch no larger than the stage's images, as a DataLoader without drop_last gives (2 shots x 10
    classes: batches of 20, not 64 with every image three times); even under mixup, which pairs images."""
    size = min(config.batch_size, images)
    if config.mixup and size % 2:
        size -= 1
    return size if size >= 1 else config.batch_size


def fit_batch(stage: Stage) -> Stage:
    """`stage` with its batch fitted to its images (`fitted_batch_size`). Stages that draw fixed counts from
    several sources keep their counts."""
    if len(stage.sources) != 1 or stage.config.batch_size is None:
        return stage
    size = fitted_batch_size(stage.config, len(stage.sources[0]))
    if size == stage.config.batch_size:
        return stage
    return replace(stage, per_batch=[size], config=replace(stage.config, batch_size=size))
