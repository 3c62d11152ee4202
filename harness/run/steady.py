"""The steady state: before any fault, a short low-rate load must meet the system's SLO,
or the run aborts (an experiment says nothing about resilience if the system was already
broken). A failed check is measured once more: a one-off stall (a dropped SYN costs a
second) is not a broken baseline.

A check is only the system's when the machine let it run: the check carries the same
verdicts on the run itself as the workload (the generator kept to its schedule, no CPU
stalled), and a broken SLO on a machine that other processes keep busy (`harness.cpu`,
sampled for `IDLE_SAMPLE` seconds after a broken check, while the system is idle, so a
system whose processes are not the harness's children does not count as "others")
says nothing about the system either. Such a check is inconclusive, never "steady
state broken".
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from harness.backends import System
from harness.client import HttpClient
from harness.cpu import CpuMeter, CpuShare
from harness.history import History, quantile
from harness.invariants import Verdict
from harness.load import LoadConfig, LoadResult, Runner, run_generator
from harness.operations import Operations
from harness.run.verdicts import generator_verdict
from harness.stalls import StallWatch, machine_verdict
from harness.sut import ClientFactory, SteadyState
from harness.workload import ClientClass, Constant, Good, Workload, rps

__all__ = ["NAME", "SteadyCheck", "check_steady_state", "judge_steady", "steady_state"]

NAME = "steady_state"
IDLE_SAMPLE = 0.5  # seconds the machine is watched after a broken check


@dataclass(frozen=True)
class SteadyCheck:
    """One check of the steady state: `broken` says why the SLO did not hold (None: it
    held), `inconclusive` why the check could not judge (None: it could)."""

    broken: str | None = None
    inconclusive: str | None = None

    @property
    def holds(self) -> bool:
        return self.broken is None and self.inconclusive is None


def steady_state(measure: Callable[[], SteadyCheck], say: Callable[[str], None]) -> SteadyCheck:
    """Measure the steady state; a broken one is measured once more, and is broken only
    when both checks were. A check that could not judge ends it: the run is inconclusive."""
    first = measure()
    if first.holds or first.inconclusive:
        return first
    say(f"steady state broken ({first.broken}); measuring it once more")
    again = measure()
    if again.inconclusive:
        return again
    if again.broken is None:
        return again
    return SteadyCheck(broken=f"{first.broken}; measured again: {again.broken}")


def judge_steady(
    broken: str | None, trust: tuple[Verdict, ...], cpu: CpuShare | None = None
) -> SteadyCheck:
    """A check from its SLO judgement (`broken`), the verdicts on the run itself
    (`trust`: the generator's, the machine's) and the CPU others took meanwhile."""
    untrusted = [v for v in trust if v.valid is not True]
    if untrusted:
        why = "; ".join(f"{v.name}: {v.message}" for v in untrusted)
        return SteadyCheck(broken, f"the steady-state check could not judge: {why}")
    if broken and cpu is not None and cpu.busy:
        return SteadyCheck(
            broken,
            f"the steady-state check could not judge ({broken}) while {cpu.describe()}:"
            " close other work and run it again",
        )
    return SteadyCheck(broken)


def check_steady_state(
    system: System,
    operations: Operations,
    steady: SteadyState,
    rate: float,
    client: ClientFactory = HttpClient,
) -> SteadyCheck:
    """Warm up, then send `rate` req/s of the steady-state mix and judge its SLO; the
    reason says what the requests got."""
    workload = Workload(
        profile=Constant(rps(rate), steady.warmup + steady.seconds),
        operations=operations,
        mix=steady.mix,
        clients=(ClientClass("good", 1.0, Good(timeout=3.0, max_retries=0)),),
        seed=0,
        tag=f"steady-{time.time_ns()}",
        followups=False,
    )
    history = History()
    gateways = list(system.endpoints.gateways)

    async def go() -> tuple[LoadResult, float]:
        async with client(operations, gateways) as c:
            runner = Runner(c, history, LoadConfig(targets=len(gateways)), writes=operations.writes)
            load = await runner.run(workload.schedule().arrivals())
            return load, runner.t0

    with StallWatch() as watch:
        load, t0 = run_generator(go())
        end = time.monotonic()
    trust = (generator_verdict(load), machine_verdict(watch.report(), t0, end))
    broken = _slo_broken(history, operations, steady, rate)
    return judge_steady(broken, trust, _machine_share() if broken else None)


def _machine_share() -> CpuShare:
    """What other processes did with the machine over `IDLE_SAMPLE` seconds."""
    meter = CpuMeter()
    time.sleep(IDLE_SAMPLE)
    return meter.stop()


def _slo_broken(
    history: History, operations: Operations, steady: SteadyState, rate: float
) -> str | None:
    judged = [op for op in history if op.op == steady.op and op.intended >= steady.warmup]
    if not judged:
        return f"no {steady.op} request was sent"
    ok = [op for op in judged if op.outcome == "ok"]
    availability = len(ok) / len(judged)
    latencies = sorted(op.latency for op in ok if op.latency is not None)
    p99 = quantile(latencies, 99) if latencies else 0.0
    if availability >= steady.min_availability and p99 * 1000 <= steady.p99_ms:
        return None
    answers = Counter(
        f"{op.status}" if op.status is not None else (op.error or op.outcome) for op in judged
    )
    got = ", ".join(f"{n} {what}" for what, n in answers.most_common(3))
    method, path = operations.op(steady.op).method, operations.op(steady.op).path.source
    return (
        f"at {rate:.0f} req/s {steady.op} availability {availability:.3f}"
        f" (needs >= {steady.min_availability}) and p99 {p99 * 1000:.0f} ms"
        f" (needs <= {steady.p99_ms:g} ms): {len(judged)} {method} {path} answered {got}"
    )
