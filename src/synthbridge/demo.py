"""`synthbridge demo`: the embedded study end to end, as one command.

Steps (each one a call into its stage): load the preset grid (configs/embedded.yaml, or
configs/embedded-quick.yaml with --quick) -> `run_experiment` (style inversion, generation, training
of every cell; resumable) -> `build_report` -> print the headline table and the report's path.
"""

from __future__ import annotations

import time
from pathlib import Path

from synthbridge.errors import UserError
from synthbridge.experiments import ExperimentConfig, run_experiment
from synthbridge.reporting import build_report

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"


def preset(name: str) -> Path:
    path = CONFIG_DIR / f"{name}.yaml"
    if not path.is_file():
        raise UserError(f"preset {name!r} not found at {path}; run the demo from a source checkout "
                        f"(pip install -e .) or pass a config to `synthbridge run`")
    return path


def run_demo(out: str | Path, quick: bool = False) -> dict:
    began = time.perf_counter()
    cfg = ExperimentConfig.from_yaml(preset("embedded-quick" if quick else "embedded"))
    run_experiment(cfg, out)
    report = build_report(out)
    return {**report, "seconds": time.perf_counter() - began}


def format_table(report: dict) -> str:
    lines = [f"{'dataset':8s} {'model':12s} {'shots':>5s}  {'strategy':26s} {'top-1':>14s}  gain vs real"]
    for row in report["rows"]:
        gain = row.get("vs_real")
        gain_text = "" if not gain else f"{gain['gain']:+6.2f}{' *' if gain['significant'] else ''}"
        lines.append(f"{row['dataset']:8s} {row['model']:12s} {str(row['shots'] or 'all'):>5s}  {row['label']:26s} "
                     f"{row['mean']:6.2f} ± {row['std']:5.2f}  {gain_text}")
    return "\n".join(lines + [""] + report["findings"])
