"""The embedded world's commands: its assets, the font-render baseline, the builders of its backbones and
generator, the generator's fidelity, and `demo` (the embedded study). They import `synthbridge.embedded`
only when run, so the CLI works without it."""

from __future__ import annotations

import argparse
import dataclasses
import json

from synthbridge.cli.args import config_from_args, non_negative_int, positive_float, positive_int, sizes
from synthbridge.errors import UserError


def assets(parser: argparse.ArgumentParser):
    """print where the embedded generator and backbones live (for plain diffusers/timm code)"""
    parser.add_argument("--json", action="store_true", help="print JSON")

    def run(args: argparse.Namespace) -> int:
        from synthbridge.embedded.assets import describe_assets

        info = describe_assets()
        if args.json:
            print(json.dumps(info, indent=2))
        else:
            for key, entry in info.items():
                state = "ok" if entry["exists"] else "MISSING (rebuild with: " + entry["build"] + ")"
                print(f"{key:12s} {entry['path']}  [{state}]")
                print(f"{'':12s} {entry['usage']}")
        return 0

    return run


def render(parser: argparse.ArgumentParser):
    """draw synthetic digits from fonts (a procedural baseline in the synthetic-folder layout)"""
    parser.add_argument("--dataset", default="mnist5k", help="dataset whose classes to draw (single characters)")
    parser.add_argument("--per-class", type=positive_int, default=100)
    parser.add_argument("--out", required=True)
    parser.add_argument("--size", type=positive_int, default=32)
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--style", choices=["font", "hand"], default="font", help="font fill, or pen strokes")
    parser.add_argument("--overwrite", action="store_true", help="redraw every image")

    def run(args: argparse.Namespace) -> int:
        from synthbridge.embedded.render import RenderConfig, render_folder

        cfg = config_from_args(RenderConfig, args)
        summary = render_folder(cfg, overwrite=args.overwrite)
        print(f"{summary['images']} images ({summary['rendered_now']} new) in {args.out}")
        return 0

    return run


def build_backbones(parser: argparse.ArgumentParser):
    """pretrain the embedded backbones (mini_resnet, mini_vit) on the glyph source task"""
    parser.add_argument("--models", nargs="+", default=None, help="which backbones (default: all embedded)")
    parser.add_argument("--steps", type=positive_int, dest="steps_each", help="AdamW steps per backbone")
    parser.add_argument("--train-per-class", type=positive_int)
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--out-dir", help="where to write the weights (default: the package's assets)")

    def run(args: argparse.Namespace) -> int:
        from synthbridge.embedded.backbones import BackboneBuildConfig, build_backbones
        from synthbridge.embedded.models import EMBEDDED_MODELS

        if unknown := [m for m in args.models or () if m not in EMBEDDED_MODELS]:
            raise UserError(f"unknown embedded backbone {unknown[0]!r}; choose from {', '.join(EMBEDDED_MODELS)}")
        cfg = config_from_args(BackboneBuildConfig, args)
        if args.steps_each is not None:
            cfg = dataclasses.replace(cfg, steps=tuple((name, args.steps_each) for name in cfg.models))
        record = build_backbones(cfg)
        print(f"built in {record['total_seconds']:.0f}s -> {cfg.out_dir}")
        return 0

    return run


def build_generator(parser: argparse.ArgumentParser):
    """train the embedded text-to-image generator (tiny Stable Diffusion) from a fixed seed"""
    from synthbridge.embedded.assets import GENERATOR_DIR
    from synthbridge.embedded.build import SAMPLERS

    parser.add_argument("--out", default=str(GENERATOR_DIR), help="output folder (default: the embedded asset folder)")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--vae-steps", type=positive_int, help="VAE optimizer steps")
    parser.add_argument("--unet-steps", type=positive_int, help="UNet + text encoder optimizer steps")
    parser.add_argument("--corpus-size", type=positive_int, help="procedural images rendered for training")
    parser.add_argument("--guidance-scale", type=positive_float, help="recorded default guidance scale")
    parser.add_argument("--sampler", choices=SAMPLERS, help="scheduler saved with the pipeline")
    parser.add_argument("--quick", action="store_true", help="a tiny build in seconds (tests; not a usable generator)")
    parser.add_argument("--fidelity-per-class", type=non_negative_int, default=0,
                        help="after building, measure fidelity with N images per digit and record it (0: skip)")
    parser.add_argument("--threads", type=positive_int, help="torch CPU threads")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing generator in --out")

    def run(args: argparse.Namespace) -> int:
        from synthbridge.embedded.build import GeneratorBuildConfig, build

        cfg = config_from_args(GeneratorBuildConfig.quick(args.seed) if args.quick else GeneratorBuildConfig(), args)
        record = build(cfg, args.out, overwrite=args.overwrite, fidelity_per_class=args.fidelity_per_class)
        info = record["build"]
        print(f"generator -> {args.out} ({info['folder_bytes'] / 1e6:.1f} MB, {info['seconds']['total_build'] / 60:.1f} min; "
              f"vae l1 {info['vae']['final_l1']:.4f}, unet loss {info['unet']['final_loss']:.4f})")
        if record.get("fidelity"):
            print(json.dumps(record["fidelity"], indent=2))
        return 0

    return run


def fidelity(parser: argparse.ArgumentParser):
    """measure how recognisable and varied the generator's digits are (JSON report)"""
    from synthbridge.embedded.assets import GENERATOR_DIR

    parser.add_argument("--generator", default=str(GENERATOR_DIR), help="diffusers pipeline folder")
    parser.add_argument("--per-class", type=positive_int, default=100, help="generated images per digit")
    parser.add_argument("--diversity-sizes", type=sizes, default=(100, 500), help="images per class, e.g. 100,500")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--sampler", choices=["ddim", "dpm++"], help="default: the generator's own scheduler")
    parser.add_argument("--guidance-scale", type=positive_float, help="default: the generator's recorded default")
    parser.add_argument("--steps", type=positive_int, help="inference steps (default: the recorded default)")
    parser.add_argument("--batch-size", type=positive_int, default=100, help="prompts per pipeline call")
    parser.add_argument("--real-classifier-steps", type=positive_int, default=600,
                        help="training steps of the real-data judge (mini_resnet on mnist5k)")
    parser.add_argument("--domain-classifier-steps", type=positive_int, default=2000,
                        help="training steps of the in-domain judge (mini_resnet on corpus digits)")
    parser.add_argument("--work-dir", help="cache of the trained judges (default ~/.cache/synthbridge/fidelity)")
    parser.add_argument("--out", help="report file (default GENERATOR/fidelity.json)")
    parser.add_argument("--sheet", help="also write a contact sheet PNG (digits x first 10 seeds)")
    parser.add_argument("--record", action="store_true", help="copy the summary into GENERATOR/synthbridge.json")

    def run(args: argparse.Namespace) -> int:
        from synthbridge.embedded.fidelity import FidelityConfig, measure_fidelity, summary

        cfg = config_from_args(FidelityConfig, args, num_inference_steps=args.steps)
        report = measure_fidelity(args.generator, cfg, out=args.out, sheet=args.sheet, record=args.record)
        print(json.dumps(summary(report), indent=2))
        return 0

    return run


def demo(parser: argparse.ArgumentParser):
    """run the embedded study end to end (generation, style inversion, training grid, report)"""
    parser.add_argument("--out", default="demo", help="experiment folder (resumable: rerun to finish)")
    parser.add_argument("--quick", action="store_true", help="a 2-minute look: a small grid")
    parser.add_argument("--preset", help="another shipped grid to run the same way (e.g. methods: the ways of fitting "
                                         "synthetic data compared); default: embedded")
    parser.add_argument("--workers", type=positive_int,
                        help="training processes, one torch thread each (default: one per core, at most 4)")

    def run(args: argparse.Namespace) -> int:
        from synthbridge.embedded.demo import format_phases, format_table, run_demo

        if args.preset and args.quick:
            raise UserError("--quick and --preset exclude each other: --quick is the preset embedded-quick")
        report = run_demo(args.out, quick=args.quick, workers=args.workers, preset=args.preset)
        print(format_table(report))
        print(format_phases(report["phases"]))
        print(f"wall time {report['seconds']:.0f}s ({report['workers']} workers); report: {report['report']}")
        return 0

    return run
