"""A run as the report sees it: its journal, its history cut into windows, its faults,
its recoveries (as its `recovers` verdicts judged them) and its end-of-run totals; and
which runs of the other profiles stand beside it.

Every time here is run seconds since the load runner's t0 (the history's clock): the
chart's axis, the fault timeline, the recovery table and the invariants' messages.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness import history as history_io
from harness import journal as journal_io
from harness.journal import RunJournal
from harness.report.totals import Totals, totals
from harness.store import HISTORY
from harness.timeline import Timeline, timeline

__all__ = [
    "FaultSpan",
    "Recovery",
    "RunView",
    "load_run",
    "read_run",
    "related_runs",
    "window_width",
]


@dataclass(frozen=True)
class FaultSpan:
    """One fault's active interval in run seconds (`end` None: never healed)."""

    name: str
    label: str
    start: float
    end: float | None
    took_effect: bool | None
    evidence: str = ""


@dataclass(frozen=True)
class Recovery:
    """One `recovers` verdict as the recovery table shows it: the anchor as the file
    names it (`after`) and when it was (`at`), how long until the SLO held again
    (`seconds`, None: never), the bound (`within`), all run seconds."""

    name: str
    after: str
    at: float | None
    seconds: float | None
    within: float | None
    valid: bool | None
    message: str


@dataclass(frozen=True)
class RunView:
    """One run as a report sees it."""

    path: Path
    journal: RunJournal
    timeline: Timeline
    faults: tuple[FaultSpan, ...]
    recoveries: tuple[Recovery, ...]
    totals: tuple[Totals, ...] = ()

    @property
    def profile(self) -> str:
        return self.journal.profile

    @property
    def duration(self) -> float:
        return self.journal.workload.duration_s


def window_width(duration: float) -> float:
    """Half a second for short runs, then coarser so a chart has at most ~150 windows."""
    for width in (0.5, 1.0, 2.0, 5.0, 10.0):
        if duration / width <= 150:
            return width
    return 30.0


def _fault_spans(journal: RunJournal) -> tuple[FaultSpan, ...]:
    return tuple(
        FaultSpan(
            name=rec.name,
            label=rec.target or rec.kind or rec.name,
            start=rec.start,
            end=rec.end,
            took_effect=rec.took_effect,
            evidence=rec.evidence,
        )
        for rec in journal.fault_records
    )


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def recoveries(journal: RunJournal) -> tuple[Recovery, ...]:
    """The run's `recovers` verdicts (those with a `recovery_s` or `trigger_end_s`
    figure), as they judged: the table says what the verdict says."""
    out = []
    for v in journal.verdicts:
        f = v.figures
        if "recovery_s" not in f and "trigger_end_s" not in f:
            continue
        out.append(
            Recovery(
                name=v.name,
                after=str(f.get("after", "trigger_end")),
                at=_number(f.get("trigger_end_s")),
                seconds=_number(f.get("recovery_s")),
                within=_number(f.get("within_s")),
                valid=v.valid,
                message=v.message,
            )
        )
    return tuple(out)


def read_run(path: Path) -> RunJournal:
    """A run's journal (a search's is refused: it has no timeline)."""
    record = journal_io.read(path)
    if not isinstance(record, RunJournal):
        raise ValueError(f"{path} is a {record.kind} journal, not a run's")
    return record


def load_run(run_dir: Path | str, width: float | None = None) -> RunView:
    """A run directory's journal and history as a `RunView` (a missing history is empty)."""
    path = Path(run_dir).resolve()
    journal = read_run(path)
    history_path = path / (journal.history or HISTORY)
    ops = history_io.load(history_path) if history_path.exists() else []
    duration = journal.workload.duration_s
    tl = timeline(ops, width or window_width(duration), duration)
    return RunView(path, journal, tl, _fault_spans(journal), recoveries(journal), totals(ops))


def related_runs(run_dir: Path | str) -> list[Path]:
    """This run and the latest run of every other profile of the same experiment under the
    same runs directory (``<experiment>/<stamp>-<profile>/``), in the topology's order."""
    path = Path(run_dir).resolve()
    own = read_run(path)
    latest: dict[str, Path] = {own.profile: path}
    for sibling in sorted(path.parent.iterdir()):
        if sibling.is_symlink() or not (sibling / journal_io.FILE).is_file():
            continue
        parts = sibling.name.split("-", 3)
        profile = parts[3] if len(parts) == 4 else ""
        if profile and profile != own.profile:
            latest[profile] = sibling  # sorted by stamp: the last one wins
    order = own.topology.profiles if own.topology else ()
    rank = {p: i for i, p in enumerate(order)}
    return [latest[p] for p in sorted(latest, key=lambda p: (rank.get(p, len(rank)), p))]
