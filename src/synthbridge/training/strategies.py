"""The strategies the study compares, as a registry of `Strategy` objects.

Each strategy lists its stages; a stage names the images it trains on and the StageConfig it uses.
`bridged` is two stages with the classifier re-initialised between them; `replace` trains on the real images,
each replaced on the fly by one of its synthetic versions with probability p (DA-Fusion, Diff-Mix).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from synthbridge.data import ConcatImages, ImageSet
from synthbridge.data.folders import made_from
from synthbridge.errors import UserError
from synthbridge.registry import Registry
from synthbridge.seeding import derive_seed
from synthbridge.training.config import StageConfig, TrainConfig


@dataclass
class Stage:
    name: str  # "real", "synthetic" or "mixed": used for folders, checkpoints and metrics keys
    sources: list[ImageSet]  # the image sets it reads
    per_batch: list[int]  # how many images of each source go into one global batch
    config: StageConfig
    reinit_head_before: bool = False  # re-initialise the classifier before this stage
    swap: Replacement | None = None  # replaces some of each batch's real images by synthetic ones (`replace`)


class Replacement:
    """On-the-fly replacement (DA-Fusion, Diff-Mix): each real image a batch draws is replaced, with probability
    `probability`, by one of the synthetic images made from it (an image-to-image set's manifest names each image's
    real source), the coin and the version drawn from (seed, stage, step) for every slot of the global batch: a
    resumed or a distributed run replaces the same images. A real image nothing was made from stays itself.

    Keys are (source, index, seed) as `seeding.StepBatches` yields them: source 0 the real images, 1 the synthetic."""

    def __init__(self, real: ImageSet, synthetic: ImageSet, probability: float, shots: int | None):
        self.real, self.synthetic, self.probability, self.shots = real, synthetic, probability, shots

    @functools.cached_property
    def versions(self) -> dict[int, list[int]]:
        """Real image (its position in the real set) -> the synthetic images (positions) made from it."""
        made: dict[int, list[int]] = {}
        for position in range(len(self.synthetic)):
            if (source := made_from(self.synthetic, position)) is not None:
                made.setdefault(source, []).append(position)
        if not made:
            raise UserError("the replace strategies need a synthetic set made from the real images (`synthbridge "
                            "generate --init-images real`): this one names no source image; make one, or pick another "
                            "strategy")
        # the positions of the real set in the train split the manifest's sources index (`data.few_shot`'s subset)
        in_split = self.real.indices if self.shots is not None else range(len(self.real))
        versions = {position: made[index] for position, index in enumerate(in_split) if index in made}
        if not versions:
            raise UserError("no real training image has a synthetic version in this set: make it from the shots this "
                            "run trains on (`generate --shots K --shots-seed S` for `train --shots K --seed S`)")
        return versions

    def __call__(self, seed: int, stage: str, step: int, keys: list[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
        rng = np.random.default_rng(derive_seed(seed, stage, "replace", step))
        coins, picks = rng.random(len(keys)), rng.integers(0, 2**62, len(keys))
        swapped = []
        for (source, index, sample_seed), coin, pick in zip(keys, coins, picks):
            found = self.versions.get(index) if source == 0 else None
            if found and coin < self.probability:
                source, index = 1, found[int(pick) % len(found)]
            swapped.append((source, index, sample_seed))
        return swapped


@dataclass(frozen=True)
class Strategy:
    """A way of training with real and synthetic images: its name, whether it needs synthetic images, and
    its stages (`stages(cfg, real_images, synthetic_images) -> [Stage]`). Training, the CLI, the
    experiment arms and the runner's cost estimate all ask this object; nothing restates it."""

    name: str
    needs_synthetic: bool
    stages: Callable[[TrainConfig, ImageSet, ImageSet | None], list[Stage]]
    summary: str = ""  # one line, for --help and the README
    bridges: bool = False  # its first stage trains on the synthetic images alone (shared between runs, LEEP after it)

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
        from synthbridge.training.loop import epoch_images, stage_length

        synthetic = _Sized(num_synthetic) if self.needs_synthetic else None
        return [(stage.name, stage_length(stage.config, epoch_images(stage.sources, stage.per_batch))
                 * stage.config.batch_size) for stage in self.plan(cfg, _Sized(num_real), synthetic)]

    def cost(self, cfg: TrainConfig, num_real: int, num_synthetic: int) -> int:
        """Images its training steps process, summed over stages: the estimate experiment workers are balanced by."""
        return sum(cost for _, cost in self.stage_costs(cfg, num_real, num_synthetic))


class _Sized(ImageSet):
    """A stand-in with only a length (and class 0 everywhere), for planning without images."""

    def __init__(self, count: int):
        super().__init__()
        self.targets = [0] * count


STRATEGIES: Registry[Strategy] = Registry("strategy")


def strategy(name: str, needs_synthetic: bool, bridges: bool = False):
    """Register a stages function as the strategy `name` (its docstring's first line is the summary)."""

    def add(stages):
        summary = (stages.__doc__ or "").strip().splitlines()[0] if stages.__doc__ else ""
        STRATEGIES.register(name)(Strategy(name, needs_synthetic, stages, summary, bridges))
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


@strategy("bridged", needs_synthetic=True, bridges=True)
def bridged(cfg: TrainConfig, real_images: ImageSet, synthetic_images: ImageSet) -> list[Stage]:
    """Stage 1 on synthetic images (mixup on by default), new classifier head, stage 2 on real images."""
    return [
        Stage("synthetic", [synthetic_images], [cfg.synthetic_stage.batch_size], cfg.synthetic_stage),
        Stage("real", [real_images], [cfg.real.batch_size], cfg.real, reinit_head_before=cfg.head_reinit),
    ]


@strategy("replace", needs_synthetic=True)
def replace_real(cfg: TrainConfig, real_images: ImageSet, synthetic_images: ImageSet) -> list[Stage]:
    """Real images, each replaced on the fly by one of its synthetic versions with probability p (DA-Fusion)."""
    return [replacing_stage(cfg, real_images, synthetic_images)]


@strategy("bridged_replace", needs_synthetic=True, bridges=True)
def bridged_replace(cfg: TrainConfig, real_images: ImageSet, synthetic_images: ImageSet) -> list[Stage]:
    """Stage 1 on synthetic images, new classifier head, stage 2 on real images replaced on the fly with probability p."""
    first, _ = bridged(cfg, real_images, synthetic_images)
    return [first, replace(replacing_stage(cfg, real_images, synthetic_images), reinit_head_before=cfg.head_reinit)]


def replacing_stage(cfg: TrainConfig, real_images: ImageSet, synthetic_images: ImageSet) -> Stage:
    """The real stage drawing its batches from the real images (an epoch is a pass over them), each image replaced
    with probability `cfg.replace_probability` by a synthetic image made from it."""
    size = fitted_batch_size(cfg.real, len(real_images))
    return Stage("real", [real_images, synthetic_images], [size, 0], replace(cfg.real, batch_size=size),
                 swap=Replacement(real_images, synthetic_images, cfg.replace_probability, cfg.shots))


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
