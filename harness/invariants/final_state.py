"""The final state of a run: what the invariants read besides the history.

Times here are run seconds (the history's clock: 0 at the run start, already
compressed). Durations written in an experiment file are experiment time; the
checkers divide them by `compression` (`FinalState.scaled`). Latency bounds in
milliseconds are real time and never scaled.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from harness.invariants.during import During
from harness.metrics.store import Metrics
from harness.state import Reading

__all__ = ["FaultRecord", "FinalState", "Phase", "fault_records"]


@dataclass(frozen=True)
class Phase:
    """A named span of the rate profile in run seconds, with its peak offered rate (req/s)."""

    name: str
    start: float
    end: float
    peak_rps: float | None = None


@dataclass(frozen=True)
class FaultRecord:
    """One scheduled fault as it happened: when it was active and the proof it took effect.

    `end` is when it was healed (None: never healed). `took_effect` is True with proof,
    False when the evidence says it did not (or it was never injected), None when
    nobody could tell. `evidence` is a short human-readable account.
    """

    name: str
    kind: str
    start: float
    end: float | None
    took_effect: bool | None
    evidence: str = ""
    target: str = ""

    @classmethod
    def from_evidence(
        cls,
        name: str,
        inject: Any,
        heal: Any = None,
        *,
        t0: float,
        kind: str = "",
        target: str = "",
    ) -> FaultRecord:
        """From the fault layer's inject (and heal) `Evidence`; `t0` is the run start (monotonic).

        The fault took effect when its injection did and, if it was healed, so did its heal.
        """
        took = bool(inject.took_effect) and (heal is None or bool(heal.took_effect))
        accounts = [e.summary().replace("\n", "; ") for e in (inject, heal) if e is not None]
        return cls(
            name=name,
            kind=kind,
            start=inject.actuated - t0,
            end=None if heal is None else heal.actuated - t0,
            took_effect=took,
            evidence=" | ".join(accounts),
            target=target,
        )


def fault_records(report: Any) -> tuple[FaultRecord, ...]:
    """Records from the fault layer's `ScheduleReport` (`harness.faults`), times after its t0.

    A fault took effect when it was injected with proof and, once healed, its heal had
    proof too; a fault whose time never came did not take effect.
    """
    out = []
    for i, r in enumerate(report.records):
        sf = r.scheduled
        accounts = [e.summary().replace("\n", "; ") for e in (r.inject, r.heal) if e is not None]
        if r.inject is None:
            accounts.append("never injected: the run ended before its time")
        start = r.start(report.t0)
        out.append(
            FaultRecord(
                name=sf.source.rsplit(": ", 1)[-1] if sf.source else f"faults[{i}]",
                kind=sf.fault.kind,
                start=sf.at if start is None else start,
                end=r.end(report.t0),
                took_effect=bool(r.took_effect) and bool(r.healed),
                evidence=" | ".join(accounts),
                target=sf.fault.describe(),
            )
        )
    return tuple(out)


@dataclass(frozen=True)
class FinalState:
    """Everything a checker needs beyond the history.

    - `capacity`: C, the calibrated capacity in requests/s (None if not measured);
    - `compression`: the workload's time compression (experiment seconds per run second);
    - `duration`: the schedule's length in run seconds;
    - `phases`: the rate profile's named phases, in run seconds;
    - `faults`: one record per scheduled fault (None: the fault layer reported nothing);
    - `data`: what each state reader found after the run settled (`harness.state`);
    - `settled`: why the system did not settle before the reads (None: it did);
    - `t0`: the run start as wall-clock epoch seconds (for reports only);
    - `metrics`: what the system's own metrics showed during the run (`harness.metrics`;
      None: none were sampled).
    """

    capacity: float | None = None
    compression: float = 1.0
    duration: float = 0.0
    phases: tuple[Phase, ...] = ()
    faults: tuple[FaultRecord, ...] | None = ()
    data: Mapping[str, Reading] = field(default_factory=dict)
    settled: str | None = None
    t0: float = 0.0
    metrics: Metrics | None = None

    def scaled(self, experiment_seconds: float) -> float:
        """Experiment seconds -> run seconds."""
        return experiment_seconds / self.compression

    def phase(self, name: str) -> Phase:
        for p in self.phases:
            if p.name == name:
                return p
        raise KeyError(f"no phase {name!r}; phases are {[p.name for p in self.phases]}")

    def interval(self, during: During) -> tuple[float, float]:
        """The run-time span [start, end) that `during` selects."""
        if during.phase == "all":
            end = self.duration if self.duration > 0 else float("inf")
            return 0.0, end
        if during.phase is not None:
            p = self.phase(during.phase)
            return p.start, p.end
        assert during.start is not None and during.end is not None
        return self.scaled(during.start), self.scaled(during.end)

    def faults_healed(self) -> float | None:
        """When the last fault was healed (an instantaneous fault counts at its start)."""
        if not self.faults:
            return None
        return max(f.end if f.end is not None else f.start for f in self.faults)

    def surge_over(self) -> float | None:
        """End of the last phase whose peak offered rate exceeds C (None if none or no C)."""
        if not self.capacity:
            return None
        ends = [p.end for p in self.phases if p.peak_rps is not None and p.peak_rps > self.capacity]
        return max(ends) if ends else None

    def trigger_end(self) -> float | None:
        """The end of the trigger: the later of the last heal and the end of the overload."""
        ends = [t for t in (self.faults_healed(), self.surge_over()) if t is not None]
        return max(ends) if ends else None
