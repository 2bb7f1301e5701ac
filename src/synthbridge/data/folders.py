"""Datasets read from folders: `imagefolder:PATH` and synthetic sets written by `render`/`generate`.

imagefolder layout: PATH/train/<class>/*.png|jpg and PATH/test/<class>/... (or PATH/val/).
Synthetic layout: DIR/<safe class folder>/<index>.png (or .webp / .jpg: `generate --image-format`) plus
DIR/manifest.jsonl, one JSON line per image with at least {"class": <real class name>, "path": "<folder>/<file>"}.
Classes are matched to the real dataset by name, never by position. Any suffix in IMAGE_SUFFIXES is read
(a superset of what torchvision's ImageFolder reads, so a synthetic folder is an ImageFolder too).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

from synthbridge.data.base import DatasetBundle, FileImages
from synthbridge.errors import UserError
from synthbridge.io import read_jsonl, safe_name

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm"}
MANIFEST = "manifest.jsonl"


def _image_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not p.name.startswith("."))


def _class_folders(split_dir: Path) -> list[Path]:
    """The class folders torchvision's ImageFolder finds (every sub-folder, a leading dot included)."""
    from torchvision.datasets.folder import find_classes

    try:
        names, _ = find_classes(str(split_dir))
    except FileNotFoundError:
        return []
    return [split_dir / name for name in names]


def _image_size(path: Path) -> int | None:
    """The smaller side of an image file in pixels (read from its header), or None if it cannot be read."""
    from PIL import Image

    try:
        with Image.open(path) as image:
            return min(image.size)
    except OSError:
        return None


def phrase_from_folder(name: str) -> str:
    """'001.Black_footed_Albatross' -> 'Black footed Albatross'; 'n02085620-Chihuahua' -> 'Chihuahua'."""
    head, dot, tail = name.partition(".")
    if dot and head.isdigit():
        name = tail
    if name[:1] == "n" and name[1:9].isdigit() and name[9:10] == "-":
        name = name[10:]
    return name.replace("_", " ").strip()


def load_imagefolder(path: str | Path) -> DatasetBundle:
    root = Path(path)
    if not root.is_dir():
        raise UserError(f"imagefolder path {str(root)!r} is not a folder; pass imagefolder:PATH with PATH/train and PATH/test")
    train_dir = root / "train"
    test_dir = next((root / s for s in ("test", "val") if (root / s).is_dir()), None)
    if not train_dir.is_dir() or test_dir is None:
        raise UserError(f"{str(root)!r} needs class folders under train/ and test/ (or val/)")
    classes = [p.name for p in _class_folders(train_dir)]
    if not classes:
        raise UserError(f"{str(train_dir)!r} has no class folders; put each class's images in train/<class>/")
    test_classes = [p.name for p in _class_folders(test_dir)]
    if extra := sorted(set(test_classes) - set(classes)):
        raise UserError(f"{test_dir.name}/ has classes that train/ lacks: {', '.join(extra[:5])}; make the class folders match")
    splits = {}
    for split_dir in (train_dir, test_dir):
        paths, targets = [], []
        for label, name in enumerate(classes):
            folder = split_dir / name
            files = _image_files(folder) if folder.is_dir() else []
            if not files and split_dir is train_dir:
                raise UserError(f"class {name!r} has no images in {str(folder)!r}; add images or remove the folder")
            paths += files
            targets += [label] * len(files)
        splits[split_dir.name] = FileImages(paths, targets)
    return DatasetBundle(
        name=f"imagefolder:{root}", classes=classes, phrases=[phrase_from_folder(c) for c in classes],
        superclass="object", train=splits["train"], test=splits[test_dir.name],
        image_size=_image_size(splits["train"].paths[0]),
        info={"source": str(root), "split": f"train/ and {test_dir.name}/ folders"},
    )


def load_synthetic(path: str | Path, classes: Sequence[str], cached: bool = False) -> FileImages:
    """A synthetic image folder as an ImageSet labelled with the real dataset's class indices.

    `cached`: keep it (and the pixels it decodes) for the rest of the process while its manifest is unchanged."""
    if cached:
        root = Path(path).resolve()
        manifest = root / MANIFEST
        stamp = (manifest.stat().st_mtime_ns, manifest.stat().st_size) if manifest.is_file() else None
        return _cached_synthetic(root, tuple(classes), stamp)
    return _load_synthetic(path, classes)


@functools.lru_cache(maxsize=8)
def _cached_synthetic(root: Path, classes: tuple[str, ...], stamp) -> FileImages:
    return _load_synthetic(root, classes)


def _load_synthetic(path: str | Path, classes: Sequence[str]) -> FileImages:
    root = Path(path)
    if not root.is_dir():
        raise UserError(f"synthetic folder {str(root)!r} does not exist; make one with `synthbridge generate` "
                        f"(or `synthbridge render`)")
    label_of = {name: i for i, name in enumerate(classes)}
    manifest = root / MANIFEST
    paths, targets, sources, labels = [], [], [], []
    if manifest.exists():
        # The manifest names the real class of every image: the authority for labels.
        seen = set()
        for record in read_jsonl(manifest):
            name, rel = record.get("class"), record.get("path")
            if name is None or rel is None:
                raise UserError(f"{str(manifest)!r} has a line without 'class' and 'path'; regenerate the folder")
            if name not in label_of:
                raise UserError(f"synthetic folder {str(root)!r} has class {name!r}, which the dataset lacks; "
                                f"generate it for this dataset (classes: {', '.join(list(classes)[:8])}...)")
            file = root / rel
            if rel in seen or not file.exists():
                continue  # a resumable generator may list an image whose file a crash never wrote
            seen.add(rel)
            paths.append(file)
            targets.append(label_of[name])
            sources.append((record.get("source") or {}).get("index"))
            labels.append(_soft_label(record.get("label"), label_of, manifest))
    else:
        # No manifest: a plain ImageFolder (class folders named as the classes, as torchvision's ImageFolder names
        # them), or class folders named as `generate` writes them (`safe_name`: 'green_tree_frog-e5d73e')
        label_of_folder = {safe_name(name): i for i, name in enumerate(classes)}
        label_of_folder.update(label_of)
        for folder in _class_folders(root):
            if folder.name not in label_of_folder:
                examples = " or ".join(repr(n) for n in dict.fromkeys([classes[0], safe_name(classes[0])]))
                raise UserError(f"synthetic folder {str(root)!r} has class folder {folder.name!r}, which matches no class "
                                f"of the dataset; name class folders as the dataset's classes (e.g. {examples}), "
                                f"or remove it")
            files = _image_files(folder)
            paths += files
            targets += [label_of_folder[folder.name]] * len(files)
    if not paths:
        raise UserError(f"synthetic folder {str(root)!r} has no images; generate some first")
    missing = [classes[i] for i in range(len(classes)) if i not in set(targets)]
    if missing:
        raise UserError(f"synthetic folder {str(root)!r} has no images for classes {', '.join(map(repr, missing[:5]))}; "
                        f"its classes must match the dataset's")
    images = FileImages(paths, targets)
    images.sources = sources or [None] * len(paths)  # per image: the real training image it was made from, if any
    images.soft = labels or [None] * len(paths)  # per image: its soft label {class index: weight} (Diff-Mix), if any
    return images


def _soft_label(label, label_of: dict, manifest: Path) -> dict[int, float] | None:
    """A manifest line's "label" ({class name: weight}, as `generate --init-images other` writes it) by class index."""
    if label is None:
        return None
    if not isinstance(label, dict) or not label or any(name not in label_of for name in label):
        raise UserError(f"{str(manifest)!r} has a soft label {label!r} that names a class the dataset lacks; "
                        f"regenerate the folder for this dataset")
    return {label_of[name]: float(weight) for name, weight in label.items()}


def soft_targets(images, num_classes: int):
    """[N, num_classes] class weights of the set's images: each image's soft label where its manifest gives one
    (Diff-Mix), one-hot otherwise, through volume subsets and pooled sets; None when no image has a soft label."""
    import torch

    from synthbridge.data.base import ConcatImages, SubsetImages

    if isinstance(images, SubsetImages):
        base = soft_targets(images.base, num_classes)
        return base[torch.tensor(images.indices, dtype=torch.long)] if base is not None else None
    if isinstance(images, ConcatImages):
        parts = [soft_targets(part, num_classes) for part in images.parts]
        if all(part is None for part in parts):
            return None
        return torch.cat([found if found is not None else _one_hot(part.targets, num_classes)
                          for found, part in zip(parts, images.parts)])
    labels = getattr(images, "soft", None)
    if not labels or all(label is None for label in labels):
        return None
    weights = _one_hot(images.targets, num_classes)
    for row, label in enumerate(labels):
        if label is not None:
            weights[row] = 0.0
            for column, weight in label.items():
                weights[row, column] = weight
    return weights


def _one_hot(targets, num_classes: int):
    import torch

    return torch.nn.functional.one_hot(torch.as_tensor(list(targets), dtype=torch.long), num_classes).float()


def made_from(images, index: int) -> int | None:
    """The index in the dataset's train split of the real image synthetic image `index` was made from (its manifest's
    "source": image-to-image sets), through volume subsets; None for an image made from noise or without a manifest."""
    from synthbridge.data.base import SubsetImages

    if isinstance(images, SubsetImages):
        return made_from(images.base, images.indices[index])
    found = getattr(images, "sources", None)
    return found[index] if found is not None else None
