"""`synthbridge generate`: the command line of `generate(GenerateConfig)`.

    synthbridge generate --dataset mnist5k --generator mini --per-class 100 --out S/
    synthbridge generate ... --shard 0/4          # one of four independent jobs into the same S/
    synthbridge generate ... --init-images real --strength 0.5 --shots 10   # image-to-image from the real images
    synthbridge generate ... --init-images real --strength 0.25,0.5,0.75,1  # a strength per image (DA-Fusion)
    synthbridge generate ... --generator PIX2PIX_DIR --init-images real     # edited hybrids (DiffuseMix)
    synthbridge generate ... --generator UNCLIP_DIR --init-images real      # varied embeddings (GIF)
    accelerate launch -m synthbridge generate ... # the same split over the launched processes
"""

from __future__ import annotations

import argparse

from synthbridge.cli.args import (
    add_data_args,
    config_from_args,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)


def _shard(text: str) -> tuple[int, int]:
    from synthbridge.errors import UserError
    from synthbridge.generation.config import parse_shard

    try:
        return parse_shard(text)
    except UserError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--shard ")) from None


def _strengths(text: str) -> float | tuple[float, ...]:
    """'0.5' -> 0.5; '0.25,0.5,0.75,1' -> (0.25, 0.5, 0.75, 1.0) (checked in GenerateConfig.check)."""
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number or numbers separated by commas, got {text!r}") from None
    return values[0] if len(values) == 1 else values


def generate(parser: argparse.ArgumentParser):
    """make synthetic images with a text-to-image model (resumable, shardable)"""
    from synthbridge.diffusion.pipeline import DTYPES, NATIVE_SCHEDULER, SCHEDULERS, TIMESTEP_SPACINGS
    from synthbridge.generation.config import IMAGE_FORMATS

    parser.add_argument("--dataset", default="mnist5k",
                        help="registry name (see `synthbridge datasets`) or imagefolder:PATH")
    parser.add_argument("--generator", default="mini",
                        help="'mini' (embedded), a local diffusers folder of any text-to-image pipeline (SD 1.x/2.x, "
                             "SDXL, SD 3, PixArt, FLUX, ...), or a hub id in the local cache "
                             "(e.g. stable-diffusion-v1-5/stable-diffusion-v1-5)")
    parser.add_argument("--per-class", type=positive_int, required=True,
                        help="images per class; rerunning with a larger value extends the folder")
    parser.add_argument("--out", required=True, help="output folder (class folders, manifest.jsonl, generation.json)")
    parser.add_argument("--classes", nargs="+", metavar="NAME", help="only these classes (names as the dataset has them)")
    prompts = parser.add_argument_group("prompts")
    prompts.add_argument("--template", action="append", default=[], dest="templates", metavar="TEMPLATE",
                         help="a registered name (study, photo, superclass, style) or a literal with {class}; "
                              "repeat to cycle several over the images")
    prompts.add_argument("--templates-file", help="a text file with one template per line")
    prompts.add_argument("--negative-prompt")
    prompts.add_argument("--style", metavar="STYLE_DIR",
                         help="learned dataset style (a folder with learned_embeds.safetensors and invert.json, or "
                              "the learned_embeds.safetensors alone as diffusers' textual_inversion.py saves it), or "
                              "an `invert --per-class` folder: each class's token takes the place of its phrase")
    prompts.add_argument("--lora", metavar="LORA_DIR|FILE",
                         help="a `synthbridge lora` adapter folder to draw with: dataset-wise, or per class "
                              "(`lora --per-class`: each class drawn with its own adapter); or a LoRA .safetensors "
                              "file as diffusers' or kohya's training scripts save it")
    prompts.add_argument("--lora-scale", type=non_negative_float, default=1.0, help="the adapter's weight (default 1)")
    start = parser.add_argument_group("image-to-image (Real Guidance, DA-Fusion)")
    start.add_argument("--init-images", metavar="real|other|pairs",
                       help="real: image i of a class starts from its (i mod K)-th real training image, noised to "
                            "--strength and denoised with the prompt; other: from a real image of another class, "
                            "translated toward the image's class and labelled softly (Diff-Mix); pairs: from the "
                            "slerp of two of its class's real images inverted to noise (Diff-II, --scheduler ddim)")
    start.add_argument("--label-gamma", type=positive_float, metavar="G",
                       help="--init-images other: the label gives the image's class s^G and the source's class "
                            "1 - s^G for strength s (default 0.5, Diff-Mix's)")
    start.add_argument("--strength", type=_strengths, metavar="S[,S...]",
                       help="how far the real image is noised, in (0, 1] (default 0.5; 1 is pure noise); several "
                            "(DA-Fusion: 0.25,0.5,0.75,1): each image draws one by its seed, recorded in its line")
    start.add_argument("--shots", type=positive_int, metavar="K",
                       help="start from the K-shot subset `synthbridge train --shots K --seed --shots-seed` trains on "
                            "(default: the whole train split)")
    start.add_argument("--shots-seed", type=non_negative_int, metavar="SEED",
                       help="the seed that picks the K shots (default 0, as `train --seed 0`)")
    editing = parser.add_argument_group("an instruction-editing generator (DiffuseMix: an InstructPix2Pix folder)")
    editing.add_argument("--edits", nargs="+", metavar="TEXT",
                         help="the instructions real images are edited with, one drawn per image (default: "
                              "DiffuseMix's: autumn, snowy, sunset, watercolor art, ...)")
    editing.add_argument("--fractal-blend", type=non_negative_float, metavar="W",
                         help="the weight of the fractal image blended into each half-real, half-edited hybrid "
                              "(default 0.2, DiffuseMix's; 0: no fractal)")
    variation = parser.add_argument_group("an image-variation generator (GIF: a StableUnCLIPImg2Img folder)")
    variation.add_argument("--variation-noise", type=non_negative_float, metavar="S",
                           help="the scale of the noise that perturbs each real image's CLIP image embedding (default "
                                "0.2); a perturbation its class's real images do not recognise is drawn again")
    sampling = parser.add_argument_group("sampling (defaults come from the generator)")
    sampling.add_argument("--guidance-scale", type=non_negative_float,
                          help="classifier-free guidance (default: SD 7.5; mini: its recorded 4.0)")
    sampling.add_argument("--steps", type=positive_int, help="denoising steps (num_inference_steps)")
    sampling.add_argument("--scheduler", choices=(*SCHEDULERS, NATIVE_SCHEDULER),
                          help=f"all are deterministic given the seed; {NATIVE_SCHEDULER}: the generator folder's own "
                               f"(default: ddim for Stable Diffusion, else the folder's own)")
    sampling.add_argument("--timestep-spacing", choices=TIMESTEP_SPACINGS,
                          help="the scheduler's timestep spacing (default: its config's); trailing for few-step "
                               "sampling (--scheduler lcm --steps 4 with an LCM-LoRA as --lora)")
    sampling.add_argument("--height", type=positive_int, help="pixels, a multiple of 8 (default: the generator's size)")
    sampling.add_argument("--width", type=positive_int, help="pixels, a multiple of 8 (default: the generator's size)")
    sampling.add_argument("--dtype", choices=DTYPES, default="fp32", help="fp16/bf16 need a GPU")
    sampling.add_argument("--seed", type=non_negative_int, default=0, help="global seed; each image derives its own")
    quality = parser.add_argument_group("quality control")
    quality.add_argument("--filter", action="store_true",
                         help="keep only images the --filter-model classifies as their class")
    quality.add_argument("--filter-model",
                         help="a local CLIP folder, a `synthbridge train` run folder, or a classifier .safetensors")
    quality.add_argument("--filter-arch", help="timm model name of a bare --filter-model .safetensors")
    quality.add_argument("--max-retries", type=non_negative_int, default=3,
                         help="new seeds tried for a blank, NSFW-blacked or filtered-out image")
    quality.add_argument("--blank-threshold", type=non_negative_float, default=2.0,
                         help="pixel standard deviation (0..255) below which an image counts as blank")
    storage = parser.add_argument_group("storage (part of the set: a rerun with other values needs --overwrite)")
    storage.add_argument("--image-format", choices=tuple(IMAGE_FORMATS), default="png",
                         help="png (lossless, default), webp or jpg (lossy, a fraction of the disk)")
    storage.add_argument("--quality", type=positive_int, default=95, help="webp/jpg quality, 1-100 (default 95)")
    storage.add_argument("--save-size", type=positive_int, metavar="N",
                         help="save images with their shorter side resized to N pixels (PIL LANCZOS; "
                              "default: the generated size)")
    env = parser.add_argument_group("environment (changes no image beyond float rounding)")
    env.add_argument("--batch-size", type=positive_int,
                     help="images per pipeline call (default: 8 on the CPU; on a GPU up to 32, as its memory allows)")
    env.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                     help="torch.compile the UNet (inductor): faster steps on a GPU after a one-off compilation "
                          "(default: on CUDA when this process makes at least 2,000 images, where it pays)")
    env.add_argument("--device", help="cuda, cuda:1, mps or cpu (default: accelerate's device for this process)")
    env.add_argument("--shard", type=_shard, metavar="I/N", help="make every N-th image starting at I (0 <= I < N)")
    env.add_argument("--overwrite", action="store_true", help="replace a set made with other parameters")
    add_data_args(env)
    env.add_argument("--no-progress", action="store_true", help="no progress bar")

    def run(args: argparse.Namespace) -> int:
        from synthbridge.errors import UserError
        from synthbridge.generation import GenerateConfig, generate

        if args.init_images is None and (given := [flag for flag, value in (
                ("--strength", args.strength), ("--shots", args.shots), ("--shots-seed", args.shots_seed),
                ("--label-gamma", args.label_gamma))
                if value is not None]):
            raise UserError(f"{', '.join(given)} without --init-images: they set up image-to-image; add "
                            f"--init-images real, or drop them")
        config = config_from_args(GenerateConfig, args, show_progress=not args.no_progress)
        from accelerate import PartialState

        summary = generate(config)

        if not PartialState().is_main_process:  # one report per launch, from the process that merged
            return 0
        run = summary["run"]
        counts = summary.get("counts", {})
        rate = f"{run['images_per_second']:.2f} img/s" if run.get("images_per_second") else "nothing to make"
        print(f"{counts.get('images', 0)} images ({run['generated']} new, {counts.get('given_up', 0)} given up) "
              f"in {summary['out']} [{summary.get('status', 'running')}], {rate}")
        return 0  # classes where most images failed were already reported as warnings by generate()

    return run
