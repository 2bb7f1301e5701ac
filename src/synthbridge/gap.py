"""The distribution gap: how far a synthetic image set is from the real training set.

In: a dataset (its train split, or K shots per class, is the real side), a synthetic folder (from
`render` or `generate`), and a backbone whose pooled features describe an image (by default the embedded
`mini_resnet` for images of at most 64 px and ImageNet-pretrained `resnet50` for larger ones; any timm model
with its pretrained weights, a checkpoint, or random weights with `pretrained=False`, at `input_size`). Out: a dict (optionally a
JSON file, and a grid PNG of real | synthetic images) with

    fd                          Frechet distance between Gaussians fitted to the two sets' features
                                (the FID formula, torchmetrics' FrechetInceptionDistance on these features)
    kid_mean, kid_std           kernel distance: unbiased polynomial-kernel MMD^2 over random subsets
                                (torchmetrics' KernelInceptionDistance); ~0 when the sets match
    real_vs_synthetic_accuracy  cross-validated accuracy of a logistic regression telling the two sets apart
                                on the same features, with as many of each: 0.5 = indistinguishable

Both sets pass through the backbone's own evaluation transform, so only the images differ.

    synthbridge gap --dataset mnist5k --synthetic S/ --out gap.json
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from synthbridge.data import DatasetBundle, ImageSet, few_shot, load_dataset, load_synthetic
from synthbridge.errors import UserError, reject_unknown_keys
from synthbridge.io import ensure_writable_dir, environment, write_json
from synthbridge.seeding import derive_seed

# The feature backbone when none is named: the embedded glyph backbone for small images (the embedded world),
# the study's ImageNet-pretrained ResNet-50 for photos.
DEFAULT_MODELS = {"embedded": "mini_resnet", "full": "resnet50"}
WEIGHTS_ADVICE = "pass --checkpoint FILE, --no-pretrained (random features) or another --model"


def default_model(image_size: int | None) -> str:
    """The feature backbone for a dataset whose images are `image_size` pixels (DEFAULT_MODELS, by profile)."""
    from synthbridge.profiles import choose_profile

    return DEFAULT_MODELS[choose_profile(None, image_size)]


@dataclass(frozen=True)
class GapConfig:
    # --- what to compare
    synthetic: str  # synthetic folder (class folders + manifest.jsonl), labelled by class name
    dataset: str = "mnist5k"  # registry name or imagefolder:PATH; its train split is the real side
    shots: int | None = None  # real side: K images per class (the few-shot set a run trained on); None: all
    max_images: int | None = None  # at most this many images per side (a seeded random subset); None: all
    # --- how to measure
    model: str | None = None  # feature backbone: a timm name or an embedded model; None: DEFAULT_MODELS by image size
    checkpoint: str | None = None  # weights for `model` (safetensors or torch file); None: its pretrained weights
    pretrained: bool = True  # False (and no checkpoint): random weights, seeded (nothing is downloaded)
    input_size: int | None = None  # input side in pixels (a ViT's position embeddings are resized); None: the model's
    kid_subsets: int = 100  # KID: number of random subsets averaged
    kid_subset_size: int = 1000  # KID: images per subset (capped at half the smaller set)
    cv_folds: int = 5  # real-vs-synthetic classifier: cross-validation folds
    seed: int = 0  # which shots, which subsets, which folds
    # --- outputs and environment
    out: str | None = None  # JSON file to write the result to
    grid: str | None = None  # PNG file: real | synthetic images, one row per class
    grid_per_class: int = 8  # images per class and side in the grid
    batch_size: int = 128  # images per backbone forward pass
    device: str | None = None  # None: accelerate's device (cuda, mps or cpu)
    data_root: str | None = None  # where full-scale datasets live
    download: bool = False  # let torchvision download a missing dataset

    def check(self) -> None:
        """Values a user can get wrong, as one-line UserErrors (before anything is loaded)."""
        for name in ("shots", "max_images"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise UserError(f"--{name.replace('_', '-')} must be a whole number > 0, got {value!r}")
        for name in ("kid_subsets", "kid_subset_size", "batch_size", "grid_per_class"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise UserError(f"--{name.replace('_', '-')} must be a whole number > 0, got {value!r}")
        if self.input_size is not None and (not isinstance(self.input_size, int) or self.input_size < 1):
            raise UserError(f"--input-size must be a whole number > 0, got {self.input_size!r}")
        if not isinstance(self.cv_folds, int) or self.cv_folds < 2:
            raise UserError(f"--cv-folds must be a whole number >= 2, got {self.cv_folds!r}")
        for name in ("out", "grid"):
            if getattr(self, name) is not None:
                ensure_writable_dir(Path(getattr(self, name)).expanduser().resolve().parent, f"folder of --{name}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> GapConfig:
        """Build from a plain dict (YAML, an experiment grid); unknown keys are errors that list the valid ones."""
        reject_unknown_keys(data, cls, "gap config")
        return cls(**data)


def measure_gap(config: GapConfig, *, bundle: DatasetBundle | None = None) -> dict:
    """FD, KID and real-vs-synthetic accuracy of `config.synthetic` against the real training set."""
    from synthbridge.models import create_model, data_config
    from synthbridge.training.loop import make_transform

    began = time.perf_counter()

    # 1. check inputs
    config.check()
    if bundle is None:
        bundle = load_dataset(config.dataset, data_root=config.data_root, download=config.download)
    real_all = few_shot(bundle.train, config.shots, config.seed, bundle.classes) if config.shots else bundle.train
    synthetic_all = load_synthetic(config.synthetic, bundle.classes)

    # 2. the two sets, capped by --max-images (a seeded subset, so reruns compare the same images)
    real = _cap(real_all, config.max_images, derive_seed(config.seed, "gap", "real"))
    synthetic = _cap(synthetic_all, config.max_images, derive_seed(config.seed, "gap", "synthetic"))
    if min(len(real), len(synthetic)) < 2:
        raise UserError(f"need at least 2 images on each side, got {len(real)} real and {len(synthetic)} synthetic")

    # 3. the backbone without its classifier: pooled pre-logit features (timm's forward_head(pre_logits=True))
    config = dataclasses.replace(config, model=config.model or default_model(bundle.image_size))
    with torch.random.fork_rng(devices=[]):  # random weights (pretrained=False) are the same in every run
        torch.manual_seed(derive_seed(config.seed, "gap", "init"))
        model = create_model(config.model, num_classes=1, pretrained=config.pretrained, checkpoint=config.checkpoint,
                             input_size=config.input_size, advice=WEIGHTS_ADVICE)
    model.reset_classifier(0)
    from synthbridge.diffusion.pipeline import device_of

    device = device_of(config.device)
    model = model.to(device).eval()
    model_data = data_config(model)
    transform = make_transform(model_data, "none", train=False)

    # 4. features of both sets through the same evaluation transform, computed once for all three measures
    real_features = extract_features(model, real, transform, config.batch_size, device)
    synthetic_features = extract_features(model, synthetic, transform, config.batch_size, device)

    # 5. FD and KID (torchmetrics), then the real-vs-synthetic classifier (scikit-learn)
    fd = frechet_distance(real_features, synthetic_features)
    # Subsets of at most half the smaller set, so that they differ and the std means something.
    kid_size = min(config.kid_subset_size, max(2, min(len(real), len(synthetic)) // 2))
    kid_mean, kid_std = kernel_distance(real_features, synthetic_features, config.kid_subsets, kid_size,
                                        derive_seed(config.seed, "gap", "kid"))
    accuracy, accuracy_std, per_side = real_vs_synthetic_accuracy(real_features, synthetic_features, config.cv_folds,
                                                                  derive_seed(config.seed, "gap", "classifier"))
    recognition = class_recognition(real_features, real.targets, synthetic_features, synthetic.targets, bundle.classes)

    # 6. record
    result = {
        "dataset": config.dataset, "synthetic": str(config.synthetic), "model": config.model,
        "fd": fd, "kid_mean": kid_mean, "kid_std": kid_std,
        "real_vs_synthetic_accuracy": accuracy, "real_vs_synthetic_accuracy_std": accuracy_std,
        "recognition": recognition,
        "num_real": len(real), "num_synthetic": len(synthetic), "num_classifier_per_side": per_side,
        "feature_dim": int(real_features.shape[1]), "input_size": int(model_data["input_size"][-1]),
        "weights": config.checkpoint or ("pretrained" if config.pretrained else "random"), "kid_subset_size": kid_size,
        "config": config.to_dict(), "seconds": time.perf_counter() - began, "environment": environment(),
    }
    if config.grid:
        from synthbridge.grids import labelled_grid, pick_per_class, save_png

        panels = [(name, pick_per_class(images, bundle.num_classes, config.grid_per_class, config.seed))
                  for name, images in (("real", real), ("synthetic", synthetic))]
        result["grid"] = str(save_png(labelled_grid(panels, bundle.phrases), config.grid))
    if config.out:
        write_json(config.out, result)
    return result


# --- the measures ------------------------------------------------------------------------------------------

class _Precomputed(torch.nn.Module):
    """The `feature` module torchmetrics runs on what `update()` receives. Features are extracted once
    (and shared by FD, KID and the classifier), so this module passes them through."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = num_features  # FrechetInceptionDistance reads the width from here

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def frechet_distance(real: torch.Tensor, synthetic: torch.Tensor) -> float:
    """||mu_r - mu_s||^2 + Tr(S_r + S_s - 2 (S_r S_s)^1/2) of (N, D) feature matrices (torchmetrics' FID)."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    metric = FrechetInceptionDistance(feature=_Precomputed(real.shape[1]))
    metric.update(real.double(), real=True)
    metric.update(synthetic.double(), real=False)
    # Rounding can leave a distance of two identical sets a hair below zero.
    return max(0.0, float(metric.compute()))


def kernel_distance(real: torch.Tensor, synthetic: torch.Tensor, subsets: int, subset_size: int,
                    seed: int) -> tuple[float, float]:
    """(mean, std) over `subsets` random subsets of the unbiased MMD^2 with kernel (x.y/D + 1)^3 (torchmetrics' KID)."""
    from torchmetrics.image.kid import KernelInceptionDistance

    with warnings.catch_warnings():  # "will save all extracted features": they are in memory already
        warnings.filterwarnings("ignore", message=".*save all extracted features.*")
        metric = KernelInceptionDistance(feature=_Precomputed(real.shape[1]), subsets=subsets, subset_size=subset_size)
    metric.update(real.double(), real=True)
    metric.update(synthetic.double(), real=False)
    # KID draws its subsets from torch's global generator: seeded here, without disturbing the caller's.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        mean, std = metric.compute()
    return float(mean), float(std)


def class_recognition(real: torch.Tensor, real_labels, synthetic: torch.Tensor, synthetic_labels,
                      classes) -> dict:
    """How often a classifier of the real images (a logistic regression on their features) gives a synthetic image
    the class it was generated for: {'overall': percent, 'per_class': {class: percent or None}}. A class whose
    images the generator gets wrong is low here."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    real_labels, synthetic_labels = np.asarray(real_labels), np.asarray(synthetic_labels)
    if len(set(real_labels.tolist())) < 2:
        return {"overall": None, "per_class": {name: None for name in classes}}
    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    probe.fit(real.double().numpy(), real_labels)
    correct = probe.predict(synthetic.double().numpy()) == synthetic_labels
    per_class = {name: (round(100.0 * float(correct[synthetic_labels == k].mean()), 2)
                        if (synthetic_labels == k).any() else None) for k, name in enumerate(classes)}
    return {"overall": round(100.0 * float(correct.mean()), 2), "per_class": per_class,
            "classifier": "logistic regression on the real training images' features"}


def real_vs_synthetic_accuracy(real: torch.Tensor, synthetic: torch.Tensor, folds: int,
                               seed: int) -> tuple[float, float, int]:
    """(mean, std) of cross-validated accuracy of a logistic regression separating the sets, and the images
    per side. Both sides get the same number of images, so chance is exactly 0.5.

    Images with identical features on both sides (a synthetic image that copies a real one) are kept in
    the same fold: a copy in the training folds would teach the classifier the opposite label of its twin
    in the test fold, and identical sets would score far below chance instead of at it.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedGroupKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed % 2**32)
    per_side = min(len(real), len(synthetic))
    x = np.concatenate([real.numpy()[np.sort(rng.choice(len(real), per_side, replace=False))],
                        synthetic.numpy()[np.sort(rng.choice(len(synthetic), per_side, replace=False))]])
    y = np.repeat([0, 1], per_side)
    _, groups = np.unique(x.round(6), axis=0, return_inverse=True)  # one group per distinct feature vector
    folds = min(folds, per_side)
    classifier = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    scores = cross_val_score(classifier, x, y, groups=groups.ravel(),
                             cv=StratifiedGroupKFold(folds, shuffle=True, random_state=seed % 2**32))
    return float(scores.mean()), float(scores.std()), per_side


# --- pieces ------------------------------------------------------------------------------------------------------

@torch.inference_mode()
def extract_features(model: torch.nn.Module, images: ImageSet, transform, batch_size: int,
                     device: torch.device) -> torch.Tensor:
    """(N, D) float64 pooled pre-logit features of every image, in order."""
    view = images.subset(range(len(images)))  # its own transform: the caller's set is left untouched
    view.transform = transform
    loader = torch.utils.data.DataLoader(view, batch_size=batch_size, shuffle=False, num_workers=0)
    features = []
    for pixels, _ in loader:
        pooled = model.forward_head(model.forward_features(pixels.to(device)), pre_logits=True)
        features.append(pooled.flatten(1).double().cpu())
    return torch.cat(features)


def _cap(images: ImageSet, max_images: int | None, seed: int) -> ImageSet:
    if max_images is None or len(images) <= max_images:
        return images
    chosen = np.random.default_rng(seed % 2**32).choice(len(images), max_images, replace=False)
    return images.subset(sorted(chosen.tolist()))


def format_gap(result: dict) -> str:
    """A short table of one measurement."""
    rows = [
        ("FD", f"{result['fd']:.3f}"),
        ("KID x 1000", f"{1000 * result['kid_mean']:.3f} +- {1000 * result['kid_std']:.3f}"),
        ("real-vs-synthetic accuracy", f"{result['real_vs_synthetic_accuracy']:.3f} +- "
                                       f"{result['real_vs_synthetic_accuracy_std']:.3f}  (0.5 = indistinguishable)"),
    ]
    head = (f"{result['dataset']} train ({result['num_real']} real) vs {result['synthetic']} "
            f"({result['num_synthetic']} synthetic); features: {result['model']} ({result['feature_dim']}-d, "
            f"{result.get('weights', 'pretrained')} weights, {result.get('input_size', '?')} px)")
    return "\n".join([head] + [f"  {name:28s} {value}" for name, value in rows])


__all__ = ["GapConfig", "extract_features", "format_gap", "frechet_distance", "kernel_distance", "measure_gap",
           "real_vs_synthetic_accuracy"]
