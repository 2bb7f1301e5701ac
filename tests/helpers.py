"""Small builders shared by the tests (no models, no downloads)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from synthbridge.io import safe_name


def write_synthetic_folder(root: Path, classes: list[str], per_class: int, size: int = 28, seed: int = 0,
                           manifest: bool = True) -> Path:
    """A synthetic-layout folder of random blob images: DIR/<class>/<index>.png (+ manifest.jsonl)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    lines = []
    for label, name in enumerate(classes):
        folder = root / safe_name(name)
        folder.mkdir(exist_ok=True)
        for index in range(per_class):
            pixels = np.zeros((size, size), np.uint8)
            # a class-dependent bright bar, so a classifier can learn something
            pixels[:, (label * 2) % size: (label * 2) % size + 3] = 255
            pixels = np.clip(pixels + rng.normal(0, 20, pixels.shape), 0, 255).astype(np.uint8)
            rel = f"{folder.name}/{index:05d}.png"
            Image.fromarray(pixels).save(root / rel)
            lines.append({"class": name, "path": rel, "seed": int(index)})
    if manifest:
        (root / "manifest.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return root


def write_imagefolder(root: Path, classes: list[str], per_class: int = 3, size: int = 16) -> Path:
    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for name in classes:
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(per_class):
                Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(folder / f"{index}.png")
    return root


PHOTO_CLASSES = ("cat", "dog", "car", "bird", "flower")


def write_photo_folder(root: Path, per_class: dict[str, int], size: int = 96,
                       classes: tuple[str, ...] = PHOTO_CLASSES) -> Path:
    """imagefolder layout ({split: images per class}), `size`-pixel RGB images: a class-coloured disc on a noisy
    background."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    for split, count in per_class.items():
        for label, name in enumerate(classes):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                pixels = rng.integers(0, 80, (size, size, 3)).astype(np.uint8)
                cx, cy = rng.integers(size // 4, 3 * size // 4, 2)
                disc = (yy - cy) ** 2 + (xx - cx) ** 2 < (size // 5) ** 2
                pixels[disc] = np.roll([230, 120, 30], label)[None] // (1 + label % 2)
                Image.fromarray(pixels).save(folder / f"{index}.png")
    return root


def point_mini_at(monkeypatch, folder: Path) -> None:
    """Make the generator name 'mini' (the embedded plugin's) refer to `folder` for one test."""
    from synthbridge.diffusion.pipeline import GENERATORS, NamedGenerator

    GENERATORS.names()  # plugins registered first, so the entry replaced below stays replaced
    monkeypatch.setitem(GENERATORS._entries, "mini", NamedGenerator(Path(folder), "synthbridge build-generator",
                                                                     GENERATORS.get("mini").defaults))


def class_token_folder(path: Path, classes: tuple[str, ...], width: int, template="a photo of a {class}") -> Path:
    """An `invert --per-class` folder by its contract: invert.json (per_class, tokens, files, template) and one
    {token: vector} file per class, random vectors of the text encoder's width."""
    import torch
    from safetensors.torch import save_file

    (path / "classes").mkdir(parents=True)
    tokens, files = {}, {}
    for k, name in enumerate(classes):
        tokens[name], files[name] = f"<class-{name}>", f"classes/{safe_name(name)}.safetensors"
        vector = torch.randn(width, generator=torch.Generator().manual_seed(k))
        save_file({tokens[name]: vector}, str(path / files[name]))
    (path / "invert.json").write_text(json.dumps({"per_class": True, "tokens": tokens, "files": files,
                                                  "template": template}))
    return path


def generate_refusal(capsys, out: Path, *extra: str, one_line: bool = True) -> str:
    """Run `synthbridge generate` on two digit classes with `extra` arguments, expect it refused with exit 2 (one
    line unless argparse's own usage comes with it), and return what it said."""
    from synthbridge.cli import main

    args = ["generate", "--no-progress", "--dataset", "digits", "--per-class", "1", "--classes", "1", "3",
            "--steps", "2", "--out", str(out)]
    try:
        code = main([*args, *extra])
    except SystemExit as exc:  # argparse's own checks of a value
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and (len(err.strip().splitlines()) == 1 or not one_line), err
    return err
