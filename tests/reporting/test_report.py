"""build_report on hand-made experiment folders (cells stored as the runner stores them; no model runs), the
findings, the HTML page and the sample grids."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import pytest
from PIL import Image
from stores import cell_set, store_records

from helpers import write_synthetic_folder
from synthbridge.errors import UserError
from synthbridge.io import FORMAT
from synthbridge.reporting import build_report, findings, sample_grid, volume_runs

SEEDS = range(4)
MIXED_NOISE = (0.5, -0.5, 1.0, -1.0)  # naive mixing: no gain, resolved to < 2 points
BRIDGED_NOISE = (0.0, 0.2, -0.2, 0.0)


def _record(arm: str, shots: int, seed: int, top1: float, volume: int | None = None, steps: int | None = None,
            leep: dict | None = None) -> dict:
    key = {"dataset": "digits", "model": "mini_resnet", "arm": arm, "shots": shots, "seed": seed, "volume": volume,
           "synthetic_steps": steps}
    spread = 8.0 if arm == "bridged" else 2.0  # per class: bridged gains on class 0 what it loses on class 1
    record = {"cell": f"{arm}-{shots}-{volume}-{steps}-{seed}", "key": key, "arm_label": arm,
              "set": cell_set("digits", arm),
              "metrics": {"top1": top1, "num_test": 100, "per_class": {"0": top1 + spread, "1": top1 - spread},
                          "seconds": {"real": 2.0, "evaluate": 0.5, "total": 2.5}}}
    if leep is not None:
        record["leep"] = leep
    return record


def write_experiment(root: Path, classes: list[str] | None = None, name: str = "tiny", sets: tuple[str, ...] = ()) -> Path:
    """An experiment folder: digits / mini_resnet at 2 and 4 shots, 4 seeds, real | mixed | bridged (volumes 4, 8,
    16; bridged also with 5 synthetic steps). Bridged gains 3 points at the headline volume and grows with volume;
    mixing gains nothing. `sets`: synthetic folders to write (of `classes`)."""
    root.mkdir(parents=True)
    config = {"name": name, "datasets": ["digits"], "models": ["mini_resnet"], "arms": ["real", "mixed", "bridged"],
              "volumes": [4, 8, 16], "volume_arms": ["bridged"], "synthetic_steps": [5], "shots": [2, 4],
              "seeds": list(SEEDS), "grids": []}
    (root / "experiment.json").write_text(json.dumps({"format": FORMAT, "config": config,
                                                      "environment": {"device": "cpu"}}))
    records = []
    for shots in (2, 4):
        for seed in SEEDS:
            real = 70.0 + seed + (5.0 if shots == 4 else 0.0)
            records.append(_record("real", shots, seed, real, leep={"pretrained": -1.5, "after_synthetic": None}))
            records.append(_record("mixed", shots, seed, real + MIXED_NOISE[seed], volume=4))
            for volume, gain in ((4, 3.0), (8, 4.0), (16, 5.0)):
                records.append(_record("bridged", shots, seed, real + gain + BRIDGED_NOISE[seed], volume=volume,
                                       leep={"pretrained": -1.5, "after_synthetic": -1.0 - seed / 10}))
            records.append(_record("bridged", shots, seed, real + 2.0, volume=4, steps=5))
    store_records(root, records)
    for index, folder in enumerate(sets):
        write_synthetic_folder(root / "synthetic" / folder, classes, per_class=3, size=8, seed=index)
    return root


def test_report_tables_and_findings(tmp_path):
    exp = write_experiment(tmp_path / "exp")
    result = build_report(exp)
    md = (exp / "report.md").read_text()
    assert result["cells"] == 2 * 4 * 6 and f"{2 * 4 * 6} finished cells." in md
    assert {row["arm"] for row in result["rows"]} == {"real", "mixed", "bridged"} and len(result["rows"]) == 6
    # the headline table: mean ± std over seeds, the paired gain (3 points, significant) and what the seeds resolve
    assert "| digits | mini_resnet | 2 | real only | 71.50 ± 1.29 | 4 |  |  |" in md.splitlines()
    assert "| digits | mini_resnet | 4 | bridged++ | 79.50 ± 1.25 | 4 | +3.00 *, p=0.000 | 0.26 |" in md.splitlines()
    assert "| digits | mini_resnet | 2 | naive mixing | 71.50 ± 1.22 | 4 | +0.00, p=1.000 | 1.45 |" in md.splitlines()
    assert "| digits | mini_resnet | 2 | bridged++ | 16 | 76.50 ± 1.25 | 4 |" in md.splitlines()  # volume table
    assert "| digits | mini_resnet | 4 | 5 | 78.50 ± 1.29 |" in md.splitlines()  # synthetic steps table
    assert "| digits | mini_resnet | bridged++ | -1.5 | -1.150 |" in md.splitlines()  # LEEP
    assert "| mini_resnet | total | 2.5 | 48 |" in md.splitlines()  # time per stage
    assert result["findings"] == [
        "Naive mixing is not reliably better than real only: HOLDS here (naive mixing against real only: better in 0, "
        "worse in 0, no difference in 2, unresolved in 0 of 2 settings; paired over seeds).",
        "Bridged transfer beats real only: HOLDS here (bridged++ against real only: better in 2, worse in 0, "
        "no difference in 0, unresolved in 0 of 2 settings; paired over seeds).",
        "Gains keep growing with synthetic volume: HOLDS here (rising with volume to a peak at the largest, which beats "
        "the smallest, in 2; the largest worse than or no different from the smallest in 0; unresolved in 0 of 2 "
        "settings; paired over seeds)."]
    assert [line[2:] for line in md.splitlines() if line.startswith("- ") and "here (" in line] == result["findings"]
    # the answer comes first: per setting, the best way found (bridged at 16 per class, +5 points) and its verdict
    answer = md[md.index("## The answer"):md.index("## Findings")]
    assert "| digits / mini_resnet / 2-shot | bridged++, 16 per class (of 5) | +5.00 ± 0.26 | 4 | **better**: use it |" in answer
    # figures sit in their sections: the volume plot with the advisor, the per-class bars, then the shots plot
    assert re.findall(r"^!\[(.*)\]\(figures/figure\d\.png\)$", md, re.M) == [
        "Accuracy against synthetic volume, with the advisor's fit",
        "Per-class gain over real only, coloured by generation fidelity", "Gain over real only against shots"]
    assert md.index("## The answer") < md.index("## Findings") < md.index("## Volume advisor") < md.index("## Figures")
    assert "Classes that lose with synthetic images (resolved): '1'" in md  # bridged trades class 1 for class 0
    rows = (exp / "results.csv").read_text().splitlines()
    assert rows[0].startswith("cell,dataset,model,arm,shots,volume,synthetic_steps,seed,top1,num_test,seconds_total")
    assert len(rows) == 1 + 48 and "bridged-2-16-None-3,digits,mini_resnet,bridged,2,16,,3,78.0,100,2.5,-1.5,-1.3" in rows


def test_report_shows_the_gap_measures_as_percentages(tmp_path):
    exp = write_experiment(tmp_path / "exp")
    (exp / "analysis").mkdir()
    (exp / "analysis" / "gap-digits.json").write_text(json.dumps(
        {"dataset": "digits", "method": "plain", "style": False, "fd": 19.06, "kid_mean": 0.3188,
         "real_vs_synthetic_accuracy": 0.916}))
    build_report(exp)
    assert "| digits | plain prompts | – | 19.06 | 318.80 | 91.6% |" in (exp / "report.md").read_text().splitlines()


def test_report_is_a_pure_function_of_the_folder(tmp_path):
    exp = write_experiment(tmp_path / "exp")
    build_report(exp)
    first = (exp / "report.md").read_text(), (exp / "results.csv").read_text()
    build_report(exp)
    assert ((exp / "report.md").read_text(), (exp / "results.csv").read_text()) == first


def test_report_errors_name_the_folder(tmp_path):
    with pytest.raises(UserError, match="not an experiment folder"):
        build_report(tmp_path)
    exp = write_experiment(tmp_path / "exp")
    for stored in (exp / "results").iterdir():  # an experiment whose cells have not finished
        stored.unlink()
    with pytest.raises(UserError, match="no finished cells yet"):
        build_report(exp)


def test_html_embeds_every_figure_as_a_png_and_renders_the_tables(tmp_path, digits):
    exp = write_experiment(tmp_path / "exp", digits.classes, name="tiny <b>", sets=("digits", "digits-dsi"))
    build_report(exp)
    md, page = (exp / "report.md").read_text(), (exp / "report.html").read_text()
    paths = re.findall(r"^!\[.*\]\((figures/figure\d\.png)\)$", md, re.M)
    assert len(paths) == 4  # volume plot, per-class gains, shots plot, sample grid
    uris = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(uris) == len(paths)
    for uri, path in zip(uris, paths):
        data = base64.b64decode(uri, validate=True)
        assert data == (exp / path).read_bytes()
        image = Image.open(io.BytesIO(data))
        assert image.format == "PNG"
        image.load()  # the whole image decodes
        assert min(image.size) > 50
    assert page.count("<figure>") == 4 and page.count("<figcaption>") == 4
    caption = "Samples per class, digits (one row per class): real | synthetic | dataset style inversion"
    assert f"<figcaption>{caption}</figcaption>" in page
    assert not re.search(r'(?:src|href)="(?!data:)', page)  # self-contained: nothing fetched from elsewhere
    # every markdown table is an HTML table; none is left as text
    assert page.count("<table>") == len(re.findall(r"^\|(?:---\|)+$", md, re.M)) == 8  # 5 + answer + 2 per-class
    assert "<th>gain vs real (* p&lt;0.05)</th>" in page and "<td>+3.00 *, p=0.000</td>" in page
    assert "|---" not in page and "| digits |" not in page
    assert "<li>Bridged transfer beats real only: HOLDS here" in page
    assert '<pre><code class="language-json">' in page
    # the markdown's text is escaped, not taken as HTML
    assert "<title>synthbridge report: tiny &lt;b&gt;</title>" in page and "<h1>synthbridge report: tiny &lt;b&gt;</h1>" in page
    assert "<b>" not in page


def test_sample_grid_has_a_labelled_row_per_class_and_a_panel_per_set(tmp_path, digits):
    from synthbridge.grids import GAP, HEADER_HEIGHT, LABEL_WIDTH, PAD
    from synthbridge.reporting.figures import GRID_CELL

    exp = write_experiment(tmp_path / "exp", digits.classes, sets=("digits", "digits-dsi"))
    data, titles = sample_grid(exp, "digits", per_source=6)
    assert titles == "real | synthetic | dataset style inversion"
    image = Image.open(io.BytesIO(data))
    step = GRID_CELL + PAD
    # real: 6 columns; each synthetic set holds 3 images per class, so 3 columns
    assert image.size == (LABEL_WIDTH + (6 + 3 + 3) * step + 2 * GAP, HEADER_HEIGHT + len(digits.classes) * step)
    pixels = image.convert("L")
    assert pixels.getextrema()[0] < 100  # class names, titles and images drawn on the white canvas
    assert pixels.crop((0, HEADER_HEIGHT, LABEL_WIDTH, image.size[1])).getextrema()[0] < 100  # the class names

    (tmp_path / "only-plain").mkdir()
    write_synthetic_folder(tmp_path / "only-plain" / "synthetic" / "digits", digits.classes, per_class=2, size=8)
    assert sample_grid(tmp_path / "only-plain", "digits")[1] == "real | synthetic"
    assert sample_grid(tmp_path / "exp", "nosuchset") is None  # a dataset that cannot be loaded
    assert sample_grid(tmp_path / "nothing", "digits") is None  # no synthetic set: nothing to compare with


def test_volume_finding_needs_a_significant_gain_not_just_rising_means():
    cfg = {"volumes": [100, 25, 500], "arms": ["real", "bridged"], "volume_arms": ["bridged"]}

    def table(by_volume):
        return {("mnist5k", "mini_resnet", 2): {"bridged": {v: {None: seeds} for v, seeds in by_volume.items()}}}

    noisy = {25: {0: 70.0, 1: 80.0, 2: 74.0}, 100: {0: 75.0, 1: 72.0, 2: 77.0}, 500: {0: 69.0, 1: 86.0, 2: 76.0}}
    steady = {25: {0: 70.0, 1: 80.0, 2: 74.0}, 100: {0: 71.0, 1: 81.2, 2: 75.1}, 500: {0: 72.0, 1: 82.1, 2: 76.2}}
    [noisy_line] = [line for line in findings([], table(noisy), cfg) if line.startswith("Gains keep growing")]
    [steady_line] = [line for line in findings([], table(steady), cfg) if line.startswith("Gains keep growing")]
    assert "INCONCLUSIVE" in noisy_line and "unresolved in 1 of 1 settings" in noisy_line  # means rise, seeds disagree
    assert "HOLDS" in steady_line and "DOES NOT" not in steady_line
    level = {25: {0: 70.0, 1: 80.0, 2: 74.0}, 100: {0: 70.1, 1: 80.0, 2: 74.1},  # 500 vs 25: +0.3, -0.2, +0.1
             500: {0: 70.3, 1: 79.8, 2: 74.1}}
    [level_line] = [line for line in findings([], table(level), cfg) if line.startswith("Gains keep growing")]
    assert "DOES NOT HOLD" in level_line and "no different from the smallest in 1" in level_line


def test_findings_count_each_setting_as_better_worse_no_difference_or_unresolved():
    cfg = {"volumes": [100], "arms": ["real", "bridged"], "volume_arms": []}
    many = range(16)
    steady = {"real": {None: {None: {s: 70.0 + s % 4 for s in many}}},  # bridged +3 +- 1: resolves < 1 point
              "bridged": {100: {None: {s: 73.0 + s % 4 + (s % 2) for s in many}}}}
    noisy = {"real": {None: {None: {0: 60.0, 1: 70.0, 2: 65.0}}},  # 3 seeds, gains -9..+7: resolves ~20 points
             "bridged": {100: {None: {0: 51.0, 1: 77.0, 2: 64.0}}}}
    table = {("digits", "mini_resnet", 2): steady, ("digits", "mini_vit", 2): noisy}
    [line] = [line for line in findings([], table, cfg) if line.startswith("Bridged transfer")]
    # one setting resolved better, one unresolved: neither more than half -> inconclusive (was "does not hold")
    assert "INCONCLUSIVE here" in line and "better in 1, worse in 0, no difference in 0, unresolved in 1 of 2 settings" in line
    [alone] = [line for line in findings([], {("digits", "mini_resnet", 2): steady}, cfg) if line.startswith("Bridged")]
    assert "HOLDS" in alone and "better in 1," in alone
    [few] = [line for line in findings([], {("digits", "mini_vit", 2): noisy}, cfg) if line.startswith("Bridged")]
    assert "INCONCLUSIVE" in few and "unresolved in 1 of 1" in few


def test_findings_need_both_arms_of_a_comparison():
    cfg = {"volumes": [100], "arms": ["real", "bridged"], "volume_arms": []}
    assert findings([], {("digits", "mini_resnet", 2): {"real": {None: {None: {0: 70.0, 1: 71.0}}}}}, cfg) == []


def test_volume_comparisons_use_the_seeds_every_volume_has():
    arms = {"bridged": {25: {None: {0: 70.0, 1: 72.0}}, 100: {None: {s: 80.0 + s for s in range(10)}},
                        500: {None: {0: 74.0, 1: 76.0}, 400: {0: 1.0}}}}
    assert volume_runs(arms, "bridged") == {25: {0: 70.0, 1: 72.0}, 100: {0: 80.0, 1: 81.0}, 500: {0: 74.0, 1: 76.0}}
    assert volume_runs(arms, "mixed") == {}


def test_one_seed_has_no_spread_to_show(tmp_path):
    """With one seed the spread is unknown, not zero: "± n/a" in the tables and the terminal summary, and no
    zero-width error bar."""
    from stores import record, write_store

    from synthbridge.reporting.figures import _half
    from synthbridge.reporting.stats import fmt_mean, summarise

    exp = write_store(tmp_path / "exp", [record("real", 0, 70.0), record("bridged", 0, 74.0, volume=4)], volumes=[4])
    build_report(exp)
    text = (exp / "report.md").read_text()
    assert "74.00 ± n/a" in text and "± 0.00" not in text
    assert fmt_mean(summarise([74.0]), "6.2f", "5.2f") == " 74.00 ±   n/a"  # the demo's fixed columns keep their width
    assert fmt_mean(summarise([74.0, 76.0])) == "75.00 ± 1.41"
    assert _half(None) != _half(None) and _half(1.5) == 1.5  # NaN: matplotlib draws no bar
