"""Schedules: faults at given times for given durations, on the workload's clock, with a
final phase that always heals.

    schedule = (ScheduledFault(at=10, duration=5, fault=Latency(link="app->postgres", latency=500)),
                ScheduledFault(at=18, duration=None, fault=Kill(component="gateway-a")))
    t0 = time.monotonic()                      # the same t0 the load runner uses
    with run_schedule(system, schedule, t0) as nemesis:
        run_workload(..., t0=t0)
    nemesis.report.raise_if_ineffective()      # loud failure if any fault did nothing

Each scheduled fault has its own thread: it sleeps until ``t0 + at``, injects, sleeps
until ``t0 + at + duration`` and heals, so overlapping faults and slow evidence never
delay one another. ``duration=None`` means "until the final phase" (a killed gateway
stays dead); ``db_loss`` uses ``duration=0`` by default (recovery starts right after the
loss). Leaving the ``with`` block — normally, on an exception or on Ctrl-C — is the final
phase: every thread is woken, and every fault injected and not yet healed is healed
before the block exits.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness.faults.base import Fault, FaultNotEffective
from harness.faults.evidence import Evidence


@dataclass(frozen=True)
class ScheduledFault:
    """``fault`` starting ``at`` seconds after t0, healed ``duration`` seconds later."""

    at: float
    fault: Fault
    duration: float | None = None  # None: heal in the final phase
    source: str = ""  # where it was written, e.g. "experiments/x.yaml: faults[2]"

    def describe(self) -> str:
        until = "until the end" if self.duration is None else f"for {self.duration:g}s"
        return f"at {self.at:g}s {until}: {self.fault.describe()}"


@dataclass(frozen=True)
class FaultTrace:
    """What happened to one scheduled fault: its evidence, with times relative to t0."""

    scheduled: ScheduledFault
    inject: Evidence | None  # None: the run ended before its time came
    heal: Evidence | None
    healed_in_final_phase: bool = False

    @property
    def took_effect(self) -> bool:
        return self.inject is not None and self.inject.took_effect

    @property
    def healed(self) -> bool:
        return self.inject is None or (self.heal is not None and self.heal.took_effect)

    def start(self, t0: float) -> float | None:
        """When the fault was put in force (actuated), seconds after t0; its proof may
        come later (a probe through an 800 ms link takes 800 ms), see `lateness`."""
        if self.inject is None:
            return None
        return self.inject.actuated - t0

    def end(self, t0: float) -> float | None:
        """When the heal was actuated, seconds after t0 (None: never healed)."""
        return None if self.heal is None else self.heal.actuated - t0

    def lateness(self, t0: float) -> float | None:
        """Seconds from the scheduled instant to the fault observed (actuation time)."""
        if self.inject is None or self.inject.observed is None:
            return None
        return self.inject.observed - (t0 + self.scheduled.at)

    def to_json(self, t0: float) -> dict[str, Any]:
        return {
            "fault": self.scheduled.fault.describe(),
            "kind": self.scheduled.fault.kind,
            "at": self.scheduled.at,
            "for": self.scheduled.duration,
            "source": self.scheduled.source,
            "took_effect": self.took_effect,
            "healed": self.healed,
            "healed_in_final_phase": self.healed_in_final_phase,
            "actuation_s": self.lateness(t0),
            "inject": None if self.inject is None else self.inject.to_json(t0),
            "heal": None if self.heal is None else self.heal.to_json(t0),
        }


@dataclass(frozen=True)
class ScheduleReport:
    """Every scheduled fault's record, in schedule order."""

    t0: float
    records: tuple[FaultTrace, ...]

    def ineffective(self) -> list[Evidence]:
        """Inject and heal evidence that did not take effect."""
        out = [r.inject for r in self.records if r.inject is not None and not r.took_effect]
        out += [r.heal for r in self.records if r.heal is not None and not r.heal.took_effect]
        out += [
            Evidence(r.scheduled.fault.describe(), "heal", self.t0, self.t0, error="never healed")
            for r in self.records
            if r.inject is not None and r.heal is None
        ]
        return out

    @property
    def ok(self) -> bool:
        return not self.ineffective()

    def raise_if_ineffective(self) -> None:
        bad = self.ineffective()
        if bad:
            raise FaultNotEffective(bad)

    def to_json(self) -> list[dict[str, Any]]:
        return [r.to_json(self.t0) for r in self.records]


@dataclass
class _Slot:
    scheduled: ScheduledFault
    inject: Evidence | None = None
    heal: Evidence | None = None
    final: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


class ScheduleRun:
    """A schedule being executed; ``report`` is complete once the ``with`` block exits."""

    def __init__(
        self,
        system: Any,
        schedule: Sequence[ScheduledFault],
        t0: float,
        clock: Callable[[], float] = time.monotonic,
        on_evidence: Callable[[ScheduledFault, Evidence], None] | None = None,
    ) -> None:
        self.system = system
        self.t0 = t0
        self.clock = clock
        self.on_evidence = on_evidence
        self.slots = [_Slot(s) for s in schedule]
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self, t0: float | None = None) -> None:
        """Start every fault's thread; `t0` (default: the one given at construction) is the
        instant the schedule's times count from, the load runner's own start."""
        if t0 is not None:
            self.t0 = t0
        for i, slot in enumerate(self.slots):
            thread = threading.Thread(
                target=self._drive, args=(slot,), name=f"fault-{i}", daemon=True
            )
            self.threads.append(thread)
            thread.start()

    def _wait_until(self, instant: float) -> bool:
        """Sleep until ``instant`` on the clock; False if the final phase began first.

        Sleeps to 2 ms before the instant, then yields in a loop: ``Event.wait`` alone
        overshoots by up to a millisecond or more on a busy machine.
        """
        while True:
            if self.stopping.is_set():
                return False
            left = instant - self.clock()
            if left <= 0:
                return True
            if left > 0.002:
                if self.stopping.wait(min(left - 0.002, 0.5)):
                    return False
            else:
                time.sleep(0)

    def _drive(self, slot: _Slot) -> None:
        s = slot.scheduled
        if not self._wait_until(self.t0 + s.at):
            return
        with slot.lock:
            if self.stopping.is_set():
                return
            slot.inject = s.fault.inject(self.system)
        self._emit(s, slot.inject)
        if s.duration is not None:
            self._wait_until(self.t0 + s.at + s.duration)
        else:
            self.stopping.wait()
        self._heal(slot)

    def _heal(self, slot: _Slot) -> None:
        with slot.lock:
            if slot.inject is None or slot.heal is not None:
                return
            slot.final = self.stopping.is_set()
            slot.heal = slot.scheduled.fault.heal(self.system)
        self._emit(slot.scheduled, slot.heal)

    def _emit(self, s: ScheduledFault, evidence: Evidence) -> None:
        if self.on_evidence is not None:
            with contextlib.suppress(Exception):
                self.on_evidence(s, evidence)

    def final_phase(self, join_timeout: float = 120.0) -> None:
        """Wake every thread; heal whatever is still injected, latest injection first."""
        self.stopping.set()
        deadline = time.monotonic() + join_timeout
        for thread in self.threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        pending = [s for s in self.slots if s.inject is not None and s.heal is None]
        for slot in sorted(pending, key=lambda s: -(s.inject.started if s.inject else 0)):
            self._heal(slot)

    @property
    def report(self) -> ScheduleReport:
        return ScheduleReport(
            self.t0,
            tuple(FaultTrace(s.scheduled, s.inject, s.heal, s.final) for s in self.slots),
        )


@contextlib.contextmanager
def run_schedule(
    system: Any,
    schedule: Sequence[ScheduledFault],
    t0: float | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
    on_evidence: Callable[[ScheduledFault, Evidence], None] | None = None,
    deferred: bool = False,
) -> Iterator[ScheduleRun]:
    """Run ``schedule`` against ``system`` on ``clock`` from ``t0``; always heal on exit.

    With ``deferred`` the schedule waits for ``run.start(t0)``: the load runner calls it
    with its own t0 once it is ready to send, so no fault acts before its time.
    """
    run = ScheduleRun(system, schedule, clock() if t0 is None else t0, clock, on_evidence)
    try:
        if not deferred:
            run.start()
        yield run
    finally:
        run.final_phase()
