"""Fake histories for the invariant tests (no I/O, no system); no tests of its own."""

from __future__ import annotations

import itertools
from typing import Any

from harness.history import Op
from harness.invariants import Context
from tests.support import reference

_ids = itertools.count(1)
SUT = reference()


def context(phases: tuple[str, ...] | None = ("steady", "surge")) -> Context:
    """What an experiment on the reference system parses its invariants against."""
    return Context(
        phases=phases,
        operations=SUT.operations,
        slo_op=SUT.slo.op if SUT.slo else None,
        state=tuple(SUT.state),
        presets=SUT.presets,
    )


def op(
    t: float,
    outcome: str = "ok",
    latency: float = 0.010,
    *,
    name: str = "show_code",
    args: Any = None,
    client_class: str = "good",
    sent: bool = True,
    **kw: Any,
) -> Op:
    """One op intended at t, completed `latency` seconds later."""
    i = kw.pop("id", None) or next(_ids)
    if args is None:
        args = {"person": i % 1000 + 1}
    return Op(
        id=i,
        client_id=f"c{i}",
        client_class=client_class,
        op=name,
        args=args,
        intended=t,
        sent=t + 0.001 if sent else None,
        completed=t + latency,
        outcome=outcome,  # type: ignore[arg-type]
        **kw,
    )


def steady(
    t0: float, t1: float, rate: float, outcome: str = "ok", latency: float = 0.010, **kw: Any
) -> list[Op]:
    """Ops every 1/rate seconds over [t0, t1)."""
    n = round((t1 - t0) * rate)
    return [op(t0 + k / rate, outcome, latency, **kw) for k in range(n)]


def scan(
    t: float, scan_id: str, outcome: str = "ok", person: int = 1, venue: int = 1, **kw: Any
) -> Op:
    args = {"scan_id": scan_id, "person": person, "venue": venue}
    return op(t, outcome, name="scan", args=args, **kw)


def ingest(t: float, *results: tuple[int, str], outcome: str = "ok", latency: float = 0.05) -> Op:
    batch = [{"sample_id": f"s{p}-{t}", "person_id": p, "result": r} for p, r in results]
    return op(t, outcome, latency, name="ingest", args={"lab": 1, "results": batch})


def show(t: float, person: int, colour: str | None, outcome: str = "ok") -> Op:
    value = None if colour is None else {"colour": colour}
    return op(t, outcome, args={"person": person}, value=value)
