"""Stage: adapting the generator to the real images (LoRA, dataset-wise or per class).

    summary = train_lora(LoraTrainConfig(dataset="mnist5k", generator="mini", out="lora/mnist5k"))
    pipe.load_lora_weights("lora/mnist5k")   # plain diffusers

Modules: `config` (LoraTrainConfig, profiles), `lora` (training, saving in diffusers' format, grids).
"""

from synthbridge.adaptation.config import LoraTrainConfig
from synthbridge.adaptation.lora import LORA_INFO, LORA_WEIGHTS, train_lora

__all__ = ["LORA_INFO", "LORA_WEIGHTS", "LoraTrainConfig", "train_lora"]
