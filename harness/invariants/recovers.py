"""Recovery: how long after the trigger ends until the SLO holds again; "never" fails.

```yaml
- recovers: {within: 6s, after: trigger_end}
- recovers: {within: 60s, after: surge, op: show_code, p99_ms: 300, min_availability: 0.99}
```

`after` is `trigger_end` (the later of the last fault heal and the end of the last phase
offered more than C), `faults_healed`, `surge_over`, a phase name (its end), or a time.
From there, windows of `window` (default 1s) are judged on new arrivals (first attempts,
unless `attempts: all`) of `op` (default show_code): a window holds when it has at least
`min_ops` ops, availability >= `min_availability` and p99 <= `p99_ms`. Recovery is the
start of the first of `consecutive` holding windows. Without `within` the verdict only
asks that recovery happens; a system that never recovers is in a metastable state.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from harness.history import Op
from harness.invariants._ops import between, elapsed, select, spans
from harness.invariants._values import (
    parse_duration,
    parse_fraction,
    parse_ms,
    parse_names,
)
from harness.invariants.final_state import FinalState
from harness.invariants.verdict import Figure, Verdict
from harness.validate import Node

NAME = "recovers"
ANCHORS = ("trigger_end", "faults_healed", "surge_over")
KEYS = frozenset(
    {
        "within",
        "after",
        "op",
        "client_class",
        "p99_ms",
        "min_availability",
        "window",
        "consecutive",
        "min_ops",
        "attempts",
    }
)


@dataclass(frozen=True)
class Spec:
    within: float | None = None
    after: str | float = "trigger_end"  # an anchor, a phase name, or experiment seconds
    op: tuple[str, ...] | None = ("show_code",)
    client_class: tuple[str, ...] | None = None
    p99_ms: float = 300.0
    min_availability: float = 0.99
    window: float = 1.0
    consecutive: int = 2
    min_ops: int = 5
    attempts: Literal["first", "all"] = "first"


def parse(node: Node, phases: tuple[str, ...] | None = None) -> Spec:
    node.no_unknown_keys(KEYS)
    m = node.mapping()
    after: str | float = "trigger_end"
    if "after" in m:
        a = node.key("after")
        expected = f"one of {[*ANCHORS, *(phases or ())]} or a time like 25s"
        if isinstance(a.value, bool) or not isinstance(a.value, str | int | float):
            raise a.fail(expected)
        if isinstance(a.value, int | float) or a.value[:1].isdigit():
            after = parse_duration(a)
        elif a.value in (*ANCHORS, *(phases or ())) or (phases is None and a.value.isidentifier()):
            after = a.value
        else:
            raise a.fail(expected, "unknown anchor or phase")
    return Spec(
        within=parse_duration(node.key("within")) if "within" in m else None,
        after=after,
        op=parse_names(node.key("op")) if "op" in m else ("show_code",),
        client_class=parse_names(node.key("client_class")) if "client_class" in m else None,
        p99_ms=parse_ms(node.key("p99_ms")) if "p99_ms" in m else 300.0,
        min_availability=(
            parse_fraction(node.key("min_availability")) if "min_availability" in m else 0.99
        ),
        window=parse_duration(node.key("window"), positive=True) if "window" in m else 1.0,
        consecutive=node.key("consecutive", 2).int(minimum=1),
        min_ops=node.key("min_ops", 5).int(minimum=1),
        attempts=node.key("attempts", "first").choice(("first", "all")),  # type: ignore[arg-type]
    )


def _anchor(fs: FinalState, after: str | float) -> float | None:
    if isinstance(after, float | int):
        return fs.scaled(float(after))
    if after == "trigger_end":
        return fs.trigger_end()
    if after == "faults_healed":
        return fs.faults_healed()
    if after == "surge_over":
        return fs.surge_over()
    return fs.phase(after).end


def check(history: Iterable[Op], final_state: FinalState, spec: Spec) -> Verdict:
    fs = final_state
    t = _anchor(fs, spec.after)
    if t is None:
        return Verdict(NAME, None, {}, f"no trigger to recover from ({spec.after}: none)")
    ops = select(
        history, op=spec.op, client_class=spec.client_class, first_only=spec.attempts == "first"
    )
    after = sorted((o for o in ops if o.intended >= t), key=lambda o: o.intended)
    if not after:
        return Verdict(
            NAME, None, {"trigger_end_s": t}, "no operations after the trigger: extend the workload"
        )
    width = fs.scaled(spec.window)
    end = max(o.intended for o in after) + 1e-9
    streak, recovered_at, judged = 0, None, 0
    evidence: list[str] = []
    times = [o.intended for o in after]
    for a, b in spans(t, end, width):
        win = after[between(times, a, b)]
        judged += 1
        holds = False
        line = f"{a:.2f}s: n={len(win)}"
        if len(win) >= spec.min_ops:
            avail = sum(o.outcome == "ok" for o in win) / len(win)
            p99 = sorted(elapsed(o) for o in win)[max(0, -(-99 * len(win) // 100) - 1)] * 1000
            holds = avail >= spec.min_availability and p99 <= spec.p99_ms
            line += f" availability={avail:.3f} p99={p99:.0f}ms"
        if len(evidence) < 12:
            evidence.append(line + (" holds" if holds else " violated"))
        streak = streak + 1 if holds else 0
        if streak >= spec.consecutive:
            recovered_at = a - (spec.consecutive - 1) * width
            break
    figures: dict[str, Figure] = {
        "trigger_end_s": t,
        "windows_judged": judged,
        "window_s": spec.window,
    }
    if spec.within is not None:
        figures["within_s"] = spec.within
    if recovered_at is None:
        figures["recovery_s"] = "never"
        return Verdict(
            NAME,
            False,
            figures,
            f"never recovered after {t:.2f}s (SLO p99<={spec.p99_ms:g}ms,"
            f" availability>={spec.min_availability}): metastable",
            tuple(evidence),
        )
    recovery = max(0.0, recovered_at - t) * fs.compression  # experiment seconds
    figures["recovery_s"] = recovery
    figures["recovered_at_s"] = recovered_at
    if spec.within is not None and recovery > spec.within:
        return Verdict(
            NAME,
            False,
            figures,
            f"recovered {recovery:.2f}s after the trigger, later than {spec.within:g}s",
            tuple(evidence),
        )
    return Verdict(
        NAME, True, figures, f"recovered {recovery:.2f}s after the trigger", tuple(evidence)
    )
