"""Verdicts, composition, crash handling and the invariant registry."""

from __future__ import annotations

from typing import Any

import pytest
from test_invariants_fakes import context, scan, steady

from harness.errors import ConfigError
from harness.invariants import (
    KINDS,
    During,
    FinalState,
    Invariant,
    Phase,
    Verdict,
    availability,
    check_all,
    check_one,
    compose,
    guarded,
    parse_invariants,
)
from harness.invariants import __all__ as public
from harness.validate import Node


def parse(entries: list[Any], phases: tuple[str, ...] | None = ("steady", "surge")) -> Any:
    return parse_invariants(Node(entries, "exp.yaml", "invariants"), context(phases))


def test_compose_ranks_false_over_unknown_over_true() -> None:
    t, f, u = Verdict("t", True), Verdict("f", False), Verdict("u", None)
    assert compose([t, t]).valid is True
    assert compose([t, u]).valid is None
    assert compose([u, f, t]).valid is False
    assert compose([f, u]).valid is False
    merged = compose([t, f, u])
    assert dict(merged.figures) == {"pass": 1, "fail": 1, "unknown": 1}
    assert "f" in merged.message and "u" in merged.message
    assert compose([]).valid is None, "no verdict at all is not a pass"


def test_a_crashing_checker_is_unknown_never_a_pass() -> None:
    def boom(*_: Any) -> Verdict:
        raise ZeroDivisionError("division by zero")

    v = guarded("x", boom)
    assert v.valid is None and v.outcome == "unknown"
    assert "ZeroDivisionError" in v.message
    assert guarded("x", lambda: True).valid is None  # not a Verdict: unknown too


def test_check_one_turns_a_crash_into_unknown_with_the_id() -> None:
    inv = Invariant("steady-availability", "availability", availability.Spec(min=0.9))
    inv = Invariant(inv.id, inv.kind, availability.Spec(min=0.9, during=During("missing")))
    v = check_one(inv, steady(0, 1, 10), FinalState(phases=(Phase("steady", 0, 1),)))
    assert v.name == "steady-availability" and v.valid is None
    assert "crashed" in v.message and "missing" in v.message


def test_check_all_names_verdicts_by_id() -> None:
    invs = parse(
        [
            {"availability": {"min": 0.9}},
            {"latency": {"p99_ms": 100, "id": "fast"}},
            {"no_lost_scans": None},
        ]
    )
    history = [*steady(0, 2, 50), scan(1.0, "s1")]
    verdicts = check_all(invs, iter(history), FinalState(duration=2.0))
    assert [v.name for v in verdicts] == ["availability", "fast", "no_lost_scans"]
    assert [v.valid for v in verdicts] == [True, True, None]  # scans were not read: unknown
    assert invs[2].wants(history) == {"scans": ("s1",)}


def test_every_kind_is_registered_with_a_docstring() -> None:
    assert set(KINDS) == {
        "availability",
        "latency",
        "goodput",
        "recovers",
        "acknowledged_writes",
        "reads_see_writes",
        "faults_took_effect",
        "alerts",
    }
    assert all(k.doc for k in KINDS.values())
    import harness.invariants as pkg

    assert len(set(public)) == len(public) and all(hasattr(pkg, n) for n in public)


def test_parse_gives_typed_specs_and_ids() -> None:
    invs = parse(
        [
            {"goodput": {"min_fraction_of_capacity": "80%", "during": "surge"}},
            {"latency": {"op": "show_code", "p99_ms": 300, "during": "steady"}},
            {"latency": {"op": ["scan", "lookup"], "p50_ms": "20ms"}},
            {"recovers": {"within": "6s", "after": "trigger_end"}},
            {"availability": {"min": 0.99, "during": {"from": "5s", "to": "10s"}}},
        ]
    )
    assert [i.id for i in invs] == ["goodput", "latency#1", "latency#2", "recovers", "availability"]
    assert invs[0].spec.min_fraction_of_capacity == 0.8
    assert invs[2].spec.op == ("scan", "lookup") and invs[2].spec.bounds == (("p50_ms", 20.0),)
    assert invs[3].spec.within == 6.0
    assert invs[4].spec.during == During(None, 5.0, 10.0)


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        ({"latncy": {}}, "invariants[0]"),
        ({"latency": {"p99_ms": 1}, "goodput": {}}, "invariants[0]"),
        ({"latency": {"p99_ms": -1}}, "invariants[0].latency.p99_ms"),
        ({"latency": {"p99_ms": 1, "during": "lunch"}}, "invariants[0].latency.during"),
        ({"goodput": {}}, "invariants[0].goodput.min_fraction_of_capacity"),
        ({"availability": {"min": 2}}, "invariants[0].availability.min"),
        (
            {"availability": {"min": 1, "max_below_for": "5s"}},
            "invariants[0].availability.max_below_for",
        ),
        ({"availability": {"min": 1, "unit": "users"}}, "invariants[0].availability.unit"),
        ({"availability": {"min": 1, "op": "Show Code"}}, "invariants[0].availability.op"),
        ({"recovers": {"within": "soon"}}, "invariants[0].recovers.within"),
        ({"recovers": {"window": 0}}, "invariants[0].recovers.window"),
        ({"no_lost_scans": {"strict": True}}, "invariants[0].no_lost_scans.strict"),
        ({"no_false_green": {"min_reads": -1}}, "invariants[0].no_false_green.min_reads"),
        ({"latency": {"op": "show_cod", "p99_ms": 1}}, "invariants[0].latency.op"),
        ({"acknowledged_writes": {"op": "show_code"}}, "invariants[0].acknowledged_writes.op"),
        (
            {"acknowledged_writes": {"op": "scan", "state": "scanz"}},
            "invariants[0].acknowledged_writes.state",
        ),
        (
            {"acknowledged_writes": {"op": "scan", "state": "scans", "match": {"v": "${age}"}}},
            "invariants[0].acknowledged_writes.match.v",
        ),
        (
            {"reads_see_writes": {"write": {"op": "ingest", "key": "${x}"}, "read": {}}},
            "invariants[0].reads_see_writes.write.key",
        ),
        (
            {
                "reads_see_writes": {
                    "write": {"op": "ingest", "key": "${lab}"},
                    "read": {"op": "show_code", "key": "${person}", "expect": {"token": 1}},
                }
            },
            "invariants[0].reads_see_writes.read.expect.token",
        ),
        ({"faults_took_effect": []}, "invariants[0].faults_took_effect"),
        ({"latency": {"p99_ms": 1, "id": ""}}, "invariants[0].latency.id"),
    ],
)
def test_parse_errors_name_the_key(entry: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse([entry])
    assert info.value.key == key
    assert str(info.value).startswith(f"exp.yaml: {key}: got ")
