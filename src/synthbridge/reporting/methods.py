"""The comparison of the ways of fitting synthetic images to the real data (`experiments.methods`), side by side.

For each setting (dataset, model, shots) whose grid has bridged transfer on a set made with a method other than
plain prompts: per method, top-1 (mean ± std over seeds), the paired gain over real only and over bridged with
plain prompts (± what the seeds resolve, with the verdict of `stats.outcome`), the synthetic-real gap of its sets
(FD, KID, real-vs-synthetic accuracy: mean over the sets measured, one per real subset for a method that learns
from the cells' shots) and what its learning cost here; then one sentence naming the method that helps most --
or that none does, whichever way the numbers come out.
"""

from __future__ import annotations

import statistics
from collections import defaultdict

from synthbridge.experiments.arms import ARMS
from synthbridge.experiments.methods import METHODS
from synthbridge.reporting.stats import outcome, paired_gain, summarise
from synthbridge.reporting.tables import setting_name


def gaps_by_method(gaps: list[dict]) -> dict[tuple, dict]:
    """{(dataset, method, shots): {fd, kid, accuracy: summaries over its measured sets, sets: count}}."""
    grouped = defaultdict(list)
    for record in gaps:
        grouped[(record["dataset"], record["method"], record.get("shots"))].append(record)
    found = {}
    for key, records in grouped.items():
        values = lambda name, scale=1.0: [scale * r[name] for r in records if r.get(name) is not None]  # noqa: E731
        found[key] = {"fd": values("fd"), "kid": values("kid_mean", 1000.0),
                      "accuracy": values("real_vs_synthetic_accuracy", 100.0), "sets": len(records)}
    return found


def _gap_of(gaps: dict, dataset: str, method: str, shots) -> dict | None:
    return gaps.get((dataset, method, shots if METHODS.get(method).learns_from_real else None)) \
        or gaps.get((dataset, method, None))


def method_rows(table: dict, cfg: dict, gaps: dict) -> list[dict]:
    """One entry per setting with a method other than plain prompts: its rows (one per bridged arm, plain first)."""
    volume = cfg["volumes"][0]
    found = []
    for group, arms in table.items():
        bridged = [a for a in arms if a in ARMS and ARMS.get(a).strategy == "bridged" and ARMS.get(a).mixup
                   and ARMS.get(a).head_reinit and ARMS.get(a).pretrained and arms[a].get(volume, {}).get(None)]
        if not any(ARMS.get(a).method != "plain" for a in bridged):
            continue
        real = arms.get("real", {}).get(None, {}).get(None, {})
        plain = arms.get("bridged", {}).get(volume, {}).get(None, {})
        rows = []
        for arm in sorted(bridged, key=lambda a: list(METHODS).index(ARMS.get(a).method)):
            runs = arms[arm][volume][None]
            method = ARMS.get(arm).method
            over_real, over_plain = paired_gain(runs, real), paired_gain(runs, plain) if method != "plain" else None
            rows.append({"arm": arm, "method": method, "label": METHODS.get(method).label,
                         "top1": summarise(list(runs.values())), "over_real": over_real, "over_plain": over_plain,
                         "verdict_real": outcome(over_real), "verdict_plain": outcome(over_plain) if over_plain else None,
                         "gap": _gap_of(gaps, group[0], method, group[2])})
        found.append({"setting": setting_name(group), "group": group, "volume": volume, "rows": rows,
                      "statement": statement(rows)})
    return found


def statement(rows: list[dict]) -> str:
    """Which method helps most over bridged transfer with plain prompts, said as the seeds allow."""
    tried = [r for r in rows if r["over_plain"]]
    if not tried:
        return "No method other than plain prompts shares seeds with bridged transfer on plain prompts."
    best = max(tried, key=lambda r: r["over_plain"]["gain"])
    better = [r for r in tried if r["verdict_plain"] == "better"]
    worse = [r["label"] for r in tried if r["verdict_plain"] == "worse"]
    gain = best["over_plain"]
    half = "" if gain["resolves"] is None else f" ± {gain['resolves']:.2f}"
    if better:
        top = max(better, key=lambda r: r["over_plain"]["gain"])
        g = top["over_plain"]
        text = (f"{top['label']} helps most: {g['gain']:+.2f} ± {g['resolves']:.2f} points over bridged transfer on "
                f"plain prompts ({g['n']} paired seeds, p = {g['p']:.3f})")
        others = [r["label"] for r in better if r is not top]
        text += f"; {', '.join(others)} also beat plain prompts" if others else ""
    else:
        text = (f"No method beats plain prompts by a margin these seeds resolve; the largest difference is "
                f"{best['label']} at {gain['gain']:+.2f}{half} points ({best['verdict_plain']})")
    if worse:
        text += f". Worse than plain prompts (resolved): {', '.join(worse)}"
    return text + "."


def _gain(g: dict | None, verdict: str | None) -> str:
    if not g:
        return "–"
    half = "" if g["resolves"] is None else f" ± {g['resolves']:.2f}"
    return f"{g['gain']:+.2f}{half} ({verdict})"


def _mean(values: list[float], fmt: str) -> str:
    if not values:
        return "–"
    spread = f" ± {statistics.stdev(values):{fmt}}" if len(values) > 1 else ""
    return f"{statistics.mean(values):{fmt}}{spread}"


def methods_section(found: list[dict]) -> list[str]:
    """The report's markdown for the methods comparison (nothing when the grid compares no methods)."""
    if not found:
        return []
    md = ["", "## Ways of fitting the synthetic data to the real data", "",
          "Bridged transfer on sets made each way (see the README's methods section): top-1 mean ± std over seeds, "
          "the paired gain over real only and over bridged on plain prompts (± the 95% half-width, and the verdict), "
          "and the gap of its sets (mean ± std over the sets measured: one per real subset where the method learns "
          "from the cells' own shots).", ""]
    for entry in found:
        md += [f"### {entry['setting']}, {entry['volume']} synthetic images per class", "", entry["statement"], "",
               "| method | top-1 | seeds | gain over real only | gain over plain prompts | FD | KID ×1000 | "
               "real-vs-synthetic accuracy (%) | sets measured |", "|---|---|---|---|---|---|---|---|---|"]
        for r in entry["rows"]:
            gap = r["gap"] or {"fd": [], "kid": [], "accuracy": [], "sets": 0}
            md.append(f"| {r['label']} | {r['top1']['mean']:.2f} ± {r['top1']['std']:.2f} | {r['top1']['n']} | "
                      f"{_gain(r['over_real'], r['verdict_real'])} | {_gain(r['over_plain'], r['verdict_plain'])} | "
                      f"{_mean(gap['fd'], '.2f')} | {_mean(gap['kid'], '.1f')} | {_mean(gap['accuracy'], '.1f')} | "
                      f"{gap['sets']} |")
        md.append("")
    return md
