"""The report's statistics: means over seeds and paired gains."""

from __future__ import annotations

import pytest
from scipy import stats

from synthbridge.reporting import paired_gain, seeds_needed, summarise
from synthbridge.reporting.stats import fmt_gain


def test_summarise_gives_mean_sample_std_and_count():
    assert summarise([70.0, 72.0, 77.0]) == {"mean": pytest.approx(73.0), "std": pytest.approx(stats.tstd([70, 72, 77])),
                                             "n": 3}
    assert summarise([70.0]) == {"mean": 70.0, "std": None, "n": 1}  # one seed: its spread is unknown, not zero


def test_paired_gain_says_how_large_a_gain_its_seeds_resolve():
    real = {seed: 70.0 + seed for seed in range(10)}
    arm = {seed: real[seed] + (1.0 if seed % 2 else 3.0) for seed in range(10)}  # gains 3, 1, 3, 1, ...: mean 2
    gain = paired_gain(arm, real)
    sd = stats.tstd([3.0, 1.0] * 5)
    assert gain["gain"] == pytest.approx(2.0) and gain["n"] == 10 and gain["significant"]
    assert gain["resolves"] == pytest.approx(stats.t.ppf(0.975, 9) * sd / 10 ** 0.5)
    assert gain["p"] == pytest.approx(stats.ttest_rel([arm[s] for s in range(10)], [real[s] for s in range(10)]).pvalue)
    three = paired_gain({s: arm[s] for s in range(3)}, real)
    assert three["resolves"] > gain["resolves"]  # fewer seeds resolve only larger gains
    assert paired_gain({0: 71.0}, {0: 70.0})["resolves"] is None


def test_paired_gain_pairs_only_the_seeds_both_have():
    gain = paired_gain({0: 72.0, 1: 75.0, 7: 10.0}, {0: 70.0, 1: 72.0, 2: 99.0})
    assert gain["n"] == 2 and gain["gain"] == pytest.approx(2.5)
    assert paired_gain({0: 72.0}, {1: 70.0}) is None


def test_paired_gain_without_spread():
    same = paired_gain({0: 71.0, 1: 72.0}, {0: 70.0, 1: 71.0})  # +1 on every seed: certain, however few
    assert same["p"] == 0.0 and same["significant"] and same["resolves"] == 0.0
    equal = paired_gain({0: 70.0, 1: 71.0}, {0: 70.0, 1: 71.0})
    assert equal["p"] == 1.0 and not equal["significant"]
    one = paired_gain({0: 75.0}, {0: 70.0})  # one seed: a gain, no test
    assert one["p"] is None and not one["significant"] and one["gain"] == 5.0


def test_fmt_gain_marks_significant_gains():
    assert fmt_gain({"gain": 2.0, "p": 0.0123, "significant": True}) == "+2.00 *, p=0.012"
    assert fmt_gain({"gain": -0.5, "p": 0.5, "significant": False}) == "-0.50, p=0.500"
    assert fmt_gain({"gain": 5.0, "p": None, "significant": False}) == "+5.00"
    assert fmt_gain(None) == ""


def test_seeds_needed_is_the_first_n_whose_interval_is_narrower_than_the_difference():
    from synthbridge.reporting.stats import MAX_SEEDS

    half = lambda n, sd: stats.t.ppf(0.975, n - 1) * sd / n ** 0.5  # noqa: E731
    for sd, difference in ((3.5, 2.0), (1.0, 0.5), (4.0, -1.0), (10.0, 30.0)):
        n = seeds_needed(sd, difference)
        assert half(n, sd) < abs(difference) and (n == 2 or half(n - 1, sd) >= abs(difference))
    assert seeds_needed(3.5, 2.0) == 15  # the demo's 2-shot spread: 16 seeds resolve about 2 points
    assert seeds_needed(0.0, 1.0) == 2 and seeds_needed(None, 1.0) is None and seeds_needed(1.0, 0.0) is None
    assert seeds_needed(100.0, 0.01) is None and MAX_SEEDS == 10_000  # beyond any practical number


def test_outcome_is_better_worse_no_difference_or_unresolved():
    from synthbridge.reporting.stats import claim_verdict, outcome

    real = {s: 70.0 + s for s in range(4)}
    assert outcome(paired_gain({s: real[s] + 3 + (s % 2) / 10 for s in real}, real)) == "better"
    assert outcome(paired_gain({s: real[s] - 3 - (s % 2) / 10 for s in real}, real)) == "worse"
    assert outcome(paired_gain({s: real[s] + (0.5, -0.5, 0.2, -0.2)[s] for s in real}, real)) == "no difference"
    assert outcome(paired_gain({s: real[s] + (6, -5, 4, -4)[s] for s in real}, real)) == "unresolved"
    assert outcome(paired_gain({0: 80.0}, real)) == "unresolved" and outcome(None) == "unresolved"
    assert claim_verdict(2, 0, 3) == "holds" and claim_verdict(0, 2, 3) == "does not hold"
    assert claim_verdict(1, 1, 3) == "inconclusive" and claim_verdict(1, 0, 2) == "inconclusive"


def test_interval_is_the_t_interval_of_the_mean():
    from synthbridge.reporting.stats import interval

    low, high = interval([70.0, 72.0, 77.0])
    expected = stats.t.interval(0.95, 2, loc=73.0, scale=stats.sem([70.0, 72.0, 77.0]))
    assert (low, high) == pytest.approx(expected) and interval([70.0]) is None
