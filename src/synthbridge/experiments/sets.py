"""What cells share, made once per experiment: style tokens, synthetic sets, and their analysis.

EXP_DIR/styles/<dataset>/          dataset style inversion, once per dataset
EXP_DIR/synthetic/<dataset>[-dsi]/ synthetic sets, generated once at the largest volume any cell needs;
                                   smaller volumes use the first N images of each class (nested subsets)
EXP_DIR/analysis/                  gap measures per synthetic set (gap-<set>.json) and its per-class recognition
                                   by a classifier of the real images (fidelity-<set>.json), on the features of
                                   the grid's model (`gap_model`, else the first of `models`) with the weights
                                   the cells start from; LEEP of the starting backbones (leep-<dataset>-<model>...)

Each is made under a file lock, so concurrent workers never make the same thing twice.
"""

from __future__ import annotations

import functools
from pathlib import Path

from synthbridge.errors import UserError
from synthbridge.experiments.config import ExperimentConfig
from synthbridge.experiments.store import locked
from synthbridge.generation.sources import SOURCES
from synthbridge.io import read_json, safe_name, write_json


def set_name(dataset: str, style: bool) -> str:
    return safe_name(dataset) + ("-dsi" if style else "")


def ensure_style(cfg: ExperimentConfig, exp_dir: Path, dataset: str) -> Path:
    """Dataset style inversion, once per dataset (a finished folder is reused)."""
    style_dir = exp_dir / "styles" / safe_name(dataset)
    with locked(exp_dir / "styles" / f".{safe_name(dataset)}.lock"):
        if not (style_dir / "learned_embeds.safetensors").exists():
            if cfg.generator in SOURCES:
                raise UserError(f"style inversion needs a diffusion generator, not the {cfg.generator!r} source; "
                                f"set generator to a diffusers folder or generator name")
            from synthbridge.inversion import InvertConfig, invert

            resume = (style_dir / "checkpoint.pt").exists()  # an inversion interrupted earlier: continue it
            invert(InvertConfig.from_dict({**cfg.inversion, "dataset": dataset, "generator": cfg.generator,
                                           "out": str(style_dir), "data_root": cfg.data_root, "grid": True}),
                   resume=resume)
    return style_dir


def ensure_synthetic(cfg: ExperimentConfig, exp_dir: Path, dataset: str, style_dir: Path | None, per_class: int) -> Path:
    """The synthetic set of a dataset (with the style token of `style_dir`, or plain) with `per_class` images."""
    name = set_name(dataset, style_dir is not None)
    out = exp_dir / "synthetic" / name
    with locked(exp_dir / "synthetic" / f".{name}.lock"):
        if cfg.generator in SOURCES:
            SOURCES.get(cfg.generator)(dataset=dataset, per_class=per_class, out=str(out), data_root=cfg.data_root)
        else:
            from synthbridge.generation import GenerateConfig, generate

            generate(GenerateConfig.from_dict({**cfg.generation, "dataset": dataset, "generator": cfg.generator,
                                               "per_class": per_class, "out": str(out), "data_root": cfg.data_root,
                                               "style": str(style_dir) if style_dir else None}))
    return out


def gap_config(cfg: ExperimentConfig, dataset: str, synthetic_dir: Path):
    """The GapConfig of a grid's set: the grid's feature model (`feature_model`) with the cells' pretrained /
    checkpoint rule and input size (from `train`), so the analysis fetches nothing training did not."""
    from synthbridge.gap import GapConfig
    from synthbridge.training import TrainConfig

    train = TrainConfig.from_dict(cfg.train)
    return GapConfig(dataset=dataset, synthetic=str(synthetic_dir), data_root=cfg.data_root, model=cfg.feature_model,
                     pretrained=train.pretrained, checkpoint=train.checkpoint, input_size=train.input_size)


def analysis_is_current(cfg: ExperimentConfig, exp_dir: Path, dataset: str, style: bool,
                        synthetic_dir: Path | None = None) -> bool:
    """Whether the set's gap measures exist, made with the feature model and weights this grid asks for."""
    out = exp_dir / "analysis" / f"gap-{set_name(dataset, style)}.json"
    if not out.exists():
        return False
    synthetic_dir = synthetic_dir or exp_dir / "synthetic" / set_name(dataset, style)
    measured_with = lambda c: {k: c.get(k) for k in ("model", "pretrained", "checkpoint", "input_size")}
    return measured_with(read_json(out).get("config", {})) == measured_with(gap_config(cfg, dataset, synthetic_dir).to_dict())


def analyse_set(cfg: ExperimentConfig, exp_dir: Path, dataset: str, style: bool, synthetic_dir: Path) -> None:
    """Gap measures of one synthetic set against the real train split (once per feature model and weights: a
    measure made with another `gap_model` is made again)."""
    if analysis_is_current(cfg, exp_dir, dataset, style, synthetic_dir):
        return
    out = exp_dir / "analysis" / f"gap-{set_name(dataset, style)}.json"
    config = gap_config(cfg, dataset, synthetic_dir)
    from synthbridge.gap import measure_gap

    result = measure_gap(config)
    recognition = result["recognition"]  # per class: what the report's per-class effects sit beside
    write_json(exp_dir / "analysis" / f"fidelity-{set_name(dataset, style)}.json",
               {"dataset": dataset, "style": style, "per_class": recognition["per_class"],
                "overall": recognition["overall"], "measured_by": recognition.get("classifier")})
    write_json(out, {"dataset": dataset, "style": style, "synthetic": str(synthetic_dir.relative_to(exp_dir)), **result})


@functools.lru_cache(maxsize=16)
def _weights_id(path: Path, mtime_ns: int) -> str:
    """A weights file's identity (the start of its sha256), hashed once per process and file version."""
    from synthbridge.diffusion.pipeline import file_sha256

    return file_sha256(path)[:12]


def leep_before(exp_dir: Path, train_cfg) -> float | None:
    """LEEP of the backbone a cell starts from (its `TrainConfig`'s model, pretrained weights or checkpoint, input
    size), with its own source-task head, on the real train split; cached per dataset, model and weights. None,
    with nothing fetched, for a cell without pretrained weights or checkpoint (random init has no source head)."""
    if not train_cfg.pretrained and train_cfg.checkpoint is None:
        return None
    from synthbridge.transfer import pretrained_leep

    checkpoint = train_cfg.checkpoint
    weights = _weights_id(Path(checkpoint).resolve(), Path(checkpoint).stat().st_mtime_ns) if checkpoint else None
    name = "-".join([f"leep-{safe_name(train_cfg.dataset)}", safe_name(train_cfg.model)]
                    + ([f"{train_cfg.input_size}px"] if train_cfg.input_size else []) + ([weights] if weights else []))
    out = exp_dir / "analysis" / f"{name}.json"
    if out.exists():
        return read_json(out)["leep"]
    score = pretrained_leep(train_cfg.dataset, train_cfg.model, data_root=train_cfg.data_root,
                            pretrained=train_cfg.pretrained, checkpoint=checkpoint, input_size=train_cfg.input_size)
    if score is not None:
        write_json(out, {"dataset": train_cfg.dataset, "model": train_cfg.model, "leep": score,
                         "weights": {"checkpoint": checkpoint, "sha256": weights} if checkpoint else "pretrained",
                         "input_size": train_cfg.input_size})
    return score
