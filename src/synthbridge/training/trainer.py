"""`train(cfg, out)`: one strategy end to end, written as a run folder.

RUN_DIR/
  config.json        resolved TrainConfig, classes, dataset info, versions, git revision
  metrics.json       top1 (percent), num_test, per_class, each stage's steps/seconds/loss (+ its own top1)
  model.safetensors  the final classifier (load it with timm.create_model(..., pretrained_cfg_overlay=dict(file=...)));
                     not kept with `keep: none`
  stages/<stage>/    the weights and record of each finished stage (so a resumed run skips it; `reused_from`
                     when it was loaded from a shared stage cache); the weights are removed when the run finishes
                     unless `keep: stages` (the records stay)
  checkpoints/       the latest checkpoint of the stage in progress (removed when the stage ends)
"""

from __future__ import annotations

import contextlib
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch
from accelerate import Accelerator
from safetensors.torch import load_file, save_file

from synthbridge.data import DatasetBundle, ImageSet, load_dataset, load_synthetic
from synthbridge.errors import UserError
from synthbridge.evaluation import evaluate
from synthbridge.io import FORMAT, atomic_path, check_format, environment, read_json, write_json
from synthbridge.models import (
    check_compile,
    compile_errors,
    compile_model,
    convolutional,
    create_model,
    data_config,
    input_size,
    weights_mib,
)
from synthbridge.seeding import derive_seed
from synthbridge.training.config import TrainConfig
from synthbridge.training.loop import make_eval, train_stage
from synthbridge.training.stage_cache import StageCache, shareable, stage_key
from synthbridge.training.strategies import STRATEGIES
from synthbridge.training.trackers import device_type, make_accelerator, start_trackers


def per_class_subset(images: ImageSet, per_class: int, classes: list[str]) -> ImageSet:
    """The first `per_class` images of each class, in folder order (smaller volumes nest in larger ones)."""
    chosen, taken = [], [0] * len(classes)
    for index, label in enumerate(images.targets):
        if taken[label] < per_class:
            taken[label] += 1
            chosen.append(index)
    if short := [classes[i] for i, n in enumerate(taken) if n < per_class]:
        raise UserError(f"--synthetic-per-class {per_class} is more than the synthetic folder has for "
                        f"{', '.join(map(repr, short[:5]))}; generate more or ask for fewer")
    return images.subset(chosen)


def _convolutional(cfg: TrainConfig, device: str) -> bool:
    """Whether channels_last's `auto` should treat the model as convolutional: asked only where it matters (on a
    GPU, with channels_last left to auto); a model timm cannot build on the meta device counts as not."""
    if cfg.channels_last is not None or device != "cuda":
        return False
    try:
        return convolutional(cfg.model)
    except Exception:  # an architecture that needs real tensors to be built: keep the default memory format
        return False


def _fit_pipeline(cfg: TrainConfig, sets: list[ImageSet]) -> TrainConfig:
    """`auto`'s memory pipeline when the sets' decoded pixels fit its host-memory limit, else the loader pipeline,
    said in one log line and recorded in config.json."""
    import logging

    from synthbridge.data.base import MEMORY_LIMIT_BYTES

    largest = max(s.decoded_bytes() for s in sets)
    if largest <= MEMORY_LIMIT_BYTES:
        return cfg
    logging.getLogger(__name__).warning(
        "the decoded images (about %.1f GiB for the largest set) exceed the memory pipeline's %.1f GiB: training "
        "with the loader pipeline (pass --pipeline to choose)", largest / 2**30, MEMORY_LIMIT_BYTES / 2**30)
    return replace(cfg, pipeline="loader")


class RunMismatch(UserError):
    """`--resume` of a run folder whose config differs from the one given."""


def _prepare_run_dir(out: Path, record: dict, resume: bool, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {str(out)!r} names a file, not a folder; pick a folder (a run writes several files)")
    config_file = out / "config.json"
    if config_file.exists() and resume:
        check_format(read_json(config_file), out, "a training run")
        if read_json(config_file)["config"] != record["config"]:
            raise RunMismatch(f"{str(out)!r} holds a run with a different config; resume it with the same arguments, "
                            f"or pick a new --out")
        return
    if resume:
        raise UserError(f"nothing to resume in {str(out)!r} (no config.json); drop --resume to start a new run")
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise UserError(f"{str(out)!r} is not empty; pass --resume to continue it, --overwrite to replace it, "
                            f"or pick a new --out")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def train(cfg: TrainConfig, out: str | Path, *, resume: bool = False, overwrite: bool = False,
          bundle: DatasetBundle | None = None, accelerator: Accelerator | None = None,
          stage_cache: str | Path | None = None, cache: bool = False, prune: bool = True) -> dict:
    """Train with `cfg.strategy`, evaluate on the test split, write RUN_DIR; returns the metrics.

    `prune`: drop the weights `cfg.keep` does not keep once the run is finished (False: the caller still reads
    them, and calls `prune_run` itself).
    `stage_cache`: a folder of finished first stages shared between runs (`training.stage_cache`): a bridged
    run whose synthetic stage is there loads it instead of training it, and records `reused_from`.
    `cache`: keep the datasets and synthetic sets loaded (and decoded) for later runs in this process."""
    out = Path(out)
    began = time.perf_counter()
    strategy = STRATEGIES.get(cfg.strategy)  # an unknown strategy, or one without its images, fails before any work
    strategy.check(cfg.synthetic is not None)

    # 1. data: the real split (few-shot if asked) and, for strategies that use them, the synthetic images
    if bundle is None:
        bundle = load_dataset(cfg.dataset, data_root=cfg.data_root, download=cfg.download, shots=cfg.shots, seed=cfg.seed,
                              cached=cache)
    device = accelerator.device.type if accelerator is not None else device_type()
    requested = cfg
    if bundle.num_classes < 2:
        raise UserError(f"dataset {cfg.dataset!r} has {bundle.num_classes} class ({', '.join(bundle.classes)}); a "
                        f"classifier needs at least two: add a folder per class")
    cfg = cfg.resolve(input_size=input_size(cfg.model), image_size=bundle.image_size, device_type=device,
                      convolutional=_convolutional(cfg, device),
                      weights_mib=weights_mib(cfg.model) if cfg.keep is None else None)
    synthetic_images = None
    if strategy.needs_synthetic:
        synthetic_images = load_synthetic(cfg.synthetic, bundle.classes, cached=cache)
        if cfg.synthetic_per_class is not None:
            synthetic_images = per_class_subset(synthetic_images, cfg.synthetic_per_class, bundle.classes)
    if requested.pipeline == "auto" and cfg.pipeline == "memory":
        cfg = _fit_pipeline(cfg, [bundle.train, bundle.test] + ([synthetic_images] if synthetic_images else []))
    stages = strategy.plan(cfg, bundle.train, synthetic_images)
    for stage in stages:  # a set a replacement cannot use (no sources, none of these shots) fails before the run folder
        if stage.swap is not None:
            stage.swap.versions  # noqa: B018  (found now, or a one-line error)

    # 2. run folder and record
    own_accelerator = accelerator is None
    accelerator = accelerator or make_accelerator(cfg, out)
    if cfg.compile:  # a machine inductor cannot compile on fails before the run folder is touched
        check_compile(accelerator.device)
    record = {"format": FORMAT, "config": cfg.to_dict(), "classes": bundle.classes, "dataset": bundle.info}
    if accelerator.is_main_process:
        _prepare_run_dir(out, record, resume, overwrite)
        write_json(out / "config.json", {**record, "environment": environment(),
                                         "num_processes": accelerator.num_processes})
    accelerator.wait_for_everyone()
    if own_accelerator:  # its trackers write into the folder: only once it is prepared
        start_trackers(accelerator, cfg)

    # 3. model: pretrained features, a new head for this dataset's classes
    torch.manual_seed(derive_seed(cfg.seed, "init"))
    model = create_model(cfg.model, bundle.num_classes, pretrained=cfg.pretrained, checkpoint=cfg.checkpoint,
                         input_size=cfg.input_size)
    model_data = data_config(model)  # says cfg.input_size
    eval_transform = make_eval(model_data, cfg.pipeline)
    model = prepare(accelerator, model, cfg.compile, cfg.channels_last)

    # 4. stages of the strategy (a first stage another run already trained the same way is loaded, not trained)
    stages_record, seconds = {}, {}
    cache = StageCache(stage_cache) if stage_cache is not None else None
    for position, stage in enumerate(stages):
        stage_dir = out / "stages" / stage.name
        unwrapped = unwrap(accelerator, model)
        # finished before an interruption: reuse it (a stage whose weights a finished run dropped is trained again)
        if (stage_dir / "stage.json").exists() and (stage_dir / "model.safetensors").exists():
            unwrapped.load_state_dict(load_file(stage_dir / "model.safetensors"))
            stages_record[stage.name] = read_json(stage_dir / "stage.json")
            seconds[stage.name] = stages_record[stage.name]["seconds"]
            continue
        with contextlib.ExitStack() as held:
            entry = stored = None
            if cache is not None and shareable(cfg, stages, position, accelerator.num_processes):
                key, description = stage_key(cfg, stage, bundle, accelerator.num_processes)
                entry = held.enter_context(cache.claim(key))  # held until the stage is stored
                stored = cache.load(entry)
            began_stage = time.perf_counter()
            if stored is not None:  # trained by another run the same way: load it
                unwrapped.load_state_dict(stored[0])
                stage_record = {**stored[1], "reused_from": str(entry)}
            else:
                model, stage_record = _run_stage(cfg, stage, model, unwrapped, bundle, accelerator, model_data,
                                                 eval_transform, out, last=position == len(stages) - 1)
            _save_stage(accelerator, model, stage_dir, stage_record)
            (out / "checkpoints" / f"{stage.name}.pt").unlink(missing_ok=True)
            if entry is not None and stored is None:
                StageCache.store(entry, description, _cpu_state(unwrap(accelerator, model)), stage_record)
        accelerator.wait_for_everyone()
        stages_record[stage.name] = stage_record
        # a trained stage's own training time; a loaded one's: the time this run spent loading it
        seconds[stage.name] = stage_record["seconds"] if stored is None else time.perf_counter() - began_stage

    # 5. evaluate on the real test split and record
    eval_began = time.perf_counter()
    with compile_errors(cfg.model):
        metrics = evaluate(model, bundle.test, eval_transform, bundle.classes, accelerator, cfg.eval_batch_size,
                           cfg.num_workers)
    seconds["evaluate"] = time.perf_counter() - eval_began
    seconds["total"] = time.perf_counter() - began
    metrics = {
        "top1": metrics["top1"], "num_test": metrics["num_test"], "per_class": metrics["per_class"],
        "dataset": cfg.dataset, "model": cfg.model, "strategy": cfg.strategy, "seed": cfg.seed, "shots": cfg.shots,
        "num_train_real": bundle.train.readable_count(),
        "num_train_synthetic": synthetic_images.readable_count() if synthetic_images else 0,
        "input_size": cfg.input_size, "kept": cfg.keep, "stages": stages_record, "seconds": seconds,
    }
    if accelerator.is_main_process:
        with atomic_path(out / "model.safetensors") as tmp:
            save_file(_cpu_state(unwrap(accelerator, model)), str(tmp),
                      metadata={"model": cfg.model, "num_classes": str(bundle.num_classes),
                                **({"input_size": str(cfg.input_size)} if cfg.input_size else {})})
        write_json(out / "metrics.json", metrics)
        if prune:
            prune_run(out, cfg.keep)
    accelerator.log({"test/top1": metrics["top1"]}, step=sum(r["steps"] for r in stages_record.values()))
    for tracker in accelerator.trackers:  # not end_training(): it would also end the process group
        tracker.finish()
    accelerator.wait_for_everyone()
    return metrics


def _run_stage(cfg: TrainConfig, stage, model, unwrapped, bundle: DatasetBundle, accelerator: Accelerator,
               model_data: dict, eval_transform, out: Path, last: bool):
    """Train one stage (re-initialising the head first if it asks); returns the model and the stage's record,
    with the intermediate model's own top-1 on the real test split for every stage but the last (if
    `cfg.evaluate_stages`)."""
    if stage.reinit_head_before:
        torch.manual_seed(derive_seed(cfg.seed, stage.name, "head"))
        unwrapped.reset_classifier(bundle.num_classes)
        unwrapped.to(accelerator.device)
        if model is not unwrapped:  # a DDP wrapper (or a compiled graph) must see the new head: wrap again
            model = prepare(accelerator, unwrapped, cfg.compile, cfg.channels_last)
    with compile_errors(cfg.model):  # a compiled model compiles at its first call, in the loop
        result = train_stage(model, stage.sources, stage.per_batch, bundle.num_classes, stage.config, stage.name,
                             cfg.seed, accelerator, model_data, out / "checkpoints" / f"{stage.name}.pt",
                             cfg.checkpoint_every, cfg.num_workers, cfg.pipeline, cfg.channels_last, stage.swap)
        stage_record = asdict(result)
        if not last and cfg.evaluate_stages:  # how well the intermediate model already does on the real test set
            stage_metrics = evaluate(model, bundle.test, eval_transform, bundle.classes, accelerator,
                                     cfg.eval_batch_size, cfg.num_workers)
            stage_record["top1"] = stage_metrics["top1"]
    return model, stage_record


def _save_stage(accelerator: Accelerator, model, stage_dir: Path, stage_record: dict) -> None:
    """A finished stage's weights and record in RUN_DIR/stages/<name> (what a resumed run skips)."""
    if accelerator.is_main_process:
        stage_dir.mkdir(parents=True, exist_ok=True)
        with atomic_path(stage_dir / "model.safetensors") as tmp:
            save_file(_cpu_state(unwrap(accelerator, model)), str(tmp))
        write_json(stage_dir / "stage.json", stage_record)


def prune_run(out: str | Path, keep: str) -> None:
    """Drop the weights a finished run folder does not keep: `stages` keeps all, `final` the final model only
    (RUN_DIR/stages/*/model.safetensors go; their stage.json records stay), `none` no weights (metrics only).
    Only a finished run is pruned: while it runs, its finished stages are what a resume skips."""
    out = Path(out)
    if keep == "stages":
        return
    for weights in sorted((out / "stages").glob("*/model.safetensors")):
        weights.unlink(missing_ok=True)
    if keep == "none":
        (out / "model.safetensors").unlink(missing_ok=True)


def prepare(accelerator: Accelerator, model: torch.nn.Module, compile: bool,
            channels_last: bool = False) -> torch.nn.Module:
    """accelerate's device placement and DDP wrapping (in channels_last memory format if asked: what a GPU's
    convolutions run fastest in), then (`compile`) torch.compile of the wrapped model: compiled last, as
    accelerate's own dynamo plugin does, so that torch's DDPOptimizer splits the graph at DDP's buckets.
    (Not the plugin itself: accelerate fixes it once per process, and `run` trains many configs in one.)"""
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model = accelerator.prepare_model(model)
    return compile_model(model, accelerator.device) if compile else model


def unwrap(accelerator: Accelerator, model: torch.nn.Module) -> torch.nn.Module:
    """The plain model under DDP and torch.compile: its state_dict has the keys timm's model has (no `module.`,
    no `_orig_mod.`), and weights loaded into it reach the compiled and wrapped model too."""
    return accelerator.unwrap_model(model, keep_torch_compile=False)


def _cpu_state(model: torch.nn.Module) -> dict:
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
