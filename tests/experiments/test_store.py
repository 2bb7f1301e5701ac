"""The results store and what workers share, without trusting file locks (issue 23 item 5): on NFS mounted
`nolock`, or across nodes, `flock` may be a no-op. Every test here runs with the locks replaced by no-ops."""

import contextlib
import json
import os
import subprocess
import sys
import textwrap

import pytest
import yaml

from synthbridge.experiments.store import RESULTS, RESULTS_DIR, append_result, read_results
from synthbridge.io import made_once

NO_LOCKS = """
import contextlib, filelock
class NoLock:  # what flock is on an NFS mount with `nolock` seen from another node: nothing
    def __init__(self, *a, **k): pass
    def __enter__(self): return self
    def __exit__(self, *a): return False
filelock.FileLock = NoLock
import synthbridge.experiments.store, synthbridge.training.stage_cache, synthbridge.generation.folder
for module in (synthbridge.experiments.store, synthbridge.training.stage_cache, synthbridge.generation.folder):
    module.FileLock = NoLock
"""


def _run_concurrently(code: str, count: int, *args: str) -> None:
    """`count` Python processes running `code` (after NO_LOCKS) at once, each given its index then `args`."""
    script = NO_LOCKS + textwrap.dedent(code)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "SYNTHBRIDGE_PROGRESS": "0"}
    procs = [subprocess.Popen([sys.executable, "-c", script, str(i), *args], env=env, stderr=subprocess.PIPE, text=True)
             for i in range(count)]
    for proc in procs:
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err[-3000:]


@pytest.mark.slow
def test_concurrent_writers_store_each_cell_once_without_locks(tmp_path):
    exp = tmp_path / "exp"
    _run_concurrently("""
        import sys
        from synthbridge.experiments.store import append_result
        me, exp = int(sys.argv[1]), sys.argv[2]
        for i in range(40):  # every process writes every cell: 4 writers race for each one
            append_result(exp, {"cell": f"c{i:03d}", "writer": me, "finished_at": f"2026-01-01T00:00:{i:02d}",
                                "metrics": {"top1": i / 40}})
        """, 4, str(exp))
    records = read_results(exp)
    assert [r["cell"] for r in records] == [f"c{i:03d}" for i in range(40)]  # each once, in the order they finished
    assert len(list((exp / RESULTS_DIR).glob("*.json"))) == 40
    assert not list((exp / RESULTS_DIR).glob(".*"))  # no temporary file left
    view = [json.loads(line) for line in (exp / RESULTS).read_text().splitlines()]  # whole lines only
    assert len({r["cell"] for r in view}) == len(view) <= 40
    append_result(exp, {"cell": "c999", "finished_at": "2026-01-02"})
    assert [json.loads(line)["cell"] for line in (exp / RESULTS).read_text().splitlines()][-1] == "c999"
    assert len((exp / RESULTS).read_text().splitlines()) == 41  # the next rewrite holds everything


@pytest.mark.slow
def test_made_once_keeps_the_first_copy_and_discards_the_late_one(tmp_path):
    final = tmp_path / "set"
    _run_concurrently("""
        import sys, time
        from pathlib import Path
        from synthbridge.io import made_once
        me, final = sys.argv[1], Path(sys.argv[2])
        def make(folder):
            folder.mkdir(exist_ok=True)
            for i in range(20):
                (folder / f"{i}.txt").write_text(me)
                time.sleep(0.005)
        made_once(final, make)
        assert (final / "19.txt").exists()  # every process sees a whole folder afterwards
        """, 3, str(final))
    writers = {p.read_text() for p in final.glob("*.txt")}
    assert len(list(final.glob("*.txt"))) == 20 and len(writers) == 1  # one copy, whole, not a mixture
    assert [p.name for p in tmp_path.iterdir()] == ["set"]  # the losers' copies are gone


def test_made_once_continues_a_partial_folder_left_by_a_dead_process(tmp_path):
    import socket

    from synthbridge.io import safe_name

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    left = tmp_path / f".set.{safe_name(socket.gethostname())}.{int(dead.stdout)}.partial"
    left.mkdir()
    (left / "half.txt").write_text("done before the kill")
    seen = []
    made_once(tmp_path / "set", lambda folder: seen.append(sorted(p.name for p in folder.iterdir())))
    assert seen == [["half.txt"]]  # the work of the killed process is continued, not redone
    assert (tmp_path / "set" / "half.txt").exists() and not left.exists()
    seen.clear()
    made_once(tmp_path / "set", lambda folder: seen.append(folder))  # a finished folder is handed over as it is
    assert seen == [tmp_path / "set"]


def test_a_stage1_cache_entry_stored_twice_keeps_the_first(tmp_path):
    import torch

    from synthbridge.training.stage_cache import StageCache

    entry = tmp_path / "cache" / "key"
    entry.parent.mkdir()
    StageCache.store(entry, {"k": 1}, {"w": torch.ones(2)}, {"seconds": 1.0})
    StageCache.store(entry, {"k": 1}, {"w": torch.zeros(2)}, {"seconds": 2.0})  # another node's, later: no error
    weights, record = StageCache.load(entry)
    assert weights["w"].tolist() == [1.0, 1.0] and record["seconds"] == 1.0
    assert [p.name for p in entry.parent.iterdir()] == ["key"]


@pytest.mark.slow
def test_two_workers_without_locks_run_a_grid_to_one_record_per_cell(tmp_path):
    """Two workers with their own shares (`--cell 0/2`, `1/2`, as SLURM array tasks), whose cells read the same set and
    share one stage 1: both race to make them."""
    from synthbridge.experiments import ExperimentConfig, plan_cells

    cfg = ExperimentConfig(name="tiny", datasets=("digits",), models=("mini_resnet",), arms=("bridged", "bridged_no_reinit"),
                           volumes=(4,), volume_arms=(), synthetic_steps=(), shots=(1,), seeds=(0,), generator="render",
                           analysis=False, train={"real": {"steps": 4, "batch_size": 16, "warmup_steps": 1},
                                                  "synthetic_stage": {"steps": 3, "batch_size": 16, "warmup_steps": 1}})
    config = tmp_path / "grid.yaml"
    config.write_text(yaml.safe_dump(json.loads(json.dumps(cfg.to_dict()))))
    exp = tmp_path / "exp"
    _run_concurrently("""
        import sys
        from synthbridge.experiments import ExperimentConfig
        from synthbridge.study import run_experiment
        run_experiment(ExperimentConfig.from_yaml(sys.argv[2]), sys.argv[3], show_progress=False,
                       cell_slice=(int(sys.argv[1]), 2))
        """, 2, str(config), str(exp))
    records = read_results(exp)
    assert sorted(r["cell"] for r in records) == sorted(c.id for c in plan_cells(cfg))
    assert [p.name for p in (exp / "synthetic").iterdir() if not p.name.startswith(".") or "partial" in p.name] \
        == ["digits"]  # one set, no partial copy left
    assert len(list((exp / "stage1").glob("*/stage.json"))) == 1
    with contextlib.suppress(FileNotFoundError):
        assert not [p for p in (exp / "stage1").iterdir() if p.name.startswith(".") and p.is_dir()]


def test_an_experiment_folder_of_another_format_is_one_line_for_run_and_report(tmp_path, capsys):
    """A folder made before folder formats (no "format" in experiment.json; records without "set") is refused by
    `run` and `report` in one line, not read with guessed defaults."""
    from synthbridge.cli import main

    grid = {"datasets": ["digits"], "models": ["mini_resnet"], "arms": ["real"], "generator": "render", "seeds": [0]}
    (tmp_path / "grid.yaml").write_text(yaml.safe_dump(grid))
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "experiment.json").write_text(json.dumps({"config": grid}))
    (exp / RESULTS).write_text(json.dumps({"cell": "a", "key": {"arm": "real"}, "metrics": {"top1": 50.0}}) + "\n")
    for command in (["run", str(tmp_path / "grid.yaml"), "--out", str(exp)], ["report", str(exp)], ["advise", str(exp)]):
        assert main(command) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "is an experiment folder in folder format 0" in err, err
    # nothing made but the lock file, nothing changed
    assert sorted(p.name for p in exp.iterdir() if p.name != ".experiment.lock") == ["experiment.json", RESULTS]
    assert json.loads((exp / "experiment.json").read_text()) == {"config": grid}
