"""The statistics the report's tables and findings are made of: means over seeds and paired gains.

Pure functions of numbers (`{seed: top-1}` dictionaries); scipy is imported only when a test needs it.
"""

from __future__ import annotations

import statistics

SIGNIFICANCE = 0.05
# The gain a setting's seeds should resolve (95% CI half-width of the paired gain) for its verdict to count as an
# answer rather than noise: the 2 points the embedded study is sized for. The findings say, next to the count over
# all settings, how the settings that resolve it came out; the verdict itself is over all settings.
RESOLUTION_POINTS = 2.0


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


def fmt_gain(gain: dict | None) -> str:
    """A paired gain as a table cell: `+1.23 *, p=0.004` (`*`: significant)."""
    if not gain:
        return ""
    p = "" if gain["p"] is None else f", p={gain['p']:.3f}"
    return f"{gain['gain']:+.2f}{' *' if gain['significant'] else ''}{p}"
