"""When an invariant looks: a named phase of the rate profile, `all`, or a span of time.

A file writes spans in experiment time; a checker judges, and says what it judged, in
run seconds (the history's clock, the report's axes): `During.text` names a span the
way every message does, e.g. ``surge (5.00s..10.00s)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from harness.validate import Node
from harness.values import parse_duration, parse_name

__all__ = ["ALL", "During", "parse_during", "seconds"]


def seconds(value: float) -> str:
    """A time or duration in run seconds as messages write it: ``0.35s``, ``12.4s``."""
    return f"{value:.2f}s" if abs(value) < 10 else f"{value:.1f}s"


@dataclass(frozen=True)
class During:
    """When an invariant looks: a named phase, `all`, or an explicit span of experiment time."""

    phase: str | None = "all"
    start: float | None = None
    end: float | None = None

    def __str__(self) -> str:
        if self.phase is not None:
            return self.phase
        return f"{self.start:g}s..{self.end:g}s"

    def text(self, start: float, end: float) -> str:
        """This span as a message names it: the phase, with `start`..`end` (run seconds)."""
        span = f"{seconds(start)}..{seconds(end) if math.isfinite(end) else 'the end'}"
        return span if self.phase is None else f"{self.phase} ({span})"


ALL = During()


def parse_during(node: Node, phases: tuple[str, ...] | None = None) -> During:
    """A phase name (checked against `phases` when given), `all`, or `{from: 5s, to: 25s}`."""
    v = node.value
    if isinstance(v, str):
        if v == "all":
            return ALL
        if phases is not None and v not in phases:
            raise node.fail(
                f"'all', {{from: .., to: ..}} or a phase of workload.rate: {list(phases)}",
                "unknown phase",
            )
        return During(parse_name(node, "a phase name"))
    if isinstance(v, dict):
        node.no_unknown_keys({"from", "to"})
        start = parse_duration(node.key("from", 0))
        end = parse_duration(node.key("to"))
        if end <= start:
            raise node.key("to").fail(f"a time after from={start:g}s")
        return During(None, start, end)
    raise node.fail("a phase name, 'all', or {from: 5s, to: 25s}")
