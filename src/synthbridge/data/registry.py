"""The dataset registry (name -> loader(data_root, download) -> DatasetBundle) and `load_dataset`."""

from __future__ import annotations

from synthbridge.data.base import DatasetBundle, few_shot
from synthbridge.data.folders import load_imagefolder
from synthbridge.errors import UserError
from synthbridge.registry import Registry

DATASETS = Registry("dataset", plugins=True)


def load_dataset(name: str, *, data_root=None, download: bool = False, shots: int | None = None,
                 seed: int = 0) -> DatasetBundle:
    """Load a dataset by registry name or `imagefolder:PATH`; `shots` keeps K training images per class."""
    if name.startswith("imagefolder:"):
        bundle = load_imagefolder(name.split(":", 1)[1])
    else:
        bundle = DATASETS.get(name)(data_root=data_root, download=download)
    if shots is not None:
        if shots <= 0:
            raise UserError(f"--shots must be a whole number > 0, got {shots}")
        bundle.train = few_shot(bundle.train, shots, seed, bundle.classes)
        bundle.info = {**bundle.info, "shots": shots, "shot_seed": seed}
    return bundle
