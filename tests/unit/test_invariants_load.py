"""Availability, latency, goodput and recovery: each passes and fails on constructed histories."""

from __future__ import annotations

from test_invariants_fakes import op, steady

from harness.history import NEVER_SENT
from harness.invariants import (
    During,
    FaultRecord,
    FinalState,
    Phase,
    availability,
    goodput,
    latency,
    recovers,
)

PHASES = (Phase("steady", 0.0, 10.0, 50.0), Phase("surge", 10.0, 20.0, 200.0))
FS = FinalState(capacity=100.0, duration=30.0, phases=PHASES)


# --------------------------------------------------------------------------- availability


def test_availability_passes_and_fails() -> None:
    h = steady(0, 10, 20) + steady(10, 20, 20, "fail")
    ok = availability.check(h, FS, availability.Spec(min=0.99, during=During("steady")))
    assert ok.valid is True and ok.figures["availability"] == 1.0
    bad = availability.check(h, FS, availability.Spec(min=0.99, during=During("surge")))
    assert bad.valid is False and bad.figures["availability"] == 0.0
    assert bad.figures["total"] == 200
    whole = availability.check(h, FS, availability.Spec(min=0.4))
    assert whole.valid is True and whole.figures["availability"] == 0.5


def test_availability_counts_requests_not_attempts_by_default() -> None:
    first = op(1.0, "fail", error="timeout")
    retry = op(1.5, "ok", cause="retry", parent=first.id, root=first.id, attempt=2)
    h = [first, retry]
    req = availability.check(h, FS, availability.Spec(min=1.0))
    assert req.valid is True and req.figures["total"] == 1
    att = availability.check(h, FS, availability.Spec(min=1.0, unit="attempts"))
    assert att.valid is False and att.figures["availability"] == 0.5


def test_availability_per_operation_and_client_class() -> None:
    h = steady(0, 10, 10, client_class="good") + steady(0, 10, 10, "fail", client_class="buggy")
    h += steady(0, 10, 10, "fail", name="scan", client_class="good")
    spec = availability.Spec(min=0.99, op=("show_code",), client_class=("good",))
    assert availability.check(h, FS, spec).valid is True
    spec = availability.Spec(min=0.99, op=("show_code",))
    assert availability.check(h, FS, spec).valid is False


def test_availability_windows_bound_how_long_errors_last() -> None:
    h = steady(0, 4, 50) + steady(4, 6, 50, "fail") + steady(6, 30, 50)
    overall = 1 - 100 / 1500
    short = availability.Spec(min=0.9, window=1.0, max_below_for=3.0)
    v = availability.check(h, FS, short)
    assert v.valid is True and v.figures["availability"] == overall
    assert v.figures["longest_below_s"] == 2.0 and v.figures["windows_below"] == 2
    v = availability.check(h, FS, availability.Spec(min=0.9, window=1.0, max_below_for=1.0))
    assert v.valid is False and "below 0.9 for 2.00s in a row, longer than 1.00s" in v.message
    every = availability.check(h, FS, availability.Spec(min=0.9, window=1.0))
    assert every.valid is False and every.figures["worst_window"] == 0.0
    assert any(e.startswith("4.00s..5.00s") for e in every.evidence)


def test_availability_windows_scale_with_compression() -> None:
    h = steady(0, 2, 50) + steady(2, 3, 50, "fail") + steady(3, 15, 50)
    fs = FinalState(capacity=100.0, duration=15.0, compression=2.0)
    # one run second below = two experiment seconds; figures and messages in run seconds
    v = availability.check(h, fs, availability.Spec(min=0.9, window=2.0, max_below_for=2.0))
    assert v.valid is True and v.figures["longest_below_s"] == 1.0
    assert v.figures["window_s"] == 1.0 and v.figures["max_below_for_s"] == 1.0
    v = availability.check(h, fs, availability.Spec(min=0.9, window=1.0, max_below_for=0.5))
    assert v.valid is False and "for 1.00s in a row, longer than 0.25s" in v.message
    spans = availability.check(h, fs, availability.Spec(min=0.9, during=During(None, 4.0, 6.0)))
    assert "during 2.00s..3.00s" in spans.message  # the file's 4s..6s, in run seconds


def test_availability_without_operations_is_unknown() -> None:
    v = availability.check([], FS, availability.Spec(min=0.9))
    assert v.valid is None and "nothing to judge" in v.message


# --------------------------------------------------------------------------- latency


def test_latency_passes_and_fails_per_phase() -> None:
    h = steady(0, 10, 100, latency=0.020) + steady(10, 20, 100, latency=0.800)
    spec = latency.Spec(bounds=(("p99_ms", 300.0),), op=("show_code",), during=During("steady"))
    v = latency.check(h, FS, spec)
    assert v.valid is True and 19 <= v.figures["p99_ms"] <= 21
    surge = latency.Spec(bounds=(("p99_ms", 300.0),), during=During("surge"))
    v = latency.check(h, FS, surge)
    assert v.valid is False and "p99 80" in v.message and v.figures["count"] == 1000
    assert v.evidence and "took 800 ms" in v.evidence[0]


def test_latency_counts_failures_and_never_sent_ops() -> None:
    h = steady(0, 10, 99, latency=0.010)
    h += [op(5.0, "fail", 0.5, sent=False, error=NEVER_SENT) for _ in range(30)]
    spec = latency.Spec(bounds=(("p99_ms", 100.0),))
    v = latency.check(h, FS, spec)
    assert v.valid is False and v.figures["p99_ms"] >= 499 and v.figures["not_ok"] == 30
    ok_only = latency.Spec(bounds=(("p99_ms", 100.0),), include="ok")
    assert latency.check(h, FS, ok_only).valid is True


def test_latency_bounds_several_percentiles() -> None:
    h = steady(0, 10, 100, latency=0.050)
    spec = latency.Spec(bounds=(("p50_ms", 40.0), ("max_ms", 100.0)))
    v = latency.check(h, FS, spec)
    assert v.valid is False and "p50" in v.message and "max" not in v.message


def test_latency_without_operations_is_unknown() -> None:
    spec = latency.Spec(bounds=(("p99_ms", 1.0),), op=("lookup",))
    assert latency.check(steady(0, 1, 10), FS, spec).valid is None


# --------------------------------------------------------------------------- goodput


def test_goodput_passes_and_fails_as_a_fraction_of_capacity() -> None:
    h = steady(10, 20, 90) + steady(10, 20, 110, "fail")
    v = goodput.check(h, FS, goodput.Spec(0.8, during=During("surge")))
    assert v.valid is True and v.figures["fraction_of_capacity"] == 0.9
    assert v.figures["offered_rps"] == 200
    v = goodput.check(h, FS, goodput.Spec(0.95, during=During("surge")))
    assert v.valid is False and "0.900 C" in v.message


def test_goodput_counts_only_answers_within_a_latency_bound() -> None:
    h = steady(9.9, 19.9, 50, latency=0.1) + steady(8, 18, 50, latency=2.0)
    assert goodput.check(h, FS, goodput.Spec(0.8, during=During("surge"))).valid is True
    fast = goodput.Spec(0.8, during=During("surge"), within_ms=500)
    v = goodput.check(h, FS, fast)
    assert v.valid is False and v.figures["ok"] == 500


def test_goodput_throughout_windows() -> None:
    h = steady(10, 14, 100) + steady(16, 20, 100)  # a 2 s hole
    overall = goodput.Spec(0.75, during=During("surge"))
    assert goodput.check(h, FS, overall).valid is True
    throughout = goodput.Spec(0.75, during=During("surge"), window=1.0)
    v = goodput.check(h, FS, throughout)
    assert v.valid is False and v.figures["worst_window_fraction"] == 0.0


def test_goodput_without_capacity_is_unknown() -> None:
    v = goodput.check(steady(10, 20, 100), FinalState(phases=PHASES), goodput.Spec(0.8))
    assert v.valid is None and "capacity" in v.message


# --------------------------------------------------------------------------- recovers

HEALED = FinalState(
    capacity=1000.0,
    duration=30.0,
    faults=(FaultRecord("f", "latency", 5.0, 10.0, True),),
)


def test_recovery_time_is_a_number() -> None:
    h = steady(0, 5, 50) + steady(5, 13, 50, "fail") + steady(13, 30, 50)
    v = recovers.check(h, HEALED, recovers.Spec(within=5.0))
    assert v.valid is True and v.figures["recovery_s"] == 3.0
    assert v.figures["trigger_end_s"] == 10.0
    v = recovers.check(h, HEALED, recovers.Spec(within=2.0))
    assert v.valid is False and "later than 2.00s" in v.message
    assert "after the trigger (trigger_end) at 10.0s" in v.message


def test_never_recovering_is_a_metastable_failure() -> None:
    h = steady(0, 5, 50) + steady(5, 30, 50, latency=0.9)  # slow ever after
    v = recovers.check(h, HEALED, recovers.Spec())
    assert v.valid is False and v.figures["recovery_s"] == "never"
    assert "metastable" in v.message and v.evidence


def test_recovery_needs_consecutive_good_windows() -> None:
    h = steady(0, 10, 50, "fail") + steady(10, 11, 50) + steady(11, 14, 50, "fail")
    h += steady(14, 30, 50)
    v = recovers.check(h, HEALED, recovers.Spec(consecutive=2))
    assert v.figures["recovery_s"] == 4.0
    v = recovers.check(h, HEALED, recovers.Spec(consecutive=1))
    assert v.figures["recovery_s"] == 0.0


def test_recovery_after_a_surge_and_in_experiment_time() -> None:
    fs = FinalState(
        capacity=100.0,
        compression=2.0,
        duration=15.0,
        phases=(Phase("steady", 0, 5, 20.0), Phase("surge", 5, 10, 200.0)),
    )
    h = steady(0, 10, 20) + steady(10, 12, 20, latency=1.0) + steady(12, 15, 20)
    v = recovers.check(h, fs, recovers.Spec(within=5.0, after="trigger_end"))
    assert fs.trigger_end() == 10.0
    assert v.valid is True and v.figures["recovery_s"] == 2.0  # run seconds, as the axes
    assert v.figures["within_s"] == 2.5 and v.figures["window_s"] == 0.5
    v = recovers.check(h, fs, recovers.Spec(within=3.0, after="surge"))
    assert v.valid is False and "later than 1.50s" in v.message


def test_recovery_without_a_trigger_or_later_load_is_unknown() -> None:
    h = steady(0, 10, 50)
    assert recovers.check(h, FinalState(duration=10.0), recovers.Spec()).valid is None
    v = recovers.check(h, HEALED, recovers.Spec())
    assert v.valid is None and "after the trigger" in v.message
