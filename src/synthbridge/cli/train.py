"""`synthbridge train`: the command line of `training.train(TrainConfig)`."""

from __future__ import annotations

import argparse

from synthbridge.cli.args import (
    add_data_args,
    config_from_args,
    fraction,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    probability,
)


def _stage_args(parser: argparse.ArgumentParser, prefix: str, label: str) -> None:
    group = parser.add_argument_group(f"{label} stage (defaults depend on the profile: embedded or full)")
    group.add_argument(f"--{prefix}-steps", type=positive_int, help="optimizer steps (wins over epochs)")
    group.add_argument(f"--{prefix}-epochs", type=positive_float, help="passes over the stage's images")
    group.add_argument(f"--{prefix}-lr", type=positive_float, help="peak learning rate (AdamW, cosine)")
    group.add_argument(f"--{prefix}-batch-size", type=positive_int, help="global batch size")
    group.add_argument(f"--{prefix}-weight-decay", type=non_negative_float)
    group.add_argument(f"--{prefix}-augment", choices=["none", "light", "timm"])
    group.add_argument(f"--{prefix}-label-smoothing", type=non_negative_float)
    group.add_argument(f"--{prefix}-warmup-steps", type=non_negative_int)


def train(parser: argparse.ArgumentParser):
    """fine-tune a pretrained classifier with one strategy (real, synthetic, mixed, bridged, replace, ...)"""
    from synthbridge.profiles import PROFILES
    from synthbridge.training import STRATEGIES

    parser.add_argument("--dataset", default="mnist5k", help="registry name (see `synthbridge datasets`) or imagefolder:PATH")
    parser.add_argument("--model", default="mini_resnet", help="a timm model name (or an embedded one: mini_resnet, mini_vit)")
    parser.add_argument("--strategy", default="real", help=", ".join(STRATEGIES.names()))
    parser.add_argument("--out", required=True, help="run folder (config.json, metrics.json, model.safetensors)")
    parser.add_argument("--synthetic", help="synthetic image folder (from `generate` or `render`)")
    parser.add_argument("--synthetic-per-class", type=positive_int, help="use only the first N synthetic images per class")
    parser.add_argument("--shots", type=positive_int, help="real training images per class (few-shot)")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    parser.add_argument("--no-pretrained", action="store_true", help="start from random weights")
    parser.add_argument("--checkpoint", help="start from this weights file (.safetensors, or a torch file read weights-only)")
    parser.add_argument("--input-size", type=positive_int, metavar="N",
                        help="input side in pixels (default: the model's; a ViT's position embeddings are resized)")
    parser.add_argument("--keep", choices=["stages", "final", "none"],
                        help="weights a finished run keeps: every stage's, the final model's, or none (metrics only); "
                             "default: final in the full profile, stages in the embedded one")
    parser.add_argument("--real-fraction", type=fraction, help="mixed: share of real images in every batch (default: pool both)")
    parser.add_argument("--replace-probability", type=probability, metavar="P",
                        help="replace, bridged_replace: the chance each real image of a batch is swapped for one of its "
                             "synthetic versions (an image-to-image set; default 0.5, DA-Fusion's)")
    parser.add_argument("--no-mixup", action="store_true", help="bridged/synthetic: no mixup/cutmix on synthetic images")
    parser.add_argument("--no-head-reinit", action="store_true", help="bridged: keep the stage-1 classifier head")
    parser.add_argument("--profile", choices=PROFILES,
                        help="defaults profile (default: embedded for inputs or images of at most 64 px, else full)")
    _stage_args(parser, "real", "real")
    _stage_args(parser, "synthetic", "synthetic")
    env = parser.add_argument_group("environment")
    add_data_args(env)
    env.add_argument("--num-workers", type=non_negative_int, help="data loader processes (the loader pipeline)")
    env.add_argument("--pipeline", choices=["auto", "memory", "loader"], default="auto",
                     help="input pipeline: memory (images decoded once and held on the training device, augmented "
                          "there as batches), loader (PIL per image in worker processes); auto: memory in the "
                          "embedded profile and on a GPU, else loader")
    env.add_argument("--mixed-precision", choices=["auto", "no", "fp16", "bf16"], default="auto",
                     help="autocast precision; auto: bf16 on a GPU that computes in it, else no (fp32)")
    env.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                     help="model and batches in channels_last memory format (default: on a GPU for convolutional "
                          "models)")
    env.add_argument("--compile", action="store_true",
                     help="torch.compile the model (inductor): faster steps on a GPU after a one-off compilation")
    env.add_argument("--checkpoint-every", type=positive_int, help="steps between checkpoints")
    env.add_argument("--report-to", default="auto",
                     help="trackers: auto (TensorBoard if installed), none, tensorboard, wandb, mlflow")
    env.add_argument("--lr-scale", choices=["none", "linear", "sqrt"], default="none",
                     help="scale each stage's lr by (global batch / --lr-base-size), linearly or by its square root")
    env.add_argument("--lr-base-size", type=positive_int, default=256)
    parser.add_argument("--resume", action="store_true", help="continue an interrupted run in --out")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing run in --out")

    def run(args: argparse.Namespace) -> int:
        from accelerate import PartialState

        from synthbridge.training import StageConfig, TrainConfig, train

        cfg = config_from_args(
            TrainConfig, args, pretrained=not args.no_pretrained, head_reinit=not args.no_head_reinit,
            real=config_from_args(StageConfig, args, prefix="real_"),
            synthetic_stage=config_from_args(StageConfig, args, prefix="synthetic_",
                                             mixup=False if args.no_mixup else None))
        metrics = train(cfg, args.out, resume=args.resume, overwrite=args.overwrite)
        stages = ", ".join(f"{name} {record['steps']} steps {record['seconds']:.0f}s"
                           + (f" (top1 {record['top1']:.1f})" if "top1" in record else "")
                           for name, record in metrics["stages"].items())
        if PartialState().is_main_process:  # one line per launch, not one per process
            print(f"top1 {metrics['top1']:.2f}% on {metrics['num_test']} test images [{stages}] -> {args.out}")
        return 0

    return run
