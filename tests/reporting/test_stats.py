"""The report's statistics: means over seeds and paired gains."""

from __future__ import annotations

import pytest
from scipy import stats

from synthbridge.reporting import paired_gain, summarise
from synthbridge.reporting.stats import fmt_gain


def test_summarise_gives_mean_sample_std_and_count():
    assert summarise([70.0, 72.0, 77.0]) == {"mean": pytest.approx(73.0), "std": pytest.approx(stats.tstd([70, 72, 77])),
                                             "n": 3}
    assert summarise([70.0]) == {"mean": 70.0, "std": 0.0, "n": 1}  # one seed: no spread to speak of


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
