"""Selecting and summarising history ops for checkers: filters, requests, windows."""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from harness.history import Op

__all__ = ["Request", "between", "elapsed", "requests", "select", "spans"]


def elapsed(op: Op) -> float:
    """Seconds from intended send to completion; never-sent ops count too (not dropped)."""
    return max(0.0, op.completed - op.intended)


def select(
    ops: Iterable[Op],
    *,
    op: tuple[str, ...] | None = None,
    client_class: tuple[str, ...] | None = None,
    span: tuple[float, float] | None = None,
    first_only: bool = False,
    time: str = "intended",
) -> list[Op]:
    """Ops matching operation names, client classes, a time span [start, end) and cause."""
    out = []
    for o in ops:
        if op is not None and o.op not in op:
            continue
        if client_class is not None and o.client_class not in client_class:
            continue
        if first_only and o.cause != "first":
            continue
        if span is not None:
            t = getattr(o, time)
            if not span[0] <= t < span[1]:
                continue
        out.append(o)
    return out


@dataclass(frozen=True, slots=True)
class Request:
    """What one user asked for: a chain of attempts (first, retries, re-opens)."""

    root: Op
    attempts: int
    ok: bool


def requests(ops: Iterable[Op]) -> list[Request]:
    """Group attempts into requests by their root; a request is ok if any attempt was.

    The request's `root` is its first attempt (the earliest op present, should the
    history lack the root itself).
    """
    first: dict[int, Op] = {}
    attempts: dict[int, int] = {}
    ok: dict[int, bool] = {}
    for o in ops:
        r = o.root if o.root is not None else o.id
        if r not in first or o.id < first[r].id:
            first[r] = o
        attempts[r] = attempts.get(r, 0) + 1
        ok[r] = ok.get(r, False) or o.outcome == "ok"
    return [Request(first[r], attempts[r], ok[r]) for r in sorted(first)]


def spans(start: float, end: float, width: float) -> Iterator[tuple[float, float]]:
    """Consecutive windows [a, a + width) from start; the last one may be cut at end."""
    if width <= 0:
        raise ValueError(f"window width must be > 0 s, got {width!r}")
    k = 0
    while True:
        a = start + k * width
        if a >= end:
            return
        yield a, min(end, a + width)
        k += 1


def between(times: Sequence[float], a: float, b: float) -> slice:
    """The slice of sorted `times` that falls in [a, b)."""
    return slice(bisect.bisect_left(times, a), bisect.bisect_left(times, b))
