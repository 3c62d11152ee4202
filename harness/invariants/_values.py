"""Reading the values experiment files share: durations, fractions, names, time selectors.

Every reader takes a `harness.validate.Node`, so a bad value raises a `ConfigError`
naming the file, the key path, the value and what was expected.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from harness.validate import Node

__all__ = [
    "ALL",
    "During",
    "parse_duration",
    "parse_during",
    "parse_fraction",
    "parse_ms",
    "parse_names",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h)\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
DURATION_HELP = "a duration like 5s, 500ms, 2m or a number of seconds"


def parse_duration(node: Node, *, positive: bool = False) -> float:
    """Seconds from `5s`, `500ms`, `2m`, `1h` or a plain number of seconds."""
    v = node.value
    expected = DURATION_HELP + (" (> 0)" if positive else " (>= 0)")
    if isinstance(v, bool):
        raise node.fail(expected)
    if isinstance(v, int | float):
        seconds = float(v)
    elif isinstance(v, str) and (m := _DURATION.match(v)):
        seconds = float(m.group(1)) * _UNITS[m.group(2)]
    else:
        raise node.fail(expected)
    if not math.isfinite(seconds) or seconds < 0 or (positive and seconds == 0):
        raise node.fail(expected)
    return seconds


def parse_ms(node: Node) -> float:
    """A latency bound in milliseconds (real time, never compressed): a number >= 0."""
    if isinstance(node.value, str) and _DURATION.match(node.value):
        return parse_duration(node) * 1000.0
    return node.number(minimum=0)


def parse_fraction(node: Node) -> float:
    """A fraction in [0, 1]: `0.99` or `"99%"`."""
    v = node.value
    expected = "a fraction in [0, 1] like 0.99 or '99%'"
    if isinstance(v, str) and (m := _PERCENT.match(v)):
        f = float(m.group(1)) / 100.0
    elif isinstance(v, int | float) and not isinstance(v, bool):
        f = float(v)
    else:
        raise node.fail(expected)
    if not (math.isfinite(f) and 0.0 <= f <= 1.0):
        raise node.fail(expected)
    return f


def parse_names(node: Node) -> tuple[str, ...]:
    """One name or a list of names (`good` or `[good, impatient]`)."""
    values = [node] if isinstance(node.value, str) else list(node.elements())
    if not values:
        raise node.fail("a name or a non-empty list of names")
    out = []
    for el in values:
        if not isinstance(el.value, str) or not _NAME.match(el.value):
            raise el.fail("a lowercase name like 'show_code' or 'good'")
        out.append(el.value)
    return tuple(out)


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
        if not _NAME.match(v):
            raise node.fail("a phase name")
        return During(v)
    if isinstance(v, dict):
        node.no_unknown_keys({"from", "to"})
        start = parse_duration(node.key("from", 0))
        end = parse_duration(node.key("to"))
        if end <= start:
            raise node.key("to").fail(f"a time after from={start:g}s")
        return During(None, start, end)
    raise node.fail("a phase name, 'all', or {from: 5s, to: 25s}")
