"""The comparison of the ways of fitting synthetic images to the real data (`experiments.methods`), side by side.

For each setting (dataset, model, shots) whose grid has bridged transfer (or on-the-fly replacement, with or without
bridged transfer first) on a set made with a method other than plain prompts: per method and way of using it, top-1
(mean ± std over seeds), the paired gain over real only and over bridged with plain prompts (± what the seeds
resolve, with the verdict of `stats.outcome`), the synthetic-real gap of its sets (FD, KID, real-vs-synthetic
accuracy: mean over the sets measured, one per real subset for a method that learns from the cells' shots), what it
cost here (generating its images, learning its tokens or adapters, training its cells: `costs.option_cost`) and
that cost per point of gain over real only, so that methods are compared at the same budget of images and by what
each point costs; then one sentence naming the method that helps most -- or that none does, whichever way the
numbers come out.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable

from synthbridge.experiments.arms import ARMS
from synthbridge.experiments.methods import METHODS
from synthbridge.reporting.costs import fmt_seconds
from synthbridge.reporting.stats import fmt_mean, outcome, paired_gain, summarise
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


# the strategies a method is compared under (bridged transfer first), and how its row names each
COMPARED = {"bridged": "", "bridged_replace": " (bridged, then replace)", "replace": " (replace real)"}


def method_rows(table: dict, cfg: dict, gaps: dict, cost_of: Callable[[tuple, str, int], dict] | None = None) -> list[dict]:
    """One entry per setting with a method other than plain prompts: its rows (one per arm of a COMPARED strategy
    with the default switches, plain first). `cost_of(group, arm, volume)`: what its cells cost (`option_cost`)."""
    volume = cfg["volumes"][0]
    found = []
    for group, arms in table.items():
        compared = [a for a in arms if a in ARMS and ARMS.get(a).strategy in COMPARED and ARMS.get(a).mixup
                    and ARMS.get(a).head_reinit and ARMS.get(a).pretrained and arms[a].get(volume, {}).get(None)]
        if not any(ARMS.get(a).method != "plain" for a in compared):
            continue
        real = arms.get("real", {}).get(None, {}).get(None, {})
        plain = arms.get("bridged", {}).get(volume, {}).get(None, {})
        rows = []
        order = lambda a: (list(METHODS).index(ARMS.get(a).method), list(COMPARED).index(ARMS.get(a).strategy))  # noqa: E731
        for arm in sorted(compared, key=order):
            runs = arms[arm][volume][None]
            method, strategy = ARMS.get(arm).method, ARMS.get(arm).strategy
            baseline = method == "plain" and strategy == "bridged"
            over_real, over_plain = paired_gain(runs, real), paired_gain(runs, plain) if not baseline else None
            cost = cost_of(group, arm, volume) if cost_of else None
            per_point = (cost["total"] / over_real["gain"] if cost and cost["complete"] and over_real
                         and over_real["gain"] > 0 else None)
            rows.append({"arm": arm, "method": method, "label": METHODS.get(method).label + COMPARED[strategy],
                         "top1": summarise(list(runs.values())), "over_real": over_real, "over_plain": over_plain,
                         "verdict_real": outcome(over_real), "verdict_plain": outcome(over_plain) if over_plain else None,
                         "gap": _gap_of(gaps, group[0], method, group[2]), "cost": cost,
                         "seconds_per_point": per_point})
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


def _cost(cost: dict | None) -> str:
    if not cost:
        return "–"
    parts = " + ".join(fmt_seconds(cost[k]) for k in ("generation", "inversion", "training"))
    return f"{fmt_seconds(cost['total'])} ({parts})" + ("" if cost["complete"] else ", partly recorded")


def _per_point(row: dict) -> str:
    if row["seconds_per_point"] is not None:
        return fmt_seconds(row["seconds_per_point"])
    return "no gain" if row["over_real"] and row["over_real"]["gain"] <= 0 else "–"


def methods_section(found: list[dict]) -> list[str]:
    """The report's markdown for the methods comparison (nothing when the grid compares no methods)."""
    if not found:
        return []
    md = ["", "## Ways of fitting the synthetic data to the real data", "",
          "Bridged transfer on sets made each way (see the documentation's methods page): top-1 mean ± std over seeds, "
          "the paired gain over real only and over bridged on plain prompts (± the 95% half-width, and the verdict), "
          "the gap of its sets (mean ± std over the sets measured: one per real subset where the method learns "
          "from the cells' own shots), and what it cost in this run at the same synthetic images per class: "
          "generating its sets, learning its tokens or adapters and training its cells, in all and per point of "
          "gain over real only.", ""]
    for entry in found:
        md += [f"### {entry['setting']}, {entry['volume']} synthetic images per class", "", entry["statement"], "",
               "| method | top-1 | seeds | gain over real only | gain over plain prompts | FD | KID ×1000 | "
               "real-vs-synthetic accuracy (%) | sets measured | cost (generate + learn + train) | cost per point |",
               "|---|---|---|---|---|---|---|---|---|---|---|"]
        for r in entry["rows"]:
            gap = r["gap"] or {"fd": [], "kid": [], "accuracy": [], "sets": 0}
            md.append(f"| {r['label']} | {fmt_mean(r['top1'])} | {r['top1']['n']} | "
                      f"{_gain(r['over_real'], r['verdict_real'])} | {_gain(r['over_plain'], r['verdict_plain'])} | "
                      f"{_mean(gap['fd'], '.2f')} | {_mean(gap['kid'], '.1f')} | {_mean(gap['accuracy'], '.1f')} | "
                      f"{gap['sets']} | {_cost(r['cost'])} | {_per_point(r)} |")
        md.append("")
    return md
