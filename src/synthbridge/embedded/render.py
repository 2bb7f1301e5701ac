"""`synthbridge render`: the procedural synthetic source -- digits drawn from fonts.

A baseline (and a test source) for the synthetic strategies before any diffusion model exists:
each class name of the dataset (single characters, such as the digits "0".."9") is drawn with a
random font, white on black, with small shifts and rotations (`glyphs.baseline_digit_style`).
Out: DIR/<class>/<index>.png and DIR/manifest.jsonl in the synthetic-folder layout, plus render.json.
Image i of class c depends only on (seed, c, i): a rerun completes an interrupted folder.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass

import numpy as np

from synthbridge.data import MANIFEST, load_dataset
from synthbridge.errors import UserError
from synthbridge.io import atomic_path, ensure_writable_dir, environment, progress, read_json, safe_name, write_json, write_text
from synthbridge.seeding import derive_seed


@dataclass(frozen=True)
class RenderConfig:
    dataset: str = "mnist5k"  # whose classes to draw (each class name must be one character)
    per_class: int = 100  # images per class
    out: str = "render"  # output folder
    size: int = 32  # image side in pixels
    seed: int = 0
    style: str = "font"  # "font": the plain font baseline; "hand": pen strokes along font skeletons


def render_folder(cfg: RenderConfig, overwrite: bool = False) -> dict:
    from synthbridge.embedded import glyphs

    # 1. check the input
    if cfg.per_class < 1 or cfg.size < 8:
        raise UserError("render needs --per-class >= 1 and --size >= 8")
    if cfg.style not in ("font", "hand"):
        raise UserError(f"unknown render style {cfg.style!r}; choose font or hand")
    bundle = load_dataset(cfg.dataset)
    if bad := [c for c in bundle.classes if len(c) != 1 or not glyphs.fonts_for(c)]:
        raise UserError(f"render draws single characters, but dataset {cfg.dataset!r} has classes like {bad[0]!r}; "
                        f"use `synthbridge generate` for it")
    out = ensure_writable_dir(cfg.out)
    summary_file = out / "render.json"
    if summary_file.exists() and not overwrite:
        previous = read_json(summary_file)["config"]
        changed = [k for k in asdict(cfg) if k not in ("per_class", "out") and previous.get(k) != asdict(cfg)[k]]
        if changed:
            raise UserError(f"{str(out)!r} was rendered with other {', '.join(changed)}; pass --overwrite or pick a new --out")
    elif any(p for p in out.iterdir() if not p.name.startswith(".")) and not summary_file.exists() and not overwrite:
        raise UserError(f"{str(out)!r} is not empty and was not made by render; pick a new --out or pass --overwrite")

    # 2. draw what is missing; every image is written atomically
    style_of = glyphs.hand_digit_style if cfg.style == "hand" else glyphs.baseline_digit_style
    began, made, lines = time.perf_counter(), 0, []
    work = [(c, i) for c in bundle.classes for i in range(cfg.per_class)]
    for name, index in progress(work, desc="render", unit="img"):
        seed = derive_seed(cfg.seed, "render", name, index)
        rel = f"{safe_name(name)}/{index:05d}.png"
        path = out / rel
        if overwrite or not path.exists():
            rng = np.random.default_rng(seed)
            image = glyphs.render(name, style_of(rng), cfg.size, rng)
            path.parent.mkdir(exist_ok=True)
            with atomic_path(path) as tmp:
                image.save(tmp, format="PNG")
            made += 1
        lines.append({"class": name, "path": rel, "seed": seed, "index": index, "generator": f"render:{cfg.style}"})

    # 3. the manifest and the summary, rewritten whole so they always match the files
    write_text(out / MANIFEST, "".join(json.dumps(line) + "\n" for line in lines))
    summary = {"config": asdict(cfg), "images": len(lines), "rendered_now": made,
               "seconds": round(time.perf_counter() - began, 2), "environment": environment()}
    write_json(summary_file, summary)
    return summary
