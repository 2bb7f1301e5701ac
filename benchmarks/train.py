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

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/train.py [--model mini_resnet] [--steps 100] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
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


def synthbridge_loop(model_name: str, folder: Path, steps: int, batch: int, lr: float, pipeline: str = "auto") -> float:
    from accelerate import Accelerator

    from synthbridge.data import load_dataset
    from synthbridge.models import create_model, data_config, input_size
    from synthbridge.training.config import StageConfig, TrainConfig
    from synthbridge.training.loop import train_stage

    bundle = load_dataset(f"imagefolder:{folder}")
    pipeline = TrainConfig(dataset=str(folder), model=model_name, pipeline=pipeline).resolve(
        input_size=input_size(model_name), image_size=bundle.image_size).pipeline  # what `train` would choose
    model = create_model(model_name, bundle.num_classes, pretrained=False)
    accelerator = Accelerator(cpu=True)
    model = accelerator.prepare_model(model)
    stage = StageConfig(steps=steps, lr=lr, batch_size=batch, weight_decay=0.05, augment="light", mixup=False,
                        label_smoothing=0.1, warmup_steps=0)
    with tempfile.TemporaryDirectory() as tmp:
        began = time.perf_counter()
        train_stage(model, [bundle.train], [batch], bundle.num_classes, stage, "bench", 0, accelerator,
                    data_config(model), Path(tmp) / "ckpt.pt", steps + 1, 0, pipeline)
        return steps * batch / (time.perf_counter() - began)


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


def floor_loop(model_name: str, folder: Path, steps: int, batch: int, lr: float) -> float:
    import timm
    from timm.data import resolve_data_config
    from timm.optim import create_optimizer_v2

    import synthbridge.plugins

    synthbridge.plugins.load_plugins()
    model = timm.create_model(model_name, pretrained=False, num_classes=10)
    size = resolve_data_config({}, model=model)["input_size"]
    optimizer = create_optimizer_v2(model, opt="adamw", lr=lr, weight_decay=0.05)
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    images, targets = torch.randn(batch, *size), torch.randint(0, 10, (batch,))
    model.train()
    began = time.perf_counter()
    for _ in range(steps):
        loss = criterion(model(images), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return steps * batch / (time.perf_counter() - began)


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
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
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
