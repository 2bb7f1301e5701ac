"""`synthbridge gap`: the command line of `gap.measure_gap(GapConfig)`."""

from __future__ import annotations

import argparse

from synthbridge.cli.args import add_data_args, config_from_args, non_negative_int, positive_int


def gap(parser: argparse.ArgumentParser):
    """measure how far a synthetic image set is from the real training set (FD, KID, classifier)"""
    parser.add_argument("--dataset", default="mnist5k", help="registry name (see `synthbridge datasets`) or imagefolder:PATH")
    parser.add_argument("--synthetic", required=True, help="synthetic folder (from `render` or `generate`)")
    parser.add_argument("--model", help="feature backbone: a timm name, mini_resnet or mini_vit (default: mini_resnet "
                                         "for images of at most 64 px, else resnet50)")
    parser.add_argument("--checkpoint", help="weights for --model (default: its pretrained weights)")
    parser.add_argument("--no-pretrained", action="store_true",
                        help="random (seeded) weights for --model: nothing downloaded")
    parser.add_argument("--input-size", type=positive_int, metavar="N",
                        help="input side in pixels (default: the model's; a ViT's position embeddings are resized)")
    parser.add_argument("--shots", type=positive_int, help="real side: K training images per class (default: all)")
    parser.add_argument("--max-images", type=positive_int, help="at most N images per side (a seeded subset)")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--out", help="write the result as JSON to this file")
    parser.add_argument("--grid", metavar="FILE.png", help="write real | synthetic images, one row per class")
    parser.add_argument("--kid-subsets", type=positive_int, default=100)
    parser.add_argument("--kid-subset-size", type=positive_int, default=1000)
    parser.add_argument("--cv-folds", type=positive_int, default=5)
    env = parser.add_argument_group("environment")
    env.add_argument("--batch-size", type=positive_int, default=128)
    env.add_argument("--device", help="cuda, cuda:1, mps or cpu (default: accelerate's device)")
    add_data_args(env)

    def run(args: argparse.Namespace) -> int:
        from synthbridge.gap import GapConfig, format_gap, measure_gap

        config = config_from_args(GapConfig, args, pretrained=not args.no_pretrained)
        result = measure_gap(config)
        print(format_gap(result))
        for key, label in (("out", "result"), ("grid", "grid")):
            if getattr(args, key):
                print(f"{label}: {getattr(args, key)}")
        return 0

    return run
