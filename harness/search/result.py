"""What a fault search found: each schedule tried (`Candidate`, with its runs and what
they decided) and the search's outcome (`SearchResult`, with its figures and the
one-paragraph summary the CLI prints)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.faults import ScheduledFault
from harness.journal import Outcome
from harness.search.space import describe, to_yaml

__all__ = ["OUTCOME_WORDS", "Candidate", "SearchResult"]

OUTCOME_WORDS = {"met": "as expected", "not_met": "NOT as expected", "inconclusive": "INCONCLUSIVE"}


@dataclass
class Candidate:
    """One schedule tried: its runs and what they decided."""

    schedule: tuple[ScheduledFault, ...]
    phase: str  # "generate" (before the first failure), "shrink", "delete" (the last pass)
    started: float  # seconds since the search began
    runs: list[dict[str, Any]] = field(default_factory=list)
    verdict: str = "pass"  # pass | fail | unreproduced | aborted | error
    broken: tuple[str, ...] = ()  # invariant ids broken in the failing runs

    @property
    def failures(self) -> int:
        return sum(1 for r in self.runs if r["broken"])

    @property
    def failing(self) -> bool:
        return self.verdict == "fail"

    def to_json(self) -> dict[str, Any]:
        return {
            "faults": to_yaml(self.schedule),
            "describe": describe(self.schedule),
            "phase": self.phase,
            "started_s": round(self.started, 2),
            "verdict": self.verdict,
            "broken": list(self.broken),
            "failures": self.failures,
            "runs": self.runs,
        }


@dataclass(frozen=True)
class SearchResult:
    """What a search found, how long it took, and where its evidence is."""

    experiment: str
    profile: str
    seed: int
    expected: str
    met: bool
    why: str
    minimal: tuple[ScheduledFault, ...] | None
    broken: tuple[str, ...]
    examples: int  # distinct schedules run
    runs: int  # example runs in all (replays included)
    shrink_steps: int  # smaller failing schedules accepted after the first failure
    shrink_tried: int  # distinct schedules tried while shrinking
    time_to_first_failure: float | None
    time_to_shrink: float | None
    elapsed: float
    unreproduced: tuple[Candidate, ...]
    budget_spent: bool
    run_dir: Path
    journal: Path
    minimal_file: Path | None = None
    replay: str | None = None
    first_failure: tuple[ScheduledFault, ...] | None = None
    setup: float = 0.0  # seconds of the elapsed time spent starting systems and calibrating
    must_fail: int = 2
    replays: int = 2
    inconclusive: tuple[str, ...] = ()  # why examples could not be judged (busy machine...)

    @property
    def outcome(self) -> Outcome:
        """met, not_met, or inconclusive: no failure found while some examples could not
        be judged (they say nothing, so the search proved less than it claims)."""
        if self.met:
            return "met"
        return "inconclusive" if self.inconclusive and not self.found else "not_met"

    @property
    def _rule(self) -> str:
        return f"({self.must_fail} of {self.replays} runs)"

    @property
    def found(self) -> bool:
        return self.minimal is not None

    def summary(self) -> str:
        head = (
            f"search {self.experiment} [{self.profile}] seed={self.seed}: "
            f"{OUTCOME_WORDS[self.outcome]} ({self.why})"
        )
        ttf = "-" if self.time_to_first_failure is None else f"{self.time_to_first_failure:.0f}s"
        tts = "-" if self.time_to_shrink is None else f"{self.time_to_shrink:.0f}s"
        tried = (
            f"  {self.examples} schedules ({self.runs} runs) in {self.elapsed:.0f}s"
            f" ({self.setup:.0f}s of it starting systems and calibrating)"
        )
        if self.time_to_first_failure is None:
            lines = [head, f"{tried}; no schedule failed {self._rule}"]
        else:
            lines = [
                head,
                f"{tried}; first failure after {ttf}; shrinking {tts},"
                f" {self.shrink_steps} steps of {self.shrink_tried} tried",
            ]
        if self.first_failure is not None:
            lines.append(f"  first failing: {describe(self.first_failure)}")
        if self.minimal is not None:
            lines.append(
                f"  minimal ({len(self.minimal)} fault(s)): {describe(self.minimal)}"
                f" breaks {', '.join(self.broken)}"
            )
        for c in self.unreproduced:
            lines.append(
                f"  NOT REPRODUCED: {describe(c.schedule)} failed {c.failures} of"
                f" {len(c.runs)} runs ({', '.join(c.broken)})"
            )
        if self.budget_spent:
            lines.append("  the time budget ran out: the search (or its shrinking) stopped early")
        lines.append(f"  journal: {self.journal}")
        if self.replay:
            lines.append(f"  replay:  {self.replay}")
        return "\n".join(lines)
