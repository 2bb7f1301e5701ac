"""Stage of the flow: experiments. A grid of training cells over datasets, models, arms, volumes, shots
and seeds, run resumably into one experiment folder (`run_experiment`), by one or many workers.

    config.py   ExperimentConfig (the YAML grid) and the shipped presets
    arms.py     the arms: a strategy plus the set it reads and the ablation switches
    cells.py    the cells of a grid, their training configs, costs and the split between workers
    sets.py     what cells share, made once: style tokens, synthetic sets, gap measures, LEEP
    store.py    the results store: one file per finished cell (results/), results.jsonl rewritten from them
    runner.py   the steps `synthbridge.study` chains: open the folder, the sets needed, train a cell
    schedule.py how work is spread over workers: one cost balancer (cells, sets), the local worker launcher
    estimate.py what a grid costs before it runs: GPU-hours per phase at measured rates (`run --plan --rates`)
    methods.py  the ways of fitting a synthetic set to the real data, and the leakage rule
"""

from synthbridge.experiments.arms import ARMS, Arm
from synthbridge.experiments.cells import Cell, plan_cells
from synthbridge.experiments.config import ExperimentConfig
from synthbridge.experiments.store import read_results

__all__ = ["ARMS", "Arm", "Cell", "ExperimentConfig", "plan_cells", "read_results"]
