"""The report's chart: one column per run, one row per view of the load, over run
seconds since the load runner's t0 (the clock of every time the report shows).

Rows (`ROWS`): offered load against goodput and C; ok, rejected, timed-out and failed
ops per operation; latency p99/p50 per operation from the intended send time. Every row
has its own legend beside it. Faults are shaded and labelled at the top (a label near
the right edge is anchored to its right, so it stays whole); phases are dotted lines;
after the load's end, what completes while in-flight requests drain is shaded grey.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

from harness.report.view import RunView

__all__ = ["FAULT_FILL", "OP_COLOURS", "ROWS", "figure", "height"]

OP_COLOURS = ("#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22")
GOODPUT, NEVER_SENT, OFFERED, ARRIVALS, C_LINE = "#2ca02c", "#d62728", "#444", "#999", "#1f77b4"
FAULT_FILL = "rgba(214, 39, 40, 0.13)"
DRAIN_FILL = "rgba(120, 120, 120, 0.10)"
ROWS = (
    ("offered, goodput (req/s)", "load"),
    ("ok (ops/s)", "ok"),
    ("rejected: 429, 503 (ops/s)", "rejected"),
    ("timeouts (ops/s)", "timeout"),
    ("errors (ops/s)", "error"),
    ("latency p99, p50 (s)", "latency"),
)
ROW_HEIGHT = 230
SPACING = 0.035


def height() -> int:
    """The chart's height in pixels."""
    return ROW_HEIGHT * len(ROWS)


def _colour(op: str, ops: Sequence[str]) -> str:
    return OP_COLOURS[list(ops).index(op) % len(OP_COLOURS)] if op in ops else "#333"


_OUTCOME_WORDS = {
    "met": "as expected",
    "not_met": "NOT as expected",
    "inconclusive": "INCONCLUSIVE",
}


def _column_title(view: RunView) -> str:
    j = view.journal
    c = j.capacity.rps
    cap = f"C = {c:.0f} req/s" if c is not None else "C not needed"
    return (
        f"<b>{html.escape(view.profile)}</b> · seed {j.seed} · {cap} · {_OUTCOME_WORDS[j.outcome]}"
    )


def _legend_name(row: int) -> str:
    return "legend" if row == 1 else f"legend{row}"


def figure(views: Sequence[RunView]) -> Any:
    """The plotly figure: one column per run, the rows of `ROWS`, a legend per row."""
    from plotly.subplots import make_subplots

    cols = len(views)
    fig = make_subplots(
        rows=len(ROWS),
        cols=cols,
        shared_xaxes=True,
        shared_yaxes=True,
        vertical_spacing=SPACING,
        horizontal_spacing=0.04,
        column_titles=[_column_title(v) for v in views],
    )
    fig.update_annotations(font_size=11)  # the column titles
    ops = sorted({op for v in views for op in v.timeline.ops})
    xmax = max([v.timeline.windows * v.timeline.width for v in views] + [1.0])
    # Shapes and labels go in as plain dicts in one assignment: plotly's add_vrect and
    # add_vline validate the whole layout on every call (2 s for a 12-row report).
    marks = _Marks(fig)
    for c, view in enumerate(views, 1):
        _add_column(fig, marks, view, c, ops, xmax, legend=c == 1)
    fig.update_layout(shapes=marks.shapes, annotations=[*fig.layout.annotations, *marks.labels])
    fig.update_xaxes(range=[0, xmax])
    fig.update_xaxes(title_text="run seconds since the load started", row=len(ROWS))
    fig.update_yaxes(type="log", dtick=1, row=len(ROWS))  # one tick per decade
    fig.update_yaxes(rangemode="tozero", autorange=True)  # a fixed x range on matched axes
    # otherwise freezes plotly.js's y autorange at [0, 4]
    for row, (title, _) in enumerate(ROWS, 1):
        fig.update_yaxes(title_text=title, title_font_size=11, row=row, col=1)
    legends = {_legend_name(row): _legend(fig, row) for row in range(1, len(ROWS) + 1)}
    fig.update_layout(
        height=height(),
        margin={"l": 60, "r": 190, "t": 60, "b": 50},
        hovermode="x unified",
        template="plotly_white",
        **legends,
    )
    return fig


def _legend(fig: Any, row: int) -> dict[str, Any]:
    """A legend at the right of `row`, level with its top."""
    top = fig.get_subplot(row, 1).yaxis.domain[1]
    return {
        "x": 1.01,
        "xanchor": "left",
        "y": top,
        "yanchor": "top",
        "font": {"size": 10},
        "bgcolor": "rgba(255,255,255,0)",
        "tracegroupgap": 2,
    }


class _Marks:
    """Lines, shaded spans and labels on the subplots, as layout dicts."""

    def __init__(self, fig: Any) -> None:
        self.fig = fig
        self.shapes: list[dict[str, Any]] = []
        self.labels: list[dict[str, Any]] = []

    def axes(self, row: int, col: int) -> tuple[str, str]:
        """The subplot's axis references: ("x3", "y3")."""
        sub = self.fig.get_subplot(row, col)
        return sub.xaxis.plotly_name.replace("axis", ""), sub.yaxis.plotly_name.replace("axis", "")

    def hline(self, row: int, col: int, y: float, line: dict[str, Any], text: str) -> None:
        x, yref = self.axes(row, col)
        span = {"xref": f"{x} domain", "x0": 0, "x1": 1, "yref": yref, "y0": y, "y1": y}
        self.shapes.append({"type": "line", **span, "line": line})
        self.labels.append(
            {"text": text, "xref": f"{x} domain", "x": 1, "yref": yref, "y": y,
             "xanchor": "right", "yanchor": "bottom", "showarrow": False}
        )  # fmt: skip

    def vspan(self, row: int, col: int, x0: float, x1: float, **style: Any) -> None:
        x, y = self.axes(row, col)
        kind = "line" if x0 == x1 else "rect"
        span = {"xref": x, "x0": x0, "x1": x1, "yref": f"{y} domain", "y0": 0, "y1": 1}
        self.shapes.append({"type": kind, **span, **style})

    def label(self, row: int, col: int, x: float, top: bool, **style: Any) -> None:
        xref, y = self.axes(row, col)
        where = (
            {"y": 1, "yanchor": "top", "xanchor": "left"} if top else {"y": 0, "yanchor": "bottom"}
        )
        self.labels.append(
            {"xref": xref, "x": x, "yref": f"{y} domain", "showarrow": False, **where, **style}
        )


def _add_column(
    fig: Any,
    marks: _Marks,
    view: RunView,
    col: int,
    ops: Sequence[str],
    xmax: float,
    *,
    legend: bool,
) -> None:
    import plotly.graph_objects as go

    tl = view.timeline
    x = list(tl.mids)

    def line(
        row: int,
        y: Sequence[float | None],
        name: str,
        group: str,
        **style: Any,
    ) -> None:
        fig.add_trace(
            go.Scatter(
                x=x,
                y=[None if v is None else float(f"{v:.4g}") for v in y],
                name=name,
                legend=_legend_name(row),
                legendgroup=f"{row}-{group}",
                showlegend=legend,
                mode="lines",
                line={"width": 1.6, **style},
                connectgaps=False,
            ),
            row=row,
            col=col,
        )

    line(1, tl.offered_rate(), "offered (all attempts)", "offered", color=OFFERED, dash="dot")
    line(1, tl.offered_rate(first_only=True), "offered (new arrivals)", "arrivals", color=ARRIVALS)
    line(1, tl.rate("ok"), "goodput (ok/s)", "goodput", color=GOODPUT, width=2.4)
    line(1, tl.rate("never_sent"), "never sent", "never_sent", color=NEVER_SENT, dash="dash")
    capacity = view.journal.capacity.rps
    if capacity is not None:
        marks.hline(1, col, capacity, {"dash": "dash", "color": C_LINE, "width": 1}, "C")
    for row, (_, outcome) in enumerate(ROWS[1:5], 2):
        for op in ops:
            line(row, tl.rate(outcome, op), op, op, color=_colour(op, ops))
    for op in ops:
        zero = (None,) * tl.windows
        colour = _colour(op, ops)
        line(6, tl.p99.get(op, zero), f"{op} p99", f"{op}-p99", color=colour)
        line(6, tl.p50.get(op, zero), f"{op} p50", f"{op}-p50", color=colour, dash="dot")
    rows = range(1, len(ROWS) + 1)
    _phases(marks, view, col, rows)
    _drain(marks, view, col, rows, xmax)
    _faults(marks, view, col, rows, xmax)


def _phases(marks: _Marks, view: RunView, col: int, rows: range) -> None:
    for phase in view.journal.workload.phases:
        if phase.start > 0:
            for row in rows:
                marks.vspan(
                    row, col, phase.start, phase.start,
                    line={"dash": "dot", "color": "#aaa", "width": 1},
                )  # fmt: skip
        marks.label(
            1, col, (phase.start + phase.end) / 2, top=False,
            text=f"<i>{html.escape(phase.name)}</i>", font={"size": 10, "color": "#777"},
        )  # fmt: skip


def _drain(marks: _Marks, view: RunView, col: int, rows: range, xmax: float) -> None:
    """After the load's end: in-flight requests completing, no new load (shaded grey)."""
    end = view.duration
    if end <= 0 or end >= xmax - 1e-9:
        return
    for row in rows:
        marks.vspan(row, col, end, xmax, fillcolor=DRAIN_FILL, line={"width": 0}, layer="below")
    marks.label(
        1, col, xmax, top=False, xanchor="right", text="<i>drain</i>",
        font={"size": 10, "color": "#777"},
    )  # fmt: skip


def _faults(marks: _Marks, view: RunView, col: int, rows: range, xmax: float) -> None:
    width = view.timeline.width
    for n, fault in enumerate(view.faults):
        x1 = fault.end if fault.end is not None else xmax
        x1 = max(x1, fault.start + width / 2)  # an instant fault (db loss) stays visible
        for row in rows:
            marks.vspan(
                row, col, fault.start, x1, fillcolor=FAULT_FILL, line={"width": 0}, layer="below"
            )
        # a label that would run past the right edge is anchored at its right end instead
        right = fault.start > xmax * 0.6
        marks.label(
            1, col, x1 if right else fault.start, top=True, text=html.escape(fault.label),
            font={"size": 10, "color": "#a00"}, xanchor="right" if right else "left",
            yshift=-13 * (n % 3),  # neighbouring faults' labels do not overlap
        )  # fmt: skip
