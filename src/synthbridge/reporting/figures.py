"""The report's figures, each as PNG bytes (None where there is nothing to plot): accuracy against
synthetic volume, gain over real only against shots, and sample grids (real | synthetic | synthetic + DSI).

matplotlib (Agg), the datasets and the grid helper (torch) are imported when a figure is drawn, not with the package.
"""

from __future__ import annotations

import io
from collections import defaultdict
from pathlib import Path

import numpy as np

from synthbridge.errors import UserError
from synthbridge.experiments.arms import ARMS
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


def volume_plot(cfg: dict, table: dict) -> bytes | None:
    """Top-1 against synthetic images per class, one panel per setting, real only as a dashed line."""
    plt = _pyplot()
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
    """Each arm's gain over real only against the number of real images per class."""
    series = defaultdict(list)
    for row in rows:
        if row.get("vs_real") and row["shots"] is not None:
            series[(row["dataset"], row["model"], row["label"])].append((row["shots"], row["vs_real"]["gain"]))
    series = {k: sorted(v) for k, v in series.items() if len(v) > 1}
    if not series:
        return None
    figure, ax = _pyplot().subplots(figsize=(6, 3.6))
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
    """One row per class (named on the left): real images | synthetic | synthetic with the style token; the
    first `per_source` images of each class from each source. Returns (PNG, the panel titles) or None when
    the dataset cannot be loaded or the folder has no synthetic set of it."""
    from synthbridge.data import load_dataset, load_synthetic
    from synthbridge.experiments.sets import set_name
    from synthbridge.grids import labelled_grid

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
