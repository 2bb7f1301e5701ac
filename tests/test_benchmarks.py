"""The benchmarks run (tiny sizes): a benchmark that no longer imports is found here, not by the next GPU session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # subprocesses, browsers or compilers: `make test` runs it, `make test-fast` not

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_generation_benchmark_prints_its_ratio():
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(BENCHMARKS / "generate.py"), "--images", "4", "--batch-size", "2",
                           "--steps", "1", "--threads", "1", "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["images"] == 4 and result["batch_size"] == 2 and result["steps"] == 1
    assert result["batched_images_per_second"] > 0 and result["single_images_per_second"] > 0


def test_finetune_benchmark_runs_invert_and_lora_against_the_floor():
    """benchmarks/finetune.py drives `invert` and `lora` themselves: each method's figures come from its own run
    (the steps it was asked for, the seconds its record says), the floor from the UNet alone."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(BENCHMARKS / "finetune.py"), "--steps", "3", "--threads", "1", "--json"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert set(result["methods"]) == {"invert", "lora"} and result["floor_steps_per_second"] > 0
    for figures in result["methods"].values():
        assert figures["steps"] == 3 and 0 < figures["train_seconds"] < 300
