"""When users noticed: the SLO judged in consecutive windows of the history, and the first
window in which it broke (`first_breach`), for invariants and blame that need a time.

A broken window also says when, inside it, the first user noticed (`Window.noticed`): the
completion of the first attempt that failed, or the moment the first slow one had waited
the SLO's p99 bound; never the window's start, when nobody had yet seen anything."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from harness.history import Op, quantile
from harness.invariants._ops import between, elapsed, select, spans

__all__ = ["Slo", "Window", "first_breach", "windows"]


@dataclass(frozen=True)
class Slo:
    """What users expect of `op` in every window: availability and p99 latency."""

    op: tuple[str, ...] | None = None
    client_class: tuple[str, ...] | None = None
    p99_ms: float = 300.0
    min_availability: float = 0.99
    window: float = 1.0  # run seconds
    min_ops: int = 5


@dataclass(frozen=True)
class Window:
    """One judged window [start, end) of run time: its size, availability, p99, verdict."""

    start: float
    end: float
    n: int
    availability: float
    p99_ms: float
    holds: bool
    noticed: float | None = None  # run s; broken windows only

    def __str__(self) -> str:
        state = "holds" if self.holds else "broken"
        return (
            f"{self.start:.2f}-{self.end:.2f}s n={self.n} availability={self.availability:.3f}"
            f" p99={self.p99_ms:.0f}ms {state}"
        )


def windows(history: Iterable[Op], start: float, end: float, slo: Slo) -> Iterator[Window]:
    """The windows from `start` to `end` (run s) with at least `min_ops` first attempts."""
    ops = sorted(
        select(history, op=slo.op, client_class=slo.client_class, first_only=True),
        key=lambda o: o.intended,
    )
    times = [o.intended for o in ops]
    for a, b in spans(start, end, slo.window):
        win = ops[between(times, a, b)]
        if len(win) < slo.min_ops:
            continue
        avail = sum(o.outcome == "ok" for o in win) / len(win)
        p99 = quantile(sorted(elapsed(o) for o in win), 99) * 1000
        holds = avail >= slo.min_availability and p99 <= slo.p99_ms
        noticed = None if holds else _noticed(win, slo.p99_ms / 1000)
        yield Window(a, min(b, end), len(win), avail, p99, holds, noticed)


def _noticed(ops: Iterable[Op], bound: float) -> float:
    """When the first user of a broken window saw a failure or had waited `bound` s."""
    ops = list(ops)
    times = [
        min(o.completed, o.intended + bound) if o.outcome != "ok" else o.intended + bound
        for o in ops
        if o.outcome != "ok" or elapsed(o) > bound
    ]
    return min(times, default=min(o.intended for o in ops))


def first_breach(history: Iterable[Op], start: float, end: float, slo: Slo) -> Window | None:
    """The first window from `start` in which the SLO was broken (None: it never was)."""
    return next((w for w in windows(history, start, end, slo) if not w.holds), None)
