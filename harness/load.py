"""The load runner: sends a schedule's arrivals open-loop and runs the client behaviours.

Each arrival is sent at its intended time whatever the system does: the runner never
waits for a response before sending the next arrival, so a slow system cannot slow
the offered load down (no coordinated omission), and latency is measured from the
intended time. An arrival the runner could not send within `max_lateness` of its
intended time (or past the in-flight cap, or past the deadline) is recorded as an op
with `error="never_sent"`, counted in `LoadResult.never_sent`, never dropped.

Behaviours (`harness.workload`) decide what happens after an attempt that did not
succeed: `Good` retries at most `max_retries` times with full-jitter backoff (added on
top of a `Retry-After`), spends a per-class retry budget and fails over to the next
gateway; `Impatient` gives up after its patience and re-opens after a pause; `Buggy` retries
at once; `Abuser` never retries. Each retry or re-open is a new `Op` linked to the
one before (`parent`) and to the first of its chain (`root`).

Everything is bounded: `max_ops` attempts in all and a hard `deadline` after which
every attempt still in flight is cancelled and completed (`error="deadline"`), so
every invoked op has exactly one completion in the history.

    result = run_generator(run_load(schedule.arrivals(), client, history, LoadConfig()))

`run_generator` runs the generator on uvloop when it is installed (it comes with
uvicorn[standard]): about half the CPU per request of asyncio's own loop, CPU the
system under test shares on a small machine (bench/bench_load.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import random
import signal
import threading
import time
import zlib
from collections.abc import Callable, Coroutine, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from harness.client import Client, Result
from harness.history import NEVER_SENT, Cause, Op
from harness.signals import STOP_SIGNALS
from harness.workload import Arrival, Buggy, Good, Impatient, RetryBudget

__all__ = ["LOOP", "HistorySink", "LoadConfig", "LoadResult", "Runner", "run_generator", "run_load"]


_uvloop: Any
try:
    import uvloop as _uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency; asyncio's loop still works
    _uvloop = None

LOOP = "uvloop" if _uvloop is not None else "asyncio"
"""The event loop the generator runs on (named in calibration keys and journals)."""

_T = TypeVar("_T")


def run_generator(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coro`` to completion on a new event loop of kind `LOOP`.

    A stop signal (SIGINT, SIGTERM, SIGHUP) received meanwhile cancels the task through
    the loop (never by raising inside a callback, where the loop would swallow it), so
    every ``finally`` below it runs (faults healed, files closed), and then raises
    KeyboardInterrupt here, once (`harness.signals`), even if code below caught the
    cancellation and returned; each later signal cancels the task again."""
    factory = _uvloop.new_event_loop if _uvloop is not None else None
    received: list[int] = []

    async def main() -> _T:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None
        installed: list[tuple[int, Any]] = []
        sig: int
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                previous = signal.getsignal(sig)
                if previous is signal.SIG_IGN:
                    continue

                def stop(sig: int = sig) -> None:
                    received.append(sig)
                    task.cancel()  # again on a later signal: code may have caught the first

                loop.add_signal_handler(sig, stop)
                installed.append((sig, previous))
        try:
            return await coro
        finally:
            for sig, previous in installed:
                loop.remove_signal_handler(sig)
                signal.signal(sig, previous)

    with asyncio.Runner(loop_factory=factory) as runner:
        try:
            result = runner.run(main())
        except asyncio.CancelledError:
            if received:
                raise KeyboardInterrupt(f"signal {signal.Signals(received[0]).name}") from None
            raise
    if received:  # the coroutine caught the cancellation and returned: the stop still holds
        raise KeyboardInterrupt(f"signal {signal.Signals(received[0]).name}")
    return result


class HistorySink(Protocol):
    def append(self, op: Op) -> None: ...


@dataclass(frozen=True, slots=True)
class LoadConfig:
    """Bounds and knobs of one run. Times are seconds.

    `deadline`: hard stop measured from the run start (default: last arrival + `drain`).
    `retry_until`: no retry or re-open is intended at or after this time (default: the
    deadline). An experiment ends its clients' chains with its schedule: what is in flight
    then completes, but nobody starts over once the run is over.
    `targets`: how many gateways the client can reach (clients are spread over them
    by a stable hash of their id; `Good` clients fail over to the next one).
    `tick`: the shortest sleep of the sender; arrivals due within one tick go out
    together (up to `tick` late). Off by default: 1 ms did not lower the CPU per
    request measurably (bench/bench_load.py).
    `quiet_gc`: postpone full (generation 2) garbage collections to the end of the
    run; young generations still collect. A full collection over a growing history
    stops the sender for 20-50 ms, which put >1% of sends >5 ms late at 10k req/s.
    """

    targets: int = 1
    max_lateness: float = 0.5
    max_in_flight: int = 50_000
    max_ops: int = 10_000_000
    drain: float = 15.0
    deadline: float | None = None
    retry_until: float | None = None
    tick: float = 0.0
    quiet_gc: bool = True

    def __post_init__(self) -> None:
        if self.targets < 1:
            raise ValueError(f"LoadConfig.targets must be >= 1, got {self.targets!r}")
        if self.max_lateness <= 0:
            raise ValueError(f"LoadConfig.max_lateness must be > 0 s, got {self.max_lateness!r}")


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What the runner did: counts that must add up, and how punctual it was."""

    arrivals: int
    sent: int
    never_sent: int
    retries: int
    reopens: int
    cancelled: int
    budget_denied: int
    ops: int
    duration: float
    wall_start: float
    lateness_p50: float
    lateness_p99: float
    lateness_max: float

    @property
    def completed(self) -> int:
        return self.ops


class _Budget:
    """A per-class retry budget: a token bucket fed by first attempts and by time."""

    __slots__ = ("last", "spec", "tokens")

    def __init__(self, spec: RetryBudget, now: float) -> None:
        self.spec, self.tokens, self.last = spec, spec.burst, now

    def deposit(self) -> None:
        self.tokens = min(self.spec.burst, self.tokens + self.spec.ratio)

    def withdraw(self, now: float) -> bool:
        s = self.spec
        self.tokens = min(s.burst, self.tokens + (now - self.last) * s.min_per_s)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


def _retriable(r: Result) -> bool:
    return r.status is None or r.status == 429 or r.status >= 500


class Runner:
    """One open-loop run; `run_load` is the usual entry point."""

    def __init__(
        self,
        client: Client,
        history: HistorySink,
        config: LoadConfig = LoadConfig(),
        *,
        clock: Callable[[], float] = time.monotonic,
        writes: Iterable[str] = (),
        on_start: Callable[[float], None] | None = None,
    ) -> None:
        self.client, self.history, self.cfg, self._clock = client, history, config, clock
        self.writes = frozenset(writes)  # operations whose unknown outcome is info
        self.on_start = on_start  # called with t0 the moment the run's clock starts
        self.t0 = 0.0
        self.deadline = float("inf")
        self._next_id = 0
        self._in_flight: set[asyncio.Task[None]] = set()
        self._budgets: dict[str, _Budget] = {}
        self._preferred: dict[str, int] = {}
        self._lateness: list[float] = []
        self.arrivals = self.sent = self.never_sent = self.retries = self.reopens = 0
        self.cancelled = self.budget_denied = self.ops = 0

    def now(self) -> float:
        return self._clock() - self.t0

    # ----------------------------------------------------------------- recording

    def _record(
        self,
        a: Arrival,
        intended: float,
        sent: float | None,
        completed: float,
        r: Result,
        attempt: int,
        cause: Cause,
        parent: int | None,
        root: int | None,
        target: int,
    ) -> int:
        op_id = self._next_id
        self._next_id += 1
        self.ops += 1
        self.history.append(
            Op(
                op_id,
                a.client_id,
                a.client_class,
                a.op,
                a.args,
                intended,
                sent,
                completed,
                r.outcome,
                r.status,
                r.error,
                attempt,
                cause,
                parent,
                op_id if root is None else root,
                a.index,
                target,
                r.value,
            )
        )
        return op_id

    def _never_sent(
        self,
        a: Arrival,
        intended: float,
        reason: str,
        attempt: int = 1,
        cause: Cause = "first",
        parent: int | None = None,
        root: int | None = None,
        target: int = 0,
    ) -> None:
        self.never_sent += 1
        r = Result("fail", None, NEVER_SENT, None, {"reason": reason})
        done = max(self.now(), intended)  # decided now, but never "before it was due"
        self._record(a, intended, None, done, r, attempt, cause, parent, root, target)

    # ----------------------------------------------------------------- one chain

    def _target(self, client_id: str) -> int:
        """The client's gateway: the one it failed over to last, else a stable hash of its id."""
        n = self.cfg.targets
        if n == 1:
            return 0
        preferred = self._preferred.get(client_id)
        return zlib.crc32(client_id.encode()) % n if preferred is None else preferred

    async def _chain(self, a: Arrival) -> None:
        """The first attempt of an arrival and every retry or re-open it leads to."""
        sent = self._clock() - self.t0
        self._lateness.append(sent - a.intended)
        b = a.behaviour
        rng: random.Random | None = None
        target = self._target(a.client_id)
        attempt, parent, root = 1, None, None
        cause: Cause = "first"
        intended = a.intended
        budget = None
        if isinstance(b, Good) and b.budget is not None:
            # each client (a phone, a gate, a lab) keeps its own budget, as an app would
            budget = self._budgets.get(a.client_id)
            if budget is None:
                budget = self._budgets[a.client_id] = _Budget(b.budget, sent)
            budget.deposit()
        while True:
            if isinstance(b, Impatient):
                rng = rng or random.Random(a.seed)
                timeout = rng.uniform(*b.patience)
            else:
                timeout = b.timeout
            timeout = max(0.001, min(timeout, self.deadline - sent))
            try:
                r = await self.client.invoke(target, a.op, a.args, a.client_id, timeout)
            except asyncio.CancelledError:
                r = Result("info" if a.op in self.writes else "fail", None, "deadline")
                self.cancelled += 1
                self._record(a, intended, sent, self.now(), r, attempt, cause, parent, root, target)
                raise
            except Exception as e:  # a client bug must not lose the completion
                r = Result("info" if a.op in self.writes else "fail", None, f"client_error: {e!r}")
            completed = self.now()
            op_id = self._record(
                a, intended, sent, completed, r, attempt, cause, parent, root, target
            )
            root = op_id if root is None else root
            if r.outcome == "ok":
                return
            # ---- what does this client do next?
            delay: float
            if isinstance(b, Good):
                if attempt > b.max_retries or not _retriable(r):
                    return
                if budget is not None and not budget.withdraw(completed):
                    self.budget_denied += 1
                    return
                rng = rng or random.Random(a.seed)
                delay = b.backoff(attempt, rng)
                if b.honour_retry_after and r.retry_after is not None:
                    # Retry-After is a floor; the jitter goes on top of it, so clients
                    # refused in one burst do not all come back in the same millisecond.
                    delay += min(r.retry_after, b.max_retry_after)
                if (
                    b.failover
                    and self.cfg.targets > 1
                    and (
                        r.status is None or (r.status in (502, 503, 504) and r.retry_after is None)
                    )
                ):
                    # fail over, and keep using the other gateway for later requests
                    target = (target + 1) % self.cfg.targets
                    self._preferred[a.client_id] = target
                next_cause: Cause = "retry"
            elif isinstance(b, Impatient):
                if attempt >= b.max_attempts or not _retriable(r):
                    return
                rng = rng or random.Random(a.seed)
                delay = rng.uniform(*b.pause)
                next_cause = "reopen"
            elif isinstance(b, Buggy):
                if attempt >= b.max_attempts or not _retriable(r):
                    return
                delay = 0.0
                next_cause = "retry"
            else:  # Abuser: fire and forget
                return
            intended = completed + delay
            if intended >= self._retry_until or self.ops >= self.cfg.max_ops:
                return
            attempt, cause, parent = attempt + 1, next_cause, op_id
            wait = intended - self.now()
            if wait > 0:
                await asyncio.sleep(wait)
            if next_cause == "retry":
                self.retries += 1
            else:
                self.reopens += 1
            sent = self.now()
            if sent - intended > self.cfg.max_lateness:
                self._never_sent(a, intended, "late", attempt, cause, parent, root, target)
                return
            self.sent += 1
            self._lateness.append(sent - intended)

    # ----------------------------------------------------------------- the schedule

    @property
    def _retry_until(self) -> float:
        """No retry or re-open is intended at or after this run time."""
        until = self.cfg.retry_until
        return self.deadline if until is None else min(self.deadline, until)

    def _spawn(self, a: Arrival) -> None:
        task = asyncio.get_running_loop().create_task(self._chain(a))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def run(self, arrivals: Iterable[Arrival]) -> LoadResult:
        with _quiet_gc() if self.cfg.quiet_gc else contextlib.nullcontext():
            return await self._run(arrivals)

    async def _run(self, arrivals: Iterable[Arrival]) -> LoadResult:
        cfg = self.cfg
        wall_start = time.time()
        self.t0 = self._clock()
        if self.on_start is not None:
            self.on_start(self.t0)
        self.deadline = cfg.deadline if cfg.deadline is not None else float("inf")
        last = 0.0
        max_late, max_inflight, sleep = cfg.max_lateness, cfg.max_in_flight, asyncio.sleep
        tick = cfg.tick
        burst = 0
        for a in arrivals:
            self.arrivals += 1
            last = a.intended
            if a.intended >= self.deadline:
                self._never_sent(a, a.intended, "deadline")
                continue
            now = self._clock() - self.t0
            if a.intended > now:
                await sleep(max(a.intended - now, tick))
                burst = 0
                now = self._clock() - self.t0
            else:
                burst += 1
                if burst >= 64:  # behind schedule: let responses be read
                    burst = 0
                    await sleep(0)
                    now = self._clock() - self.t0
            late = now - a.intended
            if late > max_late:
                self._never_sent(a, a.intended, "late")
            elif len(self._in_flight) >= max_inflight:
                self._never_sent(a, a.intended, "in_flight_limit")
            elif self.ops >= cfg.max_ops:
                self._never_sent(a, a.intended, "max_ops")
            else:
                self.sent += 1
                self._spawn(a)
        if cfg.deadline is None:
            self.deadline = last + cfg.drain
        await self._drain()
        return self._result(wall_start)

    async def _drain(self) -> None:
        remaining = self.deadline - self.now()
        if self._in_flight and remaining > 0:
            await asyncio.wait(set(self._in_flight), timeout=remaining)
        # Retries spawned while draining are inside the same tasks; cancel what is left.
        pending = set(self._in_flight)
        for t in pending:
            t.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)

    def _result(self, wall_start: float) -> LoadResult:
        lat = sorted(self._lateness)

        def q(p: float) -> float:
            return lat[min(len(lat) - 1, int(p * len(lat)))] if lat else 0.0

        return LoadResult(
            arrivals=self.arrivals,
            sent=self.sent,
            never_sent=self.never_sent,
            retries=self.retries,
            reopens=self.reopens,
            cancelled=self.cancelled,
            budget_denied=self.budget_denied,
            ops=self.ops,
            duration=self.now(),
            wall_start=wall_start,
            lateness_p50=q(0.50),
            lateness_p99=q(0.99),
            lateness_max=lat[-1] if lat else 0.0,
        )


@contextlib.contextmanager
def _quiet_gc() -> Iterator[None]:
    """No full collections inside; what exists on entry is frozen out of every collection."""
    threshold = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(threshold[0], threshold[1], 1_000_000_000)
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


async def run_load(
    arrivals: Iterable[Arrival],
    client: Client,
    history: HistorySink,
    config: LoadConfig = LoadConfig(),
    *,
    writes: Iterable[str] = (),
) -> LoadResult:
    """Send `arrivals` open-loop through `client`, appending every op to `history`;
    `writes` names the operations whose unknown outcome is `info` rather than a fail."""
    return await Runner(client, history, config, writes=writes).run(arrivals)
