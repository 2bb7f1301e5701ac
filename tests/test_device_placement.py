"""Device placement: every model and tensor goes to the device accelerate picked (tests/device_helpers.fake_cuda
makes that a CUDA device on this CPU-only machine; a model left on the CPU fails here as it would on a GPU)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from device_helpers import READ_BACK, count_forwards, fake_cuda


def _network():
    from synthbridge.models import create_model

    torch.manual_seed(0)
    return create_model("mini_resnet", 10, pretrained=False)


def test_leep_runs_the_model_where_accelerate_puts_the_batches(monkeypatch):
    """The demo's crash on a GPU: `transfer._leep` ran a model left on the CPU on batches accelerate sent to CUDA."""
    from synthbridge.transfer import _leep

    network = _network()
    forwards = count_forwards(network)
    with fake_cuda(monkeypatch), pytest.raises(READ_BACK):  # got as far as reading the score back: one device
        _leep(network, "digits", None)
    assert forwards[0] > 1 and next(network.parameters()).device.type == "cuda"


def test_the_same_leep_is_a_real_number_on_the_cpu():
    from synthbridge.transfer import _leep

    score = _leep(_network(), "digits", None)
    assert score < 0


def test_evaluation_places_a_model_it_is_given_on_the_accelerators_device(monkeypatch):
    from accelerate import Accelerator

    from synthbridge.data import load_dataset
    from synthbridge.evaluation import predict
    from synthbridge.models import data_config
    from synthbridge.training.augment import EvalInMemory

    network, test = _network(), load_dataset("digits").test
    forwards = count_forwards(network)
    with fake_cuda(monkeypatch):
        logits, labels = predict(network, test, EvalInMemory(data_config(network)), Accelerator(), 64)
    assert logits.shape == (len(test), 10) and logits.device.type == "cpu"  # gathered back to the host
    assert forwards[0] == -(-len(test) // 64) and next(network.parameters()).device.type == "cuda"


class ReachedBackward(Exception):
    """Raised in place of the backward pass (which needs a real GPU's context), with the loss it was given."""


def _step_reaches_backward(monkeypatch, tmp_path: Path, sources, per_batch, pipeline: str, mixup: bool,
                           swap=None) -> None:
    """One step of `train_stage` with the model prepared as `train` prepares it (channels_last, on the fake cuda
    device) on `sources`: the batch, its targets, mixup, the forward pass and the loss on cuda, up to the backward."""
    from accelerate import Accelerator

    from synthbridge.models import data_config
    from synthbridge.training.config import StageConfig
    from synthbridge.training.loop import train_stage
    from synthbridge.training.trainer import prepare

    def backward(self, loss, **kwargs):
        raise ReachedBackward(loss)

    stage = StageConfig(steps=3, lr=1e-3, batch_size=8, weight_decay=0.05, augment="light", mixup=mixup,
                        label_smoothing=0.1, warmup_steps=0)
    network = _network()
    forwards = count_forwards(network)
    monkeypatch.setattr(Accelerator, "backward", backward)
    with fake_cuda(monkeypatch):
        accelerator = Accelerator()
        model = prepare(accelerator, network, compile=False, channels_last=True)
        assert next(model.parameters()).device.type == "cuda"
        with pytest.raises(ReachedBackward) as reached:
            train_stage(model, sources, per_batch, 10, stage, "real", 0, accelerator, data_config(network),
                        tmp_path / "ckpt.pt", None, 0, pipeline, channels_last=True, swap=swap)
    loss = reached.value.args[0]
    assert forwards[0] == 1 and loss.device.type == "cuda" and loss.shape == ()


@pytest.mark.parametrize("pipeline", ["memory", "loader"])
@pytest.mark.parametrize("mixup", [False, True])
def test_a_training_step_runs_on_the_accelerators_device(monkeypatch, tmp_path: Path, pipeline, mixup):
    from synthbridge.data import load_dataset

    _step_reaches_backward(monkeypatch, tmp_path, [load_dataset("digits").train], [8], pipeline, mixup)


@pytest.mark.parametrize("pipeline", ["memory", "loader"])
@pytest.mark.parametrize("mixup", [False, True])
def test_soft_labels_and_replacement_run_on_the_accelerators_device(monkeypatch, tmp_path: Path, pipeline, mixup):
    """A `replace` step on real images swapped for soft-labelled versions (Diff-Mix's sets): the soft targets, their
    mixing and the loss on cuda, up to the backward pass."""
    import json

    from helpers import write_synthetic_folder
    from synthbridge.data import load_dataset, load_synthetic
    from synthbridge.training.strategies import Replacement

    real = load_dataset("digits").train.subset(list(range(20)))
    folder = write_synthetic_folder(tmp_path / "S", [str(d) for d in range(10)], per_class=2, size=8)
    lines = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
    for k, line in enumerate(lines):  # each a version of real image k, labelled softly toward the next class
        line["source"] = {"index": k, "path": None}
        line["label"] = {line["class"]: 0.6, str((int(line["class"]) + 1) % 10): 0.4}
    (folder / "manifest.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    synthetic = load_synthetic(folder, [str(d) for d in range(10)])
    _step_reaches_backward(monkeypatch, tmp_path, [real, synthetic], [8, 0], pipeline, mixup,
                           swap=Replacement(real, synthetic, 0.5, shots=None))
