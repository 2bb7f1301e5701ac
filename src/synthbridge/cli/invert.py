"""`synthbridge invert`: the command line of `invert(InvertConfig)`.

    synthbridge invert --dataset mnist5k --generator mini --out styles/mnist5k
    synthbridge invert ... --resume        # continue an interrupted run from its last checkpoint
    synthbridge invert ... --per-class --shots 2   # one token per class (<class-K>), DA-Fusion's form
    synthbridge generate ... --style styles/mnist5k
"""

from __future__ import annotations

import argparse

from synthbridge.cli.args import (
    add_adaptation_env_args,
    config_from_args,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
)


def invert(parser: argparse.ArgumentParser):
    """learn one style token for a whole real dataset (dataset style inversion), or one token per class"""
    from synthbridge.diffusion.pipeline import DTYPES
    from synthbridge.inversion.config import LR_SCHEDULES, PROFILES

    embedded, full = PROFILES["embedded"], PROFILES["full"]
    parser.add_argument("--dataset", default="mnist5k", help="registry name (see `synthbridge datasets`) or imagefolder:PATH")
    parser.add_argument("--generator", default="mini",
                        help="'mini' (embedded), a local Stable Diffusion 1.x/2.x or SDXL folder (SDXL: the token is "
                             "learned in both text encoders), or a hub id in the local cache")
    parser.add_argument("--out", required=True, help="style folder (learned_embeds.safetensors, invert.json)")
    parser.add_argument("--token", help="the new token (default: <DATASET-style>, e.g. <mnist5k-style>)")
    parser.add_argument("--initializer-word",
                        help="a single-token word the new embedding starts from (default: 'style', or the first of "
                             "photo, image, picture, ... that the generator's tokenizer knows as one token)")
    parser.add_argument("--template",
                        help=f"prompt template name or literal with {{class}} and {{style}} (default: "
                             f"{embedded['template']!r} / {full['template']!r}, i.e. 'a {{class}} photo in the "
                             f"style of {{style}}'); generate with the same template")
    parser.add_argument("--shots", type=positive_int, help="learn from K real images per class (default: all)")
    parser.add_argument("--per-class", action="store_true",
                        help="learn one token per class, <class-K> for the K-th class, in place of the class phrase "
                             "of the dataset's plain prompt, each starting from its class name (DA-Fusion's form); "
                             "writes STYLE_DIR/classes/CLASS.safetensors; no --token or --initializer-word")
    opt = parser.add_argument_group("optimisation (defaults depend on the profile: embedded / full)")
    opt.add_argument("--profile", choices=tuple(PROFILES),
                     help="defaults profile (default: embedded for a generator of at most 64 px, else full)")
    opt.add_argument("--steps", type=positive_int, help=f"optimizer steps ({embedded['steps']} / {full['steps']})")
    opt.add_argument("--lr", type=positive_float, help=f"AdamW learning rate ({embedded['lr']:g} / {full['lr']:g})")
    opt.add_argument("--lr-schedule", choices=LR_SCHEDULES, default="constant")
    opt.add_argument("--lr-warmup-steps", type=non_negative_int, default=0)
    opt.add_argument("--batch-size", type=positive_int, help=f"images per step ({embedded['batch_size']} / {full['batch_size']})")
    opt.add_argument("--resolution", type=positive_int,
                     help="training (and --grid) pixels (default: the generator's size, mini 32, SD 512)")
    opt.add_argument("--dtype", choices=DTYPES, default="fp32", help="frozen weights' dtype; fp16/bf16 need a GPU")
    opt.add_argument("--max-norm", type=non_negative_float,
                     help="cap on the token vector's L2 norm after every step (default: the largest norm of the "
                          "vocabulary's embeddings; 0: no cap)")
    opt.add_argument("--seed", type=non_negative_int, default=0)
    add_adaptation_env_args(parser, "after training, write STYLE_DIR/grid.png: real | plain | style (at --resolution, "
                                    "with the generator's default steps, at most 25)")

    def run(args: argparse.Namespace) -> int:
        from synthbridge.inversion import InvertConfig
        from synthbridge.inversion import invert as invert_style

        config = config_from_args(InvertConfig, args, show_progress=not args.no_progress)
        summary = invert_style(config, resume=args.resume, overwrite=args.overwrite)
        curve = summary["loss_curve"]
        first = f"{curve[0]['loss']:.4f} -> " if curve else ""
        learned = (f"{len(summary['tokens'])} class tokens ({next(iter(summary['tokens'].values()))}, ...)"
                   if summary.get("per_class") else summary["token"])
        print(f"{learned} learned on {summary['num_images']} images in {summary['steps']} steps "
              f"({summary['seconds']:.0f}s), loss {first}{summary['final_loss']:.4f} -> {args.out}")
        if args.grid:
            print(f"grid: {args.out}/grid.png")
        return 0

    return run
