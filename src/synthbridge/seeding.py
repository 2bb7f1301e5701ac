"""Seeds derived from names, so any piece of work can be redone alone and bit-identically.

`derive_seed(seed, "stage", "real", step)` gives the same 63-bit integer on every machine and in
every process, independent of what ran before: training steps, data order and generated images
are functions of their coordinates, not of a global random state that a crash would lose.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence

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


class StepBatches(torch.utils.data.Sampler):
    """Yields, for steps start..total-1, the (source, index, seed) keys of this process's share of the batch.

    Each source is read in epochs of a seeded permutation; with several sources (mixing with a fixed
    real fraction) each batch takes a fixed number of images from each.
    """

    def __init__(self, sizes: Sequence[int], per_batch: Sequence[int], seed: int, stage: str, start: int, total: int,
                 rank: int = 0, replicas: int = 1, swap=None):
        self.sizes, self.per_batch, self.seed, self.stage = list(sizes), list(per_batch), seed, stage
        self.start, self.total, self.rank, self.replicas = start, total, rank, replicas
        self.swap = swap  # (seed, stage, step, global keys) -> keys: the `replace` strategies' replacement
        self._perms: dict[tuple[int, int], np.ndarray] = {}  # the few epochs' orders in use, per source

    def _perm(self, source: int, epoch: int) -> np.ndarray:
        key = (source, epoch)
        if key not in self._perms:
            if len(self._perms) >= 8:
                self._perms.pop(next(iter(self._perms)))  # the oldest: steps only move forward
            rng = np.random.default_rng(derive_seed(self.seed, self.stage, "order", source, epoch))
            self._perms[key] = rng.permutation(self.sizes[source])
        return self._perms[key]

    def keys(self, step: int) -> list[tuple[int, int, int]]:
        keys = []
        for source, (size, count) in enumerate(zip(self.sizes, self.per_batch)):
            positions = step * count + np.arange(count)
            epochs = positions // size
            indices = np.empty(count, dtype=np.int64)
            for epoch in np.unique(epochs):  # a batch spans at most a few epochs of its source
                at = epochs == epoch
                indices[at] = self._perm(source, int(epoch))[positions[at] % size]
            seeds = derive_seeds((self.seed, self.stage, "sample", step, source), range(count))
            keys.extend(zip([source] * count, indices.tolist(), seeds))
        if self.swap is not None:  # on the global batch, before it is split: the same on any number of processes
            keys = self.swap(self.seed, self.stage, step, keys)
        return keys[self.rank::self.replicas]

    def __iter__(self):
        for step in range(self.start, self.total):
            yield self.keys(step)

    def __len__(self) -> int:
        return self.total - self.start
