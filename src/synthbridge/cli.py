"""The `synthbridge` command: one subcommand per stage of the study.

Every subcommand builds its typed config from the arguments and calls one function of its stage's
module. Bad input raises UserError, printed here as one line with exit code 2 (no traceback).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import warnings
from typing import Callable

from synthbridge.errors import UserError

COMMANDS: dict[str, Callable[[argparse.ArgumentParser], Callable[[argparse.Namespace], int]]] = {}


def command(name: str, help: str):
    """Register a subcommand: the decorated function adds its arguments and returns its handler."""

    def add(setup):
        COMMANDS[name] = (help, setup)
        return setup

    return add


# --- argument types: bad numbers are caught by argparse as one-line errors (exit 2) ---------------------------

def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number > 0, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a whole number > 0, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number > 0, got {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text!r}")
    return value


def fraction(text: str) -> float:
    value = positive_float(text)
    if not value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number >= 0, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text!r}")
    return value


# --- train ------------------------------------------------------------------------------------------------------

def _stage_args(parser: argparse.ArgumentParser, prefix: str, label: str) -> None:
    group = parser.add_argument_group(f"{label} stage (defaults depend on the world: embedded or full)")
    group.add_argument(f"--{prefix}-steps", type=positive_int, help="optimizer steps (wins over epochs)")
    group.add_argument(f"--{prefix}-epochs", type=positive_float, help="passes over the stage's images")
    group.add_argument(f"--{prefix}-lr", type=positive_float, help="peak learning rate (AdamW, cosine)")
    group.add_argument(f"--{prefix}-batch-size", type=positive_int, help="global batch size")
    group.add_argument(f"--{prefix}-weight-decay", type=non_negative_float)
    group.add_argument(f"--{prefix}-augment", choices=["none", "light", "timm"])
    group.add_argument(f"--{prefix}-label-smoothing", type=non_negative_float)
    group.add_argument(f"--{prefix}-warmup-steps", type=non_negative_int)


def _stage_from_args(args: argparse.Namespace, prefix: str, mixup: bool | None):
    from synthbridge.training import StageConfig

    get = lambda key: getattr(args, f"{prefix}_{key}")
    return StageConfig(steps=get("steps"), epochs=get("epochs"), lr=get("lr"), batch_size=get("batch_size"),
                       weight_decay=get("weight_decay"), augment=get("augment"), mixup=mixup,
                       label_smoothing=get("label_smoothing"), warmup_steps=get("warmup_steps"))


@command("train", "fine-tune a pretrained classifier with one strategy (real, synthetic, mixed, bridged)")
def train_command(parser: argparse.ArgumentParser):
    parser.add_argument("--dataset", default="mnist5k", help="registry name (see `synthbridge datasets`) or imagefolder:PATH")
    parser.add_argument("--model", default="mini_resnet", help="mini_resnet, mini_vit or a timm model name")
    parser.add_argument("--strategy", default="real", help="real, synthetic, mixed or bridged")
    parser.add_argument("--out", required=True, help="run folder (config.json, metrics.json, model.safetensors)")
    parser.add_argument("--synthetic", help="synthetic image folder (from `render` or `generate`)")
    parser.add_argument("--synthetic-per-class", type=positive_int, help="use only the first N synthetic images per class")
    parser.add_argument("--shots", type=positive_int, help="real training images per class (few-shot)")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--no-pretrained", action="store_true", help="start from random weights")
    parser.add_argument("--checkpoint", help="start from this weights file (.safetensors, or a torch file read weights-only)")
    parser.add_argument("--real-fraction", type=fraction, help="mixed: share of real images in every batch (default: pool both)")
    parser.add_argument("--no-mixup", action="store_true", help="bridged/synthetic: no mixup/cutmix on synthetic images")
    parser.add_argument("--no-head-reinit", action="store_true", help="bridged: keep the stage-1 classifier head")
    _stage_args(parser, "real", "real")
    _stage_args(parser, "synthetic", "synthetic")
    env = parser.add_argument_group("environment")
    env.add_argument("--data-root", help="folder of full-scale datasets")
    env.add_argument("--download", action="store_true", help="let torchvision download a missing dataset")
    env.add_argument("--num-workers", type=non_negative_int)
    env.add_argument("--mixed-precision", choices=["no", "fp16", "bf16"], default="no")
    env.add_argument("--checkpoint-every", type=positive_int, help="steps between checkpoints")
    env.add_argument("--report-to", default="auto", help="trackers: auto (TensorBoard if installed), none, tensorboard, wandb, mlflow")
    env.add_argument("--lr-scale", choices=["none", "linear", "sqrt"], default="none",
                     help="scale each stage's lr by (global batch / --lr-base-size), linearly or by its square root")
    env.add_argument("--lr-base-size", type=positive_int, default=256)
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run in --out")

    def run(args: argparse.Namespace) -> int:
        from synthbridge.training import TrainConfig, train

        cfg = TrainConfig(
            dataset=args.dataset, model=args.model, strategy=args.strategy, synthetic=args.synthetic,
            synthetic_per_class=args.synthetic_per_class, shots=args.shots, seed=args.seed,
            pretrained=not args.no_pretrained, checkpoint=args.checkpoint, real_fraction=args.real_fraction,
            head_reinit=not args.no_head_reinit, real=_stage_from_args(args, "real", None),
            synthetic_stage=_stage_from_args(args, "synthetic", False if args.no_mixup else None),
            data_root=args.data_root, download=args.download, num_workers=args.num_workers,
            mixed_precision=args.mixed_precision, checkpoint_every=args.checkpoint_every, report_to=args.report_to,
            lr_scale=args.lr_scale, lr_base_size=args.lr_base_size)
        metrics = train(cfg, args.out, resume=args.resume, overwrite=args.overwrite)
        stages = ", ".join(f"{name} {record['steps']} steps {record['seconds']:.0f}s"
                           + (f" (top1 {record['top1']:.1f})" if "top1" in record else "")
                           for name, record in metrics["stages"].items())
        from accelerate import PartialState

        if PartialState().is_main_process:  # one line per launch, not one per process
            print(f"top1 {metrics['top1']:.2f}% on {metrics['num_test']} test images [{stages}] -> {args.out}")
        return 0

    return run


# --- small informational commands ---------------------------------------------------------------------------------

@command("datasets", "list the registered datasets")
def datasets_command(parser: argparse.ArgumentParser):
    def run(args: argparse.Namespace) -> int:
        from synthbridge.data import DATASETS

        for name in DATASETS.names():
            print(name)
        print("imagefolder:PATH")
        return 0

    return run


@command("assets", "print where the embedded generator and backbones live (for plain diffusers/timm code)")
def assets_command(parser: argparse.ArgumentParser):
    parser.add_argument("--json", action="store_true", help="print JSON")

    def run(args: argparse.Namespace) -> int:
        from synthbridge.assets import describe_assets

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


@command("render", "draw synthetic digits from fonts (a procedural baseline in the synthetic-folder layout)")
def render_command(parser: argparse.ArgumentParser):
    parser.add_argument("--dataset", default="mnist5k", help="dataset whose classes to draw (single characters)")
    parser.add_argument("--per-class", type=positive_int, default=100)
    parser.add_argument("--out", required=True)
    parser.add_argument("--size", type=positive_int, default=32)
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--style", choices=["font", "hand"], default="font", help="font fill, or pen strokes")
    parser.add_argument("--overwrite", action="store_true", help="redraw every image")

    def run(args: argparse.Namespace) -> int:
        from synthbridge.render import RenderConfig, render_folder

        cfg = RenderConfig(dataset=args.dataset, per_class=args.per_class, out=args.out, size=args.size,
                           seed=args.seed, style=args.style)
        summary = render_folder(cfg, overwrite=args.overwrite)
        print(f"{summary['images']} images ({summary['rendered_now']} new) in {args.out}")
        return 0

    return run


@command("build-backbones", "pretrain the embedded backbones (mini_resnet, mini_vit) on the glyph source task")
def build_backbones_command(parser: argparse.ArgumentParser):
    parser.add_argument("--models", nargs="+", default=None, help="which backbones (default: all embedded)")
    parser.add_argument("--steps", type=positive_int, help="AdamW steps per backbone")
    parser.add_argument("--train-per-class", type=positive_int)
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--out-dir", help="where to write the weights (default: the package's assets)")

    def run(args: argparse.Namespace) -> int:
        from dataclasses import replace

        from synthbridge.models.embedded import EMBEDDED_MODELS
        from synthbridge.models.pretrain import BackboneBuildConfig, build_backbones

        cfg = BackboneBuildConfig(seed=args.seed)
        if args.models:
            if unknown := [m for m in args.models if m not in EMBEDDED_MODELS]:
                raise UserError(f"unknown embedded backbone {unknown[0]!r}; choose from {', '.join(EMBEDDED_MODELS)}")
            cfg = replace(cfg, models=tuple(args.models))
        if args.steps is not None:
            cfg = replace(cfg, steps=tuple((name, args.steps) for name in cfg.models))
        for key in ("train_per_class", "out_dir"):
            if getattr(args, key) is not None:
                cfg = replace(cfg, **{key: getattr(args, key)})
        record = build_backbones(cfg)
        print(f"built in {record['total_seconds']:.0f}s -> {cfg.out_dir}")
        return 0

    return run


def parse_slice(text: str) -> tuple[int, int]:
    """'i/n' with 0 <= i < n."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must look like i/n (for example 0/4), got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"needs 0 <= i < n, got {text!r}")
    return index, count


@command("run", "run an experiment grid from a YAML config (resumable; results in EXP_DIR/results.jsonl)")
def run_command(parser: argparse.ArgumentParser):
    parser.add_argument("config", help="YAML file (see configs/)")
    parser.add_argument("--out", required=True, help="experiment folder")
    parser.add_argument("--cell", type=parse_slice, help="i/n: run worker i's share of n, the grid split evenly by estimated cost (SLURM array tasks, demo workers)")
    parser.add_argument("--report", action="store_true", help="write the report when the grid is done")

    def run(args: argparse.Namespace) -> int:
        from synthbridge.experiments import ExperimentConfig, run_experiment

        cfg = ExperimentConfig.from_yaml(args.config)
        summary = run_experiment(cfg, args.out, cell_slice=args.cell)
        print(f"{summary['ran']} cells run, {summary['mine'] - summary['ran']} already done "
              f"({summary['mine']} of {summary['cells']} in this worker) in {summary['seconds']:.0f}s -> {args.out}")
        if args.report:
            from synthbridge.reporting import build_report

            print(f"report: {build_report(args.out)['report']}")
        return 0

    return run


@command("report", "write report.html and report.md for an experiment folder")
def report_command(parser: argparse.ArgumentParser):
    parser.add_argument("exp_dir", help="experiment folder made by `synthbridge run`")

    def run(args: argparse.Namespace) -> int:
        from synthbridge.reporting import build_report

        result = build_report(args.exp_dir)
        for line in result["findings"]:
            print(line)
        print(f"report: {result['report']}")
        return 0

    return run


@command("demo", "run the embedded study end to end (generation, style inversion, training grid, report)")
def demo_command(parser: argparse.ArgumentParser):
    parser.add_argument("--out", default="demo", help="experiment folder (resumable: rerun to finish)")
    parser.add_argument("--quick", action="store_true", help="a 2-minute look: a small grid")
    parser.add_argument("--workers", type=positive_int,
                        help="training processes, one torch thread each (default: one per core, at most 4)")

    def run(args: argparse.Namespace) -> int:
        from synthbridge.demo import format_table, run_demo

        report = run_demo(args.out, quick=args.quick, workers=args.workers)
        print(format_table(report))
        print(f"wall time {report['seconds']:.0f}s ({report['workers']} workers); report: {report['report']}")
        return 0

    return run


# --- entry point ------------------------------------------------------------------------------------------------

class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: the problem and where to look, not the whole usage."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    # Import the stages that register subcommands of their own.
    from synthbridge import commands  # noqa: F401

    parser = Parser(prog="synthbridge", description="Synthetic images for transfer learning.")
    from synthbridge import __version__

    parser.add_argument("--version", action="version", version=f"synthbridge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    for name, (help_text, setup) in COMMANDS.items():
        sub_parser = sub.add_parser(name, help=help_text, description=help_text)
        sub_parser.set_defaults(handler=setup(sub_parser))
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    warnings.filterwarnings("ignore", category=FutureWarning)
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    # SIGTERM (kill, SLURM's time limit, a stopped demo worker) unwinds like Ctrl-C: `finally` blocks remove
    # half-written temporary folders instead of leaving them behind.
    previous = signal.signal(signal.SIGTERM, _terminate) if threading.current_thread() is threading.main_thread() else None
    try:
        return int(args.handler(args) or 0)
    except UserError as exc:
        print(f"synthbridge {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"synthbridge {args.command}: interrupted; rerun the same command (with --resume where it has one) to continue",
              file=sys.stderr)
        return 130
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
        _close_process_group()


def _close_process_group() -> None:
    """Under torchrun / accelerate launch, end the process group before the interpreter exits.

    A process that exits with its gloo group alive can abort while its worker threads are torn down
    ("terminate called without an active exception", SIGABRT), which fails the whole launch after the
    work itself succeeded.
    """
    dist = sys.modules.get("torch.distributed")  # no torch imported: no group to end (and no import to pay)
    if dist is not None and dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def _terminate(signum, frame):
    raise KeyboardInterrupt
