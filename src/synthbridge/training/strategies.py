"""The strategies the study compares, as a registry of `Strategy` objects.

Each strategy lists its stages; a stage names the images it trains on and the StageConfig it uses.
`bridged` is two stages with the classifier re-initialised between them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

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


@dataclass(frozen=True)
class Strategy:
    """A way of training with real and synthetic images: its name, whether it needs synthetic images, and
    its stages (`stages(cfg, real_images, synthetic_images) -> [Stage]`). Training, the CLI, the
    experiment arms and the runner's cost estimate all ask this object; nothing restates it."""

    name: str
    needs_synthetic: bool
    stages: Callable[[TrainConfig, ImageSet, ImageSet | None], list[Stage]]
    summary: str = ""  # one line, for --help and the README

    def check(self, has_synthetic: bool) -> None:
        """A strategy that needs synthetic images and got none is a one-line error."""
        if self.needs_synthetic and not has_synthetic:
            raise UserError(f"strategy {self.name!r} needs --synthetic DIR (make one with `synthbridge generate`, "
                            f"or `synthbridge render` in the embedded world)")

    def plan(self, cfg: TrainConfig, real_images: ImageSet, synthetic_images: ImageSet | None) -> list[Stage]:
        """The stages to run, each batch fitted to its images."""
        self.check(synthetic_images is not None)
        return [fit_batch(stage) for stage in self.stages(cfg, real_images, synthetic_images)]

    def stage_costs(self, cfg: TrainConfig, num_real: int, num_synthetic: int) -> list[tuple[str, int]]:
        """(stage name, images its training steps process: steps x global batch) per stage, from set sizes alone."""
        from synthbridge.training.loop import stage_length

        synthetic = _Sized(num_synthetic) if self.needs_synthetic else None
        return [(stage.name, stage_length(stage.config, sum(len(s) for s in stage.sources)) * stage.config.batch_size)
                for stage in self.plan(cfg, _Sized(num_real), synthetic)]

    def cost(self, cfg: TrainConfig, num_real: int, num_synthetic: int) -> int:
        """Images its training steps process, summed over stages: the estimate experiment workers are balanced by."""
        return sum(cost for _, cost in self.stage_costs(cfg, num_real, num_synthetic))


class _Sized(ImageSet):
    """A stand-in with only a length (and class 0 everywhere), for planning without images."""

    def __init__(self, count: int):
        super().__init__()
        self.targets = [0] * count


STRATEGIES: Registry[Strategy] = Registry("strategy")


def strategy(name: str, needs_synthetic: bool):
    """Register a stages function as the strategy `name` (its docstring's first line is the summary)."""

    def add(stages):
        summary = (stages.__doc__ or "").strip().splitlines()[0] if stages.__doc__ else ""
        STRATEGIES.register(name)(Strategy(name, needs_synthetic, stages, summary))
        return stages

    return add


@strategy("real", needs_synthetic=False)
def real(cfg: TrainConfig, real_images: ImageSet, synthetic_images: ImageSet | None) -> list[Stage]:
    """Fine-tune on the real training split only."""
    return [Stage("real", [real_images], [cfg.real.batch_size], cfg.real)]


@strategy("synthetic", needs_synthetic=True)
def synthetic(cfg: TrainConfig, real_images: ImageSet, synthetic_images: ImageSet) -> list[Stage]:
    """Fine-tune on synthetic images only (the real split is used for testing alone)."""
    return [Stage("synthetic", [synthetic_images], [cfg.synthetic_stage.batch_size], cfg.synthetic_stage)]


@strategy("mixed", needs_synthetic=True)
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


@strategy("bridged", needs_synthetic=True)
def bridged(cfg: TrainConfig, real_images: ImageSet, synthetic_images: ImageSet) -> list[Stage]:
    """Stage 1 on synthetic images (mixup on by default), new classifier head, stage 2 on real images."""
    return [
        Stage("synthetic", [synthetic_images], [cfg.synthetic_stage.batch_size], cfg.synthetic_stage),
        Stage("real", [real_images], [cfg.real.batch_size], cfg.real, reinit_head_before=cfg.head_reinit),
    ]


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
