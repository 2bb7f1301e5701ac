"""What cells share, made once per experiment: style tokens, synthetic sets, and their analysis.

EXP_DIR/styles/<dataset>/          dataset style inversion, once per dataset
EXP_DIR/synthetic/<dataset>[-dsi]/ synthetic sets, generated once at the largest volume any cell needs;
                                   smaller volumes use the first N images of each class (nested subsets)
EXP_DIR/analysis/                  gap measures per synthetic set (gap-<set>.json) and its per-class recognition
                                   by a classifier of the real images (fidelity-<set>.json), LEEP of the backbones

Each is made under a file lock, so concurrent workers never make the same thing twice.
"""

from __future__ import annotations

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


def analyse_set(cfg: ExperimentConfig, exp_dir: Path, dataset: str, style: bool, synthetic_dir: Path) -> None:
    """Gap measures of one synthetic set against the real train split (once)."""
    out = exp_dir / "analysis" / f"gap-{set_name(dataset, style)}.json"
    if out.exists():
        return
    from synthbridge.gap import GapConfig, measure_gap

    result = measure_gap(GapConfig(dataset=dataset, synthetic=str(synthetic_dir), data_root=cfg.data_root))
    recognition = result["recognition"]  # per class: what the report's per-class effects sit beside
    write_json(exp_dir / "analysis" / f"fidelity-{set_name(dataset, style)}.json",
               {"dataset": dataset, "style": style, "per_class": recognition["per_class"],
                "overall": recognition["overall"], "measured_by": recognition.get("classifier")})
    write_json(out, {"dataset": dataset, "style": style, "synthetic": str(synthetic_dir.relative_to(exp_dir)), **result})


def leep_before(exp_dir: Path, cfg: ExperimentConfig, dataset: str, model: str) -> float | None:
    """LEEP of the pretrained backbone (its own source-task head) on the real train split, cached."""
    out = exp_dir / "analysis" / f"leep-{safe_name(dataset)}-{model}.json"
    if out.exists():
        return read_json(out)["leep"]
    from synthbridge.transfer import pretrained_leep

    score = pretrained_leep(dataset, model, data_root=cfg.data_root)
    if score is not None:
        write_json(out, {"dataset": dataset, "model": model, "leep": score})
    return score
