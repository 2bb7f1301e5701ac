"""The memory pipeline's batched transforms against timm's per-image ones (training.augment)."""

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.transforms import functional as TF

from synthbridge.data import ArrayImages, ConcatImages, load_dataset
from synthbridge.training.augment import BatchTransform, crop_boxes, eval_tensor, uniforms
from synthbridge.training.loop import MemoryBatches, make_transform

CONFIG = {"input_size": (3, 32, 32), "interpolation": "bilinear", "mean": (0.5,) * 3, "std": (0.5,) * 3, "crop_pct": 1.0}


def images(n=6, size=28, seed=0) -> ArrayImages:
    rng = np.random.default_rng(seed)
    return ArrayImages(rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8), list(range(n)))


def test_uniforms_are_a_pure_function_of_each_seed():
    a = uniforms([1, 2, 3], 8)
    assert a.shape == (3, 8) and (a >= 0).all() and (a < 1).all()
    assert np.array_equal(uniforms([3, 1], 8), a[[2, 0]])  # each row depends on its seed alone
    assert not np.allclose(a[0], a[1])
    assert abs(uniforms(range(4000), 1).mean() - 0.5) < 0.02


def test_crop_boxes_follow_random_resized_crop():
    u = uniforms(range(2000), 32)
    h = np.full(2000, 28)
    boxes = crop_boxes(u, h, h, (0.7, 1.0), (0.85, 1.18))
    top, left, bh, bw = boxes.T
    assert ((top >= 0) & (left >= 0) & (top + bh <= 28) & (left + bw <= 28)).all()
    area = bh * bw / 28**2
    assert area.min() > 0.6 and area.max() <= 1.0
    assert 0.8 < (bw / bh).min() and (bw / bh).max() < 1.25
    # no try fits (every area is larger than the image): torchvision's fallback, the centred whole image
    big = crop_boxes(u[:5], h[:5], h[:5], (1.5, 2.0), (1.0, 1.0))
    assert (big == [0, 0, 28, 28]).all()


def test_a_crop_is_the_box_resized_as_pil_does():
    pixels = images(1).pixels
    transform = BatchTransform.for_model(CONFIG, "light")
    decoded = images(1).decoded()
    box = np.array([[3, 2, 22, 25]])  # top, left, height, width
    ours = transform._crop(decoded.groups[0], box, np.array([False]))[0]
    pil = TF.resized_crop(Image.fromarray(pixels[0]), 3, 2, 22, 25, [32, 32], TF.InterpolationMode.BILINEAR)
    theirs = TF.to_tensor(pil)
    assert (ours - theirs).abs().max() < 1.01 / 255  # PIL rounds to uint8; the sampling points are the same
    flipped = transform._crop(decoded.groups[0], box, np.array([True]))[0]
    assert torch.allclose(flipped, ours.flip(-1), atol=1e-5)


@pytest.mark.parametrize("order", [(0, 1, 2), (2, 1, 0), (1, 2, 0)])
def test_the_jitter_is_torchvisions_colorjitter_in_the_drawn_order(order):
    transform = BatchTransform.for_model(CONFIG, "light")
    x = torch.rand(1, 3, 16, 16)
    factors = np.array([0.3, 0.9, 0.1])  # -> brightness, contrast, saturation factors in [0.8, 1.2]
    ranks = np.argsort(order)  # draws whose argsort is `order`
    u = np.concatenate([factors, (ranks + 0.5) / 3])[None]
    ours = transform._jitter(x.clone(), u)[0]
    ops = [TF.adjust_brightness, TF.adjust_contrast, TF.adjust_saturation]
    expected = x[0]
    for op in order:
        expected = ops[op](expected, float(1 - 0.2 + 0.4 * factors[op]))
    assert torch.allclose(ours, expected, atol=1e-5)


def test_each_image_is_augmented_by_its_own_seed_whatever_its_neighbours():
    decoded = images(6).decoded()
    transform = BatchTransform.for_model(CONFIG, "light")
    batch = transform(decoded, [0, 1, 2, 3], [10, 11, 12, 13], torch.device("cpu"))
    again = transform(decoded, [3, 5, 1], [13, 99, 11], torch.device("cpu"))
    assert torch.equal(batch[3], again[0]) and torch.equal(batch[1], again[2])
    assert not torch.equal(batch[0], transform(decoded, [0], [20], torch.device("cpu"))[0])  # another seed, another draw
    assert batch.shape == (4, 3, 32, 32) and batch.min() >= -1 and batch.max() <= 1


def test_sets_of_several_sizes_and_the_eval_tensor():
    mixed = ConcatImages([images(3, 28), images(2, 8, seed=1)])
    decoded = mixed.decoded()
    assert len(decoded.groups) == 2 and len(decoded) == 5
    batches = MemoryBatches([mixed], CONFIG, "light", torch.device("cpu"))
    x, y = batches([(0, 4, 7), (0, 0, 8)])
    assert x.shape == (2, 3, 32, 32) and y.tolist() == [1, 0]
    # eval: timm's eval transform per image, on the batch instead
    timm_eval = make_transform(CONFIG, "none", train=False)
    tensor = eval_tensor(mixed, CONFIG)
    for i in range(5):
        assert (tensor[i] - timm_eval(mixed[i][0])).abs().max() < 4 / 127.5
    assert eval_tensor(mixed, CONFIG) is tensor  # once per set and config


def test_decoded_pixels_of_subsets_and_datasets_are_the_images():
    bundle = load_dataset("digits")
    subset = bundle.train.subset([5, 0, 9])
    decoded = subset.decoded()
    for row, index in enumerate([5, 0, 9]):
        group, position = decoded.group[row], decoded.row[row]
        assert np.array_equal(decoded.groups[group][position].permute(1, 2, 0).numpy(),
                              np.asarray(bundle.train[index][0]))
    assert subset.decoded_targets() == [bundle.train.targets[i] for i in (5, 0, 9)]
