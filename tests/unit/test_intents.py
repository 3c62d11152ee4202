"""Intents and attempts: the history groups retries and re-opens into intents, the
invariants judge either unit as their `unit:` says, and the journal keeps retry
amplification per client class."""

from __future__ import annotations

from typing import Any

import pytest
from test_invariants_fakes import context, op, steady

from harness.errors import ConfigError
from harness.history import Op, amplification, intents
from harness.invariants import FinalState, Phase, availability, goodput, latency, parse_invariants
from harness.journal import client_records
from harness.validate import Node

PHASES = (Phase("steady", 0.0, 10.0, 50.0), Phase("surge", 10.0, 20.0, 200.0))
FS = FinalState(capacity=100.0, duration=30.0, phases=PHASES)


def chain(t: float, *steps: tuple[str, float, float], cls: str = "good") -> list[Op]:
    """One intent: attempts (outcome, intended, completed) linked to the first."""
    out: list[Op] = []
    for n, (outcome, start, end) in enumerate(steps):
        first = out[0].id if out else None
        o = op(
            start,
            outcome,
            end - start,
            client_class=cls,
            attempt=n + 1,
            cause="first" if n == 0 else "retry",
            parent=out[-1].id if out else None,
            root=first,
        )
        if n == 0:
            o = Op(**{**_fields(o), "root": o.id})
        out.append(o)
    return out


def _fields(o: Op) -> dict[str, Any]:
    return {f: getattr(o, f) for f in Op.__dataclass_fields__}


def test_intents_group_a_chain_and_time_it_from_the_first_ask() -> None:
    h = chain(1.0, ("fail", 1.0, 1.1), ("fail", 1.5, 1.6), ("ok", 2.5, 2.52))
    h += chain(3.0, ("ok", 3.0, 3.01))
    got = intents(h)
    assert [i.attempts for i in got] == [3, 1]
    first = got[0]
    assert first.ok and first.answered == pytest.approx(2.52)
    assert first.latency == pytest.approx(1.52)  # from the first ask, not from the last try
    assert first.retries == 2 and first.intended == 1.0


def test_an_intent_never_answered_waits_until_its_last_attempt() -> None:
    (i,) = intents(chain(1.0, ("fail", 1.0, 1.2), ("fail", 2.0, 4.0)))
    assert not i.ok and i.answered is None
    assert i.latency == pytest.approx(3.0)


def test_amplification_per_client_class() -> None:
    h = chain(0.0, ("fail", 0.0, 0.1), ("ok", 0.2, 0.3), cls="buggy")
    h += chain(1.0, ("fail", 1.0, 1.1), ("fail", 1.1, 1.2), ("fail", 1.2, 1.3), cls="buggy")
    h += chain(2.0, ("ok", 2.0, 2.1)) + chain(3.0, ("ok", 3.0, 3.1))
    by = {a.client_class: a for a in amplification(h)}
    assert by["buggy"].ratio == pytest.approx(2.5)
    assert (by["buggy"].intents, by["buggy"].answered, by["buggy"].max_attempts) == (2, 1, 3)
    assert by["good"].ratio == 1.0
    records = {r.client_class: r for r in client_records(h)}
    assert records["buggy"].amplification == 2.5 and records["buggy"].retries == 3


def test_availability_per_intent_within_a_budget() -> None:
    slow = chain(1.0, ("fail", 1.0, 1.1), ("ok", 3.0, 3.05))  # answered 2.05 s after asking
    fast = chain(2.0, ("ok", 2.0, 2.01))
    h = slow + fast
    anyhow = availability.check(h, FS, availability.Spec(min=1.0))
    assert anyhow.valid is True
    within = availability.check(h, FS, availability.Spec(min=1.0, within_ms=1000))
    assert within.valid is False and within.figures["availability"] == 0.5
    assert within.figures["within_ms"] == 1000 and "answered within 1000 ms" in within.message
    attempts = availability.check(h, FS, availability.Spec(min=1.0, unit="attempts"))
    assert attempts.valid is False and attempts.figures["total"] == 3


def test_latency_per_intent_counts_the_whole_wait() -> None:
    h = steady(0, 5, 20, latency=0.01)
    h += chain(1.0, ("fail", 1.0, 1.05), ("ok", 2.5, 2.51))  # each attempt fast
    attempts = latency.check(h, FS, latency.Spec(bounds=(("max_ms", 300.0),)))
    assert attempts.valid is True
    per_intent = latency.check(h, FS, latency.Spec(bounds=(("max_ms", 300.0),), unit="intents"))
    assert per_intent.valid is False
    assert per_intent.figures["max_ms"] == pytest.approx(1510.0)
    assert per_intent.figures["count"] == 101 and per_intent.figures["attempts"] == 102


def test_goodput_per_intent_times_an_answer_from_the_first_ask() -> None:
    h: list[Op] = []
    for k in range(100):  # 100 intents in the surge, each answered on its second try
        t = 10.0 + k * 0.1
        h += chain(t, ("fail", t, t + 0.01), ("ok", t + 1.0, t + 1.01))
    per_attempt = goodput.Spec(min_fraction_of_capacity=0.02, within_ms=300)
    v = goodput.check(h, FS, per_attempt)
    assert v.valid is True and v.figures["ok"] == 100
    per_intent = goodput.Spec(min_fraction_of_capacity=0.02, within_ms=300, unit="intents")
    v = goodput.check(h, FS, per_intent)
    assert v.valid is False and v.figures["ok"] == 0


def parse(entry: dict[str, Any]) -> Any:
    (inv,) = parse_invariants(Node([entry], "x.yaml", "invariants"), context())
    return inv.spec


def test_unit_is_parsed_with_the_older_word_for_intents() -> None:
    assert parse({"availability": {"min": 0.9}}).unit == "intents"
    assert parse({"availability": {"min": 0.9, "unit": "requests"}}).unit == "intents"
    assert parse({"latency": {"p99_ms": 300}}).unit == "attempts"
    assert parse({"latency": {"p99_ms": 300, "unit": "intents"}}).unit == "intents"
    assert parse({"goodput": {"min_fraction_of_capacity": 0.5, "unit": "intents"}}).unit == (
        "intents"
    )


@pytest.mark.parametrize(
    ("entry", "key"),
    [
        ({"latency": {"p99_ms": 300, "unit": "people"}}, "invariants[0].latency.unit"),
        (
            {"availability": {"min": 0.9, "unit": "attempts", "within_ms": 300}},
            "invariants[0].availability.within_ms",
        ),
    ],
)
def test_unit_mistakes_name_the_key(entry: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse(entry)
    assert e.value.key == key
