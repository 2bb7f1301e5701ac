"""Several processes on one CPU (torchrun, gloo): training, resume across process counts, generation."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from synthbridge.training import StageConfig, TrainConfig, train
from synthbridge.training import loop as loop_module

pytestmark = pytest.mark.slow  # subprocesses, browsers or compilers: `make test` runs it, `make test-fast` not

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def torchrun(n: int, *args: str, timeout: int = 300) -> str:
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(n),
               "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
               "-m", "synthbridge", *args]
    done = subprocess.run(command, env=ENV, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_ddp_training_matches_one_process_and_counts_each_test_image_once(tmp_path):
    args = ["train", "--dataset", "digits", "--shots", "10", "--strategy", "real", "--real-steps", "60", "--report-to", "none"]
    torchrun(1, *args, "--out", str(tmp_path / "one"))
    two = torchrun(2, *args, "--out", str(tmp_path / "two"))
    assert two.count("top1") == 1  # printed once per launch
    m1 = json.loads((tmp_path / "one" / "metrics.json").read_text())
    m2 = json.loads((tmp_path / "two" / "metrics.json").read_text())
    assert m1["num_test"] == m2["num_test"] == 1438  # no padded duplicates, none dropped
    assert abs(m1["top1"] - m2["top1"]) < 4.0  # the same global batch; only BatchNorm statistics differ per process
    assert json.loads((tmp_path / "two" / "config.json").read_text())["num_processes"] == 2


def test_resume_on_two_processes_a_run_started_on_one(tmp_path, monkeypatch):
    cfg = TrainConfig(dataset="digits", model="mini_resnet", shots=5, seed=0, report_to="none",
                      real=StageConfig(steps=12, batch_size=16, warmup_steps=1), checkpoint_every=4)
    calls = {"n": 0}
    original = loop_module.save_checkpoint

    def crash(*args, **kwargs):
        original(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt

    monkeypatch.setattr(loop_module, "save_checkpoint", crash)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tmp_path / "run")
    torchrun(2, "train", "--dataset", "digits", "--shots", "5", "--strategy", "real", "--real-steps", "12",
             "--real-batch-size", "16", "--real-warmup-steps", "1", "--checkpoint-every", "4", "--report-to", "none",
             "--out", str(tmp_path / "run"), "--resume")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["stages"]["real"]["resumed_from_step"] == 8 and metrics["num_test"] == 1438


def test_two_process_generation_equals_one_process(tmp_path, tiny_sd_path):
    args = ["generate", "--dataset", "digits", "--generator", str(tiny_sd_path), "--per-class", "3", "--steps", "2",
            "--batch-size", "4"]
    torchrun(1, *args, "--out", str(tmp_path / "one"))
    torchrun(2, *args, "--out", str(tmp_path / "two"))
    one = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.png"))
    two = sorted(p.relative_to(tmp_path / "two") for p in (tmp_path / "two").rglob("*.png"))
    assert one == two and len(one) == 30
    for rel in one:
        assert np.array_equal(np.asarray(Image.open(tmp_path / "one" / rel)), np.asarray(Image.open(tmp_path / "two" / rel)))
    lines = lambda d: sorted((json.loads(line)["path"], json.loads(line)["seed"])
                             for line in (d / "manifest.jsonl").read_text().splitlines())
    assert lines(tmp_path / "one") == lines(tmp_path / "two")
