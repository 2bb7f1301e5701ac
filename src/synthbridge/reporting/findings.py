"""The findings: plain statements of which of the study's claims hold in this run (computed, never tuned)."""

from __future__ import annotations

import statistics

from synthbridge.experiments.arms import ARMS
from synthbridge.reporting.stats import RESOLUTION_POINTS, SIGNIFICANCE, paired_gain
from synthbridge.reporting.tables import volume_runs

# (arm, the arm it is compared with, the claim)
CLAIMS = (("mixed", "real", "Naive mixing is not reliably better than real only"),
          ("bridged", "real", "Bridged transfer beats real only"),
          ("bridged_dsi", "bridged", "Dataset style inversion adds to bridged transfer"))


def _compare(table: dict, cfg: dict, arm: str, base: str) -> tuple[int, int, int, int, int]:
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


def _volume_finding(table: dict, cfg: dict) -> str | None:
    """Does accuracy keep growing with the number of synthetic images?"""
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
    if not trends:
        return None
    rising = sum(1 for t in trends if t[2] > 0.5 and t[3] and t[4])
    return (f"Gains keep growing with synthetic volume: {'HOLDS' if rising > len(trends) / 2 else 'DOES NOT HOLD'} here "
            f"(accuracy rises with volume up to the largest one, Spearman rho > 0.5, and the largest volume beats "
            f"the smallest, paired t-test over seeds, p < {SIGNIFICANCE}, in {rising} of {len(trends)} settings).")


def findings(rows: list[dict], table: dict, cfg: dict) -> list[str]:
    """Plain statements of which of the study's findings hold in this run (computed, never tuned).

    `rows` (the headline rows) is not read: the comparisons pair seeds in `table` (see `collect`)."""
    lines = []
    for arm, base, claim in CLAIMS:
        better, worse, total, resolved_better, resolved = _compare(table, cfg, arm, base)
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
        lines.append(f"{claim}: {'HOLDS' if holds else 'DOES NOT HOLD'} here ({detail}; paired t-test over seeds, "
                     f"p < {SIGNIFICANCE}).")
    volume = _volume_finding(table, cfg)
    if volume:
        lines.append(volume)
    return lines
