"""The volume advisor on results stores with known curves: linear in log volume, saturating, flat; its refusal
below three volumes, the cost of the next doubling, `synthbridge advise` (text and --json) and the report section."""

from __future__ import annotations

import json
import math
import statistics

import pytest
from stores import flat, linear, record, saturating, sweep_records, write_generation, write_store

from synthbridge.cli import main
from synthbridge.experiments.store import read_results
from synthbridge.reporting import advise, build_report, collect_records, fit_sweep, format_advice

NOISE = [0.0, 3.0, -2.0, 1.5, -1.0]  # each seed's draw of shots, shared by its volumes
REAL = 70.0 + statistics.mean(NOISE)


def _advice(tmp_path, curve, volumes, jitter=0.3, noise=NOISE):
    exp = write_store(tmp_path / "exp", sweep_records(curve, volumes, noise, jitter=jitter), volumes)
    return exp, advise(exp, collect_records(read_results(exp)))


def test_a_curve_linear_in_log_volume_is_fitted_exactly_and_still_rising(tmp_path):
    volumes = [25, 50, 100, 200]
    [entry] = _advice(tmp_path, linear, volumes, jitter=0.0)[1]  # every seed gains exactly 2 points per doubling
    assert entry["setting"] == "mnist5k / mini_resnet / 2-shot" and entry["label"] == "bridged++"
    assert entry["volumes"] == volumes and entry["seeds"] == 5 and entry["refused"] is None
    assert entry["gain_per_doubling"] == pytest.approx(2.0) and entry["gain_per_doubling_ci"] == pytest.approx([2.0, 2.0])
    assert entry["next_volume"] == 400 and entry["predicted"] == pytest.approx(REAL + linear(400))
    assert entry["segments"] == pytest.approx([2.0, 2.0, 2.0]) and entry["status"] == "rising"


def test_a_noisy_linear_curve_brackets_the_true_slope_and_prediction(tmp_path):
    [entry] = _advice(tmp_path, linear, [25, 50, 100, 200], jitter=0.6)[1]
    low, high = entry["gain_per_doubling_ci"]
    assert low < 2.0 < high and low > 0 and high - low < 1.5  # resolved above 0, and the truth inside
    assert abs(entry["predicted"] - (REAL + linear(400))) < 0.6
    assert entry["predicted_ci"][0] < entry["predicted"] < entry["predicted_ci"][1]
    assert entry["status"] == "rising"


def test_a_saturating_curve_has_flattened(tmp_path):
    [entry] = _advice(tmp_path, saturating, [25, 50, 100, 200, 400], jitter=0.6)[1]
    assert entry["segments"][0] == pytest.approx(4.0, abs=0.6) and entry["segments_ci"][0][0] > 0
    last = entry["segments_ci"][-1]
    assert last[0] < 0 < last[1]  # no gain the seeds resolve from 200 to 400
    assert entry["status"] == "flattened"
    # the log-linear fit overshoots a flat top; the last segment predicts the plateau
    assert entry["predicted"] > REAL + 7 and entry["last_segment_predicted"] == pytest.approx(REAL + 6, abs=0.6)


def test_a_flat_curve_is_flat(tmp_path):
    [entry] = _advice(tmp_path, flat, [25, 100, 400], jitter=0.6)[1]
    low, high = entry["gain_per_doubling_ci"]
    assert low < 0 < high and abs(entry["gain_per_doubling"]) < 0.3
    assert entry["status"] == "flat" and "flat (no gain per doubling these seeds resolve)" in format_advice([entry])


def test_one_seed_has_no_interval():
    entry = fit_sweep({25: {0: 70.0}, 50: {0: 72.0}, 100: {0: 74.0}})
    assert entry["gain_per_doubling"] == pytest.approx(2.0) and entry["gain_per_doubling_ci"] is None
    assert entry["predicted"] == pytest.approx(76.0) and entry["predicted_ci"] is None and entry["status"] == "unknown"


def test_it_refuses_to_extrapolate_from_two_volumes_and_real_only_is_not_volume_zero(tmp_path):
    exp, entries = _advice(tmp_path, linear, [25, 100])  # real-only cells too: still two volumes, not three
    [entry] = entries
    assert entry["refused"] == "only 2 volumes (25, 100 per class): the advisor extrapolates from at least 3"
    assert "predicted" not in entry and "next_cost" not in entry
    assert format_advice(entries) == ("mnist5k / mini_resnet / 2-shot, bridged++: only 2 volumes (25, 100 per class): "
                                      "the advisor extrapolates from at least 3")
    single = write_store(tmp_path / "single", sweep_records(linear, [25], NOISE), [25])
    assert advise(single, collect_records(read_results(single))) == []  # one volume: no sweep at all
    assert format_advice([]).startswith("no volume sweep here")


def test_the_fit_uses_only_the_seeds_every_volume_has(tmp_path):
    lines = sweep_records(linear, [25, 50, 100], NOISE[:3])
    lines.append(record("bridged", 9, 10.0, volume=50))  # a seed the other volumes lack
    exp = write_store(tmp_path / "exp", lines, [25, 50, 100])
    [entry] = advise(exp, collect_records(read_results(exp)))
    assert entry["seeds"] == 3 and entry["gain_per_doubling"] == pytest.approx(2.0)


def test_the_next_doubling_costs_the_images_still_to_make_at_the_measured_speed(tmp_path):
    exp = write_store(tmp_path / "exp", sweep_records(linear, [25, 50, 100], NOISE), [25, 50, 100])
    write_generation(exp, "mnist5k", per_class=100, generated=1000, seconds=100.0)  # 10 images/s
    [entry] = advise(exp, collect_records(read_results(exp)))
    cost = entry["next_cost"]
    assert (cost["per_class"], cost["images"]) == (100, 1000) and cost["seconds"] == pytest.approx(100.0)
    assert cost["images_per_second"] == pytest.approx(10.0) and entry["classes"] == 10
    assert ("next doubling costs 1,000 images (100 more per class x 10 classes): 100 s at 10.00 images/s measured "
            "here (cpu); training a cell at the largest volume took 2 s") in format_advice([entry])
    # a set already larger than the next doubling costs nothing more to generate
    write_generation(exp, "mnist5k", per_class=500, generated=5000, seconds=100.0)
    assert advise(exp, collect_records(read_results(exp)))[0]["next_cost"]["images"] == 0


def test_the_next_doubling_on_a_gpu_is_in_gpu_hours_and_missing_timings_are_said(tmp_path):
    exp = write_store(tmp_path / "exp", sweep_records(linear, [25, 50, 100], NOISE), [25, 50, 100])
    [entry] = advise(exp, collect_records(read_results(exp)))
    assert entry["next_cost"]["seconds"] is None
    assert "next doubling costs 1,000 images (100 more per class x 10 classes); the set records no generation speed" \
        in format_advice([entry])
    write_generation(exp, "mnist5k", per_class=100, generated=1000, seconds=2000.0, device="cuda:0")  # 0.5 images/s
    assert ": 33.3 min, 0.56 GPU-hours at 0.50 images/s measured here (cuda:0)" in \
        format_advice(advise(exp, collect_records(read_results(exp))))


def test_advise_command_prints_text_and_json(tmp_path, capsys):
    exp, entries = _advice(tmp_path, saturating, [25, 50, 100, 200, 400], jitter=0.6)
    assert main(["advise", str(exp)]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0] == "mnist5k / mini_resnet / 2-shot, bridged++ (volumes 25, 50, 100, 200, 400 per class; 5 seeds)"
    assert "  curve: flattened" in text and "  next doubling (800 per class): predicted top-1 " in text
    assert main(["advise", str(exp), "--json"]) == 0
    [parsed] = json.loads(capsys.readouterr().out)
    assert parsed["status"] == "flattened" and parsed["gain_per_doubling"] == pytest.approx(entries[0]["gain_per_doubling"])
    assert main(["advise", str(tmp_path / "nothing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not an experiment folder" in err


def test_the_report_has_the_advisor_section_and_its_fit_in_the_volume_plot(tmp_path):
    exp, entries = _advice(tmp_path, linear, [25, 50, 100, 200], jitter=0.6)
    md = build_report(exp)["report"] and (exp / "report.md").read_text()
    section = md[md.index("## Volume advisor"):md.index("## Per-class effects")]
    assert f"- {format_advice(entries).splitlines()[0]}" in section
    assert "  - curve: still rising (the last segment's gain is resolved above 0)" in section
    assert "![Accuracy against synthetic volume, with the advisor's fit](figures/figure1.png)" in section
    assert math.isfinite(entries[0]["predicted"])
