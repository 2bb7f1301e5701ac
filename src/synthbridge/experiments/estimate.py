"""What a grid costs before it runs: GPU-hours per phase, each count of `cells.plan` (images to generate, tokens and
adapters to learn, training images per stage) times a rate measured by `benchmarks/gpu_check.py` on a GPU.

Rates: a JSON that gpu_check wrote (`run GRID --plan --rates FILE`), or the name of one shipped with synthbridge
(`--rates h200`: configs/rates/h200.json, an NVIDIA H200's figures). Counts need the datasets' class and train split
sizes: from the dataset itself where it is on disk, else from `KNOWN_SIZES` (the standard datasets' published
splits), so a plan works before anything is downloaded.

The rates are scaled to the grid where that is plain arithmetic, and the plan says how:
- generation: images/s at gpu_check's sampling steps, scaled by steps (the UNet is nearly all of sampling);
- token and adapter learning: steps/s at gpu_check's batch, slowed in proportion for a bigger batch, and not
  counted faster for a smaller one (a GPU is not fully used by a few images: an upper bound of the time);
- training: `synthbridge train`'s images/s for a model gpu_check ran; another model's from resnet50's, scaled by
  their forward FLOPs at the grid's input size (counted with torch's FlopCounterMode on a meta-device model).
A figure a rate file lacks is said, not guessed.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field
from pathlib import Path

from synthbridge.errors import UserError

RATES_DIR = Path(__file__).resolve().parent.parent / "configs" / "rates"

# (classes, train images, test images) of the standard datasets as synthbridge splits them (`data.full`): the
# official splits, and for the datasets without one a stratified 50 % (Caltech-101, SUN397) or 80 % (EuroSAT)
# train split of torchvision's images (counts rounded per class there, so within a few images).
KNOWN_SIZES = {
    "aircraft": (100, 6667, 3333), "cars": (196, 8144, 8041), "food101": (101, 75750, 25250),
    "sun397": (397, 54377, 54376), "dtd": (47, 1880, 1880), "pets": (37, 3680, 3669),
    "caltech101": (101, 4339, 4338), "flowers102": (102, 1020, 6149), "cifar10": (10, 50000, 10000),
    "cifar100": (100, 50000, 10000), "eurosat": (10, 21600, 5400), "stanford_dogs": (120, 12000, 8580),
    "cub200": (200, 5994, 5794),
}


@dataclass(frozen=True)
class SizedDataset:
    """What a plan needs of a dataset that is not on disk: its classes' count and its splits' sizes."""

    name: str
    num_classes: int
    train: range
    test: range
    image_size: int | None = None
    classes: list[str] = field(default_factory=list)


def planning_bundle(name: str, data_root: str | None):
    """The dataset (loaded, when it is here) or its known sizes; None when neither."""
    from synthbridge.data import load_dataset

    try:
        return load_dataset(name, data_root=data_root, cached=True)
    except UserError:
        if name not in KNOWN_SIZES:
            return None
        classes, train, test = KNOWN_SIZES[name]
        return SizedDataset(name, classes, range(train), range(test), classes=[f"class {k}" for k in range(classes)])


@dataclass(frozen=True)
class Rates:
    """What gpu_check measured, as the plan uses it."""

    machine: str
    date: str
    generate_images_per_second: float | None = None
    sampling_steps: int | None = None
    invert_steps_per_second: float | None = None
    lora_steps_per_second: float | None = None
    finetune_batch: int | None = None
    train_images_per_second: dict = field(default_factory=dict)  # model -> images/s of `synthbridge train`
    train_input_size: int | None = None


def read_rates(source: str) -> Rates:
    """The rates of a gpu_check JSON (a path), or of a shipped one by name (`h200`)."""
    path = Path(source)
    if not path.is_file():
        shipped = RATES_DIR / f"{source}.json"
        if not shipped.is_file():
            names = ", ".join(sorted(p.stem for p in RATES_DIR.glob("*.json")))
            raise UserError(f"--rates {source!r} is neither a file nor a shipped rate file ({names}); give the JSON "
                            f"`python benchmarks/gpu_check.py --out FILE` wrote on your GPU")
        path = shipped
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
        steps = result["steps"]
    except (OSError, json.JSONDecodeError, KeyError, TypeError):
        raise UserError(f"--rates {str(path)!r} is not a JSON written by benchmarks/gpu_check.py") from None
    if result.get("dry_run"):
        raise UserError(f"--rates {str(path)!r} is a --dry-run's (CPU, tiny components); use a GPU run's JSON")
    machine = result.get("machine", {})
    rates = {"machine": f"{machine.get('gpu', '?')} x{machine.get('gpu_count', 1)}", "date": result.get("date", "?")}
    commands = steps.get("diffusion_commands", {})
    if commands.get("ok"):
        rates.update(generate_images_per_second=commands["generate"]["images_per_second"],
                     sampling_steps=commands["generate"]["sampling_steps"],
                     invert_steps_per_second=commands["finetune"]["invert"]["steps_per_second"],
                     lora_steps_per_second=commands["finetune"]["lora"]["steps_per_second"],
                     finetune_batch=commands["finetune"]["batch_size"])
    command = steps.get("train_command", {})
    if command.get("ok"):  # the real-image stage of the memory pipeline, on one-size images
        trained = {run["model"]: run["stages"]["real"]["images_per_second"] for run in command["runs"].values()
                   if run["pipeline"] == "memory" and not run.get("mixed_sizes")}
        rates.update(train_images_per_second=trained, train_input_size=command["input_size"])
    return Rates(**rates)


@functools.lru_cache(maxsize=32)
def forward_flops(model: str, input_size: int) -> int:
    """Multiply-adds x 2 of one image through `model`'s forward (timm, random weights on the meta device)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from synthbridge.models import meta_model

    network = meta_model(model)
    if network is None:
        raise ValueError(f"timm does not know {model!r}")
    image = torch.empty(1, 3, input_size, input_size, device="meta")
    with FlopCounterMode(display=False) as counter:
        network(image)
    return int(counter.get_total_flops())


def _train_rate(rates: Rates, model: str, input_size: int) -> tuple[float | None, str]:
    """(images/s, how it was found) of `model` at `input_size`."""
    if model in rates.train_images_per_second and input_size == rates.train_input_size:
        return rates.train_images_per_second[model], "measured"
    base = "resnet50" if "resnet50" in rates.train_images_per_second else next(iter(rates.train_images_per_second), None)
    if base is None:
        return None, "no training rate in the rate file"
    try:
        scale = forward_flops(base, rates.train_input_size) / forward_flops(model, input_size)
    except Exception as exc:  # noqa: BLE001  (a model timm cannot build on the meta device)
        return None, f"no rate ({type(exc).__name__} counting its FLOPs)"
    return rates.train_images_per_second[base] * scale, f"{base}'s, scaled by FLOPs"


def learning_steps(cfg) -> dict[str, tuple[int, int]]:
    """{"inversion": (steps, batch), "lora": (steps, batch)} a grid's tokens and adapters train with: its own
    `inversion` / `lora` settings, else the profile its generator's size picks."""
    from synthbridge.adaptation.config import PROFILES as LORA_PROFILES
    from synthbridge.inversion.config import PROFILES as INVERT_PROFILES
    from synthbridge.profiles import choose_profile

    profile = choose_profile(None, generator_size(cfg.generator))
    return {kind: (settings.get("steps") or defaults[profile]["steps"],
                   settings.get("batch_size") or defaults[profile]["batch_size"])
            for kind, settings, defaults in (("inversion", cfg.inversion, INVERT_PROFILES),
                                             ("lora", cfg.lora, LORA_PROFILES))}


def gpu_hours(cfg, rates: Rates, counts: dict | None = None) -> dict:
    """GPU-hours per phase of the grid `cfg` at `rates` (and the counts and rates they are made of). `counts`: the
    grid's `cells.plan` when the caller has it (counted once)."""
    from synthbridge.experiments.cells import plan
    from synthbridge.models import input_size as model_input_size

    counts = counts or plan(cfg)
    phases: dict[str, dict] = {}

    # generation: every set's images (the largest volume of its method), scaled to the grid's sampling steps
    steps = cfg.generation.get("steps") or 50
    rate = rates.generate_images_per_second and rates.generate_images_per_second * rates.sampling_steps / steps
    phases["generation"] = _phase(counts["set_images"], "images", rate, f"at {steps} sampling steps")

    # tokens and adapters: one run per (dataset, subset) and kind; per-class adapters one run per class
    learning = learning_steps(cfg)
    (invert_steps, invert_batch), (lora_steps, lora_batch) = learning["inversion"], learning["lora"]
    batch = rates.finetune_batch  # a bigger batch slows a step in proportion; a smaller one is not counted faster
    invert_rate = rates.invert_steps_per_second and rates.invert_steps_per_second * min(1.0, batch / invert_batch)
    lora_rate = rates.lora_steps_per_second and rates.lora_steps_per_second * min(1.0, batch / lora_batch)
    invert_runs, lora_runs = counts["token_runs"], counts["adapter_runs"]
    phases["inversion"] = _phase(invert_runs * invert_steps, "steps", invert_rate,
                                 f"{invert_runs} token runs x {invert_steps:,} steps of batch {invert_batch}")
    phases["lora"] = _phase(lora_runs * lora_steps, "steps", lora_rate,
                            f"{lora_runs} adapters x {lora_steps:,} steps of batch {lora_batch}")

    # training: each model's images through forward and backward (stage-1 reuse counted), at its rate
    train_hours, train_parts = 0.0, {}
    for model, count in counts["images_by_model"].items():
        size = (cfg.train.get("input_size") or model_input_size(model) or 224)
        model_rate, how = _train_rate(rates, model, size)
        part = _phase(count, "images", model_rate, how)
        train_parts[model] = part
        train_hours = None if part["hours"] is None or train_hours is None else train_hours + part["hours"]
    phases["training"] = {"images": counts["images_with_reuse"], "hours": train_hours, "models": train_parts}
    total = [phase["hours"] for phase in phases.values()]
    return {"machine": rates.machine, "date": rates.date, "phases": phases,
            "datasets_not_counted": counts["datasets_not_found"], "total_hours": None if None in total else sum(total)}


def _phase(count: int, unit: str, rate: float | None, note: str) -> dict:
    hours = None if count and not rate else (count / rate / 3600 if count else 0.0)
    return {unit: count, "rate": round(rate, 3) if rate else None, "hours": hours, "note": note}


def generator_size(generator: str) -> int:
    """The generator's image size where its folder is here (a font-render source: 32); else Stable Diffusion 1.x's
    512. What picks the token and adapter profiles of a plan."""
    from synthbridge.diffusion.pipeline import generator_info
    from synthbridge.generation.sources import SOURCES

    if generator in SOURCES:
        return 32
    try:
        return int(generator_info(generator).native_size)
    except UserError:
        return 512


def format_hours(estimate: dict) -> list[str]:
    """The plan's lines of GPU-hours."""
    def hours(value) -> str:
        return "?" if value is None else f"{value:,.1f}"

    phases = estimate["phases"]
    lines = [f"GPU-hours on {estimate['machine']} (rates measured {estimate['date']}): total "
             f"{hours(estimate['total_hours'])}"]
    gen = phases["generation"]
    lines.append(f"  generation  {hours(gen['hours']):>9}  {gen['images']:,} images at "
                 f"{gen['rate'] or '?'} images/s ({gen['note']})")
    for name in ("inversion", "lora"):
        phase = phases[name]
        lines.append(f"  {name:<10}  {hours(phase['hours']):>9}  {phase['note']} at {phase['rate'] or '?'} steps/s")
    train = phases["training"]
    lines.append(f"  training    {hours(train['hours']):>9}  {train['images']:,} images through forward and backward")
    for model, part in train["models"].items():
        lines.append(f"    {model:<28} {hours(part['hours']):>9}  {part['images']:,} images at {part['rate'] or '?'} "
                     f"images/s ({part['note']})")
    if estimate["datasets_not_counted"]:
        lines.append(f"  not counted (dataset neither here nor of known size): {', '.join(estimate['datasets_not_counted'])}")
    return lines
