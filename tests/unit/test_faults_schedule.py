"""The schedule runner with fake faults: timing on the caller's clock, overlap, heal-always,
loud failure of faults that did nothing, and evidence that serialises to JSON."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from harness.faults import (
    Check,
    Evidence,
    Fault,
    FaultNotEffective,
    ScheduledFault,
    run_schedule,
)


class FakeSystem:
    """Records what faults did to it, with monotonic times."""

    def __init__(self) -> None:
        self.events: list[tuple[str, str, float]] = []
        self.lock = threading.Lock()

    def record(self, what: str, name: str) -> float:
        now = time.monotonic()
        with self.lock:
            self.events.append((what, name, now))
        return now

    def times(self, what: str, name: str) -> list[float]:
        return [t for w, n, t in self.events if (w, n) == (what, name)]


@dataclass(frozen=True)
class FakeFault:
    kind: ClassVar[str] = "fake"
    name: str
    works: bool = True
    inject_seconds: float = 0.0

    def describe(self) -> str:
        return f"fake {self.name}"

    def _evidence(self, system: FakeSystem, phase: str) -> Evidence:
        started = system.record(phase, self.name)
        if phase == "inject":
            time.sleep(self.inject_seconds)
        check = Check(self.name, "it happened", self.works, time.monotonic(), {"x": 1.5})
        return Evidence(self.describe(), phase, started, time.monotonic(), (check,))

    def inject(self, system: Any) -> Evidence:
        return self._evidence(system, "inject")

    def heal(self, system: Any) -> Evidence:
        return self._evidence(system, "heal")


def test_fake_is_a_fault() -> None:
    assert isinstance(FakeFault("a"), Fault)


def test_faults_inject_and_heal_on_the_callers_clock_and_may_overlap() -> None:
    system = FakeSystem()
    t0 = time.monotonic() + 0.05
    schedule = [
        ScheduledFault(0.10, FakeFault("a"), duration=0.20),
        ScheduledFault(0.15, FakeFault("b", inject_seconds=0.1), duration=0.05),  # overlaps a
        ScheduledFault(0.05, FakeFault("c"), duration=None),  # until the final phase
    ]
    with run_schedule(system, schedule, t0) as run:
        time.sleep(t0 + 0.45 - time.monotonic())
        assert system.times("heal", "c") == []  # still injected
    report = run.report
    assert report.ok, [e.summary() for e in report.ineffective()]
    for name, at, duration in (("a", 0.10, 0.20), ("b", 0.15, 0.05)):
        (inj,) = system.times("inject", name)
        (heal,) = system.times("heal", name)
        assert 0 <= inj - (t0 + at) < 0.03, name
        # b's heal is due 50 ms after its start but its inject takes 100 ms: no earlier
        assert heal - (t0 + at + duration) >= 0
    assert system.times("inject", "b")[0] < system.times("heal", "a")[0]  # overlap
    (c_heal,) = system.times("heal", "c")
    assert c_heal >= t0 + 0.45
    assert report.records[2].healed_in_final_phase
    assert not report.records[0].healed_in_final_phase
    lateness = report.records[0].lateness(t0)
    assert lateness is not None and 0 <= lateness < 0.03


def test_final_phase_heals_on_error_and_skips_faults_not_yet_due() -> None:
    system = FakeSystem()
    t0 = time.monotonic()
    schedule = [
        ScheduledFault(0.0, FakeFault("early"), duration=60.0),
        ScheduledFault(60.0, FakeFault("late"), duration=1.0),
    ]
    with pytest.raises(RuntimeError), run_schedule(system, schedule, t0) as run:
        deadline = time.monotonic() + 2
        while not system.times("inject", "early") and time.monotonic() < deadline:
            time.sleep(0.005)
        raise RuntimeError("the workload failed")
    assert len(system.times("heal", "early")) == 1  # healed although 60 s remained
    assert system.times("inject", "late") == []
    report = run.report
    assert report.records[1].inject is None and report.records[1].healed
    assert report.ok


def test_final_phase_heals_on_keyboard_interrupt() -> None:
    system = FakeSystem()
    schedule = [ScheduledFault(0.0, FakeFault("x"), duration=None)]
    with pytest.raises(KeyboardInterrupt), run_schedule(system, schedule) as run:
        while not system.times("inject", "x"):
            time.sleep(0.005)
        raise KeyboardInterrupt
    assert len(system.times("heal", "x")) == 1
    assert run.report.records[0].healed


def test_a_fault_that_did_nothing_fails_loudly() -> None:
    system = FakeSystem()
    schedule = [
        ScheduledFault(0.0, FakeFault("fine"), duration=0.0),
        ScheduledFault(0.0, FakeFault("dud", works=False), duration=0.0),
    ]
    with run_schedule(system, schedule) as run:
        time.sleep(0.1)
    report = run.report
    assert not report.ok
    assert report.records[0].took_effect and not report.records[1].took_effect
    with pytest.raises(FaultNotEffective, match="fake dud: DID NOT take effect"):
        report.raise_if_ineffective()


def test_evidence_without_checks_or_with_an_error_did_not_take_effect() -> None:
    assert not Evidence("f", "inject", 1.0, 1.1).took_effect
    ok = Check("t", "c", True, 1.2)
    assert Evidence("f", "inject", 1.0, 1.1, (ok,)).took_effect
    assert not Evidence("f", "inject", 1.0, 1.1, (ok,), error="boom").took_effect


def test_report_serialises_to_json_with_times_relative_to_t0() -> None:
    system = FakeSystem()
    t0 = time.monotonic()
    seen: list[str] = []
    schedule = [ScheduledFault(0.02, FakeFault("j"), duration=0.02, source="x.yaml: faults[0]")]
    with run_schedule(system, schedule, t0, on_evidence=lambda s, e: seen.append(e.phase)) as run:
        time.sleep(0.1)
    data = json.loads(json.dumps(run.report.to_json()))
    (record,) = data
    assert record["source"] == "x.yaml: faults[0]"
    assert record["took_effect"] and record["healed"]
    assert 0.02 <= record["inject"]["started"] < 0.05
    assert record["inject"]["checks"][0]["figures"] == {"x": 1.5}
    assert seen == ["inject", "heal"]
    nan = Check("t", "c", True, 0.0, {"v": float("nan")}).to_json()
    assert nan["figures"]["v"] is None


def test_no_fault_actuates_before_its_at_on_the_runners_clock() -> None:
    """Deferred, the schedule counts from the t0 the load runner passes when its clock
    starts (after its own set-up), so no fault acts before its `at` of that clock."""
    import asyncio

    from harness.client import Result
    from harness.history import History
    from harness.load import LoadConfig, Runner
    from harness.workload import Arrival, Good

    class Instant:
        async def invoke(self, target, op, args, client_id, timeout) -> Result:
            return Result("ok", 200)

    system = FakeSystem()
    schedule = [
        ScheduledFault(at, FakeFault(f"f{i}"), duration=0.01)
        for i, at in enumerate((0.0, 0.02, 0.05))
    ]
    arrivals = [Arrival(i, i * 0.01, f"c{i}", "good", "read", {}, Good(), i) for i in range(8)]
    with run_schedule(system, schedule, time.monotonic() - 10.0, deferred=True) as nemesis:
        time.sleep(0.05)  # set-up between building the schedule and the runner's start
        runner = Runner(Instant(), History(), LoadConfig(drain=1.0), on_start=nemesis.start)
        asyncio.run(runner.run(arrivals))
        t0 = runner.t0
        time.sleep(0.1)
    for i, sf in enumerate(schedule):
        (inj,) = system.times("inject", f"f{i}")
        assert inj >= t0 + sf.at, (sf.at, inj - t0)
    assert all(r.lateness(t0) >= 0 for r in nemesis.report.records)
