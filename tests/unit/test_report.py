"""The report and its timeline, on fake runs (no system, no browser)."""

from __future__ import annotations

from pathlib import Path

import pytest
from report_fakes import CAPACITY, make_run, ops_for

from harness.history import NEVER_SENT, Op
from harness.report import (
    figure,
    load_run,
    related_runs,
    render,
    window_width,
    write_report,
)
from harness.timeline import classify, recovery, timeline
from harness.workload import ShowCode


def op(t: float, outcome: str = "ok", latency: float = 0.01, **kw: object) -> Op:
    sent = kw.pop("sent", True)
    return Op(
        id=int(t * 1000),
        client_id="c",
        client_class="good",
        op=str(kw.pop("name", "show_code")),
        args=ShowCode(1),
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
    tl = timeline(bad + good, width=0.5, duration=10.0)
    assert recovery(tl, after=2.0) == pytest.approx(3.0)
    assert recovery(timeline(bad, width=0.5, duration=10.0), after=2.0) is None


def test_recovery_requires_latency_too() -> None:
    slow = [op(t / 10, latency=0.5) for t in range(0, 100)]
    assert recovery(timeline(slow, width=0.5, duration=10.0), after=0.0) is None
    assert recovery(timeline(slow, width=0.5, duration=10.0), after=0.0, p99=1.0) == 0.0


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
    anchors = {r.anchor: r for r in view.recoveries}
    assert anchors["overload over (end of surge)"].seconds is None  # naive never recovers
    hardened = load_run(make_run(tmp_path, "hardened"))
    over = {r.anchor: r for r in hardened.recoveries}["overload over (end of surge)"]
    assert over.seconds is not None and over.seconds < 1.0


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
    rects = [s for s in layout["shapes"] if s.get("type") == "rect"]
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
    ok = sum(o.outcome == "ok" for o in ops_for("hardened"))
    assert sum(goodput["y"]) * 0.5 == pytest.approx(ok)
    c_lines = [s for s in spec["layout"]["shapes"] if s.get("y0") == CAPACITY]
    assert len(c_lines) == 1
