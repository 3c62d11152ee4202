"""Timelines: a history cut into fixed windows of run time, the numbers a report plots.

Every op lands in exactly one outcome class (`classify`): `ok`; `rejected` (an explicit,
cheap refusal: 429 or 503, what load shedding answers); `timeout` (a client timeout,
the run's deadline, or a gateway's 504); `never_sent` (the runner could not send it in
time: counted against the system, never dropped); `error` (everything else: connection
refused or lost, other 5xx and 4xx).

Rates are per second. Offered load and latency are placed by the op's *intended* send
time (open loop: what the world asked for, and latency measured from when it asked);
outcomes by *completion* time (what the system delivered, and when).

    tl = timeline(history.load("runs/x/latest/history.jsonl"), width=0.5)
    tl.rate("ok", op="show_code")      # ok show-codes per second, one value per window
    recovery(tl, after=13.0)            # seconds until show-code holds its SLO again
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from harness.history import NEVER_SENT, Op

__all__ = ["CLASSES", "Outcome", "Timeline", "classify", "recovery", "timeline"]

Outcome = Literal["ok", "rejected", "timeout", "error", "never_sent"]
CLASSES: tuple[Outcome, ...] = ("ok", "rejected", "timeout", "error", "never_sent")
REJECTIONS = frozenset({429, 503})
TIMEOUTS = frozenset({"timeout", "deadline"})


def classify(op: Op) -> Outcome:
    """The outcome class of one op (see the module docstring)."""
    if op.outcome == "ok":
        return "ok"
    if op.error == NEVER_SENT:
        return "never_sent"
    if op.status in REJECTIONS:
        return "rejected"
    if op.status == 504 or (op.error or "") in TIMEOUTS:
        return "timeout"
    return "error"


@dataclass(frozen=True)
class Timeline:
    """Per-window counts and latency percentiles of one run; window `i` starts at `i * width`.

    `counts[(op, outcome)]` (by completion) and `offered[op]` / `offered_ok[op]` /
    `arrivals[op]` (attempts, ok attempts, new arrivals; by intended time) are per-window counts;
    `p50[op]` / `p99[op]` latency in seconds of the sent attempts intended in that window
    (any outcome: a timeout is a slow answer, not a missing one), None where none were.
    """

    width: float
    windows: int
    ops: tuple[str, ...]
    counts: dict[tuple[str, str], tuple[int, ...]]
    offered: dict[str, tuple[int, ...]]
    offered_ok: dict[str, tuple[int, ...]]
    arrivals: dict[str, tuple[int, ...]]
    p50: dict[str, tuple[float | None, ...]]
    p99: dict[str, tuple[float | None, ...]]

    @property
    def starts(self) -> tuple[float, ...]:
        return tuple(round(i * self.width, 6) for i in range(self.windows))

    @property
    def mids(self) -> tuple[float, ...]:
        return tuple(round((i + 0.5) * self.width, 6) for i in range(self.windows))

    def count(self, outcome: str, op: str | None = None) -> tuple[int, ...]:
        """Per-window count of `outcome` (a class, or `all`) for `op` (None: every op)."""
        names = self.ops if op is None else (op,)
        classes = CLASSES if outcome == "all" else (outcome,)
        zero = (0,) * self.windows
        rows = [self.counts.get((n, c), zero) for n in names for c in classes]
        return tuple(sum(col) for col in zip(*rows, strict=True)) if rows else zero

    def rate(self, outcome: str, op: str | None = None) -> tuple[float, ...]:
        """`count` per second."""
        return tuple(n / self.width for n in self.count(outcome, op))

    def offered_rate(self, op: str | None = None, *, first_only: bool = False) -> tuple[float, ...]:
        """Attempts (or, with `first_only`, new arrivals) per second by intended time."""
        source = self.arrivals if first_only else self.offered
        names = self.ops if op is None else (op,)
        zero = (0,) * self.windows
        rows = [source.get(n, zero) for n in names]
        return tuple(sum(col) / self.width for col in zip(*rows, strict=True)) if rows else zero


def _window(t: float, width: float, windows: int) -> int:
    return min(windows - 1, max(0, int(t // width)))


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of an ascending, non-empty sequence."""
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def timeline(ops: Iterable[Op], width: float = 0.5, duration: float | None = None) -> Timeline:
    """Cut `ops` into windows of `width` seconds, up to `duration` (default: the last op)."""
    if width <= 0:
        raise ValueError(f"timeline window width must be > 0 seconds, got {width!r}")
    items = list(ops)
    end = duration if duration is not None else 0.0
    for op in items:
        end = max(end, op.completed, op.intended)
    windows = max(1, math.ceil(end / width - 1e-9))
    names = tuple(sorted({op.op for op in items}))
    counts: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0] * windows)
    offered: dict[str, list[int]] = defaultdict(lambda: [0] * windows)
    offered_ok: dict[str, list[int]] = defaultdict(lambda: [0] * windows)
    arrivals: dict[str, list[int]] = defaultdict(lambda: [0] * windows)
    latencies: dict[str, list[list[float]]] = defaultdict(lambda: [[] for _ in range(windows)])
    for op in items:
        w = _window(op.intended, width, windows)
        offered[op.op][w] += 1
        if op.outcome == "ok":
            offered_ok[op.op][w] += 1
        if op.cause == "first":
            arrivals[op.op][w] += 1
        if op.sent is not None:
            latencies[op.op][w].append(op.completed - op.intended)
        counts[(op.op, classify(op))][_window(op.completed, width, windows)] += 1
    p50: dict[str, tuple[float | None, ...]] = {}
    p99: dict[str, tuple[float | None, ...]] = {}
    for name in names:
        per = [sorted(v) for v in latencies[name]]
        p50[name] = tuple(_percentile(v, 50) if v else None for v in per)
        p99[name] = tuple(_percentile(v, 99) if v else None for v in per)
    return Timeline(
        width=width,
        windows=windows,
        ops=names,
        counts={k: tuple(v) for k, v in counts.items()},
        offered={k: tuple(v) for k, v in offered.items()},
        offered_ok={k: tuple(v) for k, v in offered_ok.items()},
        arrivals={k: tuple(v) for k, v in arrivals.items()},
        p50=p50,
        p99=p99,
    )


def recovery(
    tl: Timeline,
    after: float,
    *,
    op: str = "show_code",
    min_availability: float = 0.99,
    p99: float = 0.3,
    consecutive: int = 2,
    min_ops: int = 3,
) -> float | None:
    """Seconds from `after` to the start of the first of `consecutive` windows in which `op`
    holds its SLO; None: it never did. A window is judged on the attempts intended in it
    (open loop): their availability and their p99 latency."""
    zero = (0,) * tl.windows
    ok, total = tl.offered_ok.get(op, zero), tl.offered.get(op, zero)
    tail = tl.p99.get(op, (None,) * tl.windows)
    run = 0
    first = _window(after, tl.width, tl.windows)
    if after > first * tl.width + 1e-9:  # a window straddling `after` is not judged
        first += 1
    for i in range(first, tl.windows):
        holds = (
            total[i] >= min_ops
            and ok[i] / total[i] >= min_availability
            and tail[i] is not None
            and tail[i] <= p99  # type: ignore[operator]
        )
        run = run + 1 if holds else 0
        if run == consecutive:
            return round(max(0.0, (i - consecutive + 1) * tl.width - after), 6)
    return None
