"""Labelled image sets and the bundle a dataset loader returns.

In: pixels in memory, image files, or a torchvision dataset. Out: `ImageSet`s whose items are
(RGB PIL image, class index) -- or a transformed tensor when `transform` is set -- bundled with
the class names and the phrases that prompts use for them. `ImageSet.decoded()` holds a set's pixels
in memory as uint8 tensors (decoded once per process), for the training and evaluation pipeline that
works on whole batches (`training.augment`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from synthbridge.errors import UserError

log = logging.getLogger(__name__)

def _memory_limit() -> int:
    """The most decoded pixels one set may hold in host memory: a quarter of the machine's RAM shared by the
    processes on this node (each decodes its own copy, a stage may hold two sets and pinning copies one), at least
    1 GiB."""
    import os

    try:
        physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system
        physical = 16 * 2**30
    local_processes = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return max(2**30, physical // 4 // local_processes)


MEMORY_LIMIT_BYTES = _memory_limit()
DECODE_THREADS = 16  # PIL decodes with the GIL released: files are decoded on this many threads at most
ESTIMATE_SAMPLE = 64  # items whose size `decoded_bytes` reads to estimate a set's
MAX_SIZE_GROUPS = 16  # distinct image sizes a set keeps as groups of their own; a set of more is packed in canvases
CANVAS_STEP = 1.125  # a canvas is at most this factor larger than each image it holds, on each side


@dataclass(frozen=True)
class Decoded:
    """An ImageSet's pixels in memory: uint8 (n, 3, h, w) tensors, one per image size, and where item i is
    (`groups[group[i]][row[i]]`). Selecting items copies no pixels.

    A set of many sizes (photos) is packed instead: each group is a canvas holding images of about its size (each
    side within CANVAS_STEP of it) in its top-left corner, and `sizes` says each item's own (height, width): the
    batched augmentation then runs a few kernels per canvas rather than per image size."""

    groups: tuple[torch.Tensor, ...]
    group: np.ndarray  # (N,) int
    row: np.ndarray  # (N,) int
    sizes: np.ndarray | None = None  # (N, 2) int: each item's (height, width) in its canvas; None: its group's

    def item_sizes(self, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(heights, widths) of `items`' own images."""
        if self.sizes is not None:
            return self.sizes[items, 0], self.sizes[items, 1]
        shapes = np.array([tuple(g.shape[-2:]) for g in self.groups], dtype=np.int64).reshape(-1, 2)
        return shapes[self.group[items], 0], shapes[self.group[items], 1]

    def __len__(self) -> int:
        return len(self.group)

    @property
    def nbytes(self) -> int:
        return sum(g.numel() * g.element_size() for g in self.groups)

    def compact(self) -> Decoded:
        """The same items with only the pixels they use (a few-shot subset of a large split holds its own images)."""
        groups, group, row = [], np.zeros_like(self.group), np.zeros_like(self.row)
        for g in np.unique(self.group):
            members = np.flatnonzero(self.group == g)
            used, inverse = np.unique(self.row[members], return_inverse=True)
            pixels = self.groups[g]
            groups.append(pixels if len(used) == len(pixels) else pixels[torch.from_numpy(used)])
            group[members], row[members] = len(groups) - 1, inverse
        return Decoded(tuple(groups), group, row, self.sizes)

    def to(self, device: torch.device | str, pin: bool = False) -> Decoded:
        """The pixels of these items (`compact`) on `device`, or in pinned host memory (`pin`: for asynchronous
        copies to a GPU)."""
        compact = self.compact()
        groups = tuple(g.pin_memory() if pin else g.to(device) for g in compact.groups)
        return Decoded(groups, compact.group, compact.row, compact.sizes)

    def select(self, indices: Sequence[int]) -> Decoded:
        indices = np.asarray(indices, dtype=np.int64)
        return Decoded(self.groups, self.group[indices], self.row[indices],
                       None if self.sizes is None else self.sizes[indices])

    @staticmethod
    def concat(parts: Sequence[Decoded]) -> Decoded:
        groups, group, row = [], [], []
        for part in parts:
            group.append(part.group + len(groups))
            row.append(part.row)
            groups.extend(part.groups)
        sizes = None
        if any(part.sizes is not None for part in parts):
            sizes = np.concatenate([np.stack(part.item_sizes(np.arange(len(part))), axis=1) for part in parts])
        return Decoded(tuple(groups), np.concatenate(group), np.concatenate(row), sizes)

    @staticmethod
    def stack(arrays: list[np.ndarray], what: str) -> Decoded:
        """From a list of (h, w, 3) uint8 arrays, grouped by size. Each array is released from the list once copied
        (so the set is held about once, not three times, while it is stacked)."""
        by_size: dict[tuple[int, int], list[int]] = {}
        total = 0
        for i, array in enumerate(arrays):
            by_size.setdefault(array.shape[:2], []).append(i)
            total += array.nbytes
            if total > MEMORY_LIMIT_BYTES:
                raise UserError(f"{what} is too large to hold in memory (over {MEMORY_LIMIT_BYTES / 2**30:.1f} GiB "
                                f"decoded); train with --pipeline loader")
        group, row = np.zeros(len(arrays), dtype=np.int64), np.zeros(len(arrays), dtype=np.int64)
        sizes = np.array([a.shape[:2] for a in arrays], dtype=np.int64).reshape(-1, 2)
        packed = len(by_size) > MAX_SIZE_GROUPS
        if packed:  # canvases: each side's log in steps of CANVAS_STEP
            by_size = {}
            for i, (height, width) in enumerate(sizes):
                key = (int(np.log(height) // np.log(CANVAS_STEP)), int(np.log(width) // np.log(CANVAS_STEP)))
                by_size.setdefault(key, []).append(i)
        groups = []
        for g, members in enumerate(by_size.values()):
            canvas_height, canvas_width = sizes[members].max(axis=0)
            pixels = torch.empty((len(members), 3, canvas_height, canvas_width), dtype=torch.uint8)
            view = pixels.numpy()  # the same memory: PIL's arrays are read-only, numpy copies from them as they are
            for k, i in enumerate(members):
                height, width = sizes[i]
                view[k, :, :height, :width] = arrays[i].transpose(2, 0, 1)
                if packed:  # the padding repeats the image's edge: sampled past it, a canvas reads what border does
                    view[k, :, :height, width:] = view[k, :, :height, width - 1:width]
                    view[k, :, height:, :] = view[k, :, height - 1:height, :]
                arrays[i] = None
            groups.append(pixels)
            group[members], row[members] = g, np.arange(len(members))
        return Decoded(tuple(groups), group, row, sizes if packed else None)


class ImageSet(torch.utils.data.Dataset):
    """Base: subclasses implement `load(i) -> PIL image` and set `targets` (one class index per item)."""

    targets: list[int]

    def __init__(self) -> None:
        self.transform: Callable | None = None

    def load(self, index: int) -> Image.Image:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.targets)

    def item(self, index: int) -> tuple[Image.Image, int]:
        """(RGB image, class index), without the transform."""
        return self.load(index).convert("RGB"), self.targets[index]

    def __getitem__(self, index: int):
        image, label = self.item(index)
        if self.transform is not None:
            image = self.transform(image)
        return image, label

    def decoded(self) -> Decoded:
        """Every image as uint8 pixels in memory, decoded on the first call and kept with the set. Labels are
        `decoded_targets()` (a file that cannot be read is replaced by the next readable one, as in loading)."""
        if getattr(self, "_decoded", None) is None:
            self._decoded = self._decode()
        return self._decoded

    def decoded_targets(self) -> list[int]:
        return self.targets

    def label(self, index: int) -> int:
        """The class of the image item `index` gives (a bad file's slot: the class of the image that replaces it)."""
        return self.targets[index]

    def unreadable_among(self, indices: Sequence[int]) -> set[int]:
        """Which of the items `indices` are files that cannot be read (none, for images held in memory)."""
        return set()

    def readable_count(self) -> int:
        """Items whose own image can be read: what a run trained on (a bad file's slot repeats another image)."""
        return len(self) - len(self.unreadable_among(range(len(self))))

    def decoded_bytes(self) -> int:
        """About how many bytes `decoded()` holds, without decoding the set: the pixels of up to ESTIMATE_SAMPLE
        items spread over it, scaled to its length (0 for an empty set)."""
        if len(self) == 0:
            return 0
        sample = np.unique(np.linspace(0, len(self) - 1, min(len(self), ESTIMATE_SAMPLE)).astype(np.int64))
        return int(np.mean([self.item_bytes(int(i)) for i in sample]) * len(self))

    def item_bytes(self, index: int) -> int:
        """The bytes of item `index`'s decoded RGB pixels."""
        width, height = self.load(index).size
        return 3 * width * height

    def _decode(self) -> Decoded:
        """PIL decodes files on several threads (it releases the GIL): the same pixels, in item order."""
        from concurrent.futures import ThreadPoolExecutor

        from synthbridge.profiles import available_cores

        pixels = lambda i: np.asarray(self.item(i)[0])
        threads = min(DECODE_THREADS, available_cores(), max(1, len(self) // 64))
        if threads == 1:
            arrays = [pixels(i) for i in range(len(self))]
        else:
            with ThreadPoolExecutor(threads) as pool:
                arrays = list(pool.map(pixels, range(len(self))))
        return Decoded.stack(arrays, f"a set of {len(self)} images")

    def subset(self, indices: Sequence[int]) -> SubsetImages:
        return SubsetImages(self, indices)


class ArrayImages(ImageSet):
    """Images held in memory as uint8 arrays, (N, H, W) grey or (N, H, W, 3) colour."""

    def __init__(self, pixels: np.ndarray, targets: Sequence[int]):
        super().__init__()
        assert pixels.dtype == np.uint8 and len(pixels) == len(targets)
        self.pixels = pixels
        self.targets = [int(t) for t in targets]

    def load(self, index: int) -> Image.Image:
        return Image.fromarray(self.pixels[index])

    def item_bytes(self, index: int) -> int:
        return 3 * self.pixels.shape[1] * self.pixels.shape[2]

    def _decode(self) -> Decoded:
        pixels = self.pixels if self.pixels.ndim == 4 else np.repeat(self.pixels[..., None], 3, axis=-1)
        group = torch.from_numpy(np.array(pixels)).permute(0, 3, 1, 2).contiguous()  # a copy: the tensor owns it
        return Decoded((group,), np.zeros(len(pixels), dtype=np.int64), np.arange(len(pixels)))


class FileImages(ImageSet):
    """Images read from files. A file that cannot be decoded is skipped: one log line per bad file, the running
    count in it, and not counted in `readable_count()`."""

    def __init__(self, paths: Sequence[str | Path], targets: Sequence[int]):
        super().__init__()
        self.paths = [Path(p) for p in paths]
        self.targets = [int(t) for t in targets]
        self.unreadable: set[int] = set()
        self._read: set[int] = set()  # files this process has decoded or verified

    def load(self, index: int) -> Image.Image:
        # A file that fails here is replaced by the next readable one, so a long run never crashes on
        # one bad image; the count is reported once per bad file.
        for offset in range(len(self.paths)):
            i = (index + offset) % len(self.paths)
            if i in self.unreadable:
                continue
            try:
                with Image.open(self.paths[i]) as image:
                    image.load()
                    self._read.add(i)
                    return image.convert("RGB")
            except (OSError, ValueError, SyntaxError) as exc:
                self._skip(i, exc)
        raise UserError("no readable image in this dataset; check the files")

    def _skip(self, index: int, exc: BaseException) -> None:
        """Mark file `index` unreadable, in one log line (not a Python warning with its source line)."""
        self.unreadable.add(index)
        reason = str(exc)
        for path in (repr(str(self.paths[index])), str(self.paths[index])):  # the path is in the line already
            reason = reason.replace(path, "")
        reason = " ".join(reason.split()) or type(exc).__name__
        log.warning("skipping unreadable image %s (%s); %d skipped so far", self.paths[index], reason,
                    len(self.unreadable))

    def item_bytes(self, index: int) -> int:
        """From the file's header, without decoding it (0 for a file that cannot be opened)."""
        try:
            with Image.open(self.paths[index]) as image:
                width, height = image.size
        except (OSError, ValueError, SyntaxError):
            return 0
        return 3 * width * height

    def unreadable_among(self, indices: Sequence[int]) -> set[int]:
        """The files among `indices` that cannot be read. A file not decoded yet in this process (DataLoader workers
        decode in their own) is checked without decoding: PIL's open and verify (header, PNG checksums)."""
        for i in indices:
            if i in self._read or i in self.unreadable:
                continue
            try:
                with Image.open(self.paths[i]) as image:
                    image.verify()
                self._read.add(i)  # known readable: not verified again
            except (OSError, ValueError, SyntaxError) as exc:
                self._skip(i, exc)
        return {i for i in indices if i in self.unreadable}

    def item(self, index: int) -> tuple[Image.Image, int]:
        image = self.load(index)
        # The label follows the image actually returned (it may be a replacement for a bad file).
        return image, self.label(index)

    def decoded_targets(self) -> list[int]:
        self.decoded()  # finds the unreadable files
        return [self.label(i) for i in range(len(self))]

    def label(self, index: int) -> int:
        return self.targets[index] if index not in self.unreadable else self._replacement_label(index)

    def _replacement_label(self, index: int) -> int:
        for offset in range(len(self.paths)):
            i = (index + offset) % len(self.paths)
            if i not in self.unreadable:
                return self.targets[i]
        return self.targets[index]


class WrappedImages(ImageSet):
    """A torchvision dataset whose items are (PIL image, label); its labels are read without decoding images."""

    def __init__(self, dataset, targets: Sequence[int]):
        super().__init__()
        self.dataset = dataset
        self.targets = [int(t) for t in targets]

    def load(self, index: int) -> Image.Image:
        return self.dataset[index][0]


class SubsetImages(ImageSet):
    """A view on some items of another ImageSet (few-shot selections, splits, volume subsets)."""

    def __init__(self, base: ImageSet, indices: Sequence[int]):
        super().__init__()
        self.base = base
        self.indices = [int(i) for i in indices]
        self.targets = [base.targets[i] for i in self.indices]

    def load(self, index: int) -> Image.Image:
        return self.base.load(self.indices[index])

    def item(self, index: int) -> tuple[Image.Image, int]:
        return self.base.item(self.indices[index])

    def decoded_targets(self) -> list[int]:
        self.decoded()  # its own files (or the base's), so that unreadable ones are known
        return [self.base.label(i) for i in self.indices]

    def label(self, index: int) -> int:
        return self.base.label(self.indices[index])

    def unreadable_among(self, indices: Sequence[int]) -> set[int]:
        indices = list(indices)
        bad = self.base.unreadable_among([self.indices[k] for k in indices])
        return {k for k in indices if self.indices[k] in bad}

    def item_bytes(self, index: int) -> int:
        return self.base.item_bytes(self.indices[index])

    def _decode(self) -> Decoded:
        """A view on the base's pixels when those are in memory already; else only this subset's own images are
        decoded (10 shots of a 10,000-image split decode 10 images a class, not the split)."""
        if getattr(self.base, "_decoded", None) is not None or isinstance(self.base, ArrayImages):
            return self.base.decoded().select(self.indices)
        return super()._decode()


class ConcatImages(ImageSet):
    """Several ImageSets with the same classes, one after another (naive mixing pools them)."""

    def __init__(self, parts: Sequence[ImageSet]):
        super().__init__()
        self.parts = list(parts)
        self.offsets = np.cumsum([0] + [len(p) for p in self.parts])
        self.targets = [t for p in self.parts for t in p.targets]

    def _locate(self, index: int) -> tuple[ImageSet, int]:
        """The part item `index` is in, and its index there."""
        part = int(np.searchsorted(self.offsets, index, side="right") - 1)
        return self.parts[part], index - int(self.offsets[part])

    def load(self, index: int) -> Image.Image:
        part, local = self._locate(index)
        return part.load(local)

    def item(self, index: int) -> tuple[Image.Image, int]:
        part, local = self._locate(index)
        return part.item(local)

    def decoded_targets(self) -> list[int]:
        return [t for p in self.parts for t in p.decoded_targets()]

    def decoded_bytes(self) -> int:
        return sum(p.decoded_bytes() for p in self.parts)

    def label(self, index: int) -> int:
        part, local = self._locate(index)
        return part.label(local)

    def unreadable_among(self, indices: Sequence[int]) -> set[int]:
        bad = set()
        for part, start in zip(self.parts, self.offsets[:-1].tolist()):
            mine = [i - start for i in indices if start <= i < start + len(part)]
            bad |= {start + i for i in part.unreadable_among(mine)}
        return bad

    def _decode(self) -> Decoded:
        return Decoded.concat([p.decoded() for p in self.parts])


@dataclass
class DatasetBundle:
    """What every dataset loader returns."""

    name: str
    classes: list[str]  # class names, as the dataset calls them
    phrases: list[str]  # how prompts name each class ("Boeing 737-300", "digit 7")
    superclass: str  # what all classes are ("aircraft", "handwritten digit")
    train: ImageSet
    test: ImageSet
    image_size: int | None = None  # the images' side in pixels where known (small images pick the small training profile)
    info: dict = field(default_factory=dict)  # source, split rule, sizes

    def __post_init__(self) -> None:
        assert len(self.classes) == len(self.phrases)
        for split_name, split in (("train", self.train), ("test", self.test)):
            if len(split) == 0:
                raise UserError(f"dataset {self.name!r} has an empty {split_name} split; check its files")

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def stratified_split(targets: Sequence[int], train_size: int | float, seed: int) -> tuple[list[int], list[int]]:
    """Indices of a seeded, stratified train/test split (scikit-learn's)."""
    from sklearn.model_selection import train_test_split

    indices = np.arange(len(targets))
    train, test = train_test_split(indices, train_size=train_size, stratify=np.asarray(targets), random_state=seed)
    return sorted(train.tolist()), sorted(test.tolist())


def few_shot(images: ImageSet, shots: int, seed: int, class_names: Sequence[str]) -> SubsetImages:
    """K images per class, chosen by `seed` (the same seed always picks the same images)."""
    targets = np.asarray(images.targets)
    rng = np.random.default_rng([seed, 1_000_003])
    chosen = []
    for label, name in enumerate(class_names):
        members = np.flatnonzero(targets == label)
        if len(members) < shots:
            raise UserError(f"--shots {shots} is more than class {name!r} has ({len(members)} training images); "
                            f"use --shots {len(members)} or fewer")
        chosen.extend(rng.choice(members, size=shots, replace=False).tolist())
    return images.subset(sorted(chosen))
