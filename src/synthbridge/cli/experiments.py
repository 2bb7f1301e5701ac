"""`synthbridge run` and `synthbridge report`: experiment grids and their reports."""

from __future__ import annotations

import argparse
from pathlib import Path

from synthbridge.cli.args import parse_slice


def run(parser: argparse.ArgumentParser):
    """run an experiment grid from a YAML config (resumable; results in EXP_DIR/results/ and results.jsonl)"""
    parser.add_argument("config", help="YAML file, or the name of a shipped preset (see `synthbridge presets`)")
    parser.add_argument("--out", help="experiment folder (required unless --plan)")
    parser.add_argument("--plan", action="store_true",
                        help="print the cells, the stage-1 runs and the training compute, with and without stage-1 reuse; "
                             "run nothing")
    parser.add_argument("--rates", metavar="FILE|NAME",
                        help="with --plan: GPU-hours per phase at the rates of a benchmarks/gpu_check.py JSON, or of a "
                             "shipped one by name (h200)")
    parser.add_argument("--cell", type=parse_slice,
                        help="i/n: run worker i's share of n, the grid split evenly by estimated cost "
                             "(SLURM array tasks, demo workers)")
    parser.add_argument("--report", action="store_true", help="write the report when the grid is done")
    parser.add_argument("--sets-only", action="store_true",
                        help="only make the grid's shared sets (style tokens, synthetic sets, gap measures); with "
                             "--cell i/n, n processes share that work")

    def handle(args: argparse.Namespace) -> int:
        from synthbridge.errors import UserError
        from synthbridge.experiments import ExperimentConfig
        from synthbridge.study import run_study

        if args.plan:
            cfg = ExperimentConfig.from_yaml(args.config)
            if args.out and Path(args.out).exists() and not Path(args.out).is_dir():  # said now, not at `run`
                raise UserError(f"experiment folder {args.out!r} names a file, not a folder; pick a folder")
            return _print_plan(cfg, args.rates)
        if args.rates:
            raise UserError("--rates prices a --plan; add --plan (a run measures its own time)")
        if not args.out:
            raise UserError("run needs --out EXP_DIR (or --plan to only look at the grid)")
        summary = run_study(ExperimentConfig.from_yaml(args.config), args.out, cell_slice=args.cell, report=args.report,
                            sets_only=args.sets_only)
        if args.sets_only:
            print(f"sets made in {summary['seconds']:.0f}s -> {args.out}")
            return 0
        print(f"{summary['ran']} cells run, {summary['mine'] - summary['ran']} already done "
              f"({summary['mine']} of {summary['cells']} in this worker) in {summary['seconds']:.0f}s -> {args.out}")
        if args.report:
            print(f"report: {summary['report']['report']}")
        return 0

    return handle


def _print_plan(cfg, rates: str | None = None) -> int:
    from synthbridge.experiments.cells import plan
    from synthbridge.experiments.estimate import format_hours, gpu_hours, read_rates

    measured = read_rates(rates) if rates else None  # a bad rate file is said before the counting
    summary = plan(cfg)
    print(f"{summary['cells']} cells; stage-1 (synthetic stage) runs: {summary['stage1_runs_without_reuse']} without "
          f"reuse, {summary['stage1_runs_with_reuse']} with reuse")
    print(f"synthetic sets: {summary['sets']} ({summary['sets_learned_from_real']} fitted to real images: one per "
          f"dataset and real subset); token and adapter trainings: {summary['adaptations']}")
    without, with_reuse = summary["images_without_reuse"], summary["images_with_reuse"]
    if without:
        print(f"training compute (images through forward+backward): {without:,} without reuse, {with_reuse:,} with "
              f"reuse ({with_reuse / without:.1%})")
    if summary["datasets_not_found"]:
        print(f"not counted in the compute (dataset neither here nor of known size): "
              f"{', '.join(summary['datasets_not_found'])}")
    if measured is None:
        print("GPU-hours: add --rates h200 (an H200's measured rates, shipped) or --rates FILE (the JSON of "
              "`python benchmarks/gpu_check.py` on your GPU)")
    else:
        print("\n".join(format_hours(gpu_hours(cfg, measured, summary))))
    return 0


def report(parser: argparse.ArgumentParser):
    """write report.html and report.md for an experiment folder"""
    parser.add_argument("exp_dir", help="experiment folder made by `synthbridge run`")

    def handle(args: argparse.Namespace) -> int:
        from synthbridge.reporting import build_report

        result = build_report(args.exp_dir)
        for line in result["findings"]:
            print(line)
        print(f"report: {result['report']}")
        return 0

    return handle


def presets(parser: argparse.ArgumentParser):
    """list the experiment presets shipped with synthbridge (for `synthbridge run NAME`)"""

    def handle(args: argparse.Namespace) -> int:
        from synthbridge.experiments.config import preset_names, preset_path

        for name in preset_names():
            with preset_path(name) as path:
                print(f"{name:16s} {path}")
        return 0

    return handle
