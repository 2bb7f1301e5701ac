"""What an image is drawn with besides its prompt and seed, when generation is adapted to the real data.

    RealStarts   --init-images real: the real training image each (class, index) starts from (Real Guidance,
                 DA-Fusion: image-to-image at --strength, or at a strength each image draws from a set), from the
                 whole train split or its K-shot subset
    Adapters     --lora: one adapter for the set, or one per class (DataDream), activated batch by batch
    per_class_style  --style of an `invert --per-class` folder: one learned token per class (DA-Fusion)

In: the dataset, the classes of the set and the folders the user named. Out: what `generate` needs for each
batch, and the identity (hashes) each contributes to the set. Everything is checked before a model loads.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from synthbridge.data import DatasetBundle, ImageSet, few_shot
from synthbridge.data.base import ConcatImages, FileImages, SubsetImages
from synthbridge.errors import UserError
from synthbridge.io import read_json, safe_name
from synthbridge.seeding import derive_seed

SET_ADAPTER = "synthbridge"  # the adapter name of a dataset-wise --lora


# --- image-to-image: the real image each synthetic image starts from ----------------------------------------------

@dataclass(frozen=True)
class RealStarts:
    """Image `index` of class `c` starts from `members[c][index mod K_c]`, an index into `train` (ascending: a fixed
    order), so a retry, a resume, a shard or a regeneration starts from the same real image."""

    train: ImageSet  # the dataset's whole train split (`bundle.train`): what the manifest's indices refer to
    members: dict[str, list[int]]  # class name -> its real images, as indices into `train`
    strengths: tuple[float, ...] = (0.5,)  # how far each start is noised: one value, or a set each image draws from;
    # () where the starts are not noised (Diff-II's inversions, an editing or image-variation generator)
    seed: int = 0  # the set's seed: with several strengths, image (c, i) takes strengths[derive_seed(...) mod n]
    mode: str = "real"  # --init-images: "real" (its own class), "other" (another class, labelled softly: Diff-Mix),
    # "pairs" (two real images of its class, inverted to noise and interpolated: Diff-II)
    gamma: float = 0.5  # the soft label's exponent ("other")

    @classmethod
    def build(cls, bundle: DatasetBundle, classes: Sequence[str], shots: int | None, shots_seed: int,
              strengths: Sequence[float] = (0.5,), seed: int = 0, mode: str = "real", gamma: float = 0.5) -> RealStarts:
        """From the K-shot subset `synthbridge train --shots K --seed shots_seed` trains on (`data.few_shot`), or the
        whole train split; a class without real images is a UserError, and so are "other" with one class and
        "pairs" with a class of one real image."""
        if shots is None:
            indices, targets = list(range(len(bundle.train))), list(bundle.train.targets)
        else:
            subset = few_shot(bundle.train, shots, shots_seed, bundle.classes)  # fails for a class with < K images
            indices, targets = subset.indices, subset.targets
        members = {name: [] for name in classes}
        for index, target in zip(indices, targets):
            name = bundle.classes[target]
            if name in members:
                members[name].append(int(index))
        if empty := [name for name, found in members.items() if not found]:
            raise UserError(f"class {empty[0]!r} has no real training images to start image-to-image from; leave it "
                            f"out with --classes, or drop --init-images")
        if mode == "other" and len(members) < 2:
            raise UserError("--init-images other translates real images of another class of the set: give it at "
                            "least two classes")
        if mode == "pairs" and (single := [name for name, found in members.items() if len(found) < 2]):
            raise UserError(f"--init-images pairs interpolates two real images of a class, and class {single[0]!r} "
                            f"has one; use --shots 2 or more")
        return cls(bundle.train, {name: sorted(found) for name, found in members.items()}, tuple(strengths), seed,
                   mode, float(gamma))

    @property
    def other(self) -> bool:
        return self.mode == "other"

    @property
    def pairs(self) -> bool:
        return self.mode == "pairs"

    def source(self, class_name: str, index: int) -> int:
        """The real image image `index` of `class_name` starts from: the (index mod K)-th of its class; `other`: one of
        another class of the set, both drawn by the image's own seed (so retries, resumes and shards keep it)."""
        if not self.other:
            found = self.members[class_name]
            return found[index % len(found)]
        others = [name for name in self.members if name != class_name]
        draw = derive_seed(self.seed, "other", class_name, index)
        found = self.members[others[draw % len(others)]]
        return found[(draw // len(others)) % len(found)]

    def partner(self, class_name: str, index: int) -> tuple[int, float]:
        """"pairs": the second real image of the class that image `index` interpolates toward (another than `source`)
        and the interpolation weight in (0, 1), both drawn by the image's own seed (Diff-II)."""
        found = self.members[class_name]
        first = found.index(self.source(class_name, index))
        draw = derive_seed(self.seed, "pair", class_name, index)
        other = found[(first + 1 + draw % (len(found) - 1)) % len(found)]
        weight = ((draw >> 20) % 999 + 1) / 1000  # 0.001 .. 0.999
        return other, weight

    def soft_label(self, class_name: str, source: int, strength: float) -> dict[str, float] | None:
        """`other`: the image's label, {source class: 1 - s^gamma, its class: s^gamma} for strength s (Diff-Mix);
        None for an image started from its own class."""
        if not self.other:
            return None
        weight = round(strength ** self.gamma, 6)
        owner = next(name for name, found in self.members.items() if source in found)
        return {owner: round(1.0 - weight, 6), class_name: weight}

    def strength(self, class_name: str, index: int) -> float | None:
        """Image (class, index)'s strength: the one given, or one of the set drawn by the image's own seed (DA-Fusion
        draws a strength per image), so retries, resumes and shards keep it; None where the starts are not noised."""
        if not self.strengths:
            return None
        if len(self.strengths) == 1:
            return self.strengths[0]
        return self.strengths[derive_seed(self.seed, "strength", class_name, index) % len(self.strengths)]

    @property
    def recorded_strength(self) -> float | list | None:
        """The set's "strength" in generation.json: its one strength, the list images draw from, or None."""
        if not self.strengths:
            return None
        return self.strengths[0] if len(self.strengths) == 1 else list(self.strengths)

    def image(self, train_index: int, width: int, height: int) -> Image.Image:
        """The real image, RGB, resized to the generation size (PIL LANCZOS; the aspect is not kept, as DA-Fusion)."""
        image, _ = self.train.item(train_index)
        return image if image.size == (width, height) else image.resize((width, height), Image.Resampling.LANCZOS)

    def describe(self, train_index: int) -> dict:
        """The manifest's "source": its index in the train split and its file, where it is one."""
        return {"index": train_index, "path": file_of(self.train, train_index)}


class Inversions:
    """--init-images pairs (Diff-II): each real image inverted to noise once (`sampling.ddim_invert`, alone, so its
    inversion never depends on a batch), and image (c, i) starting from the slerp of its two real images' inversions
    at its weight (`RealStarts.partner`)."""

    def __init__(self, pipe, starts: RealStarts, steps: int, width: int, height: int):
        self.pipe, self.starts, self.steps, self.size = pipe, starts, steps, (width, height)
        self._inverted: dict[int, object] = {}

    def latent(self, train_index: int):
        from synthbridge.diffusion.sampling import ddim_invert

        if train_index not in self._inverted:
            self._inverted[train_index] = ddim_invert(self.pipe, self.starts.image(train_index, *self.size), self.steps)
        return self._inverted[train_index]

    def start(self, class_name: str, index: int):
        from synthbridge.diffusion.sampling import slerp

        partner, weight = self.starts.partner(class_name, index)
        return slerp(self.latent(self.starts.source(class_name, index)), self.latent(partner), weight)


def file_of(images: ImageSet, index: int) -> str | None:
    """The file item `index` of `images` is read from, or None (images held in memory, a torchvision set)."""
    if isinstance(images, FileImages):
        return str(images.paths[index])
    if isinstance(images, SubsetImages):
        return file_of(images.base, images.indices[index])
    if isinstance(images, ConcatImages):
        for part, start in zip(images.parts, images.offsets[:-1].tolist()):
            if start <= index < start + len(part):
                return file_of(part, index - start)
    return None


# --- LoRA adapters: one for the set, or one per class ---------------------------------------------------------------

@dataclass(frozen=True)
class Adapters:
    """The adapter(s) of --lora. Per class, each class's adapter is loaded once under its own name and `activate`
    switches to it before each batch (a batch holds one class); dataset-wise, one adapter is always active: a
    `synthbridge lora` folder, a folder holding pytorch_lora_weights.safetensors alone, or a .safetensors file as
    diffusers' and kohya's training scripts save it (diffusers converts kohya's names)."""

    folder: Path
    scale: float
    per_class: dict[str, Path] | None  # class name -> its adapter folder; None: a dataset-wise adapter in `folder`
    sha256: str  # the set's identity: the weights file's hash, or per class the hash of (class, file hash) pairs

    @classmethod
    def read(cls, folder: str | Path, classes: Sequence[str], scale: float) -> Adapters:
        """The adapters of `folder` for `classes`, by their weights' hashes; a missing adapter is a UserError."""
        from synthbridge.adaptation import LORA_INFO, LORA_WEIGHTS
        from synthbridge.diffusion.pipeline import file_sha256

        folder = Path(folder).expanduser().resolve()
        if folder.is_file():  # a weights file as diffusers' (or kohya's) training scripts save it: dataset-wise
            if folder.suffix != ".safetensors":
                raise UserError(f"--lora {str(folder)!r} is not a .safetensors file; pass a LoRA weights file or a "
                                f"`synthbridge lora` folder")
            return cls(folder, float(scale), None, file_sha256(folder))
        info_file = folder / LORA_INFO
        info = read_json(info_file) if info_file.is_file() else {}
        if not info.get("per_class"):
            if not (folder / LORA_WEIGHTS).is_file():
                raise UserError(f"--lora {str(folder)!r} has no {LORA_WEIGHTS}; make one with `synthbridge lora`")
            return cls(folder, float(scale), None, file_sha256(folder / LORA_WEIGHTS))
        recorded = info.get("adapters") or {}  # class -> folder relative to `folder`, as train_lora writes it
        per_class, digest = {}, hashlib.sha256()
        for name in classes:
            adapter = folder / recorded.get(name, safe_name(name))
            if not (adapter / LORA_WEIGHTS).is_file():
                raise UserError(f"--lora {str(folder)!r} has no adapter for class {name!r} ({adapter / LORA_WEIGHTS}); "
                                f"train it with `synthbridge lora --per-class`, or leave the class out with --classes")
            per_class[name] = adapter
            digest.update(f"{name}\0{file_sha256(adapter / LORA_WEIGHTS)}\n".encode())
        return cls(folder, float(scale), per_class, digest.hexdigest())

    def name(self, class_name: str) -> str:
        """The adapter's name in the pipeline (peft's): one per class, by its position in the set."""
        return SET_ADAPTER if self.per_class is None else f"{SET_ADAPTER}_{list(self.per_class).index(class_name)}"

    def load(self, pipe) -> None:
        """Every adapter into `pipe` (diffusers' load_lora_weights), the dataset-wise one active at `scale`."""
        from diffusers.utils import logging as diffusers_logging
        from safetensors.torch import load_file

        level = diffusers_logging.get_verbosity()
        diffusers_logging.set_verbosity_error()  # "no LoRA keys for the text encoder": true of a UNet-only adapter
        try:
            with warnings.catch_warnings():  # peft's "multiple adapters in the model": one per class, as meant
                warnings.filterwarnings("ignore", message=".*Already found a `peft_config`.*")
                for class_name, folder in (self.per_class or {None: self.folder}).items():
                    weights = str(folder) if folder.is_dir() else load_file(str(folder))  # a file: its state dict
                    pipe.load_lora_weights(weights, adapter_name=self.name(class_name))
        finally:
            diffusers_logging.set_verbosity(level)
        if self.per_class is None:
            pipe.set_adapters([SET_ADAPTER], adapter_weights=[self.scale])

    def activate(self, pipe, class_name: str) -> None:
        """Before a batch of `class_name`: only that class's adapter is active (per class; dataset-wise a no-op)."""
        if self.per_class is not None:
            pipe.set_adapters([self.name(class_name)], adapter_weights=[self.scale])



def drop_adapters(pipe) -> None:
    """Remove the adapters an earlier `generate` left in a pipeline the caller reuses (an experiment grid), so a
    set without --lora is never drawn with the last set's adapter."""
    loaded = getattr(pipe, "get_list_adapters", None)
    try:
        present = {name for names in (loaded() if loaded else {}).values() for name in names}
    except (ValueError, AttributeError):  # no peft backend: nothing was ever loaded
        return
    if ours := sorted(n for n in present if n == SET_ADAPTER or n.startswith(SET_ADAPTER + "_")):
        pipe.delete_adapters(ours)


# --- per-class learned tokens (`invert --per-class`) ----------------------------------------------------------------

@dataclass(frozen=True)
class ClassTokens:
    """An `invert --per-class` folder (`diffusion.styles` reads, checks and loads it): one token per class."""

    folder: Path
    tokens: dict[str, str]  # class name -> its token, e.g. "<class-3>"
    template: str | None  # the template the tokens were learned in ({class} is where the token goes)


def per_class_style(style_dir: str | Path) -> ClassTokens | None:
    """The per-class tokens of a style folder, or None for a dataset style folder (a UserError for a broken one)."""
    from synthbridge.diffusion.styles import class_tokens, read_style

    tokens = class_tokens(style_dir)
    if tokens is None:
        return None
    _, _, info = read_style(style_dir)
    return ClassTokens(Path(style_dir).expanduser(), tokens, info.get("template"))


def class_templates(dataset: str, templates: Sequence[str], templates_file: str | None,
                    recorded: str | None) -> list[str]:
    """The templates of per-class tokens: the user's, else the one the tokens were learned in, else the dataset's
    default. The token takes the place of {class}, so a template with {style} is an error."""
    from synthbridge.prompts import default_template, read_templates_file, resolve_template

    given = list(templates) + (read_templates_file(templates_file) if templates_file is not None else [])
    resolved = [resolve_template(t) for t in given or [recorded or default_template(dataset)]]
    if having := [t for t in resolved if "{style}" in t]:
        raise UserError(f"template {having[0]!r} uses {{style}}, but per-class tokens take the place of {{class}}; "
                        f"drop {{style}} (or use a dataset style folder)")
    return resolved


__all__ = ["Adapters", "ClassTokens", "Inversions", "RealStarts", "class_templates", "drop_adapters", "file_of",
           "per_class_style"]
