"""Fake histories for the invariant tests (no I/O, no system); no tests of its own."""

from __future__ import annotations

import itertools
from typing import Any

from harness.history import Op
from harness.workload import Ingest, LabResult, Scan, ShowCode

_ids = itertools.count(1)


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
        args = ShowCode(i % 1000 + 1)
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


def scan(t: float, scan_id: str, outcome: str = "ok", **kw: Any) -> Op:
    return op(t, outcome, name="scan", args=Scan(scan_id, 1, 1), **kw)


def ingest(t: float, *results: tuple[int, str], outcome: str = "ok", latency: float = 0.05) -> Op:
    batch = tuple(LabResult(f"s{p}-{t}", p, r) for p, r in results)  # type: ignore[arg-type]
    return op(t, outcome, latency, name="ingest", args=Ingest(batch))


def show(t: float, person: int, colour: str | None, outcome: str = "ok") -> Op:
    value = None if colour is None else {"person_id": person, "colour": colour}
    return op(t, outcome, args=ShowCode(person), value=value)
