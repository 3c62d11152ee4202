"""Reading the values every file shares: durations, latency bounds, fractions and names.

Every reader takes a `harness.validate.Node`, so a bad value raises a `ConfigError`
naming the file, the key path, the value and what was expected. One reader per kind
of value, used by the experiment, the workload, the faults and the invariants alike.
"""

from __future__ import annotations

import math
import re

from harness.validate import Node

__all__ = [
    "DURATION_HELP",
    "MAX_SECONDS",
    "parse_duration",
    "parse_fraction",
    "parse_ms",
    "parse_name",
    "parse_names",
    "parse_span",
]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*(ms|s|m|h)\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_PERCENT = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,63}$")  # at most 64 characters
DURATION_HELP = "a duration like 5s, 500ms, 2m, 1h or a number of seconds"
MAX_SECONDS = 86_400.0  # no duration in a file is longer than a day


def parse_duration(node: Node, *, positive: bool = False, maximum: float = MAX_SECONDS) -> float:
    """Seconds from `5s`, `500ms`, `2m`, `1h` or a plain number of seconds, at most `maximum`."""
    v = node.value
    bound = " (> 0)" if positive else " (>= 0)"
    expected = f"{DURATION_HELP}{bound}, at most {_seconds(maximum)}"
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
    if seconds > maximum:
        raise node.fail(expected)
    return seconds


def _seconds(s: float) -> str:
    if s >= 3600 and s % 3600 == 0:
        return f"{s / 3600:g}h"
    return f"{s:g}s"


def parse_span(node: Node) -> tuple[float, float]:
    """`[low, high]` durations (`[2s, 5s]`), or one duration for both ends."""
    if isinstance(node.value, list):
        items = list(node.elements())
        if len(items) != 2:
            raise node.fail("[low, high] durations, e.g. [2s, 5s]")
        lo, hi = parse_duration(items[0]), parse_duration(items[1])
        if hi < lo:
            raise items[1].fail(f"a duration >= {lo:g}s (the low end)")
        return lo, hi
    d = parse_duration(node)
    return d, d


def parse_ms(node: Node) -> float:
    """A latency bound in milliseconds (real time, never compressed): a number or `2s`."""
    if isinstance(node.value, str) and _DURATION.match(node.value):
        return parse_duration(node) * 1000.0
    return node.number(minimum=0, maximum=MAX_SECONDS * 1000)


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


def parse_name(
    node: Node, what: str = "a lowercase name like 'get_item' or 'good' (at most 64 characters)"
) -> str:
    """One lowercase name of at most 64 letters, digits, `_` and `-`, starting with a letter."""
    if not isinstance(node.value, str) or not _NAME.match(node.value):
        raise node.fail(what)
    return node.value


def parse_names(node: Node, choices: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """One name or a list of names (`good` or `[good, impatient]`), among `choices` if given."""
    values = [node] if isinstance(node.value, str) else list(node.elements())
    if not values:
        raise node.fail("a name or a non-empty list of names")
    out = []
    for el in values:
        name = parse_name(el)
        if choices is not None and name not in choices:
            raise el.fail(f"one of {list(choices)}")
        out.append(name)
    return tuple(out)
