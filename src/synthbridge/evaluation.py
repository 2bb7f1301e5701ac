"""Stage: evaluation. Top-1 and per-class accuracy of a classifier on a test split.

Works under several processes: accelerate shards the test set and `gather_for_metrics` drops the
padding of the last batch, so every test image is counted exactly once.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from accelerate import Accelerator

from synthbridge.data import ImageSet
from synthbridge.io import progress


@torch.no_grad()
def predict(model: torch.nn.Module, images: ImageSet, transform, accelerator: Accelerator, batch_size: int = 256,
            num_workers: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits and labels for every image of `images`, gathered on every process (in dataset order).
    `transform`: timm's eval transform (applied per image), or `training.augment.EvalInMemory` (the whole set
    transformed once, in memory)."""
    if hasattr(transform, "dataset"):
        dataset, num_workers = transform.dataset(images), 0
    else:
        images.transform = transform
        dataset = images
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=num_workers)
    loader = accelerator.prepare_data_loader(loader)  # its batches arrive on accelerator.device
    if any(p.device != accelerator.device for p in model.parameters()):  # so the model goes there too, whoever
        model = model.to(accelerator.device)  # built it (LEEP's networks are made on the CPU)
    model.eval()
    all_logits, all_labels = [], []
    for batch, labels in progress(loader, desc="evaluate", unit="batch", leave=False,
                                  enabled=accelerator.is_local_main_process):
        with accelerator.autocast():
            logits = model(batch)
        logits, labels = accelerator.gather_for_metrics((logits.float(), labels))
        all_logits.append(logits.cpu())
        all_labels.append(labels.cpu())
    return torch.cat(all_logits), torch.cat(all_labels)


def accuracy(logits: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str]) -> dict:
    """{'top1': percent, 'num_test': n, 'per_class': {name: percent, or None for a class without test images}}."""
    from torchmetrics.functional.classification import multiclass_accuracy

    predictions = logits.argmax(dim=1)
    correct = predictions == labels
    recall = multiclass_accuracy(predictions, labels, num_classes=len(class_names), average=None)
    support = torch.bincount(labels, minlength=len(class_names))
    per_class = {name: round(100.0 * recall[label].item(), 3) if support[label] else None
                 for label, name in enumerate(class_names)}
    return {"top1": round(100.0 * correct.float().mean().item(), 3), "num_test": int(labels.numel()), "per_class": per_class}


def evaluate(model, images: ImageSet, transform, class_names: Sequence[str], accelerator: Accelerator,
             batch_size: int = 256, num_workers: int = 0) -> dict:
    logits, labels = predict(model, images, transform, accelerator, batch_size, num_workers)
    return accuracy(logits, labels, class_names)


def leep(source_probs: torch.Tensor, labels: torch.Tensor, num_classes: int) -> float:
    """LEEP transferability score (Nguyen et al., 2020): how well a model's own label distribution
    predicts the target labels. `source_probs` (N, Z): softmax over the model's source classes for
    each target image; `labels` (N,): target classes. Higher (closer to 0) means more transferable."""
    probs = source_probs.double()
    joint = torch.zeros(num_classes, probs.shape[1], dtype=torch.float64)
    joint.index_add_(0, labels.long(), probs)
    joint /= len(labels)  # empirical P(y, z)
    conditional = joint / joint.sum(dim=0, keepdim=True).clamp_min(1e-12)  # P(y | z)
    expected = (probs @ conditional.T)[torch.arange(len(labels)), labels.long()]  # sum_z P(y_i|z) theta(x_i)_z
    return float(expected.clamp_min(1e-12).log().mean())


def leep_of_model(model, images: ImageSet, transform, num_classes: int, accelerator: Accelerator,
                  batch_size: int = 256) -> float:
    """LEEP of `model` (with its own classifier head, whatever its classes) on a labelled target set."""
    logits, labels = predict(model, images, transform, accelerator, batch_size)
    return leep(logits.softmax(dim=1), labels, num_classes)
