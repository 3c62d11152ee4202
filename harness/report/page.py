"""The report's page: one self-contained HTML file per run, from `RunView`s.

Top to bottom: a banner when a run was inconclusive (its figures say nothing about the
system, and what to do about it); one card per run (met or not, why, C and when and
under what load it was measured); the clock, stated once; the chart; the end-of-run
table per operation and client class; the invariants; the recoveries as the
`recovers` verdicts judged them; the fault timeline with its evidence; the load
generator's counts with units; the replay command and links to the evidence.
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import journal as journal_io
from harness.metrics import store as metrics_io
from harness.metrics.panel import MetricsColumn, panel_html
from harness.report.chart import figure, height
from harness.report.embed import chart_html, extra_chart_html
from harness.report.totals import ALL, Totals
from harness.report.view import RunView
from harness.summary import capacity_text, clock_text

__all__ = ["render"]

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px; color: #222; }
h1 { margin-bottom: 4px; } h2 { margin-top: 32px; border-bottom: 1px solid #ddd; }
.desc { color: #555; margin-top: 0; }
.blame { color: #8a3b12; font-size: 12px; margin-top: 3px; }
.banner { background: #fff4e5; border: 2px solid #b26a00; border-radius: 8px;
  padding: 10px 16px; margin: 12px 0; }
.banner b { color: #b26a00; }
.cards { display: flex; gap: 16px; flex-wrap: wrap; }
.card { border: 1px solid #ddd; border-radius: 8px; padding: 12px 16px; flex: 1; min-width: 320px; }
.card.met { border-left: 6px solid #2ca02c; } .card.unmet { border-left: 6px solid #d62728; }
.card.inconclusive { border-left: 6px solid #b26a00; }
table { border-collapse: collapse; margin: 8px 0; font-size: 14px; }
th, td { border: 1px solid #ddd; padding: 4px 8px; text-align: left; vertical-align: top; }
td.n { text-align: right; font-variant-numeric: tabular-nums; }
th { background: #f5f5f5; }
tr.total td { font-weight: 600; }
.pass { color: #1a7f37; font-weight: 600; } .fail { color: #c62828; font-weight: 600; }
.unknown { color: #b26a00; font-weight: 600; }
.figs { color: #555; font-size: 12px; font-family: ui-monospace, monospace; }
pre { background: #f6f8fa; padding: 8px 12px; border-radius: 6px; overflow-x: auto; }
.muted { color: #777; font-size: 13px; }
"""

OUTCOME_WORDS = {"met": "as expected", "not_met": "NOT as expected", "inconclusive": "INCONCLUSIVE"}


def _e(value: Any) -> str:
    return html.escape(str(value))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _outcome(valid: Any) -> str:
    word = "pass" if valid is True else "fail" if valid is False else "unknown"
    return f'<span class="{word}">{word}</span>'


def _banner(views: Sequence[RunView]) -> str:
    lines = [
        f"<div><b>{_e(v.profile)}: INCONCLUSIVE</b> &mdash; {_e(v.journal.why)}</div>"
        for v in views
        if v.journal.outcome == "inconclusive"
    ]
    if not lines:
        return ""
    return (
        '<div class="banner">'
        + "".join(lines)
        + '<div class="muted">An inconclusive run could not judge the system: its figures'
        " below are shown as measured, but prove nothing either way. The harness runs such"
        " a run once more by itself; if it stays inconclusive, run it again when the"
        " machine is quiet.</div></div>"
    )


def _card(view: RunView, here: Path) -> str:
    j = view.journal
    rel = _relative(view.path, here)
    css = {"met": "met", "not_met": "unmet", "inconclusive": "inconclusive"}[j.outcome]
    lines = [
        f"<h3>{_e(view.profile)}: {OUTCOME_WORDS[j.outcome]}</h3>",
        f"<div>expected <b>{_e(j.expected)}</b>; composed verdict {_outcome(j.valid)}"
        f" &mdash; {_e(j.why)}</div>",
    ]
    if j.aborted:
        lines.append(f'<div class="fail">aborted: {_e(j.aborted)}</div>')
    if j.rerun_of:
        lines.append(f'<div class="muted">rerun of {_e(j.rerun_of)}</div>')
    lines.append(
        f'<div class="muted">seed {_e(j.seed)} · backend {_e(j.backend)} · '
        f"{_e(capacity_text(j.capacity))} · "
        + ("this run" if rel == "." else f"run <code>{_e(rel)}</code>")
        + "</div>"
    )
    return f'<div class="card {css}">{"".join(lines)}</div>'


def _relative(path: Path, here: Path) -> str:
    """How the page in `here` links to the run in `path`."""
    if path == here:
        return "."
    if path.parent == here.parent:
        return f"../{path.name}"
    return str(path)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


def _totals_rows(rows: Sequence[Totals]) -> str:
    out = []
    for t in rows:
        o = t.outcomes
        css = ' class="total"' if t.client_class == ALL else ""
        cells = [
            f"<td>{_e(t.op)}</td><td>{_e(t.client_class)}</td>",
            f'<td class="n">{t.requests:,}</td><td class="n">{t.attempts:,}</td>',
            f'<td class="n">{100 * t.ok_share:.1f}%</td>',
            *(
                f'<td class="n">{o.get(k, 0):,}</td>'
                for k in ("rejected", "timeout", "error", "never_sent")
            ),
            *(f'<td class="n">{_ms(v)}</td>' for v in (t.p50_ms, t.p90_ms, t.p99_ms, t.max_ms)),
        ]
        out.append(f"<tr{css}>{''.join(cells)}</tr>")
    return "".join(out)


def _totals(views: Sequence[RunView]) -> str:
    head = (
        "<tr><th>operation</th><th>client class</th><th>requests</th><th>attempts</th>"
        "<th>ok</th><th>rejected</th><th>timeouts</th><th>errors</th><th>never sent</th>"
        "<th>p50 ms</th><th>p90 ms</th><th>p99 ms</th><th>max ms</th></tr>"
    )
    parts = [
        '<p class="muted">Per operation and client class, over the whole run: requests (first'
        " attempts), attempts (with retries and re-opens), the share of attempts that were"
        " ok, the others by outcome, and latency of the sent attempts from their intended"
        " send time (open loop), nearest-rank percentiles.</p>"
    ]
    for v in views:
        body = _totals_rows(v.totals) or '<tr><td colspan="13" class="muted">no ops</td></tr>'
        parts.append(f"<h3>{_e(v.profile)}</h3><table>{head}{body}</table>")
    return "".join(parts)


def _invariants(views: Sequence[RunView]) -> str:
    names: list[str] = []
    for v in views:
        for verdict in v.journal.verdicts:
            if verdict.name not in names:
                names.append(verdict.name)
    head = "".join(f"<th>{_e(v.profile)}</th>" for v in views)
    rows = []
    for name in names:
        cells = []
        for v in views:
            found = [x for x in v.journal.verdicts if x.name == name]
            if not found:
                cells.append('<td class="muted">not checked</td>')
                continue
            x = found[0]
            figs = ", ".join(f"{_e(k)}={_e(_fmt(val))}" for k, val in x.figures.items())
            blame = f'<div class="blame">{_e(x.blame)}</div>' if x.blame else ""
            cells.append(
                f'<td>{_outcome(x.valid)} {_e(x.message)}<div class="figs">{figs}</div>{blame}</td>'
            )
        rows.append(f"<tr><th>{_e(name)}</th>{''.join(cells)}</tr>")
    return f"<table><tr><th>invariant</th>{head}</tr>{''.join(rows)}</table>"


def _metrics_panel(views: Sequence[RunView]) -> str:
    columns = []
    for v in views:
        m = v.journal.metrics
        metrics = metrics_io.load(v.path / m.file) if m is not None else metrics_io.Metrics()
        spans = tuple((f.start, f.end, f.label) for f in v.faults)
        columns.append(MetricsColumn(v.profile, metrics, spans, v.duration))

    def embed(fig: Any, height: int) -> str:
        return extra_chart_html("metrics", fig.to_json(validate=False), height)

    return panel_html(columns, embed)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _recovery_table(views: Sequence[RunView]) -> str:
    parts = []
    for v in views:
        rows = [
            f"<tr><td>{_e(r.name)}</td><td>{_e(r.after)}</td><td>{_seconds(r.at)}</td><td>"
            + (
                _seconds(r.seconds)
                if r.seconds is not None
                else '<span class="fail">never (still down when the run ended)</span>'
                if r.at is not None
                else '<span class="muted">no trigger</span>'
            )
            + f"</td><td>{_seconds(r.within)}</td><td>{_outcome(r.valid)}</td></tr>"
            for r in v.recoveries
        ]
        body = (
            "".join(rows)
            or '<tr><td colspan="6" class="muted">no <code>recovers</code> invariant</td></tr>'
        )
        parts.append(
            f"<div><h3>{_e(v.profile)}</h3><table><tr><th>invariant</th><th>after</th>"
            f"<th>at</th><th>the SLO holds again after</th><th>within</th><th>verdict</th></tr>"
            f"{body}</table></div>"
        )
    note = (
        '<p class="muted">As each <code>recovers</code> invariant judged it: from its anchor'
        " (<code>after</code>) to the first of its consecutive windows in which its operation"
        " met the SLO again. The same figures as in the invariants table.</p>"
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


# the load generator's counts: (field, label, unit, scale)
LOAD_ROWS = (
    ("arrivals", "arrivals (new requests scheduled)", "", 1),
    ("sent", "sent", "", 1),
    ("never_sent", "never sent (late past the bound, or past the caps)", "", 1),
    ("retries", "retries", "", 1),
    ("reopens", "re-opens", "", 1),
    ("budget_denied", "retries denied by the retry budget", "", 1),
    ("cancelled", "cancelled at the deadline", "", 1),
    ("ops", "attempts in the history", "", 1),
    ("duration", "duration", "s", 1),
    ("lateness_p50", "send lateness p50", "ms", 1000),
    ("lateness_p99", "send lateness p99", "ms", 1000),
    ("lateness_max", "send lateness max", "ms", 1000),
)


def _load_table(views: Sequence[RunView]) -> str:
    head = "".join(f"<th>{_e(v.profile)}</th>" for v in views)

    def cell(v: RunView, key: str, unit: str, scale: float) -> str:
        load = v.journal.load
        if load is None:
            return "<td></td>"
        value = getattr(load, key)
        text = f"{value:,}" if isinstance(value, int) else f"{value * scale:,.2f}"
        return f'<td class="n">{text}{" " + unit if unit else ""}</td>'

    rows = "".join(
        f"<tr><th>{_e(label)}</th>" + "".join(cell(v, k, u, s) for v in views) + "</tr>"
        for k, label, u, s in LOAD_ROWS
    )
    return f"<table><tr><th>load generator</th>{head}</tr>{rows}</table>"


def _details(views: Sequence[RunView], here: Path) -> str:
    parts = []
    for v in views:
        j = v.journal
        rel = _relative(v.path, here)
        prefix = "" if rel == "." else rel + "/"
        versions = "".join(
            f"<tr><th>{_e(k)}</th><td>{_e(val)}</td></tr>" for k, val in j.versions.items()
        )
        topo = json.dumps(journal_io.to_data(j.topology), indent=1)
        timings = ", ".join(f"{k} {val} s" for k, val in j.timings_s.items())
        links = j.topology.links if j.topology else {}
        proxied = ", ".join(n for n, lk in links.items() if lk.proxied) or "none"
        direct = ", ".join(n for n, lk in links.items() if not lk.proxied) or "none"
        parts.append(
            f"<h3>{_e(v.profile)}</h3>"
            f"<pre>{_e(j.replay)}</pre>"
            f'<p><a href="{_e(prefix)}journal.json">journal.json</a> · '
            f'<a href="{_e(prefix)}{_e(j.history)}">history</a> · '
            f'<a href="{_e(prefix)}{_e(j.logs)}">component logs</a> · '
            f'<a href="{_e(prefix)}experiment.yaml">experiment as run</a></p>'
            f'<p class="muted">timings: {_e(timings)}</p>'
            f'<p class="muted">links through Toxiproxy: {_e(proxied)}; direct: {_e(direct)}</p>'
            f"<details><summary>versions</summary><table>{versions}</table></details>"
            f"<details><summary>topology and ports</summary><pre>{_e(topo)}</pre></details>"
        )
    return "".join(parts)


def render(views: Sequence[RunView], here: Path | None = None) -> str:
    """The HTML page for `views` (one column each); links are relative to `here`."""
    if not views:
        raise ValueError("render: no run to report")
    here = here or views[-1].path
    exp = views[0].journal.experiment
    fig = figure(views)
    config = {"displaylogo": False, "responsive": True}
    plot = chart_html(fig.to_json(validate=False), config, height())
    width = views[0].timeline.width
    title = f"{exp.name}: {' vs '.join(v.profile for v in views)}"
    compression = views[0].journal.workload.compression
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{_CSS}</style></head>
<body>
<h1>{_e(exp.name)}</h1>
<p class="desc">{_e(exp.description)}</p>
{_banner(views)}
<div class="cards">{"".join(_card(v, here) for v in views)}</div>
<p class="muted">{_e(clock_text(compression))}</p>
<h2>Over time</h2>
<p class="muted">Windows of {width:g} s. Offered load and latency are placed by intended
send time (open loop; latency counts the wait before sending), outcomes by completion
time; a window the run covers less than half of is left out, not drawn as zero. Shaded
red: faults in force (labelled at the top); grey: after the load's end, while requests
in flight complete; dotted lines: phases. Each row has its legend at its right; click an
entry to hide it.</p>
{plot}
<h2>End of run</h2>
{_totals(views)}
<h2>Invariants</h2>
{_invariants(views)}
<h2>Inside the system</h2>
{_metrics_panel(views)}
<h2>Recovery</h2>
{_recovery_table(views)}
<h2>Faults</h2>
{_faults_table(views)}
<h2>Load generator</h2>
{_load_table(views)}
<h2>Replay and evidence</h2>
{_details(views, here)}
</body></html>
"""
