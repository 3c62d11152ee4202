"""The system's own metrics as a report panel: a row per component, a column per run,
faults shaded; the series that moved most shown, the rest folded into the legend.

Counters (``*_total``) are drawn as per-second rates, gauges as sampled; histogram
parts (``_bucket``, ``_sum``, ``_count``) are left out. A component's series are ranked by
how much they moved during the run (range over mean magnitude), `KEY_SERIES` shown.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from harness.metrics.store import Metrics, Series

__all__ = ["KEY_SERIES", "MetricsColumn", "panel_html"]

KEY_SERIES = 4
_SKIP = ("_bucket", "_sum", "_count", "_created")
_FAULT_FILL = "rgba(214, 39, 40, 0.10)"
Points = tuple[tuple[float, float], ...]
_PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


@dataclass(frozen=True)
class MetricsColumn:
    """One run's metrics and the spans (run s) of its faults, under a column title."""

    title: str
    metrics: Metrics
    faults: tuple[tuple[float, float | None, str], ...] = ()
    duration: float | None = None  # run seconds; the x axis ends there


def _points(s: Series) -> Points:
    return s.rate() if s.name.endswith("_total") else s.points


def _movement(points: Sequence[tuple[float, float]]) -> float:
    values = [v for _, v in points]
    if len(values) < 2:
        return 0.0
    mean = sum(abs(v) for v in values) / len(values)
    return (max(values) - min(values)) / (mean + 1e-9)


def ranked(
    metrics: Metrics, component: str
) -> list[tuple[Series, tuple[tuple[float, float], ...]]]:
    """A component's drawable series with their points, the most moving first."""
    out = [
        (s, _points(s))
        for s in metrics.series.get(component, {}).values()
        if not s.name.endswith(_SKIP)
    ]
    return sorted(out, key=lambda x: (-_movement(x[1]), x[0].key))


def _keys(columns: Sequence[MetricsColumn], component: str) -> list[str]:
    """A component's series keys over every run, the most moving (in any run) first."""
    best: dict[str, float] = {}
    for col in columns:
        for s, pts in ranked(col.metrics, component):
            best[s.key] = max(best.get(s.key, 0.0), _movement(pts))
    return sorted(best, key=lambda k: (-best[k], k))


def _components(columns: Sequence[MetricsColumn]) -> list[str]:
    seen: list[str] = []
    for col in columns:
        for comp in [*col.metrics.sources, *col.metrics.series]:
            if comp not in seen and comp in col.metrics.series:
                seen.append(comp)
    return seen


def figure(columns: Sequence[MetricsColumn]) -> Any:
    """The plotly figure of the panel (None when no run recorded metrics)."""
    from plotly import graph_objects as go
    from plotly.subplots import make_subplots

    comps = _components(columns)
    if not comps:
        return None
    fig = make_subplots(
        rows=len(comps),
        cols=len(columns),
        shared_xaxes=True,
        vertical_spacing=min(0.04, 0.3 / len(comps)),
        horizontal_spacing=0.06,
        column_titles=[c.title for c in columns],
        row_titles=comps,
    )
    shapes: list[dict[str, Any]] = []
    for r, comp in enumerate(comps, 1):
        keys = _keys(columns, comp)
        shown: set[str] = set()
        for c, col in enumerate(columns, 1):
            by_key = {s.key: (s, pts) for s, pts in ranked(col.metrics, comp)}
            for k, key in enumerate(keys):
                if key not in by_key:
                    continue
                s, pts = by_key[key]
                unit = "/s" if s.name.endswith("_total") else ""
                fig.add_trace(
                    go.Scatter(
                        x=[t for t, _ in pts],
                        y=[v for _, v in pts],
                        name=f"{comp} {key}{unit}",
                        legendgroup=f"{comp} {key}",
                        mode="lines",
                        line={"width": 1.4, "color": _PALETTE[k % len(_PALETTE)]},
                        visible=True if k < KEY_SERIES else "legendonly",
                        showlegend=key not in shown,
                    ),
                    row=r,
                    col=c,
                )
                shown.add(key)
            for start, end, label in col.faults:
                xref = fig.get_subplot(r, c).xaxis.plotly_name.replace("axis", "")
                yref = fig.get_subplot(r, c).yaxis.plotly_name.replace("axis", "")
                shapes.append(
                    {
                        "type": "rect",
                        "xref": xref,
                        "yref": f"{yref} domain",
                        "x0": start,
                        "x1": end if end is not None else start + 0.2,
                        "y0": 0,
                        "y1": 1,
                        "fillcolor": _FAULT_FILL,
                        "line": {"width": 0},
                        "layer": "below",
                        "name": label,
                    }
                )
    for c, col in enumerate(columns, 1):
        if col.duration:
            fig.update_xaxes(range=[0, col.duration], col=c)
    fig.update_layout(
        shapes=shapes,
        height=170 * len(comps) + 120,
        margin={"l": 60, "r": 80, "t": 50, "b": 40},
        legend={"font": {"size": 10}},
        hovermode="x unified",
        template="plotly_white",
    )
    fig.update_annotations(font_size=11)
    fig.update_xaxes(title_text="run time (s)", row=len(comps))
    return fig


def panel_html(columns: Sequence[MetricsColumn], embed: Callable[[Any, int], str]) -> str:
    """The panel as an HTML fragment; `embed(figure, height)` puts the chart on the page."""
    fig = figure(columns)
    if fig is None:
        return (
            '<p class="muted">No metrics were recorded: declare <code>metrics:</code> in the'
            " topology to see the components' own series here.</p>"
        )
    costs = []
    for col in columns:
        m = col.metrics
        cpu = m.cpu_ms_per_tick
        costs.append(
            f"{html.escape(col.title)}: {m.samples} samples of {sum(map(len, m.series.values()))}"
            f" series every {m.every:g} s"
            + (f", {cpu:.1f} ms CPU per sample" if cpu is not None else "")
            + "".join(
                f"; {html.escape(c)} failed {len(e)} reads" for c, e in sorted(m.errors.items())
            )
        )
    note = (
        f'<p class="muted">Each component\'s {KEY_SERIES} most moving series are drawn; click'
        " a folded one in the legend to show it. Counters as rates per second; faults"
        f" shaded. {' · '.join(costs)}.</p>"
    )
    return note + embed(fig, int(fig.layout.height))
