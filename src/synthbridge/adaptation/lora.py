"""`train_lora(config)`: LoRA adapters of the generator fitted to the real images (DataDream, Real-Fake, Diff-Mix).

In: a `LoraTrainConfig`. Out: an adapter folder that plain diffusers loads, `pipe.load_lora_weights(OUT)`
(per class: `OUT/<class>/`, one adapter each), with lora.json (config, loss curve, seconds) beside it.

The adapters are peft LoRA layers on the UNet's attention projections (`unet.add_adapter(LoraConfig(...))`, as
diffusers' own LoRA training script does), optionally also on the text encoder's; every other weight stays
frozen. The loss is the generator's own denoising loss on the real training images (the K shots of a few-shot
set), each captioned with a prompt naming its class.

Stable Diffusion 1.x/2.x and SDXL: SDXL's UNet is conditioned as its pipeline conditions it (both text
encoders' hidden states, the pooled embedding and the size/crop numbers: `inversion.train.sdxl_conditioning`),
`--text-encoder` adapts both encoders, and the file is written by StableDiffusionXLPipeline.save_lora_weights
(unet., text_encoder. and text_encoder_2. keys), as diffusers' train_dreambooth_lora_sdxl.py does. Another family
(SD 3, PixArt, FLUX, ...) is a one-line UserError before any weights load. Every step is a function of (seed, class, step): its
images, the VAE sample, noise and timesteps, and the adapter's initial weights of (seed, class): a run
interrupted after a checkpoint and resumed ends with the same adapter as one never interrupted (on CUDA with
`deterministic`). The step loop, checkpoints and output-folder rule are `diffusion.finetune`'s, shared with inversion.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from pathlib import Path

import torch

from synthbridge.adaptation.config import RESUME_KEYS, TEXT_TARGETS, LoraTrainConfig, resolve
from synthbridge.data import DatasetBundle, ImageSet, few_shot, load_dataset
from synthbridge.diffusion.finetune import (
    CHECKPOINT,
    Run,
    Trainable,
    fit,
    loss_curve,
    prepare_folder,
    read_checkpoint,
    resume_record,
)
from synthbridge.diffusion.pipeline import device_of
from synthbridge.diffusion.styles import text_encoder_slots
from synthbridge.errors import UserError
from synthbridge.io import FORMAT, check_format, ensure_writable_dir, environment, read_json, safe_name, write_json
from synthbridge.prompts import build_prompt, resolve_template
from synthbridge.seeding import derive_seed

LORA_WEIGHTS = "pytorch_lora_weights.safetensors"  # the file name diffusers' load_lora_weights looks for
LORA_INFO = "lora.json"


def train_lora(config: LoraTrainConfig, *, resume: bool = False, overwrite: bool = False,
               bundle: DatasetBundle | None = None) -> dict:
    """Train the adapter(s) of `config` into `config.out`; returns {"adapters": {key: summary}, ...}."""
    from synthbridge.diffusion.pipeline import generator_info, load_generator

    config.check()
    out = ensure_writable_dir(config.out, "adapter folder")
    prepare_folder(out, [p for p in out.iterdir() if not p.name.startswith(".")], resume=resume, overwrite=overwrite,
                   what="adapter folder")
    info = generator_info(config.generator)  # a missing generator fails before the dataset is read
    slots = lora_slots(info)  # so does a family without a UNet and CLIP text encoders
    if bundle is None:
        bundle = load_dataset(config.dataset, data_root=config.data_root, download=config.download)
    images = few_shot(bundle.train, config.shots, config.seed, bundle.classes) if config.shots else bundle.train
    config = resolve(config, info.native_size)
    wanted = _classes(config, bundle)
    jobs = [("all", None)] if not config.per_class else [(c, bundle.classes.index(c)) for c in wanted]
    folders = {key: out if label is None else out / safe_name(key) for key, label in jobs}
    adapters = {key: found for key in folders if (found := _finished(folders[key], config)) is not None}
    if len(adapters) < len(jobs) or (config.grid and not (out / "grid.png").is_file()):
        # something to train or draw (a rerun of a finished folder, as a grid's workers make, loads no model)
        pipe = load_generator(info, config.dtype, device_of(config.device), quiet=True)
        encoders = [(enc, getattr(pipe, tok), getattr(pipe, enc)) for tok, enc in slots]  # (name, tokenizer, encoder)
        for key, label in jobs:
            if key not in adapters:
                chosen = images if label is None else images.subset([i for i, t in enumerate(images.targets) if t == label])
                adapters[key] = _train_one(pipe, encoders, config, info, bundle, chosen, folders[key], key, resume)
        if config.grid:
            adapters_grid(out, pipe, config, bundle, images, wanted if config.per_class else None)
    adapters = {key: adapters[key] for key, _ in jobs}
    summary = {"format": FORMAT, "per_class": config.per_class,
               "adapters": {k: str(folders[k].relative_to(out)) for k in adapters},
               "config": config.to_dict(), "seconds": sum(v["seconds"] for v in adapters.values())}
    if config.per_class:
        write_json(out / LORA_INFO, summary)
    return {**summary, "runs": adapters}


def lora_slots(info) -> list[tuple[str, str]]:
    """The (tokenizer, text encoder) component names of a generator LoRA can train with: one pair for SD 1.x/2.x,
    two for SDXL (`diffusion.styles.text_encoder_slots`, read from model_index.json); another family is a UserError."""
    try:
        return text_encoder_slots(info.pipeline_class, info.components)
    except UserError:
        raise UserError(f"lora trains adapters for Stable Diffusion 1.x/2.x and SDXL (a UNet and CLIP text "
                        f"encoders); {info.pipeline_class} is not supported: use such a generator") from None


def _classes(config: LoraTrainConfig, bundle: DatasetBundle) -> list[str]:
    if unknown := [c for c in config.classes if c not in bundle.classes]:
        raise UserError(f"class {unknown[0]!r} is not in dataset {config.dataset!r} (classes: "
                        f"{', '.join(bundle.classes[:8])}{'...' if len(bundle.classes) > 8 else ''}); check the name")
    return list(config.classes) or list(bundle.classes)


def _finished(out: Path, config: LoraTrainConfig) -> dict | None:
    """The record of a finished adapter in `out` trained with `config`'s resume fields; None when none is there.
    A finished adapter with another config is refused."""
    if not ((out / LORA_INFO).is_file() and (out / LORA_WEIGHTS).is_file()):
        return None
    finished = read_json(out / LORA_INFO)
    check_format(finished, out, "a LoRA adapter folder")
    if finished.get("resume_config") != resume_record(config, RESUME_KEYS):
        raise UserError(f"{str(out)!r} holds an adapter trained with another config; pass --overwrite to replace "
                        f"it, or pick a new --out")
    return {**finished, "folder": str(out)}  # where it is now (a moved folder records where it was made)


def _train_one(pipe, encoders: list[tuple], config: LoraTrainConfig, info, bundle: DatasetBundle, images: ImageSet,
               out: Path, key: str, resume: bool) -> dict:
    """Train one adapter (the whole dataset's, or one class's) into `out`, continuing its checkpoint with `resume`
    (a finished one is found by `_finished` before the generator loads). `encoders`: the pipeline's (name,
    tokenizer, text encoder) triples (SD one, SDXL two)."""
    from diffusers.training_utils import cast_training_params
    from peft import LoraConfig, inject_adapter_in_model
    from peft.utils import get_peft_model_state_dict, set_peft_model_state_dict

    out.mkdir(parents=True, exist_ok=True)
    record = resume_record(config, RESUME_KEYS)
    checkpoint = read_checkpoint(out / CHECKPOINT, record) if resume else None
    began = time.perf_counter()

    # 1. fresh adapters on the frozen generator (their initial weights drawn from (seed, key))
    _remove_adapters(pipe)
    text_encoders = {name: encoder for name, _, encoder in encoders}
    for module in (pipe.unet, pipe.vae, *text_encoders.values()):
        module.requires_grad_(False)
        module.eval()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(config.seed, "lora", key, "init"))
        pipe.unet.add_adapter(LoraConfig(r=config.rank, lora_alpha=config.alpha, init_lora_weights="gaussian",
                                         target_modules=list(config.targets)))
        for encoder in text_encoders.values() if config.text_encoder else ():
            # peft's own injection (transformers' add_adapter asks for a newer peft)
            text_config = LoraConfig(r=config.rank, lora_alpha=config.alpha, init_lora_weights="gaussian",
                                     target_modules=list(TEXT_TARGETS))
            inject_adapter_in_model(text_config, encoder, "default")
            encoder.peft_config = {"default": text_config}
    adapted = {"unet": pipe.unet, **(text_encoders if config.text_encoder else {})}  # checkpoint key -> module
    trained = list(adapted.values())
    cast_training_params(trained, dtype=torch.float32)
    params = [p for module in trained for p in module.parameters() if p.requires_grad]
    if not params:
        raise UserError(f"no module of the UNet matches --targets {' '.join(config.targets)}; name attention "
                        f"projections such as to_q to_k to_v to_out.0")

    # 2-3. the loop (`diffusion.finetune`): AdamW (decay 1e-2, constant rate, as diffusers' example) on the adapters;
    #      captions name each image's class; step s draws from derive_seed(seed, "lora", key, "step", s)
    def load(state: dict) -> None:
        for name, module in adapted.items():
            set_peft_model_state_dict(module, state[name])

    trainable = Trainable(params=params, lr=config.lr, weight_decay=1e-2, load=load, text_trained=config.text_encoder,
                          state=lambda: {name: get_peft_model_state_dict(module) for name, module in adapted.items()})
    template = resolve_template(config.template)
    prompts = [build_prompt(template, phrase, bundle.superclass) for phrase in bundle.phrases]
    input_ids = [tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                           return_tensors="pt").input_ids for _, tokenizer, _ in encoders]  # (classes, L) each
    batch = min(config.batch_size, len(images))
    run = Run(images=images, input_ids=input_ids, batch_size=batch, resolution=config.resolution, steps=config.steps,
              seed=config.seed, stream=("lora", key), out=out, record=record, checkpoint_every=config.checkpoint_every,
              label=f"lora {key}", show_progress=config.show_progress,
              gradient_checkpointing=config.gradient_checkpointing, deterministic=config.deterministic)
    result = fit(pipe, trainable, run, checkpoint)
    losses, start, train_seconds = result.losses, result.resumed_from_step, result.train_seconds
    seconds_before = float(checkpoint["seconds"]) if checkpoint is not None else 0.0

    # 4. the adapter in diffusers' format, and its record
    _save_adapter(pipe, adapted, out)
    summary = {"format": FORMAT, "key": key, "folder": str(out), "generator": info.name,
               "generator_fingerprint": info.fingerprint,
               "pipeline_class": info.pipeline_class, "adapted": list(adapted), "dataset": config.dataset,
               "num_images": len(images), "batch_size": batch,
               "trainable_parameters": sum(p.numel() for p in params), "config": config.to_dict(),
               "resume_config": record, "final_loss": sum(losses[-20:]) / max(1, len(losses[-20:])),
               "loss_curve": loss_curve(losses), "resumed_from_step": start, "train_seconds": train_seconds,
               "seconds": seconds_before + time.perf_counter() - began, "environment": environment()}
    write_json(out / LORA_INFO, summary)
    (out / CHECKPOINT).unlink(missing_ok=True)
    return summary


def _remove_adapters(pipe) -> None:
    """Drop the adapters a previous class left on the pipeline's modules (peft's own delete_adapters)."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    if getattr(pipe.unet, "peft_config", None):
        pipe.unet.delete_adapters(list(pipe.unet.peft_config))
    for encoder in (getattr(pipe, name, None) for name in ("text_encoder", "text_encoder_2")):
        if getattr(encoder, "peft_config", None):  # injected by peft: unwrap its LoRA layers in place
            for name, module in list(encoder.named_modules()):
                if isinstance(module, BaseTunerLayer):
                    parent, _, child = name.rpartition(".")
                    setattr(encoder.get_submodule(parent), child, module.get_base_layer())
            del encoder.peft_config


def _lora_state(adapted: dict) -> dict:
    """save_lora_weights' arguments: unet_lora_layers (+ text_encoder_lora_layers, SDXL's text_encoder_2_lora_layers)."""
    from diffusers.utils import convert_state_dict_to_diffusers
    from peft.utils import get_peft_model_state_dict

    return {f"{name}_lora_layers": convert_state_dict_to_diffusers(get_peft_model_state_dict(module))
            for name, module in adapted.items()}


def _save_adapter(pipe, adapted: dict, out: Path) -> None:
    """pytorch_lora_weights.safetensors via the pipeline class's own save_lora_weights, written whole or not at all."""
    tmp = Path(tempfile.mkdtemp(prefix=".lora-", dir=out))
    try:
        type(pipe).save_lora_weights(save_directory=str(tmp), safe_serialization=True, **_lora_state(adapted))
        os.replace(tmp / LORA_WEIGHTS, out / LORA_WEIGHTS)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def adapters_grid(out: Path, pipe, config: LoraTrainConfig, bundle: DatasetBundle, images: ImageSet,
                  classes: list[str] | None, per_class: int = 3) -> Path:
    """grid.png: real | plain | adapted images, one row per class, the same seeds in the last two panels."""
    from synthbridge.diffusion.pipeline import generator_info
    from synthbridge.diffusion.sampling import render
    from synthbridge.grids import labelled_grid, pick_per_class, save_png

    defaults = generator_info(config.generator).defaults
    steps, guidance = defaults.get("steps", 25), defaults.get("guidance_scale", 7.5)
    template = resolve_template(config.template)
    labels = list(range(bundle.num_classes)) if classes is None else [bundle.classes.index(c) for c in classes]
    real = pick_per_class(images, bundle.num_classes, per_class, config.seed)
    plain, adapted = [], []
    for label in labels:
        prompt = build_prompt(template, bundle.phrases[label], bundle.superclass)
        seeds = [derive_seed(config.seed, "lora-grid", label, j) for j in range(per_class)]
        draw = lambda: render(pipe, [prompt] * per_class, seeds, negative_prompt=None, steps=steps,  # noqa: E731
                              guidance_scale=guidance, height=config.resolution, width=config.resolution)[0]
        _remove_adapters(pipe)
        plain.append(draw())
        with _quiet_diffusers():  # "no LoRA keys for the text encoder": true, and no news
            pipe.load_lora_weights(str(out if classes is None else out / safe_name(bundle.classes[label])))
        adapted.append(draw())
        pipe.unload_lora_weights()
    grid = labelled_grid([("real", [real[label] for label in labels]), ("plain", plain), ("adapted", adapted)],
                         [bundle.phrases[label] for label in labels])
    return save_png(grid, out / "grid.png")


@contextlib.contextmanager
def _quiet_diffusers():
    from diffusers.utils import logging as diffusers_logging

    level = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()
    try:
        yield
    finally:
        diffusers_logging.set_verbosity(level)


__all__ = ["LORA_INFO", "LORA_WEIGHTS", "LoraTrainConfig", "adapters_grid", "train_lora"]
