"""What this run measured its work to cost, read from the experiment folder (nothing is timed here).

    generation   EXP_DIR/synthetic/<set>/generation.json (`generate`: runs[].generated, runs[].seconds, device)
                 or render.json (a font-render source: rendered_now, seconds)
    adaptation   what the set learned from the real images: invert.json / lora.json (seconds) of the style or
                 adapter folder its generation.json names
    training     each cell's metrics: the stages' own seconds (a stage loaded from the stage-1 cache keeps the
                 seconds of the run that trained it) plus evaluation; `seconds.total` where stages are not recorded
"""

from __future__ import annotations

from pathlib import Path

from synthbridge.io import read_json_if_present


def generation_speed(exp_dir: Path, name: str) -> dict | None:
    """How fast the set synthetic/<name> was made here: {'images_per_second', 'seconds', 'images', 'per_class',
    'device', 'source'}; None when the set records no timing."""
    folder = Path(exp_dir) / "synthetic" / name
    if record := read_json_if_present(folder / "generation.json"):
        runs = [r for r in record.get("runs", []) if r.get("generated") and r.get("seconds")]
        if not runs:
            return None
        made, seconds = sum(r["generated"] for r in runs), sum(r["seconds"] for r in runs)
        return {"images_per_second": made / seconds, "seconds": seconds, "images": made,
                "per_class": record.get("per_class"), "device": runs[-1].get("device"), "source": "generation.json"}
    if (record := read_json_if_present(folder / "render.json")) and record.get("rendered_now") and record.get("seconds"):
        return {"images_per_second": record["rendered_now"] / record["seconds"], "seconds": record["seconds"],
                "images": record["rendered_now"], "per_class": (record.get("config") or {}).get("per_class"),
                "device": "cpu", "source": "render.json"}
    return None


def adaptations(exp_dir: Path, name: str) -> dict[str, float | None]:
    """{folder: seconds} of what set synthetic/<name> learned from the real images before it was drawn (its style
    tokens' invert.json, its adapter's lora.json); {} for a set that learned nothing."""
    config = (read_json_if_present(Path(exp_dir) / "synthetic" / name / "generation.json") or {}).get("config") or {}
    found = {}
    for key, info in (("style", "invert.json"), ("lora", "lora.json")):
        if folder := config.get(key):
            record = read_json_if_present(Path(folder) / info)
            found[str(folder)] = record.get("seconds") if record else None
    return found


def training_seconds(record: dict) -> float:
    """What training and evaluating one cell cost: its stages' own seconds plus evaluation (see the module)."""
    metrics = record["metrics"]
    stages = metrics.get("stages") or {}
    if stages and all("seconds" in s for s in stages.values()):
        return sum(s["seconds"] for s in stages.values()) + metrics["seconds"].get("evaluate", 0.0)
    return metrics["seconds"]["total"]


def num_classes(exp_dir: Path, records: list[dict]) -> int | None:
    """The classes of a setting: from a cell's per-class accuracy, else its set's generation.json (None: unknown)."""
    for record in records:
        if per_class := record["metrics"].get("per_class"):
            return len(per_class)
    for name in dict.fromkeys(filter(None, (record["set"] for record in records))):
        generation = read_json_if_present(Path(exp_dir) / "synthetic" / name / "generation.json") or {}
        if generation.get("classes"):
            return len(generation["classes"])
    return None


def option_cost(exp_dir: Path, volume: int | None, records: list[dict]) -> dict:
    """The cost of measuring one way of using synthetic images in this run: generating the images its cells read
    (`volume` per class of each set they read -- one per real subset for a method that learns from the cells'
    shots -- at each set's measured speed), what those sets learned first (style inversion, LoRA), and training
    its cells. Values are seconds, None where the folder does not record them; `total` sums the recorded ones
    and `complete` says whether that is all of them."""
    names = list(dict.fromkeys(filter(None, (record["set"] for record in records))))
    classes = num_classes(exp_dir, records)
    generation: float | None = 0.0
    for name in names if volume else []:
        speed = generation_speed(exp_dir, name)
        generation = (generation + volume * classes / speed["images_per_second"]
                      if generation is not None and speed and classes else None)
    learned = {}
    for name in names:
        learned.update(adaptations(exp_dir, name))
    adaptation = None if None in learned.values() else sum(learned.values())
    training = sum(training_seconds(r) for r in records)
    parts = [generation, adaptation, training]
    return {"generation": generation, "inversion": adaptation, "training": training, "cells": len(records),
            "sets": len(names), "total": sum(p for p in parts if p is not None), "complete": None not in parts}


def fmt_seconds(seconds: float | None) -> str:
    """`95 s`, `14.2 min`, `3.1 h`; `not recorded` for None."""
    if seconds is None:
        return "not recorded"
    if seconds < 600:
        return f"{seconds:.0f} s"
    if seconds < 36_000:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"
