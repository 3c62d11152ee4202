"""Acknowledged writes, reads see writes, faults took effect: each passes and fails on
constructed histories and final states (the reference system's presets no_lost_scans and
no_false_green are instances of the first two)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from test_invariants_fakes import context, ingest, scan, show

from harness.history import Op
from harness.invariants import (
    FaultRecord,
    FinalState,
    Verdict,
    check_all,
    fault_records,
    faults_took_effect,
    parse_invariants,
)
from harness.state import Reading
from harness.validate import Node


def check(name: str, history: list[Op], fs: FinalState, **params: Any) -> Verdict:
    (inv,) = parse_invariants(Node([{name: params}], "exp.yaml", "invariants"), context())
    (verdict,) = check_all((inv,), history, fs)
    return verdict


def stored(*rows: tuple[str, int, int]) -> FinalState:
    data = [{"scan_id": s, "person_id": p, "venue_id": v} for s, p, v in rows]
    return FinalState(data={"scans": Reading("scans", tuple(data))})


# --------------------------------------------------------------------------- acknowledged writes


def test_acknowledged_scans_stored_once_pass() -> None:
    h = [scan(1, "a"), scan(2, "b"), scan(3, "c", "info"), scan(4, "d", "info")]
    h += [scan(5, "e", "fail", error="http 503")]
    v = check("no_lost_scans", h, stored(("a", 1, 1), ("b", 1, 1), ("c", 1, 1)))
    assert v.valid is True, str(v)
    assert v.figures["acknowledged"] == 2 and v.figures["recovered"] == 1
    assert v.figures["unknown_absent"] == 1 and v.figures["lost"] == 0


def test_a_lost_acknowledged_scan_fails() -> None:
    v = check("no_lost_scans", [scan(1, "a"), scan(2, "b")], stored(("a", 1, 1)))
    assert v.valid is False and v.figures["lost"] == 1 and "lost: b" in v.evidence


def test_a_duplicated_scan_fails() -> None:
    h = [scan(1, "a", "info"), scan(2, "a", cause="retry"), scan(3, "b")]
    v = check("no_lost_scans", h, stored(("a", 1, 1), ("a", 1, 1), ("b", 1, 1)))
    assert v.valid is False and v.figures["duplicated"] == 1 and "duplicated: a x2" in v.evidence


def test_an_acknowledged_scan_stored_with_other_contents_is_a_false_acknowledgement() -> None:
    h = [scan(1, "a", person=5, venue=9), scan(2, "b")]
    v = check("no_lost_scans", h, stored(("a", 5, 3), ("b", 1, 1)))
    assert v.valid is False and v.figures["mismatched"] == 1
    assert "venue_id stored 3, written 9" in v.evidence[0]


def test_a_conflicting_repeat_acknowledged_too_is_mismatched_whichever_was_stored() -> None:
    h = [scan(1, "a", person=5, venue=9), scan(2, "a", person=6, venue=9), scan(3, "b")]
    for first in ((5, 9), (6, 9)):
        v = check("no_lost_scans", h, stored(("a", *first), ("b", 1, 1)))
        assert v.valid is False and v.figures["mismatched"] == 1, str(v)
    refused = [scan(1, "a", person=5, venue=9), scan(2, "a", "fail", person=6, venue=9)]
    v = check("no_lost_scans", refused, stored(("a", 5, 9)))
    assert v.valid is True, str(v)  # the repeat was refused: nothing false was acknowledged


def test_a_retried_scan_acknowledged_later_counts_once() -> None:
    h = [scan(1, "a", "info", error="timeout"), scan(2, "a", cause="retry")]
    v = check("no_lost_scans", h, stored(("a", 1, 1)))
    assert v.valid is True and v.figures["acknowledged"] == 1 and v.figures["recovered"] == 0


def test_state_not_read_failed_or_nothing_acknowledged_is_unknown() -> None:
    assert check("no_lost_scans", [scan(1, "a")], FinalState()).valid is None
    failed = FinalState(data={"scans": Reading("scans", None, "connection refused")})
    v = check("no_lost_scans", [scan(1, "a")], failed)
    assert v.valid is None and "connection refused" in v.message
    assert check("no_lost_scans", [scan(1, "a", "fail")], stored()).valid is None


# --------------------------------------------------------------------------- reads see writes


def test_green_after_an_acknowledged_red_fails() -> None:
    h = [
        ingest(1.0, (7, "positive"), (8, "negative")),  # acknowledged at 1.05
        show(1.02, 7, "green"),  # sent before the acknowledgement: allowed
        show(2.0, 7, "red"),
        show(3.0, 7, "green"),  # a stale read
        show(3.0, 8, "green"),  # negative: not a key the write acknowledged
    ]
    v = check("no_false_green", h, FinalState())
    assert v.valid is False and v.figures["stale_reads"] == 1
    assert v.figures["reads_checked"] == 2
    assert "colour='green' (expected 'red')" in v.evidence[0]


def test_red_after_red_passes_and_grace_is_real_time() -> None:
    h = [ingest(1.0, (7, "positive")), show(1.06, 7, "green"), show(2.0, 7, "red")]
    assert check("no_false_green", h, FinalState()).valid is False
    v = check("no_false_green", h, FinalState(), grace_ms=20)
    assert v.valid is True and v.figures["reads_checked"] == 1


def test_an_unacknowledged_ingest_makes_nobody_red() -> None:
    h = [ingest(1.0, (7, "positive"), outcome="info"), show(2.0, 7, "green")]
    v = check("no_false_green", h, FinalState())
    assert v.valid is None and v.figures["acknowledged_keys"] == 0
    assert check("no_false_green", h, FinalState(), min_reads=0).valid is True


def test_reads_without_the_field_are_counted_not_checked() -> None:
    h = [ingest(1.0, (7, "positive")), show(2.0, 7, None), show(3.0, 7, "green", "fail")]
    v = check("no_false_green", h, FinalState())
    assert v.valid is None and v.figures["reads_without_fields"] == 1


def test_the_expected_value_can_come_from_the_write() -> None:
    spec = {
        "write": {"op": "ingest", "each": "results", "key": "${item.person_id}"},
        "read": {"op": "show_code", "key": "${person}", "expect": {"colour": "${item.result}"}},
    }
    h = [ingest(1.0, (7, "red")), show(2.0, 7, "red")]
    assert check("reads_see_writes", h, FinalState(), **spec).valid is True
    h = [ingest(1.0, (7, "red")), ingest(1.5, (7, "green")), show(2.0, 7, "red")]
    assert check("reads_see_writes", h, FinalState(), **spec).valid is False  # the later write


# --------------------------------------------------------------------------- faults took effect


def record(took: bool | None, name: str = "f") -> FaultRecord:
    return FaultRecord(name, "latency", 1.0, 2.0, took, "probe +500 ms", "app->postgres")


def test_every_fault_took_effect_passes() -> None:
    fs = FinalState(faults=(record(True, "a"), record(True, "b")))
    v = faults_took_effect.check([], fs, faults_took_effect.Spec())
    assert v.valid is True and v.figures["took_effect"] == 2
    assert "took effect" in v.evidence[0]


def test_a_fault_without_effect_fails_and_unproven_is_unknown() -> None:
    fs = FinalState(faults=(record(True, "a"), record(False, "b"), record(None, "c")))
    v = faults_took_effect.check([], fs, faults_took_effect.Spec())
    assert v.valid is False and "b" in v.message
    fs = FinalState(faults=(record(True, "a"), record(None, "c")))
    assert faults_took_effect.check([], fs, faults_took_effect.Spec()).valid is None
    fs = FinalState(faults=None)
    assert faults_took_effect.check([], fs, faults_took_effect.Spec()).valid is None


def test_fault_record_from_the_fault_layers_evidence() -> None:
    def ev(ok: bool, at: float) -> SimpleNamespace:
        return SimpleNamespace(took_effect=ok, actuated=at, summary=lambda: f"x: {ok}\n  check")

    r = FaultRecord.from_evidence("f0", ev(True, 101.0), ev(True, 103.5), t0=100.0, kind="kill")
    assert (r.start, r.end, r.took_effect) == (1.0, 3.5, True) and "\n" not in r.evidence
    r = FaultRecord.from_evidence("f0", ev(True, 101.0), ev(False, 103.5), t0=100.0)
    assert r.took_effect is False
    assert FaultRecord.from_evidence("f0", ev(True, 101.0), t0=100.0).end is None


def test_fault_records_from_a_schedule_report() -> None:
    from harness.faults import Check, Evidence, Kill, Latency, ScheduledFault, ScheduleReport
    from harness.faults import FaultTrace as Done

    def ev(phase: str, at: float, ok: bool = True) -> Evidence:
        check = Check("app-1->postgres", "slow", ok, at)
        return Evidence("f", phase, at - 0.01, at, (check,))  # type: ignore[arg-type]

    lat = ScheduledFault(5.0, Latency(link="app->postgres", latency=500), 2.0, "x.yaml: faults[0]")
    kill = ScheduledFault(8.0, Kill(component="gateway-a"), None, "x.yaml: faults[1]")
    late = ScheduledFault(99.0, Kill(component="app-1"), None, "x.yaml: faults[2]")
    report = ScheduleReport(
        100.0,
        (
            Done(lat, ev("inject", 105.0), ev("heal", 107.0)),
            Done(kill, ev("inject", 108.0), ev("heal", 110.0, ok=False), True),
            Done(late, None, None),
        ),
    )
    records = fault_records(report)
    assert [(r.name, r.kind, r.start, r.end) for r in records] == [
        ("faults[0]", "latency", 5.0, 7.0),
        ("faults[1]", "kill", 8.0, 10.0),
        ("faults[2]", "kill", 99.0, None),
    ]
    assert [r.took_effect for r in records] == [True, False, False]
    assert "never injected" in records[2].evidence
    v = faults_took_effect.check([], FinalState(faults=records), faults_took_effect.Spec())
    assert v.valid is False and v.figures["no_effect"] == 2
