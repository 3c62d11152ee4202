"""Alerts and blame on fake histories and fake metrics (no system)."""

from __future__ import annotations

from typing import Any

import pytest
from test_invariants_fakes import context, steady

from harness.blame import blame_all
from harness.errors import ConfigError
from harness.invariants import FaultRecord, FinalState, Phase, parse_invariants
from harness.metrics.store import Metrics, Series
from harness.validate import Node


def parse(entries: list[Any]) -> Any:
    return parse_invariants(Node(entries, "exp.yaml", "invariants"), context(("steady", "surge")))


def gauge(comp: str, key: str, points: list[tuple[float, float]]) -> Metrics:
    return Metrics(series={comp: {key: Series(comp, key, tuple(points))}})


FAULT = FaultRecord("faults[0]", "kill", 5.0, 8.0, True, "killed", target="app-1")


def final(metrics: Metrics | None, **kw: Any) -> FinalState:
    return FinalState(capacity=1000.0, duration=12.0, faults=(FAULT,), metrics=metrics, **kw)


def history_breaking_at(t: float) -> list[Any]:
    """show_code every 10 ms, all failing from `t` on."""
    return steady(0.0, t, 100) + steady(t, 12.0, 100, outcome="fail", status=502, target=0)


RULE = {
    "rules": [{"name": "breaker", "metric": "refsys_breaker_open", "component": "app", "above": 0}]
}


def test_alert_before_the_breach_passes_with_its_lead_time() -> None:
    (inv,) = parse([{"alerts": RULE}])
    m = gauge("app-1", 'refsys_breaker_open{breaker="redis"}', [(4.0, 0), (5.2, 1), (6.0, 1)])
    v = inv.check(history_breaking_at(6.5), final(m))
    assert v.valid is True, v.message
    # the 6-7 s window broke; its first user saw a failure at 6.51 s (sent 6.5 s, 10 ms)
    assert v.figures["first_alert_s"] == 5.2 and v.figures["lead_s"] == pytest.approx(1.31)
    assert v.figures["breach_s"] == pytest.approx(6.51)
    assert "breaker fired 0.20s after the onset on app-1" in v.message


def test_users_notice_inside_a_broken_window_not_at_its_start() -> None:
    """An alert inside the broken window, before anyone in it saw a failure, came first."""
    (inv,) = parse([{"alerts": RULE}])
    m = gauge("app-1", 'refsys_breaker_open{breaker="redis"}', [(5.0, 0), (6.3, 1)])
    v = inv.check(history_breaking_at(6.5), final(m))
    assert v.valid is True, v.message
    assert v.figures["lead_s"] == pytest.approx(0.21)


def test_a_slow_user_notices_once_the_bound_has_passed() -> None:
    """A window broken by latency: noticed when the first slow attempt had waited p99."""
    (inv,) = parse([{"alerts": RULE}])
    slow = steady(0.0, 6.5, 100) + steady(6.5, 12.0, 100, latency=2.0)
    m = gauge("app-1", 'refsys_breaker_open{breaker="redis"}', [(5.0, 0), (6.7, 1)])
    v = inv.check(slow, final(m))
    assert v.valid is True, v.message
    assert v.figures["breach_s"] == pytest.approx(6.8)  # sent 6.5 s, 300 ms bound


def test_users_noticing_first_fails() -> None:
    (inv,) = parse([{"alerts": RULE}])
    m = gauge("app-1", 'refsys_breaker_open{breaker="redis"}', [(5.0, 0), (7.0, 1)])
    v = inv.check(history_breaking_at(5.5), final(m))
    assert v.valid is False and "users noticed first" in v.message


def test_a_rule_must_hold_for_its_window_and_fire_within_the_bound() -> None:
    held = {
        "rules": [{"metric": "q", "above": 0, "for": "2s"}],
        "within": "1s",
    }
    (inv,) = parse([{"alerts": held}])
    m = gauge("app-2", "q", [(5.0, 1), (6.0, 0), (6.5, 3), (7.5, 3), (8.5, 3)])
    v = inv.check(steady(0.0, 12.0, 100), final(m))
    assert v.valid is False and "later than 1s" in v.message
    assert v.figures["first_alert_s"] == 8.5  # 6.5 + 2 s held; the blip at 5.0 was too short


def test_rate_rules_and_label_filters() -> None:
    rules = {"rules": [{"rate": "req_total", "where": {"status": "5.."}, "above": 5}]}
    (inv,) = parse([{"alerts": rules}])
    m = Metrics(
        series={
            "app-1": {
                'req_total{status="200"}': Series(
                    "app-1", 'req_total{status="200"}', ((5, 0), (6, 900))
                ),
                'req_total{status="502"}': Series(
                    "app-1", 'req_total{status="502"}', ((5, 0), (6, 3), (7, 20))
                ),
            }
        }
    )
    v = inv.check(steady(0.0, 12.0, 100), final(m))
    assert v.valid is True and v.figures["first_alert_s"] == 7


def test_alerts_cannot_judge_without_metrics_or_onset() -> None:
    (inv,) = parse([{"alerts": RULE}])
    assert inv.check(steady(0, 12, 100), final(None)).valid is None
    m = gauge("app-1", "refsys_breaker_open", [(1.0, 1)])
    none = FinalState(capacity=1000.0, duration=12.0, faults=(), metrics=m)
    assert inv.check(steady(0, 12, 100), none).valid is None


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ({"rules": []}, "non-empty list"),
        ({"rules": [{"metric": "q"}]}, "above: N or below: N"),
        ({"rules": [{"metric": "q", "rate": "r", "above": 1}]}, "metric: NAME or rate"),
        ({"rules": [{"metric": "q", "above": 1, "where": {"s": "("}}]}, "regular expression"),
        ({"rules": [{"metric": "q", "above": 1}], "after": "lunch"}, "first_fault, a phase"),
        ({"rules": [{"metric": "q", "above": 1, "when": 1}]}, "when"),
    ],
)
def test_bad_alert_rules_are_clear_errors(rules: Any, expected: str) -> None:
    with pytest.raises(ConfigError, match=r"exp\.yaml") as err:
        parse([{"alerts": rules}])
    assert expected in str(err.value)


def test_blame_names_the_fault_the_gateway_and_the_silent_component() -> None:
    invs = parse([{"availability": {"op": "show_code", "min": 0.95}}])
    history = history_breaking_at(5.1)
    m = Metrics(
        every=1.0,
        series={"app-2": {"q": Series("app-2", "q", ((3.0, 0), (4.0, 0), (6.0, 9)))}},
        errors={"app-1": ((5.0, "ConnectionRefusedError"), (6.0, "ConnectionRefusedError"))},
    )
    fs = final(m)
    verdicts = [i.check(history, fs) for i in invs]
    assert verdicts[0].valid is False
    b = blame_all(invs, verdicts, history, fs, gateways=("gateway-a",))[invs[0].id]
    assert b.cause_kind == "fault" and "app-1" in b.cause and b.onset_s == 5.0
    assert b.breach_s == pytest.approx(5.1, abs=0.02)
    text = b.sentence()
    assert "0.10s after app-1 (faults[0]) began" in text, text
    assert "502 via gateway-a" in text
    assert "app-1 stopped answering its metrics at 5.00s" in text
    assert "app-2 q rose" in text


def test_blame_prefers_the_surge_when_no_fault_came_before_the_breach() -> None:
    invs = parse([{"latency": {"op": "show_code", "p99_ms": 100, "during": "surge"}}])
    history = steady(0, 3, 100) + steady(3, 6, 100, latency=0.5)
    phases = (Phase("steady", 0, 3, 100.0), Phase("surge", 3, 6, 1500.0))
    late = FaultRecord("faults[0]", "kill", 9.0, None, True, target="redis")
    fs = FinalState(capacity=1000.0, duration=6.0, phases=phases, faults=(late,))
    verdicts = [i.check(history, fs) for i in invs]
    b = blame_all(invs, verdicts, history, fs)[invs[0].id]
    assert b.cause_kind == "surge" and "phase surge (1500 req/s > C)" in b.cause
    assert b.sentence().startswith(f"{invs[0].id} broke at 3.00s, as phase surge")


def test_blame_says_so_when_nothing_began_before_the_breach() -> None:
    invs = parse([{"availability": {"op": "show_code", "min": 0.99}}])
    history = steady(0, 6, 100, outcome="fail", status=500)
    fs = FinalState(capacity=1000.0, duration=6.0, faults=())
    verdicts = [i.check(history, fs) for i in invs]
    b = blame_all(invs, verdicts, history, fs)[invs[0].id]
    assert b.cause_kind == "none" and "no injected fault or overload" in b.sentence()
    assert blame_all(invs, [v for v in verdicts if v.valid], history, fs) == {}
