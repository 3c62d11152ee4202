"""Reports: one self-contained HTML page per run, from its journal and history.

The page opens offline (plotly.js travels packed inside it, `harness.report.embed`) and
shows, over run seconds since the load started: offered load against goodput and C;
ok, rejected, timed-out and failed ops per operation; latency p50/p99 from the intended
send time; every fault's interval shaded and labelled and the phases marked
(`harness.report.chart`). Below the chart (`harness.report.page`): an end-of-run table
per operation and client class (`harness.report.totals`), the invariants, the
recoveries as the `recovers` verdicts judged them, the fault timeline with its
evidence, the load generator's counts and the command that replays the run.

When the same experiment also ran on the other profile(s) under the same runs
directory, the latest run of each profile is shown side by side on the same axes
(`harness.report.view`).

    path = write_report(Path("runs/morning-surge/latest"))   # -> .../report.html
"""

from __future__ import annotations

from pathlib import Path

from harness.report.chart import figure
from harness.report.page import render
from harness.report.view import (
    FaultSpan,
    Recovery,
    RunView,
    load_run,
    related_runs,
    window_width,
)

__all__ = [
    "REPORT",
    "FaultSpan",
    "Recovery",
    "RunView",
    "figure",
    "load_run",
    "related_runs",
    "render",
    "window_width",
    "write_report",
]

REPORT = "report.html"


def write_report(run_dir: Path | str, *, side_by_side: bool = True) -> Path:
    """Render ``<run_dir>/report.html`` (with the other profiles' latest runs beside it)."""
    path = Path(run_dir).resolve()
    runs = related_runs(path) if side_by_side else [path]
    views = [load_run(p) for p in runs]
    width = min(v.timeline.width for v in views)
    if any(v.timeline.width != width for v in views):
        views = [load_run(p, width) for p in runs]
    target = path / REPORT
    tmp = target.with_suffix(".tmp")
    tmp.write_text(render(views, here=path), encoding="utf-8")
    tmp.replace(target)
    return target
