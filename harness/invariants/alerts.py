"""Alerts: monitoring must warn before users notice - a rule on the system's own metrics
fires after the trouble begins and before the SLO breaks.

```yaml
- alerts:
    rules:                                   # any one firing is a warning
      - {name: breaker-open, metric: refsys_breaker_open, above: 0}
      - {name: spool-backlog, metric: refsys_spool_backlog_bytes, component: app, above: 0, for: 2s}
      - {name: 5xx, rate: refsys_requests_total, where: {status: "5.."}, above: 5}
    after: first_fault      # the onset: first_fault (default), a phase name, or a time
    within: 4s              # a rule must fire within this of the onset
    slo: {op: show_code, p99_ms: 300, min_availability: 0.99, window: 1s}
```

A rule watches one metric of the components `component` names (a group or a replica; default
every component that has it), summed over the series whose labels match `where`
(regular expressions); `rate:` watches the per-second increase of a counter instead.
It fires once its value has been above `above` (or below `below`) for `for` (default:
at the first such sample), each replica on its own. The SLO (default: the system's
SLO operation, p99 300 ms, availability 0.99 in 1 s windows) says when users noticed:
in the first window after the onset in which it broke, the moment its first user saw a
failure or had waited past the p99 bound (not the window's start).

The verdict holds when a rule fired within `within` of the onset and no later than the
breach; its figures give the lead time (breach - first alert). It fails when nothing
fired in time, or when users noticed first; it is unknown without metrics (the topology
declares none) or without an onset. Durations are experiment time, as everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace

from harness.history import Op
from harness.invariants.context import Context
from harness.invariants.final_state import FinalState
from harness.invariants.slo_windows import Slo, first_breach
from harness.invariants.verdict import Figure, Verdict
from harness.metrics.store import Metrics, Series
from harness.validate import Node
from harness.values import parse_duration, parse_fraction, parse_ms, parse_names

NAME = "alerts"
KEYS = frozenset({"rules", "after", "within", "slo"})
RULE_KEYS = frozenset({"name", "metric", "rate", "component", "where", "above", "below", "for"})


@dataclass(frozen=True)
class Rule:
    """A threshold on one metric (or on a counter's rate), held for `hold` seconds."""

    name: str
    metric: str
    rate: bool = False
    on: str | None = None
    where: Mapping[str, str] = field(default_factory=dict)
    above: float | None = None
    below: float | None = None
    hold: float = 0.0  # experiment seconds

    def describe(self) -> str:
        what = f"rate({self.metric})" if self.rate else self.metric
        bound = f"> {self.above:g}" if self.above is not None else f"< {self.below:g}"
        held = f" for {self.hold:g}s" if self.hold else ""
        return f"{what} {bound}{held}"


@dataclass(frozen=True)
class Spec:
    rules: tuple[Rule, ...]
    after: str | float = "first_fault"
    within: float = 5.0
    slo: Slo = field(default_factory=Slo)


def parse(node: Node, ctx: Context) -> Spec:
    node.no_unknown_keys(KEYS)
    rules = []
    rn = node.key("rules")
    for i, el in enumerate(rn.elements()):
        el.mapping()
        el.no_unknown_keys(RULE_KEYS)
        if el.has("metric") == el.has("rate"):
            raise el.fail("exactly one of metric: NAME or rate: COUNTER")
        if el.has("above") == el.has("below"):
            raise el.fail("exactly one of above: N or below: N")
        metric = (el.key("metric") if el.has("metric") else el.key("rate")).str()
        where = el.key("where").str_map() if el.has("where") else {}
        for k, pattern in where.items():
            try:
                re.compile(pattern)
            except re.error as exc:
                raise el.key("where").key(k).fail("a regular expression", str(exc)) from None
        rules.append(
            Rule(
                name=el.key("name").str() if el.has("name") else f"rule#{i + 1}",
                metric=metric,
                rate=el.has("rate"),
                on=el.key("component").str() if el.has("component") else None,
                where=where,
                above=el.key("above").number() if el.has("above") else None,
                below=el.key("below").number() if el.has("below") else None,
                hold=parse_duration(el.key("for")) if el.has("for") else 0.0,
            )
        )
    if not rules:
        raise rn.fail("a non-empty list of rules")
    after: str | float = "first_fault"
    if node.has("after"):
        a = node.key("after")
        if isinstance(a.value, int | float) or (isinstance(a.value, str) and a.value[:1].isdigit()):
            after = parse_duration(a)
        elif a.value == "first_fault" or (ctx.phases is not None and a.value in ctx.phases):
            after = a.str()
        else:
            raise a.fail(f"first_fault, a phase among {list(ctx.phases or ())}, or a time")
    return Spec(
        rules=tuple(rules),
        after=after,
        within=parse_duration(node.key("within"), positive=True) if node.has("within") else 5.0,
        slo=_slo(node.key("slo", {}), ctx),
    )


def _slo(node: Node, ctx: Context) -> Slo:
    node.no_unknown_keys({"op", "client_class", "p99_ms", "min_availability", "window"})
    op = parse_names(node.key("op"), ctx.ops) if node.has("op") else None
    if op is None and ctx.slo_op:
        op = (ctx.slo_op,)
    return Slo(
        op=op,
        client_class=parse_names(node.key("client_class")) if node.has("client_class") else None,
        p99_ms=parse_ms(node.key("p99_ms")) if node.has("p99_ms") else 300.0,
        min_availability=(
            parse_fraction(node.key("min_availability")) if node.has("min_availability") else 0.99
        ),
        window=parse_duration(node.key("window"), positive=True) if node.has("window") else 1.0,
    )


def _onset(fs: FinalState, after: str | float) -> float | None:
    if isinstance(after, float | int):
        return fs.scaled(float(after))
    if after == "first_fault":
        return min((f.start for f in fs.faults or ()), default=None)
    return fs.phase(after).start


def _member(component: str, on: str | None) -> bool:
    return on is None or component == on or component.rsplit("-", 1)[0] == on


def _summed(series: list[Series], rate: bool) -> list[tuple[float, float]]:
    """One component's matching series summed per sample time (rates: per second)."""
    total: dict[float, float] = {}
    for s in series:
        for t, v in s.rate() if rate else s.points:
            total[t] = total.get(t, 0.0) + v
    return sorted(total.items())


def fired(
    metrics: Metrics, rule: Rule, start: float, compression: float
) -> tuple[float, str] | None:
    """When `rule` first fired at or after run time `start`, and on which component."""
    hold = rule.hold / compression
    best: tuple[float, str] | None = None
    for comp, by_key in metrics.series.items():
        if not _member(comp, rule.on):
            continue
        matching = [
            s
            for s in by_key.values()
            if s.name == rule.metric
            and all(re.fullmatch(p, s.labels.get(k, "")) for k, p in rule.where.items())
        ]
        if not matching:
            continue
        since: float | None = None
        for t, v in _summed(matching, rule.rate):
            bad = v > rule.above if rule.above is not None else v < (rule.below or 0.0)
            if not bad:
                since = None
                continue
            since = t if since is None else since
            if t >= start and t - since >= hold - 1e-9:
                if best is None or t < best[0]:
                    best = (t, comp)
                break
    return best


def check(history: Iterable[Op], final_state: FinalState, spec: Spec) -> Verdict:
    fs = final_state
    metrics = fs.metrics
    if metrics is None or not metrics.series:
        return Verdict(NAME, None, {}, "no metrics were recorded: declare metrics: in the topology")
    onset = _onset(fs, spec.after)
    if onset is None:
        return Verdict(NAME, None, {}, f"no onset to warn about ({spec.after}: none)")
    end = fs.duration if fs.duration > 0 else float("inf")
    within = spec.within / fs.compression
    slo = replace(spec.slo, window=spec.slo.window / fs.compression)
    breach = first_breach(history, onset, end, slo)
    firings = []
    for rule in spec.rules:
        hit = fired(metrics, rule, onset, fs.compression)
        if hit is not None:
            firings.append((hit[0], rule, hit[1]))
    firings.sort(key=lambda x: x[0])
    figures: dict[str, Figure] = {"onset_s": round(onset, 3), "rules": len(spec.rules)}
    evidence = [f"{r.name} ({r.describe()}) fired at {t:.2f}s on {c}" for t, r, c in firings]
    noticed = None if breach is None else breach.noticed
    if breach is not None and noticed is not None:
        figures["breach_s"] = round(noticed, 3)
        evidence.append(f"users noticed at {noticed:.2f}s, in the window {breach}")
    else:
        evidence.append("the SLO held after the onset")
    if not firings:
        return Verdict(
            NAME, False, figures, f"no rule fired after the onset at {onset:.2f}s", tuple(evidence)
        )
    t, rule, comp = firings[0]
    figures.update(first_alert_s=round(t, 3), rule=rule.name, component=comp)
    if noticed is not None:
        figures["lead_s"] = round(noticed - t, 3)
    late = t - onset > within + 1e-9
    if noticed is not None and t > noticed:
        return Verdict(
            NAME,
            False,
            figures,
            f"users noticed first: the SLO broke at {noticed:.2f}s, the first alert"
            f" ({rule.name}) fired at {t:.2f}s",
            tuple(evidence),
        )
    if late:
        return Verdict(
            NAME,
            False,
            figures,
            f"the first alert ({rule.name}) fired {t - onset:.2f}s after the onset,"
            f" later than {within:g}s",
            tuple(evidence),
        )
    lead = f", {noticed - t:.2f}s before users noticed" if noticed is not None else ""
    return Verdict(
        NAME,
        True,
        figures,
        f"{rule.name} fired {t - onset:.2f}s after the onset on {comp}{lead}",
        tuple(evidence),
    )
