"""The end-of-run table: per operation and client class, what was asked, what came of
it, and how long it took (as k6's end-of-test summary does for a load test).

Every attempt lands in one outcome class (`harness.timeline.classify`); latency is
from the intended send time of the attempts that were sent (open loop), in
milliseconds, nearest-rank percentiles as everywhere else.

    rows = totals(history.load("runs/x/latest/history.jsonl.gz"))
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from harness.history import Op, quantile
from harness.timeline import CLASSES, classify

__all__ = ["ALL", "Totals", "totals"]

ALL = "all"


@dataclass(frozen=True)
class Totals:
    """One row: `op` and `client_class` (`all`: every one), requests (first attempts),
    attempts, their outcome counts, and latency percentiles in ms (None: none sent)."""

    op: str
    client_class: str
    requests: int
    attempts: int
    outcomes: dict[str, int]  # ok, rejected, timeout, error, never_sent
    p50_ms: float | None
    p90_ms: float | None
    p99_ms: float | None
    max_ms: float | None

    @property
    def ok_share(self) -> float:
        return self.outcomes.get("ok", 0) / self.attempts if self.attempts else 0.0


def _row(op: str, client_class: str, items: list[Op]) -> Totals:
    outcomes: dict[str, int] = dict.fromkeys(CLASSES, 0)
    latencies = []
    for o in items:
        outcomes[classify(o)] += 1
        if o.latency is not None:
            latencies.append(max(0.0, o.latency) * 1000.0)
    latencies.sort()

    def q(p: float) -> float | None:
        return quantile(latencies, p) if latencies else None

    return Totals(
        op=op,
        client_class=client_class,
        requests=sum(o.cause == "first" for o in items),
        attempts=len(items),
        outcomes=outcomes,
        p50_ms=q(50),
        p90_ms=q(90),
        p99_ms=q(99),
        max_ms=latencies[-1] if latencies else None,
    )


def totals(ops: Iterable[Op]) -> tuple[Totals, ...]:
    """One row per operation and client class, an `all` row per operation with more than
    one class, and a last row over everything (when there is more than one operation)."""
    groups: dict[tuple[str, str], list[Op]] = defaultdict(list)
    every: list[Op] = []
    for o in ops:
        groups[(o.op, o.client_class)].append(o)
        every.append(o)
    rows: list[Totals] = []
    for name in sorted({op for op, _ in groups}):
        classes = sorted(c for op, c in groups if op == name)
        rows += [_row(name, c, groups[(name, c)]) for c in classes]
        if len(classes) > 1:
            rows.append(_row(name, ALL, [o for c in classes for o in groups[(name, c)]]))
    if len({op for op, _ in groups}) > 1:
        rows.append(_row(ALL, ALL, every))
    return tuple(rows)
