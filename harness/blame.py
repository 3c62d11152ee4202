"""Blame: for every invariant that failed, what set it off - the fault, surge or overload
whose onset came last before the breach - and the evidence around it.

    availability fell at 5.10s, 0.10s after kill app-1 (faults[0]) began; in 5.10-5.60s
    214 of 520 show_code failed (502 x200 via gateway-a); app-1 stopped answering its
    metrics at 5.00s

The breach is the first half-second window, inside the invariant's own span, in which
its ops broke its bound (availability below `min`, p99 above the latency bound, or the
default SLO of 99% and 300 ms); for invariants without such a window (recovery, data) it
is the end of the trigger, or of the run. Candidates are the experiment's faults (from
when each was injected), its phases offered more than C (from their start) and any
second in which more than C was offered (all attempts: abusers, retries). The cause is
the candidate active at the breach with the latest onset before it; the evidence comes
from the history (what failed, through which gateway) and, when the topology samples
them, the components' own metrics (which stopped answering, which rose or fell most;
Toxiproxy's byte counters are left out: they move when connections close).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from harness.history import Op
from harness.invariants import FinalState, Invariant, Verdict
from harness.invariants._ops import elapsed, select
from harness.invariants.slo_windows import Slo, first_breach
from harness.metrics.store import Metrics

__all__ = ["Blame", "blame", "blame_all"]

WINDOW = 0.5  # run seconds: the breach is found in windows this wide
SLACK = 0.25  # a cause may begin this long after the breach's window starts
_DATA_KINDS = ("acknowledged_writes", "reads_see_writes")


@dataclass(frozen=True)
class Cause:
    """A candidate: what began at `onset` (run s) and, when known, ended at `end`."""

    kind: Literal["fault", "surge", "overload"]
    name: str
    onset: float
    end: float | None
    target: str = ""


@dataclass(frozen=True)
class Blame:
    """Why one invariant failed: when it broke, what set it off, and the evidence."""

    invariant: str
    breach_s: float | None
    cause: str  # "kill app-1 (faults[0])", "phase surge (1650 req/s > C)", or "none"
    cause_kind: Literal["fault", "surge", "overload", "none"]
    onset_s: float | None
    evidence: tuple[str, ...] = ()

    def sentence(self) -> str:
        what = (
            f"{self.invariant} broke at {self.breach_s:.2f}s"
            if self.breach_s is not None
            else (f"{self.invariant} failed")
        )
        if self.cause_kind == "none":
            head = f"{what}; no injected fault or overload began before it"
        elif self.breach_s is not None and self.onset_s is not None:
            lag = self.breach_s - self.onset_s
            when = "as" if lag < 0.05 else f"{lag:.2f}s after"
            head = f"{what}, {when} {self.cause} began"
        else:
            head = f"{what} after {self.cause} began"
        return "; ".join((head, *self.evidence[:3]))


def causes(history: Sequence[Op], final: FinalState) -> list[Cause]:
    """Every fault, over-capacity phase and overloaded second of the run, by onset."""
    out = [
        Cause("fault", f"{f.target or f.kind} ({f.name})", f.start, f.end, f.target)
        for f in final.faults or ()
    ]
    c = final.capacity
    if c:
        for p in final.phases:
            if p.peak_rps is not None and p.peak_rps > c:
                out.append(
                    Cause("surge", f"phase {p.name} ({p.peak_rps:.0f} req/s > C)", p.start, p.end)
                )
        offered = _offered(history)
        over = [t for t, n in sorted(offered.items()) if n > c]
        if over:
            start = over[0]
            out.append(
                Cause(
                    "overload",
                    f"offered load above C (up to {max(offered.values()):.0f} req/s)",
                    float(start),
                    float(over[-1] + 1),
                )
            )
    return sorted(out, key=lambda x: x.onset)


def _offered(history: Iterable[Op]) -> dict[int, int]:
    """Attempts offered per whole run second (retries and abusers included)."""
    out: dict[int, int] = {}
    for o in history:
        k = int(o.intended)
        out[k] = out.get(k, 0) + 1
    return out


def _span(inv: Invariant, final: FinalState) -> tuple[float, float]:
    during = getattr(inv.spec, "during", None)
    if during is not None:
        try:
            return final.interval(during)
        except (KeyError, AssertionError):
            pass
    return 0.0, final.duration if final.duration > 0 else float("inf")


def _slo(inv: Invariant, final: FinalState) -> Slo:
    spec = inv.spec
    bounds: dict[str, float] = dict(getattr(spec, "bounds", ()) or ())
    p99 = bounds.get("p99_ms", bounds.get("max_ms", float("inf")))
    return Slo(
        op=getattr(spec, "op", None),
        client_class=getattr(spec, "client_class", None),
        p99_ms=p99 if inv.kind == "latency" else 300.0 if inv.kind != "availability" else 1e12,
        min_availability=float(getattr(spec, "min", 0.99)) if inv.kind != "latency" else 0.0,
        window=WINDOW,
        min_ops=3,
    )


def _breach(inv: Invariant, history: Sequence[Op], final: FinalState) -> float | None:
    if inv.kind in _DATA_KINDS:
        return None
    if inv.kind == "recovers":
        return final.trigger_end()
    start, end = _span(inv, final)
    slo = _slo(inv, final)
    w = first_breach(history, start, end, slo)
    if w is None:
        return None
    bad = [
        o.intended
        for o in select(history, op=slo.op, client_class=slo.client_class, span=(w.start, w.end))
        if o.outcome != "ok" or elapsed(o) * 1000 > slo.p99_ms
    ]
    return min(bad, default=w.start)


def _choose(candidates: list[Cause], breach: float | None, end: float) -> Cause | None:
    t = breach if breach is not None else end
    before = [c for c in candidates if c.onset <= t + SLACK]
    if not before:
        return None
    active = [c for c in before if c.end is None or c.end + SLACK >= t]
    pool = active or before
    # the latest onset; among equal onsets a fault beats a surge beats an overload
    rank = {"fault": 0, "surge": 1, "overload": 2}
    return max(pool, key=lambda c: (c.onset, -rank[c.kind]))


def _history_evidence(
    inv: Invariant, history: Sequence[Op], start: float, end: float, gateways: Sequence[str]
) -> list[str]:
    ops = select(
        history,
        op=getattr(inv.spec, "op", None),
        client_class=getattr(inv.spec, "client_class", None),
        span=(start, end),
    )
    if not ops:
        return []
    bad = [o for o in ops if o.outcome != "ok"]
    names = ",".join(getattr(inv.spec, "op", None) or ("ops",))
    if not bad:
        slow = sorted(ops, key=elapsed)[-1]
        return [f"in {start:.2f}-{end:.2f}s the slowest {names} took {elapsed(slow) * 1000:.0f} ms"]
    kinds: dict[str, int] = {}
    for o in bad:
        via = gateways[o.target] if o.target is not None and 0 <= o.target < len(gateways) else ""
        what = str(o.status) if o.status else (o.error or o.outcome)
        key = f"{what} via {via}" if via else what
        kinds[key] = kinds.get(key, 0) + 1
    top = ", ".join(f"{k} x{n}" for k, n in sorted(kinds.items(), key=lambda x: -x[1])[:3])
    return [f"in {start:.2f}-{end:.2f}s {len(bad)} of {len(ops)} {names} failed ({top})"]


def _metrics_evidence(metrics: Metrics | None, onset: float, until: float) -> list[str]:
    """Components that stopped answering, and the series that moved most, after onset."""
    if metrics is None:
        return []
    out = []
    slack = metrics.every / 2
    for comp, errors in sorted(metrics.errors.items()):
        first = next((t for t, _ in errors if t >= onset - slack), None)
        if first is not None and first <= until + 2 * metrics.every:
            out.append(f"{comp} stopped answering its metrics at {first:.2f}s")
    moves: list[tuple[float, str]] = []
    for comp, by_key in metrics.series.items():
        if metrics.sources.get(comp) == "toxiproxy":
            continue  # its byte counters move when connections close, not when bytes flow
        for s in by_key.values():
            if s.name.endswith(("_bucket", "_sum", "_count", "_created")):
                continue
            points = s.rate() if s.name.endswith("_total") else s.points
            before = [v for t, v in points if onset - 3.0 <= t < onset]
            after = [v for t, v in points if onset <= t <= until + 2 * metrics.every]
            if not before or not after:
                continue
            b = sum(before) / len(before)
            unit = "/s" if s.name.endswith("_total") else ""
            for a, verb in ((max(after), "rose"), (min(after), "fell")):
                score = abs(a - b) / (abs(b) + 1.0)
                if score >= 2.0 and (a > b if verb == "rose" else a < b):
                    moves.append((score, f"{comp} {s.key} {verb} {b:.3g}{unit} -> {a:.3g}{unit}"))
    out += [m for _, m in sorted(moves, reverse=True)[:2]]
    return out


def blame(
    inv: Invariant,
    verdict: Verdict,
    history: Sequence[Op],
    final: FinalState,
    gateways: Sequence[str] = (),
    candidates: list[Cause] | None = None,
) -> Blame:
    """The blame of one failed invariant (see the module docstring)."""
    found = causes(history, final) if candidates is None else candidates
    at = verdict.figures.get("breach_s", verdict.figures.get("onset_s"))
    # a verdict that says when its own breach (or onset) was is taken at its word
    breach = float(at) if isinstance(at, int | float) else _breach(inv, history, final)
    end = final.duration if final.duration > 0 else max((o.intended for o in history), default=0.0)
    cause = _choose(found, breach, end)
    evidence: list[str] = []
    if breach is not None:
        evidence += _history_evidence(inv, history, breach, breach + WINDOW, gateways)
    if cause is not None:
        evidence += _metrics_evidence(
            final.metrics, cause.onset, breach if breach is not None else end
        )
        return Blame(verdict.name, breach, cause.name, cause.kind, cause.onset, tuple(evidence))
    return Blame(verdict.name, breach, "none", "none", None, tuple(evidence))


def blame_all(
    invariants: Iterable[Invariant],
    verdicts: Iterable[Verdict],
    history: Sequence[Op],
    final: FinalState,
    gateways: Sequence[str] = (),
) -> Mapping[str, Blame]:
    """Blame for every failed verdict of the experiment's own invariants, by id."""
    by_id: dict[str, Any] = {i.id: i for i in invariants}
    found = causes(history, final)
    out = {}
    for v in verdicts:
        inv = by_id.get(v.name)
        if v.valid is False and inv is not None:
            try:
                out[v.name] = blame(inv, v, history, final, gateways, found)
            except Exception as exc:  # blame is an account, never a reason to lose a run
                out[v.name] = Blame(
                    v.name, None, f"unknown ({type(exc).__name__}: {exc})", "none", None
                )
    return out
