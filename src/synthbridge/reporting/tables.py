"""The results as tables: the nested table of top-1 by setting (`collect`), its views (`headline_rows`,
`volume_runs`), and the markdown tables and results.csv the report is made of.

Each `*_table` returns the report's markdown lines for one section (empty where it has nothing to show).
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict

import numpy as np

from synthbridge.experiments.arms import ARMS
from synthbridge.reporting.stats import fmt_gain, fmt_mean, paired_gain, summarise


def _group_key(key: dict) -> tuple:
    return (key["dataset"], key["model"], key["shots"])


def collect_records(records: list[dict]) -> dict:
    """The store's records by (dataset, model, shots) -> arm -> volume -> synthetic_steps -> {seed: record}."""
    table: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(dict))))
    for record in records:
        key = record["key"]
        table[_group_key(key)][key["arm"]][key["volume"]][key["synthetic_steps"]][key["seed"]] = record
    return table


def collect(records: list[dict]) -> dict:
    """Top-1 by (dataset, model, shots) -> arm -> volume -> synthetic_steps -> {seed: top1}, of a store's records."""
    table: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(dict))))
    for group, arms in collect_records(records).items():
        for arm, volumes in arms.items():
            for volume, steps in volumes.items():
                for length, seeds in steps.items():
                    table[group][arm][volume][length] = {s: r["metrics"]["top1"] for s, r in seeds.items()}
    return table


def setting_name(group: tuple) -> str:
    """'mnist5k / mini_resnet / 2-shot' for a (dataset, model, shots) group (shots None: all)."""
    return f"{group[0]} / {group[1]} / {group[2] or 'all'}-shot"


def volume_runs(arms: dict, arm: str) -> dict[int, dict[int, float]]:
    """{volume: {seed: top1}} of `arm` (default-length synthetic stage), on the seeds every volume has: a
    headline volume run with more seeds than the others would mix the spread of the shots drawn into the trend."""
    by_volume = {v: runs[None] for v, runs in arms.get(arm, {}).items() if v is not None and runs.get(None)}
    seeds = set.intersection(*(set(runs) for runs in by_volume.values())) if by_volume else set()
    if not seeds:
        return {}
    return {v: {s: t for s, t in runs.items() if s in seeds} for v, runs in sorted(by_volume.items())}


def headline_rows(cfg: dict, table: dict) -> list[dict]:
    """One row per setting and arm at the headline volume: mean, std and seeds, and the paired gain vs real."""
    rows = []
    headline = cfg["volumes"][0]
    for group, arms in table.items():
        real = arms.get("real", {}).get(None, {}).get(None, {})
        for arm in cfg["arms"]:
            volume = headline if ARMS.get(arm).uses_synthetic else None
            runs = arms.get(arm, {}).get(volume, {}).get(None, {})
            if not runs:
                continue
            row = {"dataset": group[0], "model": group[1], "shots": group[2], "arm": arm, "label": ARMS.get(arm).label,
                   "volume": volume, **summarise(list(runs.values()))}
            if arm != "real":
                row["vs_real"] = paired_gain(runs, real)
            rows.append(row)
    return rows


def results_csv(records: list[dict]) -> str:
    """results.csv: one row per cell."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["cell", "dataset", "model", "arm", "shots", "volume", "synthetic_steps", "seed", "top1", "num_test",
                     "seconds_total", "leep_pretrained", "leep_after_synthetic"])
    for r in records:
        k, leep = r["key"], r.get("leep", {})
        writer.writerow([r["cell"], k["dataset"], k["model"], k["arm"], k["shots"], k["volume"], k["synthetic_steps"],
                         k["seed"], r["metrics"]["top1"], r["metrics"]["num_test"], round(r["metrics"]["seconds"]["total"], 1),
                         leep.get("pretrained"), leep.get("after_synthetic")])
    return buffer.getvalue()


def headline_table(cfg: dict, rows: list[dict]) -> list[str]:
    md = ["", f"## Top-1 on the real test split (mean ± std over seeds; headline volume {cfg['volumes'][0]} per class)", "",
          "Resolves: half-width of the 95% confidence interval of the paired gain; smaller gains cannot be told from "
          "zero with these seeds.", "",
          "| dataset | model | shots | strategy | top-1 | seeds | gain vs real (* p<0.05) | resolves ± |",
          "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        resolves = (row.get("vs_real") or {}).get("resolves")
        md.append(f"| {row['dataset']} | {row['model']} | {row['shots'] or 'all'} | {row['label']} | "
                  f"{fmt_mean(row)} | {row['n']} | {fmt_gain(row.get('vs_real'))} | "
                  f"{'' if resolves is None else f'{resolves:.2f}'} |")
    return md


def volume_table(cfg: dict, table: dict) -> list[str]:
    md = ["", "## Accuracy against synthetic volume (on the seeds every volume has)", "",
          "| dataset | model | shots | strategy | volume | top-1 | seeds |", "|---|---|---|---|---|---|---|"]
    for group, arms in table.items():
        for arm in cfg.get("volume_arms", []):
            for volume, runs in volume_runs(arms, arm).items():
                s = summarise(list(runs.values()))
                md.append(f"| {group[0]} | {group[1]} | {group[2] or 'all'} | {ARMS.get(arm).label} | {volume} | "
                          f"{fmt_mean(s)} | {s['n']} |")
    return md


def steps_table(cfg: dict, table: dict) -> list[str]:
    steps_rows = [(g, steps, summarise(list(runs.values()))) for g, arms in table.items()
                  for steps, runs in arms.get("bridged", {}).get(cfg["volumes"][0], {}).items() if steps is not None]
    if not steps_rows:
        return []
    md = ["", "## Length of the synthetic stage (bridged++)", "", "| dataset | model | shots | synthetic steps | top-1 |",
          "|---|---|---|---|---|"]
    md += [f"| {g[0]} | {g[1]} | {g[2] or 'all'} | {steps} | {fmt_mean(s)} |" for g, steps, s in steps_rows]
    return md


def gap_table(gaps: list[dict]) -> list[str]:
    """The gap measures (analysis/gap-*.json) of the synthetic sets."""
    if not gaps:
        return []
    from synthbridge.experiments.methods import METHODS

    md = ["", "## Synthetic–real gap (features of the pretrained backbone)", "",
          "| dataset | synthetic set | learned from | FD | KID ×1000 | real-vs-synthetic accuracy (50% = indistinguishable) |",
          "|---|---|---|---|---|---|"]
    nan = float("nan")
    for g in gaps:
        method = g["method"]
        source = (f"{g['shots']} shots per class, seed {g['seed']}" if g.get("shots") is not None
                  else "the train split" if METHODS.get(method).learns_from_real else "–")
        md.append(f"| {g['dataset']} | {METHODS.get(method).label} | {source} | {g.get('fd', nan):.2f} | "
                  f"{1000 * g.get('kid_mean', nan):.2f} | {100 * g.get('real_vs_synthetic_accuracy', nan):.1f}% |")
    return md


def leep_table(cfg: dict, records: list[dict]) -> list[str]:
    leeps = defaultdict(lambda: {"pretrained": None, "after": []})
    for r in records:
        if r.get("leep") and r["key"]["volume"] == cfg["volumes"][0] and r["key"]["synthetic_steps"] is None:
            entry = leeps[(r["key"]["dataset"], r["key"]["model"], r["key"]["arm"])]
            entry["pretrained"] = r["leep"]["pretrained"]
            if r["leep"]["after_synthetic"] is not None:
                entry["after"].append(r["leep"]["after_synthetic"])
    if not leeps:
        return []
    md = ["", "## Transferability to the real data (LEEP on the real train split; higher is better)", "",
          "| dataset | model | strategy | pretrained backbone | after the synthetic stage |", "|---|---|---|---|---|"]
    for (dataset, model, arm), e in leeps.items():
        after = f"{np.mean(e['after']):.3f}" if e["after"] else "–"
        before = "– (no pretrained weights)" if e["pretrained"] is None else e["pretrained"]
        md.append(f"| {dataset} | {model} | {ARMS.get(arm).label} | {before} | {after} |")
    return md


def time_table(records: list[dict]) -> list[str]:
    stage_seconds = defaultdict(list)
    for r in records:
        for stage, seconds in r["metrics"]["seconds"].items():
            stage_seconds[(r["key"]["model"], stage)].append(seconds)
    md = ["", "## Time per stage (seconds, mean over cells)", "", "| model | stage | seconds | cells |", "|---|---|---|---|"]
    md += [f"| {m} | {s} | {np.mean(v):.1f} | {len(v)} |" for (m, s), v in sorted(stage_seconds.items())]
    return md
