"""Default profiles: which defaults a stage fills in when the user leaves a hyperparameter unset.

Two profiles, named for where they fit: `embedded` (small images, tiny models, a few hundred images on
2 CPU cores: short runs, light augmentation without flips) and `full` (photos at 224 px or more on a
GPU: the study's epochs and timm's train transform). A stage chooses by the sizes it sees: the model's
input size and the dataset's image size for training, the generator's native size for style
inversion. Small images (at most `SMALL_IMAGE_PX` on a side) pick `embedded`; `--profile` overrides,
and the chosen profile is recorded with the resolved config.
"""

from __future__ import annotations

from synthbridge.errors import UserError

PROFILES = ("embedded", "full")
SMALL_IMAGE_PX = 64


def choose_profile(requested: str | None, *sizes: int | None) -> str:
    """`requested` if given (checked), else `embedded` when any known size is at most SMALL_IMAGE_PX, else `full`."""
    if requested is not None:
        if requested not in PROFILES:
            raise UserError(f"unknown profile {requested!r}; choose one of: {', '.join(PROFILES)}")
        return requested
    return "embedded" if any(size is not None and size <= SMALL_IMAGE_PX for size in sizes) else "full"


def fill_from_profile(config, defaults: dict, native_size: int):
    """A generator-adapting config (invert, lora) with its `None` fields filled: the chosen profile's `defaults`
    (profile name -> {field: value}), `profile` itself and the resolution (the generator's native size)."""
    import dataclasses

    profile = choose_profile(config.profile, native_size)
    values = {key: value for key, value in defaults[profile].items() if getattr(config, key) is None}
    values["profile"] = profile
    if config.resolution is None:
        values["resolution"] = native_size
    return dataclasses.replace(config, **values)


def available_cores() -> int:
    """The CPU cores this process may run on (its affinity mask where the OS has one, e.g. under SLURM or taskset)."""
    import os

    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def default_num_workers(profile: str) -> int:
    """Data loader processes when none are asked for: 0 in the embedded profile (the memory pipeline needs none),
    else min(4, available cores - 1), at least 0 (one core stays with the training process)."""
    return 0 if profile == "embedded" else max(0, min(4, available_cores() - 1))
