"""Fidelity of the embedded generator: is a generated "digit 7" a 7, and how varied are the 7s?

In: a generator folder (any StableDiffusionPipeline folder drawing digits from "a photo of the digit
{d}") and a `FidelityConfig`. Out: a JSON report (`measure_fidelity`), optionally a contact sheet
(digits as rows, seeds as columns), and with `record=True` a summary in the generator's synthbridge.json.

* Recognition: the share of generated images that a classifier calls the digit the prompt named,
  for two judges trained with synthbridge's own `train`: a *real-data* classifier (mini_resnet on the
  real mnist5k train split) and an *in-domain* classifier (mini_resnet on glyph-rendered corpus digits),
  because a real-MNIST classifier misreads many font and pen-stroke digits that a person reads easily.
* Diversity, per class: the mean pairwise distance between L2-normalised pooled features of the
  pretrained `mini_resnet` backbone (glyph source task, never trained on digits, so its features
  see style as well as shape), and the Vendi score (the effective number of distinct images, which
  keeps growing with the number of images only while new images add variety), for the generator's
  images and for the plain `render` baseline (white font digits on black), at each of
  `diversity_sizes` images per class. The same figures in the real-data classifier's features
  (trained to ignore everything but the digit's shape) are reported beside them.

Images go through the pipeline call itself (`pipe(prompt=[...], generator=[...], ...)`), one seeded
torch.Generator per image, so image (d, i) is the same whatever the batch size. The judges are
cached in `work_dir` (training them is the slow part) and reused by later measurements.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from PIL import Image

from synthbridge.diffusion.pipeline import describe_generator, load_generator, set_scheduler
from synthbridge.diffusion.sampling import render
from synthbridge.embedded import corpus as corpus_lib
from synthbridge.embedded import glyphs
from synthbridge.embedded.assets import GENERATOR_DIR
from synthbridge.errors import UserError
from synthbridge.io import environment, read_json, write_json
from synthbridge.io import progress as progress_bar
from synthbridge.seeding import derive_seed

DIGITS = [str(d) for d in range(10)]
RECOGNITION_BAR = 80.0  # percent of generated digits the real-data classifier must recognise


@dataclass(frozen=True)
class FidelityConfig:
    per_class: int = 100  # generated images per digit (recognition uses all of them)
    diversity_sizes: tuple[int, ...] = (100, 500)  # images per class for the diversity figures (those <= per_class)
    seed: int = 0  # seeds the generated images, the baseline renders and the judges
    sampler: str | None = None  # "ddim" or "dpm++"; None: the scheduler saved with the generator
    guidance_scale: float | None = None  # None: the generator's recorded default (synthbridge.json), else 4.0
    num_inference_steps: int | None = None  # None: the recorded default, else 25
    batch_size: int = 100  # prompts per pipeline call
    real_classifier_steps: int = 600  # mini_resnet on mnist5k (about 97% on its real test split)
    domain_classifier_steps: int = 2000  # mini_resnet on glyph-rendered corpus digits (all styles: needs more steps)
    domain_train_images: int = 10000  # corpus digits the in-domain judge trains on
    domain_test_images: int = 1000  # held-out corpus digits it is checked on
    work_dir: str | None = None  # cache of trained judges; None: ~/.cache/synthbridge/fidelity

    def check(self) -> None:
        for name in ("per_class", "batch_size", "real_classifier_steps", "domain_classifier_steps",
                     "domain_train_images", "domain_test_images"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) <= 0:
                raise UserError(f"{name} must be a whole number > 0, got {getattr(self, name)!r}")
        if any(size < 2 for size in self.diversity_sizes):
            raise UserError(f"diversity sizes must be >= 2 images per class, got {self.diversity_sizes}")


class Judge(NamedTuple):
    """A trained classifier and the eval transform of its input config."""

    model: torch.nn.Module
    transform: object
    record: dict  # what it was trained on and how well it does there


# --- 1. judges ----------------------------------------------------------------------------------------------------

def _work_dir(cfg: FidelityConfig) -> Path:
    return Path(cfg.work_dir) if cfg.work_dir else Path.home() / ".cache" / "synthbridge" / "fidelity"


def _train_or_reuse(run_dir: Path, train_cfg, bundle=None) -> Judge:
    """Train a classifier into `run_dir` unless a finished run is there; load it with its eval transform."""
    from synthbridge.models import create_model, data_config
    from synthbridge.training import train
    from synthbridge.training.loop import make_transform

    if not (run_dir / "metrics.json").is_file() or not (run_dir / "model.safetensors").is_file():
        train(train_cfg, run_dir, overwrite=True, bundle=bundle)
    metrics = read_json(run_dir / "metrics.json")
    model = create_model(train_cfg.model, len(DIGITS), pretrained=False, checkpoint=run_dir / "model.safetensors")
    model.eval()
    transform = make_transform(data_config(model), "none", train=False)
    return Judge(model, transform, {"run_dir": str(run_dir), "dataset": metrics["dataset"], "steps": train_cfg.real.steps,
                                    "test_top1": metrics["top1"], "num_test": metrics["num_test"]})


def backbone_judge() -> Judge:
    """The pretrained embedded backbone as a feature extractor (its head is unused): the diversity features."""
    from synthbridge.models import create_model, data_config
    from synthbridge.training.loop import make_transform

    model = create_model("mini_resnet", len(DIGITS), pretrained=True).eval()
    return Judge(model, make_transform(data_config(model), "none", train=False), {"model": "mini_resnet (pretrained)"})


def real_judge(cfg: FidelityConfig) -> Judge:
    """mini_resnet trained from scratch on the real mnist5k train split (1,000 images)."""
    from synthbridge.training import StageConfig, TrainConfig

    train_cfg = TrainConfig(dataset="mnist5k", model="mini_resnet", pretrained=False, seed=cfg.seed,
                            real=StageConfig(steps=cfg.real_classifier_steps))
    run_dir = _work_dir(cfg) / f"real-mnist5k-mini_resnet-steps{cfg.real_classifier_steps}-seed{cfg.seed}"
    return _train_or_reuse(run_dir, train_cfg)


def domain_judge(cfg: FidelityConfig) -> Judge:
    """mini_resnet trained from scratch on digits drawn like the generator's corpus (all styles)."""
    from synthbridge.data import ArrayImages, DatasetBundle
    from synthbridge.embedded.datasets import DIGIT_CLASSES, DIGIT_PHRASES
    from synthbridge.training import StageConfig, TrainConfig

    n_train, n_test = cfg.domain_train_images, cfg.domain_test_images
    run_dir = _work_dir(cfg) / (f"domain-glyphdigits{n_train}-{n_test}-mini_resnet-steps{cfg.domain_classifier_steps}"
                                f"-seed{cfg.seed}")
    bundle = None
    if not (run_dir / "metrics.json").is_file():
        # A corpus seed of its own: the judge never sees the exact images the generator was trained on.
        digits = corpus_lib.render_corpus(derive_seed(cfg.seed, "fidelity", "domain-judge"), n_train + n_test,
                                          content="digit")
        labels = np.asarray([int(t) for t in digits.texts])
        bundle = DatasetBundle(name="glyph-digits", classes=DIGIT_CLASSES, phrases=DIGIT_PHRASES,
                               superclass="digit", train=ArrayImages(digits.images[:n_train], labels[:n_train]),
                               test=ArrayImages(digits.images[n_train:], labels[n_train:]), image_size=32,
                               info={"source": "synthbridge.embedded.corpus digits (all style families)"})
    train_cfg = TrainConfig(dataset="glyph-digits", model="mini_resnet", pretrained=False, seed=cfg.seed,
                            real=StageConfig(steps=cfg.domain_classifier_steps))
    return _train_or_reuse(run_dir, train_cfg, bundle)


@torch.no_grad()
def classify(judge: Judge, images: np.ndarray, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Predicted digit and penultimate features (N, D) of uint8 images (N, H, W, 3)."""
    predictions, features = [], []
    for start in range(0, len(images), batch_size):
        x = torch.stack([judge.transform(Image.fromarray(image)) for image in images[start:start + batch_size]])
        pooled = judge.model.forward_head(judge.model.forward_features(x), pre_logits=True)
        predictions.append(judge.model.get_classifier()(pooled).argmax(dim=1))
        features.append(pooled)
    return torch.cat(predictions).numpy(), torch.cat(features).numpy()


def recognition(predictions: np.ndarray, labels: np.ndarray) -> dict:
    """{'top1': percent, 'per_class': {digit: percent}}."""
    per_class = {d: round(100.0 * float((predictions[labels == i] == i).mean()), 2)
                 for i, d in enumerate(DIGITS) if (labels == i).any()}
    return {"top1": round(100.0 * float((predictions == labels).mean()), 2), "num_images": int(len(labels)),
            "per_class": per_class}


# --- 2. diversity -------------------------------------------------------------------------------------------------

def mean_pairwise_distance(features: np.ndarray) -> float:
    """Mean Euclidean distance between distinct pairs of L2-normalised feature vectors (0 .. 2)."""
    from scipy.spatial.distance import pdist

    f = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    return float(pdist(f, "euclidean").mean())


def vendi_score(features: np.ndarray) -> float:
    """Vendi score (Friedman & Dieng 2023) with a centred cosine kernel: exp(entropy of its eigenvalues).

    1 when all images are the same, up to n (or the feature dimension) when they spread evenly; unlike
    a mean distance it grows with the number of images as long as new images bring something new. The
    features are centred first: pooled post-ReLU features are all non-negative, so raw cosine
    similarities are all high, the mean direction dominates the kernel and the score stays near 2.
    """
    features = features - features.mean(axis=0, keepdims=True)
    f = features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)
    eigenvalues = np.linalg.eigvalsh((f @ f.T) / len(f))
    eigenvalues = eigenvalues[eigenvalues > 1e-12]
    return float(np.exp(-(eigenvalues * np.log(eigenvalues)).sum()))


def diversity(features: np.ndarray, labels: np.ndarray, order: np.ndarray, sizes: tuple[int, ...]) -> dict:
    """Per-class diversity of the first n images of each class (in `order`), for every n in `sizes`."""
    result = {}
    for n in sizes:
        distances, vendis = {}, {}
        for i, d in enumerate(DIGITS):
            chosen = [k for k in np.argsort(order, kind="stable") if labels[k] == i][:n]
            if len(chosen) < n:
                continue
            distances[d] = round(mean_pairwise_distance(features[chosen]), 4)
            vendis[d] = round(vendi_score(features[chosen]), 2)
        if distances:
            result[str(n)] = {"mean_pairwise_distance": round(float(np.mean(list(distances.values()))), 4),
                              "vendi": round(float(np.mean(list(vendis.values()))), 2),
                              "per_class_distance": distances, "per_class_vendi": vendis}
    return result


# --- 3. images ----------------------------------------------------------------------------------------------------

def open_generator(generator: str | os.PathLike, sampler: str | None = None):
    """The generator folder's pipeline (diffusion.load_generator), optionally with another sampler."""
    path = Path(generator)
    if not (path / "model_index.json").is_file():
        raise UserError(f"{str(path)!r} is not a diffusers pipeline folder (no model_index.json); "
                        f"build one with `synthbridge build-generator`")
    pipe = load_generator(describe_generator(str(path), path), "fp32", torch.device("cpu"), quiet=True)
    if sampler is not None:
        set_scheduler(pipe, sampler)
    return pipe


@torch.no_grad()
def generate_digits(pipe, per_class: int, seed: int, guidance_scale: float, num_inference_steps: int,
                    batch_size: int = 100, progress: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images of "a photo of the digit {d}" for every digit: (images uint8, labels, index within class)."""
    size = pipe.unet.config.sample_size * pipe.vae_scale_factor
    jobs = [(d, i) for i in range(per_class) for d in range(10)]  # every batch holds every digit
    images = []
    for start in progress_bar(range(0, len(jobs), batch_size), desc="generate", unit="batch", enabled=progress):
        chunk = jobs[start:start + batch_size]
        out, _ = render(pipe, [corpus_lib.digit_prompt(d) for d, _ in chunk],
                        [derive_seed(seed, "fidelity", d, i) for d, i in chunk], negative_prompt=None,
                        steps=num_inference_steps, guidance_scale=guidance_scale, height=size, width=size)
        images.append(np.stack([np.asarray(image, dtype=np.uint8) for image in out]))
    return np.concatenate(images), np.asarray([d for d, _ in jobs]), np.asarray([i for _, i in jobs])


def render_digits(per_class: int, seed: int, size: int = 32,
                  style: str = "baseline") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The plain render baseline ("baseline": white font digits on black) or the corpus' MNIST-like pen ("hand")."""
    make_style = {"baseline": glyphs.baseline_digit_style, "hand": glyphs.hand_digit_style}[style]
    jobs = [(d, i) for i in range(per_class) for d in range(10)]
    images = []
    for d, i in jobs:
        rng = np.random.default_rng(derive_seed(seed, "render", style, d, i))
        images.append(np.asarray(glyphs.render(str(d), make_style(rng), size, rng), dtype=np.uint8))
    return np.stack(images), np.asarray([d for d, _ in jobs]), np.asarray([i for _, i in jobs])


def contact_sheet(images: np.ndarray, labels: np.ndarray, order: np.ndarray, seeds: int = 10) -> Image.Image:
    """Digits as rows, the first `seeds` images of each as columns."""
    rows = []
    for i in range(10):
        chosen = [k for k in np.argsort(order, kind="stable") if labels[k] == i][:seeds]
        rows += [Image.fromarray(images[k]) for k in chosen]
    return glyphs.contact_sheet(rows, cols=seeds, scale=3)


# --- 4. the measurement -------------------------------------------------------------------------------------------

def measure_fidelity(generator: str | os.PathLike = GENERATOR_DIR, cfg: FidelityConfig = FidelityConfig(), *,
                     out: str | os.PathLike | None = None, sheet: str | os.PathLike | None = None,
                     record: bool = False, judges: dict[str, Judge] | None = None, progress: bool = True) -> dict:
    """Generate digits, judge them, measure diversity; write the report to `out` (default GENERATOR/fidelity.json).

    `judges` ({"real": ..., "domain": ...}) replaces training/loading the two classifiers (tests).
    """
    cfg.check()
    generator = Path(generator)
    began = time.perf_counter()
    seconds: dict[str, float] = {}

    # 1. sampling settings: explicit, else what the build recorded
    from synthbridge.embedded.build import read_defaults

    defaults = read_defaults(generator)
    guidance = cfg.guidance_scale if cfg.guidance_scale is not None else defaults.get("guidance_scale", 4.0)
    steps = cfg.num_inference_steps if cfg.num_inference_steps is not None else defaults.get("num_inference_steps", 25)
    pipe = open_generator(generator, cfg.sampler)

    # 2. judges
    clock = time.perf_counter()
    judges = judges or {"real": real_judge(cfg), "domain": domain_judge(cfg)}
    seconds["judges"] = time.perf_counter() - clock

    # 3. generated digits, and the render baseline for the diversity comparison
    clock = time.perf_counter()
    images, labels, order = generate_digits(pipe, cfg.per_class, cfg.seed, guidance, steps, cfg.batch_size, progress)
    seconds["generate"] = time.perf_counter() - clock
    sizes = tuple(n for n in cfg.diversity_sizes if n <= cfg.per_class) or (cfg.per_class,)
    baseline, baseline_labels, baseline_order = render_digits(max(sizes), cfg.seed)
    hand, hand_labels, _ = render_digits(min(cfg.per_class, 100), cfg.seed, style="hand")

    # 4. recognition by both judges; diversity in the pretrained backbone's features (and the real judge's)
    predictions, judge_features = {}, None
    for name, judge in judges.items():
        predictions[name], features = classify(judge, images)
        if name == "real":
            judge_features = features
    real = judges["real"]
    baseline_predictions, baseline_judge_features = classify(real, baseline)
    hand_predictions, _ = classify(real, hand)
    backbone = backbone_judge()
    features, baseline_features = classify(backbone, images)[1], classify(backbone, baseline)[1]
    real_recognition = recognition(predictions["real"], labels)
    report = {
        "generator": str(generator),
        "prompt": corpus_lib.DIGIT_PROMPT_TEMPLATE,
        "sampling": {"scheduler": type(pipe.scheduler).__name__, "guidance_scale": guidance,
                     "num_inference_steps": steps, "images_per_class": cfg.per_class},
        "recognition": {
            "real_classifier": real_recognition,
            "in_domain_classifier": recognition(predictions["domain"], labels),
            "bar": {"real_classifier_min_top1": RECOGNITION_BAR,
                    "passed": real_recognition["top1"] >= RECOGNITION_BAR},
        },
        "diversity": {
            "feature": "pooled features of the pretrained mini_resnet backbone (glyph source task, no digits)",
            "generator": diversity(features, labels, order, sizes),
            "render_baseline": diversity(baseline_features, baseline_labels, baseline_order, sizes),
            "in_real_classifier_features": {
                "generator": diversity(judge_features, labels, order, sizes),
                "render_baseline": diversity(baseline_judge_features, baseline_labels, baseline_order, sizes),
            },
        },
        "reference": {
            "real_classifier": judges["real"].record,
            "in_domain_classifier": judges["domain"].record,
            "real_classifier_on_render_baseline_top1": recognition(baseline_predictions, baseline_labels)["top1"],
            "real_classifier_on_corpus_hand_digits_top1": recognition(hand_predictions, hand_labels)["top1"],
        },
        "config": asdict(cfg),
    }
    seconds["total"] = time.perf_counter() - began
    report["seconds"] = {k: round(v, 1) for k, v in seconds.items()}
    report["environment"] = environment()

    # 5. files
    write_json(Path(out) if out else generator / "fidelity.json", report)
    if sheet:
        contact_sheet(images, labels, order).save(sheet)
    if record:
        _record_summary(generator, report)
    return report


def summary(report: dict) -> dict:
    """The figures worth keeping next to the weights (synthbridge.json["fidelity"])."""
    diversity_figures = {
        source: {n: {"mean_pairwise_distance": v["mean_pairwise_distance"], "vendi": v["vendi"]} for n, v in figures.items()}
        for source, figures in report["diversity"].items() if source in ("generator", "render_baseline")}
    return {
        "sampling": report["sampling"],
        "real_classifier_top1": report["recognition"]["real_classifier"]["top1"],
        "in_domain_classifier_top1": report["recognition"]["in_domain_classifier"]["top1"],
        "bar_passed": report["recognition"]["bar"]["passed"],
        "diversity": diversity_figures,
        "reference": {k: v for k, v in report["reference"].items() if not isinstance(v, dict)},
        "measured_with": "synthbridge fidelity",
    }


def _record_summary(generator: Path, report: dict) -> None:
    path = generator / "synthbridge.json"
    if not path.is_file():
        raise UserError(f"{str(path)!r} does not exist; --record needs a generator built by `synthbridge build-generator`")
    data = read_json(path)
    data["fidelity"] = summary(report)
    write_json(path, data)
