"""Benchmark: steps/s of the diffusion fine-tuning loop (`invert`, `lora`) against its floor, in one process.

Run (from the repository root; about a minute on 2 CPU cores with the embedded generator):

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/finetune.py
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/finetune.py --methods invert --steps 200 --threads 1
    HF_HUB_OFFLINE=1 python benchmarks/finetune.py --generator SD_FOLDER --dataset imagefolder:PATH --device cuda \\
        --dtype bf16 --batch-size 8 --resolution 512

In: a generator folder (default: the embedded `mini`), a dataset, the batch and resolution. Out: for each method,
the loop's steps/s (`invert` / `lora` themselves, run twice: a short warm-up run, then the timed run, whose
`train_seconds` is the loop from its first step to its last, the first epoch's VAE encodes of the real images
included) and the floor's: the same UNet's forward and backward at the same batch and latent size on random
latents and random text states that require a gradient (what the loop cannot do without), AdamW on nothing else,
in the same process. The ratio is loop / floor (goal on a GPU: >= 0.7).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch


def floor_steps_per_second(pipe, batch: int, resolution: int, steps: int, warmup: int = 3) -> float:
    """Forward + backward of `pipe`'s UNet (frozen weights) at `batch` on random latents and text states that
    require a gradient, timed after `warmup` steps."""
    unet = pipe.unet
    device, dtype = unet.device, unet.dtype
    unet.requires_grad_(False)
    scale = int(pipe.vae_scale_factor)
    generator = torch.Generator(device=device).manual_seed(0)
    latents = torch.randn(batch, unet.config.in_channels, resolution // scale, resolution // scale, device=device,
                          generator=generator, dtype=dtype)
    width = unet.config.cross_attention_dim
    length = pipe.tokenizer.model_max_length
    states = torch.randn(batch, length, width, device=device, generator=generator, requires_grad=True)
    timesteps = torch.randint(0, 1000, (batch,), device=device, generator=generator)
    target = torch.randn_like(latents, dtype=torch.float32)

    def step() -> None:
        prediction = unet(latents, timesteps, states.to(dtype)).sample
        torch.nn.functional.mse_loss(prediction.float(), target).backward()
        states.grad = None

    for _ in range(warmup):
        step()
    _sync(device)
    began = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    return steps / (time.perf_counter() - began)


def loop_steps_per_second(method: str, generator: str, dataset: str, *, steps: int, batch: int, resolution: int | None,
                          dtype: str, device: str | None, work: Path, warmup: int = 5) -> dict:
    """`invert` or `lora` run for `warmup` steps (kernels, allocator), then for `steps` in a fresh folder: steps/s of
    the timed run's loop (`train_seconds`)."""
    common = dict(dataset=dataset, generator=generator, batch_size=batch, resolution=resolution, dtype=dtype,
                  device=device, show_progress=False, profile="full" if resolution and resolution > 64 else None)
    if method == "invert":
        from synthbridge.inversion import InvertConfig, invert

        run = lambda out, n: invert(InvertConfig(out=str(out), steps=n, **common))  # noqa: E731
        seconds = lambda summary: summary["train_seconds"]  # noqa: E731
    else:
        from synthbridge.adaptation import LoraTrainConfig, train_lora

        run = lambda out, n: train_lora(LoraTrainConfig(out=str(out), steps=n, **common))  # noqa: E731
        seconds = lambda summary: summary["runs"]["all"]["train_seconds"]  # noqa: E731
    run(work / f"{method}-warmup", warmup)
    summary = run(work / method, steps)
    return {"steps": steps, "train_seconds": round(seconds(summary), 3), "steps_per_second": steps / seconds(summary)}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(methods: list[str], generator: str, dataset: str, *, steps: int, batch: int, resolution: int | None,
            dtype: str, device: str | None) -> dict:
    from synthbridge.diffusion.pipeline import describe_generator, device_of, load_generator, locate_generator

    torch_device = device_of(device)
    folder, generator_id = locate_generator(generator)
    pipe = load_generator(describe_generator(generator_id, folder), dtype, torch_device, quiet=True)
    size = resolution or int(pipe.unet.config.sample_size) * int(pipe.vae_scale_factor)
    floor = floor_steps_per_second(pipe, batch, size, steps=max(10, steps // 4))
    del pipe
    result = {"generator": generator_id, "dataset": dataset, "device": str(torch_device), "dtype": dtype,
              "threads": torch.get_num_threads(), "batch_size": batch, "resolution": size,
              "floor_steps_per_second": round(floor, 3), "methods": {}}
    with tempfile.TemporaryDirectory() as work:
        for method in methods:
            loop = loop_steps_per_second(method, generator, dataset, steps=steps, batch=batch, resolution=resolution,
                                         dtype=dtype, device=device, work=Path(work))
            result["methods"][method] = {**loop, "steps_per_second": round(loop["steps_per_second"], 3),
                                         "vs_floor": round(loop["steps_per_second"] / floor, 3)}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", default="mini", help="'mini', a diffusers folder or a hub id in the cache")
    parser.add_argument("--dataset", default="mnist5k")
    parser.add_argument("--methods", nargs="+", default=["invert", "lora"], choices=["invert", "lora"])
    parser.add_argument("--steps", type=int, default=100, help="timed steps per method")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--resolution", type=int, help="training pixels (default: the generator's size)")
    parser.add_argument("--device", help="default: accelerate's device")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "fp16", "bf16"])
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", action="store_true", help="also print the result as one JSON line")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    result = measure(args.methods, args.generator, args.dataset, steps=args.steps, batch=args.batch_size,
                     resolution=args.resolution, dtype=args.dtype, device=args.device)
    print(f"generator: {result['generator']} on {result['dataset']} ({result['resolution']} px, batch "
          f"{result['batch_size']}, {result['device']} {result['dtype']}, {result['threads']} threads)")
    print(f"floor (UNet forward + backward):  {result['floor_steps_per_second']:8.2f} steps/s")
    for method, figures in result["methods"].items():
        print(f"{method:6s} loop ({figures['steps']} steps):     {figures['steps_per_second']:8.2f} steps/s: "
              f"{figures['vs_floor']:.2f}x the floor")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
