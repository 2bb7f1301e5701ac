"""The benchmarks run (tiny sizes): a benchmark that no longer imports is found here, not by the next GPU session."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_generation_benchmark_prints_its_ratio():
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(BENCHMARKS / "generate.py"), "--images", "4", "--batch-size", "2",
                           "--steps", "1", "--threads", "1", "--json"], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["images"] == 4 and result["ratio"] == round(result["batched_images_per_second"]
                                                              / result["single_images_per_second"], 3)
