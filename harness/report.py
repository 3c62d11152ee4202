"""Reports: one self-contained HTML page per run, from its journal and history.

The page opens offline (plotly.js is embedded inline, no CDN) and shows, over run time:
offered load against goodput and C; ok, rejected, timed-out and failed ops per operation;
latency p50/p99 from the intended send time; every fault's interval shaded and labelled
and the phases marked. Below the charts: the invariants (pass / fail / unknown with the
figures that decided them), recovery times, the fault timeline with its evidence, load
counts and the command that replays the run.

When the same experiment also ran on the other profile(s) under the same runs
directory, the latest run of each profile is shown side by side on the same axes.

    path = write_report(Path("runs/morning-surge/latest"))   # -> .../report.html
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import history as history_io
from harness.store import HISTORY, JOURNAL, read_journal
from harness.timeline import Timeline, recovery, timeline

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
PROFILE_ORDER = {"naive": 0, "hardened": 1}
OP_COLOURS = {
    "show_code": "#1f77b4",
    "scan": "#ff7f0e",
    "lookup": "#2ca02c",
    "ingest": "#9467bd",
}
SPARE_COLOURS = ("#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf")
FAULT_FILL = "rgba(214, 39, 40, 0.13)"
ROWS = (
    ("offered, goodput /s", "load"),
    ("ok /s", "ok"),
    ("rejected (429, 503) /s", "rejected"),
    ("timeouts /s", "timeout"),
    ("errors /s", "error"),
    ("latency p99, p50 (s)", "latency"),
)


@dataclass(frozen=True)
class FaultSpan:
    """One fault's active interval in run seconds (`end` None: never healed)."""

    name: str
    label: str
    start: float
    end: float | None
    took_effect: bool | None
    evidence: str = ""


@dataclass(frozen=True)
class Recovery:
    """Seconds from an anchor (a fault healed, the surge over) to the show-code SLO holding
    again; `seconds` None: it never did before the run ended."""

    anchor: str
    at: float
    seconds: float | None


@dataclass(frozen=True)
class RunView:
    """One run as a report sees it: the journal, its timeline, faults and recoveries."""

    path: Path
    journal: Mapping[str, Any]
    timeline: Timeline
    faults: tuple[FaultSpan, ...]
    recoveries: tuple[Recovery, ...]

    @property
    def profile(self) -> str:
        return str(self.journal.get("profile", "?"))

    @property
    def duration(self) -> float:
        return float(self.journal.get("workload", {}).get("duration_s") or 0.0)


def window_width(duration: float) -> float:
    """Half a second for short runs, then coarser so a chart has at most ~150 windows."""
    for width in (0.5, 1.0, 2.0, 5.0, 10.0):
        if duration / width <= 150:
            return width
    return 30.0


def _fault_spans(journal: Mapping[str, Any]) -> tuple[FaultSpan, ...]:
    out = []
    for i, rec in enumerate(journal.get("fault_records") or ()):
        name = str(rec.get("name") or f"faults[{i}]")
        kind = str(rec.get("kind") or "")
        target = str(rec.get("target") or "")
        out.append(
            FaultSpan(
                name=name,
                label=target or kind or name,
                start=float(rec.get("start") or 0.0),
                end=None if rec.get("end") is None else float(rec["end"]),
                took_effect=rec.get("took_effect"),
                evidence=str(rec.get("evidence") or ""),
            )
        )
    return tuple(out)


def _recoveries(
    journal: Mapping[str, Any], tl: Timeline, faults: Sequence[FaultSpan]
) -> tuple[Recovery, ...]:
    anchors: list[tuple[str, float]] = [
        (f"{f.label} healed", f.end) for f in faults if f.end is not None
    ]
    capacity = journal.get("capacity_rps")
    overloads = [
        p
        for p in journal.get("workload", {}).get("phases") or ()
        if capacity and p.get("peak_rps") and p["peak_rps"] > capacity
    ]
    if overloads:
        last = max(overloads, key=lambda p: p["end"])
        anchors.append((f"overload over (end of {last['name']})", float(last["end"])))
    return tuple(
        Recovery(name, round(at, 3), recovery(tl, at)) for name, at in sorted(anchors, key=_at)
    )


def _at(anchor: tuple[str, float]) -> float:
    return anchor[1]


def load_run(run_dir: Path | str, width: float | None = None) -> RunView:
    """A run directory's journal and history as a `RunView` (a missing history is empty)."""
    path = Path(run_dir).resolve()
    journal = read_journal(path)
    history_path = path / str(journal.get("history") or HISTORY)
    ops = history_io.load(history_path) if history_path.exists() else []
    duration = float(journal.get("workload", {}).get("duration_s") or 0.0)
    tl = timeline(ops, width or window_width(duration), duration)
    faults = _fault_spans(journal)
    return RunView(path, journal, tl, faults, _recoveries(journal, tl, faults))


def related_runs(run_dir: Path | str) -> list[Path]:
    """This run and the latest run of every other profile of the same experiment under the
    same runs directory (``<experiment>/<stamp>-<profile>/``), naive before hardened."""
    path = Path(run_dir).resolve()
    own = str(read_journal(path).get("profile", ""))
    latest: dict[str, Path] = {own: path}
    for sibling in sorted(path.parent.iterdir()):
        if sibling.is_symlink() or not (sibling / JOURNAL).is_file():
            continue
        parts = sibling.name.split("-", 3)
        profile = parts[3] if len(parts) == 4 else ""
        if profile and profile != own:
            latest[profile] = sibling  # sorted by stamp: the last one wins
    return [latest[p] for p in sorted(latest, key=lambda p: (PROFILE_ORDER.get(p, 9), p))]


# --- the chart ------------------------------------------------------------------------------


def _colour(op: str, ops: Sequence[str]) -> str:
    if op in OP_COLOURS:
        return OP_COLOURS[op]
    extra = [o for o in ops if o not in OP_COLOURS]
    return SPARE_COLOURS[extra.index(op) % len(SPARE_COLOURS)] if op in extra else "#333"


def _column_title(view: RunView) -> str:
    j = view.journal
    c = j.get("capacity_rps")
    verdict = "as expected" if j.get("met") else "NOT as expected"
    cap = f"C = {c:.0f} req/s" if isinstance(c, int | float) else "C unknown"
    return f"<b>{view.profile}</b> · seed {j.get('seed')} · {cap} · {verdict}"


def figure(views: Sequence[RunView]) -> Any:
    """The plotly figure: one column per run, the rows of `ROWS`, faults shaded."""
    from plotly.subplots import make_subplots

    cols = len(views)
    fig = make_subplots(
        rows=len(ROWS),
        cols=cols,
        shared_xaxes=True,
        shared_yaxes=True,
        vertical_spacing=0.035,
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
        _add_column(fig, marks, view, c, ops, legend=c == 1)
    fig.update_layout(shapes=marks.shapes, annotations=[*fig.layout.annotations, *marks.labels])
    fig.update_xaxes(range=[0, xmax])
    fig.update_xaxes(title_text="run time (s)", row=len(ROWS))
    fig.update_yaxes(type="log", dtick=1, row=len(ROWS))  # one tick per decade
    fig.update_yaxes(rangemode="tozero", autorange=True)  # a fixed x range on matched axes
    # otherwise freezes plotly.js's y autorange at [0, 4]
    for row, (title, _) in enumerate(ROWS, 1):
        fig.update_yaxes(title_text=title, title_font_size=11, row=row, col=1)
    fig.update_layout(
        height=230 * len(ROWS),
        margin={"l": 60, "r": 40, "t": 60, "b": 50},
        legend={"orientation": "h", "y": -0.04, "x": 0},
        hovermode="x unified",
        template="plotly_white",
    )
    return fig


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
    fig: Any, marks: _Marks, view: RunView, col: int, ops: Sequence[str], *, legend: bool
) -> None:
    import plotly.graph_objects as go

    tl = view.timeline
    x = list(tl.mids)

    def line(
        row: int,
        y: Sequence[float | None],
        name: str,
        group: str,
        *,
        key: bool = True,
        **style: Any,
    ) -> None:
        fig.add_trace(
            go.Scatter(
                x=x,
                y=list(y),
                name=name,
                legendgroup=group,
                showlegend=legend and key,
                mode="lines",
                line={"width": 1.6, **style},
                connectgaps=False,
            ),
            row=row,
            col=col,
        )

    line(1, tl.offered_rate(), "offered (all attempts)", "offered", color="#444", dash="dot")
    line(1, tl.offered_rate(first_only=True), "offered (new arrivals)", "arrivals", color="#999")
    line(1, tl.rate("ok"), "goodput (ok/s)", "goodput", color="#2ca02c", width=2.4)
    line(1, tl.rate("never_sent"), "never sent", "never_sent", color="#d62728", dash="dash")
    capacity = view.journal.get("capacity_rps")
    if isinstance(capacity, int | float):
        marks.hline(1, col, capacity, {"dash": "dash", "color": "#1f77b4", "width": 1}, "C")
    for row, (_, outcome) in enumerate(ROWS[1:5], 2):
        for op in ops:
            line(row, tl.rate(outcome, op), op, f"op-{op}", key=row == 2, color=_colour(op, ops))
    for op in ops:
        zero = (None,) * tl.windows
        colour = _colour(op, ops)
        line(6, tl.p99.get(op, zero), f"{op} p99", f"op-{op}", key=False, color=colour)
        line(6, tl.p50.get(op, zero), f"{op} p50", f"op-{op}", key=False, color=colour, dash="dot")
    end = max(view.duration, tl.windows * tl.width)
    rows = range(1, len(ROWS) + 1)
    for phase in view.journal.get("workload", {}).get("phases") or ():
        start = phase.get("start", 0)
        if start > 0:
            for row in rows:
                marks.vspan(
                    row, col, start, start, line={"dash": "dot", "color": "#aaa", "width": 1}
                )
        marks.label(
            1, col, (start + phase["end"]) / 2, top=False,
            text=f"<i>{html.escape(str(phase['name']))}</i>", font={"size": 10, "color": "#777"},
        )  # fmt: skip
    for n, fault in enumerate(view.faults):
        x1 = fault.end if fault.end is not None else end
        x1 = max(x1, fault.start + tl.width / 2)  # an instant fault (db loss) stays visible
        for row in rows:
            marks.vspan(
                row, col, fault.start, x1, fillcolor=FAULT_FILL, line={"width": 0}, layer="below"
            )
        marks.label(
            1, col, fault.start, top=True, text=html.escape(fault.label),
            font={"size": 10, "color": "#a00"},
            yshift=-13 * (n % 3),  # neighbouring faults' labels do not overlap
        )  # fmt: skip


# --- the page -------------------------------------------------------------------------------

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #222; }
h1 { margin-bottom: 4px; } h2 { margin-top: 32px; border-bottom: 1px solid #ddd; }
.desc { color: #555; margin-top: 0; }
.cards { display: flex; gap: 16px; flex-wrap: wrap; }
.card { border: 1px solid #ddd; border-radius: 8px; padding: 12px 16px; flex: 1; min-width: 320px; }
.card.met { border-left: 6px solid #2ca02c; } .card.unmet { border-left: 6px solid #d62728; }
table { border-collapse: collapse; margin: 8px 0; font-size: 14px; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f5f5f5; }
.pass { color: #1a7f37; font-weight: 600; } .fail { color: #c62828; font-weight: 600; }
.unknown { color: #b26a00; font-weight: 600; }
.figs { color: #555; font-size: 12px; font-family: ui-monospace, monospace; }
pre { background: #f6f8fa; padding: 8px 12px; border-radius: 6px; overflow-x: auto; }
.muted { color: #777; font-size: 13px; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _outcome(valid: Any) -> str:
    word = "pass" if valid is True else "fail" if valid is False else "unknown"
    return f'<span class="{word}">{word}</span>'


def _card(view: RunView, here: Path) -> str:
    j = view.journal
    met = bool(j.get("met"))
    rel = _relative(view.path, here)
    abort = j.get("aborted")
    lines = [
        f"<h3>{_e(view.profile)}: {'as expected' if met else 'NOT as expected'}</h3>",
        f"<div>expected <b>{_e(j.get('expected'))}</b>; composed verdict {_outcome(j.get('valid'))}"
        f" &mdash; {_e(j.get('why'))}</div>",
    ]
    if abort:
        lines.append(f'<div class="fail">aborted: {_e(abort)}</div>')
    cap = j.get("capacity_rps")
    cap_text = f"{cap:.0f} req/s" if isinstance(cap, int | float) else "unknown"
    lines.append(
        f'<div class="muted">seed {_e(j.get("seed"))} · backend {_e(j.get("backend"))} · '
        f"C = {cap_text} · run <code>{_e(rel)}</code></div>"
    )
    return f'<div class="card {"met" if met else "unmet"}">{"".join(lines)}</div>'


def _relative(path: Path, here: Path) -> str:
    """How the page in `here` links to the run in `path`."""
    if path == here:
        return "."
    if path.parent == here.parent:
        return f"../{path.name}"
    return str(path)


def _invariants(views: Sequence[RunView]) -> str:
    names: list[str] = []
    for v in views:
        for verdict in v.journal.get("verdicts") or ():
            if verdict["name"] not in names:
                names.append(verdict["name"])
    head = "".join(f"<th>{_e(v.profile)}</th>" for v in views)
    rows = []
    for name in names:
        cells = []
        for v in views:
            found = [x for x in v.journal.get("verdicts") or () if x["name"] == name]
            if not found:
                cells.append('<td class="muted">not checked</td>')
                continue
            x = found[0]
            figs = ", ".join(
                f"{_e(k)}={_e(_fmt(val))}" for k, val in (x.get("figures") or {}).items()
            )
            cells.append(
                f"<td>{_outcome(x.get('valid'))} {_e(x.get('message', ''))}"
                f'<div class="figs">{figs}</div></td>'
            )
        rows.append(f"<tr><th>{_e(name)}</th>{''.join(cells)}</tr>")
    return f"<table><tr><th>invariant</th>{head}</tr>{''.join(rows)}</table>"


def _recovery_table(views: Sequence[RunView]) -> str:
    parts = []
    for v in views:
        rows = [
            f"<tr><td>{_e(r.anchor)}</td><td>{r.at:.2f} s</td><td>"
            + (
                f"{r.seconds:.2f} s"
                if r.seconds is not None
                else '<span class="fail">never (still down when the run ended)</span>'
            )
            + "</td></tr>"
            for r in v.recoveries
        ]
        body = (
            "".join(rows)
            or '<tr><td colspan="3" class="muted">no fault healed, no overload</td></tr>'
        )
        parts.append(
            f"<div><h3>{_e(v.profile)}</h3><table><tr><th>after</th><th>at</th>"
            f"<th>show-code SLO holds again after</th></tr>{body}</table></div>"
        )
    note = (
        '<p class="muted">Recovery: the first of two consecutive windows in which show-code '
        "availability is at least 99% and its p99 at most 300 ms, measured from the anchor. "
        "The <code>recovers</code> invariant, if the experiment has one, is the judge; this "
        "table is the same idea applied to every anchor.</p>"
    )
    return note + f'<div class="cards">{"".join(parts)}</div>'


def _faults_table(views: Sequence[RunView]) -> str:
    parts = []
    for v in views:
        rows = [
            f"<tr><td>{_e(f.name)}</td><td>{_e(f.label)}</td><td>{f.start:.2f} s</td>"
            f"<td>{'never healed' if f.end is None else f'{f.end:.2f} s'}</td>"
            f"<td>{_outcome(f.took_effect)}</td><td class='figs'>{_e(f.evidence)}</td></tr>"
            for f in v.faults
        ]
        body = "".join(rows) or '<tr><td colspan="6" class="muted">no faults</td></tr>'
        parts.append(
            f"<h3>{_e(v.profile)}</h3><table><tr><th>fault</th><th>what</th><th>from</th>"
            f"<th>to</th><th>took effect</th><th>evidence</th></tr>{body}</table>"
        )
    return "".join(parts)


def _load_table(views: Sequence[RunView]) -> str:
    keys: list[str] = []
    for v in views:
        for k in v.journal.get("load") or {}:
            if k not in keys and k != "wall_start":
                keys.append(k)
    head = "".join(f"<th>{_e(v.profile)}</th>" for v in views)
    rows = "".join(
        f"<tr><th>{_e(k)}</th>"
        + "".join(f"<td>{_e(_fmt((v.journal.get('load') or {}).get(k, '')))}</td>" for v in views)
        + "</tr>"
        for k in keys
    )
    return f"<table><tr><th>load</th>{head}</tr>{rows}</table>"


def _details(views: Sequence[RunView], here: Path) -> str:
    parts = []
    for v in views:
        j = v.journal
        rel = _relative(v.path, here)
        prefix = "" if rel == "." else rel + "/"
        versions = "".join(
            f"<tr><th>{_e(k)}</th><td>{_e(val)}</td></tr>"
            for k, val in (j.get("versions") or {}).items()
        )
        topo = json.dumps(j.get("topology") or {}, indent=1)
        timings = ", ".join(f"{k} {val} s" for k, val in (j.get("timings_s") or {}).items())
        parts.append(
            f"<h3>{_e(v.profile)}</h3>"
            f"<pre>{_e(j.get('replay', ''))}</pre>"
            f'<p><a href="{_e(prefix)}journal.json">journal.json</a> · '
            f'<a href="{_e(prefix)}{_e(j.get("history") or HISTORY)}">history</a> · '
            f'<a href="{_e(prefix)}{_e(j.get("logs") or "logs/")}">component logs</a> · '
            f'<a href="{_e(prefix)}experiment.yaml">experiment as run</a></p>'
            f'<p class="muted">timings: {_e(timings)}</p>'
            f"<details><summary>versions</summary><table>{versions}</table></details>"
            f"<details><summary>topology and ports</summary><pre>{_e(topo)}</pre></details>"
        )
    return "".join(parts)


def render(views: Sequence[RunView], here: Path | None = None) -> str:
    """The HTML page for `views` (one column each); links are relative to `here`."""
    if not views:
        raise ValueError("render: no run to report")
    here = here or views[-1].path
    first = views[0].journal
    exp = first.get("experiment") or {}
    fig = figure(views)
    chart = fig.to_html(
        full_html=False,
        include_plotlyjs=True,
        div_id="timeline",
        config={"displaylogo": False, "responsive": True},
    )
    width = views[0].timeline.width
    title = f"{exp.get('name', '?')}: {' vs '.join(v.profile for v in views)}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{_CSS}</style></head>
<body>
<h1>{_e(exp.get("name", "?"))}</h1>
<p class="desc">{_e(exp.get("description", ""))}</p>
<div class="cards">{"".join(_card(v, here) for v in views)}</div>
<h2>Over time</h2>
<p class="muted">Windows of {width:g} s of run time. Offered load and latency are placed by
intended send time (open loop; latency counts the wait before sending), outcomes by
completion time. Shaded: faults in force (labelled at the top); dotted lines: phases.</p>
{chart}
<h2>Invariants</h2>
{_invariants(views)}
<h2>Recovery</h2>
{_recovery_table(views)}
<h2>Faults</h2>
{_faults_table(views)}
<h2>Load</h2>
{_load_table(views)}
<h2>Replay and evidence</h2>
{_details(views, here)}
</body></html>
"""


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
