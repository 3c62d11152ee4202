"""What one run proved and where its evidence is (`RunResult`), how it was asked for
(`RunOptions`), and how it reads on a terminal: the headline, the retry amplification
line and the command that replays it."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.experiment import Experiment
from harness.invariants import FaultRecord, Verdict
from harness.journal import CapacityRecord, ClientRecord
from harness.load import LoadResult

__all__ = [
    "EXIT_INCONCLUSIVE",
    "RunOptions",
    "RunResult",
    "amplification_line",
    "display_path",
    "replay_command",
]

EXIT_INCONCLUSIVE = 3  # the exit code of a command whose run could not judge


@dataclass(frozen=True)
class RunOptions:
    """How to run an experiment: which profile, seed, backend, and where to keep the run."""

    profile: str
    seed: int = 1
    backend: str | None = None  # None: the experiment's (default local)
    runs_dir: Path = Path("runs")
    capacity: float | None = None  # None: the file's, else calibrate (cached)
    capacity_max: float | None = None  # a calibrated C (or own C) above this is lowered to it
    own_capacity: float | None = None  # for x_own rates; None: calibrate (cached)
    recalibrate: bool = False
    progress: Callable[[str], None] | None = None
    live: bool | None = None  # the live progress line; None: only when stderr is a terminal
    publish: bool = True  # write report.html and summary.md (a search's examples do not)
    rerun_of: str | None = None  # the earlier run this one repeats, and why
    proxy_all: bool = False  # every link through Toxiproxy (default: where a fault may act)


@dataclass(frozen=True)
class RunResult:
    """What one run proved, and where its evidence is."""

    experiment: str
    profile: str
    seed: int
    backend: str
    valid: bool | None  # the composed verdict
    verdicts: tuple[Verdict, ...]
    outcome: str  # met | not_met | inconclusive
    why: str
    expected: str
    capacity: CapacityRecord
    load: LoadResult | None
    faults: tuple[FaultRecord, ...]
    run_dir: Path
    journal: Path
    replay: str
    aborted: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    rerun_of: str | None = None
    clients: tuple[ClientRecord, ...] = ()  # retry amplification per client class
    own_capacity: CapacityRecord | None = None
    reused: bool = False  # ran on a system an earlier run used (reset in between)

    @property
    def met(self) -> bool:
        return self.outcome == "met"

    @property
    def inconclusive(self) -> bool:
        return self.outcome == "inconclusive"

    @property
    def report(self) -> Path:
        return self.run_dir / "report.html"

    def headline(self) -> str:
        state = {"met": "as expected", "not_met": "NOT as expected"}.get(
            self.outcome, "INCONCLUSIVE"
        )
        return f"{self.experiment} [{self.profile}] seed={self.seed}: {state} ({self.why})"

    def summary(self) -> str:
        lines = [self.headline()]
        if self.capacity.rps is not None:
            from harness.summary import capacity_text

            lines.append(f"  {capacity_text(self.capacity)}")
        own = self.own_capacity
        if own is not None and own.rps is not None and own is not self.capacity:
            lines.append(f"  own C of {self.profile} = {own.rps:.0f} req/s ({own.source})")
        if self.clients:
            lines.append("  attempts per intent: " + amplification_line(self.clients))
        for v in self.verdicts:
            lines.append(f"  {v}")
            if v.blame:
                lines.append(f"      blame: {v.blame}")
        if self.rerun_of:
            lines.append(f"  rerun of {self.rerun_of}")
        lines.append(f"  journal: {self.journal}")
        lines.append(f"  report:  {self.report}")
        lines.append(f"  replay:  {self.replay}")
        return "\n".join(lines)


def amplification_line(clients: tuple[ClientRecord, ...]) -> str:
    """`good 1.02 (1,480 intents, 98.6% answered), buggy 7.31 (...)`: retry amplification."""
    parts = []
    for c in clients:
        answered = c.answered / c.intents if c.intents else 0.0
        parts.append(
            f"{c.client_class} {c.amplification:.2f}"
            f" ({c.intents:,} intents, {answered:.1%} answered, longest {c.max_attempts})"
        )
    return ", ".join(parts)


def replay_command(
    experiment: Experiment, profile: str, seed: int, backend: str, *, proxy_all: bool = False
) -> str:
    path = display_path(experiment.path)
    extra = "" if backend == "local" else f" --backend {backend}"
    extra += " --proxy-all" if proxy_all else ""
    return f"harness run {path} --profile {profile} --seed {seed}{extra}"


def display_path(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(Path.cwd()))
    return str(path)
