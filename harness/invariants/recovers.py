"""Recovery: how long after the trigger ends until the SLO holds again; "never" fails.

```yaml
- recovers: {within: 6s, after: trigger_end}
- recovers: {within: 60s, after: surge, op: show_code, p99_ms: 300, min_availability: 0.99}
```

`after` is `trigger_end` (the later of the last fault heal and the end of the last phase
offered more than C), `faults_healed`, `surge_over`, a phase name (its end), or a time.
From there, windows of `window` (default 1s) are judged on new arrivals (first attempts,
unless `attempts: all`) of `op` (default: the system's SLO operation): a window holds
when it has at least `min_ops` ops, availability >= `min_availability` and p99 <=
`p99_ms`. Recovery is the start of the first of `consecutive` holding windows. Without
`within` the verdict only asks that recovery happens; a system that never recovers is in
a metastable state. Every time the verdict states is run seconds (the history's clock,
the report's axes): the trigger, the recovery, and `within` and `window` divided by the
compression; its figures carry them for the report's recovery table (`after`,
`trigger_end_s`, `recovered_at_s`, `recovery_s`), so table and verdict agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from harness.history import Op, quantile
from harness.invariants._ops import between, elapsed, select, spans
from harness.invariants.context import Context
from harness.invariants.during import seconds as secs
from harness.invariants.final_state import FinalState
from harness.invariants.verdict import Figure, Verdict
from harness.validate import Node
from harness.values import parse_duration, parse_fraction, parse_ms, parse_names

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
    op: tuple[str, ...] | None = None  # None: every operation
    client_class: tuple[str, ...] | None = None
    p99_ms: float = 300.0
    min_availability: float = 0.99
    window: float = 1.0
    consecutive: int = 2
    min_ops: int = 5
    attempts: Literal["first", "all"] = "first"


def parse(node: Node, ctx: Context) -> Spec:
    node.no_unknown_keys(KEYS)
    m = node.mapping()
    after: str | float = "trigger_end"
    if "after" in m:
        a = node.key("after")
        phases = ctx.phases
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
        op=_op(node, ctx),
        client_class=parse_names(node.key("client_class")) if "client_class" in m else None,
        p99_ms=parse_ms(node.key("p99_ms")) if "p99_ms" in m else 300.0,
        min_availability=(
            parse_fraction(node.key("min_availability")) if "min_availability" in m else 0.99
        ),
        window=parse_duration(node.key("window"), positive=True) if "window" in m else 1.0,
        consecutive=node.key("consecutive", 2).int(minimum=1),
        min_ops=node.key("min_ops", 5).int(minimum=1),
        attempts=node.key("attempts", "first").choice(("first", "all")),
    )


def _op(node: Node, ctx: Context) -> tuple[str, ...] | None:
    """`op`, or the system's SLO operation when not given."""
    if node.has("op"):
        return parse_names(node.key("op"), ctx.ops)
    return (ctx.slo_op,) if ctx.slo_op else None


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


@dataclass(frozen=True)
class Recovery:
    """When the SLO held again after `t`: `at` (None: never before the run ended),
    `seconds` after `t`, the windows judged, and their account; all in run seconds."""

    t: float
    at: float | None
    seconds: float | None
    windows: int
    evidence: tuple[str, ...]


def recovery(history: Iterable[Op], t: float, spec: Spec, compression: float = 1.0) -> Recovery:
    """The recovery after run time `t`, judged in windows of `spec.window / compression`
    run seconds, as the module docstring says."""
    ops = select(
        history, op=spec.op, client_class=spec.client_class, first_only=spec.attempts == "first"
    )
    after = sorted((o for o in ops if o.intended >= t), key=lambda o: o.intended)
    if not after:
        return Recovery(t, None, None, 0, ())
    width = spec.window / compression
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
            p99 = quantile(sorted(elapsed(o) for o in win), 99) * 1000
            holds = avail >= spec.min_availability and p99 <= spec.p99_ms
            line += f" availability={avail:.3f} p99={p99:.0f}ms"
        if len(evidence) < 12:
            evidence.append(line + (" holds" if holds else " violated"))
        streak = streak + 1 if holds else 0
        if streak >= spec.consecutive:
            recovered_at = a - (spec.consecutive - 1) * width
            break
    seconds = None if recovered_at is None else max(0.0, recovered_at - t)
    return Recovery(t, recovered_at, seconds, judged, tuple(evidence))


def check(history: Iterable[Op], final_state: FinalState, spec: Spec) -> Verdict:
    fs = final_state
    t = _anchor(fs, spec.after)
    if t is None:
        return Verdict(NAME, None, {}, f"no trigger to recover from ({spec.after}: none)")
    r = recovery(history, t, spec, fs.compression)
    if r.windows == 0:
        return Verdict(
            NAME, None, {"trigger_end_s": t}, "no operations after the trigger: extend the workload"
        )
    evidence = r.evidence
    after = spec.after if isinstance(spec.after, str) else secs(fs.scaled(spec.after))
    figures: dict[str, Figure] = {
        "after": after,
        "trigger_end_s": t,
        "windows_judged": r.windows,
        "window_s": fs.scaled(spec.window),
    }
    within = None if spec.within is None else fs.scaled(spec.within)
    if within is not None:
        figures["within_s"] = within
    slo = f"p99<={spec.p99_ms:g}ms, availability>={spec.min_availability}"
    trigger = f"the trigger ({after}) at {secs(t)}"
    if r.at is None or r.seconds is None:
        figures["recovery_s"] = "never"
        return Verdict(
            NAME,
            False,
            figures,
            f"never recovered after {trigger} (SLO {slo}): metastable",
            evidence,
        )
    figures["recovery_s"] = r.seconds
    figures["recovered_at_s"] = r.at
    if within is not None and r.seconds > within + 1e-9:
        return Verdict(
            NAME,
            False,
            figures,
            f"recovered {secs(r.seconds)} after {trigger}, later than {secs(within)}",
            evidence,
        )
    return Verdict(NAME, True, figures, f"recovered {secs(r.seconds)} after {trigger}", evidence)
