"""The embedded datasets: real digits shipped by PyPI packages, split once with a fixed seed."""

import numpy as np

from synthbridge.data import load_dataset


def test_mnist5k_split_is_stratified_and_fixed():
    a, b = load_dataset("mnist5k"), load_dataset("mnist5k", seed=7)
    assert (len(a.train), len(a.test)) == (1000, 4000)
    assert np.bincount(a.train.targets).min() >= 95  # stratified: about 100 per class
    assert a.train.targets == b.train.targets  # the split does not depend on the run seed
    assert np.array_equal(a.test.pixels, b.test.pixels)
    image, label = a.train[0]
    assert image.mode == "RGB" and image.size == (28, 28) and 0 <= label < 10
    assert a.phrases[3] == "digit 3" and a.image_size == 28


def test_digits_dataset():
    bundle = load_dataset("digits")
    assert len(bundle.train) + len(bundle.test) == 1797
    assert len(bundle.train) == 1797 // 5
    assert bundle.train[0][0].size == (8, 8)
    assert bundle.train.pixels.max() == 255
