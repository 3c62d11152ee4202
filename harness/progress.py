"""Progress: one live line on the terminal while a workload runs.

    surge  12.5/20.0 s  rate 1184/s  ok 97.1%  errors 34/s  faults: kill gateway-a

It shows the phase, elapsed and total run seconds, the completion rate and the errors
of the last tick, the share of ok ops so far, and the faults in force. It is quiet when
the stream is not a terminal (CI logs stay clean) unless forced. The ticker is a task
in the runner's own asyncio loop and only reads: the history's op list (new ops since
the last tick) and a callable that names the active faults.

    async with live(history.ops, total=20.0, phases=phases, faults=lambda: [...]):
        await runner.run(arrivals)
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, TextIO

__all__ = ["Meter", "Snapshot", "enabled", "format_line", "live"]

INTERVAL = 0.5


@dataclass(frozen=True)
class Snapshot:
    """What the live line shows at one instant."""

    phase: str
    elapsed: float
    total: float
    rate: float  # completed ops per second over the last tick
    errors: float  # non-ok completions per second over the last tick
    ok_fraction: float | None  # ok share of everything completed so far
    faults: tuple[str, ...]


def format_line(s: Snapshot, width: int = 120) -> str:
    """The live line for a snapshot, cut to `width` characters."""
    ok = "ok   -  " if s.ok_fraction is None else f"ok {s.ok_fraction * 100:5.1f}%"
    faults = ", ".join(s.faults) if s.faults else "none"
    text = (
        f"{s.phase:<10} {s.elapsed:5.1f}/{s.total:.1f} s  rate {s.rate:6.0f}/s  {ok}"
        f"  errors {s.errors:5.0f}/s  faults: {faults}"
    )
    return text if len(text) <= width else text[: width - 1] + "…"


def _phase_at(phases: Sequence[Any], t: float) -> str:
    """The name of the phase (objects or dicts with name/start/end) that contains `t`."""
    name = ""
    for p in phases:
        start = p["start"] if isinstance(p, dict) else p.start
        if t >= start:
            name = p["name"] if isinstance(p, dict) else p.name
    return name or "-"


class Meter:
    """Turns the growing op list into snapshots; reads only the ops added since last time."""

    def __init__(
        self,
        ops: Sequence[Any],
        *,
        total: float,
        phases: Sequence[Any] = (),
        faults: Callable[[], Sequence[str]] = tuple,
        t0: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ops, self.total, self.phases, self.faults = ops, total, phases, faults
        self.clock = clock
        self.t0 = clock() if t0 is None else t0
        self.seen = 0
        self.ok = 0
        self.last = self.t0

    def snapshot(self) -> Snapshot:
        now = self.clock()
        end = len(self.ops)
        fresh = [self.ops[i] for i in range(self.seen, end)]
        self.seen = end
        ok = sum(op.outcome == "ok" for op in fresh)
        self.ok += ok
        span = max(now - self.last, 1e-6)
        self.last = now
        elapsed = now - self.t0
        try:
            active = tuple(self.faults())
        except Exception:  # the line is a convenience; never let it break a run
            active = ("?",)
        return Snapshot(
            phase=_phase_at(self.phases, elapsed),
            elapsed=elapsed,
            total=self.total,
            rate=len(fresh) / span,
            errors=(len(fresh) - ok) / span,
            ok_fraction=self.ok / end if end else None,
            faults=active,
        )


def enabled(stream: TextIO, force: bool | None = None) -> bool:
    """Show the line when forced, else only when `stream` is a terminal."""
    if force is not None:
        return force
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


@contextlib.asynccontextmanager
async def live(
    ops: Sequence[Any],
    *,
    total: float,
    phases: Sequence[Any] = (),
    faults: Callable[[], Sequence[str]] = tuple,
    stream: TextIO | None = None,
    force: bool | None = None,
    interval: float = INTERVAL,
) -> AsyncIterator[Meter | None]:
    """Run the live line while the block runs (a no-op when not enabled); clears it after."""
    out = stream if stream is not None else sys.stderr
    if not enabled(out, force):
        yield None
        return
    meter = Meter(ops, total=total, phases=phases, faults=faults)

    async def tick() -> None:
        while True:
            await asyncio.sleep(interval)
            out.write("\r\x1b[K" + format_line(meter.snapshot()))
            out.flush()

    task = asyncio.create_task(tick())
    try:
        yield meter
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        out.write("\r\x1b[K")
        out.flush()
