"""The findings: plain statements of which of the study's claims hold in this run (computed, never tuned), each
with the three-way verdict of `stats.VERDICT_RULE` (holds / does not hold / inconclusive)."""

from __future__ import annotations

import statistics

from synthbridge.experiments.arms import ARMS
from synthbridge.reporting.stats import claim_verdict, outcome, paired_gain
from synthbridge.reporting.tables import volume_runs

# (arm, the arm it is compared with, the claim, whether the claim is that the arm is better)
CLAIMS = (("mixed", "real", "Naive mixing is not reliably better than real only", False),
          ("bridged", "real", "Bridged transfer beats real only", True),
          ("bridged_dsi", "bridged", "Dataset style inversion adds to bridged transfer", True))
OUTCOMES = ("better", "worse", "no difference", "unresolved")


def _tally(table: dict, cfg: dict, arm: str, base: str) -> dict[str, int]:
    """How many settings come out better / worse / no difference / unresolved for `arm` against `base` at the
    headline volume (paired over seeds)."""
    counts = dict.fromkeys(OUTCOMES, 0)
    volume = cfg["volumes"][0]
    for arms in table.values():
        a = arms.get(arm, {}).get(volume, {}).get(None, {})
        b = arms.get(base, {}).get(volume if ARMS.get(base).uses_synthetic else None, {}).get(None, {})
        if gain := paired_gain(a, b):
            counts[outcome(gain)] += 1
    return counts


def _statement(claim: str, supported: int, contradicted: int, total: int, detail: str) -> str:
    return f"{claim}: {claim_verdict(supported, contradicted, total).upper()} here ({detail}; paired over seeds)."


def _counts_text(counts: dict[str, int], total: int) -> str:
    return ", ".join(f"{k} in {counts[k]}" for k in OUTCOMES) + f" of {total} settings"


def _volume_outcome(by_volume: dict) -> str:
    """One sweep's support for "gains keep growing": 'supports' when top-1 rises with volume (Spearman rho > 0.5),
    peaks at the largest volume and the largest beats the smallest (resolved); 'contradicts' when the largest is
    worse than or no different from the smallest; else 'unresolved'."""
    from scipy import stats

    points = sorted((v, statistics.mean(seeds.values())) for v, seeds in by_volume.items())
    rho = stats.spearmanr([p[0] for p in points], [p[1] for p in points]).statistic
    result = outcome(paired_gain(by_volume[points[-1][0]], by_volume[points[0][0]]))
    if result == "better" and rho > 0.5 and points[-1][1] >= max(p[1] for p in points):
        return "supports"
    return "contradicts" if result in ("worse", "no difference") else "unresolved"


def _volume_finding(table: dict, cfg: dict) -> str | None:
    """Does accuracy keep growing with the number of synthetic images?"""
    results = [_volume_outcome(by_volume) for arms in table.values() for arm in cfg.get("volume_arms", [])
               if len(by_volume := volume_runs(arms, arm)) >= 3]
    if not results:
        return None
    supports, contradicts = results.count("supports"), results.count("contradicts")
    detail = (f"rising with volume to a peak at the largest, which beats the smallest, in {supports}; the largest "
              f"worse than or no different from the smallest in {contradicts}; unresolved in "
              f"{results.count('unresolved')} of {len(results)} settings")
    return _statement("Gains keep growing with synthetic volume", supports, contradicts, len(results), detail)


def findings(rows: list[dict], table: dict, cfg: dict) -> list[str]:
    """Plain statements of which of the study's findings hold in this run (computed, never tuned).

    `rows` (the headline rows) is not read: the comparisons pair seeds in `table` (see `collect`)."""
    lines = []
    claims = list(CLAIMS) + [(arm, "bridged", f"{ARMS.get(arm).fitting.label[:1].upper()}"
                              f"{ARMS.get(arm).fitting.label[1:]} adds to bridged transfer", True)
                             for arm in cfg.get("arms", []) if arm in ARMS and arm not in {c[0] for c in CLAIMS}
                             and ARMS.get(arm).strategy == "bridged" and ARMS.get(arm).method != "plain"]
    for arm, base, claim, better_is_support in claims:
        counts = _tally(table, cfg, arm, base)
        total = sum(counts.values())
        if not total:
            continue
        against = counts["worse"] + counts["no difference"]
        supported, contradicted = (counts["better"], against) if better_is_support else (against, counts["better"])
        detail = f"{ARMS.get(arm).label} against {ARMS.get(base).label}: {_counts_text(counts, total)}"
        lines.append(_statement(claim, supported, contradicted, total, detail))
    if volume := _volume_finding(table, cfg):
        lines.append(volume)
    return lines
