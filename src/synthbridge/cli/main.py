"""`main()`: the command list, the parser, and one-line errors (exit 2) instead of tracebacks."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import warnings

from synthbridge.cli import advise, embedded, experiments, gap, generate, info, invert, lora, train
from synthbridge.cli.args import Command, Parser
from synthbridge.errors import UserError
from synthbridge.io import PROGRESS_ENV

COMMANDS: dict[str, Command] = {
    "datasets": info.datasets,
    "generate": generate.generate,
    "invert": invert.invert,
    "lora": lora.lora,
    "gap": gap.gap,
    "train": train.train,
    "run": experiments.run,
    "report": experiments.report,
    "advise": advise.advise,
    "presets": experiments.presets,
}
# The embedded world's commands, when it is installed (they import it only when run).
EMBEDDED_COMMANDS: dict[str, Command] = {
    "assets": embedded.assets,
    "render": embedded.render,
    "build-backbones": embedded.build_backbones,
    "build-generator": embedded.build_generator,
    "fidelity": embedded.fidelity,
    "demo": embedded.demo,
}


QUIET_COMMANDS = ("datasets", "presets", "report", "advise", "assets")  # no progress bars: no --no-progress

# One example per command, at the end of its --help (each parses as written: tests/cli).
EXAMPLES = {
    "datasets": "synthbridge datasets",
    "generate": "synthbridge generate --dataset imagefolder:data/train --generator sd15/ --per-class 100 --out synth/",
    "invert": "synthbridge invert --dataset imagefolder:data/train --generator sd15/ --shots 10 --out style/",
    "lora": "synthbridge lora --dataset imagefolder:data/train --generator sd15/ --per-class --out lora/",
    "gap": "synthbridge gap --dataset imagefolder:data/train --synthetic synth/ --out gap.json",
    "train": "synthbridge train --dataset imagefolder:data/train --shots 10 --strategy bridged --synthetic synth/ "
             "--out runs/bridged",
    "run": "synthbridge run embedded-quick --out exp/ --report",
    "report": "synthbridge report exp/",
    "advise": "synthbridge advise exp/",
    "presets": "synthbridge presets",
    "assets": "synthbridge assets --json",
    "render": "synthbridge render --dataset mnist5k --per-class 200 --out synth/render",
    "build-backbones": "synthbridge build-backbones --models mini_resnet",
    "build-generator": "synthbridge build-generator --out generator/",
    "fidelity": "synthbridge fidelity --generator mini --per-class 20",
    "demo": "synthbridge demo --quick --out demo-quick",
}


def _embedded_available() -> bool:
    try:
        import synthbridge.embedded  # noqa: F401
    except ImportError:
        return False
    return True


def build_parser() -> argparse.ArgumentParser:
    from synthbridge import __version__

    parser = Parser(prog="synthbridge", description="Synthetic images for transfer learning.")
    parser.add_argument("--version", action="version", version=f"synthbridge {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    commands = {**COMMANDS, **(EMBEDDED_COMMANDS if _embedded_available() else {})}
    for name, setup in commands.items():
        help_text = (setup.__doc__ or "").strip().splitlines()[0]
        sub_parser = sub.add_parser(name, help=help_text, description=help_text,
                                    epilog=f"example: {EXAMPLES[name]}" if name in EXAMPLES else None)
        sub_parser.set_defaults(handler=setup(sub_parser))
        if name not in QUIET_COMMANDS and "--no-progress" not in sub_parser._option_string_actions:
            sub_parser.add_argument("--no-progress", action="store_true",
                                    help="no progress bars (where stderr is not a terminal they redraw every 30 s)")
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
    progress_before = os.environ.get(PROGRESS_ENV)
    if getattr(args, "no_progress", False):
        os.environ[PROGRESS_ENV] = "0"  # every bar in this command, and in the worker processes it starts
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
        if progress_before is None:
            os.environ.pop(PROGRESS_ENV, None)
        else:
            os.environ[PROGRESS_ENV] = progress_before
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
