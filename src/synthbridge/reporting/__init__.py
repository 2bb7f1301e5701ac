"""Stage: reporting. `build_report(EXP_DIR)` is a pure function of the experiment folder.

In: experiment.json, results.jsonl, analysis/*.json and the synthetic folders. Out: report.md,
report.html (self-contained: plots and sample grids embedded as PNG data), results.csv. No model runs
here, so a report can be rebuilt (and tested) at any time.

    stats.py     means over seeds, paired gains with the t-test and what their seeds resolve
    tables.py    the results by setting (collect, headline_rows, volume_runs), results.csv, the markdown tables
    findings.py  which of the study's claims hold in this run
    figures.py   volume and shots plots, sample grids (PNG bytes)
    html.py      report.html: the markdown rendered by markdown-it-py, figures embedded
    report.py    build_report: all of the above, written into the folder
"""

from synthbridge.reporting.figures import sample_grid, shots_plot, volume_plot
from synthbridge.reporting.findings import findings
from synthbridge.reporting.report import build_report
from synthbridge.reporting.stats import RESOLUTION_POINTS, SIGNIFICANCE, paired_gain, summarise
from synthbridge.reporting.tables import collect, headline_rows, volume_runs

__all__ = ["RESOLUTION_POINTS", "SIGNIFICANCE", "build_report", "collect", "findings", "headline_rows", "paired_gain",
           "sample_grid", "shots_plot", "summarise", "volume_plot", "volume_runs"]
