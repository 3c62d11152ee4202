"""Selecting and summarising history ops for checkers: filters, intents, units, windows.

A checker judges one of two units, which its `unit:` key names:

- `attempts`: every op on its own (did each request succeed, how fast was each);
- `intents`: every chain of attempts with one root (`harness.history.Intent`): did the
  person get their answer, across retries and re-opens, and how long after they first
  asked. `requests`, the word availability used first, means the same.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence
from typing import Literal

from harness.history import Intent, Op, intents
from harness.validate import Node

__all__ = [
    "UNITS",
    "Intent",
    "Request",
    "Unit",
    "between",
    "elapsed",
    "intents",
    "parse_unit",
    "requests",
    "select",
    "spans",
]

Unit = Literal["intents", "attempts"]
UNITS: tuple[str, ...] = ("intents", "attempts")
_SYNONYMS = {"requests": "intents"}


def parse_unit(node: Node, default: Unit) -> Unit:
    """`unit: intents | attempts` (`requests` is read as `intents`); `default` when absent."""
    if not node.has("unit"):
        return default
    un = node.key("unit")
    value = _SYNONYMS.get(un.value, un.value) if isinstance(un.value, str) else un.value
    if value not in UNITS:
        raise un.fail(
            "one of ['intents', 'attempts']",
            "intents: each chain of retries and re-opens once; attempts: every request",
        )
    return "intents" if value == "intents" else "attempts"


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


Request = Intent
"""The older name of an intent."""


def requests(ops: Iterable[Op]) -> list[Intent]:
    """Group attempts into intents by their root (the older name of `intents`)."""
    return intents(ops)


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
