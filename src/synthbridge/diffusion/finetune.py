"""One fine-tuning loop for every method that fits the generator to the real images: style inversion (`invert`,
the new token rows train) and LoRA (`lora`, adapter layers train). What differs between them is a `Trainable`
(which tensors train, how a checkpoint keeps them, a step's projection); everything else is here once: the
output folder's preparation, the optimizer and schedule (diffusers' own), the checkpoint format and resume, the
step loop, the loss record.

The step at the GPU's speed:
- the real images' VAE latent distributions (mean and standard deviation, fp32) are cached: an image is decoded,
  resized and encoded the first time a step uses it, never again (on the device where the cache fits in a quarter
  of its free memory, else in host memory); each step draws its own latent sample from the cached distribution,
  as the VAE's `latent_dist.sample` does;
- a step's noise, latent sample and timesteps come from a generator on the device, seeded by (seed, stream, step):
  the same step draws the same numbers however the run was interrupted, and nothing is drawn on the host;
- the prompts' conditioning is computed once per class when no text encoder trains (LoRA of the UNet), per step
  when one does (inversion: the token's gradient flows through the encoder);
- the loss stays on the device: the progress bar reads it every LOG_EVERY steps, checkpoints and the record read it
  whole; no other host sync in the step;
- the frozen weights in the dtype the user picks (`--dtype bf16`: measured faster than bf16 autocast over fp32 or bf16
  weights, where autocast runs every norm in fp32 and casts around it: 0.47x against 0.74x of the floor, H200);
- fused AdamW on CUDA; `gradient_checkpointing` recomputes the UNet's activations in the backward (big models).

On the CPU a resumed run ends bit for bit where an uninterrupted one does (tested). On CUDA the UNet's backward uses
kernels that add in a varying order (atomics), so two uninterrupted runs already differ in the last bits (1.3e-5 in
a tiny token after 6 steps, H200), and a resumed run differs from an uninterrupted one by as much (7.9e-6);
`deterministic` (--deterministic) turns on torch's deterministic kernels, and then both are bit for bit equal
(measured on the H200), at some speed (see benchmarks/README.md).

On the CPU the loop draws the same numbers in the same order as the loop before it (a CPU generator per step: the
latent sample, the noise, the timesteps), so its results match up to float rounding (the VAE encodes an image once,
in other batches than every step's); on a GPU the numbers come from the device's generator and differ from older
versions'.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from synthbridge.errors import UserError
from synthbridge.io import atomic_path, progress
from synthbridge.seeding import StepBatches, derive_seed

CHECKPOINT = "checkpoint.pt"
LOG_EVERY = 10  # steps between reads of the loss for the progress bar (each read waits for the device)
LOSS_CURVE_POINTS = 20  # points of the loss curve in a record (each the mean over its window of steps)
CACHE_SHARE = 0.25  # the latent cache lives on the device when it takes at most this share of its free memory


@dataclass
class Trainable:
    """What a method trains: `params` (fp32 leaves the optimizer steps), `state()` the tensors a checkpoint keeps
    and `load(state)` puts back, `project()` run after each optimizer step (inversion's norm cap), whether a text
    encoder trains (its conditioning is then recomputed every step), and the optimizer's settings."""

    params: list[torch.nn.Parameter]
    state: Callable[[], dict]
    load: Callable[[dict], None]
    lr: float
    weight_decay: float = 0.0
    schedule: str = "constant"
    warmup_steps: int = 0
    project: Callable[[], None] | None = None
    text_trained: bool = True


@dataclass
class Run:
    """Where and how long: the real images (an ImageSet) and each class's prompt ids per text encoder (one
    (classes, L) tensor each), the batch, the training resolution, `steps`, the seed and the stream name that
    seeds each step, the folder of the checkpoint, `record` (what a resume must match), the progress bar's label."""

    images: object
    input_ids: list[torch.Tensor]
    batch_size: int
    resolution: int
    steps: int
    seed: int
    stream: tuple
    out: Path
    record: dict
    checkpoint_every: int
    label: str
    show_progress: bool = True
    gradient_checkpointing: bool = False
    deterministic: bool = False  # torch's deterministic kernels: on CUDA a resumed run then equals an uninterrupted one


@dataclass
class Result:
    losses: list[float]
    resumed_from_step: int
    train_seconds: float


# --- the output folder ---------------------------------------------------------------------------------------

def prepare_folder(out: Path, ours: list[Path], *, resume: bool, overwrite: bool, what: str) -> None:
    """Refuse, clear or keep what a run of this kind (`ours`: the files and folders it leaves) holds in `out`, the
    same way for every command: a busy folder needs --resume (continue or reuse it) or --overwrite (start afresh);
    --resume with nothing there is refused. Nothing else in the folder is touched."""
    if resume and overwrite:
        raise UserError("--resume and --overwrite exclude each other: continue the run, or start it afresh")
    present = [path for path in ours if path.exists()]
    if overwrite:
        for path in present:
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    elif present and not resume:
        state = "an unfinished" if (out / CHECKPOINT).exists() else "a finished"
        raise UserError(f"{str(out)!r} holds {state} {what}; pass --resume to continue or reuse it, --overwrite to "
                        f"start afresh, or pick a new --out")
    elif resume and not present:
        raise UserError(f"nothing to resume in {str(out)!r}; drop --resume to start a new run")


# --- checkpoints ---------------------------------------------------------------------------------------------

def resume_record(config, keys: tuple[str, ...]) -> dict:
    """The fields of `config` a finished folder, a checkpoint and a rerun must agree on, as they read back from JSON."""
    return json.loads(json.dumps({key: getattr(config, key) for key in keys}))


def read_checkpoint(path: Path, record: dict) -> dict | None:
    """The checkpoint at `path` (None if there is none); one made with other `record` values is refused, naming them."""
    if not path.is_file():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        saved = json.loads(state["config"])
    except Exception as exc:  # noqa: BLE001  (a damaged or older file in any way)
        raise UserError(f"cannot read checkpoint {path} ({type(exc).__name__}); pass --overwrite to start afresh") from None
    mismatch(saved, record, path.parent)
    return state


def mismatch(saved: dict, record: dict, out: Path) -> None:
    """Refuse a folder whose run had other `record` values."""
    if differ := [key for key in record if saved.get(key) != record[key]]:
        details = ", ".join(f"{key} {saved.get(key)!r} -> {record[key]!r}" for key in differ[:4])
        raise UserError(f"{str(out)!r} was started with other parameters ({details}); rerun with the same "
                        f"parameters, or pass --overwrite to start afresh")


def save_checkpoint(path: Path, trainable: Trainable, optimizer, schedule, step: int, losses: list[float],
                    record: dict, seconds: float) -> None:
    """Everything a resumed run needs to continue exactly: the trained tensors, AdamW's moments, the schedule, the
    step, the losses so far (float64) and the record it must match."""
    state = {"trained": trainable.state(), "optimizer": optimizer.state_dict(), "scheduler": schedule.state_dict(),
             "step": step, "losses": torch.tensor(losses, dtype=torch.float64), "seconds": seconds,
             "config": json.dumps(record)}
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


# --- the step's inputs ---------------------------------------------------------------------------------------

def pixel_transform(resolution: int):
    """PIL image -> (3, resolution, resolution) tensor in [-1, 1], the VAE's input range (grey becomes RGB)."""
    from torchvision import transforms

    steps = transforms.Compose([
        transforms.Resize(resolution, interpolation=transforms.InterpolationMode.BICUBIC, antialias=True),
        transforms.CenterCrop(resolution), transforms.ToTensor(), transforms.Normalize([0.5], [0.5])])
    return lambda image: steps(image.convert("RGB"))


class LatentCache:
    """Each real image's VAE latent distribution (mean, std; fp32), encoded the first time a step asks for it."""

    def __init__(self, vae, images, resolution: int, device: torch.device):
        self.vae, self.images, self.device = vae, images, torch.device(device)
        self.to_pixels = pixel_transform(resolution)
        self.filled = [False] * len(images)
        self.mean = self.std = None

    def _store_on(self, shape: torch.Size) -> torch.device:
        need = 2 * len(self.images) * math.prod(shape) * 4
        if self.device.type == "cuda":
            free, _ = torch.cuda.mem_get_info(self.device)
            return self.device if need <= CACHE_SHARE * free else torch.device("cpu")
        return self.device

    @torch.no_grad()
    def _encode(self, indices: list[int]) -> None:
        pixels = torch.stack([self.to_pixels(self.images.load(i)) for i in indices])
        pixels = pixels.to(self.device, self.vae.dtype, non_blocking=True)
        dist = self.vae.encode(pixels).latent_dist
        mean, std = dist.mean.float(), dist.std.float()
        if self.mean is None:
            where = self._store_on(mean.shape[1:])
            shape = (len(self.images), *mean.shape[1:])
            pin = where.type == "cpu" and self.device.type == "cuda"
            self.mean = torch.empty(shape, device=where, pin_memory=pin)
            self.std = torch.empty(shape, device=where, pin_memory=pin)
        rows = torch.tensor(indices, device=self.mean.device)
        self.mean.index_copy_(0, rows, mean.to(self.mean.device))
        self.std.index_copy_(0, rows, std.to(self.std.device))
        for i in indices:
            self.filled[i] = True

    def sample(self, indices: list[int], generator: torch.Generator) -> torch.Tensor:
        """Latents (scaled as the UNet sees them) of the images `indices`: mean + std * noise from `generator`."""
        if missing := sorted({i for i in indices if not self.filled[i]}):
            self._encode(missing)
        rows = torch.tensor(indices, device=self.mean.device)
        mean = self.mean.index_select(0, rows).to(self.device, non_blocking=True)
        std = self.std.index_select(0, rows).to(self.device, non_blocking=True)
        noise = torch.randn(mean.shape, generator=generator, device=self.device)
        return (mean + std * noise) * self.vae.config.scaling_factor


def conditioning(pipe, input_ids: list[torch.Tensor], size: int) -> tuple[torch.Tensor, dict | None]:
    """The UNet's text conditioning of prompts given as token ids per text encoder (SD one, SDXL two)."""
    if len(input_ids) == 1:
        return pipe.text_encoder(input_ids[0])[0], None
    return sdxl_conditioning(pipe, input_ids, (size, size))


def sdxl_conditioning(pipe, input_ids: list[torch.Tensor], size) -> tuple[torch.Tensor, dict]:
    """The UNet conditioning the SDXL pipeline builds from a prompt: both encoders' penultimate hidden states,
    side by side, and (added to the time embedding) the second encoder's pooled projection and the six numbers
    original size, crop corner (0, 0) and target size, here all the training resolution."""
    states, pooled = [], None
    for encoder, ids in zip((pipe.text_encoder, pipe.text_encoder_2), input_ids):
        output = encoder(ids, output_hidden_states=True)
        states.append(output.hidden_states[-2])
        pooled = output[0]  # the projected pooled embedding (text_encoder_2 is a CLIPTextModelWithProjection)
    height, width = (int(v) for v in size)
    time_ids = torch.tensor([[height, width, 0, 0, height, width]], device=pooled.device).repeat(pooled.shape[0], 1)
    return torch.cat(states, dim=-1), {"text_embeds": pooled, "time_ids": time_ids}


def denoising_loss(pipe, noise_scheduler, latents: torch.Tensor, states: torch.Tensor, added: dict | None,
                   generator: torch.Generator) -> torch.Tensor:
    """The diffusion training loss: MSE between the UNet's prediction and its target at random timesteps (noise and
    timesteps from `generator`, on the latents' device)."""
    dtype = pipe.unet.dtype
    noise = torch.randn(latents.shape, generator=generator, device=latents.device)
    timesteps = torch.randint(0, noise_scheduler.config.num_train_timesteps, (latents.shape[0],), generator=generator,
                              device=latents.device)
    noisy = noise_scheduler.add_noise(latents, noise, timesteps)
    kwargs = {"added_cond_kwargs": {k: v.to(dtype) for k, v in added.items()}} if added else {}
    prediction = pipe.unet(noisy.to(dtype), timesteps, states.to(dtype), **kwargs).sample
    prediction_type = noise_scheduler.config.prediction_type
    if prediction_type == "epsilon":
        target = noise
    elif prediction_type == "v_prediction":
        target = noise_scheduler.get_velocity(latents, noise, timesteps)
    else:  # "sample"
        target = latents
    return F.mse_loss(prediction.float(), target.float())


# --- the loop ------------------------------------------------------------------------------------------------

def fit(pipe, trainable: Trainable, run: Run, checkpoint: dict | None) -> Result:
    """Train `trainable` on `run`'s images with the generator's denoising loss, from `checkpoint` (None: afresh)."""
    from diffusers import DDPMScheduler
    from diffusers.optimization import get_scheduler

    device = pipe.unet.device
    fused = {"fused": True} if device.type == "cuda" else {}
    optimizer = torch.optim.AdamW(trainable.params, lr=trainable.lr, weight_decay=trainable.weight_decay, **fused)
    schedule = get_scheduler(trainable.schedule, optimizer, num_warmup_steps=trainable.warmup_steps,
                             num_training_steps=run.steps)
    noise_scheduler = DDPMScheduler.from_config(pipe.scheduler.config)  # the training noise of this generator
    start, seconds_before = 0, 0.0
    losses = torch.zeros(run.steps, device=device)
    if checkpoint is not None:
        trainable.load(checkpoint["trained"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        schedule.load_state_dict(checkpoint["scheduler"])
        start, seconds_before = int(checkpoint["step"]), float(checkpoint["seconds"])
        losses[:start] = checkpoint["losses"].to(device, torch.float32)

    batches = StepBatches([len(run.images)], [run.batch_size], run.seed, "/".join(map(str, run.stream)), 0, run.steps)
    cache = LatentCache(pipe.vae, run.images, run.resolution, device)
    targets = torch.tensor(list(run.images.targets), device=device)
    ids = [class_ids.to(device) for class_ids in run.input_ids]
    fixed = None
    if not trainable.text_trained:  # one conditioning per class, computed once
        with torch.no_grad():
            fixed = conditioning(pipe, ids, run.resolution)
    settings = contextlib.ExitStack()
    if run.gradient_checkpointing:
        settings.enter_context(_gradient_checkpointing(pipe.unet))
    if run.deterministic:
        settings.enter_context(deterministic_kernels())
    read = lambda upto: losses[:upto].tolist()  # noqa: E731  (one wait for the device)
    bar = progress(total=run.steps, initial=start, desc=run.label, unit="step", enabled=run.show_progress,
                   dynamic_ncols=True)
    loop_began = time.perf_counter()
    try:
        with settings:
            for step in range(start, run.steps):
                indices = [index for _, index, _ in batches.keys(step)]
                generator = torch.Generator(device=device).manual_seed(derive_seed(run.seed, *run.stream, "step", step))
                latents = cache.sample(indices, generator)
                rows = targets[torch.tensor(indices, device=device)]
                if fixed is not None:
                    states, added = fixed[0][rows], ({k: v[rows] for k, v in fixed[1].items()} if fixed[1] else None)
                else:
                    states, added = conditioning(pipe, [class_ids[rows] for class_ids in ids], run.resolution)
                loss = denoising_loss(pipe, noise_scheduler, latents, states, added, generator)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if trainable.project is not None:
                    with torch.no_grad():
                        trainable.project()
                schedule.step()
                losses[step] = loss.detach()
                done = step + 1
                bar.update(1)
                if done % LOG_EVERY == 0 or done == run.steps:
                    window = losses[max(0, done - 50):done].mean()
                    bar.set_postfix(loss=f"{float(window):.4f}")
                if done % run.checkpoint_every == 0 and done < run.steps:
                    save_checkpoint(run.out / CHECKPOINT, trainable, optimizer, schedule, done, read(done), run.record,
                                    seconds_before + time.perf_counter() - loop_began)
    finally:
        bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return Result(losses=read(run.steps), resumed_from_step=start,
                  train_seconds=seconds_before + time.perf_counter() - loop_began)


@contextlib.contextmanager
def deterministic_kernels():
    """torch's deterministic algorithms for the block (cuBLAS's fixed workspace set where the environment has none),
    then what was set before."""
    before = torch.are_deterministic_algorithms_enabled()
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(before)


@contextlib.contextmanager
def _gradient_checkpointing(unet):
    unet.enable_gradient_checkpointing()
    try:
        yield
    finally:
        unet.disable_gradient_checkpointing()


# --- the record ----------------------------------------------------------------------------------------------

def loss_curve(losses: list[float], points: int = LOSS_CURVE_POINTS) -> list[dict]:
    """A few points of the (noisy) loss: each the mean of the steps since the previous point."""
    if not losses:
        return []
    width = max(1, math.ceil(len(losses) / points))
    return [{"step": min(end, len(losses)), "loss": window_mean(losses, min(end, len(losses)), width)}
            for end in range(width, len(losses) + width, width)]


def window_mean(losses: list[float], end: int, width: int | None = None) -> float:
    """Mean loss over the `width` steps ending at `end` (a single step's loss is too noisy to report)."""
    if not losses:
        return float("nan")
    width = width or max(1, math.ceil(len(losses) / LOSS_CURVE_POINTS))
    window = losses[max(0, end - width):end]
    return float(sum(window) / len(window))
