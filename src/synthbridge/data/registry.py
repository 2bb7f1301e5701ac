"""The dataset registry (name -> loader(data_root, download) -> DatasetBundle) and `load_dataset`."""

from __future__ import annotations

import dataclasses
import functools

from synthbridge.data.base import DatasetBundle, few_shot
from synthbridge.data.folders import load_imagefolder
from synthbridge.errors import UserError
from synthbridge.registry import Registry

DATASETS = Registry("dataset", plugins=True)


def load_dataset(name: str, *, data_root=None, download: bool = False, shots: int | None = None,
                 seed: int = 0, cached: bool = False) -> DatasetBundle:
    """Load a dataset by registry name or `imagefolder:PATH`; `shots` keeps K training images per class.

    `cached`: keep the loaded dataset for the rest of the process and hand out views of it (the grid's workers
    load each dataset once; its images are decoded once, whatever few-shot subsets the cells take)."""
    if shots is not None and shots <= 0:
        raise UserError(f"--shots must be a whole number > 0, got {shots}")
    bundle = (_cached_load if cached else _load)(name, data_root, download)
    if cached:  # the cached bundle itself is never changed
        bundle = dataclasses.replace(bundle, info=dict(bundle.info))
    if shots is not None:
        bundle.train = few_shot(bundle.train, shots, seed, bundle.classes)
        bundle.info = {**bundle.info, "shots": shots, "shot_seed": seed}
    return bundle


def _load(name: str, data_root, download: bool) -> DatasetBundle:
    if name.startswith("imagefolder:"):
        return load_imagefolder(name.split(":", 1)[1])
    return DATASETS.get(name)(data_root=data_root, download=download)


_cached_load = functools.lru_cache(maxsize=8)(_load)
