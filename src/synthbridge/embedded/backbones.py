"""`synthbridge build-backbones`: pretrain the embedded backbones on a glyph source task.

The source task plays ImageNet's part in the embedded world: it must differ from the target
(handwritten digits) in content AND in style. Its classes are letters, symbols and procedural
shapes -- never digits -- drawn colourful, textured, outlined and shadowed (`glyphs.source_style`),
unlike white-on-black digits. Images are rendered from fonts and code with a fixed seed, so the
weights are rebuilt reproducibly; nothing from the real datasets is used.

Out: assets/backbones/<model>.safetensors (+ build.json with the command, seed, accuracy and time).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from timm.optim import create_optimizer_v2
from timm.scheduler import CosineLRScheduler

from synthbridge.embedded.models import BACKBONE_DIR, EMBEDDED_MODELS, IMAGE_SIZE, NUM_SOURCE_CLASSES
from synthbridge.io import atomic_path, environment, progress, read_json, write_json
from synthbridge.seeding import derive_seed


@dataclass(frozen=True)
class BackboneBuildConfig:
    models: tuple[str, ...] = EMBEDDED_MODELS  # which backbones to build
    train_per_class: int = 160  # rendered training images per source class
    val_per_class: int = 20  # held-out images per class, for the accuracy recorded in build.json
    steps: tuple[tuple[str, int], ...] = (("mini_resnet", 1500), ("mini_vit", 4000))  # AdamW steps per model (ViTs learn slower)
    batch_size: int = 128
    lr: float = 2e-3
    weight_decay: float = 0.05
    seed: int = 0
    out_dir: str = str(BACKBONE_DIR)


def render_source_set(per_class: int, seed: int, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 3, 32, 32) float images in [-1, 1] and their labels; image i of class c depends only on (seed, split, c, i)."""
    from synthbridge.embedded import glyphs

    assert len(glyphs.SOURCE_CLASSES) == NUM_SOURCE_CLASSES, "update NUM_SOURCE_CLASSES in embedded/models.py"
    images, labels = [], []
    for label in progress(range(len(glyphs.SOURCE_CLASSES)), desc=f"render source {split}", unit="class", leave=False):
        for index in range(per_class):
            rng = np.random.default_rng(derive_seed(seed, "source", split, label, index))
            images.append(np.asarray(glyphs.source_image(label, rng, IMAGE_SIZE), dtype=np.uint8))
            labels.append(label)
    pixels = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float() / 127.5 - 1.0
    return pixels, torch.tensor(labels)


def _augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random shifts of up to 3 pixels (reflect-padded), batched on tensors: cheap on a CPU."""
    padded = F.pad(batch, (3, 3, 3, 3), mode="reflect")
    dx, dy = torch.randint(0, 7, (2,), generator=generator).tolist()
    return padded[:, :, dy:dy + IMAGE_SIZE, dx:dx + IMAGE_SIZE]


def pretrain_one(name: str, cfg: BackboneBuildConfig, train_set, val_set) -> dict:
    import timm

    import synthbridge.models  # noqa: F401  (registers the embedded models with timm)

    torch.manual_seed(derive_seed(cfg.seed, name, "init"))
    model = timm.create_model(name, pretrained=False, num_classes=NUM_SOURCE_CLASSES)
    optimizer = create_optimizer_v2(model, opt="adamw", lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = dict(cfg.steps)[name]
    scheduler = CosineLRScheduler(optimizer, t_initial=steps, lr_min=cfg.lr * 0.01, warmup_t=50,
                                  warmup_lr_init=cfg.lr * 0.01, t_in_epochs=False)
    images, labels = train_set
    generator = torch.Generator().manual_seed(derive_seed(cfg.seed, name, "data"))
    began = time.perf_counter()
    model.train()
    bar = progress(range(steps), desc=f"pretrain {name}", unit="step")
    for step in bar:
        scheduler.step_update(step)
        index = torch.randint(0, len(images), (cfg.batch_size,), generator=generator)
        loss = F.cross_entropy(model(_augment(images[index], generator)), labels[index], label_smoothing=0.1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % 20 == 0:
            bar.set_postfix(loss=f"{loss.item():.3f}")
    seconds = time.perf_counter() - began
    model.eval()
    with torch.no_grad():
        val_images, val_labels = val_set
        predictions = torch.cat([model(chunk).argmax(1) for chunk in val_images.split(512)])
    accuracy = 100.0 * (predictions == val_labels).float().mean().item()
    out = Path(cfg.out_dir) / f"{name}.safetensors"
    state = {k: v.detach().contiguous() for k, v in model.state_dict().items()}
    with atomic_path(out) as tmp:
        save_file(state, str(tmp), metadata={"model": name, "num_classes": str(NUM_SOURCE_CLASSES),
                                              "source_task": "glyphs.SOURCE_CLASSES", "seed": str(cfg.seed),
                                              "command": "synthbridge build-backbones"})
    return {"file": out.name, "steps": steps, "source_val_top1": round(accuracy, 2), "train_seconds": round(seconds, 1),
            "parameters": sum(p.numel() for p in model.parameters()), "bytes": out.stat().st_size}


def build_backbones(cfg: BackboneBuildConfig) -> dict:
    """Render the source task once, pretrain each backbone on it, write weights and build.json."""
    began = time.perf_counter()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    train_set = render_source_set(cfg.train_per_class, cfg.seed, "train")
    val_set = render_source_set(cfg.val_per_class, cfg.seed, "val")
    render_seconds = time.perf_counter() - began
    build_file = Path(cfg.out_dir) / "build.json"
    record = read_json(build_file) if build_file.exists() else {"models": {}}
    for name in cfg.models:
        record["models"][name] = pretrain_one(name, cfg, train_set, val_set)
        print(f"{name}: source-task top1 {record['models'][name]['source_val_top1']:.1f}% "
              f"({record['models'][name]['train_seconds']:.0f}s)")
    record.update({"command": "synthbridge build-backbones", "config": asdict(cfg), "render_seconds": round(render_seconds, 1),
                   "total_seconds": round(time.perf_counter() - began, 1), "environment": environment()})
    record["config"]["out_dir"] = "synthbridge/embedded/assets/backbones"
    write_json(build_file, record)
    return record
