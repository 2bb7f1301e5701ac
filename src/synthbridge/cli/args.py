"""What every command shares: argument types, the one-line-error parser, and building a config from arguments.

Argument types turn bad numbers into one-line argparse errors (exit 2). `config_from_args` builds a
command's typed config from its parsed arguments by field name, so no command copies fields one by one.
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Callable
from typing import Any

Command = Callable[[argparse.ArgumentParser], Callable[[argparse.Namespace], int]]


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors: the problem and where to look, not the whole usage."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def config_from_args(config: Any, args: argparse.Namespace, *, prefix: str = "", **overrides):
    """A dataclass config from `args`: every field whose name (with `prefix`) is an argument that was given
    (not None) takes its value, lists become tuples; `overrides` set fields directly. `config` is a dataclass
    (its defaults fill the rest) or an instance (its values fill the rest)."""
    fields = dataclasses.fields(config)
    values = {}
    for field in fields:
        if field.name in overrides:
            values[field.name] = overrides[field.name]
            continue
        value = getattr(args, prefix + field.name, None)
        if value is not None:
            values[field.name] = tuple(value) if isinstance(value, list) else value
    if unknown := set(overrides) - {f.name for f in fields}:
        raise TypeError(f"{config!r} has no fields {sorted(unknown)}")
    return dataclasses.replace(config, **values) if not isinstance(config, type) else config(**values)


def _number(text: str, cast, kind: str, bound: str, ok, finite: bool = False):
    """`text` as `cast`, or a one-line argparse error naming the rule (`kind` `bound`, e.g. 'whole number > 0')."""
    try:
        value = cast(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a {kind} {bound}, got {text!r}") from None
    if not ok(value) or (finite and value in (float("inf"), float("-inf"))):
        raise argparse.ArgumentTypeError(f"must be a {'finite ' if finite else ''}{kind} {bound}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    return _number(text, int, "whole number", "> 0", lambda v: v > 0)


def non_negative_int(text: str) -> int:
    return _number(text, int, "whole number", ">= 0", lambda v: v >= 0)


def positive_float(text: str) -> float:
    return _number(text, float, "number", "> 0", lambda v: v > 0, finite=True)  # NaN fails v > 0


def non_negative_float(text: str) -> float:
    return _number(text, float, "number", ">= 0", lambda v: v >= 0, finite=True)


def fraction(text: str) -> float:
    value = positive_float(text)
    if not value < 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {text!r}")
    return value


def probability(text: str) -> float:
    value = non_negative_float(text)
    if not value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text!r}")
    return value


def parse_slice(text: str) -> tuple[int, int]:
    """'i/n' with 0 <= i < n."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must look like i/n (for example 0/4), got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"needs 0 <= i < n, got {text!r}")
    return index, count


def sizes(text: str) -> tuple[int, ...]:
    """Comma-separated whole numbers >= 2, e.g. '100,500'."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated whole numbers, got {text!r}") from None
    if not values or any(n < 2 for n in values):
        raise argparse.ArgumentTypeError(f"each size must be >= 2, got {text!r}")
    return values


def add_data_args(group) -> None:
    """--data-root and --download, which every command that reads a dataset takes."""
    group.add_argument("--data-root", help="folder of full-scale datasets")
    group.add_argument("--download", action="store_true", help="let torchvision download a missing dataset")


def add_adaptation_env_args(parser, grid_help: str) -> None:
    """The environment options of the commands that adapt a generator to the real images (invert, lora): checkpoints,
    a grid, the device, data paths, progress, and --resume / --overwrite of the output folder."""
    env = parser.add_argument_group("environment")
    env.add_argument("--checkpoint-every", type=positive_int, help="steps between checkpoints (default: a tenth of the run)")
    env.add_argument("--grid", action="store_true", help=grid_help)
    env.add_argument("--device", help="cuda, cuda:1, mps or cpu (default: accelerate's device)")
    env.add_argument("--gradient-checkpointing", action="store_true",
                     help="recompute the UNet's activations in the backward: less GPU memory, slower steps (SDXL)")
    env.add_argument("--deterministic", action="store_true",
                     help="torch's deterministic kernels: on a GPU a resumed run then ends exactly where an "
                          "uninterrupted one does (without: equal up to CUDA's rounding), at some speed")
    add_data_args(env)
    env.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    parser.add_argument("--overwrite", action="store_true", help="replace what --out holds")
