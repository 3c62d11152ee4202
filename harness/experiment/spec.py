"""An experiment as typed data: which system, what load and faults, what must hold, and
what each profile is expected to show (`harness.experiment.load` reads the file).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from harness.backends import BACKENDS
from harness.faults import ScheduledFault
from harness.invariants import FaultRecord, FinalState, Invariant, Phase, Verdict
from harness.metrics.store import Metrics
from harness.operations import Operations
from harness.search.space import SearchSpec
from harness.state import Reading
from harness.sut import SteadyState, SystemUnderTest, load_sut
from harness.topology import REFERENCE
from harness.workload import Schedule, WorkloadError
from harness.workload.spec import WorkloadSpec

__all__ = [
    "BACKENDS",
    "TRUST",
    "Expectation",
    "Experiment",
    "Judgement",
    "SystemSpec",
]

TRUST = ("load_generator", "machine", "faults_took_effect")
"""Verdicts on the run itself: when one does not hold, the run says nothing about the system."""

Outcome = Literal["met", "not_met", "inconclusive"]


@dataclass(frozen=True)
class SystemSpec:
    """The `system:` section: a topology file, an optional fixed profile, its parameters."""

    topology: Path = REFERENCE
    profile: str | None = None
    backend: Literal["local", "containers"] = "local"
    host: str = "127.0.0.1"
    params: Mapping[str, Any] = field(default_factory=dict)
    profiles_available: tuple[str, ...] = ()
    capacity_from: str | None = None  # the profile whose capacity is C (None: each its own)
    proxy: Literal["faults", "all"] = (
        "all"  # links through Toxiproxy: all, or only where faults act
    )


@dataclass(frozen=True)
class Judgement:
    """Whether a run did what its file expects of the profile: met, not met, or
    inconclusive (the run could not judge: the generator fell behind, the machine
    stalled, a fault did not take effect), and one sentence saying why."""

    outcome: Outcome
    why: str

    @property
    def met(self) -> bool:
        return self.outcome == "met"


@dataclass(frozen=True)
class Expectation:
    """What a profile must show: every invariant holding (`pass`), the listed ones failing
    and every other holding (`fail`), or `skip`. `may_fail` names invariants judged on
    neither side (a signal that swings between runs of this profile); with `others: any`
    every invariant not listed under `fail` may do anything."""

    outcome: Literal["pass", "fail", "skip"] = "pass"
    fail: tuple[str, ...] = ()
    others: Literal["hold", "any"] = "hold"
    may_fail: tuple[str, ...] = ()

    def judge(self, verdicts: Iterable[Verdict]) -> Judgement:
        """Judge the run's verdicts against this expectation."""
        vs = {v.name: v for v in verdicts}
        if self.outcome == "skip":
            return Judgement("met", "skipped")
        untrusted = [vs[n] for n in TRUST if n in vs and vs[n].valid is not True]
        if untrusted:
            return Judgement("inconclusive", "; ".join(_reason(v) for v in untrusted))
        if self.outcome == "pass":
            bad = [
                f"{n} ({v.outcome})"
                for n, v in vs.items()
                if v.valid is not True and n not in self.may_fail
            ]
            if bad:
                return Judgement(
                    "not_met", "expected every invariant to hold; not holding: " + ", ".join(bad)
                )
            return Judgement("met", f"all {len(vs)} invariants hold, as expected")
        missing = [
            f"{n} ({vs[n].outcome if n in vs else 'not checked'})"
            for n in self.fail
            if n not in vs or vs[n].valid is not False
        ]
        if missing:
            return Judgement("not_met", "expected to fail but did not: " + ", ".join(missing))
        if self.others == "hold":
            extra = [
                f"{n} ({v.outcome})"
                for n, v in vs.items()
                if n not in self.fail and n not in self.may_fail and v.valid is not True
            ]
            if extra:
                return Judgement(
                    "not_met",
                    f"failed as expected ({', '.join(self.fail)}), but also not holding: "
                    + ", ".join(extra),
                )
        allowed = [n for n in self.may_fail if n in vs and vs[n].valid is not True]
        also = f" ({', '.join(allowed)} too, allowed by may_fail)" if allowed else ""
        return Judgement("met", "failed as expected: " + ", ".join(self.fail) + also)

    def __str__(self) -> str:
        may = f" may_fail {list(self.may_fail)}" if self.may_fail else ""
        if self.outcome != "fail":
            return self.outcome + may
        others = " (others: any)" if self.others == "any" else ""
        return f"fail {list(self.fail)}{may}{others}"


def _reason(v: Verdict) -> str:
    return f"{v.name}: {v.message}" if v.message else f"{v.name} {v.outcome}"


@dataclass(frozen=True)
class Experiment:
    """A validated experiment file (see `harness.experiment` for the schema)."""

    name: str
    description: str
    path: Path
    system: SystemSpec
    workload: WorkloadSpec
    faults: tuple[ScheduledFault, ...]
    invariants: tuple[Invariant, ...]
    expect: Mapping[str, Expectation] = field(default_factory=dict)
    seed: int | None = None
    search: SearchSpec | None = None
    capacity: float | None = None  # a fixed C in requests/s (None: calibrate)
    steady_state: SteadyState | Literal["system"] | None = "system"
    metrics_every: float | None = None  # run seconds between samples (None: the topology's)

    @property
    def profiles(self) -> tuple[str, ...]:
        """The profiles this experiment runs under."""
        if self.system.profile is not None:
            return (self.system.profile,)
        return self.system.profiles_available

    def expectation(self, profile: str) -> Expectation:
        """What `profile` must show; profiles not listed under `expect` must pass."""
        return self.expect.get(profile, Expectation())

    def sut(self, profile: str) -> SystemUnderTest:
        """The system under test for `profile`, with this experiment's parameters."""
        return load_sut(self.system.topology, profile=profile, params=dict(self.system.params))

    def steady(self, sut: SystemUnderTest) -> SteadyState | None:
        """The steady state to check before the faults (the file's, else the system's)."""
        return sut.steady_state if self.steady_state == "system" else self.steady_state

    @property
    def needs_capacity(self) -> bool:
        """Whether any rate is relative to C: an all-absolute experiment never calibrates
        (its steady state, if relative to C, then runs at the workload's first rate)."""
        return not self.workload.absolute and self.capacity is None

    @property
    def needs_own_capacity(self) -> bool:
        """Whether a rate is a multiple of the running profile's own capacity (`x_own`)."""
        return self.workload.needs_own

    def schedule(
        self,
        operations: Operations,
        capacity: float | None,
        seed: int = 0,
        tag: str = "",
        own_capacity: float | None = None,
    ) -> Schedule:
        """The arrival schedule against capacity C (`x_own` rates against the running
        profile's `own_capacity`), compressed as the file says."""
        return self.workload.schedule(operations, capacity, seed, tag, own_capacity)

    def fault_schedule(self) -> tuple[ScheduledFault, ...]:
        """The faults with `at` and `for` divided by the compression (run seconds)."""
        c = self.workload.compression
        return tuple(
            replace(f, at=f.at / c, duration=None if f.duration is None else f.duration / c)
            for f in self.faults
        )

    def phases(
        self, capacity: float | None, own_capacity: float | None = None
    ) -> tuple[Phase, ...]:
        """Named phases in run seconds, with their peak offered rate (None if not resolvable)."""
        c = self.workload.compression
        out = []
        for name, start, end, rates in self.workload.phase_spans():
            try:
                peak: float | None = max(r.resolve(capacity, own_capacity) for r in rates)
            except WorkloadError:
                peak = None
            out.append(Phase(name, start / c, end / c, peak))
        return tuple(out)

    def final_state(
        self,
        capacity: float | None,
        *,
        faults: tuple[FaultRecord, ...] | None = (),
        data: Mapping[str, Reading] | None = None,
        settled: str | None = None,
        t0: float = 0.0,
        metrics: Metrics | None = None,
        own_capacity: float | None = None,
    ) -> FinalState:
        """A `FinalState` with this experiment's compression, duration and phases filled in."""
        c = self.workload.compression
        return FinalState(
            capacity=capacity,
            compression=c,
            duration=self.workload.duration / c,
            phases=self.phases(capacity, own_capacity),
            faults=faults,
            data=data or {},
            settled=settled,
            t0=t0,
            metrics=metrics,
        )
