"""`build_report(EXP_DIR)`: report.md, report.html, results.csv and figures/ from the experiment folder alone."""

from __future__ import annotations

import json
from pathlib import Path

from synthbridge.errors import UserError
from synthbridge.experiments.store import read_results
from synthbridge.io import read_json, write_text
from synthbridge.reporting.figures import sample_grid, shots_plot, volume_plot
from synthbridge.reporting.findings import findings
from synthbridge.reporting.html import figure_path, render_html
from synthbridge.reporting.tables import (
    collect,
    gap_table,
    headline_rows,
    headline_table,
    leep_table,
    results_csv,
    steps_table,
    time_table,
    volume_table,
)


def _union_of_grids(cfg: dict) -> dict:
    """The config with each grid key widened to every value any sub-grid uses (order kept)."""
    merged = dict(cfg)
    for key in ("datasets", "models", "arms", "volume_arms"):
        values = list(cfg[key]) if not cfg.get("grids") else []
        for grid in cfg.get("grids") or []:
            values += list(grid.get(key, cfg[key]))
        merged[key] = list(dict.fromkeys(values))
    return merged


def _figures(exp_dir: Path, cfg: dict, table: dict, rows: list[dict]) -> list[tuple[str, bytes]]:
    """(title, PNG) of every figure there is something to draw for."""
    figures = []
    for title, data in (("Accuracy against synthetic volume", volume_plot(cfg, table)),
                        ("Gain over real only against shots", shots_plot(rows))):
        if data:
            figures.append((title, data))
    for dataset in cfg["datasets"]:
        grid = sample_grid(exp_dir, dataset)
        if grid:
            figures.append((f"Samples per class, {dataset} (one row per class): {grid[1]}", grid[0]))
    return figures


def build_report(exp_dir: str | Path) -> dict:
    """Write report.md, report.html (self-contained), results.csv and figures/ into `exp_dir`.

    Returns the page's path, the headline rows, the findings and the number of finished cells."""
    exp_dir = Path(exp_dir)
    if not (exp_dir / "experiment.json").exists():
        raise UserError(f"{str(exp_dir)!r} is not an experiment folder (no experiment.json); run `synthbridge run` first")
    experiment = read_json(exp_dir / "experiment.json")
    cfg = _union_of_grids(experiment["config"])
    records = read_results(exp_dir)
    if not records:
        raise UserError(f"{str(exp_dir)!r} has no finished cells yet; run `synthbridge run` first")
    table = collect(exp_dir)
    rows = headline_rows(cfg, table)
    statements = findings(rows, table, cfg)
    write_text(exp_dir / "results.csv", results_csv(records))

    md = [f"# synthbridge report: {cfg['name']}", "", f"{len(records)} finished cells.", "", "## Findings", ""]
    md += [f"- {line}" for line in statements] or ["- not enough cells for the study's comparisons yet"]
    md += headline_table(cfg, rows)
    md += volume_table(cfg, table)
    md += steps_table(cfg, table)
    md += gap_table([read_json(p) for p in sorted((exp_dir / "analysis").glob("gap-*.json"))])
    md += leep_table(cfg, records)
    md += time_table(records)
    env = experiment.get("environment", {})
    md += ["", "## Environment", "", f"- git revision: {env.get('git_revision')}", f"- platform: {env.get('platform')}",
           f"- device: {env.get('device')}", "- versions: " + ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items()),
           "", "## Config", "", "```json", json.dumps(cfg, indent=2), "```", ""]

    figures = _figures(exp_dir, cfg, table, rows)
    figure_dir = exp_dir / "figures"
    figure_dir.mkdir(exist_ok=True)
    md_figures = []
    for index, (title, data) in enumerate(figures):
        (exp_dir / figure_path(index)).write_bytes(data)
        md_figures.append(f"![{title}]({figure_path(index)})")
    md[md.index("## Findings"):md.index("## Findings")] = ["## Figures", ""] + md_figures + [""]
    markdown = "\n".join(md)
    write_text(exp_dir / "report.md", markdown)
    write_text(exp_dir / "report.html", render_html(markdown, figures, cfg["name"]))
    return {"report": str(exp_dir / "report.html"), "rows": rows, "findings": statements, "cells": len(records)}
