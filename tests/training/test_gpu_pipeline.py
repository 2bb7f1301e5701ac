"""The input pipeline on the training device (issue 22): `auto` choices per device, decoded pixels placed on the GPU
(compacted, evicted oldest first when a grid's sets need the room), batches from several sources in key order,
threaded decoding with the same pixels. Device placement itself: tests/test_device_placement.py."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from device_helpers import fake_cuda
from synthbridge.data import ArrayImages, load_dataset
from synthbridge.training.config import TrainConfig

CONFIG = {"input_size": (3, 24, 24), "interpolation": "bilinear", "mean": (0.5, 0.4, 0.3), "std": (0.2, 0.25, 0.3),
          "crop_pct": 0.875}


@pytest.mark.parametrize("device, pipeline, precision, channels_last", [
    ("cuda", "memory", "bf16", True), ("cpu", "loader", "no", False), ("mps", "loader", "no", False)])
def test_auto_environment_choices_follow_the_device(monkeypatch, device, pipeline, precision, channels_last):
    import synthbridge.training.config as config

    monkeypatch.setattr(config, "_bf16", lambda: True)
    cfg = TrainConfig(model="resnet18").resolve(input_size=224, image_size=256, device_type=device)
    assert (cfg.pipeline, cfg.mixed_precision, cfg.channels_last) == (pipeline, precision, channels_last)
    # a ViT (no convolutions but its patch embedding) stays contiguous; explicit choices win everywhere
    assert not TrainConfig().resolve(input_size=224, device_type=device, convolutional=False).channels_last
    chosen = TrainConfig(pipeline="loader", mixed_precision="no", channels_last=False).resolve(
        input_size=224, image_size=256, device_type=device)
    assert (chosen.pipeline, chosen.mixed_precision, chosen.channels_last) == ("loader", "no", False)
    # the embedded profile keeps the memory pipeline everywhere
    assert TrainConfig().resolve(input_size=32, device_type=device).pipeline == "memory"


def test_a_gpu_without_bf16_trains_in_fp32_by_default(monkeypatch):
    import synthbridge.training.config as config

    monkeypatch.setattr(config, "_bf16", lambda: False)
    assert TrainConfig().resolve(input_size=224, device_type="cuda").mixed_precision == "no"


def _sizes_set(count: int = 12) -> ArrayImages:
    rng = np.random.default_rng(0)
    return ArrayImages(rng.integers(0, 256, (count, 20, 30, 3), dtype=np.uint8), [k % 3 for k in range(count)])


def test_a_subset_placed_on_a_device_holds_its_own_pixels_only():
    images = _sizes_set()
    subset = images.subset([7, 2, 7, 5])
    placed = subset.decoded().to("cpu")
    assert sum(len(g) for g in placed.groups) == 3  # 2, 5, 7: not the 12 of the whole set
    for k, index in enumerate([7, 2, 7, 5]):
        pixels = placed.groups[placed.group[k]][placed.row[k]]
        assert torch.equal(pixels.permute(1, 2, 0), torch.from_numpy(images.pixels[index]))


def test_files_decoded_on_threads_are_the_files_in_order(tmp_path, monkeypatch):
    from synthbridge.data import base

    folder_set = load_dataset("digits").train.subset(range(200))
    from PIL import Image

    paths = []
    for index in range(len(folder_set)):
        path = tmp_path / f"{index}.png"
        folder_set.item(index)[0].save(path)
        paths.append(path)
    threaded = base.FileImages(paths, folder_set.targets).decoded()
    monkeypatch.setattr(base, "DECODE_THREADS", 1)
    single = base.FileImages(paths, folder_set.targets).decoded()
    assert len(threaded) == 200 and all(torch.equal(a, b) for a, b in zip(threaded.groups, single.groups))
    assert np.array_equal(np.asarray(Image.open(paths[13])),
                          threaded.groups[threaded.group[13]][threaded.row[13]].permute(1, 2, 0).numpy())


def _free(monkeypatch, nbytes: float) -> None:
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (int(nbytes), 80 * 2**30))


CUDA0 = torch.device("cuda", 0)


def test_sets_placed_on_the_gpu_give_their_room_back_least_recently_used_first(monkeypatch):
    from synthbridge.training import augment

    a, b, c = _sizes_set(), _sizes_set(), _sizes_set()
    size = a.decoded().nbytes  # 12 images of 20x30x3 each
    monkeypatch.setattr(augment, "_PLACED", [])
    with fake_cuda(monkeypatch):
        _free(monkeypatch, 10 * size)
        (placed,) = augment.place([a], CUDA0)
        assert placed.groups[0].device.type == "cuda" and augment.place([a], CUDA0)[0] is placed  # kept with the set
        augment.place([b], CUDA0)
        augment.place([a], CUDA0)  # a used again: b is now the least recently used
        # 2.5 sets free beside the 2 placed: half of 4.5 sets holds 2 of them, so c takes b's room
        _free(monkeypatch, 2.5 * size)
        augment.place([c], CUDA0)
    assert "cuda:0" in a.__dict__["_placed"] and "cuda:0" not in b.__dict__["_placed"]
    assert [entry[0]() for entry in augment._PLACED] == [a, c]


def test_a_stage_never_evicts_its_own_sources_and_reads_what_does_not_fit_from_pinned_memory(monkeypatch):
    from synthbridge.data.base import Decoded
    from synthbridge.training import augment

    real, synthetic = _sizes_set(), _sizes_set()
    size = real.decoded().nbytes
    monkeypatch.setattr(augment, "_PLACED", [])
    moves = []
    original = Decoded.to
    monkeypatch.setattr(Decoded, "to", lambda self, device, pin=False: moves.append(pin) or (
        self if pin else original(self, device)))
    with fake_cuda(monkeypatch):
        _free(monkeypatch, 2.5 * size)  # room for one set (half of 2.5 sets), not two
        placed = augment.place([real, synthetic], CUDA0)
    assert moves == [False, True]  # real on the GPU, synthetic pinned: real was not evicted for it
    assert placed[0].groups[0].device.type == "cuda" and placed[1].groups[0].device.type == "cpu"
    assert [entry[0]() for entry in augment._PLACED] == [real] and "cuda:0" not in synthetic.__dict__["_placed"]


def test_a_batch_from_two_sources_is_each_key_augmented_alone_in_key_order():
    from synthbridge.training.augment import BatchTransform
    from synthbridge.training.loop import MemoryBatches, StepBatches

    real, synthetic = _sizes_set(9), _sizes_set(15)
    batches = MemoryBatches([real, synthetic], CONFIG, "timm", torch.device("cpu"), channels_last=True)
    keys = StepBatches([9, 15], [3, 5], seed=0, stage="mixed", start=0, total=1).keys(0)
    keys = keys[::2] + keys[1::2]  # interleave the sources
    images, labels = batches(keys)
    assert images.is_contiguous(memory_format=torch.channels_last)
    transform = BatchTransform.for_model(CONFIG, "timm")
    for row, (source, index, seed) in enumerate(keys):
        images_set = (real, synthetic)[source]
        alone = transform(images_set.decoded(), [index], [seed], torch.device("cpu"))[0]
        assert torch.allclose(images[row], alone, atol=1e-6) and labels[row] == images_set.targets[index]


def test_a_few_shot_subset_of_files_decodes_its_own_files_only(tmp_path):
    from PIL import Image

    from synthbridge.data.base import FileImages

    rng = np.random.default_rng(0)
    paths = []
    for index in range(40):
        paths.append(tmp_path / f"{index}.png")
        Image.fromarray(rng.integers(0, 256, (12, 10, 3), dtype=np.uint8)).save(paths[-1])
    files = FileImages(paths, [k % 4 for k in range(40)])
    shots = files.subset([3, 17, 30])
    decoded = shots.decoded()
    assert getattr(files, "_decoded", None) is None and files._read == {3, 17, 30}
    assert shots.decoded_targets() == [3, 1, 2] and shots.decoded_bytes() == 3 * 12 * 10 * 3
    assert np.array_equal(decoded.groups[decoded.group[1]][decoded.row[1]].permute(1, 2, 0).numpy(),
                          np.asarray(Image.open(paths[17])))


def test_auto_trains_with_the_loader_when_the_decoded_images_exceed_the_memory_limit(tmp_path, monkeypatch, caplog):
    import json

    from synthbridge.data import base
    from synthbridge.training import StageConfig, train

    monkeypatch.setattr(base, "MEMORY_LIMIT_BYTES", 1000)  # the digits' 8x8 images: 192 bytes each
    cfg = TrainConfig(dataset="digits", model="mini_resnet", pretrained=False, shots=2, eval_batch_size=512,
                      real=StageConfig(steps=2, batch_size=8, warmup_steps=0), report_to="none")
    with caplog.at_level("WARNING"):
        train(cfg, tmp_path / "auto")
    assert json.loads((tmp_path / "auto" / "config.json").read_text())["config"]["pipeline"] == "loader"
    assert "exceed the memory pipeline's" in caplog.text and "--pipeline" in caplog.text
    train(replace(cfg, pipeline="memory"), tmp_path / "memory")  # asked for by name: kept
    assert json.loads((tmp_path / "memory" / "config.json").read_text())["config"]["pipeline"] == "memory"


def test_convolutional_models_are_told_from_vits_without_building_their_weights():
    from synthbridge.models import convolutional

    assert convolutional("resnet18") and convolutional("mini_resnet")
    assert not convolutional("vit_tiny_patch16_224")  # its patch embedding is its only convolution
    assert not convolutional("no_such_model")


class _Photos:
    """Images of many sizes, as a photo dataset has (each its own size: 24 sizes)."""

    @staticmethod
    def make():
        from PIL import Image

        from synthbridge.data.base import ImageSet

        rng = np.random.default_rng(1)
        arrays = [rng.integers(0, 256, (20 + 3 * k, 40 - k, 3), dtype=np.uint8) for k in range(24)]

        class Photos(ImageSet):
            def __init__(self):
                super().__init__()
                self.targets = [k % 3 for k in range(len(arrays))]

            def load(self, index):
                return Image.fromarray(arrays[index])

        return Photos()


def test_a_set_of_many_sizes_is_packed_in_canvases_and_augmented_as_each_image_alone(monkeypatch):
    from synthbridge.data import base
    from synthbridge.training.augment import BatchTransform, eval_tensor

    packed = _Photos.make().decoded()
    assert packed.sizes is not None and len(packed.groups) < 24  # 24 sizes in a few canvases
    for g, canvas in enumerate(packed.groups):  # each canvas is within CANVAS_STEP of every image it holds
        heights, widths = packed.item_sizes(np.flatnonzero(packed.group == g))
        assert canvas.shape[-2] <= heights.min() * base.CANVAS_STEP and canvas.shape[-1] <= widths.min() * base.CANVAS_STEP
    monkeypatch.setattr(base, "MAX_SIZE_GROUPS", 100)
    exact = _Photos.make().decoded()
    assert exact.sizes is None and len(exact.groups) == 24
    items, seeds = list(range(24)) * 2, list(range(500, 548))
    for augment, interpolation in (("timm", "bilinear"), ("light", "bilinear"), ("timm", "bicubic")):
        transform = BatchTransform.for_model({**CONFIG, "interpolation": interpolation}, augment)
        ours, alone = (transform(d, items, seeds, torch.device("cpu")) for d in (packed, exact))
        assert torch.allclose(ours, alone, atol=1e-4)  # float rounding only: the crops never sample the padding
    monkeypatch.setattr(base, "MAX_SIZE_GROUPS", 16)
    photos, reference = _Photos.make(), _Photos.make()
    monkeypatch.setattr(base, "MAX_SIZE_GROUPS", 100)
    assert torch.equal(eval_tensor(photos, CONFIG), eval_tensor(reference, CONFIG))
    subset = photos.subset([5, 23, 5])  # selections keep each image's own size
    assert subset.decoded().item_sizes(np.arange(3))[0].tolist() == [35, 89, 35]
