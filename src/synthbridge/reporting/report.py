"""`build_report(EXP_DIR)`: report.md, report.html, results.csv and figures/ from the experiment folder alone."""

from __future__ import annotations

import json
from pathlib import Path

from synthbridge.experiments.store import read_experiment
from synthbridge.io import read_json, write_text
from synthbridge.reporting.advisor import advise, advisor_section
from synthbridge.reporting.answer import answer_table, answers
from synthbridge.reporting.costs import option_cost
from synthbridge.reporting.figures import per_class_plot, sample_grid, shots_plot, volume_plot
from synthbridge.reporting.findings import findings
from synthbridge.reporting.html import figure_path, render_html
from synthbridge.reporting.methods import gaps_by_method, method_rows, methods_section
from synthbridge.reporting.per_class import effects, per_class_section
from synthbridge.reporting.stats import VERDICT_RULE
from synthbridge.reporting.tables import (
    collect,
    collect_records,
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


def _embed(figures: list[tuple[str, bytes]], title: str, data: bytes | None) -> list[str]:
    """Add a figure (if there is one) and return its markdown line: `![title](figures/figureN.png)`."""
    if not data:
        return []
    figures.append((title, data))
    return ["", f"![{title}]({figure_path(len(figures) - 1)})", ""]


def _sample_grids(exp_dir: Path, cfg: dict, figures: list[tuple[str, bytes]]) -> list[str]:
    md = []
    for dataset in cfg["datasets"]:
        if grid := sample_grid(exp_dir, dataset):
            md += _embed(figures, f"Samples per class, {dataset} (one row per class): {grid[1]}", grid[0])
    return md


def build_report(exp_dir: str | Path) -> dict:
    """Write report.md, report.html (self-contained), results.csv and figures/ into `exp_dir`.

    The page opens with the answer (`answer.answers`), the rule of its verdicts and the study's findings, then the
    volume advisor, the per-class effects, the figures and the tables. Returns the page's path, the headline rows,
    the findings, the answers, the advisor's entries and the number of finished cells."""
    exp_dir = Path(exp_dir)
    experiment, records = read_experiment(exp_dir)
    cfg = _union_of_grids(experiment["config"])
    by_setting = collect_records(records)
    table = collect(records)
    rows = headline_rows(cfg, table)
    statements = findings(rows, table, cfg)
    answer_rows = answers(exp_dir, by_setting)
    advice = advise(exp_dir, by_setting)
    class_effects = effects(exp_dir, by_setting, answer_rows)
    gaps = [read_json(p) for p in sorted((exp_dir / "analysis").glob("gap-*.json"))]
    compared = method_rows(table, cfg, gaps_by_method(gaps), lambda group, arm, volume: option_cost(
        exp_dir, volume, list(by_setting[group][arm][volume][None].values())))
    write_text(exp_dir / "results.csv", results_csv(records))

    figures: list[tuple[str, bytes]] = []
    md = [f"# synthbridge report: {cfg['name']}", "", f"{len(records)} finished cells."]
    md += answer_table(answer_rows)
    md += ["", "### How to read the verdicts", "", VERDICT_RULE, "", "## Findings of the study", ""]
    md += [f"- {line}" for line in statements] or ["- not enough cells for the study's comparisons yet"]
    md += methods_section(compared)
    md += advisor_section(advice)
    md += _embed(figures, "Accuracy against synthetic volume, with the advisor's fit", volume_plot(cfg, table, advice))
    md += per_class_section(class_effects)
    md += _embed(figures, "Per-class gain over real only, coloured by generation fidelity", per_class_plot(class_effects))
    md += ["", "## Figures", ""]
    md += _embed(figures, "Gain over real only against shots", shots_plot(rows))
    md += _sample_grids(exp_dir, cfg, figures)
    md += headline_table(cfg, rows)
    md += volume_table(cfg, table)
    md += steps_table(cfg, table)
    md += gap_table(gaps)
    md += leep_table(cfg, records)
    md += time_table(records)
    env = experiment.get("environment", {})
    md += ["", "## Environment", "", f"- git revision: {env.get('git_revision')}", f"- platform: {env.get('platform')}",
           f"- device: {env.get('device')}", "- versions: " + ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items()),
           "", "## Config", "", "```json", json.dumps(cfg, indent=2), "```", ""]

    (exp_dir / "figures").mkdir(exist_ok=True)
    for index, (_, data) in enumerate(figures):
        (exp_dir / figure_path(index)).write_bytes(data)
    markdown = "\n".join(md)
    write_text(exp_dir / "report.md", markdown)
    write_text(exp_dir / "report.html", render_html(markdown, figures, cfg["name"]))
    return {"report": str(exp_dir / "report.html"), "rows": rows, "findings": statements, "answers": answer_rows,
            "advice": advice, "methods": compared, "cells": len(records)}
