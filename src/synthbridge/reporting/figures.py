"""The report's figures, each as PNG bytes (None where there is nothing to plot): accuracy against
synthetic volume (with the advisor's fit), gain over real only against shots, per-class gain coloured by
generation fidelity, and sample grids (real | one panel per method of fitting the synthetic set).

matplotlib (Agg), the datasets and the grid helper (torch) are imported when a figure is drawn, not with the package.
"""

from __future__ import annotations

import io
import re
from collections import defaultdict
from pathlib import Path

import numpy as np

from synthbridge.errors import UserError
from synthbridge.experiments.arms import ARMS
from synthbridge.reporting.stats import interval
from synthbridge.reporting.tables import volume_runs

GRID_CELL = 40  # pixels per image in the sample grids
GRID_CLASSES = 20  # rows at most: the first classes of a large dataset


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(figure)
    return buffer.getvalue()


def _band(values: list[float]) -> tuple[float, float, float]:
    """(mean, low, high): the 95% t interval of the mean over seeds (the mean itself for one seed)."""
    mean = float(np.mean(values))
    ci = interval(values)
    return (mean, mean, mean) if ci is None else (mean, ci[0], ci[1])


def _advisor_fit(ax, entry: dict, colour) -> None:
    """The advisor's log-linear fit over the sweep and its prediction at the next doubling (with its interval)."""
    xs = np.array(entry["volumes"] + [entry["next_volume"]], dtype=float)
    fit = entry["fit"]
    ax.plot(xs, fit["intercept"] + fit["slope"] * np.log2(xs), color=colour, linestyle=":", linewidth=1.2,
            label=f"fit: {entry['gain_per_doubling']:+.2f} points per doubling")
    ci = entry["predicted_ci"]
    yerr = None if ci is None else [[entry["predicted"] - ci[0]], [ci[1] - entry["predicted"]]]
    ax.errorbar([entry["next_volume"]], [entry["predicted"]], yerr=yerr, marker="D", color=colour, capsize=3,
                markerfacecolor="white", linestyle="none", label=f"predicted at {entry['next_volume']}")


def volume_plot(cfg: dict, table: dict, advice: list[dict] | None = None) -> bytes | None:
    """Top-1 against synthetic images per class, one panel per setting: mean over seeds with its 95% interval as
    a band, the advisor's fit and prediction (`advice`, from `advisor.advise`), real only as a dashed line."""
    plt = _pyplot()
    groups = [g for g in table if any(len(table[g].get(a, {})) > 1 for a in cfg.get("volume_arms", []))]
    if not groups:
        return None
    fits = {(e["dataset"], e["model"], e["shots"], e["arm"]): e for e in advice or [] if not e["refused"]}
    figure, axes = plt.subplots(1, len(groups), figsize=(4.6 * len(groups), 3.6), squeeze=False)
    for ax, group in zip(axes[0], groups):
        arms = table[group]
        seeds, ticks = set(), set()
        for arm in cfg.get("volume_arms", []):
            by_volume = volume_runs(arms, arm)
            if not by_volume:
                continue
            seeds |= {s for runs in by_volume.values() for s in runs}
            xs = list(by_volume)
            bands = [_band(list(runs.values())) for runs in by_volume.values()]
            line = ax.plot(xs, [b[0] for b in bands], marker="o", label=f"{ARMS.get(arm).label} (mean, 95% CI)")[0]
            ax.fill_between(xs, [b[1] for b in bands], [b[2] for b in bands], color=line.get_color(), alpha=0.2)
            ticks |= set(xs)
            if entry := fits.get((*group, arm)):
                _advisor_fit(ax, entry, line.get_color())
                ticks.add(entry["next_volume"])
        real = [t for s, t in arms.get("real", {}).get(None, {}).get(None, {}).items() if s in seeds]
        if real:
            ax.axhline(np.mean(real), color="gray", linestyle="--", label="real only")
        ax.set_xscale("log", base=2)
        ax.set_xticks(sorted(ticks), [str(v) for v in sorted(ticks)])  # the volumes run, not log-scale minor labels
        ax.minorticks_off()
        ax.set_title(f"{group[0]} / {group[1]} / {group[2] or 'all'}-shot", fontsize=9)
        ax.set_xlabel("synthetic images per class (log scale)")
        ax.set_ylabel("top-1 on the real test split (%)")
        ax.legend(fontsize=7)
    return _png(figure)


def _half(resolves: float | None) -> float:
    """An error bar's half-width: NaN (no bar drawn) where one seed leaves the interval unknown."""
    return float("nan") if resolves is None else resolves


def shots_plot(rows: list[dict]) -> bytes | None:
    """Each arm's gain over real only against the number of real images per class, with the 95% interval of the
    paired gain as error bars."""
    series = defaultdict(list)
    for row in rows:
        if row.get("vs_real") and row["shots"] is not None:
            series[(row["dataset"], row["model"], row["label"])].append(
                (row["shots"], row["vs_real"]["gain"], _half(row["vs_real"]["resolves"])))
    series = {k: sorted(v) for k, v in series.items() if len(v) > 1}
    if not series:
        return None
    figure, ax = _pyplot().subplots(figsize=(6.4, 3.8))
    for (dataset, model, label), points in series.items():
        ax.errorbar([p[0] for p in points], [p[1] for p in points], yerr=[p[2] for p in points], marker="o",
                    capsize=3, label=f"{label} ({dataset}, {model})")
    ax.axhline(0, color="gray", linewidth=0.8)
    ax.set_xscale("log", base=2)
    shots = sorted({p[0] for points in series.values() for p in points})
    ax.set_xticks(shots, [str(k) for k in shots])
    ax.minorticks_off()
    ax.set_xlabel("real images per class (shots, log scale)")
    ax.set_ylabel("gain over real only (points, 95% CI)")
    ax.legend(fontsize=6)
    return _png(figure)


def per_class_plot(found: list[dict]) -> bytes | None:
    """Per-class gain over real only of each setting's best way (`per_class.effects`) as bars with their 95%
    intervals, coloured by generation fidelity (grey where not recorded); one panel per setting."""
    found = [entry for entry in found if entry["rows"]]
    if not found:
        return None
    plt = _pyplot()
    from matplotlib import cm, colors

    scale = colors.Normalize(vmin=0, vmax=100)
    width = max(5.0, 0.35 * max(len(entry["rows"]) for entry in found) + 1.5)
    figure, axes = plt.subplots(len(found), 1, figsize=(min(width, 16.0), 2.8 * len(found)), squeeze=False,
                                layout="constrained")
    for ax, entry in zip(axes[:, 0], found):
        rows = entry["rows"]
        fill = [cm.viridis(scale(r["fidelity"])) if r["fidelity"] is not None else (0.7, 0.7, 0.7, 1.0) for r in rows]
        ax.bar(range(len(rows)), [r["gain"]["gain"] for r in rows], color=fill, edgecolor="black", linewidth=0.4,
               yerr=[_half(r["gain"]["resolves"]) for r in rows], capsize=2)
        ax.axhline(0, color="gray", linewidth=0.8)
        ax.set_xticks(range(len(rows)), [r["class"] for r in rows], fontsize=7, rotation=90 if len(rows) > 20 else 0)
        ax.set_title(f"{entry['setting']}: {entry['label']}, {entry['volume']} per class", fontsize=9)
        ax.set_xlabel("class")
        ax.set_ylabel("gain over real only\n(points, 95% CI)", fontsize=8)
    bar = figure.colorbar(cm.ScalarMappable(norm=scale, cmap="viridis"), ax=axes[:, 0].tolist(), shrink=0.9)
    bar.set_label("generation fidelity (%); grey: not recorded", fontsize=8)
    return _png(figure)


def first_set(root: Path, name: str) -> Path | None:
    """synthetic/<name> if it holds a set, else the set of its first real subset (<name>-<K>shot-s<seed>, fewest
    shots, lowest seed), else None."""
    if (root / name / "manifest.jsonl").exists():
        return root / name
    pattern = re.compile(rf"{re.escape(name)}-(\d+)shot-s(\d+)$")
    subsets = sorted((tuple(map(int, m.groups())), p) for p in root.glob(f"{name}-*")
                     if (m := pattern.match(p.name)) and (p / "manifest.jsonl").exists())
    return subsets[0][1] if subsets else None


def sample_grid(exp_dir: Path, dataset: str, per_source: int = 6) -> tuple[bytes, str] | None:
    """One row per class (named on the left): real images | one panel per method's set (plain prompts, style
    token, per-class tokens, LoRA, image-to-image, ... side by side; of a method learned per real subset, the
    set of the first subset); the first `per_source` images of each class from each source. Returns (PNG, the
    panel titles) or None when the dataset cannot be loaded or the folder has no synthetic set of it."""
    from synthbridge.data import load_dataset, load_synthetic
    from synthbridge.experiments.methods import METHODS
    from synthbridge.experiments.sets import set_name
    from synthbridge.grids import labelled_grid

    try:
        bundle = load_dataset(dataset)
    except UserError:
        return None
    sources = [("real", bundle.train)]
    for method in METHODS:
        folder = first_set(exp_dir / "synthetic", set_name(dataset, method))
        title = "synthetic" if method == "plain" else METHODS.get(method).label
        if folder is not None:
            try:
                sources.append((title, load_synthetic(folder, bundle.classes)))
            except UserError:
                pass
    if len(sources) == 1:
        return None
    classes = bundle.classes[:GRID_CLASSES]
    panels = []
    for title, images in sources:
        members = defaultdict(list)
        for index, target in enumerate(images.targets):
            if target < len(classes) and len(members[target]) < per_source:
                members[target].append(index)
        panels.append((title, [[images.load(i).convert("RGB") for i in members[label]] for label in range(len(classes))]))
    buffer = io.BytesIO()
    labelled_grid(panels, classes, cell=GRID_CELL).save(buffer, format="PNG")
    return buffer.getvalue(), " | ".join(title for title, _ in sources)
