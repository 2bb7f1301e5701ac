"""Stage of the flow: training. `train(cfg, out)` runs one strategy end to end and writes a run folder.

    config.py      TrainConfig and StageConfig, defaults per profile
    strategies.py  the strategies (real, synthetic, mixed, bridged) as registered `Strategy` objects
    loop.py        one fine-tuning stage: a deterministic stream of batches, AdamW, cosine, checkpoints
    trainer.py     `train()`: data, run folder, model, the strategy's stages, evaluation, record
    trackers.py    accelerate: devices, precision, processes, trackers
"""

from synthbridge.training.config import PROFILES, StageConfig, TrainConfig
from synthbridge.training.strategies import STRATEGIES, Strategy
from synthbridge.training.trackers import make_accelerator, resolve_trackers
from synthbridge.training.trainer import per_class_subset, train

__all__ = ["PROFILES", "STRATEGIES", "StageConfig", "Strategy", "TrainConfig", "make_accelerator", "per_class_subset",
           "resolve_trackers", "train"]
