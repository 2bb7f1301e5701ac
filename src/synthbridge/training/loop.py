"""The plain training loop: one fine-tuning stage on one set of images.

In: a model (already prepared by accelerate), the stage's images, a StageConfig.
Out: the trained model in place, a stage record (steps, seconds, final loss), a checkpoint file.

Every step is a pure function of (seed, stage, step): which images, which augmentation, which mixup.
So a run interrupted after a checkpoint and resumed with `--resume` ends with the same weights as a
run that was never interrupted, and the global batch is the same whatever the number of processes.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from accelerate import Accelerator
from timm.data import Mixup, create_transform
from timm.loss import SoftTargetCrossEntropy
from timm.optim import create_optimizer_v2
from timm.scheduler import CosineLRScheduler

from synthbridge.data import ImageSet
from synthbridge.io import atomic_path, progress
from synthbridge.seeding import StepBatches, derive_seed, seed_cpu
from synthbridge.training.augment import AUGMENTS, BatchTransform, EvalInMemory, eval_tensor, place
from synthbridge.training.config import StageConfig

# 1. data: transforms and a deterministic stream of batches -------------------------------------------------

def make_transform(data_config: dict, augment: str, train: bool):
    """timm's transforms (on PIL images) for the model's input config; 'light' keeps digits upright and unflipped."""
    common = dict(input_size=data_config["input_size"], interpolation=data_config["interpolation"],
                  mean=data_config["mean"], std=data_config["std"])
    if not train or augment == "none":
        return create_transform(is_training=False, crop_pct=data_config.get("crop_pct"), **common)
    return create_transform(is_training=True, **AUGMENTS[augment], **common)


def make_eval(data_config: dict, pipeline: str):
    """The evaluation transform of a pipeline: timm's eval transform per image (loader) or on the whole set (memory)."""
    return EvalInMemory(data_config) if pipeline == "memory" else make_transform(data_config, "none", train=False)


class SeededImages(torch.utils.data.Dataset):
    """Items are addressed as (index, seed): the seed fixes the random augmentation of that sample. With `soft`
    (per source, [N, C] class weights: `stage_targets`) an item's label is its row of weights."""

    def __init__(self, sources: Sequence[ImageSet], soft: list[torch.Tensor] | None = None):
        self.sources, self.soft = list(sources), soft

    def __len__(self) -> int:
        return sum(len(s) for s in self.sources)

    def __getitem__(self, key):
        source, index, seed = key
        seed_cpu(seed)
        image, label = self.sources[source][index]
        return (image, self.soft[source][index]) if self.soft is not None else (image, label)


def stage_targets(sources: Sequence[ImageSet], num_classes: int) -> list[torch.Tensor] | None:
    """Per source, [N, C] class weights when any image of the stage has a soft label (Diff-Mix's sets: one-hot rows
    for the others); None for a stage of hard labels alone."""
    from synthbridge.data import ConcatImages
    from synthbridge.data.folders import soft_targets

    pooled = soft_targets(ConcatImages(sources), num_classes)  # one-hot rows where a source has no soft labels
    return None if pooled is None else list(torch.split(pooled, [len(source) for source in sources]))


class SoftMixup:
    """timm's Mixup/CutMix on soft targets (rows of class weights): timm draws the mixing (from numpy's generator,
    as for hard labels) and applies it to the images; the weights it gives the batch's positions -- the mixed one-hot
    rows of positions 0..B-1 -- mix the targets, so Diff-Mix's labels compose with mixup and cutmix. Label smoothing
    follows, as timm's `mixup_target` applies it (linear, so the same targets it gives hard labels)."""

    def __init__(self, label_smoothing: float, num_classes: int, enabled: bool):
        self.smoothing, self.num_classes, self.enabled = label_smoothing, num_classes, enabled
        self._mixers: dict[int, Mixup] = {}

    def __call__(self, images: torch.Tensor, targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        size = len(images)
        if self.enabled and size > 1 and size % 2 == 0:
            if size not in self._mixers:
                self._mixers[size] = Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=0.0, num_classes=size)
            images, weights = self._mixers[size](images, torch.arange(size, device=images.device))
            targets = weights @ targets
        return images, targets * (1.0 - self.smoothing) + self.smoothing / self.num_classes


class MemoryBatches:
    """The `memory` pipeline's batches: the keys' images cut from the decoded sets, augmented as a batch on `device`.

    The decoded uint8 pixels are placed on the device once (`augment.place`: on a GPU where they fit, else pinned
    host memory copied batch by batch), so a step's only host work is drawing its crops: no copy waits for the GPU."""

    def __init__(self, sources: Sequence[ImageSet], data_config: dict, augment: str, device: torch.device,
                 channels_last: bool = False, soft: list[torch.Tensor] | None = None):
        self.decoded = place(sources, device)
        self.targets = ([weights.to(device) for weights in soft] if soft is not None else
                        [torch.tensor(s.decoded_targets()).to(device) for s in sources])
        # augment none: the eval transform's floats (4x the pixels) stay on the host, each batch's rows copied over
        self.fixed = ([eval_tensor(s, data_config).pin_memory() if device.type == "cuda" else eval_tensor(s, data_config)
                       for s in sources] if augment == "none" else None)
        self.transform = None if augment == "none" else BatchTransform.for_model(data_config, augment)
        self.shape, self.device = tuple(data_config["input_size"]), device
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format

    def __call__(self, keys: Sequence[tuple[int, int, int]]) -> tuple[torch.Tensor, torch.Tensor]:
        sources = sorted({k[0] for k in keys})
        parts, targets = [], []
        for source in sources:
            positions = [p for p, k in enumerate(keys) if k[0] == source]
            rows = torch.tensor([keys[p][1] for p in positions])
            items = rows.to(self.device, non_blocking=True)
            if self.fixed is not None:
                parts.append(self.fixed[source][rows].to(self.device, non_blocking=True))
            else:
                parts.append(self.transform(self.decoded[source], [keys[p][1] for p in positions],
                                            [keys[p][2] for p in positions], self.device))
            targets.append(self.targets[source][items])
        if len(sources) == 1:  # the usual case: the batch in key order already
            images, labels = parts[0], targets[0]
        else:  # a batch drawing from several sources: back into key order
            order = torch.tensor(np.argsort([k[0] for k in keys], kind="stable")).to(self.device, non_blocking=True)
            images = torch.empty((len(keys), *self.shape), device=self.device)
            first = self.targets[0]
            labels = torch.empty((len(keys), *first.shape[1:]), dtype=first.dtype, device=self.device)
            images[order], labels[order] = torch.cat(parts), torch.cat(targets)
        return images.contiguous(memory_format=self.memory_format), labels


def made_ahead(make, key_stream, device: torch.device, depth: int = 2):
    """Yields make(keys) for each item of `key_stream`, made up to `depth` batches ahead by a background thread on
    its own CUDA stream, so that drawing and launching the augmentation overlaps the model's step (on a GPU the
    training loop is otherwise bound by the host's time to launch both). Each batch is handed over with an event
    the training stream waits for (the host never waits for the GPU); an error in the thread is raised here."""
    import queue
    import threading

    stream, ready, stop = torch.cuda.Stream(device), queue.Queue(maxsize=depth), threading.Event()
    index = device.index if device.index is not None else torch.cuda.current_device()  # accelerate's "cuda" has none

    def work():
        try:
            torch.cuda.set_device(index)  # the current device is per thread
            with torch.cuda.stream(stream), torch.no_grad():
                for keys in key_stream:
                    if stop.is_set():
                        return
                    images, labels = make(keys)
                    made = torch.cuda.Event()
                    made.record(stream)
                    ready.put((images, labels, made))
            ready.put(None)
        except BaseException as exc:  # handed to the training thread, which raises it
            ready.put(exc)

    thread = threading.Thread(target=work, name="synthbridge-batches", daemon=True)
    thread.start()
    try:
        while (item := ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            images, labels, made = item
            current = torch.cuda.current_stream(device)
            current.wait_event(made)
            images.record_stream(current)  # their memory returns to the allocator only after this stream used it
            labels.record_stream(current)
            yield images, labels
    finally:
        stop.set()
        while thread.is_alive():  # unblock a thread waiting to put a batch nobody will take
            try:
                ready.get(timeout=0.05)
            except queue.Empty:
                pass


# 2. one stage ---------------------------------------------------------------------------------------------------

LOG_EVERY = 10  # steps between logged losses: the only steps that wait for the device
WARMUP_STEPS = 10  # steps before a stage's steady images/s is timed (at most a fifth of the stage)
CHECKPOINT_SECONDS = 60.0  # the least time between two checkpoints a stage saves by default (no --checkpoint-every)

@dataclass
class StageResult:
    name: str
    steps: int
    seconds: float
    final_loss: float
    num_images: int
    batch_size: int | None = None  # global images per step (capped at the stage's images: see strategies.fit_batch)
    resumed_from_step: int = 0
    images_per_second: float | None = None  # after the first steps (kernel selection, allocator warm-up), to the end


def epoch_images(sources: Sequence[ImageSet], per_batch: Sequence[int]) -> int:
    """The images one epoch of a stage passes over: those of the sources its batches draw from (a `replace` stage
    draws real images only; its synthetic set is where replacements come from)."""
    return sum(len(source) for source, count in zip(sources, per_batch) if count)


def stage_length(stage: StageConfig, num_images: int) -> int:
    if stage.steps is not None:
        return stage.steps
    return max(1, math.ceil(stage.epochs * num_images / stage.batch_size))


def train_stage(model: torch.nn.Module, sources: Sequence[ImageSet], per_batch: Sequence[int], num_classes: int,
                stage: StageConfig, name: str, seed: int, accelerator: Accelerator, data_config: dict,
                checkpoint_path: Path, checkpoint_every: int | None, num_workers: int,
                pipeline: str = "loader", channels_last: bool = False, swap=None) -> StageResult:
    """Fine-tune `model` on `sources` for one stage; resumes from `checkpoint_path` if it exists.

    `pipeline`: `loader` (timm's transforms per PIL image, in `num_workers` DataLoader processes) or `memory`
    (the decoded images on the training device, augmented as batches there: `training.augment`).
    `channels_last`: the batches in that memory format (the model is already in it: `trainer.prepare`).
    `swap`: a `strategies.Replacement` that replaces some of each batch's real images by synthetic versions."""
    device = accelerator.device
    # a. optimizer and schedule: AdamW with cosine decay, both from timm
    num_images = epoch_images(sources, per_batch)
    total = stage_length(stage, num_images)
    # on a GPU, AdamW's fused kernel: one launch per step instead of a dozen passes over the weights
    fused = {"fused": True} if device.type == "cuda" else {}
    optimizer = create_optimizer_v2(model, opt="adamw", lr=stage.lr, weight_decay=stage.weight_decay, **fused)
    optimizer = accelerator.prepare_optimizer(optimizer)
    scheduler = CosineLRScheduler(optimizer, t_initial=total, lr_min=stage.lr * 0.01,
                                  warmup_t=min(stage.warmup_steps, total // 4), warmup_lr_init=stage.lr * 0.01,
                                  t_in_epochs=False)
    steps_per_epoch = max(1, math.ceil(num_images / stage.batch_size))
    every = checkpoint_every or max(steps_per_epoch, 25)
    # by default also CHECKPOINT_SECONDS apart: saving a model and its AdamW moments copies them to the host and
    # writes them, which cost a short stage on a GPU a third of its time when done every 25 steps
    gap = 0.0 if checkpoint_every else CHECKPOINT_SECONDS

    # b. resume: weights, optimizer, step, and the accelerator's random state (dropout, drop-path draw from it)
    start, state = 0, {}
    if checkpoint_path.exists():
        state = torch.load(checkpoint_path, map_location="cpu", weights_only=True)
        accelerator.unwrap_model(model, keep_torch_compile=False).load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        start = int(state["step"])
    if device.type == "cuda":  # this process's generator as it was at the checkpoint, or seeded for the stage
        states = state.get("cuda_rng", [])
        if accelerator.process_index < len(states):
            torch.cuda.set_rng_state(states[accelerator.process_index], device)
        else:
            torch.cuda.manual_seed(derive_seed(seed, name, "cuda", accelerator.process_index))

    # c. data: every item is an (index, seed) key, so the stream restarts exactly at `start`
    sampler = StepBatches([len(s) for s in sources], per_batch, seed, name, start, total,
                          accelerator.process_index, accelerator.num_processes, swap)
    soft = stage_targets(sources, num_classes)  # Diff-Mix's soft labels, where the stage's images have them
    if pipeline == "memory":
        batches = MemoryBatches(sources, data_config, stage.augment, device, channels_last, soft)
        loader = made_ahead(batches, sampler, device) if device.type == "cuda" else (batches(keys) for keys in sampler)
    else:
        transform = make_transform(data_config, stage.augment, train=True)
        for source in sources:
            source.transform = transform
            # found here, once: the DataLoader's workers inherit what this process knows and skip those files
            # without each saying so again
            source.unreadable_among(range(len(source)))
        loader = torch.utils.data.DataLoader(SeededImages(sources, soft), batch_sampler=sampler, num_workers=num_workers,
                                             persistent_workers=False, pin_memory=device.type == "cuda")
    memory_format = torch.channels_last if channels_last else torch.preserve_format
    mixup = Mixup(mixup_alpha=0.8, cutmix_alpha=1.0, label_smoothing=stage.label_smoothing,
                  num_classes=num_classes) if stage.mixup else None
    if soft is not None:  # soft targets throughout: mixed (when mixup is on) and smoothed by SoftMixup
        mixup = SoftMixup(stage.label_smoothing, num_classes, enabled=bool(stage.mixup))
    criterion = (SoftTargetCrossEntropy() if mixup else
                 torch.nn.CrossEntropyLoss(label_smoothing=stage.label_smoothing))

    # d. the loop: nothing in it waits for the device but the logged steps' loss (every LOG_EVERY steps)
    model.train()
    warm = start + min(WARMUP_STEPS, (total - start) // 5)  # the steady rate is timed from here
    began, loss, steady_began = time.perf_counter(), None, None
    saved = began
    bar = progress(total=total, initial=start, desc=f"train {name}", unit="step",
                   enabled=accelerator.is_local_main_process, leave=False)
    with contextlib.closing(loader) if hasattr(loader, "close") else contextlib.nullcontext():  # stops a thread
        for step, (images, targets) in enumerate(loader, start=start):
            if step == warm:
                _synchronize(device)
                steady_began = time.perf_counter()
            scheduler.step_update(step)
            images = images.to(device, non_blocking=True, memory_format=memory_format)
            targets = targets.to(device, non_blocking=True)
            seed_cpu(derive_seed(seed, name, "step", step))  # mixup's draws (numpy) and the CPU's dropout
            if soft is not None:
                images, targets = mixup(images, targets)
            elif mixup is not None and len(images) % 2 == 0 and len(images) > 1:
                images, targets = mixup(images, targets)
            elif mixup is not None:  # an odd local batch: soft one-hot targets without mixing
                targets = F.one_hot(targets, num_classes).float()
            with accelerator.autocast():
                loss = criterion(model(images), targets)
            optimizer.zero_grad(set_to_none=True)
            accelerator.backward(loss)
            optimizer.step()
            if step % LOG_EVERY == 0:
                loss_value, lr = loss.item(), optimizer.param_groups[0]["lr"]
                accelerator.log({f"{name}/loss": loss_value, f"{name}/lr": lr}, step=step)
                bar.set_postfix(loss=f"{loss_value:.3f}", lr=f"{lr:.1e}", refresh=False)
            bar.update(1)
            done = step + 1
            if done % every == 0 and done < total and _due(accelerator, time.perf_counter() - saved >= gap):
                save_checkpoint(accelerator, model, optimizer, done, checkpoint_path)
                saved = time.perf_counter()
    _synchronize(device)
    ended = time.perf_counter()
    bar.close()
    rate = (total - warm) * stage.batch_size / (ended - steady_began) if steady_began is not None and total > warm else None
    return StageResult(name=name, steps=total, seconds=ended - began,
                       final_loss=loss.item() if loss is not None else float("nan"), num_images=num_images,
                       batch_size=stage.batch_size, resumed_from_step=start,
                       images_per_second=round(rate, 1) if rate else None)


def _due(accelerator: Accelerator, due: bool) -> bool:
    """Whether a checkpoint is due, as the main process's clock says: every process takes the same decision (they
    meet in `save_checkpoint`)."""
    if accelerator.num_processes == 1:
        return due
    from accelerate.utils import broadcast

    return bool(broadcast(torch.tensor([float(due)], device=accelerator.device)).item())


def _synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (for timing only: twice a stage)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def save_checkpoint(accelerator: Accelerator, model, optimizer, step: int, path: Path) -> None:
    """Weights, optimizer state and step (and each process's GPU generator, where dropout's draws continue from),
    written once by the main process, atomically."""
    accelerator.wait_for_everyone()
    rng = None
    if accelerator.device.type == "cuda":
        from accelerate.utils import gather_object

        rng = gather_object([torch.cuda.get_rng_state(accelerator.device)])  # one per process, in rank order
    if accelerator.is_main_process:
        plain = accelerator.unwrap_model(model, keep_torch_compile=False)  # timm's keys, compiled or not
        state = {"model": plain.state_dict(), "optimizer": optimizer.state_dict(), "step": step}
        if rng is not None:
            state["cuda_rng"] = rng
        with atomic_path(path) as tmp:
            torch.save(state, tmp)
    accelerator.wait_for_everyone()
