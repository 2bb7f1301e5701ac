"""The report's opening answer (best way found, its paired gain, the seeds that would resolve it, its cost), the
per-class effects beside generation fidelity, and the three-way verdicts of the findings."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image
from scipy import stats
from stores import CLASSES, record, write_generation, write_inversion, write_store

from synthbridge.experiments.store import read_results
from synthbridge.reporting import answers, build_report, collect_records, findings, per_class_plot, seeds_needed
from synthbridge.reporting.answer import answer_table
from synthbridge.reporting.per_class import effects, per_class_section

NOISE = [0.0, 3.0, -2.0, 1.5]


def _store(tmp_path, arms: dict, noise=NOISE, per_class=None, volumes=(100, 25)):
    """real only plus `arms` ({arm: {volume: [gain per seed]}}), 2-shot mnist5k / mini_resnet."""
    lines = []
    for seed, offset in enumerate(noise):
        lines.append(record("real", seed, 70.0 + offset, per_class=per_class and per_class("real", seed)))
        for arm, by_volume in arms.items():
            for volume, gains in by_volume.items():
                if seed < len(gains):
                    lines.append(record(arm, seed, 70.0 + offset + gains[seed], volume=volume,
                                        per_class=per_class and per_class(arm, seed)))
    return write_store(tmp_path / "exp", lines, list(volumes), arms=["real", *arms])


def _answers(exp):
    return answers(exp, collect_records(read_results(exp)))


def test_the_answer_is_the_best_resolved_way_with_its_cost(tmp_path):
    exp = _store(tmp_path, {"bridged": {100: [3.0, 3.2, 2.8, 3.0], 25: [1.0, 1.1, 0.9, 1.0]},
                            "bridged_dsi": {100: [9.0, -4.0, 12.0, 1.0]}})  # larger mean, unresolved
    write_generation(exp, "mnist5k", per_class=100, generated=1000, seconds=100.0)  # 10 images/s
    [row] = _answers(exp)
    best = row["best"]
    assert (best["arm"], best["volume"], best["outcome"], best["tried"]) == ("bridged", 100, "better", 3)
    assert best["gain"]["gain"] == pytest.approx(3.0) and best["gain"]["n"] == 4
    # 100 per class x 10 classes at 10 images/s; no inversion; 4 cells of 2.5 s
    assert row["cost"] == {"generation": pytest.approx(100.0), "inversion": 0.0, "training": pytest.approx(10.0), "cells": 4,
                           "sets": 1, "total": pytest.approx(110.0), "complete": True}
    lines = answer_table([row])
    assert "In 1 setting: 1 better, 0 no difference, 0 worse, 0 unresolved" in lines[3]
    assert (f"| mnist5k / mini_resnet / 2-shot | bridged++, 100 per class (of 3) | +3.00 ± {best['gain']['resolves']:.2f} | "
            f"4 | **better**: use it | 100 s + 0 s + 10 s = 110 s |") in lines


def test_an_unresolved_answer_is_inconclusive_with_the_seeds_that_would_resolve_it(tmp_path):
    exp = _store(tmp_path, {"bridged": {100: [5.0, -2.0, 4.0, 1.0]}})
    [row] = _answers(exp)
    best, sd = row["best"], stats.tstd([5.0, -2.0, 4.0, 1.0])
    assert best["outcome"] == "unresolved" and best["gain"]["sd"] == pytest.approx(sd)
    n = best["seeds_needed"]
    assert n == seeds_needed(sd, 2.0)
    assert stats.t.ppf(0.975, n - 1) * sd / n ** 0.5 < 2.0 <= stats.t.ppf(0.975, n - 2) * sd / (n - 1) ** 0.5
    assert f"| 4 | **inconclusive**: about {n} seeds would resolve 2.00 points | " in "\n".join(answer_table([row]))
    # no generation record: the cost says so, and its total is a lower bound
    assert "| not recorded + 0 s + 10 s = at least 10 s |" in "\n".join(answer_table([row]))


def test_a_way_that_loses_says_use_real_only_and_dsi_costs_its_inversion(tmp_path):
    exp = _store(tmp_path, {"mixed": {100: [-5.0, -5.2, -4.8, -5.0]}})
    [row] = _answers(exp)
    assert row["best"]["outcome"] == "worse" and "**worse**: even the best way tried loses; use real only" in \
        "\n".join(answer_table([row]))
    exp = _store(tmp_path / "dsi", {"bridged_dsi": {100: [2.0, 2.1, 1.9, 2.0]}})
    write_inversion(exp, "mnist5k", seconds=40.0)  # the set's generation.json names the style folder it used
    write_generation(exp, "mnist5k-dsi", per_class=100, generated=500, seconds=100.0,  # 5 images/s
                     config={"style": str(exp / "styles" / "mnist5k")})
    cost = _answers(exp)[0]["cost"]
    assert cost["generation"] == pytest.approx(200.0) and cost["inversion"] == 40.0 and cost["total"] == pytest.approx(250.0)


def test_one_seed_is_inconclusive_without_an_interval(tmp_path):
    exp = _store(tmp_path, {"bridged": {100: [3.0]}})
    [row] = _answers(exp)
    assert row["best"]["outcome"] == "unresolved" and row["best"]["seeds_needed"] is None
    assert "+3.00 (1 seed) | 1 | **inconclusive**: 1 seed, no interval" in "\n".join(answer_table([row]))


def _per_class(gain_of_class):
    """per_class builder: real only at 70 + a seed offset, the arm at that plus gain_of_class(class) (+-0.1 by seed)."""
    def build(arm, seed):
        base = {c: 70.0 + seed for c in CLASSES}
        if arm == "real":
            return base
        return {c: base[c] + gain_of_class(c) + (0.1 if seed % 2 else -0.1) for c in CLASSES}
    return build


def _effects(exp):
    table = collect_records(read_results(exp))
    return effects(exp, table, answers(exp, table))


def test_per_class_effects_name_the_class_where_the_generator_fails(tmp_path):
    exp = _store(tmp_path, {"bridged": {100: [3.0, 3.2, 2.8, 3.0]}}, per_class=_per_class(lambda c: -4.0 if c == "3" else 4.0))
    (exp / "analysis").mkdir()
    (exp / "analysis" / "fidelity-mnist5k.json").write_text(json.dumps(
        {"per_class": {c: (30.0 if c == "3" else 95.0) for c in CLASSES}}))
    [entry] = _effects(exp)
    rows = {r["class"]: r for r in entry["rows"]}
    assert rows["3"]["gain"]["gain"] == pytest.approx(-4.0) and rows["3"]["outcome"] == "worse"
    assert rows["0"]["gain"]["gain"] == pytest.approx(4.0) and rows["0"]["fidelity"] == 95.0
    assert entry["statement"] == "The generator fails on '3' (fidelity 30%)."
    md = per_class_section([entry])
    assert any(line.startswith("| 3 | 71.5 | 67.5 | -4.00 ± ") and line.endswith(" | worse | 30.0 | – |") for line in md)
    assert "recognised by a classifier of the real data (analysis/fidelity-mnist5k.json)" in "\n".join(md)


def test_without_fidelity_the_class_that_loses_is_named_and_a_filter_gives_first_try_acceptance(tmp_path):
    exp = _store(tmp_path, {"bridged": {100: [3.0, 3.2, 2.8, 3.0]}}, per_class=_per_class(lambda c: -4.0 if c == "7" else 1.0))
    [entry] = _effects(exp)
    assert entry["statement"] == ("Classes that lose with synthetic images (resolved): '7'; the largest loss is '7' "
                                  "(-4.00 points, resolved).")
    assert entry["fidelity_source"].startswith("not recorded")
    counts = {c: {"images": 10, "given_up": 0, "retried": 8 if c == "7" else 1} for c in CLASSES}
    write_generation(exp, "mnist5k", per_class=10, generated=100, seconds=10.0, config={"filter": True},
                     counts={"per_class": counts}, failing_classes=["7"])
    [entry] = _effects(exp)
    assert {r["class"]: r["fidelity"] for r in entry["rows"]}["7"] == pytest.approx(20.0)
    assert entry["statement"] == "The generator fails on '7' (fidelity 20%)."


def test_the_generators_own_fidelity_record_is_the_last_source_and_says_so(tmp_path):
    exp = _store(tmp_path, {"bridged": {100: [3.0, 3.2, 2.8, 3.0]}}, per_class=_per_class(lambda c: 1.0))
    generator = tmp_path / "generator"
    generator.mkdir()
    (generator / "fidelity.json").write_text(json.dumps({
        "sampling": {"num_inference_steps": 25}, "recognition": {"real_classifier": {
            "per_class": {c: (40.0 if c == "6" else 95.0) for c in CLASSES}}}}))
    write_generation(exp, "mnist5k", per_class=100, generated=1000, seconds=100.0, generator={"folder": str(generator)})
    [entry] = _effects(exp)
    assert entry["statement"] == "The generator fails on '6' (fidelity 40%)."
    assert "the generator's own record" in entry["fidelity_source"] and "not measured on this set" in entry["fidelity_source"]
    (generator / "fidelity.json").unlink()  # a moved generator: nothing recorded, no error
    assert _effects(exp)[0]["fidelity_source"].startswith("not recorded")


def test_per_class_plot_is_a_png_with_a_panel_per_setting(tmp_path):
    exp = _store(tmp_path, {"bridged": {100: [3.0, 3.2, 2.8, 3.0]}}, per_class=_per_class(lambda c: int(c) - 4.0))
    data = per_class_plot(_effects(exp))
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG" and image.size[0] > 300 and len(image.convert("RGB").getcolors(1 << 20)) > 20
    assert per_class_plot([]) is None


def test_the_report_opens_with_the_answer_and_states_the_rule_once(tmp_path):
    exp = _store(tmp_path, {"bridged": {100: [3.0, 3.2, 2.8, 3.0]}}, per_class=_per_class(lambda c: 3.0))
    result = build_report(exp)
    md = (exp / "report.md").read_text()
    headings = [line for line in md.splitlines() if line.startswith("## ")]
    assert headings[:4] == ["## The answer: should synthetic images be used here, and how?", "## Findings of the study",
                            "## Volume advisor: will the next doubling of synthetic images pay?",
                            "## Per-class effects of the best way found"]
    assert md.count("A claim **holds** when") == 1 and md.index("### How to read the verdicts") < md.index("## Findings")
    assert result["answers"][0]["best"]["arm"] == "bridged"
    assert "![Per-class gain over real only, coloured by generation fidelity](figures/figure1.png)" in md


def _table(by_setting: dict) -> dict:
    """A `collect` table: {(dataset, model, shots): {arm: {volume: {None: {seed: top1}}}}}."""
    return {key: {arm: {volume: {None: seeds}} for arm, (volume, seeds) in arms.items()} for key, arms in by_setting.items()}


CFG = {"volumes": [100], "arms": ["real", "mixed", "bridged"], "volume_arms": []}
REAL = (None, {0: 70.0, 1: 72.0, 2: 74.0})


def _line(lines, start):
    [line] = [line for line in lines if line.startswith(start)]
    return line


def test_findings_say_inconclusive_when_the_seeds_cannot_resolve_the_difference():
    noisy = _table({("d", "m", 2): {"real": REAL, "bridged": (100, {0: 60.0, 1: 85.0, 2: 70.0})}})
    line = _line(findings([], noisy, CFG), "Bridged transfer")
    assert line == ("Bridged transfer beats real only: INCONCLUSIVE here (bridged++ against real only: better in 0, "
                    "worse in 0, no difference in 0, unresolved in 1 of 1 settings; paired over seeds).")


def test_findings_say_does_not_hold_when_resolved_against_the_claim():
    worse = _table({("d", "m", 2): {"real": REAL, "bridged": (100, {0: 66.0, 1: 68.1, 2: 69.9})},  # -4, resolved
                    ("d", "m", 4): {"real": REAL, "bridged": (100, {0: 70.1, 1: 72.0, 2: 73.9})}})  # ~0, within 2 points
    line = _line(findings([], worse, CFG), "Bridged transfer")
    assert "DOES NOT HOLD here" in line and "better in 0, worse in 1, no difference in 1, unresolved in 0" in line
    mixing_better = _table({("d", "m", 2): {"real": REAL, "mixed": (100, {0: 73.0, 1: 75.1, 2: 76.9})}})
    assert "Naive mixing is not reliably better than real only: DOES NOT HOLD" in _line(
        findings([], mixing_better, CFG), "Naive mixing")
