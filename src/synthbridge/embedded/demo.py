"""`synthbridge demo`: the embedded study end to end, as one command.

Steps (each one a call into `synthbridge.study`): load the preset grid (`embedded`, or `embedded-quick`
with --quick, shipped in synthbridge/configs/) -> the shared sets (style inversion, generation and gap
measures: `synthbridge run --sets-only --cell i/n`, one process per core, each starting with its share)
-> the training cells (`run_experiment`; with several workers, one `synthbridge run --cell i/n` process
each, one torch thread each, sharing the results store) -> `build_report` -> print the headline table,
the time of each phase and the report's path. Rerunning resumes.

The cells are small models on small images, which one process cannot spread over several threads
well: one single-thread process per core keeps every core busy.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from synthbridge.experiments import ExperimentConfig, plan_cells
from synthbridge.experiments.runner import open_experiment, sets_needed
from synthbridge.experiments.schedule import run_workers
from synthbridge.reporting import build_report
from synthbridge.reporting.stats import fmt_mean
from synthbridge.study import run_experiment


def default_workers() -> int:
    """One training process per available core, at most 4 (the grid's cells are small)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(4, cores))


def run_demo(out: str | Path, quick: bool = False, workers: int | None = None, preset: str | None = None) -> dict:
    """A shipped grid (`preset`; default `embedded`, or `embedded-quick` with `quick`) end to end: its sets in
    `workers` processes, then its cells, then the report; with the seconds of each phase."""
    began = time.perf_counter()
    config_path = preset or ("embedded-quick" if quick else "embedded")  # presets shipped as package data
    cfg = ExperimentConfig.from_yaml(config_path)
    workers = workers or default_workers()
    phases, since = {}, began

    def phase(name: str) -> None:  # the seconds since the previous phase ended
        nonlocal since
        now = time.perf_counter()
        phases[name], since = now - since, now

    if workers == 1:
        run_experiment(cfg, out, sets_only=True)
        phase("sets")
        run_experiment(cfg, out)
    else:
        open_experiment(cfg, Path(out))  # a folder holding another grid is refused before any process starts
        grid = plan_cells(cfg)
        run_workers(config_path, out, workers, total=len(sets_needed(grid, grid)), sets_only=True)
        phase("sets")
        run_workers(config_path, out, workers, total=len(grid))
    phase("cells")
    report = build_report(out)
    phase("report")
    return {**report, "seconds": time.perf_counter() - began, "workers": workers, "phases": phases}


def format_phases(phases: dict) -> str:
    return "time per phase: " + ", ".join(f"{name} {seconds:.0f}s" for name, seconds in phases.items())


def format_table(report: dict) -> str:
    wide = max([26] + [len(row["label"]) for row in report["rows"]])  # the label column fits the longest label
    lines = [f"{'dataset':8s} {'model':12s} {'shots':>5s}  {'strategy':{wide}s} {'top-1':>14s}  gain vs real"]
    for row in report["rows"]:
        gain = row.get("vs_real")
        gain_text = "" if not gain else f"{gain['gain']:+6.2f}{' *' if gain['significant'] else ''}"
        lines.append(f"{row['dataset']:8s} {row['model']:12s} {str(row['shots'] or 'all'):>5s}  {row['label']:{wide}s} "
                     f"{fmt_mean(row, '6.2f', '5.2f')}  {gain_text}")
    for entry in report.get("methods") or []:  # a grid that compares ways of fitting the synthetic data
        wide = max([26] + [len(r["label"]) for r in entry["rows"]])
        lines += ["", f"{entry['setting']}: bridged++ on each kind of set ({entry['volume']} per class)",
                  f"{'method':{wide}s} {'top-1':>14s}  {'vs real':>15s}  {'vs plain prompts':>15s}"]
        for r in entry["rows"]:
            half = lambda g: "n/a" if g["resolves"] is None else f"{g['resolves']:4.2f}"  # noqa: E731  (one seed)
            text = lambda g: "" if not g else f"{g['gain']:+6.2f} ± {half(g)}"  # noqa: E731
            lines.append(f"{r['label']:{wide}s} {fmt_mean(r['top1'], '6.2f', '5.2f')}  "
                         f"{text(r['over_real']):>15s}  {text(r['over_plain']):>15s}")
        lines.append(entry["statement"])
    return "\n".join(lines + [""] + report["findings"])
