"""Stage 1 of the flow: datasets.

    bundle = load_dataset("aircraft", data_root="data", shots=10, seed=0)
    synthetic = load_synthetic("S/", bundle.classes)

Names: the registry (`DATASETS.names()`: torchvision datasets, Stanford Dogs, CUB, and those plugins
add), plus `imagefolder:PATH`.
"""

from synthbridge.data import full  # noqa: F401  (registers the full-scale datasets)
from synthbridge.data.base import (
                                   ArrayImages,
                                   ConcatImages,
                                   DatasetBundle,
                                   FileImages,
                                   ImageSet,
                                   SubsetImages,
                                   few_shot,
                                   stratified_split,
)
from synthbridge.data.folders import MANIFEST, load_imagefolder, load_synthetic
from synthbridge.data.registry import DATASETS, load_dataset

__all__ = ["ArrayImages", "ConcatImages", "DATASETS", "DatasetBundle", "FileImages", "ImageSet", "MANIFEST",
           "SubsetImages", "few_shot", "load_dataset", "load_imagefolder", "load_synthetic", "stratified_split"]
