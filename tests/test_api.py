"""The Python API: every command through its top-level name (`synthbridge.generate`, ...), with a typed config or
its fields as keywords, on the embedded world; bad input is a UserError naming the problem."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import synthbridge

TINY = {"steps": 2, "batch_size": 8, "warmup_steps": 1}


def test_the_commands_run_through_their_top_level_names(tmp_path):
    made = synthbridge.generate(dataset="digits", generator="mini", per_class=2, steps=2, batch_size=10,
                                out=str(tmp_path / "synth"), show_progress=False)
    assert made["status"] == "complete" and made["run"]["generated"] == 20
    config = synthbridge.GenerateConfig(out=str(tmp_path / "synth"), dataset="digits", generator="mini", per_class=2,
                                        steps=2, batch_size=10, show_progress=False)
    assert synthbridge.generate(config)["run"]["generated"] == 0  # the same set, typed: already complete
    token = synthbridge.invert(dataset="digits", generator="mini", shots=2, steps=2, batch_size=4,
                               out=str(tmp_path / "style"), show_progress=False)
    assert (tmp_path / "style" / "learned_embeds.safetensors").is_file() and token["token"]
    synthbridge.lora(dataset="digits", generator="mini", shots=2, steps=2, batch_size=4, out=str(tmp_path / "lora"),
                     show_progress=False)
    assert (tmp_path / "lora" / "pytorch_lora_weights.safetensors").is_file()
    metrics = synthbridge.train(dataset="digits", shots=2, strategy="bridged", synthetic=str(tmp_path / "synth"),
                                real=TINY, synthetic_stage=TINY, report_to="none", pretrained=False,
                                out=tmp_path / "run")
    assert list(metrics["stages"]) == ["synthetic", "real"] and 0 <= metrics["top1"] <= 100
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["top1"] == metrics["top1"]

    grid = synthbridge.ExperimentConfig(name="api", datasets=("digits",), models=("mini_resnet",),
                                        arms=("real", "bridged"), volumes=(2, 4), volume_arms=("bridged",), shots=(2,),
                                        seeds=(0, 1), generator="render", analysis=False,
                                        train={"real": TINY, "synthetic_stage": TINY, "report_to": "none"})
    summary = synthbridge.run(grid, out=tmp_path / "exp", show_progress=False)
    assert summary["ran"] == 6 and (tmp_path / "exp" / "report.html").is_file()
    assert synthbridge.report(tmp_path / "exp")["cells"] == 6
    (entry,) = synthbridge.advise(tmp_path / "exp")
    assert entry["volumes"] == [2, 4]


def test_bad_input_is_a_user_error_naming_it(tmp_path):
    with pytest.raises(synthbridge.UserError, match="unknown"):
        synthbridge.generate(dataset="digits", per_klass=2, out=str(tmp_path / "s"))
    config = synthbridge.TrainConfig(dataset="digits")
    with pytest.raises(synthbridge.UserError, match="not both"):
        synthbridge.train(config, out=tmp_path / "r", shots=2)
    with pytest.raises(synthbridge.UserError, match="expected a TrainConfig"):
        synthbridge.train(synthbridge.GenerateConfig(out="x"), out=tmp_path / "r")
    with pytest.raises(synthbridge.UserError, match="does not exist; pass a YAML file or a preset name"):
        synthbridge.run("no-such-preset", out=tmp_path / "exp")


def test_import_synthbridge_stays_light():
    """The API's names load on first use: `import synthbridge` imports neither torch nor diffusers."""
    code = "import sys, synthbridge; print(sorted(m for m in ('torch', 'diffusers', 'timm') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    assert {"generate", "invert", "lora", "train", "run", "report", "advise"} <= set(dir(synthbridge))
