"""Arms: the strategies the study compares, as registry entries on top of `synthbridge train`.

An arm names a training strategy (a registered `Strategy`), the synthetic set it reads (its `method`
of fitting the set to the real data: plain prompts, the dataset's style token, per-class tokens, LoRA,
image-to-image; see `experiments.methods`) and the switches of the ablations.
"""

from __future__ import annotations

from dataclasses import dataclass

from synthbridge.experiments.methods import METHODS, Method
from synthbridge.registry import Registry
from synthbridge.training.strategies import STRATEGIES, Strategy


@dataclass(frozen=True)
class Arm:
    strategy: str  # a name in training.STRATEGIES: real, synthetic, mixed, bridged, replace, bridged_replace
    method: str = "plain"  # how its synthetic set is fitted to the real data (a name in experiments.METHODS)
    mixup: bool = True  # mixup/cutmix in the synthetic stage
    head_reinit: bool = True  # re-initialise the classifier before the real stage
    pretrained: bool = True  # start from the pretrained backbone (False: random init, to show what pretraining gives)
    label: str = ""  # name in the report

    @property
    def training(self) -> Strategy:
        return STRATEGIES.get(self.strategy)

    @property
    def uses_synthetic(self) -> bool:
        return self.training.needs_synthetic

    @property
    def fitting(self) -> Method:
        return METHODS.get(self.method)

    @property
    def style(self) -> bool:
        """Whether its set's prompts hold the dataset's style token."""
        return self.fitting.inversion == "dataset"


ARMS: Registry[Arm] = Registry("arm")
for _name, _arm in {
    "real": Arm("real", label="real only"),
    "real_scratch": Arm("real", pretrained=False, label="real only, from scratch"),
    "synthetic": Arm("synthetic", label="synthetic only"),
    "mixed": Arm("mixed", label="naive mixing"),
    "bridged": Arm("bridged", label="bridged++"),
    "bridged_no_mixup": Arm("bridged", mixup=False, label="bridged, no mixup"),
    "bridged_no_reinit": Arm("bridged", head_reinit=False, label="bridged, keep head"),
    "bridged_plain": Arm("bridged", mixup=False, head_reinit=False, label="bridged (plain)"),
    "bridged_dsi": Arm("bridged", method="dsi", label="bridged++ + DSI"),
    "mixed_dsi": Arm("mixed", method="dsi", label="naive mixing + DSI"),
    # the field's other ways of fitting the synthetic set to the real data (issue: one harness for all of them)
    "bridged_ti_class": Arm("bridged", method="ti_class", label="bridged++ + per-class tokens"),
    "bridged_lora": Arm("bridged", method="lora", label="bridged++ + LoRA"),
    "bridged_lora_class": Arm("bridged", method="lora_class", label="bridged++ + class-wise LoRA"),
    "bridged_img2img": Arm("bridged", method="img2img", label="bridged++ + image-to-image"),
    "bridged_img2img_dsi": Arm("bridged", method="img2img_dsi", label="bridged++ + image-to-image + DSI"),
    "mixed_ti_class": Arm("mixed", method="ti_class", label="naive mixing + per-class tokens"),
    "mixed_lora": Arm("mixed", method="lora", label="naive mixing + LoRA"),
    "mixed_lora_class": Arm("mixed", method="lora_class", label="naive mixing + class-wise LoRA"),
    "mixed_img2img": Arm("mixed", method="img2img", label="naive mixing + image-to-image"),
    # DA-Fusion: its set (per-class tokens, image-to-image at a strength per image) used as the paper uses it, each
    # real image replaced on the fly with probability p; and bridged transfer before that
    "replace_dafusion": Arm("replace", method="dafusion", label="DA-Fusion (replace real with p)"),
    "bridged_replace_dafusion": Arm("bridged_replace", method="dafusion", label="bridged++ + DA-Fusion replacement"),
    "bridged_diffaug": Arm("bridged", method="diffaug", label="bridged++ + Diff-Aug"),
    # Diff-Mix: images translated between classes with soft labels, used as the paper uses them (replacing real
    # images with p) and as bridged transfer's first stage (its soft labels composed with mixup and cutmix)
    "replace_diffmix": Arm("replace", method="diffmix", label="Diff-Mix (replace real with p)"),
    "bridged_diffmix": Arm("bridged", method="diffmix", label="bridged++ + Diff-Mix"),
    # Diff-II: interpolations of two inverted real images of a class, as a synthetic set (bridged and mixed)
    "bridged_diffii": Arm("bridged", method="diffii", label="bridged++ + Diff-II"),
    "mixed_diffii": Arm("mixed", method="diffii", label="naive mixing + Diff-II"),
    # DiffuseMix: edited hybrids of the real shots, trained on with them (its own use) or first (bridged); needs an
    # instruction-editing model (the grid's `editor`), which the embedded world has not: its presets leave them out
    "mixed_diffusemix": Arm("mixed", method="diffusemix", label="naive mixing + DiffuseMix"),
    "bridged_diffusemix": Arm("bridged", method="diffusemix", label="bridged++ + DiffuseMix"),
    # GIF: variations of the real shots' CLIP embeddings, pooled with them (its own use) or first (bridged); needs an
    # image-variation model (the grid's `image_variation`), which the embedded world has not
    "mixed_gif": Arm("mixed", method="gif", label="naive mixing + GIF"),
    "bridged_gif": Arm("bridged", method="gif", label="bridged++ + GIF"),
}.items():
    ARMS.register(_name)(_arm)
