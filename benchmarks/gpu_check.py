"""GPU readiness: the full-scale path's speed and memory on one NVIDIA GPU, offline, in one call (under 8 minutes).

Steps (each reports `ok`, its figures and its seconds; a failed step is recorded and the others still run):

- generation: a Stable Diffusion 1.5-sized pipeline built in code with random weights (UNet2DConditionModel,
  AutoencoderKL and CLIPTextModel in SD 1.5's configuration; the tiny CLIP tokenizer of the project's tests), in
  fp16 with PyTorch's scaled-dot-product attention (diffusers' AttnProcessor2_0), 512 px, 25 DPM-Solver++ steps:
  images/s of a naive loop (one plain `pipe(prompt)` call per image) against `sampling.render` (what `generate`
  calls) at batch 1 and at batch 32, with the peak GPU memory of each (torch.cuda.max_memory_allocated);
- diffusion_commands: `synthbridge generate`, `invert` and `lora` themselves on that pipeline saved as a diffusers
  folder (and an ImageFolder of generator-sized JPEGs the check writes): generate's images/s against `sampling.render`
  at the same batch on the same loaded pipeline; invert's and lora's steps/s (bf16, batch 8) against their floor,
  the UNet's forward and backward at the same batch and size on random latents (`benchmarks/finetune.py`);
- training: timm resnet50 (random init) at 224 px, forward / backward / AdamW on random tensors on the GPU, in
  fp32 (the baseline), with bf16 autocast, and with bf16 autocast + channels_last: images/s and ratios;
- train_command: `synthbridge train --strategy bridged` itself (the command, in a subprocess) on an ImageFolder of
  JPEGs and a synthetic folder of JPEGs that the check writes, for resnet18 and resnet50 at 224 px, batch 128,
  with the `memory` pipeline (`train`'s choice on a GPU: decoded images on the GPU, batched augmentation there) and
  the per-image `loader` pipeline, and resnet18's memory pipeline once more on JPEGs of many sizes (each side 0.75
  to 1.25 x 256 px, as photos: packed in canvases): each stage's steady images/s (from its metrics.json) against
  the floor of the same model, batch and precision (bf16 + channels_last, random tensors on the GPU) measured in this process;
- ddp: a 2-process DDP run of the same training under torchrun with NCCL where 2 GPUs exist (all_reduce, the
  ranks' weights equal after the steps, images/s against 2x one process), else recorded as skipped;
- demo: `synthbridge demo --quick` end to end on the GPU, its wall time and its report;
- compile: torch.compile against eager where `train --compile` and `generate --compile` apply it: the resnet50
  training step (bf16 + channels_last) and the SD-1.5-sized UNet's denoising call at the generation batch (fp16,
  guidance doubling the batch), each warmed up (the compiled one compiles then: its extra seconds are reported) and
  then timed. Last, so that a run cut short by a slow compilation keeps every other figure.

It writes one JSON of figures (--out, rewritten after every step, so a run cut short keeps what it measured) and
inserts a dated row into the "GPU readiness" table of benchmarks/README.md (--no-readme to skip it).

--dry-run runs every step on the CPU with tiny components (a tiny UNet / VAE / text encoder, resnet18 at 32 px,
2 steps, DDP over gloo, a `synthbridge run` grid of 2 cells instead of the demo, timm's test_resnet compiled by
inductor on the CPU) in under a minute, and checks each step's output; its `synthbridge train` and `run` commands
run in this process (`run_command`: the same `main`, without importing torch again each time), DDP in its own two.
It writes no README row unless --append-readme is given.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/gpu_check.py --dry-run --out /tmp/gpu-check.json
    HF_HUB_OFFLINE=1 python benchmarks/gpu_check.py --out gpu-check.json            # on a GPU machine
    python benchmarks/gpu_check.py --append-from gpu-check.json                      # the row, from another machine

On a lent device machine whose image lacks diffusers and mlxtend, carry them as wheels (.whl/, see the device
notes), install the checkout without dependencies (`pip install --no-deps --no-build-isolation -e .`), run with
`--out $OUT/gpu-check.json`, and add the row here with --append-from (the device's copy of the README does not
come back).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never the hub: every component is built here

import torch  # noqa: E402

BENCHMARKS = Path(__file__).resolve().parent
STEPS = ("generation", "diffusion_commands", "training", "train_command", "ddp", "demo", "compile")
README_HEADING = "## GPU readiness"
README_INTRO = ("Rows inserted by `benchmarks/gpu_check.py` (one per run; the JSON it wrote holds every figure). "
                "Generation: a Stable Diffusion 1.5-sized pipeline with random weights (fp16, SDPA, 512 px, 25 "
                "DPM-Solver++ steps, guidance 2). Training: timm resnet50, random init, 224 px, random tensors. "
                "torch.compile: inductor, images/s compiled / eager after warm-up, and the compilation's seconds.")
README_HEADER = ("| date | machine | generation: naive loop / batch 1 / batch 32 | peak GPU memory (batch 1 / 32) "
                 "| resnet50 training: fp32 / bf16 / bf16 + channels_last "
                 "| `synthbridge train` / floor (stage 1 / stage 2) | 2-process DDP | `demo --quick` "
                 "| torch.compile vs eager: training / UNet (compile s) "
                 "| `generate` / render; `invert`, `lora` / floor |\n"
                 "|---|---|---|---|---|---|---|---|---|---|")


class CheckFailed(Exception):
    """A step ran but its output is not what it should be."""


def check(condition: bool, message: str) -> None:
    """Raise CheckFailed(message) unless `condition`."""
    if not condition:
        raise CheckFailed(message)


@dataclass(frozen=True)
class PipelineSpec:
    """Sizes of a Stable Diffusion 1.x pipeline: UNet, VAE and CLIP text encoder (vocab_size None: the tokenizer's)."""

    unet_channels: tuple[int, ...]
    unet_layers: int
    attention_heads: int
    vae_channels: tuple[int, ...]
    vae_layers: int
    text_width: int
    text_layers: int
    text_heads: int
    text_intermediate: int
    vocab_size: int | None
    latent_size: int

    @property
    def image_size(self) -> int:
        return self.latent_size * 2 ** (len(self.vae_channels) - 1)


# SD 1.5's own configuration (runwayml/stable-diffusion-v1-5: unet/, vae/, text_encoder/ config.json)
SD15 = PipelineSpec(unet_channels=(320, 640, 1280, 1280), unet_layers=2, attention_heads=8,
                    vae_channels=(128, 256, 512, 512), vae_layers=2, text_width=768, text_layers=12, text_heads=12,
                    text_intermediate=3072, vocab_size=49408, latent_size=64)
TINY = PipelineSpec(unet_channels=(32, 64), unet_layers=1, attention_heads=2, vae_channels=(32, 64), vae_layers=1,
                    text_width=32, text_layers=2, text_heads=2, text_intermediate=64, vocab_size=None, latent_size=8)
# SD 1.x's noise schedule (scheduler/scheduler_config.json)
SD_SCHEDULE = {"num_train_timesteps": 1000, "beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear",
               "steps_offset": 1, "prediction_type": "epsilon"}


@dataclass(frozen=True)
class CheckConfig:
    """What the check runs and at which sizes (the defaults: the GPU run; `dry()`: tiny, on the CPU)."""

    out: Path
    dry_run: bool = False
    steps: tuple[str, ...] = STEPS
    readme: Path = BENCHMARKS / "README.md"
    append_readme: bool = True
    work_dir: Path | None = None
    pipeline: PipelineSpec = SD15
    dtype: str = "fp16"
    sampling_steps: int = 25
    guidance_scale: float = 2.0
    batch_size: int = 32
    batched_images: int = 64
    single_images: int = 4
    train_model: str = "resnet50"
    train_size: int = 224
    train_batch: int = 128
    train_steps: int = 30
    train_warmup: int = 5
    demo_timeout: int = 360
    command_models: tuple[str, ...] = ("resnet18", "resnet50")  # train_command: `synthbridge train` per model
    command_pipelines: tuple[str, ...] = ("memory", "loader")
    command_classes: int = 10
    command_per_class: int = 200  # real and synthetic training images per class (JPEGs)
    command_image_size: int = 256  # the JPEGs' side in pixels
    command_steps: int = 100  # steps per stage
    command_workers: int = 15  # DataLoader processes of the loader pipeline
    compile_train_model: str | None = None  # the compile step's classifier; None: train_model
    unet_calls: int = 20  # timed denoising calls of the UNet, eager and compiled (after 3 warm-up calls each)
    commands_classes: int = 4  # diffusion_commands: classes of the real JPEGs (generator-sized) and of the set
    commands_real_per_class: int = 8  # real images per class the tokens and adapters learn from
    commands_per_class: int = 40  # images per class `generate` makes (4 x 40: 5 batches of 32)
    finetune_steps: int = 60  # timed steps of `invert` and `lora` (after a 5-step warm-up run each)
    finetune_batch: int = 8

    @classmethod
    def dry(cls, out: Path, **changes) -> CheckConfig:
        """The same steps on the CPU with tiny components and 2 steps each."""
        return replace(cls(out=out, dry_run=True, append_readme=False, pipeline=TINY, dtype="fp32", sampling_steps=2,
                           batch_size=4, batched_images=4, single_images=2, train_model="resnet18", train_size=32,
                           train_batch=4, train_steps=2, train_warmup=1, demo_timeout=240,
                           compile_train_model="test_resnet", unet_calls=2, command_models=("resnet18",),
                           commands_classes=2, commands_real_per_class=4, commands_per_class=4, finetune_steps=3,
                           finetune_batch=2,
                           command_classes=2, command_per_class=8, command_image_size=40, command_steps=4,
                           command_workers=0), **changes)

    @property
    def device(self) -> torch.device:
        return torch.device("cpu" if self.dry_run else "cuda")


# --------------------------------------------------------------------------------------------- measuring


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_gib(device: torch.device) -> float | None:
    """Peak memory allocated by torch on `device` since the last reset, in GiB (None on the CPU)."""
    return round(torch.cuda.max_memory_allocated(device) / 2**30, 2) if device.type == "cuda" else None


def timed(fn, device: torch.device) -> tuple[object, float, float | None]:
    """(fn(), seconds, peak GiB) with the device synchronised before and after and the peak reset before."""
    synchronize(device)
    reset_peak(device)
    began = time.perf_counter()
    value = fn()
    synchronize(device)
    return value, time.perf_counter() - began, peak_gib(device)


# --------------------------------------------------------------------------------------------- generation


def build_pipeline(spec: PipelineSpec, device: torch.device, dtype: torch.dtype):
    """A StableDiffusionPipeline of `spec`'s sizes with random weights (seeded), built on `device` in `dtype`,
    DPM-Solver++ on SD's noise schedule, SDPA attention, no safety checker, no progress bar."""
    from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel
    from diffusers.models.attention_processor import AttnProcessor2_0
    from diffusers.utils import logging as diffusers_logging
    from transformers import CLIPTextConfig, CLIPTextModel

    from synthbridge.diffusion.pipeline import make_scheduler
    from synthbridge.embedded.tiny import tiny_tokenizer

    tokenizer = tiny_tokenizer()
    blocks = len(spec.unet_channels)
    torch.manual_seed(0)
    with torch.device(device):  # built where it runs: an 860 M-parameter UNet initialises in a second on a GPU
        unet = UNet2DConditionModel(
            sample_size=spec.latent_size, in_channels=4, out_channels=4, layers_per_block=spec.unet_layers,
            block_out_channels=spec.unet_channels, cross_attention_dim=spec.text_width,
            attention_head_dim=spec.attention_heads, norm_num_groups=32,
            down_block_types=("CrossAttnDownBlock2D",) * (blocks - 1) + ("DownBlock2D",),
            up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * (blocks - 1))
        vae = AutoencoderKL(
            in_channels=3, out_channels=3, latent_channels=4, block_out_channels=spec.vae_channels,
            layers_per_block=spec.vae_layers, norm_num_groups=32, sample_size=spec.image_size, scaling_factor=0.18215,
            down_block_types=("DownEncoderBlock2D",) * len(spec.vae_channels),
            up_block_types=("UpDecoderBlock2D",) * len(spec.vae_channels))
        text_encoder = CLIPTextModel(CLIPTextConfig(
            hidden_size=spec.text_width, intermediate_size=spec.text_intermediate, num_hidden_layers=spec.text_layers,
            num_attention_heads=spec.text_heads, vocab_size=spec.vocab_size or len(tokenizer), hidden_act="quick_gelu",
            max_position_embeddings=tokenizer.model_max_length, bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    pipe = StableDiffusionPipeline(unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                   scheduler=make_scheduler("dpm++", SD_SCHEDULE), safety_checker=None,
                                   feature_extractor=None, requires_safety_checker=False)
    verbosity = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()  # its notice on casting built (not loaded) models names no module
    try:
        pipe = pipe.to(dtype=dtype)
    finally:
        diffusers_logging.set_verbosity(verbosity)
    pipe.unet.set_attn_processor(AttnProcessor2_0())
    pipe.vae.set_attn_processor(AttnProcessor2_0())
    pipe.set_progress_bar_config(disable=True)
    return pipe


def naive_loop(pipe, prompts: list[str], seeds: list[int], sampling: dict) -> list:
    """One plain diffusers call per image, as a first script would do it."""
    return [pipe(prompt=prompt, generator=torch.Generator("cpu").manual_seed(seed), output_type="pil", **sampling).images[0]
            for prompt, seed in zip(prompts, seeds)]


def render_loop(pipe, prompts: list[str], seeds: list[int], batch_size: int, sampling: dict) -> list:
    """`generate`'s way: `sampling.render` calls of a fixed batch shape, one seed per image."""
    from synthbridge.diffusion.sampling import render

    images = []
    for start in range(0, len(prompts), batch_size):
        images += render(pipe, prompts[start:start + batch_size], seeds[start:start + batch_size], negative_prompt=None,
                         steps=sampling["num_inference_steps"], guidance_scale=sampling["guidance_scale"],
                         height=sampling["height"], width=sampling["width"], batch_size=batch_size)[0]
    return images


def check_images(images: list, count: int, size: int, what: str) -> None:
    check(len(images) == count, f"{what}: {len(images)} images, expected {count}")
    check(all(image.size == (size, size) for image in images), f"{what}: an image is not {size}x{size}")


def generation_step(cfg: CheckConfig) -> dict:
    """Images/s and peak memory of the naive loop, render at batch 1 and render at --batch-size (same prompts, seeds)."""
    device, spec = cfg.device, cfg.pipeline
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[cfg.dtype]
    pipe, build_seconds, _ = timed(lambda: build_pipeline(spec, device, dtype), device)
    size = spec.image_size
    sampling = dict(num_inference_steps=cfg.sampling_steps, guidance_scale=cfg.guidance_scale, height=size, width=size)
    count = max(cfg.batched_images, cfg.single_images)
    names = ("Boeing 737-800", "Airbus A320", "Cessna 172", "Dash 8", "F-16A/B")
    prompts = [f"a good photo of the {names[i % len(names)]}, a type of aircraft" for i in range(count)]
    seeds = list(range(1000, 1000 + count))
    single = (prompts[:cfg.single_images], seeds[:cfg.single_images])
    render_loop(pipe, prompts[:1], seeds[:1], 1, sampling)  # warm-up of both shapes: kernels, allocator
    render_loop(pipe, prompts[:cfg.batch_size], seeds[:cfg.batch_size], cfg.batch_size, sampling)
    naive, naive_s, naive_peak = timed(lambda: naive_loop(pipe, *single, sampling), device)
    one, one_s, one_peak = timed(lambda: render_loop(pipe, *single, 1, sampling), device)
    batched, batched_s, batched_peak = timed(lambda: render_loop(pipe, prompts[:cfg.batched_images],
                                                                 seeds[:cfg.batched_images], cfg.batch_size, sampling), device)
    check_images(naive, cfg.single_images, size, "naive loop")
    check_images(one, cfg.single_images, size, "batch 1")
    check_images(batched, cfg.batched_images, size, f"batch {cfg.batch_size}")
    rates = {"naive": cfg.single_images / naive_s, "batch_1": cfg.single_images / one_s,
             f"batch_{cfg.batch_size}": cfg.batched_images / batched_s}
    parameters = {name: sum(p.numel() for p in getattr(pipe, name).parameters()) for name in ("unet", "vae", "text_encoder")}
    return {"pipeline": "sd15-sized" if spec == SD15 else "tiny", "parameters": parameters, "dtype": cfg.dtype,
            "attention": type(pipe.unet.attn_processors[next(iter(pipe.unet.attn_processors))]).__name__,
            "scheduler": type(pipe.scheduler).__name__, "image_size": size, "sampling_steps": cfg.sampling_steps,
            "guidance_scale": cfg.guidance_scale, "batch_size": cfg.batch_size, "images": {
                "naive": cfg.single_images, "batch_1": cfg.single_images, f"batch_{cfg.batch_size}": cfg.batched_images},
            "build_seconds": round(build_seconds, 2),
            "images_per_second": {name: round(rate, 3) for name, rate in rates.items()},
            "vs_naive": {name: round(rate / rates["naive"], 3) for name, rate in rates.items() if name != "naive"},
            "peak_memory_gib": {"naive": naive_peak, "batch_1": one_peak, f"batch_{cfg.batch_size}": batched_peak}}


# --------------------------------------------------------------------------------------------- training


def make_train_step(model: torch.nn.Module, batch: int, size: int, device: torch.device, bf16: bool, channels_last: bool,
                    seed: int = 0):
    """A closure running one forward / backward / AdamW step of `model` on a fixed random batch; returns the loss."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.randn(batch, 3, size, size, generator=generator).to(device)
    targets = torch.randint(0, 100, (batch,), generator=generator).to(device)
    if channels_last:
        images = images.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    criterion = torch.nn.CrossEntropyLoss()

    def step() -> torch.Tensor:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = criterion(model(images), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def new_model(name: str, device: torch.device, channels_last: bool) -> torch.nn.Module:
    """A timm model with random weights (seed 0), 100 classes, in train mode on `device`."""
    import timm

    torch.manual_seed(0)
    model = timm.create_model(name, pretrained=False, num_classes=100).to(device).train()
    return model.to(memory_format=torch.channels_last) if channels_last else model


def train_rate(cfg: CheckConfig, bf16: bool, channels_last: bool, compiled: bool = False,
               model_name: str | None = None) -> dict:
    """Images/s, final loss and peak memory of `cfg.train_steps` steps after `cfg.train_warmup` untimed ones (timed
    too: `warmup_seconds`, where a compiled model compiles). `compiled`: through `train --compile`'s torch.compile."""
    from synthbridge.models import compile_model

    device = cfg.device
    model = new_model(model_name or cfg.train_model, device, channels_last)
    step = make_train_step(compile_model(model, device) if compiled else model, cfg.train_batch, cfg.train_size, device,
                           bf16, channels_last)
    _, warmup_seconds, _ = timed(lambda: [step() for _ in range(cfg.train_warmup)], device)
    losses, seconds, peak = timed(lambda: [step() for _ in range(cfg.train_steps)], device)
    loss = float(losses[-1])
    check(loss == loss and abs(loss) != float("inf"), f"training ({'bf16' if bf16 else 'fp32'}): the loss is {loss}")
    return {"images_per_second": round(cfg.train_steps * cfg.train_batch / seconds, 1), "final_loss": round(loss, 4),
            "peak_memory_gib": peak, "warmup_seconds": round(warmup_seconds, 2)}


def training_step(cfg: CheckConfig) -> dict:
    """The same loop in fp32 (the baseline), with bf16 autocast, and with bf16 autocast + channels_last."""
    variants = {"fp32": train_rate(cfg, False, False), "bf16": train_rate(cfg, True, False),
                "bf16_channels_last": train_rate(cfg, True, True)}
    base = variants["fp32"]["images_per_second"]
    flags = {"cudnn_allow_tf32": torch.backends.cudnn.allow_tf32, "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32}
    return {"model": cfg.train_model, "pretrained": False, "input_size": cfg.train_size, "batch_size": cfg.train_batch,
            "steps": cfg.train_steps, "warmup_steps": cfg.train_warmup, "fp32_flags": flags, "variants": variants,
            "vs_fp32": {name: round(v["images_per_second"] / base, 3) for name, v in variants.items() if name != "fp32"}}


# --------------------------------------------------------------------------------------------- train command


def write_jpeg_sets(root: Path, classes: int, per_class: int, size: int, vary: bool = False) -> tuple[Path, Path]:
    """An ImageFolder (train/ per_class, test/ a tenth of it, per class) and a synthetic folder (generate's layout:
    <safe class name>/<index>.jpg and manifest.jsonl) of JPEGs: smooth random colour fields with a class-coloured
    square, so that the images decode and compress like photos and the classes can be told apart. `vary`: each
    image's height and width drawn between 0.75 and 1.25 x `size`, as a photo dataset's are."""
    import numpy as np
    from PIL import Image

    from synthbridge.io import safe_name

    rng = np.random.default_rng(0)
    real, synthetic = root / "real", root / "synthetic"
    names = [f"class {k}" for k in range(classes)]
    lines = []

    def image(label: int) -> Image.Image:
        field = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        height, width = rng.integers(int(0.75 * size), int(1.25 * size) + 1, 2) if vary else (size, size)
        picture = np.asarray(Image.fromarray(field).resize((int(width), int(height)), Image.BICUBIC)).copy()
        side = size // 4
        top, left = rng.integers(0, height - side), rng.integers(0, width - side)
        picture[top:top + side, left:left + side] = (np.array([37, 91, 173]) * (label + 1)) % 256
        return Image.fromarray(picture)

    for label, name in enumerate(names):
        for split, count in (("train", per_class), ("test", max(2, per_class // 10))):
            folder = real / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(count):
                image(label).save(folder / f"{index:05d}.jpg", quality=90)
        folder = synthetic / safe_name(name)
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            image(label).save(folder / f"{index:05d}.jpg", quality=90)
            lines.append({"class": name, "path": f"{folder.name}/{index:05d}.jpg", "seed": index})
    (synthetic / "manifest.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    return real, synthetic


def train_command_step(cfg: CheckConfig, work: Path) -> dict:
    """`synthbridge train --strategy bridged` per model and pipeline, each stage's steady images/s against the floor
    (forward, backward, AdamW on random tensors already on the device, bf16 + channels_last on a GPU as `train`
    picks there) of the same model, batch and input size, measured in this process after the commands."""
    real, synthetic = write_jpeg_sets(work / "jpegs", cfg.command_classes, cfg.command_per_class, cfg.command_image_size)
    mixed = write_jpeg_sets(work / "jpegs-mixed-sizes", cfg.command_classes, cfg.command_per_class,
                            cfg.command_image_size, vary=True)
    runs, gpu = {}, not cfg.dry_run
    # every model and pipeline on one-size JPEGs; the first model's memory pipeline also on JPEGs of many sizes
    plan = [(model, pipeline, (real, synthetic), "") for model in cfg.command_models for pipeline in cfg.command_pipelines]
    plan.append((cfg.command_models[0], "memory", mixed, "-mixed-sizes"))
    for model, pipeline, (real, synthetic), variant in plan:
        out = work / f"train-{model}-{pipeline}{variant}"
        command = [sys.executable, "-m", "synthbridge", "train", "--dataset", f"imagefolder:{real}", "--model", model,
                   "--strategy", "bridged", "--synthetic", str(synthetic), "--no-pretrained",
                   "--input-size", str(cfg.train_size), "--pipeline", pipeline,
                   "--num-workers", str(cfg.command_workers), "--report-to", "none", "--keep", "none",
                   "--out", str(out)]
        for stage in ("real", "synthetic"):
            command += [f"--{stage}-steps", str(cfg.command_steps), f"--{stage}-batch-size", str(cfg.train_batch)]
        began = time.perf_counter()
        code, said = run_command(command, in_process=cfg.dry_run)
        wall = time.perf_counter() - began
        check(code == 0, f"train {model} ({pipeline}) exited {code}: {last_line(said)}")
        from synthbridge.io import read_json

        metrics, config = read_json(out / "metrics.json"), read_json(out / "config.json")["config"]
        if gpu:
            check(config["mixed_precision"] == "bf16" and config["channels_last"],
                  f"train on a GPU resolved precision {config['mixed_precision']!r}, channels_last "
                  f"{config['channels_last']}: expected bf16 and true")
        stages = {name: {"images_per_second": record["images_per_second"], "seconds": round(record["seconds"], 2),
                         "steps": record["steps"], "batch_size": record["batch_size"]}
                  for name, record in metrics["stages"].items()}
        runs[f"{model}/{pipeline}{variant}"] = {
            "model": model, "pipeline": pipeline, "mixed_sizes": bool(variant), "stages": stages,
            "wall_seconds": round(wall, 1),
            "seconds": {k: round(v, 2) for k, v in metrics["seconds"].items()}, "top1": metrics["top1"],
            "mixed_precision": config["mixed_precision"], "channels_last": config["channels_last"]}
    floors = {}
    for model in cfg.command_models:
        floor = train_rate(cfg, bf16=gpu, channels_last=gpu, model_name=model)["images_per_second"]
        floors[model] = floor
    for run in runs.values():
        run["floor_images_per_second"] = floors[run["model"]]
        run["vs_floor"] = {name: round(stage["images_per_second"] / floors[run["model"]], 3)
                           for name, stage in run["stages"].items() if stage["images_per_second"]}
    return {"command": "synthbridge train --strategy bridged", "input_size": cfg.train_size,
            "batch_size": cfg.train_batch, "steps_per_stage": cfg.command_steps,
            "images": {"classes": cfg.command_classes, "per_class": cfg.command_per_class,
                       "jpeg_size": cfg.command_image_size}, "floor_precision": "bf16 + channels_last" if gpu else "fp32",
            "runs": runs}


# --------------------------------------------------------------------------------------------- diffusion commands


def diffusion_commands_step(cfg: CheckConfig, work: Path) -> dict:
    """`generate`, `invert` and `lora` themselves on the SD-1.5-sized pipeline saved as a diffusers folder, each
    against its reference in this process: generate's images/s (its own record, the loop without loading) against
    `sampling.render` at the same batch on the same loaded pipeline; invert's and lora's steps/s (`train_seconds` of
    a timed run after a warm-up run) against the floor, the UNet's forward and backward at the same batch and size
    on random latents and text states (`benchmarks/finetune.py`)."""
    sys.path.insert(0, str(BENCHMARKS))
    from finetune import floor_steps_per_second, loop_steps_per_second
    from synthbridge.diffusion.pipeline import describe_generator, load_generator, locate_generator
    from synthbridge.generation import GenerateConfig, generate

    device, spec = cfg.device, cfg.pipeline
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[cfg.dtype]
    folder = work / "sd-folder"
    build_pipeline(spec, device, dtype).save_pretrained(folder)
    real, _ = write_jpeg_sets(work / "commands-jpegs", cfg.commands_classes, cfg.commands_real_per_class,
                              spec.image_size)
    dataset, size = f"imagefolder:{real}", spec.image_size
    located = locate_generator(str(folder))

    # generate, then render at the same batch on the same pipeline (each warmed up by one batch first)
    pipe = load_generator(describe_generator(located[1], located[0]), cfg.dtype, device, quiet=True)
    sampling = dict(num_inference_steps=cfg.sampling_steps, guidance_scale=cfg.guidance_scale, height=size, width=size)
    count = cfg.commands_classes * cfg.commands_per_class
    prompts, seeds = [f"a photo of the class {i % cfg.commands_classes}" for i in range(count)], list(range(count))
    render_loop(pipe, prompts[:cfg.batch_size], seeds[:cfg.batch_size], cfg.batch_size, sampling)
    generate(GenerateConfig(out=str(work / "warm-set"), dataset=dataset, generator=str(folder), per_class=1,
                            batch_size=cfg.batch_size, steps=cfg.sampling_steps, guidance_scale=cfg.guidance_scale,
                            scheduler="dpm++", dtype=cfg.dtype, compile=False, show_progress=False), pipeline=pipe)
    summary = generate(GenerateConfig(
        out=str(work / "set"), dataset=dataset, generator=str(folder), per_class=cfg.commands_per_class,
        batch_size=cfg.batch_size, steps=cfg.sampling_steps, guidance_scale=cfg.guidance_scale, scheduler="dpm++",
        dtype=cfg.dtype, compile=False, show_progress=False), pipeline=pipe)
    check(summary["status"] == "complete" and summary["run"]["generated"] == count,
          f"generate made {summary['run']['generated']} of {count} images")
    images, render_s, _ = timed(lambda: render_loop(pipe, prompts, seeds, cfg.batch_size, sampling), device)
    check_images(images, count, size, "render")
    made, rendered = summary["run"]["images_per_second"], count / render_s
    pipe = images = None  # the memory back before the fine-tuning runs load their own

    # invert and lora against the floor, in bf16 on a GPU (fp32 on the CPU)
    tune_dtype = "fp32" if cfg.dry_run else "bf16"
    floor_pipe = load_generator(describe_generator(located[1], located[0]), tune_dtype, device, quiet=True)
    floor = floor_steps_per_second(floor_pipe, cfg.finetune_batch, size, steps=max(3, cfg.finetune_steps // 2))
    floor_pipe = None
    loops = {method: loop_steps_per_second(method, str(folder), dataset, steps=cfg.finetune_steps,
                                           batch=cfg.finetune_batch, resolution=size, dtype=tune_dtype,
                                           device=str(device), work=work / "tuned")
             for method in ("invert", "lora")}
    return {"pipeline": "sd15-sized" if spec == SD15 else "tiny", "image_size": size,
            "generate": {"images": count, "batch_size": cfg.batch_size, "dtype": cfg.dtype,
                         "sampling_steps": cfg.sampling_steps, "images_per_second": round(made, 3),
                         "render_images_per_second": round(rendered, 3), "vs_render": round(made / rendered, 3)},
            "finetune": {"batch_size": cfg.finetune_batch, "dtype": tune_dtype, "steps": cfg.finetune_steps,
                         "floor_steps_per_second": round(floor, 3),
                         **{method: {"steps_per_second": round(loop["steps_per_second"], 3),
                                     "train_seconds": loop["train_seconds"],
                                     "vs_floor": round(loop["steps_per_second"] / floor, 3)}
                            for method, loop in loops.items()}}}


# --------------------------------------------------------------------------------------------- compile


def unet_rate(cfg: CheckConfig, unet: torch.nn.Module, text_width: int, dtype: torch.dtype) -> dict:
    """Denoising calls/s of `unet` at the generation batch with guidance (2 x batch latents), after 3 warm-up calls
    (timed too: `warmup_seconds`, where a compiled UNet compiles), and the images/s they amount to at
    `cfg.sampling_steps` steps (the UNet is nearly all of sampling: the VAE and text encoder run once per batch)."""
    device, spec = cfg.device, cfg.pipeline
    generator = torch.Generator().manual_seed(0)
    rows = 2 * cfg.batch_size if cfg.guidance_scale > 1 else cfg.batch_size
    latents = torch.randn(rows, 4, spec.latent_size, spec.latent_size, generator=generator).to(device, dtype)
    text = torch.randn(rows, 77, text_width, generator=generator).to(device, dtype)
    timestep = torch.tensor(500, device=device)

    def call():
        with torch.no_grad():
            return unet(latents, timestep, text).sample

    _, warmup_seconds, _ = timed(lambda: [call() for _ in range(3)], device)
    outputs, seconds, peak = timed(lambda: [call() for _ in range(cfg.unet_calls)], device)
    check(bool(torch.isfinite(outputs[-1]).all()), "the UNet's prediction is not finite")
    calls = cfg.unet_calls / seconds
    return {"calls_per_second": round(calls, 3), "images_per_second": round(calls * cfg.batch_size / cfg.sampling_steps, 3),
            "warmup_seconds": round(warmup_seconds, 2), "peak_memory_gib": peak}


def compile_step(cfg: CheckConfig) -> dict:
    """Eager against torch.compile (synthbridge.models.compile_model, what --compile calls) for the training step
    and the UNet; `compile_seconds`: the compiled warm-up's time beyond the eager one's."""
    from synthbridge.models import compile_model

    device = cfg.device
    model_name = cfg.compile_train_model or cfg.train_model
    training = {"eager": train_rate(cfg, True, True, model_name=model_name),
                "compiled": train_rate(cfg, True, True, compiled=True, model_name=model_name)}
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[cfg.dtype]
    pipe = build_pipeline(cfg.pipeline, device, dtype)
    unet = {"eager": unet_rate(cfg, pipe.unet, cfg.pipeline.text_width, dtype)}
    unet["compiled"] = unet_rate(cfg, compile_model(pipe.unet, device), cfg.pipeline.text_width, dtype)

    def compared(figures: dict, rate: str) -> dict:
        return {"vs_eager": round(figures["compiled"][rate] / figures["eager"][rate], 3),
                "compile_seconds": round(figures["compiled"]["warmup_seconds"] - figures["eager"]["warmup_seconds"], 1)}

    return {"backend": "inductor", "training": {"model": model_name, "input_size": cfg.train_size,
                                                "batch_size": cfg.train_batch, "precision": "bf16 + channels_last",
                                                **training, **compared(training, "images_per_second")},
            "unet": {"pipeline": "sd15-sized" if cfg.pipeline == SD15 else "tiny", "dtype": cfg.dtype,
                     "batch_size": cfg.batch_size, "calls": cfg.unet_calls, **unet, **compared(unet, "calls_per_second")}}


# --------------------------------------------------------------------------------------------- DDP


def ddp_worker(cfg: CheckConfig, result_file: Path) -> None:
    """One torchrun process: all_reduce, then DDP training steps; rank 0 writes the figures to `result_file`."""
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    cuda = not cfg.dry_run
    rank, world, local = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"])
    device = torch.device("cuda", local) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if cuda else "gloo")
    total = torch.tensor([float(rank + 1)], device=device)
    dist.all_reduce(total)
    model = new_model(cfg.train_model, device, channels_last=True)
    ddp = DistributedDataParallel(model, device_ids=[local] if cuda else None)
    step = make_train_step(ddp, cfg.train_batch, cfg.train_size, device, bf16=True, channels_last=True, seed=rank)
    for _ in range(cfg.train_warmup):
        step()
    dist.barrier()
    _, seconds, peak = timed(lambda: [step() for _ in range(cfg.train_steps)], device)
    checksum = torch.stack([p.detach().double().sum() for p in model.parameters()]).sum().reshape(1)
    low, high = checksum.clone(), checksum.clone()
    dist.all_reduce(low, op=dist.ReduceOp.MIN)
    dist.all_reduce(high, op=dist.ReduceOp.MAX)
    if rank == 0:
        from synthbridge.io import write_json

        write_json(result_file, {
            "backend": dist.get_backend(), "world_size": world, "all_reduce_ok": float(total) == world * (world + 1) / 2,
            "weights_equal_across_ranks": bool(low == high), "batch_per_process": cfg.train_batch,
            "images_per_second": round(world * cfg.train_steps * cfg.train_batch / seconds, 1), "peak_memory_gib": peak})
    dist.destroy_process_group()


def worker_command(cfg: CheckConfig, result_file: Path) -> list[str]:
    """torchrun of this script's --ddp-worker with 2 processes on this node."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", __file__,
               "--ddp-worker", str(result_file), "--out", str(cfg.out)]
    return command + (["--dry-run"] if cfg.dry_run else [])


def ddp_step(cfg: CheckConfig, work: Path, training: dict | None) -> dict:
    """2 processes over NCCL (gloo with --dry-run), or skipped where fewer than 2 GPUs exist."""
    gpus = torch.cuda.device_count()
    if not cfg.dry_run and gpus < 2:
        return {"ok": True, "skipped": f"{gpus} GPU(s) on this machine: a 2-process NCCL run needs 2"}
    result_file = work / "ddp.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(worker_command(cfg, result_file), env=env, capture_output=True, text=True, timeout=300)
    check(done.returncode == 0, f"torchrun exited {done.returncode}: {last_line(done.stderr + done.stdout)}")
    figures = json.loads(result_file.read_text())
    check(figures["all_reduce_ok"], "all_reduce gave the wrong sum")
    check(figures["weights_equal_across_ranks"], "the ranks' weights differ after the DDP steps")
    single = (training or {}).get("variants", {}).get("bf16_channels_last", {}).get("images_per_second")
    if single:  # the same model, batch and precision in one process
        figures["vs_two_single_processes"] = round(figures["images_per_second"] / (2 * single), 3)
    return {"model": cfg.train_model, "input_size": cfg.train_size, "precision": "bf16 + channels_last", **figures}


# --------------------------------------------------------------------------------------------- demo


DRY_GRID = """# gpu_check --dry-run: the demo's place, in seconds (font renders, no diffusion model)
name: gpu-check-dry
datasets: [digits]
models: [mini_resnet]
arms: [real, bridged]
volumes: [20]
volume_arms: []
shots: [2]
seeds: [0]
generator: render
analysis: false
train:
  report_to: none
  real: {steps: 10}
  synthetic_stage: {steps: 10}
"""


def demo_step(cfg: CheckConfig, work: Path) -> dict:
    """`synthbridge demo --quick` (with --dry-run: a 2-cell `synthbridge run`): its wall time, cells and report."""
    out = work / "demo"
    if cfg.dry_run:
        grid = work / "dry-grid.yaml"
        grid.write_text(DRY_GRID)
        command = [sys.executable, "-m", "synthbridge", "run", str(grid), "--out", str(out), "--report"]
    else:
        command = [sys.executable, "-m", "synthbridge", "demo", "--quick", "--out", str(out)]
    began = time.perf_counter()
    code, text = run_command(command, in_process=cfg.dry_run, timeout=cfg.demo_timeout)
    wall = time.perf_counter() - began
    (work / "demo.log").write_text(text)
    check(code == 0, f"synthbridge {command[3]} exited {code}: {last_line(text)}")
    from synthbridge.experiments import ExperimentConfig, plan_cells
    from synthbridge.io import read_json, read_jsonl

    results = read_jsonl(out / "results.jsonl") if (out / "results.jsonl").is_file() else []
    expected = len(plan_cells(ExperimentConfig.from_yaml(str(grid) if cfg.dry_run else "embedded-quick")))
    check(len({record["cell"] for record in results}) == expected, f"{len(results)} of {expected} cells in results.jsonl")
    check((out / "report.html").is_file(), "no report.html")
    devices = sorted({read_json(path).get("environment", {}).get("device", "?")
                      for path in out.glob("runs/*/config.json")} - {"?"})
    return {"command": "synthbridge run (2-cell grid) --report" if cfg.dry_run else "synthbridge demo --quick",
            "wall_seconds": round(wall, 1), "cells": len(results), "device_recorded": devices,
            "top1": {record["cell"]: record.get("metrics", {}).get("top1") for record in results},
            "output_tail": output_tail(text)}


def output_tail(text: str, count: int = 12) -> list[str]:
    """The last `count` lines of a command's output, progress bars left out."""
    lines = [line.rstrip() for line in text.replace("\r", "\n").splitlines()]
    return [line for line in lines if line.strip() and "\x1b" not in line and "%|" not in line][-count:]


def run_command(command: list[str], in_process: bool = False, timeout: float = 300) -> tuple[int, str]:
    """(exit code, what it said) of a `python -m synthbridge ...` command line: as its own process (what a user
    runs, and what the GPU's figures time), or, `in_process` (the dry run: it checks the steps, times nothing), by
    calling `synthbridge.cli.main` here, which saves each run the seconds of importing torch again."""
    if not in_process:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        return done.returncode, done.stderr + done.stdout
    import contextlib
    import io

    from synthbridge.cli import main

    said = io.StringIO()
    with contextlib.redirect_stdout(said), contextlib.redirect_stderr(said):
        code = main(command[3:])
    return code, said.getvalue()


def last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no output)"


# --------------------------------------------------------------------------------------------- the run


def run_step(name: str, fn, *args) -> dict:
    """fn(*args) as a step: its figures with ok and seconds; an exception becomes ok: false and its one-line error."""
    began = time.perf_counter()
    try:
        figures = {"ok": True, **fn(*args)}
    except Exception as exc:  # a failed step is a figure too: the others still run
        traceback.print_exc()
        first = next((line.strip() for line in str(exc).splitlines() if line.strip()), "")
        figures = {"ok": False, "error": f"{type(exc).__name__}: {first[:300]}"}
    figures["seconds"] = round(time.perf_counter() - began, 1)
    print(f"[gpu_check] {name}: {'ok' if figures['ok'] else 'FAILED ' + figures['error']} ({figures['seconds']} s)",
          flush=True)
    return figures


def describe_machine(dry_run: bool) -> dict:
    """The GPU(s), CUDA and library versions (synthbridge.io.environment)."""
    from synthbridge.io import environment

    info = environment()
    machine = {"gpu_count": torch.cuda.device_count(), "cuda": torch.version.cuda, "cpu_cores": os.cpu_count(),
               "versions": info["versions"], "git_revision": info["git_revision"], "platform": info["platform"]}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        machine.update(gpu=props.name, gpu_memory_gib=round(props.total_memory / 2**30, 1),
                       compute_capability=f"{props.major}.{props.minor}")
    machine["device_used"] = "cpu (dry run)" if dry_run else machine.get("gpu")
    return machine


def run_check(cfg: CheckConfig) -> dict:
    """Every selected step in order; the JSON at cfg.out is rewritten after each one."""
    from synthbridge.io import write_json

    began = time.perf_counter()
    result = {"script": "benchmarks/gpu_check.py", "date": datetime.date.today().isoformat(), "dry_run": cfg.dry_run,
              "machine": describe_machine(cfg.dry_run), "steps": {}}
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        work = Path(cfg.work_dir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        runs = {"generation": (generation_step, cfg), "diffusion_commands": (diffusion_commands_step, cfg, work),
                "training": (training_step, cfg),
                "train_command": (train_command_step, cfg, work),
                "ddp": (lambda: ddp_step(cfg, work, result["steps"].get("training")),),
                "demo": (demo_step, cfg, work), "compile": (compile_step, cfg)}
        for name in cfg.steps:
            fn, *args = runs[name]
            result["steps"][name] = run_step(name, fn, *args)
            write_json(cfg.out, result)
    result["ok"] = all(step["ok"] for step in result["steps"].values())
    result["seconds"] = round(time.perf_counter() - began, 1)
    write_json(cfg.out, result)
    return result


# --------------------------------------------------------------------------------------------- the README row


def _rate(value) -> str:
    return "?" if value is None else f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def format_row(result: dict) -> str:
    """One markdown table row of a check's figures (a failed step's cell says FAILED and why)."""
    steps, machine = result["steps"], result["machine"]

    def cell(name: str, text) -> str:
        step = steps.get(name)
        if step is None:
            return "not run"
        if not step["ok"]:
            return f"FAILED: {step['error'][:80]}".replace("|", "/")
        return step["skipped"] if "skipped" in step else text(step)

    def generation(step: dict) -> str:
        rates, big = step["images_per_second"], f"batch_{step['batch_size']}"
        return (f"{_rate(rates['naive'])} / {_rate(rates['batch_1'])} / {_rate(rates[big])} img/s: "
                f"**{step['vs_naive'][big]:.2f}×** naive ({step['pipeline']}, {step['dtype']}, {step['image_size']} px)")

    def memory(step: dict) -> str:
        peaks = step["peak_memory_gib"]
        big = peaks["batch_" + str(step["batch_size"])]
        return "n/a (CPU)" if peaks["batch_1"] is None else f"{peaks['batch_1']} / {big} GiB"

    def training(step: dict) -> str:
        rates = [step["variants"][name]["images_per_second"] for name in ("fp32", "bf16", "bf16_channels_last")]
        return (f"{' / '.join(map(_rate, rates))} img/s: **{step['vs_fp32']['bf16_channels_last']:.2f}×** fp32 "
                f"({step['model']}, {step['input_size']} px, batch {step['batch_size']})")

    def command(step: dict) -> str:
        parts = []
        for run in step["runs"].values():
            ratios = run.get("vs_floor", {})
            label = f"{run['model']} {run['pipeline']}" + (" (mixed sizes)" if run.get("mixed_sizes") else "")
            parts.append(f"{label}: **{ratios.get('synthetic', 0):.2f}× / "
                         f"{ratios.get('real', 0):.2f}×**")
        return "; ".join(parts) + f" ({step['input_size']} px, batch {step['batch_size']}, {step['floor_precision']})"

    def ddp(step: dict) -> str:
        scaling = f", {step['vs_two_single_processes']:.2f} of 2× one process" if "vs_two_single_processes" in step else ""
        return f"{step['backend']}, {step['world_size']} processes: {_rate(step['images_per_second'])} img/s{scaling}"

    def demo(step: dict) -> str:
        return f"ok, {step['wall_seconds']:.0f} s wall, {step['cells']} cells ({step['command']})"

    def compiled(step: dict) -> str:
        training, unet = step["training"], step["unet"]
        return (f"**{training['vs_eager']:.2f}×** / **{unet['vs_eager']:.2f}×** ({training['compile_seconds']:.0f} / "
                f"{unet['compile_seconds']:.0f} s; {training['model']}, UNet {unet['pipeline']} batch {unet['batch_size']})")

    def commands(step: dict) -> str:
        tune = step["finetune"]
        return (f"generate **{step['generate']['vs_render']:.2f}×** render; invert **{tune['invert']['vs_floor']:.2f}×**, "
                f"lora **{tune['lora']['vs_floor']:.2f}×** floor ({step['pipeline']}, {step['image_size']} px, "
                f"batch {step['generate']['batch_size']} / {tune['batch_size']} {tune['dtype']})")

    where = "dry run: CPU, tiny components" if result["dry_run"] else (
        f"{machine.get('gpu', '?')} ×{machine['gpu_count']}, torch {machine['versions'].get('torch')}, CUDA {machine['cuda']}")
    cells = [result["date"], where, cell("generation", generation), cell("generation", memory), cell("training", training),
             cell("train_command", command), cell("ddp", ddp), cell("demo", demo), cell("compile", compiled),
             cell("diffusion_commands", commands)]
    return "| " + " | ".join(cells) + " |"


def insert_row(text: str, row: str) -> str:
    """`text` (a markdown file) with `row` added as the last row of its GPU readiness table (made if absent)."""
    lines = text.rstrip("\n").splitlines()
    if README_HEADING not in lines:
        return "\n".join(lines + ["", README_HEADING, "", README_INTRO, "", README_HEADER, row]) + "\n"
    at = lines.index(README_HEADING) + 1
    while at < len(lines) and not lines[at].startswith("|") and not lines[at].startswith("#"):
        at += 1
    if at == len(lines) or lines[at].startswith("#"):  # a heading without its table
        return "\n".join(lines[:at] + [README_HEADER, row, ""] + lines[at:]) + "\n"
    while at < len(lines) and lines[at].startswith("|"):
        at += 1
    return "\n".join(lines[:at] + [row] + lines[at:]) + "\n"


def append_readme(readme: Path, result: dict) -> None:
    """Insert `result`'s row into `readme`'s GPU readiness table (an atomic rewrite)."""
    from synthbridge.io import write_text

    write_text(readme, insert_row(readme.read_text(encoding="utf-8") if readme.is_file() else "# Benchmarks\n",
                                  format_row(result)))


# --------------------------------------------------------------------------------------------- command line


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="gpu-check.json", help="the JSON of figures (rewritten after every step)")
    parser.add_argument("--dry-run", action="store_true", help="every step on the CPU with tiny components, checked")
    parser.add_argument("--only", help=f"comma-separated steps to run (default all: {','.join(STEPS)})")
    parser.add_argument("--readme", default=str(BENCHMARKS / "README.md"), help="where the row goes")
    parser.add_argument("--no-readme", action="store_true", help="write no README row")
    parser.add_argument("--append-readme", action="store_true", help="with --dry-run: write the row anyway")
    parser.add_argument("--append-from", metavar="JSON", help="run nothing: insert the row of a JSON this script wrote")
    parser.add_argument("--work-dir", help="keep the steps' files here (default: a temporary folder, removed)")
    parser.add_argument("--batch-size", type=int, help="generation batch (default 32; 4 with --dry-run)")
    parser.add_argument("--sampling-steps", type=int, help="denoising steps (default 25; 2 with --dry-run)")
    parser.add_argument("--demo-timeout", type=int, help="seconds the demo may take (default 360)")
    parser.add_argument("--ddp-worker", metavar="RESULT", help=argparse.SUPPRESS)  # torchrun's processes
    return parser.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> CheckConfig:
    """The CheckConfig the flags ask for; an unknown step or a real run without a GPU is a UserError."""
    from synthbridge.errors import UserError

    steps = tuple(s.strip() for s in args.only.split(",")) if args.only else STEPS
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        raise UserError(f"unknown step {unknown[0]!r} in --only; choose from: {', '.join(STEPS)}")
    if not args.dry_run and not args.ddp_worker and not args.append_from and not torch.cuda.is_available():
        raise UserError("no CUDA GPU here: the check measures an SD-1.5-sized pipeline on one; "
                        "run with --dry-run to check the steps on the CPU")
    changes = {name: value for name, value in (("batch_size", args.batch_size), ("sampling_steps", args.sampling_steps),
                                               ("demo_timeout", args.demo_timeout)) if value}
    base = CheckConfig.dry(Path(args.out)) if args.dry_run else CheckConfig(out=Path(args.out))
    append = not args.no_readme and (args.append_readme or not args.dry_run)
    return replace(base, steps=steps, readme=Path(args.readme), append_readme=append,
                   work_dir=Path(args.work_dir) if args.work_dir else None, **changes)


def main(argv: list[str] | None = None) -> int:
    from synthbridge.errors import UserError

    args = parse_args(argv)
    try:
        cfg = config_from_args(args)
        if args.ddp_worker:
            ddp_worker(cfg, Path(args.ddp_worker))
            return 0
        if args.append_from:
            result = json.loads(Path(args.append_from).read_text(encoding="utf-8"))
            append_readme(cfg.readme, result)
            print(format_row(result))
            return 0
    except (UserError, FileNotFoundError, json.JSONDecodeError) as exc:
        print(f"gpu_check: error: {exc}", file=sys.stderr)
        return 2
    result = run_check(cfg)
    if cfg.append_readme:
        append_readme(cfg.readme, result)
    print(format_row(result))
    print(f"[gpu_check] {'all steps ok' if result['ok'] else 'some steps FAILED'} in {result['seconds']} s -> {cfg.out}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
