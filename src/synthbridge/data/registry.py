"""The dataset registry: name -> loader(data_root) -> DatasetBundle."""

from synthbridge.registry import Registry

DATASETS = Registry("dataset")
