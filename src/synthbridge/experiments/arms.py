"""Arms: the strategies the study compares, as registry entries on top of `synthbridge train`.

An arm names a training strategy (a registered `Strategy`), the synthetic set it reads (plain
prompts, or prompts with the dataset's style token) and the switches of the ablations.
"""

from __future__ import annotations

from dataclasses import dataclass

from synthbridge.registry import Registry
from synthbridge.training.strategies import STRATEGIES, Strategy


@dataclass(frozen=True)
class Arm:
    strategy: str  # a name in training.STRATEGIES: real, synthetic, mixed, bridged
    style: bool = False  # use the synthetic set generated with dataset style inversion
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
    "bridged_dsi": Arm("bridged", style=True, label="bridged++ + DSI"),
    "mixed_dsi": Arm("mixed", style=True, label="naive mixing + DSI"),
}.items():
    ARMS.register(_name)(_arm)
