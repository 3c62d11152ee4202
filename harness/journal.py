"""The journal: what a run (or a fault search) did and proved, as typed records, written
and read here only.

`journal.json` is the boundary every later step reads: the report, the summary, the
suite's table, a search that looks at its examples. One set of frozen dataclasses is its
schema (`docs/journal.md` documents each field, and a test checks the two agree);
`write` turns a record into JSON and `read` turns JSON back into the same record, so a
reader never digs through dictionaries::

    journal = read(Path("runs/db-loss/latest"))      # RunJournal or SearchJournal
    journal.outcome, journal.capacity.rps, journal.verdicts[0].figures

A journal of another `journal_version` is refused with a `JournalError` that says which
version it is and what to do, never a `KeyError` later.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import math
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from harness.backends import ComponentEndpoint, LinkEndpoint
from harness.errors import HarnessError
from harness.faults import Evidence, FaultTrace, ScheduleReport
from harness.history import Op, amplification
from harness.invariants import FaultRecord, Phase, Verdict
from harness.load import LoadResult

__all__ = [
    "FILE",
    "VERSION",
    "ActionLog",
    "CapacityRecord",
    "CheckLog",
    "ClientRecord",
    "ExperimentRef",
    "FaultLog",
    "JournalError",
    "MetricsRecord",
    "RunJournal",
    "SearchJournal",
    "SearchRecord",
    "TopologyRecord",
    "WorkloadRecord",
    "client_records",
    "fault_logs",
    "read",
    "to_data",
    "write",
]

FILE = "journal.json"
VERSION = 2
Outcome = Literal["met", "not_met", "inconclusive"]


class JournalError(HarnessError):
    """A journal that cannot be read as this harness writes them."""


@dataclass(frozen=True)
class ExperimentRef:
    """The experiment that ran: its name, description, source file and the copy kept."""

    name: str
    description: str
    path: str
    copy: str = "experiment.yaml"


@dataclass(frozen=True)
class TopologyRecord:
    """The system as it ran: parameters, every component's and link's address."""

    name: str
    params: Mapping[str, Any]
    profiles: tuple[str, ...]
    components: Mapping[str, ComponentEndpoint]
    links: Mapping[str, LinkEndpoint]
    gateways: tuple[str, ...]
    toxiproxy: str


@dataclass(frozen=True)
class CapacityRecord:
    """C, the capacity rates were relative to: where it came from and under what load."""

    rps: float | None
    source: Literal["calibrated", "cached", "given", "none"]
    profile: str | None = None  # whose capacity it is
    measured_at: str | None = None
    load_before: float | None = None  # the machine's 1-minute load average then
    load_during: float | None = None  # cores other processes used meanwhile
    key: str = ""
    steal: float | None = None  # cores the hypervisor stole meanwhile
    capped_from: float | None = None  # the measured C, when a cap (`capacity_max`) lowered it


@dataclass(frozen=True)
class WorkloadRecord:
    """The schedule: its length in run seconds, the compression, its phases."""

    duration_s: float
    compression: float
    phases: tuple[Phase, ...]
    slo_op: str | None = None


@dataclass(frozen=True)
class MetricsRecord:
    """The system's own metrics during the run (`harness.metrics`): where, what, and cost."""

    file: str
    sources: Mapping[str, str]  # component -> reader kind
    every_s: float
    ticks: int
    series: int
    samples: int
    read_ms: Mapping[str, float]  # mean ms per read, by component
    errors: Mapping[str, int]  # failed reads, by component
    cpu_ms_per_tick: float | None  # the sampler's CPU per sample of every source


@dataclass(frozen=True)
class ClientRecord:
    """One client class's intents and the attempts they took: `amplification` is attempts
    per intent (1.0: no retry, no re-open), how much its clients multiplied their load."""

    client_class: str
    intents: int
    attempts: int
    amplification: float
    answered: int
    retries: int
    reopens: int
    never_sent: int
    max_attempts: int


def client_records(ops: Iterable[Op]) -> tuple[ClientRecord, ...]:
    """Retry amplification per client class, from a run's history."""
    return tuple(
        ClientRecord(
            client_class=a.client_class,
            intents=a.intents,
            attempts=a.attempts,
            amplification=round(a.ratio, 4),
            answered=a.answered,
            retries=a.retries,
            reopens=a.reopens,
            never_sent=a.never_sent,
            max_attempts=a.max_attempts,
        )
        for a in amplification(ops)
    )


@dataclass(frozen=True)
class CheckLog:
    """One observation that proves (or not) a fault's action."""

    target: str
    claim: str
    ok: bool
    at: float
    figures: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ActionLog:
    """One inject or heal: when it started, was actuated and observed; its checks."""

    fault: str
    phase: Literal["inject", "heal"]
    took_effect: bool
    started: float
    actuated: float
    observed: float | None
    error: str = ""
    figures: Mapping[str, Any] = field(default_factory=dict)
    checks: tuple[CheckLog, ...] = ()


@dataclass(frozen=True)
class FaultLog:
    """One scheduled fault as the fault layer ran it (times in run seconds)."""

    fault: str
    kind: str
    at: float
    duration: float | None
    source: str
    took_effect: bool
    healed: bool
    healed_in_final_phase: bool
    actuation_s: float | None
    inject: ActionLog | None
    heal: ActionLog | None


@dataclass(frozen=True)
class RunJournal:
    """One run: what ran, on what, and what it proved."""

    experiment: ExperimentRef
    profile: str
    seed: int
    backend: str
    versions: Mapping[str, str]
    topology: TopologyRecord | None
    capacity: CapacityRecord
    workload: WorkloadRecord
    load: LoadResult | None
    faults: tuple[FaultLog, ...]
    fault_records: tuple[FaultRecord, ...]
    verdicts: tuple[Verdict, ...]
    valid: bool | None
    expected: str
    outcome: Outcome
    why: str
    replay: str
    aborted: str | None = None
    rerun_of: str | None = None
    settled: str | None = None
    timings_s: Mapping[str, float] = field(default_factory=dict)
    metrics: MetricsRecord | None = None
    clients: tuple[ClientRecord, ...] = ()
    own_capacity: CapacityRecord | None = None
    reused: bool = False  # on a system an earlier run used, reset in between
    history: str = "history.jsonl.gz"
    logs: str = "logs/"
    report: str = "report.html"
    summary: str = "summary.md"
    kind: Literal["run"] = "run"
    journal_version: int = VERSION

    @property
    def met(self) -> bool:
        return self.outcome == "met"


@dataclass(frozen=True)
class SearchRecord:
    """A fault search's space, settings, figures and every schedule it tried."""

    space: Mapping[str, Any]
    examples_setting: int
    budget_s: float
    replays: int
    must_fail: int
    figures: Mapping[str, Any]
    first_failure: tuple[Mapping[str, Any], ...] | None
    minimal: tuple[Mapping[str, Any], ...] | None
    broken: tuple[str, ...]
    unreproduced: tuple[Mapping[str, Any], ...]
    history: tuple[Mapping[str, Any], ...]


@dataclass(frozen=True)
class SearchJournal:
    """A fault search: what it looked for, what it found, where the evidence is."""

    experiment: ExperimentRef
    profile: str
    seed: int
    valid: bool | None
    expected: str
    outcome: Outcome
    why: str
    verdicts: tuple[Verdict, ...]
    search: SearchRecord
    minimal_file: str | None = None
    replay: str | None = None
    summary: str = "summary.md"
    kind: Literal["search"] = "search"
    journal_version: int = VERSION

    @property
    def met(self) -> bool:
        return self.outcome == "met"


Journal = RunJournal | SearchJournal


# --------------------------------------------------------------------------- from the faults


def _action(e: Evidence, t0: float) -> ActionLog:
    observed = e.observed
    return ActionLog(
        fault=e.fault,
        phase=e.phase,
        took_effect=e.took_effect,
        started=round(e.started - t0, 6),
        actuated=round(e.actuated - t0, 6),
        observed=None if observed is None else round(observed - t0, 6),
        error=e.error,
        figures={k: _clean(v) for k, v in e.figures.items()},
        checks=tuple(
            CheckLog(
                c.target,
                c.claim,
                c.ok,
                round(c.at - t0, 6),
                {k: _clean(v) for k, v in c.figures.items()},
            )
            for c in e.checks
        ),
    )


def _fault_log(trace: FaultTrace, t0: float) -> FaultLog:
    s = trace.scheduled
    return FaultLog(
        fault=s.fault.describe(),
        kind=s.fault.kind,
        at=s.at,
        duration=s.duration,
        source=s.source,
        took_effect=trace.took_effect,
        healed=trace.healed,
        healed_in_final_phase=trace.healed_in_final_phase,
        actuation_s=trace.lateness(t0),
        inject=None if trace.inject is None else _action(trace.inject, t0),
        heal=None if trace.heal is None else _action(trace.heal, t0),
    )


def fault_logs(report: ScheduleReport | None) -> tuple[FaultLog, ...]:
    """The fault layer's report as journal records (times relative to its t0)."""
    if report is None:
        return ()
    return tuple(_fault_log(t, report.t0) for t in report.records)


def _clean(value: Any) -> Any:
    if isinstance(value, float):
        return None if not math.isfinite(value) else round(value, 6)
    return value


# --------------------------------------------------------------------------- writing


def to_data(value: Any) -> Any:
    """Records, mappings, sequences, paths and enums as plain JSON values. A field marked
    ``metadata={"secret": True}`` (a password) is left out: journals are shared."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: to_data(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if not f.metadata.get("secret")
        }
    if isinstance(value, Mapping):
        return {str(k): to_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = [to_data(v) for v in value]
        return sorted(items, key=repr) if isinstance(value, set | frozenset) else items
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


def write(run_dir: Path, journal: Journal) -> Path:
    """Write `journal` into `run_dir` atomically; returns the file."""
    path = Path(run_dir) / FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(to_data(journal), indent=1, ensure_ascii=False), encoding="utf-8")
    tmp.replace(path)
    return path


# --------------------------------------------------------------------------- reading

T = TypeVar("T")


def read(run_dir: Path | str) -> Journal:
    """The journal of a run directory (or of `<experiment>/latest`, or the file itself)."""
    path = Path(run_dir)
    if path.is_dir():
        path = path / FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise JournalError(f"{path}: cannot read the journal ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise JournalError(f"{path}: not a JSON journal ({exc})") from None
    if not isinstance(data, dict):
        raise JournalError(f"{path}: not a journal (a JSON object was expected)")
    version = data.get("journal_version")
    if version != VERSION:
        raise JournalError(
            f"{path}: journal_version {version!r}, this harness reads version {VERSION}"
            " (written by another version of the harness: run the experiment again, or read"
            " it with the version that wrote it)"
        )
    kind = data.get("kind", "run")
    cls: type[Any] = SearchJournal if kind == "search" else RunJournal
    try:
        return typing.cast(Journal, _build(cls, data, "journal"))
    except (TypeError, ValueError, KeyError) as exc:
        raise JournalError(f"{path}: {exc}") from None


def _build(tp: Any, data: Any, where: str) -> Any:
    origin = get_origin(tp)
    if tp is Any:
        return data
    if origin is Literal:
        if data not in get_args(tp):
            raise ValueError(f"{where}: {data!r} is not one of {get_args(tp)}")
        return data
    if origin in (Union, types.UnionType):
        args = get_args(tp)
        if type(data) in args and not dataclasses.is_dataclass(type(data)):
            return data
        if data is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _build(arg, data, where)
            except (TypeError, ValueError, KeyError) as exc:
                errors.append(str(exc))
        raise ValueError(f"{where}: {data!r} fits none of {tp} ({'; '.join(errors)})")
    if origin is tuple:
        if not isinstance(data, list):
            raise TypeError(f"{where}: expected a list, got {type(data).__name__}")
        args = get_args(tp)
        item = args[0] if args else Any
        return tuple(_build(item, v, f"{where}[{i}]") for i, v in enumerate(data))
    if origin in (Mapping, dict, typing.Mapping) or tp in (dict, Mapping):
        if not isinstance(data, dict):
            raise TypeError(f"{where}: expected an object, got {type(data).__name__}")
        args = get_args(tp)
        value_tp = args[1] if len(args) == 2 else Any
        return {k: _build(value_tp, v, f"{where}.{k}") for k, v in data.items()}
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if not isinstance(data, dict):
            raise TypeError(f"{where}: expected an object, got {type(data).__name__}")
        hints = get_type_hints(tp)
        kwargs = {}
        for f in dataclasses.fields(tp):
            if not f.init:
                continue
            if f.name in data:
                kwargs[f.name] = _build(hints[f.name], data[f.name], f"{where}.{f.name}")
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise KeyError(f"{where}.{f.name} is missing")
        return tp(**kwargs)
    if tp is float:
        if isinstance(data, bool) or not isinstance(data, int | float):
            raise TypeError(f"{where}: expected a number, got {data!r}")
        return float(data)
    if tp in (int, str, bool):
        if not isinstance(data, tp) or (tp is int and isinstance(data, bool)):
            raise TypeError(f"{where}: expected {tp.__name__}, got {data!r}")
        return data
    return data
