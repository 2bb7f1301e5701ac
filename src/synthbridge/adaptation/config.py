"""The typed config of `synthbridge lora`: LoRA adapters of the generator's UNet (and optionally its text
encoder) trained on the real images, one for the whole dataset or one per class (DataDream's class-wise form).

Fields left `None` are filled in by `resolve()` from the profile (`embedded`: the mini generator on a CPU;
`full`: Stable Diffusion on a GPU, the learning rate and rank of diffusers' LoRA example) and from the
generator (its native size). The resolved config is what lora.json records and what `--resume` checks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from synthbridge.diffusion.pipeline import DTYPES
from synthbridge.errors import UserError, reject_unknown_keys
from synthbridge.profiles import choose_profile, fill_from_profile

UNET_TARGETS = ("to_q", "to_k", "to_v", "to_out.0")  # the attention projections diffusers' LoRA example adapts
TEXT_TARGETS = ("q_proj", "k_proj", "v_proj", "out_proj")  # CLIP's attention projections
PROFILES = {
    "embedded": {"steps": 300, "lr": 1e-3, "batch_size": 16, "rank": 8},
    "full": {"steps": 1500, "lr": 1e-4, "batch_size": 4, "rank": 16},
}
# The fields that decide the adapter's weights: a resumed run must match them.
RESUME_KEYS = ("dataset", "generator", "shots", "per_class", "classes", "template", "rank", "alpha", "targets",
               "text_encoder", "steps", "lr", "batch_size", "resolution", "dtype", "seed")


@dataclass(frozen=True)
class LoraTrainConfig:
    out: str  # adapter folder: pytorch_lora_weights.safetensors + lora.json (per class: OUT/<class>/ each)
    dataset: str = "mnist5k"  # registry name or imagefolder:PATH
    generator: str = "mini"  # "mini" (embedded), a local diffusers folder, or a hub id in the local cache
    shots: int | None = None  # learn from K real images per class (few-shot); None: the whole train split
    per_class: bool = False  # one adapter per class (DataDream's class-wise variant), resumable class by class
    classes: tuple[str, ...] = ()  # per class: only these classes (names as the dataset has them); () all
    template: str = "photo"  # caption of each image: a template name or literal naming the class
    # --- the adapter (None: the profile's default)
    rank: int | None = None
    alpha: float | None = None  # LoRA scaling numerator (the scale is alpha / rank); None: = rank
    targets: tuple[str, ...] = UNET_TARGETS  # UNet modules that get adapters
    text_encoder: bool = False  # also adapt the text encoder's attention projections (TEXT_TARGETS)
    # --- optimisation
    profile: str | None = None  # embedded or full; None: embedded for a generator of at most 64 px
    steps: int | None = None
    lr: float | None = None
    batch_size: int | None = None
    resolution: int | None = None  # training pixels (square); None: the generator's native size
    dtype: str = "fp32"  # the frozen weights' dtype; the adapters train in fp32
    seed: int = 0  # adapter init, every step's images, noise and timesteps are derived from (seed, class, step)
    # --- environment (never changes the weights)
    checkpoint_every: int | None = None  # steps between checkpoints; None: a tenth of the run (at least 50)
    grid: bool = False  # after training: grid.png, real | plain | adapted, one row per class
    device: str | None = None
    data_root: str | None = None
    download: bool = False
    show_progress: bool = True
    gradient_checkpointing: bool = False  # recompute the UNet's activations in the backward: less memory (SDXL)
    deterministic: bool = False  # torch's deterministic kernels: on CUDA a resumed run equals an uninterrupted one

    def check(self) -> None:
        """Values a user can get wrong, as one-line UserErrors (before anything is loaded)."""
        for name in ("rank", "steps", "batch_size", "shots", "checkpoint_every", "resolution"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise UserError(f"--{name.replace('_', '-')} must be a whole number > 0, got {value!r}")
        if self.resolution is not None and self.resolution % 8:
            raise UserError(f"--resolution must be a multiple of 8, got {self.resolution}")
        for name in ("lr", "alpha"):
            value = getattr(self, name)
            if value is not None and not (isinstance(value, (int, float)) and 0 < value < float("inf")):
                raise UserError(f"--{name} must be a finite number > 0, got {value!r}")
        if self.dtype not in DTYPES:
            raise UserError(f"unknown --dtype {self.dtype!r}; choose one of: {', '.join(DTYPES)}")
        if not self.targets:
            raise UserError("--targets is empty; name the UNet modules to adapt, e.g. to_q to_k to_v to_out.0")
        if self.classes and not self.per_class:
            raise UserError("--classes picks classes for --per-class adapters; add --per-class or drop --classes")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise UserError(f"--seed must be a whole number >= 0, got {self.seed!r}")
        choose_profile(self.profile)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> LoraTrainConfig:
        reject_unknown_keys(data, cls, "lora config")
        data = {k: tuple(v) if k in ("classes", "targets") and isinstance(v, list) else v for k, v in data.items()}
        return cls(**data)


def resolve(config: LoraTrainConfig, native_size: int) -> LoraTrainConfig:
    """Fill every `None` default from the profile and the generator's size."""
    config = fill_from_profile(config, PROFILES, native_size)
    if config.alpha is None:
        config = dataclasses.replace(config, alpha=float(config.rank))
    if config.checkpoint_every is None:
        config = dataclasses.replace(config, checkpoint_every=max(50, config.steps // 10))
    return config
