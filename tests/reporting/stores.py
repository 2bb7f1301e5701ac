"""Hand-made results stores for the reporting tests: experiment.json, the cells' records (stored by
experiments.store.append_result, as a grid stores them),
and the records the sets leave (generation.json, invert.json, analysis/)."""

from __future__ import annotations

import json
import math
from pathlib import Path

from synthbridge.io import FORMAT

CLASSES = [str(d) for d in range(10)]


def record(arm: str, seed: int, top1: float, volume: int | None = None, shots: int = 2, dataset: str = "mnist5k",
           model: str = "mini_resnet", steps: int | None = None, per_class: dict | None = None,
           seconds: float = 2.5) -> dict:
    """One cell's record."""
    key = {"dataset": dataset, "model": model, "arm": arm, "shots": shots, "seed": seed, "volume": volume,
           "synthetic_steps": steps}
    metrics = {"top1": top1, "num_test": 100, "per_class": per_class if per_class is not None else {c: top1 for c in CLASSES},
               "seconds": {"real": seconds - 0.5, "evaluate": 0.5, "total": seconds}}
    return {"cell": f"{dataset}-{model}-{arm}-{shots}-{volume}-{steps}-{seed}", "key": key, "arm_label": arm,
            "set": cell_set(dataset, arm), "metrics": metrics}


def cell_set(dataset: str, arm: str) -> str | None:
    """The set a hand-made cell reads, as the runner records it: its dataset's set of its arm's method (plain prompts
    learn nothing from real images: one set per dataset)."""
    from synthbridge.experiments.arms import ARMS
    from synthbridge.experiments.sets import set_name

    return set_name(dataset, ARMS.get(arm).method) if ARMS.get(arm).uses_synthetic else None


def write_store(root: Path, records: list[dict], volumes: list[int], arms: list[str] | None = None,
                seeds: list[int] | None = None, name: str = "store") -> Path:
    """An experiment folder holding `records`, its config naming `volumes` (the first is the headline)."""
    root.mkdir(parents=True, exist_ok=True)
    config = {"name": name, "datasets": sorted({r["key"]["dataset"] for r in records}),
              "models": sorted({r["key"]["model"] for r in records}), "arms": arms or ["real", "bridged"],
              "volumes": volumes, "volume_arms": ["bridged"], "synthetic_steps": [], "shots": [2],
              "seeds": seeds or sorted({r["key"]["seed"] for r in records}), "grids": []}
    (root / "experiment.json").write_text(json.dumps({"format": FORMAT, "config": config,
                                                      "environment": {"device": "cpu"}}))
    store_records(root, records)
    return root


def store_records(root: Path, records: list[dict]) -> None:
    """The records in the experiment folder's store, in order, as the runner stores finished cells."""
    from synthbridge.experiments.store import append_result

    for position, stored in enumerate(records):  # finished in this order (the store sorts by finished_at)
        assert append_result(root, {"finished_at": f"2026-01-01T00:00:{position:06d}", **stored}), stored["cell"]


def wobble(seed: int, index: int) -> float:
    """A fixed pattern in -1..1 per (seed, volume index): what a seed does at one volume beyond its shared draw."""
    return ((seed * 7 + index * 3) % 5 - 2) / 2


def sweep_records(curve, volumes: list[int], noise: list[float], real: float = 70.0, arm: str = "bridged",
                  jitter: float = 0.0, **key) -> list[dict]:
    """Real-only cells and `arm` cells at each volume: top-1 = real + seed noise + curve(volume) + jitter x wobble;
    the seed's noise is shared by every volume (as a seed's draw of shots is), so the volumes are paired."""
    lines = []
    for seed, offset in enumerate(noise):
        lines.append(record("real", seed, real + offset, **key))
        lines += [record(arm, seed, real + offset + curve(v) + jitter * wobble(seed, k), volume=v, **key)
                  for k, v in enumerate(volumes)]
    return lines


def linear(volume: int) -> float:
    """+2 points per doubling from 25 per class."""
    return 2.0 * math.log2(volume / 25)


def saturating(volume: int) -> float:
    """+4 from 25 to 50, +2 to 100, then nothing: 6 points at 100, 200 and 400."""
    return {25: 0.0, 50: 4.0, 100: 6.0, 200: 6.0, 400: 6.0}[volume]


def flat(volume: int) -> float:
    return 3.0


def write_generation(root: Path, folder: str, per_class: int, generated: int, seconds: float, device: str = "cpu",
                     **extra) -> Path:
    """A set's generation.json as `generate` leaves it (only the fields the report reads, plus `extra`)."""
    out = root / "synthetic" / folder
    out.mkdir(parents=True, exist_ok=True)
    run = {"generated": generated, "seconds": seconds, "device": device, "processes": 1}
    (out / "generation.json").write_text(json.dumps({"status": "complete", "per_class": per_class, "classes": CLASSES,
                                                     "runs": [run], **extra}))
    return out


def write_inversion(root: Path, dataset: str, seconds: float) -> None:
    (root / "styles" / dataset).mkdir(parents=True, exist_ok=True)
    (root / "styles" / dataset / "invert.json").write_text(json.dumps({"token": "<style>", "seconds": seconds}))
