"""The volume advisor: will the next doubling of synthetic images pay? (`synthbridge advise EXP_DIR`, and a report
section.)

A *sweep* is an arm's cells in one setting (dataset, model, shots) that differ only in the synthetic volume (the
default-length synthetic stage), on the seeds every volume has; real-only cells are not volume 0 and stay out of
the fit. Per sweep, top-1 is fitted against log2(images per class) by least squares on the mean over seeds, and
every figure gets a 95% interval from a bootstrap over seeds (whole seeds are resampled, so volumes stay paired):

    gain per doubling     the fitted slope, in points of top-1 per doubling of images per class
    next doubling         twice the largest volume: the fit's predicted top-1 there, and (last_segment) the
                          largest volume's mean plus one doubling at the last segment's slope
    segments              the slope between consecutive volumes (points per doubling)
    curve                 rising:          the last segment's interval lies above 0
                          flattened:       it does not, while an earlier segment's interval lies above 0
                          rising overall:  no segment's interval lies above 0, but the fitted slope's does
                          falling:         the fitted slope's interval lies below 0
                          flat:            none of these (the fitted slope's interval contains 0)
                          unknown:         one seed (no interval)
    next doubling cost    the images still to generate for it (the set already holds `per_class` per class) and
                          their seconds at the generation speed this run measured (generation.json / render.json)

It refuses to extrapolate from fewer than three volumes. With few seeds the percentile bootstrap is narrower than
the truth (3 seeds have 10 distinct resamples): read its intervals as a lower bound on the uncertainty.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from synthbridge.experiments.arms import ARMS
from synthbridge.reporting.costs import fmt_seconds, generation_speed, num_classes, training_seconds
from synthbridge.reporting.tables import setting_name

BOOTSTRAP = 2000  # seed resamples
BOOTSTRAP_SEED = 0  # the bootstrap is seeded: the same folder gives the same advice
MIN_VOLUMES = 3


def sweeps(arms: dict) -> dict[str, dict[int, dict[int, dict]]]:
    """{arm: {volume: {seed: record}}} for each arm of a setting with at least 2 volumes (default-length synthetic
    stage) on the seeds every volume has."""
    found = {}
    for arm, volumes in arms.items():
        by_volume = {v: lengths[None] for v, lengths in volumes.items() if v is not None and lengths.get(None)}
        if len(by_volume) < 2:
            continue
        seeds = set.intersection(*(set(runs) for runs in by_volume.values()))
        if seeds:
            found[arm] = {v: {s: by_volume[v][s] for s in sorted(seeds)} for v in sorted(by_volume)}
    return found


def _fit(curves: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares (intercept, slope) of each row of `curves` (..., volumes) against `x`."""
    centred = x - x.mean()
    slope = curves @ centred / (centred @ centred)
    return curves.mean(axis=-1) - slope * x.mean(), slope


def _ci(samples: np.ndarray, n_seeds: int) -> list[float] | None:
    if n_seeds < 2:
        return None
    low, high = np.percentile(samples, [2.5, 97.5], axis=0)
    return [float(low), float(high)]


def _status(segments_ci: list, slope_ci: list | None) -> str:
    """The curve's shape from the intervals (see the module)."""
    if slope_ci is None:
        return "unknown"
    if segments_ci[-1][0] > 0:
        return "rising"
    if any(ci[0] > 0 for ci in segments_ci[:-1]):
        return "flattened"
    if slope_ci[0] > 0:
        return "rising overall"
    if slope_ci[1] < 0:
        return "falling"
    return "flat"


def fit_sweep(by_volume: dict[int, dict[int, float]]) -> dict:
    """The advisor's figures for one sweep ({volume: {seed: top1}}, the same seeds at every volume); see the module.
    With fewer than MIN_VOLUMES volumes: only `volumes`, `seeds`, `means` and `refused` (the reason)."""
    volumes = sorted(by_volume)
    seeds = sorted(by_volume[volumes[0]])
    curves = np.array([[by_volume[v][s] for v in volumes] for s in seeds], dtype=float)  # (seeds, volumes)
    result = {"volumes": volumes, "seeds": len(seeds), "means": [float(m) for m in curves.mean(axis=0)], "refused": None}
    if len(volumes) < MIN_VOLUMES:
        result["refused"] = (f"only {len(volumes)} volumes ({', '.join(map(str, volumes))} per class): the advisor "
                             f"extrapolates from at least {MIN_VOLUMES}")
        return result
    x = np.log2(np.array(volumes, dtype=float))
    x_next = x[-1] + 1
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    resampled = curves[rng.integers(0, len(seeds), (BOOTSTRAP, len(seeds)))].mean(axis=1)  # (BOOTSTRAP, volumes)
    mean = curves.mean(axis=0)
    intercept, slope = _fit(mean, x)
    boot_intercept, boot_slope = _fit(resampled, x)
    segments = np.diff(mean) / np.diff(x)
    boot_segments = np.diff(resampled, axis=1) / np.diff(x)
    segments_ci = [_ci(boot_segments[:, k], len(seeds)) for k in range(len(segments))]
    slope_ci = _ci(boot_slope, len(seeds))
    result.update(
        gain_per_doubling=float(slope), gain_per_doubling_ci=slope_ci, next_volume=2 * volumes[-1],
        predicted=float(intercept + slope * x_next), predicted_ci=_ci(boot_intercept + boot_slope * x_next, len(seeds)),
        last_segment_predicted=float(mean[-1] + segments[-1]),
        last_segment_predicted_ci=_ci(resampled[:, -1] + boot_segments[:, -1], len(seeds)),
        segments=[float(s) for s in segments], segments_ci=segments_ci,
        status=_status(segments_ci, slope_ci) if slope_ci else "unknown",
        fit={"intercept": float(intercept), "slope": float(slope)})
    return result


def next_cost(exp_dir: Path, name: str | None, volume: int, classes: int | None) -> dict:
    """What generating the next doubling (to 2 x `volume` per class) costs: images (None when the classes are not
    recorded), and seconds at the speed this run measured for set synthetic/<name>; `note` says why seconds are
    missing."""
    speed = generation_speed(exp_dir, name) if name else None
    have = max(volume, (speed or {}).get("per_class") or volume)
    per_class = max(0, 2 * volume - have)
    cost = {"per_class": per_class, "images": per_class * classes if classes else None, "seconds": None,
            "images_per_second": None, "device": None, "note": None}
    if speed is None:
        cost["note"] = "the set records no generation speed (no generation.json or render.json timings)"
    elif not classes:
        cost["note"] = "the classes are not recorded (no per-class accuracy, no generation.json classes)"
    else:
        cost.update(seconds=cost["images"] / speed["images_per_second"], images_per_second=speed["images_per_second"],
                    device=speed["device"])
    return cost


def advise(exp_dir: Path, records_table: dict) -> list[dict]:
    """One entry per sweep of `records_table` (`tables.collect_records`): the setting, arm, `fit_sweep`'s figures,
    the training seconds of a cell at the largest volume, and (unless refused) `next_cost`."""
    entries = []
    for group, arms in records_table.items():
        for arm, by_volume in sweeps(arms).items():
            fit = fit_sweep({v: {s: r["metrics"]["top1"] for s, r in runs.items()} for v, runs in by_volume.items()})
            largest = list(by_volume[max(by_volume)].values())
            classes = num_classes(exp_dir, largest)
            entry = {"dataset": group[0], "model": group[1], "shots": group[2], "setting": setting_name(group),
                     "arm": arm, "label": ARMS.get(arm).label if arm in ARMS else arm, "classes": classes,
                     "training_seconds": float(np.mean([training_seconds(r) for r in largest])), **fit}
            if not fit["refused"]:
                entry["next_cost"] = next_cost(exp_dir, largest[0]["set"], max(by_volume), classes)
            entries.append(entry)
    return entries


def _range(ci: list[float] | None, digits: int = 2) -> str:
    return "no interval: 1 seed" if ci is None else f"95% CI {ci[0]:+.{digits}f} to {ci[1]:+.{digits}f}"


def _level(ci: list[float] | None) -> str:
    return "no interval: 1 seed" if ci is None else f"95% CI {ci[0]:.2f} to {ci[1]:.2f}"


CURVE_WORDS = {"rising": "still rising (the last segment's gain is resolved above 0)",
               "flattened": "flattened (the last segment's gain is not resolved above 0; an earlier one's is)",
               "rising overall": "rising overall, but no single segment resolves a gain",
               "falling": "falling (the fitted gain per doubling is resolved below 0)",
               "flat": "flat (no gain per doubling these seeds resolve)",
               "unknown": "unknown (1 seed: no interval)"}


def _cost_line(entry: dict) -> str:
    cost = entry["next_cost"]
    what = (f"next doubling costs {cost['images']:,} images ({cost['per_class']:,} more per class x "
            f"{entry['classes']} classes)" if cost["images"] is not None else
            f"next doubling costs {cost['per_class']:,} more images per class")
    if cost["seconds"] is None:
        return f"{what}; {cost['note']}"
    hours = f", {cost['seconds'] / 3600:.2f} {'GPU-' if 'cuda' in str(cost['device']) else ''}hours" \
        if cost["seconds"] >= 360 else ""
    return (f"{what}: {fmt_seconds(cost['seconds'])}{hours} at {cost['images_per_second']:.2f} images/s measured here "
            f"({cost['device']}); training a cell at the largest volume took {fmt_seconds(entry['training_seconds'])}")


def format_entry(entry: dict) -> list[str]:
    """The advisor's text for one sweep: a heading line, then indented figures (one line when it refuses)."""
    head = f"{entry['setting']}, {entry['label']}"
    if entry["refused"]:
        return [f"{head}: {entry['refused']}"]
    volumes = ", ".join(map(str, entry["volumes"]))
    lines = [f"{head} (volumes {volumes} per class; {entry['seeds']} seeds)",
             f"  gain per doubling: {entry['gain_per_doubling']:+.2f} points ({_range(entry['gain_per_doubling_ci'])})",
             f"  next doubling ({entry['next_volume']} per class): predicted top-1 {entry['predicted']:.2f} "
             f"({_level(entry['predicted_ci'])}); from the last segment alone {entry['last_segment_predicted']:.2f} "
             f"({_level(entry['last_segment_predicted_ci'])})",
             f"  curve: {CURVE_WORDS[entry['status']]}",
             f"  {_cost_line(entry)}"]
    return lines


def format_advice(entries: list[dict]) -> str:
    """The text `synthbridge advise` prints."""
    if not entries:
        return "no volume sweep here: no arm has cells at two or more synthetic volumes in one setting"
    return "\n".join(line for entry in entries for line in format_entry(entry))


def advisor_section(entries: list[dict]) -> list[str]:
    """The report's markdown lines for the advisor (the plot goes in by report.py)."""
    md = ["", "## Volume advisor: will the next doubling of synthetic images pay?", ""]
    if not entries:
        return md + ["No volume sweep here: no arm has cells at two or more synthetic volumes in one setting."]
    md += ["Top-1 fitted against log2(synthetic images per class), paired over seeds, with 95% intervals from a "
           "bootstrap over seeds (`synthbridge advise EXP_DIR` prints the same; `--json` for all figures). *Curve*: "
           "rising = the last segment's gain per doubling is resolved above 0; flattened = it is not, while an earlier "
           "segment's is; flat = no resolved gain per doubling.", ""]
    for entry in entries:
        lines = format_entry(entry)
        md.append(f"- {lines[0]}")
        md += [f"  - {line.strip()}" for line in lines[1:]]
    return md
