"""Seeds derived from names, so any piece of work can be redone alone and bit-identically.

`derive_seed(seed, "stage", "real", step)` gives the same 63-bit integer on every machine and in
every process, independent of what ran before: training steps, data order and generated images
are functions of their coordinates, not of a global random state that a crash would lose.
"""

from __future__ import annotations

import hashlib
import random

import numpy as np
import torch


def derive_seed(*keys) -> int:
    text = "\x1f".join(str(k) for k in keys).encode("utf-8")
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "little") >> 1


def derive_seeds(keys: tuple, lasts) -> list[int]:
    """[derive_seed(*keys, last) for last in lasts], with the shared part of the text joined once (a training
    step's batch derives one seed per sample)."""
    prefix = "".join(f"{k}\x1f" for k in keys)
    return [int.from_bytes(hashlib.sha256(f"{prefix}{last}".encode()).digest()[:8], "little") >> 1
            for last in lasts]


def seed_cpu(seed: int) -> None:
    """Seed python, numpy and torch's CPU generator: what a sample's augmentation (loader pipeline) and a training
    step's mixup draw from (used per image and per step).

    The same CPU state as `torch.manual_seed`, without its accelerator seeders: with no GPU initialised, each of
    those queues a lazy call with a formatted stack trace, which was a third of a small training run's time when
    done for every image; on a GPU, reseeding it every step is host work the loop does not need (a stage seeds
    the GPU's generator once and its checkpoints carry that generator's state)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.default_generator.manual_seed(int(seed))
