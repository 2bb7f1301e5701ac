"""Finished first stages shared between runs: stage 1 of bridged transfer trained once, used by every cell
that would train it the same way.

A bridged cell's synthetic stage depends on the synthetic images it reads, the model and its starting
weights, the stage's resolved config, the seed and the classes -- not on the real shots. `stage_key`
names exactly those inputs (and the library versions and process count, which change float rounding);
two runs with the same key would train bit-identical weights, so the second loads the first's. The
stage's seed is the run's seed, so seeds stay paired across the cells that share it.

CACHE/<key>/model.safetensors  the weights at the end of the stage
CACHE/<key>/stage.json         its record (steps, loss, seconds, its own top-1 on the real test split)
CACHE/<key>/key.json           what the key was made of, readable
CACHE/.<key>.lock              held while the stage is looked up, trained and stored (concurrent workers of a
                               node wait; across nodes, where locks may not hold, the first stored copy wins)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import timm
import torch
from filelock import FileLock
from safetensors.torch import load_file, save_file

from synthbridge.data import DatasetBundle, ImageSet
from synthbridge.diffusion.pipeline import file_sha256
from synthbridge.io import make_readable, read_json, write_json
from synthbridge.training.config import TrainConfig
from synthbridge.training.strategies import Stage


def _images_identity(images: ImageSet) -> str:
    """The images a stage reads, by file (relative path and size, in order): cheap at any scale."""
    digest = hashlib.sha256()
    paths = getattr(images, "paths", None)
    base = getattr(images, "base", None)
    if paths is None and base is not None:  # a per-class subset of a folder
        paths = [base.paths[i] for i in images.indices]
    if paths is None:
        raise ValueError("only file-backed image sets can be shared between runs")
    for path, target in zip(paths, images.targets):
        digest.update(f"{path.parent.name}/{path.name}\0{path.stat().st_size}\0{target}\n".encode())
    return digest.hexdigest()


def stage_key(cfg: TrainConfig, stage: Stage, bundle: DatasetBundle, num_processes: int) -> tuple[str, dict]:
    """(key, what it is made of) of a first stage on synthetic images."""
    (images,) = stage.sources
    folder = Path(cfg.synthetic).resolve()
    description = {
        "stage": stage.name, "config": asdict(stage.config), "seed": cfg.seed, "model": cfg.model,
        "input_size": getattr(cfg, "input_size", None),
        "pretrained": cfg.pretrained, "checkpoint": file_sha256(Path(cfg.checkpoint)) if cfg.checkpoint else None,
        "classes": list(bundle.classes), "synthetic": str(folder), "images": _images_identity(images),
        "test": {"dataset": bundle.name, "images": len(bundle.test), "evaluated": cfg.evaluate_stages},  # its own top-1
        "mixed_precision": cfg.mixed_precision, "pipeline": cfg.pipeline, "num_processes": num_processes,
        **({"compile": True} if getattr(cfg, "compile", False) else {}),  # rounding differs; absent: older keys hold
        **({"channels_last": True} if cfg.channels_last else {}),  # the same (a GPU's convolutions in that format)
        "versions": {"torch": torch.__version__, "timm": timm.__version__},
    }
    key = hashlib.sha256(json.dumps(description, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return key, description


def shareable(cfg: TrainConfig, stages: list[Stage], position: int, num_processes: int) -> bool:
    """Only a first stage that reads the synthetic images alone, in one process, is shared."""
    stage = stages[position]
    return (position == 0 and len(stages) > 1 and stage.name == "synthetic" and len(stage.sources) == 1
            and cfg.synthetic is not None and num_processes == 1)


class StageCache:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    @contextmanager
    def claim(self, key: str) -> Iterator[Path]:
        """Hold the key's lock (another worker training the same stage finishes it first); yields its folder."""
        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(self.root / f".{key}.lock"):
            yield self.root / key

    @staticmethod
    def load(entry: Path) -> tuple[dict, dict] | None:
        """(weights, record) of a stored stage, or None."""
        if not (entry / "stage.json").is_file():
            return None
        return load_file(entry / "model.safetensors"), read_json(entry / "stage.json")

    @staticmethod
    def store(entry: Path, description: dict, state: dict, record: dict) -> None:
        """Write the stage's folder whole or not at all (a temporary folder renamed into place). A worker of
        another node that stored the same stage first (where the lock does not reach) wins: this copy is
        discarded, the stored one is what every later cell loads."""
        tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}-", dir=entry.parent))
        try:
            save_file(state, str(tmp / "model.safetensors"))
            write_json(tmp / "stage.json", record)
            write_json(tmp / "key.json", description)
            make_readable(tmp)
            try:
                os.rename(tmp, entry)
            except OSError:
                if not (entry / "stage.json").is_file():
                    raise
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
