"""Stage: reporting. `build_report(EXP_DIR)` is a pure function of the experiment folder.

In: experiment.json, the results store (`experiments.store`), analysis/*.json, styles/*/invert.json and the
synthetic folders (their generation.json / render.json timings and manifests). Out: report.md, report.html
(self-contained: plots and sample grids embedded as PNG data), results.csv. No model runs
here, so a report can be rebuilt (and tested) at any time.

    stats.py     means over seeds, paired gains, the verdict rule, the seeds a difference needs
    tables.py    the results by setting (collect, collect_records, headline_rows, volume_runs), results.csv, tables
    costs.py     what generation, inversion and training cost in this run, as the folder records it
    answer.py    the opening answer: per setting, the best way of using synthetic images found, and its cost
    findings.py  which of the study's claims hold in this run (holds / does not hold / inconclusive)
    advisor.py   the volume advisor: log-volume fits, the next doubling's predicted top-1 and cost (`advise`)
    per_class.py per-class gains of the best way, beside each class's generation fidelity where recorded
    figures.py   volume, shots and per-class plots, sample grids (PNG bytes)
    html.py      report.html: the markdown rendered by markdown-it-py, figures embedded
    report.py    build_report: all of the above, written into the folder
"""

from synthbridge.reporting.advisor import advise, fit_sweep, format_advice
from synthbridge.reporting.answer import answers, best_option
from synthbridge.reporting.figures import per_class_plot, sample_grid, shots_plot, volume_plot
from synthbridge.reporting.findings import findings
from synthbridge.reporting.report import build_report
from synthbridge.reporting.stats import (
    RESOLUTION_POINTS,
    SIGNIFICANCE,
    VERDICT_RULE,
    outcome,
    paired_gain,
    seeds_needed,
    summarise,
)
from synthbridge.reporting.tables import collect, collect_records, headline_rows, volume_runs

__all__ = ["RESOLUTION_POINTS", "SIGNIFICANCE", "VERDICT_RULE", "advise", "answers", "best_option", "build_report",
           "collect", "collect_records", "findings", "fit_sweep", "format_advice", "headline_rows", "outcome",
           "paired_gain", "per_class_plot", "sample_grid", "seeds_needed", "shots_plot", "summarise", "volume_plot",
           "volume_runs"]
