"""The typed config of `synthbridge train`: one frozen dataclass, defaults per profile.

Hyperparameters that are left `None` are filled in by `resolve()` from a profile (`synthbridge.profiles`):
`embedded` (small images and tiny backbones, a few hundred images, 2 CPU cores) or `full`
(ImageNet-pretrained timm models on photos, on a GPU), chosen from the model's input size and the
dataset's image size unless `profile` names one. The resolved config, profile included, is what
config.json records.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields, replace

from synthbridge.errors import UserError, reject_unknown_keys
from synthbridge.profiles import choose_profile, default_num_workers

AUGMENTS = ("none", "light", "timm")
PIPELINES = ("auto", "memory", "loader")
PRECISIONS = ("auto", "no", "fp16", "bf16")
KEEPS = ("stages", "final", "none")  # what weights a finished run keeps
KEEP_STAGES_MIB = 16  # keep's default: every stage's weights for models this small (mini_resnet: 1.3 MiB), else final


@dataclass(frozen=True)
class StageConfig:
    """One fine-tuning stage (on real or on synthetic images)."""

    steps: int | None = None  # optimizer steps; wins over epochs when both are set
    epochs: float | None = None  # passes over the stage's images (used when steps is None)
    lr: float | None = None  # peak learning rate (AdamW, cosine decay, short warmup)
    batch_size: int | None = None  # global batch size, summed over processes
    weight_decay: float | None = None
    augment: str | None = None  # "none", "light" (small crops/shifts, no flips: safe for digits), "timm" (timm's train transform)
    mixup: bool | None = None  # timm Mixup/CutMix with soft-target loss
    label_smoothing: float | None = None
    warmup_steps: int | None = None


# Defaults per profile. Embedded numbers follow a measured trial (200 AdamW steps x batch 64 on 2 cores).
PROFILES = {
    "embedded": {
        "real": StageConfig(steps=200, lr=1e-3, batch_size=64, weight_decay=0.05, augment="light", mixup=False,
                            label_smoothing=0.1, warmup_steps=10),
        "synthetic": StageConfig(steps=200, lr=1e-3, batch_size=64, weight_decay=0.05, augment="light", mixup=True,
                                 label_smoothing=0.1, warmup_steps=10),
    },
    "full": {
        "real": StageConfig(epochs=30, lr=3e-4, batch_size=64, weight_decay=0.05, augment="timm", mixup=False,
                            label_smoothing=0.1, warmup_steps=100),
        "synthetic": StageConfig(epochs=10, lr=3e-4, batch_size=64, weight_decay=0.05, augment="timm", mixup=True,
                                 label_smoothing=0.1, warmup_steps=100),
    },
}


@dataclass(frozen=True)
class TrainConfig:
    # --- what to train
    dataset: str = "mnist5k"  # registry name or imagefolder:PATH
    model: str = "mini_resnet"  # mini_resnet, mini_vit, or a timm model name
    strategy: str = "real"  # real, synthetic, mixed, bridged
    synthetic: str | None = None  # synthetic image folder (synthetic, mixed, bridged)
    synthetic_per_class: int | None = None  # use only the first N synthetic images of each class (volume studies)
    shots: int | None = None  # real training images per class (few-shot); None: the whole train split
    seed: int = 0  # chooses the few-shot images, data order, augmentation and init of new heads
    # --- weights
    pretrained: bool = True  # start from pretrained weights (embedded files, or timm's ImageNet weights)
    checkpoint: str | None = None  # local weights file to start from instead
    input_size: int | None = None  # input side in pixels (timm img_size: a ViT's position embeddings are resized);
    # None: the model's default (its pretrained config), which resolve() records
    # --- strategy knobs
    real_fraction: float | None = None  # mixed: share of real images in every batch; None pools both sets uniformly
    head_reinit: bool = True  # bridged: re-initialise the classifier between the stages
    replace_probability: float = 0.5  # replace, bridged_replace: the chance each real image of a batch is swapped for
    # one of its synthetic versions (DA-Fusion's p = 0.5)
    real: StageConfig = field(default_factory=StageConfig)  # the stage on real images
    synthetic_stage: StageConfig = field(default_factory=StageConfig)  # the stage on synthetic images
    # --- environment (not hyperparameters)
    data_root: str | None = None  # where full-scale datasets live
    download: bool = False  # let torchvision download a missing dataset
    profile: str | None = None  # defaults profile: embedded or full; None: chosen from the input and image sizes
    num_workers: int | None = None  # data loader processes; None: 0 in the embedded profile, else min(4, cores - 1)
    pipeline: str = "auto"  # input pipeline: memory (decoded images, batched augmentation on the training device),
    # loader (PIL per image, DataLoader workers); auto: memory in the embedded profile and on a GPU, else loader
    mixed_precision: str = "auto"  # "no", "fp16", "bf16" (through accelerate); auto: bf16 on a GPU that has it, else no
    channels_last: bool | None = None  # model and batches in channels_last memory format; None: on a GPU for models
    # with convolutions (what resolve() records)
    compile: bool = False  # torch.compile (inductor) the model for training and evaluation: faster steps after a
    # one-off compilation, results equal up to float rounding; saved weights keep the plain keys
    report_to: str = "auto"  # trackers through accelerate: auto (TensorBoard if installed), none, tensorboard, wandb, mlflow
    lr_scale: str = "none"  # scale each stage's lr with its global batch size: none, linear, sqrt (timm's --lr-base rule)
    lr_base_size: int = 256  # the batch size the given lr is meant for, when lr_scale is not none
    eval_batch_size: int = 256
    evaluate_stages: bool = True  # also measure each intermediate stage's own top-1 (bridged: the stage-1 model)
    checkpoint_every: int | None = None  # steps between checkpoints; None: every epoch, at least 25 steps and a
    # minute apart (training.loop.CHECKPOINT_SECONDS)
    keep: str | None = None  # weights a finished run keeps: stages (every stage's and the final), final (the final
    # model only), none (metrics only); None: stages for a model of at most KEEP_STAGES_MIB of weights (the embedded
    # backbones), final for any other, whatever the input size

    def resolve(self, *, input_size: int | None = None, image_size: int | None = None, device_type: str = "cpu",
                convolutional: bool = True, weights_mib: float | None = None) -> TrainConfig:
        """Fill every None hyperparameter from the profile's defaults and check the values. `input_size`: the
        model's default input side (used, and recorded, unless `self.input_size` is set). The profile is
        `self.profile`, or `embedded` when the input actually used or the dataset's images are small
        (`choose_profile`). `device_type` (`trackers.device_type()`: cuda, mps or cpu) and `convolutional` (the
        model has convolutions) settle the `auto` environment choices: pipeline, precision, channels_last;
        `weights_mib` (`models.weights_mib`; None: unknown, taken as large) what a finished run keeps."""
        size = self.input_size if self.input_size is not None else input_size
        profile = choose_profile(self.profile, size, image_size)
        defaults = PROFILES[profile]
        real = _fill(self.real, defaults["real"])
        synthetic_stage = _fill(self.synthetic_stage, defaults["synthetic"])
        workers = self.num_workers if self.num_workers is not None else default_num_workers(profile)
        small = weights_mib is not None and weights_mib <= KEEP_STAGES_MIB
        keep = self.keep if self.keep is not None else ("stages" if small else "final")
        if self.lr_scale != "none":  # lr = lr * (global batch / lr_base_size) ** (1 or 0.5)
            power = 1.0 if self.lr_scale == "linear" else 0.5
            scaled = lambda stage: replace(stage, lr=stage.lr * (stage.batch_size / self.lr_base_size) ** power)
            real, synthetic_stage = scaled(real), scaled(synthetic_stage)
        gpu = device_type == "cuda"
        pipeline = self.pipeline if self.pipeline != "auto" else ("memory" if profile == "embedded" or gpu else "loader")
        precision = self.mixed_precision if self.mixed_precision != "auto" else ("bf16" if gpu and _bf16() else "no")
        channels_last = self.channels_last if self.channels_last is not None else (gpu and convolutional)
        resolved = replace(self, real=real, synthetic_stage=synthetic_stage, num_workers=workers, profile=profile,
                           pipeline=pipeline, input_size=size, keep=keep, mixed_precision=precision,
                           channels_last=channels_last)
        resolved.check()
        return resolved

    def check(self) -> None:
        for name, stage in (("real", self.real), ("synthetic", self.synthetic_stage)):
            for key in ("steps", "batch_size", "warmup_steps"):
                value = getattr(stage, key)
                if value is not None and (not isinstance(value, int) or value < (0 if key == "warmup_steps" else 1)):
                    raise UserError(f"{name} stage {key} must be a whole number > 0, got {value!r}")
            for key in ("epochs", "lr"):
                value = getattr(stage, key)
                if value is not None and not value > 0:
                    raise UserError(f"{name} stage {key} must be > 0, got {value!r}")
            if stage.weight_decay is not None and stage.weight_decay < 0:
                raise UserError(f"{name} stage weight decay must be >= 0, got {stage.weight_decay!r}")
            if stage.augment is not None and stage.augment not in AUGMENTS:
                raise UserError(f"unknown augment {stage.augment!r}; choose one of: {', '.join(AUGMENTS)}")
            if stage.label_smoothing is not None and not 0 <= stage.label_smoothing < 1:
                raise UserError(f"label smoothing must be in [0, 1), got {stage.label_smoothing!r}")
            if stage.mixup and stage.batch_size is not None and stage.batch_size % 2:
                raise UserError(f"{name} stage: mixup needs an even batch size, got {stage.batch_size}")
        if self.shots is not None and self.shots < 1:
            raise UserError(f"--shots must be a whole number > 0, got {self.shots}")
        if self.synthetic_per_class is not None and self.synthetic_per_class < 1:
            raise UserError(f"--synthetic-per-class must be a whole number > 0, got {self.synthetic_per_class}")
        if self.real_fraction is not None and not 0 < self.real_fraction < 1:
            raise UserError(f"--real-fraction must be between 0 and 1 (exclusive), got {self.real_fraction}")
        if isinstance(self.replace_probability, bool) or not (
                isinstance(self.replace_probability, (int, float)) and 0 <= self.replace_probability <= 1):
            raise UserError(f"--replace-probability must be between 0 and 1, got {self.replace_probability!r}")
        if self.pipeline not in PIPELINES:
            raise UserError(f"--pipeline must be one of {', '.join(PIPELINES)}, got {self.pipeline!r}")
        if self.mixed_precision not in PRECISIONS:
            raise UserError(f"--mixed-precision must be one of {', '.join(PRECISIONS)}, got {self.mixed_precision!r}")
        if self.channels_last is not None and not isinstance(self.channels_last, bool):
            raise UserError(f"channels_last must be true or false, got {self.channels_last!r}")
        if self.lr_scale not in ("none", "linear", "sqrt"):
            raise UserError(f"--lr-scale must be none, linear or sqrt, got {self.lr_scale!r}")
        if self.input_size is not None and (not isinstance(self.input_size, int) or isinstance(self.input_size, bool)
                                            or self.input_size < 1):
            raise UserError(f"--input-size must be a whole number > 0, got {self.input_size!r}")
        if self.keep is not None and self.keep not in KEEPS:
            raise UserError(f"--keep must be one of {', '.join(KEEPS)}, got {self.keep!r}")
        if not isinstance(self.compile, bool):
            raise UserError(f"compile must be true or false, got {self.compile!r}")
        if self.eval_batch_size < 1:
            raise UserError(f"--eval-batch-size must be > 0, got {self.eval_batch_size}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        """Build from a plain dict (config.json, YAML); unknown keys are errors that list the valid ones."""
        data = dict(data)
        reject_unknown_keys(data, cls, "train config")
        for key in ("real", "synthetic_stage"):
            if key in data and isinstance(data[key], dict):
                reject_unknown_keys(data[key], StageConfig, key)
                data[key] = StageConfig(**data[key])
        return cls(**data)


def _bf16() -> bool:
    """Whether the GPU computes in bfloat16 natively (Ampere and newer)."""
    import torch

    if not torch.cuda.is_available():
        return False
    try:
        return torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # torch before 2.3 has no emulation to leave out: bf16 runs natively from Ampere (8.0) on
        return torch.cuda.get_device_capability() >= (8, 0)


def _fill(stage: StageConfig, default: StageConfig) -> StageConfig:
    values = {f.name: getattr(stage, f.name) for f in fields(StageConfig)}
    user_set_length = stage.steps is not None or stage.epochs is not None
    for key, value in values.items():
        if value is None and not (user_set_length and key in ("steps", "epochs")):
            values[key] = getattr(default, key)
    return StageConfig(**values)
