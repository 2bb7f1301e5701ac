"""The statistics the report's tables and findings are made of: means over seeds, paired gains, the verdict
of one comparison (`outcome`) and how many seeds would resolve a difference (`seeds_needed`).

Pure functions of numbers (`{seed: top-1}` dictionaries); scipy is imported only when a test needs it.
"""

from __future__ import annotations

import statistics

SIGNIFICANCE = 0.05
# The gain the embedded study's seeds are sized to resolve (95% CI half-width of the paired gain), and the margin of
# "no difference" in `outcome`: a paired gain whose whole 95% interval lies within +-2 points.
RESOLUTION_POINTS = 2.0
MAX_SEEDS = 10_000  # `seeds_needed` gives up beyond this many seeds

# The rule of every verdict in the report, stated once there (see `outcome` and `claim_verdict`).
VERDICT_RULE = (f"A comparison in one setting is **better** when the 95% confidence interval of its paired gain over "
                f"seeds lies above 0, **worse** when it lies below 0, **no difference** when it lies within "
                f"±{RESOLUTION_POINTS:g} points, and **unresolved** otherwise (or with one seed). A claim **holds** when "
                f"the settings support it in more than half of them, **does not hold** when they contradict it in more "
                f"than half, and is **inconclusive** otherwise.")


def summarise(values: list[float]) -> dict:
    """Mean, standard deviation (None for one value: the spread of one seed is unknown, not zero) and count."""
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else None,
            "n": len(values)}


def fmt_mean(summary: dict, mean: str = ".2f", std: str = ".2f") -> str:
    """"73.40 ± 1.23"; "73.40 ± n/a" for one seed (whose spread is unknown)."""
    spread = format(summary["std"], std) if summary["std"] is not None else "n/a".rjust(
        len(format(0.0, std)) if std[:1].isdigit() else 0)  # a fixed-width column keeps its width
    return f"{format(summary['mean'], mean)} ± {spread}"


def paired_gain(arm: dict[int, float], real: dict[int, float]) -> dict | None:
    """Mean gain over `real` on the seeds both have, with a paired t-test (one-sided direction in the sign).

    `resolves`: the half-width of the 95% confidence interval of the paired gain (t quantile x std / sqrt(n)):
    a true difference this large or larger is what these seeds can tell from zero; None below 2 seeds.
    """
    seeds = sorted(set(arm) & set(real))
    if not seeds:
        return None
    diffs = [arm[s] - real[s] for s in seeds]
    p_value = resolves = sd = None
    if len(diffs) > 1:
        from scipy import stats

        sd = statistics.stdev(diffs)
        resolves = float(stats.t.ppf(1 - SIGNIFICANCE / 2, len(diffs) - 1) * sd / len(diffs) ** 0.5)
        if sd > 0:
            p_value = float(stats.ttest_1samp(diffs, 0.0).pvalue)
        else:
            p_value = 0.0 if diffs[0] != 0 else 1.0
    return {"gain": statistics.mean(diffs), "p": p_value, "n": len(diffs), "resolves": resolves, "sd": sd,
            "significant": p_value is not None and p_value < SIGNIFICANCE}


def outcome(gain: dict | None) -> str:
    """One comparison's verdict from its paired gain: 'better', 'worse', 'no difference' (the 95% interval within
    ±RESOLUTION_POINTS) or 'unresolved' (a wider interval around 0, one seed, or no seeds in common)."""
    if not gain or gain["resolves"] is None:
        return "unresolved"
    if gain["significant"]:
        return "better" if gain["gain"] > 0 else "worse"
    if abs(gain["gain"]) + gain["resolves"] <= RESOLUTION_POINTS:
        return "no difference"
    return "unresolved"


def claim_verdict(supported: int, contradicted: int, total: int) -> str:
    """'holds' / 'does not hold' / 'inconclusive': more than half of `total` settings support / contradict it."""
    if supported > total / 2:
        return "holds"
    if contradicted > total / 2:
        return "does not hold"
    return "inconclusive"


def seeds_needed(sd: float | None, difference: float) -> int | None:
    """The fewest seeds n whose 95% interval of a mean paired difference, t(0.975, n-1) x sd / sqrt(n), is narrower
    than |difference| (2 when sd is 0); None without an sd, for a zero difference, or beyond MAX_SEEDS."""
    if sd is None or difference == 0:
        return None
    if sd == 0:
        return 2
    from scipy import stats

    target = abs(difference) / sd
    low, high = 2, MAX_SEEDS  # the half-width falls with n: bisect for the first n below the target
    quantile = 1 - SIGNIFICANCE / 2
    if stats.t.ppf(quantile, high - 1) / high ** 0.5 >= target:
        return None
    while low < high:
        mid = (low + high) // 2
        if stats.t.ppf(quantile, mid - 1) / mid ** 0.5 < target:
            high = mid
        else:
            low = mid + 1
    return low


def interval(values: list[float]) -> tuple[float, float] | None:
    """The 95% t interval of the mean of `values` (None below 2 values)."""
    if len(values) < 2:
        return None
    from scipy import stats

    mean = statistics.mean(values)
    half = float(stats.t.ppf(1 - SIGNIFICANCE / 2, len(values) - 1) * statistics.stdev(values) / len(values) ** 0.5)
    return mean - half, mean + half


def fmt_gain(gain: dict | None) -> str:
    """A paired gain as a table cell: `+1.23 *, p=0.004` (`*`: significant)."""
    if not gain:
        return ""
    p = "" if gain["p"] is None else f", p={gain['p']:.3f}"
    return f"{gain['gain']:+.2f}{' *' if gain['significant'] else ''}{p}"
