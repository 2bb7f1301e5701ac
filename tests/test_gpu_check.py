"""benchmarks/gpu_check.py: its --dry-run checks every step on the CPU, and its README row lands in its table."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.slow  # subprocesses, browsers or compilers: `make test` runs it, `make test-fast` not

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check.py"
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def gpu_check():
    """The script as a module (benchmarks/ is no package)."""
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop("gpu_check", None)


def test_dry_run_runs_and_checks_every_step(tmp_path):
    out, readme = tmp_path / "gpu-check.json", tmp_path / "README.md"
    readme.write_text("# Benchmarks\n\nSome text.\n")
    done = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--out", str(out), "--append-readme",
                           "--readme", str(readme)], env=ENV, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    result = json.loads(out.read_text())
    assert {"script", "date", "dry_run", "machine", "steps", "ok", "seconds"} <= set(result)
    assert result["dry_run"] is True and result["ok"] is True
    assert list(result["steps"]) == ["generation", "diffusion_commands", "training", "train_command", "ddp", "demo",
                                     "compile"]
    for name, step in result["steps"].items():
        assert step["ok"] is True, (name, step)
        assert "skipped" not in step, name  # the dry run runs DDP too (gloo)
    generation = result["steps"]["generation"]
    assert set(generation["images_per_second"]) == {"naive", "batch_1", "batch_4"}
    assert generation["attention"] == "AttnProcessor2_0" and generation["images"]["batch_4"] == 4
    rates = generation["images_per_second"]
    assert generation["vs_naive"]["batch_4"] == pytest.approx(rates["batch_4"] / rates["naive"], rel=0.01)
    commands = result["steps"]["diffusion_commands"]  # generate, invert and lora themselves against their references
    assert commands["generate"]["images"] == 8 and commands["generate"]["images_per_second"] > 0
    assert commands["generate"]["vs_render"] == pytest.approx(
        commands["generate"]["images_per_second"] / commands["generate"]["render_images_per_second"], rel=0.01)
    tune = commands["finetune"]
    for method in ("invert", "lora"):
        assert tune[method]["steps_per_second"] > 0
        assert tune[method]["vs_floor"] == pytest.approx(tune[method]["steps_per_second"] / tune["floor_steps_per_second"],
                                                         rel=0.01)
    training = result["steps"]["training"]
    assert set(training["variants"]) == {"fp32", "bf16", "bf16_channels_last"}
    assert all(v["images_per_second"] > 0 for v in training["variants"].values())
    assert set(training["vs_fp32"]) == {"bf16", "bf16_channels_last"}
    command = result["steps"]["train_command"]  # `synthbridge train` itself, per model and pipeline, vs its floor
    assert set(command["runs"]) == {"resnet18/memory", "resnet18/loader", "resnet18/memory-mixed-sizes"}
    assert command["runs"]["resnet18/memory-mixed-sizes"]["mixed_sizes"] is True
    for run in command["runs"].values():
        assert set(run["stages"]) == {"synthetic", "real"} and run["floor_images_per_second"] > 0
        assert run["mixed_precision"] == "no" and run["channels_last"] is False  # what `train` picks on the CPU
        for name, stage in run["stages"].items():
            assert stage["steps"] == 4 and stage["images_per_second"] > 0
            assert run["vs_floor"][name] == pytest.approx(stage["images_per_second"] / run["floor_images_per_second"],
                                                          abs=1e-3)
    ddp = result["steps"]["ddp"]
    assert ddp["backend"] == "gloo" and ddp["world_size"] == 2
    assert ddp["all_reduce_ok"] and ddp["weights_equal_across_ranks"]
    demo = result["steps"]["demo"]
    assert demo["cells"] == 2 and demo["wall_seconds"] > 0 and len(demo["top1"]) == 2
    compiled = result["steps"]["compile"]  # eager and torch.compile (inductor on the CPU), each timed after warm-up
    for part, rate in (("training", "images_per_second"), ("unet", "calls_per_second")):
        figures = compiled[part]
        assert figures["eager"][rate] > 0 and figures["compiled"][rate] > 0
        assert figures["vs_eager"] == pytest.approx(figures["compiled"][rate] / figures["eager"][rate], rel=0.01)
        assert "compile_seconds" in figures
    assert compiled["training"]["model"] == "test_resnet" and compiled["unet"]["pipeline"] == "tiny"
    text = readme.read_text()
    assert text.startswith("# Benchmarks\n\nSome text.\n") and "## GPU readiness" in text
    row = text.rstrip().splitlines()[-1]
    assert row.startswith(f"| {result['date']} | dry run") and row.count(" | ") == 9 and "FAILED" not in row


def test_dry_run_writes_no_readme_row_unless_asked(gpu_check, tmp_path):
    args = gpu_check.parse_args(["--dry-run", "--out", str(tmp_path / "x.json")])
    assert gpu_check.config_from_args(args).append_readme is False
    args = gpu_check.parse_args(["--dry-run", "--append-readme", "--out", str(tmp_path / "x.json")])
    assert gpu_check.config_from_args(args).append_readme is True


def test_rows_go_at_the_end_of_the_table_not_of_the_file(gpu_check):
    text = gpu_check.insert_row("# Benchmarks\n", "| row 1 |")
    text = text + "\n## Later section\n\nmore text\n"
    text = gpu_check.insert_row(text, "| row 2 |")
    lines = text.splitlines()
    assert lines.count("## GPU readiness") == 1
    header = lines.index(gpu_check.README_HEADER.splitlines()[0])
    assert lines[header + 2: header + 4] == ["| row 1 |", "| row 2 |"]
    assert lines.index("## Later section") > header + 3 and text.endswith("more text\n")


def test_a_failed_step_is_recorded_in_one_line_and_shown_in_the_row(gpu_check, capsys):
    def broken():
        raise RuntimeError("CUDA out of memory.\nTried to allocate 2 GiB")

    step = gpu_check.run_step("generation", broken)
    assert step["ok"] is False and step["error"] == "RuntimeError: CUDA out of memory." and step["seconds"] >= 0
    result = {"date": "2026-01-01", "dry_run": False, "steps": {"generation": step, "ddp": {"ok": True, "skipped": "1 GPU"}},
              "machine": {"gpu": "H200", "gpu_count": 1, "cuda": "13.0", "versions": {"torch": "2.11"}}}
    row = gpu_check.format_row(result)
    assert "FAILED: RuntimeError" in row and "| 1 GPU |" in row and "not run" in row


def test_unknown_step_is_one_line_error(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--dry-run", "--only", "generaton", "--out", str(tmp_path / "x")],
                          env=ENV, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0 and "'generaton'" in done.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here: the real run would start")
def test_a_real_run_without_a_gpu_points_to_dry_run(tmp_path):
    done = subprocess.run([sys.executable, str(SCRIPT), "--out", str(tmp_path / "x.json")], env=ENV, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and "--dry-run" in done.stderr and done.stderr.strip().count("\n") == 0
    assert not (tmp_path / "x.json").exists()
