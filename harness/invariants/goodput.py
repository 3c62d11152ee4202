"""Goodput: successful operations per second during overload, as a fraction of capacity C.

```yaml
- goodput: {min_fraction_of_capacity: 0.8, during: surge}
- goodput: {min_fraction_of_capacity: 0.8, during: surge, window: 2s, within_ms: 1000}
- goodput: {min_fraction_of_capacity: 0.5, during: surge, within_ms: 300, unit: intents}
```

Counts ok operations (any attempt) completed inside the phase, divided by its length
and by C. `within_ms` counts only those answered within that latency (from the
intended time); `window` requires every full window to reach the bound ("throughout").
With `unit: intents` an intent answered after retries or re-opens counts once, and
`within_ms` runs from its first ask (a person who got the answer on the third try, 2 s
after asking, was not served within 300 ms); the default `unit: attempts` times each
attempt from its own intended time.
Messages name spans and windows in run seconds.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from harness.history import Op
from harness.invariants._ops import Unit, between, elapsed, intents, parse_unit, select, spans
from harness.invariants.context import Context
from harness.invariants.during import ALL, During, parse_during, seconds
from harness.invariants.final_state import FinalState
from harness.invariants.verdict import Figure, Verdict
from harness.validate import Node
from harness.values import parse_duration, parse_fraction, parse_ms, parse_names

NAME = "goodput"
KEYS = frozenset(
    {"min_fraction_of_capacity", "during", "op", "client_class", "within_ms", "window", "unit"}
)


@dataclass(frozen=True)
class Spec:
    min_fraction_of_capacity: float
    during: During = ALL
    op: tuple[str, ...] | None = None
    client_class: tuple[str, ...] | None = None
    within_ms: float | None = None
    window: float | None = None
    unit: Unit = "attempts"


def parse(node: Node, ctx: Context) -> Spec:
    node.no_unknown_keys(KEYS)
    m = node.mapping()
    return Spec(
        min_fraction_of_capacity=parse_fraction(node.key("min_fraction_of_capacity")),
        during=parse_during(node.key("during"), ctx.phases) if "during" in m else ALL,
        op=parse_names(node.key("op"), ctx.ops) if "op" in m else None,
        client_class=parse_names(node.key("client_class")) if "client_class" in m else None,
        within_ms=parse_ms(node.key("within_ms")) if "within_ms" in m else None,
        window=parse_duration(node.key("window"), positive=True) if "window" in m else None,
        unit=parse_unit(node, "attempts"),
    )


def check(history: Iterable[Op], final_state: FinalState, spec: Spec) -> Verdict:
    capacity = final_state.capacity
    if not capacity or capacity <= 0:
        return Verdict(NAME, None, {}, "capacity C was not measured: goodput has no yardstick")
    ops = list(history)
    start, end = final_state.interval(spec.during)
    if end == float("inf"):
        end = max((o.completed for o in ops), default=start)
    length = end - start
    if length <= 0:
        return Verdict(NAME, None, {}, f"{spec.during} has no length")
    chosen = select(ops, op=spec.op, client_class=spec.client_class)
    within = spec.within_ms
    if spec.unit == "intents":
        good = sorted(
            i.answered
            for i in intents(chosen)
            if i.answered is not None and (within is None or i.latency * 1000.0 <= within)
        )
    else:
        good = sorted(
            o.completed
            for o in chosen
            if o.outcome == "ok" and (within is None or elapsed(o) * 1000.0 <= within)
        )
    n = sum(start <= t < end for t in good)
    offered = sum(start <= o.intended < end and o.cause == "first" for o in chosen)
    fraction = n / length / capacity
    bound = spec.min_fraction_of_capacity
    figures: dict[str, Figure] = {
        "goodput_rps": n / length,
        "capacity_rps": capacity,
        "fraction_of_capacity": fraction,
        "min_fraction": bound,
        "offered_rps": offered / length,
        "ok": n,
        "seconds": length,
    }
    when = spec.during.text(start, end)
    problems = []
    if fraction < bound:
        problems.append(f"goodput {fraction:.3f} C during {when}, below {bound} C")
    evidence: list[str] = []
    if spec.window is not None:
        width = final_state.scaled(spec.window)
        worst = None
        for a, b in spans(start, end, width):
            if b - a < width * 0.999:
                continue  # a partial window at the end says little about a rate
            sl = between(good, a, b)
            f = (sl.stop - sl.start) / width / capacity
            worst = f if worst is None else min(worst, f)
            if f < bound and len(evidence) < 10:
                evidence.append(f"{a:.2f}s..{b:.2f}s: {f:.3f} C")
        if worst is not None:
            figures["worst_window_fraction"] = worst
            if worst < bound:
                problems.append(f"a {seconds(width)} window fell to {worst:.3f} C")
    if problems:
        return Verdict(NAME, False, figures, "; ".join(problems), tuple(evidence))
    return Verdict(NAME, True, figures, f"goodput {fraction:.3f} C during {when}")
