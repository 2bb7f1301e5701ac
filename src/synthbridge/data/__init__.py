"""Stage 1 of the flow: datasets.

    bundle = load_dataset("mnist5k", shots=10, seed=0)
    synthetic = load_synthetic("S/", bundle.classes)

Names: the registry (`DATASETS.names()`), plus `imagefolder:PATH`.
"""

from __future__ import annotations

from synthbridge.data import embedded, full  # noqa: F401  (register the datasets)
from synthbridge.data.base import (ArrayImages, ConcatImages, DatasetBundle, FileImages, ImageSet, SubsetImages,
                                   few_shot, stratified_split)
from synthbridge.data.folders import MANIFEST, load_imagefolder, load_synthetic
from synthbridge.data.registry import DATASETS
from synthbridge.errors import UserError


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


__all__ = ["ArrayImages", "ConcatImages", "DATASETS", "DatasetBundle", "FileImages", "ImageSet", "MANIFEST",
           "SubsetImages", "few_shot", "load_dataset", "load_imagefolder", "load_synthetic", "stratified_split"]
