"""Availability: the share of intents (or attempts) that succeeded, over a phase and windows.

```yaml
- availability: {op: show_code, min: 0.99, client_class: good, during: steady}
- availability: {min: 0.99, window: 1s, max_below_for: 5s}   # <= 1% errors for <= 5 s
- availability: {op: show_code, min: 0.999, unit: attempts}  # every request, not every person
- availability: {op: show_code, min: 0.99, unit: intents, within_ms: 3000}
```

`unit: intents` (the default; `requests` is the same): an intent is a chain of attempts
(first try, retries, re-opens); it succeeded if any attempt did (with `within_ms`: one
answered within that many real milliseconds of the first ask), and it is placed in
time by its first attempt's intended time. With `unit: attempts` every attempt counts
on its own, so clients' retries cannot hide a server's failures. With `window`, each
window holding at least `min_ops` operations must reach `min`, or, with
`max_below_for`, may stay below it for at most that long in a row.
Messages and figures are in run seconds (the file's `window` and `max_below_for` divided
by the compression).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from harness.history import Op
from harness.invariants._ops import Unit, between, intents, parse_unit, select, spans
from harness.invariants.context import Context
from harness.invariants.during import ALL, During, parse_during, seconds
from harness.invariants.final_state import FinalState
from harness.invariants.verdict import Figure, Verdict
from harness.validate import Node
from harness.values import parse_duration, parse_fraction, parse_ms, parse_names

NAME = "availability"
KEYS = frozenset(
    {
        "op",
        "client_class",
        "min",
        "during",
        "unit",
        "window",
        "max_below_for",
        "min_ops",
        "within_ms",
    }
)


@dataclass(frozen=True)
class Spec:
    min: float
    op: tuple[str, ...] | None = None
    client_class: tuple[str, ...] | None = None
    during: During = ALL
    unit: Unit = "intents"
    window: float | None = None
    max_below_for: float | None = None
    min_ops: int = 5
    within_ms: float | None = None  # intents: answered within this long of the first ask


def parse(node: Node, ctx: Context) -> Spec:
    node.no_unknown_keys(KEYS)
    m = node.mapping()
    spec = Spec(
        min=parse_fraction(node.key("min")),
        op=parse_names(node.key("op"), ctx.ops) if "op" in m else None,
        client_class=parse_names(node.key("client_class")) if "client_class" in m else None,
        during=parse_during(node.key("during"), ctx.phases) if "during" in m else ALL,
        unit=parse_unit(node, "intents"),
        window=parse_duration(node.key("window"), positive=True) if "window" in m else None,
        max_below_for=(parse_duration(node.key("max_below_for")) if "max_below_for" in m else None),
        min_ops=node.key("min_ops", 5).int(minimum=1),
        within_ms=parse_ms(node.key("within_ms")) if "within_ms" in m else None,
    )
    if spec.within_ms is not None and spec.unit != "intents":
        raise node.key("within_ms").fail("no within_ms with unit: attempts (it bounds intents)")
    if spec.max_below_for is not None and spec.window is None:
        raise node.key("max_below_for").fail("a 'window' width alongside max_below_for")
    return spec


def check(history: Iterable[Op], final_state: FinalState, spec: Spec) -> Verdict:
    start, end = final_state.interval(spec.during)
    ops = select(history, op=spec.op, client_class=spec.client_class)
    if spec.unit == "intents":
        bound = None if spec.within_ms is None else spec.within_ms / 1000.0
        items = [(i.intended, i.ok and (bound is None or i.latency <= bound)) for i in intents(ops)]
    else:
        items = [(o.intended, o.outcome == "ok") for o in ops]
    items = sorted((t, ok) for t, ok in items if start <= t < end)
    ops_text = ",".join(spec.op) if spec.op else "every op"
    what = f"{spec.unit} of {ops_text} during {spec.during.text(start, end)}"
    done = "succeeded"
    if spec.within_ms is not None:
        done = f"were answered within {spec.within_ms:g} ms of the first ask"
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
    if spec.within_ms is not None:
        figures["within_ms"] = spec.within_ms
    problems = []
    if availability < spec.min:
        problems.append(f"{availability:.4f} of {what} {done}, below {spec.min}")
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
        longest_s = longest * width  # run seconds, as every time a user reads
        figures.update(
            windows=counted,
            windows_below=below,
            worst_window=worst,
            window_s=width,
            longest_below_s=longest_s,
        )
        if spec.max_below_for is None and below:
            problems.append(f"{below} of {counted} windows of {seconds(width)} below {spec.min}")
        if spec.max_below_for is not None:
            allowed = final_state.scaled(spec.max_below_for)
            figures["max_below_for_s"] = allowed
            if longest_s > allowed + 1e-9:
                problems.append(
                    f"below {spec.min} for {seconds(longest_s)} in a row,"
                    f" longer than {seconds(allowed)}"
                )
    if problems:
        return Verdict(NAME, False, figures, "; ".join(problems), tuple(evidence))
    return Verdict(NAME, True, figures, f"{availability:.4f} of {what} {done}", tuple(evidence))
