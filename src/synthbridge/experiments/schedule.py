"""How a grid's work is spread over workers: one balancer by estimated cost for cells and sets, and the launcher that
runs a grid in several local processes (`synthbridge run --cell i/n`, one per core: the demo's workers).

`balance` deals items out largest first, each to the least loaded worker (ties to the lowest index), so every
worker computes the same split and the shares cover the work once. A cell's cost is the images its training steps
process (`cells.cell_cost`); a set's is `set_cost`, in generated images, from the grid's own settings and the
dataset's classes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from synthbridge.errors import UserError
from synthbridge.experiments.config import ExperimentConfig
from synthbridge.experiments.methods import METHODS
from synthbridge.io import progress

# A step of token or adapter learning, in generated images (measured on the embedded generator: an inversion step
# cost about 0.4 of one image, a LoRA step 0.7). Used only to balance workers.
INVERT_STEP_COST, LORA_STEP_COST = 0.4, 0.7


def balance(costs: list[float], count: int) -> list[int]:
    """The worker (0..count-1) of each item: largest cost first, each to the least loaded worker."""
    loads, owner = [0.0] * count, [0] * len(costs)
    for k in sorted(range(len(costs)), key=lambda k: (-costs[k], k)):
        worker = min(range(count), key=lambda w: (loads[w], w))
        owner[k] = worker
        loads[worker] += costs[k]
    return owner


def set_order(cfg: ExperimentConfig, needs: list, index: int, count: int) -> list:
    """The order in which worker `index` of `count` makes the sets: its own share first (`balance` by `set_cost`),
    then the others' (a set another worker is making is waited for where locks work, else made again and the
    second copy discarded: `io.made_once`)."""
    owner = balance([set_cost(cfg, need) for need in needs], count)
    mine = [need for need, worker in zip(needs, owner) if worker == index]
    return mine + [need for need in needs if need not in mine]


def set_cost(cfg: ExperimentConfig, need) -> float:
    """A set's estimated cost in generated images: its images (image-to-image ones at their strength: the part of
    the denoising they run), plus what its method learns first, each step at INVERT_STEP_COST / LORA_STEP_COST
    (class-wise adapters: one per class), with the grid's steps or its profile's."""
    from synthbridge.experiments.estimate import learning_steps, planning_bundle
    from synthbridge.experiments.sets import img2img_fields

    bundle = planning_bundle(need.dataset, cfg.data_root)
    classes = bundle.num_classes if bundle is not None else 1
    learning = learning_steps(cfg)
    method = METHODS.get(need.method)
    if method.img2img:  # the mean of its strengths: the part of the denoising each image runs (Diff-II: all of it,
        strength = img2img_fields(cfg, need).get("strength", 1.0)  # after inverting each real image once)
        strength = sum(strength) / len(strength) if isinstance(strength, (list, tuple)) else strength
    cost = need.per_class * classes * (strength if method.img2img else 1.0)
    if method.inversion:  # a dataset token is shared by the dsi and img2img_dsi sets of a subset: counted in each
        cost += INVERT_STEP_COST * learning["inversion"][0]
    if method.lora:
        cost += LORA_STEP_COST * learning["lora"][0] * (classes if method.lora == "class" else 1)
    return cost


def run_workers(config_path: str, out: str | Path, workers: int, total: int, sets_only: bool = False) -> None:
    """Run the grid's cells (or, `sets_only`, its shared sets) in `workers` local processes (`synthbridge run --cell
    i/n`, one torch thread each), showing one progress bar.

    Each worker logs to OUT/logs/cells-worker-i.log (sets-worker-i.log). A failed worker stops the others and
    raises with its log's path; rerunning resumes (finished cells are skipped, an interrupted one continues from
    its checkpoint).
    """
    from synthbridge.experiments.store import read_results

    out = Path(out)
    logs = out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    kind = "sets" if sets_only else "cells"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    procs: list[tuple[subprocess.Popen, Path]] = []
    try:
        for i in range(workers):
            log = logs / f"{kind}-worker-{i}.log"
            with open(log, "a") as handle:
                cmd = [sys.executable, "-m", "synthbridge", "run", str(config_path), "--out", str(out),
                       "--cell", f"{i}/{workers}"] + (["--sets-only"] if sets_only else [])
                procs.append((subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT, env=env), log))
        done = (lambda: sets_made(out)) if sets_only else (lambda: len({r["cell"] for r in read_results(out)}))
        failed: list[tuple[subprocess.Popen, Path]] = []
        with progress(total=total, initial=done(), desc=f"{kind} ({workers} workers)", unit=kind[:-1]) as bar:
            while not failed and any(p.poll() is None for p, _ in procs):
                time.sleep(2)
                bar.update(done() - bar.n)
                failed = [(p, log) for p, log in procs if p.poll() not in (None, 0)]
            bar.update(done() - bar.n)
        failed = failed or [(p, log) for p, log in procs if p.returncode != 0]
    finally:
        for p, _ in procs:  # on a failure or Ctrl-C the others stop too (SIGTERM: they leave no partial files)
            if p.poll() is None:
                p.terminate()
        for p, _ in procs:
            p.wait()
    if failed:
        p, log = failed[0]
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["(empty log)"]
        raise UserError(f"a worker failed (exit {p.returncode}): {tail[0]} -- see {log}; "
                        f"rerun the same command to resume")


def sets_made(out: Path) -> int:
    """Synthetic sets finished so far (their generation record says complete)."""
    from synthbridge.io import read_json

    return sum(read_json(f).get("status") == "complete" for f in (out / "synthetic").glob("*/generation.json"))
