"""Per-class effects: which classes gain and which lose from the best way of using synthetic images (the opening
answer's pick), beside each class's generation fidelity and gap where the folder records them.

Per-class top-1 is in every cell's metrics (`per_class`); the gain of a class is paired over the seeds both arms
have, with the same verdict rule as the rest of the report. Fidelity per class (how often a classifier of the real
data recognises a generated image of that class), in percent, is read from the first of

    EXP_DIR/analysis/fidelity-<set>.json   {"per_class": {class: percent}} (the shape of a recognition measure)
    EXP_DIR/synthetic/<set>/generation.json  with a --filter classifier: the share of the class's images it accepted
                                             at the first try (counts.per_class: retried, given_up)
    GENERATOR/fidelity.json                  the generator's own record (the folder generation.json names):
                                             recognition.real_classifier.per_class, measured when it was built at
                                             its own sampling settings, not on this set (said so in the report)

and a per-class gap from analysis/gap-<set>.json's `per_class` ({class: number or {"fd": number}}) where present;
`analyse_set` records the gap of the whole set only, so the set's figures are shown instead.

A class where the generator fails: fidelity below FAIL_FIDELITY percent, or listed in generation.json's
`failing_classes`; where no fidelity is recorded, the class whose loss is largest (and whether it is resolved).
"""

from __future__ import annotations

import statistics
from pathlib import Path

from synthbridge.io import read_json_if_present
from synthbridge.reporting.stats import outcome, paired_gain

FAIL_FIDELITY = 50.0


def class_gains(arm_records: list[dict], real_records: dict[int, dict]) -> list[dict]:
    """Per class (in the records' class order): real-only and arm means, and the paired gain over seeds."""
    arm = {r["key"]["seed"]: r["metrics"].get("per_class") or {} for r in arm_records}
    real = {s: r["metrics"].get("per_class") or {} for s, r in real_records.items()}
    names = list(next(iter(arm.values()), {}))
    rows = []
    for name in names:
        with_arm = {s: v[name] for s, v in arm.items() if v.get(name) is not None}
        alone = {s: v[name] for s, v in real.items() if v.get(name) is not None}
        if gain := paired_gain(with_arm, alone):
            common = sorted(set(with_arm) & set(alone))
            rows.append({"class": name, "real": statistics.mean(alone[s] for s in common),
                         "with": statistics.mean(with_arm[s] for s in common), "gain": gain, "outcome": outcome(gain)})
    return rows


def fidelity(exp_dir: Path, name: str) -> tuple[dict[str, float] | None, str, list[str]]:
    """({class: percent} or None, where it comes from, the classes generation.json lists as failing) of set
    synthetic/<name>."""
    generation = read_json_if_present(Path(exp_dir) / "synthetic" / name / "generation.json") or {}
    failing = list(generation.get("failing_classes") or [])
    if (record := read_json_if_present(Path(exp_dir) / "analysis" / f"fidelity-{name}.json")) and record.get("per_class"):
        return {str(k): float(v) for k, v in record["per_class"].items() if v is not None}, \
            f"recognised by a classifier of the real data (analysis/fidelity-{name}.json)", failing
    counts = (generation.get("counts") or {}).get("per_class") or {}
    if (generation.get("config") or {}).get("filter") and counts:
        shares = {}
        for cls, c in counts.items():
            finished = c.get("images", 0) + c.get("given_up", 0)
            if finished:
                shares[cls] = 100.0 * (1 - c.get("retried", 0) / finished)
        return shares, f"accepted at the first try by the generation filter (synthetic/{name}/generation.json)", failing
    if recorded := _generator_fidelity(generation):
        return recorded[0], recorded[1], failing
    return None, f"not recorded (no analysis/fidelity-{name}.json, no generation filter)", failing


def _generator_fidelity(generation: dict) -> tuple[dict[str, float], str] | None:
    """The generator's own per-class recognition by a real-data classifier, where its folder records one
    (GENERATOR/fidelity.json, `recognition.real_classifier.per_class`): measured at the generator's sampling
    settings when it was built, not on this set."""
    folder = (generation.get("generator") or {}).get("folder")
    record = read_json_if_present(Path(folder) / "fidelity.json") if folder else None
    per_class = (((record or {}).get("recognition") or {}).get("real_classifier") or {}).get("per_class")
    if not per_class or not set(generation.get("classes") or []) <= set(map(str, per_class)):
        return None
    sampling = ", ".join(f"{k} {v}" for k, v in (record.get("sampling") or {}).items())
    return ({str(k): float(v) for k, v in per_class.items() if v is not None},
            f"the generator's own record (fidelity.json in its folder: images a real-data classifier recognises, "
            f"measured at {sampling or 'its defaults'}; not measured on this set)")


def class_gap(exp_dir: Path, name: str) -> tuple[dict[str, float] | None, dict | None]:
    """({class: FD} where analysis/gap-<name>.json has `per_class`, else None; the set's gap record or None)."""
    record = read_json_if_present(Path(exp_dir) / "analysis" / f"gap-{name}.json")
    if not record:
        return None, None
    per_class = record.get("per_class")
    if not isinstance(per_class, dict):
        return None, record
    values = {str(k): (v.get("fd") if isinstance(v, dict) else v) for k, v in per_class.items()}
    return {k: float(v) for k, v in values.items() if v is not None}, record


def measured(exp_dir: Path, name: str) -> bool:
    """Whether set synthetic/<name> has its gap measures (analysis/gap-<name>.json)."""
    return (Path(exp_dir) / "analysis" / f"gap-{name}.json").is_file()


def failing_statement(rows: list[dict], fidelities: dict | None, listed: list[str]) -> str:
    """The sentence naming a class where the generator fails (see the module), or the worst-off class."""
    low = sorted((f, c) for c, f in (fidelities or {}).items() if f < FAIL_FIDELITY)
    if low or listed:
        low_names = {c for _, c in low}
        named = [f"'{c}' (fidelity {f:.0f}%)" for f, c in low]
        named += [f"'{c}' (most of its images failed the generation checks)" for c in listed if c not in low_names]
        return "The generator fails on " + ", ".join(named) + "."
    if not rows:
        return "No per-class accuracy recorded."
    worst = min(rows, key=lambda r: r["gain"]["gain"])
    resolved = "resolved" if worst["outcome"] == "worse" else "not resolved by these seeds"
    if fidelities:
        return (f"No class falls below {FAIL_FIDELITY:.0f}% fidelity; the class that gains least is '{worst['class']}' "
                f"({worst['gain']['gain']:+.2f} points, {resolved}).")
    losing = [r["class"] for r in rows if r["outcome"] == "worse"]
    lead = (f"Classes that lose with synthetic images (resolved): {', '.join(repr(c) for c in losing)}; "
            if losing else "No class loses by a margin these seeds resolve; ")
    return f"{lead}the largest loss is '{worst['class']}' ({worst['gain']['gain']:+.2f} points, {resolved})."


def effects(exp_dir: Path, records_table: dict, answer_rows: list[dict]) -> list[dict]:
    """Per opening answer: its setting and way, the per-class rows (with fidelity and gap where recorded), where
    the fidelity comes from, the set's gap record and the failing-class sentence."""
    found = []
    for row in answer_rows:
        best = row["best"]
        real = records_table[(row["dataset"], row["model"], row["shots"])]["real"][None][None]
        rows = class_gains(best["records"], real)
        name = next((n for n in (record["set"] for record in best["records"]) if n and measured(exp_dir, n)),
                    best["records"][0]["set"])  # a per-subset method: the first of its sets with a gap
        fidelities, source, listed = fidelity(exp_dir, name)
        gaps, gap_record = class_gap(exp_dir, name)
        for r in rows:
            r["fidelity"] = (fidelities or {}).get(r["class"])
            r["gap_fd"] = (gaps or {}).get(r["class"])
        found.append({"setting": row["setting"], "label": best["label"], "volume": best["volume"],
                      "outcome": best["outcome"], "rows": rows, "fidelity_source": source, "gap": gap_record,
                      "statement": failing_statement(rows, fidelities, listed)})
    return found


def _cell(value: float | None, fmt: str) -> str:
    return "–" if value is None else format(value, fmt)


def per_class_section(found: list[dict]) -> list[str]:
    """The report's markdown lines for the per-class effects (the figure goes in by report.py)."""
    md = ["", "## Per-class effects of the best way found", ""]
    if not found:
        return md + ["No setting has an answer yet (see above)."]
    md += ["Per class: top-1 with real only and with the best way found (mean over the seeds both have), the paired "
           "gain ± its 95% half-width, and the verdict by the rule above.", ""]
    for entry in found:
        gap = entry["gap"]
        gap_text = (f"; gap of the whole set: FD {gap.get('fd', float('nan')):.2f}, real-vs-synthetic accuracy "
                    f"{100 * gap.get('real_vs_synthetic_accuracy', float('nan')):.1f}%") if gap else ""
        md += [f"### {entry['setting']}: {entry['label']}, {entry['volume']} per class", "",
               f"{entry['statement']} Fidelity: {entry['fidelity_source']}{gap_text}.", ""]
        if not entry["rows"]:
            continue
        md += ["| class | real only | with synthetic | gain | verdict | fidelity (%) | gap FD |", "|---|---|---|---|---|---|---|"]
        for r in entry["rows"]:
            half = "" if r["gain"]["resolves"] is None else f" ± {r['gain']['resolves']:.2f}"
            md.append(f"| {r['class']} | {r['real']:.1f} | {r['with']:.1f} | {r['gain']['gain']:+.2f}{half} | "
                      f"{r['outcome']} | {_cell(r['fidelity'], '.1f')} | {_cell(r['gap_fd'], '.2f')} |")
        md.append("")
    return md
