"""`synthbridge lora`: the command line of `train_lora(LoraTrainConfig)`.

    synthbridge lora --dataset mnist5k --shots 2 --generator mini --out lora/mnist5k
    synthbridge lora ... --per-class           # one adapter per class: lora/mnist5k/<class>/
    synthbridge lora ... --resume              # continue an interrupted run (class by class)
"""

from __future__ import annotations

import argparse

from synthbridge.cli.args import add_adaptation_env_args, config_from_args, non_negative_int, positive_float, positive_int


def lora(parser: argparse.ArgumentParser):
    """fit LoRA adapters of the generator to the real images (dataset-wise, or one per class)"""
    from synthbridge.adaptation.config import PROFILES, UNET_TARGETS
    from synthbridge.diffusion.pipeline import DTYPES

    embedded, full = PROFILES["embedded"], PROFILES["full"]
    parser.add_argument("--dataset", default="mnist5k", help="registry name (see `synthbridge datasets`) or imagefolder:PATH")
    parser.add_argument("--generator", default="mini",
                        help="'mini' (embedded), a local diffusers folder, or a hub id in the local cache")
    parser.add_argument("--out", required=True, help="adapter folder (pytorch_lora_weights.safetensors, lora.json)")
    parser.add_argument("--shots", type=positive_int, help="learn from K real images per class (default: all)")
    parser.add_argument("--per-class", action="store_true", help="one adapter per class, in OUT/<class>/")
    parser.add_argument("--classes", nargs="+", default=(), help="with --per-class: only these classes")
    parser.add_argument("--template", default="photo", help="caption of each image: template name or literal with {class}")
    ada = parser.add_argument_group("the adapter (defaults depend on the profile: embedded / full)")
    ada.add_argument("--rank", type=positive_int, help=f"LoRA rank ({embedded['rank']} / {full['rank']})")
    ada.add_argument("--alpha", type=positive_float, help="LoRA alpha; the scale is alpha / rank (default: the rank)")
    ada.add_argument("--targets", nargs="+", default=UNET_TARGETS, help="UNet modules to adapt")
    ada.add_argument("--text-encoder", action="store_true", help="also adapt the text encoder's attention")
    opt = parser.add_argument_group("optimisation")
    opt.add_argument("--profile", choices=tuple(PROFILES))
    opt.add_argument("--steps", type=positive_int, help=f"optimizer steps per adapter ({embedded['steps']} / {full['steps']})")
    opt.add_argument("--lr", type=positive_float, help=f"AdamW learning rate ({embedded['lr']:g} / {full['lr']:g})")
    opt.add_argument("--batch-size", type=positive_int, help=f"images per step ({embedded['batch_size']} / {full['batch_size']})")
    opt.add_argument("--resolution", type=positive_int, help="training pixels (default: the generator's size)")
    opt.add_argument("--dtype", choices=DTYPES, default="fp32", help="frozen weights' dtype; fp16/bf16 need a GPU")
    opt.add_argument("--seed", type=non_negative_int, default=0)
    add_adaptation_env_args(parser, "after training, write OUT/grid.png: real | plain | adapted")

    def run(args: argparse.Namespace) -> int:
        from synthbridge.adaptation import LoraTrainConfig, train_lora

        config = config_from_args(LoraTrainConfig, args, show_progress=not args.no_progress,
                                  classes=tuple(args.classes), targets=tuple(args.targets))
        summary = train_lora(config, resume=args.resume, overwrite=args.overwrite)
        for key, run_summary in summary["runs"].items():
            print(f"{key}: {run_summary['num_images']} images, {config.steps or ''} steps, loss "
                  f"{run_summary['final_loss']:.4f}, {run_summary['seconds']:.0f}s -> {run_summary['folder']}")
        if args.grid:
            print(f"grid: {args.out}/grid.png")
        return 0

    return run
