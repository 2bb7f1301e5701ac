"""`synthbridge demo`: a short showcase of the embedded world, end to end on a 2-core CPU.

Steps: render synthetic digits -> train real-only from the pretrained backbone and from scratch ->
bridged transfer on the rendered digits -> print a table (mean +- std over seeds) and write
DIR/demo.json.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import replace
from pathlib import Path

from synthbridge.io import write_json
from synthbridge.render import RenderConfig, render_folder
from synthbridge.training import StageConfig, TrainConfig, train

ARMS = {
    "real (scratch)": dict(strategy="real", pretrained=False),
    "real (pretrained)": dict(strategy="real"),
    "mixed (pooled)": dict(strategy="mixed"),
    "bridged": dict(strategy="bridged"),
}


def run_demo(out: str | Path, seeds: int = 3, shots: int = 10, quick: bool = False) -> dict:
    out = Path(out)
    began = time.perf_counter()
    # 1. synthetic images: the font baseline (the diffusion generator replaces it in the full study)
    synthetic = out / "synthetic" / "render"
    render_folder(RenderConfig(dataset="mnist5k", per_class=50 if quick else 200, out=str(synthetic)))
    # 2. one training run per arm and seed; finished runs are reused
    steps = 60 if quick else 200
    base = TrainConfig(dataset="mnist5k", model="mini_resnet", shots=shots, synthetic=str(synthetic),
                       real=StageConfig(steps=steps), synthetic_stage=StageConfig(steps=steps))
    results: dict[str, list[float]] = {}
    for arm, overrides in ARMS.items():
        for seed in range(1 if quick else seeds):
            cfg = replace(base, seed=seed, **overrides)
            run_dir = out / "runs" / f"{arm.split()[0]}-{'scratch' if not cfg.pretrained else 'pre'}-seed{seed}"
            metrics_file = run_dir / "metrics.json"
            if metrics_file.exists():
                from synthbridge.io import read_json

                top1 = read_json(metrics_file)["top1"]
            else:
                top1 = train(cfg, run_dir, overwrite=True)["top1"]
            results.setdefault(arm, []).append(top1)
    # 3. the table
    rows = []
    for arm, values in results.items():
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        rows.append({"arm": arm, "mean": round(statistics.mean(values), 2), "std": round(std, 2), "runs": values})
    summary = {"dataset": "mnist5k", "shots": shots, "model": "mini_resnet", "rows": rows,
               "seconds": round(time.perf_counter() - began, 1)}
    write_json(out / "demo.json", summary)
    return summary


def format_table(summary: dict) -> str:
    lines = [f"mnist5k, {summary['shots']}-shot, {summary['model']} (top-1 % on 4,000 real test images)",
             f"{'strategy':22s} {'mean':>6s} {'std':>5s}  runs"]
    for row in summary["rows"]:
        lines.append(f"{row['arm']:22s} {row['mean']:6.2f} {row['std']:5.2f}  {len(row['runs'])}")
    lines.append(f"wall time {summary['seconds']:.0f}s")
    return "\n".join(lines)
