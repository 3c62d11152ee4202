"""Timelines: a history cut into fixed windows of run time, the numbers a report plots.

Every op lands in exactly one outcome class (`classify`): `ok`; `rejected` (an explicit,
cheap refusal: 429 or 503, what load shedding answers); `timeout` (a client timeout,
the run's deadline, or a gateway's 504); `never_sent` (the runner could not send it in
time: counted against the system, never dropped); `error` (everything else: connection
refused or lost, other 5xx and 4xx).

Rates are per second. Offered load and latency are placed by the op's *intended* send
time (open loop: what the world asked for, and latency measured from when it asked);
outcomes by *completion* time (what the system delivered, and when). A window only
partly inside what was measured (the load's end for offered load, the last completion
for outcomes) is divided by the seconds it covers, and one covered less than half is no
rate at all (None): the end of a run is not drawn as a drop to zero.

    tl = timeline(history.load("runs/x/latest/history.jsonl.gz"), width=0.5)
    tl.rate("ok", op="show_code")      # ok show-codes per second, one value per window
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from harness.history import NEVER_SENT, Op, quantile

__all__ = ["CLASSES", "Outcome", "Timeline", "classify", "timeline"]

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
    `duration` is when the load ended (None: unknown), `last` the last completion.
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
    duration: float | None = None
    last: float = 0.0

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

    def covered(self, until: float | None) -> tuple[float, ...]:
        """Seconds of each window before `until` (None: every window whole)."""
        if until is None:
            return (self.width,) * self.windows
        return tuple(max(0.0, min(self.width, until - i * self.width)) for i in range(self.windows))

    def rate(self, outcome: str, op: str | None = None) -> tuple[float | None, ...]:
        """`count` per second of the seconds each window covers up to the last completion."""
        return _per_second(self.count(outcome, op), self.covered(self.last), self.width)

    def offered_rate(
        self, op: str | None = None, *, first_only: bool = False
    ) -> tuple[float | None, ...]:
        """Attempts (or, with `first_only`, new arrivals) per second by intended time, up
        to the load's end."""
        source = self.arrivals if first_only else self.offered
        names = self.ops if op is None else (op,)
        zero = (0,) * self.windows
        rows = [source.get(n, zero) for n in names]
        totals = tuple(sum(col) for col in zip(*rows, strict=True)) if rows else zero
        return _per_second(totals, self.covered(self.duration), self.width)


def _per_second(
    counts: tuple[int, ...], covered: tuple[float, ...], width: float
) -> tuple[float | None, ...]:
    return tuple(
        n / seconds if seconds >= width / 2 else None
        for n, seconds in zip(counts, covered, strict=True)
    )


def _window(t: float, width: float, windows: int) -> int:
    return min(windows - 1, max(0, int(t // width)))


def timeline(ops: Iterable[Op], width: float = 0.5, duration: float | None = None) -> Timeline:
    """Cut `ops` into windows of `width` seconds, up to `duration` (default: the last op)."""
    if width <= 0:
        raise ValueError(f"timeline window width must be > 0 seconds, got {width!r}")
    items = list(ops)
    end = duration if duration is not None else 0.0
    last = 0.0
    for op in items:
        end = max(end, op.completed, op.intended)
        last = max(last, op.completed)
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
        p50[name] = tuple(quantile(v, 50) if v else None for v in per)
        p99[name] = tuple(quantile(v, 99) if v else None for v in per)
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
        duration=duration,
        last=max(last, duration or 0.0) if items else (duration or 0.0),
    )
