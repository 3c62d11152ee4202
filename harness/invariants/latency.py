"""Latency: percentiles per operation and phase, measured from the intended send time.

```yaml
- latency: {op: show_code, p99_ms: 300, during: steady}
- latency: {op: show_code, p50_ms: 50, p99_ms: 300, max_ms: 2000, include: ok}
- latency: {op: show_code, p99_ms: 3000, unit: intents}   # what each person waited
```

Every selected op counts (`include: all`, the default): failures, time-outs and ops the
runner never sent (their latency runs to when they were given up), so a slow or late
system cannot look fast by dropping work. `include: ok` keeps successful ops only.
Bounds are real milliseconds, never compressed; spans are named in run seconds.

`unit: attempts` (the default) judges every request on its own. `unit: intents` judges
each chain of retries and re-opens once, placed by its first ask: its latency runs from
the first ask to the first successful answer or, never answered, to the end of its last
attempt (when the person gave up), so retries that finally succeed cannot look fast.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from harness.history import Intent, Op, percentiles, quantile
from harness.invariants._ops import Unit, elapsed, intents, parse_unit, select
from harness.invariants.context import Context
from harness.invariants.during import ALL, During, parse_during
from harness.invariants.final_state import FinalState
from harness.invariants.verdict import Figure, Verdict
from harness.validate import Node
from harness.values import parse_ms, parse_names

NAME = "latency"
BOUNDS: dict[str, float] = {"p50_ms": 50, "p90_ms": 90, "p99_ms": 99, "p999_ms": 99.9}
KEYS = frozenset({"op", "client_class", "during", "include", "max_ms", "unit", *BOUNDS})


@dataclass(frozen=True)
class Spec:
    bounds: tuple[tuple[str, float], ...]  # (p99_ms, 300.0), ...
    op: tuple[str, ...] | None = None
    client_class: tuple[str, ...] | None = None
    during: During = ALL
    include: Literal["all", "ok"] = "all"
    unit: Unit = "attempts"


def parse(node: Node, ctx: Context) -> Spec:
    node.no_unknown_keys(KEYS)
    m = node.mapping()
    bounds = tuple((k, parse_ms(node.key(k))) for k in (*BOUNDS, "max_ms") if k in m)
    if not bounds:
        raise node.fail(f"at least one bound among {[*BOUNDS, 'max_ms']}, e.g. {{p99_ms: 300}}")
    return Spec(
        bounds=bounds,
        op=parse_names(node.key("op"), ctx.ops) if "op" in m else None,
        client_class=parse_names(node.key("client_class")) if "client_class" in m else None,
        during=parse_during(node.key("during"), ctx.phases) if "during" in m else ALL,
        include=node.key("include", "all").choice(("all", "ok")),
        unit=parse_unit(node, "attempts"),
    )


def check(history: Iterable[Op], final_state: FinalState, spec: Spec) -> Verdict:
    if spec.unit == "intents":
        return _check_intents(history, final_state, spec)
    span = final_state.interval(spec.during)
    ops = select(history, op=spec.op, client_class=spec.client_class, span=span)
    if spec.include == "ok":
        ops = [o for o in ops if o.outcome == "ok"]
    what = f"{','.join(spec.op) if spec.op else 'every op'} during {spec.during.text(*span)}"
    if not ops:
        return Verdict(NAME, None, {"count": 0}, f"no {what}: nothing to judge")
    ps = percentiles(ops, BOUNDS.values(), value=elapsed)
    measured = {k: ps[q] * 1000.0 for k, q in BOUNDS.items()}
    measured["max_ms"] = max(elapsed(o) for o in ops) * 1000.0
    figures: dict[str, Figure] = {"count": len(ops), **measured}
    figures["not_ok"] = sum(o.outcome != "ok" for o in ops)
    over = []
    for key, bound in spec.bounds:
        figures[f"{key}_bound"] = bound
        if measured[key] > bound:
            over.append(f"{key[:-3]} {measured[key]:.0f} ms > {bound:g} ms")
    slowest = sorted(ops, key=elapsed, reverse=True)[:5]
    evidence = tuple(
        f"op {o.id} {o.op} ({o.client_class}) intended {o.intended:.3f}s took "
        f"{elapsed(o) * 1000:.0f} ms: {o.outcome}{f' ({o.error})' if o.error else ''}"
        for o in slowest
    )
    if over:
        return Verdict(NAME, False, figures, f"{what}: " + ", ".join(over), evidence)
    within = ", ".join(f"{k[:-3]} {measured[k]:.0f} ms <= {b:g}" for k, b in spec.bounds)
    return Verdict(NAME, True, figures, f"{what}: {within}", evidence)


def _check_intents(history: Iterable[Op], final_state: FinalState, spec: Spec) -> Verdict:
    start, end = final_state.interval(spec.during)
    chosen = [
        i
        for i in intents(select(history, op=spec.op, client_class=spec.client_class))
        if start <= i.intended < end and (spec.include == "all" or i.ok)
    ]
    what = f"intents of {','.join(spec.op) if spec.op else 'every op'} during {spec.during}"
    if not chosen:
        return Verdict(NAME, None, {"count": 0}, f"no {what}: nothing to judge")
    values = sorted(i.latency for i in chosen)
    ps = {q: quantile(values, q) for q in BOUNDS.values()}
    measured = {k: ps[q] * 1000.0 for k, q in BOUNDS.items()}
    measured["max_ms"] = values[-1] * 1000.0
    figures: dict[str, Figure] = {"count": len(chosen), **measured}
    figures["not_ok"] = sum(not i.ok for i in chosen)
    figures["attempts"] = sum(i.attempts for i in chosen)
    over = []
    for key, bound in spec.bounds:
        figures[f"{key}_bound"] = bound
        if measured[key] > bound:
            over.append(f"{key[:-3]} {measured[key]:.0f} ms > {bound:g} ms")
    evidence = tuple(_intent_line(i) for i in sorted(chosen, key=_wait, reverse=True)[:5])
    if over:
        return Verdict(NAME, False, figures, f"{what}: " + ", ".join(over), evidence)
    within = ", ".join(f"{k[:-3]} {measured[k]:.0f} ms <= {b:g}" for k, b in spec.bounds)
    return Verdict(NAME, True, figures, f"{what}: {within}", evidence)


def _wait(i: Intent) -> float:
    return i.latency


def _intent_line(i: Intent) -> str:
    r = i.root
    how = "answered" if i.ok else "never answered"
    return (
        f"intent of op {r.id} {r.op} ({r.client_class}) first asked {r.intended:.3f}s:"
        f" {how} after {i.latency * 1000:.0f} ms, {i.attempts} attempt(s)"
    )
