"""What this run measured its work to cost, read from the experiment folder (nothing is timed here).

    generation   EXP_DIR/synthetic/<set>/generation.json (`generate`: runs[].generated, runs[].seconds, device)
                 or render.json (a font-render source: rendered_now, seconds)
    inversion    EXP_DIR/styles/<dataset>/invert.json (seconds)
    training     each cell's metrics: the stages' own seconds (a stage loaded from the stage-1 cache keeps the
                 seconds of the run that trained it) plus evaluation; `seconds.total` where stages are not recorded
"""

from __future__ import annotations

from pathlib import Path

from synthbridge.experiments.sets import set_name
from synthbridge.io import read_json, safe_name


def _read(path: Path) -> dict | None:
    return read_json(path) if path.is_file() else None


def generation_speed(exp_dir: Path, dataset: str, style: bool) -> dict | None:
    """How fast the set (dataset, style) was made here: {'images_per_second', 'seconds', 'images', 'per_class',
    'device', 'source'}; None when the set records no timing."""
    folder = Path(exp_dir) / "synthetic" / set_name(dataset, style)
    if record := _read(folder / "generation.json"):
        runs = [r for r in record.get("runs", []) if r.get("generated") and r.get("seconds")]
        if not runs:
            return None
        made, seconds = sum(r["generated"] for r in runs), sum(r["seconds"] for r in runs)
        return {"images_per_second": made / seconds, "seconds": seconds, "images": made,
                "per_class": record.get("per_class"), "device": runs[-1].get("device"), "source": "generation.json"}
    if (record := _read(folder / "render.json")) and record.get("rendered_now") and record.get("seconds"):
        return {"images_per_second": record["rendered_now"] / record["seconds"], "seconds": record["seconds"],
                "images": record["rendered_now"], "per_class": (record.get("config") or {}).get("per_class"),
                "device": "cpu", "source": "render.json"}
    return None


def inversion_seconds(exp_dir: Path, dataset: str) -> float | None:
    """Seconds the dataset's style inversion took here (None when not recorded)."""
    record = _read(Path(exp_dir) / "styles" / safe_name(dataset) / "invert.json")
    return record.get("seconds") if record else None


def training_seconds(record: dict) -> float:
    """What training and evaluating one cell cost: its stages' own seconds plus evaluation (see the module)."""
    metrics = record["metrics"]
    stages = metrics.get("stages") or {}
    if stages and all("seconds" in s for s in stages.values()):
        return sum(s["seconds"] for s in stages.values()) + metrics["seconds"].get("evaluate", 0.0)
    return metrics["seconds"]["total"]


def num_classes(exp_dir: Path, dataset: str, style: bool, records: list[dict]) -> int | None:
    """The classes of a setting: from a cell's per-class accuracy, else the set's generation.json (None: unknown)."""
    for record in records:
        if per_class := record["metrics"].get("per_class"):
            return len(per_class)
    generation = _read(Path(exp_dir) / "synthetic" / set_name(dataset, style) / "generation.json") or {}
    return len(generation.get("classes") or []) or None


def option_cost(exp_dir: Path, dataset: str, style: bool, volume: int | None, records: list[dict]) -> dict:
    """The cost of measuring one way of using synthetic images in this run: generating the images it reads
    (`volume` per class at the set's measured speed), the style inversion it needs, and training its cells.
    Values are seconds, None where the folder does not record them; `total` sums the recorded ones and
    `complete` says whether that is all of them."""
    speed = generation_speed(exp_dir, dataset, style) if volume else None
    classes = num_classes(exp_dir, dataset, style, records)
    generation = volume * classes / speed["images_per_second"] if speed and classes else (None if volume else 0.0)
    inversion = inversion_seconds(exp_dir, dataset) if style else 0.0
    training = sum(training_seconds(r) for r in records)
    parts = [generation, inversion, training]
    return {"generation": generation, "inversion": inversion, "training": training, "cells": len(records),
            "total": sum(p for p in parts if p is not None), "complete": None not in parts}


def fmt_seconds(seconds: float | None) -> str:
    """`95 s`, `14.2 min`, `3.1 h`; `not recorded` for None."""
    if seconds is None:
        return "not recorded"
    if seconds < 600:
        return f"{seconds:.0f} s"
    if seconds < 36_000:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
