"""The report and its timeline, on fake runs (no system, no browser)."""

from __future__ import annotations

import base64
import dataclasses
import gzip
from pathlib import Path

import pytest
from report_fakes import CAPACITY, make_run, ops_for

from harness import journal as journal_io
from harness.history import NEVER_SENT, Op
from harness.invariants import FaultRecord
from harness.invariants.recovers import Spec as RecoverySpec
from harness.invariants.recovers import recovery
from harness.report import (
    REPORT,
    figure,
    load_run,
    related_runs,
    render,
    window_width,
    write_report,
)
from harness.report.chart import FAULT_FILL
from harness.timeline import classify, timeline


def op(t: float, outcome: str = "ok", latency: float = 0.01, **kw: object) -> Op:
    sent = kw.pop("sent", True)
    return Op(
        id=int(t * 1000),
        client_id="c",
        client_class="good",
        op=str(kw.pop("name", "show_code")),
        args={"person": 1},
        intended=t,
        sent=t if sent else None,
        completed=t + latency,
        outcome=outcome,  # type: ignore[arg-type]
        **kw,  # type: ignore[arg-type]
    )


# --- timeline ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "expected"),
    [
        ({"outcome": "ok", "status": 200}, "ok"),
        ({"outcome": "fail", "status": 503}, "rejected"),
        ({"outcome": "fail", "status": 429}, "rejected"),
        ({"outcome": "fail", "error": "timeout"}, "timeout"),
        ({"outcome": "info", "error": "deadline"}, "timeout"),
        ({"outcome": "info", "status": 504}, "timeout"),
        ({"outcome": "fail", "error": NEVER_SENT, "sent": False}, "never_sent"),
        ({"outcome": "fail", "error": "disconnected"}, "error"),
        ({"outcome": "info", "status": 500}, "error"),
    ],
)
def test_classify(kw: dict, expected: str) -> None:
    assert classify(op(1.0, **kw)) == expected


def test_timeline_counts_by_completion_and_offers_by_intention() -> None:
    ops = [
        op(0.1),  # ok in window 0
        op(0.2, latency=0.5),  # intended in 0, completed in 1
        op(0.3, "fail", status=503, cause="retry"),
        op(1.2, "fail", error="timeout", latency=0.2),
    ]
    tl = timeline(ops, width=0.5, duration=2.0)
    assert tl.windows == 4
    assert tl.count("ok") == (1, 1, 0, 0)
    assert tl.count("rejected") == (1, 0, 0, 0)
    assert tl.count("timeout") == (0, 0, 1, 0)  # completed at 1.4 s
    assert tl.count("all") == (2, 1, 1, 0)
    assert tl.offered_rate() == (6.0, 0.0, 2.0, 0.0)  # 3 attempts intended in window 0
    assert tl.offered_rate(first_only=True) == (4.0, 0.0, 2.0, 0.0)  # the retry is not new
    assert tl.rate("ok") == (2.0, 2.0, 0.0, 0.0)


def test_latency_is_from_intended_time_and_never_sent_has_none() -> None:
    late = op(0.1, latency=0.4)
    never = op(0.2, "fail", error=NEVER_SENT, sent=False)
    tl = timeline([late, never], width=1.0, duration=1.0)
    assert tl.p50["show_code"][0] == pytest.approx(0.4)
    assert tl.p99["show_code"][0] == pytest.approx(0.4)
    empty = timeline([never], width=1.0, duration=1.0)
    assert empty.p99["show_code"] == (None,)
    assert empty.count("never_sent") == (1,)


def test_timeline_percentiles_are_nearest_rank() -> None:
    ops = [op(0.0 + i / 1000, latency=(i + 1) / 1000) for i in range(100)]
    tl = timeline(ops, width=1.0, duration=1.0)
    assert tl.p50["show_code"][0] == pytest.approx(0.050)
    assert tl.p99["show_code"][0] == pytest.approx(0.099)


def test_timeline_rejects_bad_width() -> None:
    with pytest.raises(ValueError, match="window width"):
        timeline([], width=0)


def test_recovery_finds_first_holding_run_and_never() -> None:
    bad = [op(t / 10, "fail", error="timeout") for t in range(0, 50)]
    good = [op(5 + t / 10) for t in range(0, 50)]
    spec = RecoverySpec()
    assert recovery(bad + good, 2.0, spec).seconds == pytest.approx(3.0)
    assert recovery(bad, 2.0, spec).seconds is None
    assert recovery(bad + good, 2.0, spec, compression=2).seconds == pytest.approx(3.0)


def test_recovery_requires_latency_too() -> None:
    slow = [op(t / 10, latency=0.5) for t in range(0, 100)]
    assert recovery(slow, 0.0, RecoverySpec()).seconds is None
    assert recovery(slow, 0.0, RecoverySpec(p99_ms=1000)).seconds == 0.0


# --- report --------------------------------------------------------------------------------


def test_window_width_keeps_charts_readable() -> None:
    assert window_width(20) == 0.5
    assert window_width(100) == 1.0
    assert window_width(3600) == 30.0


def test_load_run_reads_journal_history_faults_recoveries(tmp_path: Path) -> None:
    view = load_run(make_run(tmp_path, "naive"))
    assert view.profile == "naive"
    assert view.timeline.width == 0.5
    assert sum(view.timeline.count("all")) == len(ops_for("naive"))
    assert [f.label for f in view.faults] == ["crash of gateway gateway-a", "db_loss of postgres"]
    # the recovery table is the recovers verdicts, as they judged: never on naive
    (naive,) = view.recoveries
    assert (naive.name, naive.after, naive.at, naive.seconds) == (
        "recovers",
        "surge_over",
        10.0,
        None,
    )
    assert naive.valid is False
    (hardened,) = load_run(make_run(tmp_path, "hardened")).recoveries
    assert hardened.seconds == 0.5 and hardened.within == 4 and hardened.valid is True


def test_load_run_without_history(tmp_path: Path) -> None:
    view = load_run(make_run(tmp_path, "naive", history=False))
    assert sum(view.timeline.count("all")) == 0
    assert "<html" in render([view])


def test_related_runs_latest_of_each_profile_naive_first(tmp_path: Path) -> None:
    old_naive = make_run(tmp_path, "naive", stamp="20260101-070000-000")
    new_naive = make_run(tmp_path, "naive", stamp="20260101-080000-000")
    hardened = make_run(tmp_path, "hardened", stamp="20260101-075000-000")
    (tmp_path / "story" / "latest").symlink_to(hardened.name)
    assert related_runs(hardened) == [new_naive.resolve(), hardened.resolve()]
    # the run asked for is always in, even when its profile has a newer run
    assert related_runs(old_naive) == [old_naive.resolve(), hardened.resolve()]
    other = make_run(tmp_path, "naive", experiment="other")
    assert related_runs(other) == [other.resolve()]


def _spec(runs: list[Path]) -> dict:
    """The plotly figure of `runs` as the JSON the page embeds."""
    return figure([load_run(p) for p in runs]).to_plotly_json()


def test_write_report_side_by_side_self_contained(tmp_path: Path) -> None:
    naive = make_run(tmp_path, "naive")
    hardened = make_run(tmp_path, "hardened", stamp="20260101-070100-000")
    path = write_report(hardened)
    assert path == hardened.resolve() / "report.html"
    page = path.read_text()
    assert "<script src=" not in page  # nothing fetched: plotly.js is inline
    assert "Plotly.newPlot" in page and 'id="timeline"' in page
    assert "a fake surge &lt;with&gt; markup &amp; a crash" in page  # escaped
    assert "<title>story: naive vs hardened</title>" in page
    assert "harness run experiments/story.yaml --profile naive --seed 1" in page
    assert "never (still down when the run ended)" in page
    assert "<td>surge_over</td><td>10.00 s</td><td>0.50 s</td>" in page  # = the verdict
    assert '<span class="fail">fail</span>' in page and "fraction_of_capacity=0.31" in page
    assert 'href="../20260101-070000-000-naive/journal.json"' in page

    spec = _spec([naive, hardened])
    axes = {t.get("xaxis", "x") for t in spec["data"]}
    assert axes == {"x", *(f"x{i}" for i in range(2, 13))}  # 6 rows x 2 columns
    layout = spec["layout"]
    assert layout["yaxis2"]["matches"] == "y"  # the same y axis across profiles
    assert layout["xaxis"]["range"] == layout["xaxis2"]["range"]
    labels = [a.get("text", "") for a in layout["annotations"]]
    assert labels.count("crash of gateway gateway-a") == 2  # once per column, top row only
    assert "new text" not in labels
    rects = [s for s in layout["shapes"] if s.get("fillcolor") == FAULT_FILL]
    assert len(rects) == 2 * 2 * 6  # two faults, two columns, six rows
    assert all(s["x1"] > s["x0"] for s in rects if s["x0"] == 16.0)  # an instant fault shows


def test_write_report_single(tmp_path: Path) -> None:
    make_run(tmp_path, "naive")
    hardened = make_run(tmp_path, "hardened", stamp="20260101-070100-000")
    page = write_report(hardened, side_by_side=False).read_text()
    assert "<title>story: hardened</title>" in page


def test_goodput_trace_matches_history(tmp_path: Path) -> None:
    spec = _spec([make_run(tmp_path, "hardened")])
    goodput = next(t for t in spec["data"] if t["name"] == "goodput (ok/s)")
    ops = ops_for("hardened")
    assert 20.0 < max(o.completed for o in ops) < 20.25  # the last window is a sliver
    assert goodput["y"][-1] is None  # left out, not drawn as a drop to zero
    drawn = sum(o.outcome == "ok" and o.completed < 20.0 for o in ops)
    assert sum(y for y in goodput["y"] if y is not None) * 0.5 == pytest.approx(drawn, rel=1e-3)
    c_lines = [s for s in spec["layout"]["shapes"] if s.get("y0") == CAPACITY]
    assert len(c_lines) == 1


def _rewrite(run: Path, **changes: object) -> None:
    record = journal_io.read(run)
    journal_io.write(run, dataclasses.replace(record, **changes))  # type: ignore[arg-type]


def test_an_inconclusive_run_has_a_banner_that_says_why_and_what_to_do(tmp_path: Path) -> None:
    why = "load_generator: 5,512 of 9,245 arrivals never sent: close other work"
    run = make_run(tmp_path, "hardened", outcome="inconclusive")
    _rewrite(run, why=why)
    page = write_report(run).read_text()
    banner = page[page.index('<div class="banner">') :]
    assert "hardened: INCONCLUSIVE" in banner and why in banner
    assert "run it again when the machine is quiet" in banner
    alone = make_run(tmp_path, "naive", experiment="other")
    assert '<div class="banner">' not in write_report(alone).read_text()


def test_every_row_has_its_own_legend_and_each_entry_once(tmp_path: Path) -> None:
    naive = make_run(tmp_path, "naive")
    hardened = make_run(tmp_path, "hardened", stamp="20260101-070100-000")
    spec = _spec([naive, hardened])
    layout = spec["layout"]
    legends = ["legend", *(f"legend{r}" for r in range(2, 7))]
    tops = [layout[name]["y"] for name in legends]
    assert tops == sorted(tops, reverse=True)  # one per row, top to bottom
    shown = [(t.get("legend", "legend"), t["name"]) for t in spec["data"] if t["showlegend"]]
    assert len(shown) == len(set(shown))  # the second column repeats no entry
    rows = {name for name, _ in shown}
    assert rows == set(legends)
    assert ("legend", "goodput (ok/s)") in shown and ("legend6", "show_code p99") in shown
    assert ("legend3", "scan") in shown  # rejected: per operation, in its own legend


def test_a_fault_label_near_the_right_edge_is_anchored_to_its_right(tmp_path: Path) -> None:
    run = make_run(tmp_path, "hardened")
    late = FaultRecord("faults[2]", "kill", 19.0, None, True, "", "kill of a rather long name")
    _rewrite(run, fault_records=(*journal_io.read(run).fault_records, late))
    labels = {a.get("text"): a for a in _spec([run])["layout"]["annotations"]}
    early, last = labels["crash of gateway gateway-a"], labels["kill of a rather long name"]
    assert early["xanchor"] == "left" and early["x"] == 12.0
    assert last["xanchor"] == "right" and last["x"] >= 20.0  # ends at the right edge


def test_after_the_load_the_offered_line_ends_instead_of_dropping(tmp_path: Path) -> None:
    ops = [op(t / 100, latency=0.01) for t in range(0, 1000)]  # 10 s at 100/s
    ops.append(op(9.99, "fail", error="timeout", latency=3.0))  # completes at 12.99 s
    tl = timeline(ops, width=0.5, duration=10.0)
    offered = tl.offered_rate()
    assert offered[:19] == (100.0,) * 19 and offered[19] == 102.0
    assert set(offered[20:]) == {None}  # the load's end: no line, not a line at zero
    assert tl.rate("timeout")[-1] == pytest.approx(1 / 0.49)  # covered to 12.99: drawn
    assert timeline(ops, width=0.5, duration=9.8).offered_rate()[19] == pytest.approx(51 / 0.3)
    assert timeline(ops, width=0.5, duration=9.7).offered_rate()[19] is None  # 0.2 s of 0.5


def test_end_of_run_table_per_operation_and_client_class(tmp_path: Path) -> None:
    view = load_run(make_run(tmp_path, "naive"))
    rows = {(t.op, t.client_class): t for t in view.totals}
    assert set(rows) == {("scan", "impatient"), ("show_code", "impatient"), ("all", "all")}
    every = rows[("all", "all")]
    assert every.attempts == len(ops_for("naive"))
    assert sum(every.outcomes.values()) == every.attempts
    assert every.outcomes["never_sent"] > 0 and every.outcomes["timeout"] > 0
    assert every.p50_ms is not None and every.p50_ms <= every.p99_ms <= every.max_ms
    page = render([view])
    assert "<h2>End of run</h2>" in page and "<th>p99 ms</th>" in page


def test_load_table_has_units_and_the_clock_is_stated_once(tmp_path: Path) -> None:
    page = write_report(make_run(tmp_path, "hardened")).read_text()
    assert '<th>send lateness p99</th><td class="n">4.00 ms</td>' in page
    assert '<th>duration</th><td class="n">20.00 s</td>' in page
    assert page.count("experiment time = run time × 2") == 1
    assert "measured 2026-01-01T07:00:00+00:00, load average 0.30 before" in page


def test_the_page_is_small_and_self_contained(tmp_path: Path) -> None:
    path = write_report(make_run(tmp_path, "hardened"))
    assert path.name == REPORT
    page = path.read_text()
    assert "<script src=" not in page and "https://" not in page.split("<script")[0]
    assert len(page.encode()) < 2_600_000  # plotly.js packed: ~2 MB, was ~5 MB inline
    packed = page.split('id="timeline-plotly">', 1)[1].split("</script>", 1)[0]
    from plotly.offline import get_plotlyjs

    assert gzip.decompress(base64.b64decode(packed)).decode() == get_plotlyjs()


def test_the_details_say_which_links_were_proxied_and_which_ran_direct(tmp_path: Path) -> None:
    from harness.backends import LinkEndpoint

    run = make_run(tmp_path, "naive")
    j = journal_io.read(run)
    links = {
        "app-1->postgres": LinkEndpoint("app-1->postgres", "app-1", "postgres", "h:9", "h:5"),
        "app-1->redis": LinkEndpoint("app-1->redis", "app-1", "redis", "h:6", "h:6", False),
    }
    assert j.topology is not None
    topology = dataclasses.replace(j.topology, links=links)
    journal_io.write(run, dataclasses.replace(j, topology=topology))  # type: ignore[arg-type]
    page = write_report(run, side_by_side=False).read_text()
    assert "links through Toxiproxy: app-1-&gt;postgres; direct: app-1-&gt;redis" in page
