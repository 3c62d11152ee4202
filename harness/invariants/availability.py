"""Availability: the share of requests (or attempts) that succeeded, over a phase and windows.

```yaml
- availability: {op: show_code, min: 0.99, client_class: good, during: steady}
- availability: {min: 0.99, window: 1s, max_below_for: 5s}   # <= 1% errors for <= 5 s
```

A request is a chain of attempts (first try, retries, re-opens); it succeeded if any
attempt did, and it is placed in time by its first attempt's intended time. With
`unit: attempts` every attempt counts on its own. With `window`, each window holding at
least `min_ops` operations must reach `min`, or, with `max_below_for`, may stay below it
for at most that long in a row.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from harness.history import Op
from harness.invariants._ops import between, requests, select, spans
from harness.invariants._values import (
    ALL,
    During,
    parse_duration,
    parse_during,
    parse_fraction,
    parse_names,
)
from harness.invariants.final_state import FinalState
from harness.invariants.verdict import Figure, Verdict
from harness.validate import Node

NAME = "availability"
KEYS = frozenset(
    {"op", "client_class", "min", "during", "unit", "window", "max_below_for", "min_ops"}
)


@dataclass(frozen=True)
class Spec:
    min: float
    op: tuple[str, ...] | None = None
    client_class: tuple[str, ...] | None = None
    during: During = ALL
    unit: Literal["requests", "attempts"] = "requests"
    window: float | None = None
    max_below_for: float | None = None
    min_ops: int = 5


def parse(node: Node, phases: tuple[str, ...] | None = None) -> Spec:
    node.no_unknown_keys(KEYS)
    m = node.mapping()
    spec = Spec(
        min=parse_fraction(node.key("min")),
        op=parse_names(node.key("op")) if "op" in m else None,
        client_class=parse_names(node.key("client_class")) if "client_class" in m else None,
        during=parse_during(node.key("during"), phases) if "during" in m else ALL,
        unit=node.key("unit", "requests").choice(("requests", "attempts")),  # type: ignore[arg-type]
        window=parse_duration(node.key("window"), positive=True) if "window" in m else None,
        max_below_for=(parse_duration(node.key("max_below_for")) if "max_below_for" in m else None),
        min_ops=node.key("min_ops", 5).int(minimum=1),
    )
    if spec.max_below_for is not None and spec.window is None:
        raise node.key("max_below_for").fail("a 'window' width alongside max_below_for")
    return spec


def check(history: Iterable[Op], final_state: FinalState, spec: Spec) -> Verdict:
    start, end = final_state.interval(spec.during)
    ops = select(history, op=spec.op, client_class=spec.client_class)
    if spec.unit == "requests":
        items = [(r.root.intended, r.ok) for r in requests(ops)]
    else:
        items = [(o.intended, o.outcome == "ok") for o in ops]
    items = sorted((t, ok) for t, ok in items if start <= t < end)
    what = f"{spec.unit} of {','.join(spec.op) if spec.op else 'every op'} during {spec.during}"
    if not items:
        return Verdict(NAME, None, {"total": 0}, f"no {what}: nothing to judge")
    good = sum(ok for _, ok in items)
    availability = good / len(items)
    figures: dict[str, Figure] = {
        "availability": availability,
        "min": spec.min,
        "ok": good,
        "total": len(items),
    }
    problems = []
    if availability < spec.min:
        problems.append(f"{availability:.4f} of {what} succeeded, below {spec.min}")
    evidence: list[str] = []
    if spec.window is not None:
        width = final_state.scaled(spec.window)
        last = max(t for t, _ in items)
        counted, below, run, longest, worst = 0, 0, 0, 0, 1.0
        times = [t for t, _ in items]
        for a, b in spans(start, min(end, last + width), width):
            win = [ok for _, ok in items[between(times, a, b)]]
            if len(win) < spec.min_ops:
                run = 0
                continue
            counted += 1
            share = sum(win) / len(win)
            worst = min(worst, share)
            if share < spec.min:
                below += 1
                run += 1
                longest = max(longest, run)
                if len(evidence) < 10:
                    evidence.append(f"{a:.2f}s..{b:.2f}s: {share:.3f} ({sum(win)}/{len(win)})")
            else:
                run = 0
        longest_s = longest * spec.window  # experiment seconds
        figures.update(
            windows=counted, windows_below=below, worst_window=worst, longest_below_s=longest_s
        )
        if spec.max_below_for is None and below:
            problems.append(f"{below} of {counted} windows of {spec.window:g}s below {spec.min}")
        if spec.max_below_for is not None and longest_s > spec.max_below_for:
            problems.append(
                f"below {spec.min} for {longest_s:g}s in a row, longer than {spec.max_below_for:g}s"
            )
    if problems:
        return Verdict(NAME, False, figures, "; ".join(problems), tuple(evidence))
    return Verdict(NAME, True, figures, f"{availability:.4f} of {what} succeeded", tuple(evidence))
