"""Training throughput: synthbridge's loop against the loop timm's reference train.py runs, and the floor.

All three train the same model with the same batch, steps, optimizer (AdamW), schedule (cosine) and
augmentation on the same images, one after the other in this process, repeated and interleaved:

- synthbridge: `training.loop.train_stage` on an `imagefolder:` dataset (what `synthbridge train` runs), with the
  pipeline `train` picks for it (`memory` for small images: decoded once, augmented as batches) and, for
  comparison, the per-image `loader` pipeline,
- timm: the loop timm's `train.py` assembles, from timm's library API: `timm.data.create_dataset` /
  `create_loader` (its prefetcher normalises uint8 batches on the device), `create_optimizer_v2`,
  `create_scheduler_v2` with per-update steps, forward / backward / step,
- floor: forward, backward and AdamW on random tensors of the batch's shape: the arithmetic alone.

It prints images/s of each (median over --repeats) and the ratios synthbridge/timm and synthbridge/floor.

With --compile it compares instead eager against `torch.compile` (what `train --compile` does): synthbridge's loop
and the floor, each with one model per variant that is warmed up first (the compiled one compiles then, once), then
timed interleaved; it prints compiled/eager images/s, the warm-up's extra seconds (the compilation, from a cold
kernel cache) and the steps after which the compilation has paid for itself.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/train.py [--model mini_resnet] [--steps 100] [--threads 1]
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/train.py --compile [--model resnet18 --input-size 96]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

AUGMENT = dict(scale=(0.7, 1.0), ratio=(0.85, 1.18), hflip=0.0, color_jitter=0.2)  # synthbridge's "light"


def write_folder(root: Path, dataset: str, limit: int) -> Path:
    """The dataset's training images as an ImageFolder (train/<class>/<i>.png, test/ the same few)."""
    from synthbridge.data import load_dataset

    bundle = load_dataset(dataset)
    for split in ("train", "test"):
        for index in range(min(limit, len(bundle.train))):
            image, label = bundle.train[index]
            folder = root / split / bundle.classes[label]
            folder.mkdir(parents=True, exist_ok=True)
            image.save(folder / f"{index:05d}.png")
    return root


def synthbridge_setup(model_name: str, folder: Path, pipeline: str = "auto", compiled: bool = False,
                      size: int | None = None) -> dict:
    """What `train` builds before its loop: the dataset, the pipeline it picks, the model (compiled with --compile)."""
    from accelerate import Accelerator

    from synthbridge.data import load_dataset
    from synthbridge.models import create_model, input_size
    from synthbridge.training.config import TrainConfig
    from synthbridge.training.trainer import prepare

    bundle = load_dataset(f"imagefolder:{folder}")
    pipeline = TrainConfig(dataset=str(folder), model=model_name, pipeline=pipeline, input_size=size).resolve(
        input_size=input_size(model_name), image_size=bundle.image_size).pipeline  # what `train` would choose
    model = create_model(model_name, bundle.num_classes, pretrained=False, input_size=size)
    accelerator = Accelerator(cpu=True)
    return {"bundle": bundle, "pipeline": pipeline, "accelerator": accelerator,
            "model": prepare(accelerator, model, compiled), "plain": model}


def synthbridge_run(setup: dict, steps: int, batch: int, lr: float) -> float:
    """Images/s of one `train_stage` of `steps` steps on a prepared setup."""
    from synthbridge.models import data_config
    from synthbridge.training.config import StageConfig
    from synthbridge.training.loop import train_stage

    stage = StageConfig(steps=steps, lr=lr, batch_size=batch, weight_decay=0.05, augment="light", mixup=False,
                        label_smoothing=0.1, warmup_steps=0)
    bundle = setup["bundle"]
    with tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        train_stage(setup["model"], [bundle.train], [batch], bundle.num_classes, stage, "bench", 0, setup["accelerator"],
                    data_config(setup["plain"]), Path(tmp) / "ckpt.pt", steps + 1, 0, setup["pipeline"])
        return steps * batch / (time.perf_counter() - began)


def synthbridge_loop(model_name: str, folder: Path, steps: int, batch: int, lr: float, pipeline: str = "auto") -> float:
    return synthbridge_run(synthbridge_setup(model_name, folder, pipeline), steps, batch, lr)


def timm_loop(model_name: str, folder: Path, steps: int, batch: int, lr: float) -> float:
    import timm
    from timm.data import create_dataset, create_loader, resolve_data_config
    from timm.optim import create_optimizer_v2
    from timm.scheduler import create_scheduler_v2

    import synthbridge.plugins

    synthbridge.plugins.load_plugins()  # the embedded backbones are timm models once registered
    dataset = create_dataset("", root=str(folder / "train"), split="train", is_training=True)
    model = timm.create_model(model_name, pretrained=False, num_classes=len(dataset.reader.class_to_idx))
    config = resolve_data_config({}, model=model)
    loader = create_loader(dataset, input_size=config["input_size"], batch_size=batch, is_training=True,
                           interpolation=config["interpolation"], mean=config["mean"], std=config["std"],
                           num_workers=0, device=torch.device("cpu"), use_prefetcher=True, persistent_workers=False,
                           **AUGMENT)
    optimizer = create_optimizer_v2(model, opt="adamw", lr=lr, weight_decay=0.05)
    updates_per_epoch = len(loader)
    scheduler, _ = create_scheduler_v2(optimizer, sched="cosine", num_epochs=max(1, steps // updates_per_epoch + 1),
                                       step_on_epochs=False, updates_per_epoch=updates_per_epoch)
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    model.train()
    done, began = 0, time.perf_counter()
    while done < steps:
        for images, targets in loader:
            loss = criterion(model(images), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            done += 1
            scheduler.step_update(num_updates=done)
            if done == steps:
                break
    return steps * batch / (time.perf_counter() - began)


def floor_setup(model_name: str, compiled: bool = False, size: int | None = None) -> dict:
    """A timm model (10 classes) for the floor loop, compiled with --compile."""
    from synthbridge.models import compile_model, create_model, data_config

    model = create_model(model_name, 10, pretrained=False, input_size=size)
    shape = data_config(model)["input_size"]
    return {"model": compile_model(model, torch.device("cpu")) if compiled else model, "shape": shape, "plain": model}


def floor_run(setup: dict, steps: int, batch: int, lr: float) -> float:
    """Images/s of forward, backward and AdamW on one random batch, `steps` times."""
    from timm.optim import create_optimizer_v2

    model = setup["model"]
    optimizer = create_optimizer_v2(setup["plain"], opt="adamw", lr=lr, weight_decay=0.05)
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    images, targets = torch.randn(batch, *setup["shape"]), torch.randint(0, 10, (batch,))
    model.train()
    began = time.perf_counter()
    for _ in range(steps):
        loss = criterion(model(images), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return steps * batch / (time.perf_counter() - began)


def floor_loop(model_name: str, folder: Path, steps: int, batch: int, lr: float) -> float:
    return floor_run(floor_setup(model_name), steps, batch, lr)


def compile_comparison(args: argparse.Namespace, folder: Path) -> dict:
    """Eager against torch.compile, for synthbridge's loop and the floor: one model per variant, warmed up (the
    compiled ones compile during their warm-up), then `repeats` interleaved timed runs."""
    size, warmup = args.input_size, max(2, args.steps // 10)
    setups = {"loop_eager": (synthbridge_run, synthbridge_setup(args.model, folder, size=size)),
              "loop_compiled": (synthbridge_run, synthbridge_setup(args.model, folder, compiled=True, size=size)),
              "floor_eager": (floor_run, floor_setup(args.model, size=size)),
              "floor_compiled": (floor_run, floor_setup(args.model, compiled=True, size=size))}
    warm_seconds = {}
    for name, (run, setup) in setups.items():
        began = time.perf_counter()
        run(setup, warmup, args.batch_size, 1e-3)
        warm_seconds[name] = time.perf_counter() - began
    rates: dict[str, list[float]] = {name: [] for name in setups}
    for _ in range(args.repeats):
        for name, (run, setup) in setups.items():
            rates[name].append(run(setup, args.steps, args.batch_size, 1e-3))
    median = {name: statistics.median(values) for name, values in rates.items()}
    result = {"model": args.model, "input_size": size or setups["floor_eager"][1]["shape"][-1], "images": args.images,
              "steps": args.steps, "batch_size": args.batch_size, "threads": args.threads, "repeats": args.repeats,
              **{f"{name}_images_per_second": round(value, 1) for name, value in median.items()}}
    for kind in ("loop", "floor"):
        eager, compiled = median[f"{kind}_eager"], median[f"{kind}_compiled"]
        # the compilation: what the compiled warm-up took beyond the eager one's time for the same steps
        compile_seconds = warm_seconds[f"{kind}_compiled"] - warmup * args.batch_size / eager
        saved_per_step = args.batch_size / eager - args.batch_size / compiled
        result[f"{kind}_compiled_vs_eager"] = round(compiled / eager, 3)
        result[f"{kind}_compile_seconds"] = round(compile_seconds, 1)
        # the floor compiles the loop's network again: its kernels come from torch's caches (about 0 s, no break-even)
        cached = compile_seconds < 1
        result[f"{kind}_break_even_steps"] = (round(compile_seconds / saved_per_step) if saved_per_step > 0 and not cached
                                              else None)
    return result


def print_compile(result: dict) -> None:
    print(f"{result['model']} at {result['input_size']} px, batch {result['batch_size']}, {result['steps']} steps, "
          f"{result['threads']} thread(s), median of {result['repeats']}:")
    for kind, label in (("loop", "synthbridge loop"), ("floor", "floor (arithmetic)")):
        eager, compiled = result[f"{kind}_eager_images_per_second"], result[f"{kind}_compiled_images_per_second"]
        steps, seconds = result[f"{kind}_break_even_steps"], result[f"{kind}_compile_seconds"]
        faster = result[f"{kind}_compiled_vs_eager"] > 1
        pays = (f"pays after {steps} steps" if steps is not None else "kernels from torch's cache" if seconds < 1 and faster
                else "never pays")
        print(f"  {label:20s} eager {eager:8.1f}  compiled {compiled:8.1f} images/s: "
              f"{result[f'{kind}_compiled_vs_eager']:.2f}x; compiling took {max(0.0, seconds):.0f} s, {pays}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mini_resnet")
    parser.add_argument("--dataset", default="mnist5k", help="whose training images to use")
    parser.add_argument("--images", type=int, default=1000, help="training images in the ImageFolder")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved runs of each loop (the median counts)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true", help="also print the result as one JSON line")
    parser.add_argument("--compile", action="store_true", help="compare eager and torch.compile (train --compile)")
    parser.add_argument("--input-size", type=int, help="input side in pixels (default: the model's)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.compile:
        with tempfile.TemporaryDirectory() as tmp:
            # a cold on-disk kernel cache, so the loop's compilation is timed in full (the floor's, of the same
            # network, then finds part of its kernels there: as a second run on one machine would)
            os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(Path(tmp) / "inductor")
            result = compile_comparison(args, write_folder(Path(tmp) / "images", args.dataset, args.images))
        print_compile(result)
        if args.json:
            print(json.dumps(result))
        return
    loops = {"synthbridge": synthbridge_loop, "timm": timm_loop, "floor": floor_loop,
             "synthbridge_loader": lambda *a: synthbridge_loop(*a, pipeline="loader")}
    rates: dict[str, list[float]] = {name: [] for name in loops}
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_folder(Path(tmp), args.dataset, args.images)
        for name, loop in loops.items():  # warm-up: imports, allocator, kernel choice
            loop(args.model, folder, max(2, args.steps // 10), args.batch_size, 1e-3)
        for _ in range(args.repeats):
            for name, loop in loops.items():
                rates[name].append(loop(args.model, folder, args.steps, args.batch_size, 1e-3))
    median = {name: statistics.median(values) for name, values in rates.items()}
    result = {"model": args.model, "images": args.images, "steps": args.steps, "batch_size": args.batch_size,
              "threads": args.threads, "repeats": args.repeats,
              **{f"{name}_images_per_second": round(value, 1) for name, value in median.items()},
              "synthbridge_vs_timm": round(median["synthbridge"] / median["timm"], 3),
              "synthbridge_vs_floor": round(median["synthbridge"] / median["floor"], 3),
              "loader_vs_timm": round(median["synthbridge_loader"] / median["timm"], 3)}
    print(f"{args.model}, batch {args.batch_size}, {args.steps} steps, {args.threads} thread(s), "
          f"median of {args.repeats}:")
    for name, value in median.items():
        print(f"  {name:18s} {value:8.1f} images/s")
    print(f"  synthbridge / timm  {result['synthbridge_vs_timm']:.2f}x   (goal >= 1.0)")
    print(f"  synthbridge / floor {result['synthbridge_vs_floor']:.2f}x   (floor / synthbridge "
          f"{1 / result['synthbridge_vs_floor']:.2f}x; goal <= 1.15)")
    print(f"  loader pipeline / timm {result['loader_vs_timm']:.2f}x")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
