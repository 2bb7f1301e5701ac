"""Stage: reporting. `build_report(EXP_DIR)` is a pure function of the experiment folder.

In: experiment.json, results.jsonl, analysis/*.json and the synthetic folders. Out: report.md,
report.html (self-contained: plots and sample grids embedded as PNG data), results.csv. No model runs
here, so a report can be rebuilt (and tested) at any time.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import statistics
from collections import defaultdict
from pathlib import Path

import numpy as np

from synthbridge.errors import UserError
from synthbridge.experiments.arms import ARMS
from synthbridge.experiments.store import read_results
from synthbridge.io import read_json, write_text

SIGNIFICANCE = 0.05
# The gain a setting's seeds should resolve (95% CI half-width of the paired gain) for its verdict to count as an
# answer rather than noise: the 2 points the embedded study is sized for. The findings say, next to the count over
# all settings, how the settings that resolve it came out; the verdict itself is over all settings.
RESOLUTION_POINTS = 2.0


# 1. numbers ------------------------------------------------------------------------------------------------------

def _group_key(key: dict) -> tuple:
    return (key["dataset"], key["model"], key["shots"])


def summarise(values: list[float]) -> dict:
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0, "n": len(values)}


def paired_gain(arm: dict[int, float], real: dict[int, float]) -> dict | None:
    """Mean gain over `real` on the seeds both have, with a paired t-test (one-sided direction in the sign).

    `resolves`: the half-width of the 95% confidence interval of the paired gain (t quantile x std / sqrt(n)):
    a true difference this large or larger is what these seeds can tell from zero; None below 2 seeds.
    """
    seeds = sorted(set(arm) & set(real))
    if not seeds:
        return None
    diffs = [arm[s] - real[s] for s in seeds]
    p_value = resolves = None
    if len(diffs) > 1:
        from scipy import stats

        sd = statistics.stdev(diffs)
        resolves = float(stats.t.ppf(1 - SIGNIFICANCE / 2, len(diffs) - 1) * sd / len(diffs) ** 0.5)
        if sd > 0:
            p_value = float(stats.ttest_1samp(diffs, 0.0).pvalue)
        else:
            p_value = 0.0 if diffs[0] != 0 else 1.0
    return {"gain": statistics.mean(diffs), "p": p_value, "n": len(diffs), "resolves": resolves,
            "significant": p_value is not None and p_value < SIGNIFICANCE}


def volume_runs(arms: dict, arm: str) -> dict[int, dict[int, float]]:
    """{volume: {seed: top1}} of `arm` (default-length synthetic stage), on the seeds every volume has: a
    headline volume run with more seeds than the others would mix the spread of the shots drawn into the trend."""
    by_volume = {v: runs[None] for v, runs in arms.get(arm, {}).items() if v is not None and runs.get(None)}
    seeds = set.intersection(*(set(runs) for runs in by_volume.values())) if by_volume else set()
    if not seeds:
        return {}
    return {v: {s: t for s, t in runs.items() if s in seeds} for v, runs in sorted(by_volume.items())}


def collect(exp_dir: Path) -> dict:
    """Top-1 by (dataset, model, shots) -> arm -> volume -> synthetic_steps -> {seed: top1}."""
    table: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(lambda: defaultdict(dict))))
    for record in read_results(exp_dir):
        key = record["key"]
        table[_group_key(key)][key["arm"]][key["volume"]][key["synthetic_steps"]][key["seed"]] = record["metrics"]["top1"]
    return table


def headline_rows(cfg: dict, table: dict) -> list[dict]:
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


def findings(rows: list[dict], table: dict, cfg: dict) -> list[str]:
    """Plain statements of which of the study's findings hold in this run (computed, never tuned)."""
    def compare(arm: str, base: str) -> tuple[int, int, int, int, int]:
        """(better, worse, settings) over all settings, then (better, settings) over those resolving 2 points."""
        better = worse = total = resolved = resolved_better = 0
        for group, arms in table.items():
            volume = cfg["volumes"][0]
            a = arms.get(arm, {}).get(volume, {}).get(None, {})
            b_volume = volume if ARMS.get(base).uses_synthetic else None
            b = arms.get(base, {}).get(b_volume, {}).get(None, {})
            gain = paired_gain(a, b)
            if gain is None:
                continue
            total += 1
            is_better = gain["gain"] > 0 and gain["significant"]
            better += is_better
            worse += gain["gain"] < 0 and gain["significant"]
            if gain["resolves"] is not None and gain["resolves"] <= RESOLUTION_POINTS:
                resolved += 1
                resolved_better += is_better
        return better, worse, total, resolved_better, resolved

    lines = []
    for arm, base, claim in (("mixed", "real", "Naive mixing is not reliably better than real only"),
                             ("bridged", "real", "Bridged transfer beats real only"),
                             ("bridged_dsi", "bridged", "Dataset style inversion adds to bridged transfer")):
        better, worse, total, resolved_better, resolved = compare(arm, base)
        if not total:
            continue
        if arm == "mixed":
            holds = better < total / 2
            detail = f"mixing was significantly better in {better} and significantly worse in {worse} of {total} settings"
        else:
            holds = better > total / 2
            detail = f"significantly better in {better}, significantly worse in {worse} of {total} settings"
        if not resolved:  # too few seeds anywhere to tell a 2-point difference from zero
            detail += f"; no setting's seeds resolve {RESOLUTION_POINTS:g} points"
        elif resolved < total:
            detail += (f"; of the {resolved} settings whose seeds resolve {RESOLUTION_POINTS:g} points, "
                       f"{ARMS.get(arm).label} was significantly better in {resolved_better}")
        lines.append(f"{claim}: {'HOLDS' if holds else 'DOES NOT HOLD'} here ({detail}; paired t-test over seeds, p < {SIGNIFICANCE}).")
    # volume: does accuracy keep growing with the number of synthetic images?
    trends = []
    for group, arms in table.items():
        for arm in cfg.get("volume_arms", []):
            by_volume = volume_runs(arms, arm)
            points = sorted((v, statistics.mean(seeds.values())) for v, seeds in by_volume.items())
            if len(points) >= 3:
                from scipy import stats

                rho = stats.spearmanr([p[0] for p in points], [p[1] for p in points]).statistic
                # a trend in the means is not enough: the largest volume must beat the smallest, paired over seeds
                gain = paired_gain(by_volume[points[-1][0]], by_volume[points[0][0]])
                trends.append((group, arm, rho, points[-1][1] >= max(p[1] for p in points),
                               bool(gain and gain["gain"] > 0 and gain["significant"])))
    if trends:
        rising = sum(1 for t in trends if t[2] > 0.5 and t[3] and t[4])
        lines.append(f"Gains keep growing with synthetic volume: {'HOLDS' if rising > len(trends) / 2 else 'DOES NOT HOLD'} here "
                     f"(accuracy rises with volume up to the largest one, Spearman rho > 0.5, and the largest volume beats "
                     f"the smallest, paired t-test over seeds, p < {SIGNIFICANCE}, in {rising} of {len(trends)} settings).")
    return lines


# 2. figures ------------------------------------------------------------------------------------------------------

def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    import matplotlib.pyplot as plt

    plt.close(figure)
    return buffer.getvalue()


def volume_plot(cfg: dict, table: dict) -> bytes | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [g for g in table if any(len(table[g].get(a, {})) > 1 for a in cfg.get("volume_arms", []))]
    if not groups:
        return None
    figure, axes = plt.subplots(1, len(groups), figsize=(4.2 * len(groups), 3.4), squeeze=False)
    for ax, group in zip(axes[0], groups):
        arms = table[group]
        seeds = set()
        for arm in cfg.get("volume_arms", []):
            by_volume = volume_runs(arms, arm)
            points = [(v, list(runs.values())) for v, runs in by_volume.items()]
            seeds |= {s for runs in by_volume.values() for s in runs}
            if points:
                xs = [p[0] for p in points]
                ax.errorbar(xs, [np.mean(p[1]) for p in points], yerr=[np.std(p[1]) for p in points], marker="o",
                            capsize=3, label=ARMS.get(arm).label)
        real = [t for s, t in arms.get("real", {}).get(None, {}).get(None, {}).items() if s in seeds]
        if real:
            ax.axhline(np.mean(real), color="gray", linestyle="--", label="real only")
        ax.set_xscale("log")
        volumes = sorted({v for arm in cfg.get("volume_arms", []) for v in arms.get(arm, {}) if v})
        ax.set_xticks(volumes, [str(v) for v in volumes])  # the volumes run, not log-scale minor labels
        ax.minorticks_off()
        ax.set_title(f"{group[0]} / {group[1]} / {group[2]}-shot", fontsize=9)
        ax.set_xlabel("synthetic images per class")
        ax.set_ylabel("top-1 (%)")
        ax.legend(fontsize=7)
    return _png(figure)


def shots_plot(rows: list[dict]) -> bytes | None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = defaultdict(list)
    for row in rows:
        if row.get("vs_real") and row["shots"] is not None:
            series[(row["dataset"], row["model"], row["label"])].append((row["shots"], row["vs_real"]["gain"]))
    series = {k: sorted(v) for k, v in series.items() if len(v) > 1}
    if not series:
        return None
    figure, ax = plt.subplots(figsize=(6, 3.6))
    for (dataset, model, label), points in series.items():
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=f"{label} ({dataset}, {model})")
    ax.axhline(0, color="gray", linewidth=0.8)
    ax.set_xscale("log", base=2)
    shots = sorted({p[0] for points in series.values() for p in points})
    ax.set_xticks(shots, [str(k) for k in shots])
    ax.minorticks_off()
    ax.set_xlabel("real images per class (shots)")
    ax.set_ylabel("gain over real only (points)")
    ax.legend(fontsize=6)
    return _png(figure)


def sample_grid(exp_dir: Path, dataset: str, per_source: int = 6) -> tuple[bytes, str] | None:
    """One row per class: real images | synthetic | synthetic with the style token."""
    from PIL import Image

    from synthbridge.data import load_dataset, load_synthetic
    from synthbridge.experiments import set_name

    try:
        bundle = load_dataset(dataset)
    except UserError:
        return None
    sources = [("real", bundle.train)]
    for style, title in ((False, "synthetic"), (True, "synthetic + DSI")):
        folder = exp_dir / "synthetic" / set_name(dataset, style)
        if (folder / "manifest.jsonl").exists():
            try:
                sources.append((title, load_synthetic(folder, bundle.classes)))
            except UserError:
                pass
    if len(sources) == 1:
        return None
    cell, gap = 40, 8
    classes = bundle.classes[:20]
    width = len(sources) * per_source * cell + (len(sources) - 1) * gap
    canvas = Image.new("RGB", (width, len(classes) * cell), "white")
    for s, (_, images) in enumerate(sources):
        for label in range(len(classes)):
            members = [i for i, t in enumerate(images.targets) if t == label][:per_source]
            for j, index in enumerate(members):
                tile = images.load(index).convert("RGB").resize((cell - 2, cell - 2), Image.NEAREST)
                canvas.paste(tile, (s * (per_source * cell + gap) + j * cell, label * cell))
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return buffer.getvalue(), " | ".join(title for title, _ in sources)


# 3. documents ----------------------------------------------------------------------------------------------------

def _fmt_gain(gain: dict | None) -> str:
    if not gain:
        return ""
    p = "" if gain["p"] is None else f", p={gain['p']:.3f}"
    return f"{gain['gain']:+.2f}{' *' if gain['significant'] else ''}{p}"


def _union_of_grids(cfg: dict) -> dict:
    """The config with each grid key widened to every value any sub-grid uses (order kept)."""
    merged = dict(cfg)
    for key in ("datasets", "models", "arms", "volume_arms"):
        values = list(cfg[key]) if not cfg.get("grids") else []
        for grid in cfg.get("grids") or []:
            values += list(grid.get(key, cfg[key]))
        merged[key] = list(dict.fromkeys(values))
    return merged


def build_report(exp_dir: str | Path) -> dict:
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

    # results.csv: one row per cell
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["cell", "dataset", "model", "arm", "shots", "volume", "synthetic_steps", "seed", "top1", "num_test",
                     "seconds_total", "leep_pretrained", "leep_after_synthetic"])
    for r in records:
        k, leep = r["key"], r.get("leep", {})
        writer.writerow([r["cell"], k["dataset"], k["model"], k["arm"], k["shots"], k["volume"], k["synthetic_steps"],
                         k["seed"], r["metrics"]["top1"], r["metrics"]["num_test"], round(r["metrics"]["seconds"]["total"], 1),
                         leep.get("pretrained"), leep.get("after_synthetic")])
    write_text(exp_dir / "results.csv", buffer.getvalue())

    # markdown tables
    md = [f"# synthbridge report: {cfg['name']}", "", f"{len(records)} finished cells.", "", "## Findings", ""]
    md += [f"- {line}" for line in statements] or ["- not enough cells for the study's comparisons yet"]
    md += ["", f"## Top-1 on the real test split (mean ± std over seeds; headline volume {cfg['volumes'][0]} per class)", "",
           "Resolves: half-width of the 95% confidence interval of the paired gain; smaller gains cannot be told from "
           "zero with these seeds.", "",
           "| dataset | model | shots | strategy | top-1 | seeds | gain vs real (* p<0.05) | resolves ± |",
           "|---|---|---|---|---|---|---|---|"]
    for row in rows:
        resolves = (row.get("vs_real") or {}).get("resolves")
        md.append(f"| {row['dataset']} | {row['model']} | {row['shots'] or 'all'} | {row['label']} | "
                  f"{row['mean']:.2f} ± {row['std']:.2f} | {row['n']} | {_fmt_gain(row.get('vs_real'))} | "
                  f"{'' if resolves is None else f'{resolves:.2f}'} |")
    volume_md = ["", "## Accuracy against synthetic volume (on the seeds every volume has)", "",
                 "| dataset | model | shots | strategy | volume | top-1 | seeds |", "|---|---|---|---|---|---|---|"]
    for group, arms in table.items():
        for arm in cfg.get("volume_arms", []):
            for volume, runs in volume_runs(arms, arm).items():
                s = summarise(list(runs.values()))
                volume_md.append(f"| {group[0]} | {group[1]} | {group[2] or 'all'} | {ARMS.get(arm).label} | {volume} | "
                                 f"{s['mean']:.2f} ± {s['std']:.2f} | {s['n']} |")
    md += volume_md
    steps_rows = [(g, steps, summarise(list(runs.values()))) for g, arms in table.items()
                  for steps, runs in arms.get("bridged", {}).get(cfg["volumes"][0], {}).items() if steps is not None]
    if steps_rows:
        md += ["", "## Length of the synthetic stage (bridged++)", "", "| dataset | model | shots | synthetic steps | top-1 |",
               "|---|---|---|---|---|"]
        md += [f"| {g[0]} | {g[1]} | {g[2] or 'all'} | {steps} | {s['mean']:.2f} ± {s['std']:.2f} |" for g, steps, s in steps_rows]
    gaps = [read_json(p) for p in sorted((exp_dir / "analysis").glob("gap-*.json"))]
    if gaps:
        md += ["", "## Synthetic–real gap (features of the pretrained backbone)", "",
               "| dataset | synthetic set | FD | KID ×1000 | real-vs-synthetic accuracy (50% = indistinguishable) |", "|---|---|---|---|---|"]
        for g in gaps:
            md.append(f"| {g['dataset']} | {'with style token' if g['style'] else 'plain prompts'} | {g.get('fd', float('nan')):.2f} | "
                      f"{1000 * g.get('kid_mean', float('nan')):.2f} | {100 * g.get('real_vs_synthetic_accuracy', float('nan')):.1f}% |")
    leeps = defaultdict(lambda: {"pretrained": None, "after": []})
    for r in records:
        if r.get("leep") and r["key"]["volume"] == cfg["volumes"][0] and r["key"]["synthetic_steps"] is None:
            entry = leeps[(r["key"]["dataset"], r["key"]["model"], r["key"]["arm"])]
            entry["pretrained"] = r["leep"]["pretrained"]
            if r["leep"]["after_synthetic"] is not None:
                entry["after"].append(r["leep"]["after_synthetic"])
    if leeps:
        md += ["", "## Transferability to the real data (LEEP on the real train split; higher is better)", "",
               "| dataset | model | strategy | pretrained backbone | after the synthetic stage |", "|---|---|---|---|---|"]
        for (dataset, model, arm), e in leeps.items():
            after = f"{np.mean(e['after']):.3f}" if e["after"] else "–"
            md.append(f"| {dataset} | {model} | {ARMS.get(arm).label} | {e['pretrained']} | {after} |")
    stage_seconds = defaultdict(list)
    for r in records:
        for stage, seconds in r["metrics"]["seconds"].items():
            stage_seconds[(r["key"]["model"], stage)].append(seconds)
    md += ["", "## Time per stage (seconds, mean over cells)", "", "| model | stage | seconds | cells |", "|---|---|---|---|"]
    md += [f"| {m} | {s} | {np.mean(v):.1f} | {len(v)} |" for (m, s), v in sorted(stage_seconds.items())]
    env = experiment.get("environment", {})
    md += ["", "## Environment", "", f"- git revision: {env.get('git_revision')}", f"- platform: {env.get('platform')}",
           f"- device: {env.get('device')}", "- versions: " + ", ".join(f"{k} {v}" for k, v in env.get("versions", {}).items()),
           "", "## Config", "", "```json", __import__("json").dumps(cfg, indent=2), "```", ""]

    # figures
    figures = []
    for title, data in (("Accuracy against synthetic volume", volume_plot(cfg, table)),
                        ("Gain over real only against shots", shots_plot(rows))):
        if data:
            figures.append((title, data))
    for dataset in cfg["datasets"]:
        grid = sample_grid(exp_dir, dataset)
        if grid:
            figures.append((f"Samples per class, {dataset} (one row per class): {grid[1]}", grid[0]))
    figure_dir = exp_dir / "figures"
    figure_dir.mkdir(exist_ok=True)
    md_figures = []
    for index, (title, data) in enumerate(figures):
        name = f"figure{index + 1}.png"
        (figure_dir / name).write_bytes(data)
        md_figures.append(f"![{title}](figures/{name})")
    md[md.index("## Findings"):md.index("## Findings")] = ["## Figures", ""] + md_figures + [""]
    markdown = "\n".join(md)
    write_text(exp_dir / "report.md", markdown)
    write_text(exp_dir / "report.html", _html(markdown, figures, cfg["name"]))
    return {"report": str(exp_dir / "report.html"), "rows": rows, "findings": statements, "cells": len(records)}


def _html(markdown: str, figures: list[tuple[str, bytes]], name: str) -> str:
    """A self-contained page: markdown tables rendered as HTML tables, figures as data URIs."""
    body, table_lines, in_code = [], [], False
    images = {f"figures/figure{i + 1}.png": data for i, (_, data) in enumerate(figures)}

    def flush_table():
        if not table_lines:
            return
        cells = [[c.strip() for c in line.strip("|").split("|")] for line in table_lines if not set(line) <= set("|-")]
        head, *rest = cells
        body.append("<table><tr>" + "".join(f"<th>{html.escape(c)}</th>" for c in head) + "</tr>"
                    + "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rest) + "</table>")
        table_lines.clear()

    for line in markdown.splitlines():
        if line.startswith("```"):
            flush_table()
            body.append("</pre>" if in_code else "<pre>")
            in_code = not in_code
            continue
        if in_code:
            body.append(html.escape(line))
            continue
        if line.startswith("|"):
            table_lines.append(line)
            continue
        flush_table()
        if line.startswith("# "):
            body.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("- "):
            body.append(f"<li>{html.escape(line[2:])}</li>")
        elif line.startswith("!["):
            title, path = line[2:].split("](")
            data = base64.b64encode(images[path.rstrip(")")]).decode()
            body.append(f"<figure><img src=\"data:image/png;base64,{data}\" alt=\"{html.escape(title)}\">"
                        f"<figcaption>{html.escape(title)}</figcaption></figure>")
        elif line.strip():
            body.append(f"<p>{html.escape(line)}</p>")
    flush_table()
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}table{border-collapse:collapse;"
             "margin:1em 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px}th{background:#f2f2f2}"
             "img{max-width:100%;border:1px solid #ddd}figure{margin:1em 0}figcaption{font-size:12px;color:#555}"
             "pre{background:#f7f7f7;padding:1em;font-size:11px;overflow:auto}")
    return (f"<!doctype html><html><head><meta charset=\"utf-8\"><title>synthbridge report: {html.escape(name)}</title>"
            f"<style>{style}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
