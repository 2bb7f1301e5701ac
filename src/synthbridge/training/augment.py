"""The in-memory input pipeline: timm's train and eval transforms, applied to whole batches of decoded pixels.

In: a set's pixels as uint8 tensors (`ImageSet.decoded()`), the keys of a batch (item, per-sample seed).
Out: the normalised float batch the model takes, on the model's device.

The `loader` pipeline runs timm's transforms on PIL images, one image at a time, in DataLoader workers.
For small images held in memory that per-image Python work costs more than the arithmetic, so the
`memory` pipeline does the same steps on the batch:

- train (`augment` light or timm): RandomResizedCrop with timm's scale and ratio (torchvision's
  sampling rule: 10 tries, then a centre crop), horizontal flip, ColorJitter (brightness, contrast,
  saturation, applied in a random order per image), normalisation: one `affine_grid`/`grid_sample`
  per image size (per canvas of a packed set: `data.base.Decoded`) for the crops, the jitter on the batch
  tensor. Each image's draws are a pure function of its own seed (`uniforms`), never of its batch
  neighbours, the process count or a global state.
- eval (and `augment: none`): timm's eval transform itself (Resize, CenterCrop) run on the uint8 batch,
  then normalisation; done once per set and process, kept in memory (`eval_tensor`).

What differs from the loader pipeline: pixels stay float between the crop and the jitter (PIL rounds to
uint8 after each), crops are sampled without PIL's antialiasing (the same for the upscaling crops of
small images; different when a crop is shrunk), and the random draws come from each sample's seed
rather than from torch's generator. The same seeds give the same batches on every run.
"""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from synthbridge.data import ImageSet
from synthbridge.data.base import Decoded

# The training augmentations by name; `loop.make_transform` passes the same values to timm's create_transform.
AUGMENTS = {
    "light": dict(scale=(0.7, 1.0), ratio=(0.85, 1.18), hflip=0.0, color_jitter=0.2),  # small crops, no flips: digits
    "timm": dict(scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), hflip=0.5, color_jitter=0.4),  # timm's train defaults
}
GRID_MODES = {"bilinear": "bilinear", "bicubic": "bicubic", "nearest": "nearest"}
_TRIES = 10  # torchvision's RandomResizedCrop tries before its centre-crop fallback
_DRAWS = 2 * _TRIES + 2 + 1 + 3 + 3  # area, ratio per try; crop offsets; flip; jitter factors; jitter order


def uniforms(seeds: Sequence[int], count: int) -> np.ndarray:
    """(len(seeds), count) uniforms in [0, 1): a pure function of each seed (the splitmix64 sequence)."""
    golden, mult1, mult2 = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB)
    with np.errstate(over="ignore"):
        z = np.asarray(seeds, dtype=np.uint64)[:, None] + np.arange(1, count + 1, dtype=np.uint64)[None] * golden
        z = (z ^ (z >> np.uint64(30))) * mult1
        z = (z ^ (z >> np.uint64(27))) * mult2
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * (1.0 / 2**53)


def crop_boxes(u: np.ndarray, heights: np.ndarray, widths: np.ndarray, scale, ratio) -> np.ndarray:
    """(B, 4) crop boxes (top, left, h, w) by RandomResizedCrop's rule, from each row of draws `u`."""
    area = heights * widths
    log_ratio = np.log(ratio)
    target = area[:, None] * (scale[0] + (scale[1] - scale[0]) * u[:, :_TRIES])
    aspect = np.exp(log_ratio[0] + (log_ratio[1] - log_ratio[0]) * u[:, _TRIES:2 * _TRIES])
    w = np.round(np.sqrt(target * aspect)).astype(np.int64)
    h = np.round(np.sqrt(target / aspect)).astype(np.int64)
    valid = (w > 0) & (w <= widths[:, None]) & (h > 0) & (h <= heights[:, None])
    first = valid.argmax(axis=1)
    rows = np.arange(len(u))
    found = valid[rows, first]
    h, w = h[rows, first], w[rows, first]
    # the fallback: the whole image, or its centre at the nearest allowed aspect ratio
    in_ratio = widths / heights
    fw = np.where(in_ratio < min(ratio), widths, np.where(in_ratio > max(ratio), np.round(heights * max(ratio)), widths))
    fh = np.where(in_ratio < min(ratio), np.round(widths / min(ratio)), heights)
    h, w = np.where(found, h, fh).astype(np.int64), np.where(found, w, fw).astype(np.int64)
    top = np.where(found, np.floor(u[:, 2 * _TRIES] * (heights - h + 1)), (heights - h) // 2).astype(np.int64)
    left = np.where(found, np.floor(u[:, 2 * _TRIES + 1] * (widths - w + 1)), (widths - w) // 2).astype(np.int64)
    return np.stack([top, left, h, w], axis=1)


def _gray(x: torch.Tensor) -> torch.Tensor:
    """torchvision's rgb_to_grayscale weights, (B, 1, H, W)."""
    return (0.2989 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)


@dataclass
class BatchTransform:
    """timm's train transform for a model's input config, on batches of decoded images (see the module's notes)."""

    size: tuple[int, int]  # (height, width) the model takes
    mean: torch.Tensor
    std: torch.Tensor
    mode: str  # grid_sample interpolation
    scale: tuple[float, float]
    ratio: tuple[float, float]
    hflip: float
    jitter: float

    @classmethod
    def for_model(cls, data_config: dict, augment: str) -> BatchTransform:
        params = AUGMENTS[augment]
        return cls(size=tuple(data_config["input_size"][1:]), mean=torch.tensor(data_config["mean"]).view(1, 3, 1, 1),
                   std=torch.tensor(data_config["std"]).view(1, 3, 1, 1),
                   mode=GRID_MODES.get(data_config["interpolation"], "bilinear"), scale=params["scale"],
                   ratio=params["ratio"], hflip=params["hflip"], jitter=params["color_jitter"])

    def __call__(self, decoded: Decoded, items: Sequence[int], seeds: Sequence[int], device) -> torch.Tensor:
        """The augmented, normalised (B, 3, H, W) float batch of `items` of `decoded`, sample i drawn from seeds[i].

        The pixels are read where `decoded` holds them (`place`) and augmented on `device`; every copy from the
        host is asynchronous (small index and parameter tensors, or a pinned batch of pixels)."""
        items = np.asarray(items, dtype=np.int64)
        group, row = decoded.group[items], decoded.row[items]
        u = uniforms(seeds, _DRAWS)
        groups = np.unique(group)
        out = None if len(groups) == 1 else torch.empty((len(items), 3, *self.size), device=device)
        for g in groups:
            members = np.flatnonzero(group == g)
            pixels = decoded.groups[g]  # a canvas of a packed set: each image in its top-left corner
            heights, widths = decoded.item_sizes(items[members])
            boxes = crop_boxes(u[members], heights, widths, self.scale, self.ratio)
            flip = u[members, 2 * _TRIES + 2] < self.hflip
            rows = torch.from_numpy(row[members])
            batch = (pixels[rows.to(pixels.device, non_blocking=True)] if pixels.device.type != "cpu"
                     else pixels[rows].pin_memory() if pixels.is_pinned() else pixels[rows])
            cropped = self._crop(batch.to(device, non_blocking=True), boxes, flip)
            if out is None:
                out = cropped
            else:
                out[torch.from_numpy(members).to(device, non_blocking=True)] = cropped
        if self.jitter:
            out = self._jitter(out, u[:, 2 * _TRIES + 3:])
        mean, std = self._normalisation(device)
        return out.sub_(mean).div_(std)

    def _normalisation(self, device) -> tuple[torch.Tensor, torch.Tensor]:
        """The mean and std on `device`, copied there once."""
        cache = self.__dict__.setdefault("_on_device", {})
        key = str(device)
        if key not in cache:
            cache[key] = (self.mean.to(device), self.std.to(device))
        return cache[key]

    def _crop(self, pixels: torch.Tensor, boxes: np.ndarray, flip: np.ndarray) -> torch.Tensor:
        """Each image's box resized to the model's size, as PIL crops then resizes: the same pixel centres, and
        the crop's edge pixels repeated beyond it."""
        height, width = pixels.shape[-2:]
        top, left, h, w = (torch.from_numpy(boxes[:, k]).double() for k in range(4))
        # one host tensor per batch, copied once: the affine map (6), the lowest (2) and highest (2) grid points
        params = torch.zeros(len(boxes), 10, dtype=torch.float64)
        params[:, 0] = torch.where(torch.from_numpy(flip), -w / width, w / width)
        params[:, 2] = (2 * left + w) / width - 1
        params[:, 4] = h / height
        params[:, 5] = (2 * top + h) / height - 1
        # as a crop then a resize: sampling never reaches past the crop's edge pixels (their centres, normalised)
        params[:, 6], params[:, 7] = (2 * left + 1) / width - 1, (2 * top + 1) / height - 1
        params[:, 8], params[:, 9] = (2 * (left + w) - 1) / width - 1, (2 * (top + h) - 1) / height - 1
        params = params.float().to(pixels.device, non_blocking=True)
        images = pixels.float().div_(255.0)
        grid = F.affine_grid(params[:, :6].contiguous().view(-1, 2, 3), [len(boxes), 3, *self.size], align_corners=False)
        low, high = params[:, 6:8].view(-1, 1, 1, 2), params[:, 8:10].view(-1, 1, 1, 2)
        grid = torch.maximum(torch.minimum(grid, high), low)
        cropped = F.grid_sample(images, grid, mode=self.mode, padding_mode="border", align_corners=False)
        return cropped.clamp_(0.0, 1.0) if self.mode == "bicubic" else cropped

    def _jitter(self, x: torch.Tensor, u: np.ndarray) -> torch.Tensor:
        """Brightness, contrast and saturation factors in [1 - j, 1 + j], in a random order per image.

        Each is torchvision's blend of the image with a reference, clamped to [0, 1]: black (brightness), the
        mean grey level (contrast), the image's grey version (saturation). At each of the three positions every
        image blends with the reference of its own op there, so the batch takes three whole-tensor steps."""
        factors = torch.from_numpy(1.0 - self.jitter + 2.0 * self.jitter * u[:, :3]).float().to(x.device, non_blocking=True)
        order = torch.from_numpy(np.argsort(u[:, 3:6], axis=1)).to(x.device, non_blocking=True)  # (B, 3): op per position
        for position in range(3):
            op = order[:, position].view(-1, 1, 1, 1)
            gray = _gray(x)
            reference = torch.where(op == 2, gray, torch.where(op == 1, gray.mean(dim=(1, 2, 3), keepdim=True), 0.0))
            factor = factors.gather(1, order[:, position:position + 1]).view(-1, 1, 1, 1)
            x = (factor * x + (1 - factor) * reference).clamp_(0.0, 1.0)
        return x


DEVICE_SHARE = 0.5  # the most of a GPU's memory decoded pixels may take (the rest: the model's training)
_PLACED: list[tuple[weakref.ref, str, int]] = []  # sets whose pixels are on a GPU, oldest first: (set, device, bytes)


def place(sources: Sequence[ImageSet], device: torch.device) -> list[Decoded]:
    """The sets' decoded pixels where the memory pipeline reads them on `device` (a stage's sources, together).

    On a GPU: there, when they fit in DEVICE_SHARE of the memory torch can use (the whole augmentation then runs on
    the GPU), kept with the set for later stages and runs in this process; sets placed earlier give their room
    back, least recently used first, never one of `sources`. A set that does not fit is read from pinned host
    memory (each batch's pixels copied asynchronously), for this stage only. On the CPU: as decoded."""
    if device.type != "cuda":
        return [images.decoded() for images in sources]
    key, placed = str(device), []
    _PLACED[:] = [entry for entry in _PLACED if entry[0]() is not None]
    stage = {id(images) for images in sources}
    for images in sources:
        cache = images.__dict__.setdefault("_placed", {})
        mine = [entry for entry in _PLACED if entry[0]() is images and entry[1] == key]
        if key in cache and mine:  # used again: now the most recently used
            _PLACED.remove(mine[0])
            _PLACED.append(mine[0])
            placed.append(cache[key])
            continue
        compact = images.decoded().compact()
        free, _ = torch.cuda.mem_get_info(device)
        free += torch.cuda.memory_reserved(device) - torch.cuda.memory_allocated(device)  # torch's cache is usable
        held = [entry for entry in _PLACED if entry[1] == key]
        budget = DEVICE_SHARE * (free + sum(entry[2] for entry in held))
        for entry in [entry for entry in held if id(entry[0]()) not in stage]:
            if sum(e[2] for e in held) + compact.nbytes <= budget:
                break
            held.remove(entry)  # its pixels leave the GPU: a later stage that needs them places them again
            _PLACED.remove(entry)
            entry[0]().__dict__["_placed"].pop(key, None)
        if sum(entry[2] for entry in held) + compact.nbytes <= budget:
            cache[key] = compact.to(device)
            _PLACED.append((weakref.ref(images), key, compact.nbytes))
            placed.append(cache[key])
        else:
            placed.append(compact.to("cpu", pin=True))
    return placed


@dataclass(frozen=True)
class EvalInMemory:
    """The memory pipeline's evaluation transform: `evaluation.predict` runs the model on `eval_tensor`."""

    data_config: dict

    def dataset(self, images: ImageSet) -> torch.utils.data.TensorDataset:
        return torch.utils.data.TensorDataset(eval_tensor(images, self.data_config),
                                              torch.tensor(images.decoded_targets()))


def eval_tensor(images: ImageSet, data_config: dict) -> torch.Tensor:
    """The whole set as the model's normalised eval input (N, 3, H, W) float, computed once per set and config:
    timm's eval transform's Resize and CenterCrop on the uint8 pixels, one call per image size (per image of a
    packed canvas)."""
    from timm.data import create_transform
    from timm.data.transforms import MaybeToTensor
    from torchvision import transforms

    key = (tuple(data_config["input_size"]), data_config["interpolation"], data_config.get("crop_pct"),
           data_config.get("crop_mode"), tuple(data_config["mean"]), tuple(data_config["std"]))
    cache = images.__dict__.setdefault("_eval_tensors", {})
    if key not in cache:
        timm_eval = create_transform(input_size=data_config["input_size"], interpolation=data_config["interpolation"],
                                     mean=data_config["mean"], std=data_config["std"],
                                     crop_pct=data_config.get("crop_pct"), crop_mode=data_config.get("crop_mode"))
        steps = [t for t in timm_eval.transforms if not isinstance(t, (MaybeToTensor, transforms.ToTensor,
                                                                       transforms.Normalize))]
        decoded = images.decoded()
        out = torch.empty((len(decoded), *data_config["input_size"]))
        mean = torch.tensor(data_config["mean"]).view(1, 3, 1, 1)
        std = torch.tensor(data_config["std"]).view(1, 3, 1, 1)
        for g, pixels in enumerate(decoded.groups):
            members = np.flatnonzero(decoded.group == g)
            heights, widths = decoded.item_sizes(members)
            whole = bool(np.all(heights == pixels.shape[-2]) and np.all(widths == pixels.shape[-1]))
            # a group of one size: one call; a packed canvas: each image cut from it alone
            batches = ([(members, pixels[torch.from_numpy(decoded.row[members])])] if whole else
                       [(members[k:k + 1], pixels[decoded.row[m]:decoded.row[m] + 1, :, :heights[k], :widths[k]])
                        for k, m in enumerate(members)])
            for at, batch in batches:
                for step in steps:
                    batch = step(batch)
                out[torch.from_numpy(at)] = (batch.float() / 255.0 - mean) / std
        cache[key] = out
    return cache[key]

