"""The answer the report opens with: per dataset x model x shots, the best way of using synthetic images this run
found (arm, set, volume, synthetic-stage length), its paired gain over real only, what its seeds resolve, and
what measuring it cost here.

The best way is the one with the largest mean paired gain among those whose gain is resolved above 0 (`outcome`
'better'); where none is, the largest mean gain of all, marked inconclusive with the seeds that would resolve it.
Picking the largest of several gains favours a lucky one: its interval is that of the pick alone.
"""

from __future__ import annotations

from pathlib import Path

from synthbridge.experiments.arms import ARMS
from synthbridge.reporting.costs import fmt_seconds, option_cost
from synthbridge.reporting.stats import RESOLUTION_POINTS, outcome, paired_gain, seeds_needed
from synthbridge.reporting.tables import setting_name


def _top1(seeds: dict) -> dict:
    return {s: r["metrics"]["top1"] for s, r in seeds.items()}


def options(arms: dict) -> list[dict]:
    """Every way a setting used synthetic images ({arm: {volume: {steps: {seed: record}}}}), with its paired gain
    over real only on the seeds both have; ways without a seed in common with real only are left out."""
    real = _top1(arms.get("real", {}).get(None, {}).get(None, {}))
    found = []
    for arm, volumes in arms.items():
        if arm not in ARMS or not ARMS.get(arm).uses_synthetic:
            continue
        for volume, lengths in volumes.items():
            for steps, seeds in lengths.items():
                if gain := paired_gain(_top1(seeds), real):
                    found.append({"arm": arm, "label": ARMS.get(arm).label, "method": ARMS.get(arm).method,
                                  "volume": volume, "steps": steps, "gain": gain, "outcome": outcome(gain),
                                  "records": [seeds[s] for s in sorted(seeds) if s in real]})
    return found


def best_option(arms: dict) -> dict | None:
    """The best way found (see the module), with `tried` (how many ways there were) and `seeds_needed`."""
    found = options(arms)
    if not found:
        return None
    pool = [o for o in found if o["outcome"] == "better"] or found
    best = max(pool, key=lambda o: (o["gain"]["gain"], o["gain"]["n"]))
    return {**best, "tried": len(found), "seeds_needed": seeds_needed(best["gain"]["sd"], best["gain"]["gain"])}


def answers(exp_dir: Path, records_table: dict) -> list[dict]:
    """One answer per setting of `records_table` (`tables.collect_records`) that has real-only cells and a way of
    using synthetic images on common seeds: the setting, the best option and its cost (`costs.option_cost`)."""
    rows = []
    for group, arms in records_table.items():
        best = best_option(arms)
        if best is None:
            continue
        cost = option_cost(exp_dir, best["volume"], best["records"])
        rows.append({"dataset": group[0], "model": group[1], "shots": group[2], "setting": setting_name(group),
                     "best": best, "cost": cost})
    return rows


def _way(best: dict) -> str:
    steps = "" if best["steps"] is None else f", {best['steps']} synthetic steps"
    return f"{best['label']}, {best['volume']} per class{steps}"


def verdict_text(best: dict) -> str:
    """What the seeds say of the best option: the outcome, and for an unresolved one the seeds that would resolve it."""
    gain, result = best["gain"], best["outcome"]
    if result == "better":
        return "**better**: use it"
    if result == "worse":
        return "**worse**: even the best way tried loses; use real only"
    if result == "no difference":
        return f"**no difference** (within ±{RESOLUTION_POINTS:g} points)"
    if gain["n"] < 2:
        return "**inconclusive**: 1 seed, no interval; run more seeds to tell how many would resolve it"
    needed = best["seeds_needed"]
    more = f"about {needed} seeds would resolve {abs(gain['gain']):.2f} points" if needed else \
        f"no practical number of seeds resolves {abs(gain['gain']):.2f} points"
    return f"**inconclusive**: {more}"


def _interval(gain: dict) -> str:
    if gain["resolves"] is None:
        return f"{gain['gain']:+.2f} (1 seed)"
    return f"{gain['gain']:+.2f} ± {gain['resolves']:.2f}"


def answer_table(rows: list[dict]) -> list[str]:
    """The report's opening section (markdown lines)."""
    md = ["", "## The answer: should synthetic images be used here, and how?", ""]
    if not rows:
        return md + ["No setting has real-only cells and cells with synthetic images on common seeds yet."]
    counts = {}
    for row in rows:
        counts[row["best"]["outcome"]] = counts.get(row["best"]["outcome"], 0) + 1
    md += [f"In {len(rows)} setting{'' if len(rows) == 1 else 's'}: " + ", ".join(f"{counts.get(k, 0)} {k}" for k in
                                                   ("better", "no difference", "worse", "unresolved")) +
           " (the best way found against real only; the rule of these words is under *How to read the verdicts*).", "",
           "Gain: paired over seeds, in points of top-1 on the real test split, ± the 95% confidence half-width. "
           "Cost: what measuring this way took in this run — generating the images it reads at the speed measured "
           "here (one set per real subset for a method that learns from the cells' shots), what those sets learned "
           "first (style inversion, tokens, LoRA), and training all its cells (seconds as recorded).", "",
           "| setting | best way found (of tried) | gain vs real only | seeds | verdict | cost: generation + "
           "learning + training = total |", "|---|---|---|---|---|---|"]
    for row in rows:
        best, cost = row["best"], row["cost"]
        md.append(f"| {row['setting']} | {_way(best)} (of {best['tried']}) | {_interval(best['gain'])} | "
                  f"{best['gain']['n']} | {verdict_text(best)} | {fmt_seconds(cost['generation'])} + "
                  f"{fmt_seconds(cost['inversion'])} + {fmt_seconds(cost['training'])} = "
                  f"{'' if cost['complete'] else 'at least '}{fmt_seconds(cost['total'])} |")
    return md
