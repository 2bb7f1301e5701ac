"""Benchmark: images per second of batched generation against one pipeline call per image.

Run (from the repository root; a few seconds on 2 CPU cores):

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/generate.py
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/generate.py --generator mini --batch-size 16 --images 64 --steps 20
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/generate.py --generator PATH_OR_HUB_ID --device cuda --dtype fp16
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/generate.py --generator mini --compile   # eager vs compiled UNet

In: a generator (default: the embedded `mini` generator when it has been built, else a tiny random SD
pipeline built in code: 32x32 images, ~0.56 M parameter UNet). Both ways make the same images (same
prompts, same seeds) through `synthbridge.diffusion.sampling.render`, the call `generate` uses, in the
same process on the same generator. Out: both rates and their ratio, printed (and as JSON with --json).
With --compile: batched generation with the UNet as loaded against the UNet compiled as `generate --compile` does
(`models.compile_denoiser`), both warmed up first; the compiled warm-up's extra seconds are the compilation.
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def build_pipeline(generator: str | None, dtype: str, device: torch.device):
    """(pipeline, description): the named generator, or `mini` if built, or the tiny random one."""
    from synthbridge.diffusion.pipeline import describe_generator, load_generator, locate_generator
    from synthbridge.embedded.assets import GENERATOR_DIR
    from synthbridge.embedded.tiny import tiny_pipeline

    if generator is None and not (GENERATOR_DIR / "model_index.json").is_file():
        pipe = tiny_pipeline("bench").to(device)
        if dtype != "fp32":
            pipe = pipe.to(dtype={"fp16": torch.float16, "bf16": torch.bfloat16}[dtype])
        pipe.set_progress_bar_config(disable=True)
        return pipe, "tiny random SD (built in code, size 'bench')"
    folder, generator_id = locate_generator(generator or "mini")
    return load_generator(describe_generator(generator_id, folder), dtype, device, quiet=True), generator_id


def images_per_second(pipe, prompts: list[str], seeds: list[int], batch_size: int, **sampling) -> float:
    from synthbridge.diffusion.sampling import render

    began = time.perf_counter()
    for start in range(0, len(prompts), batch_size):
        render(pipe, prompts[start:start + batch_size], seeds[start:start + batch_size], batch_size=batch_size,
               **sampling)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return len(prompts) / (time.perf_counter() - began)


def compile_comparison(pipe, name: str, args: argparse.Namespace, prompts: list[str], seeds: list[int],
                       sampling: dict) -> dict:
    """Batched images/s with the eager UNet, then with it compiled (each after one warm-up batch, timed)."""
    from synthbridge.models import compile_denoiser

    def warm_and_time() -> tuple[float, float]:
        began = time.perf_counter()
        images_per_second(pipe, prompts[:args.batch_size], seeds[:args.batch_size], args.batch_size, **sampling)
        return time.perf_counter() - began, images_per_second(pipe, prompts, seeds, args.batch_size, **sampling)

    eager_warmup, eager = warm_and_time()
    compile_denoiser(pipe, torch.device(args.device))
    compiled_warmup, compiled = warm_and_time()
    result = {"generator": name, "device": args.device, "dtype": args.dtype, "threads": torch.get_num_threads(),
              "steps": args.steps, "images": args.images, "batch_size": args.batch_size,
              "eager_images_per_second": round(eager, 3), "compiled_images_per_second": round(compiled, 3),
              "compiled_vs_eager": round(compiled / eager, 3), "compile_seconds": round(compiled_warmup - eager_warmup, 1)}
    saved = args.batch_size / eager - args.batch_size / compiled  # seconds saved per batch
    result["break_even_images"] = round(result["compile_seconds"] / saved * args.batch_size) if saved > 0 else None
    print(f"generator: {name} ({args.steps} steps, batch {args.batch_size}, {args.device} {args.dtype}, "
          f"{result['threads']} threads)")
    print(f"eager UNet:    {eager:8.2f} images/s")
    print(f"compiled UNet: {compiled:8.2f} images/s: {result['compiled_vs_eager']:.2f}x; compiling took "
          f"{result['compile_seconds']:.0f} s, " + (f"pays after {result['break_even_images']} images"
                                                     if result["break_even_images"] is not None else "never pays"))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generator", help="'mini', a diffusers folder or a hub id (default: mini if built, else tiny)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--images", type=int, default=32, help="images made each way (a multiple of --batch-size)")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--guidance-scale", type=float, default=3.0)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", default="fp32", choices=["fp32", "fp16", "bf16"])
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--json", action="store_true", help="also print the result as one JSON line")
    parser.add_argument("--compile", action="store_true", help="compare eager and a compiled UNet (generate --compile)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    pipe, name = build_pipeline(args.generator, args.dtype, torch.device(args.device))
    size = int(pipe.unet.config.sample_size) * int(pipe.vae_scale_factor)
    sampling = dict(negative_prompt=None, steps=args.steps, guidance_scale=args.guidance_scale, height=size, width=size)
    prompts = [f"a photo of the digit {i % 10}" for i in range(args.images)]
    seeds = list(range(1000, 1000 + args.images))

    if args.compile:
        result = compile_comparison(pipe, name, args, prompts, seeds, sampling)
        if args.json:
            print(json.dumps(result))
        return

    # warm up both shapes (allocator, kernel selection) before timing
    images_per_second(pipe, prompts[:args.batch_size], seeds[:args.batch_size], args.batch_size, **sampling)
    images_per_second(pipe, prompts[:1], seeds[:1], 1, **sampling)
    batched = images_per_second(pipe, prompts, seeds, args.batch_size, **sampling)
    single = images_per_second(pipe, prompts, seeds, 1, **sampling)

    result = {"generator": name, "device": args.device, "dtype": args.dtype, "threads": torch.get_num_threads(),
              "image_size": size, "steps": args.steps, "images": args.images, "batch_size": args.batch_size,
              "batched_images_per_second": round(batched, 3), "single_images_per_second": round(single, 3),
              "ratio": round(batched / single, 3)}
    print(f"generator: {name} ({size}x{size}, {args.steps} steps, {args.device} {args.dtype}, "
          f"{result['threads']} threads)")
    print(f"batched (batch {args.batch_size}): {batched:8.2f} images/s")
    print(f"one call per image:     {single:8.2f} images/s")
    print(f"ratio batched/single:   {batched / single:8.2f}x")
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
