"""The record a fault search leaves in its run directory: the search journal (every
schedule tried, the figures, the minimal schedule), `summary.md`, and the report of the
minimal schedule's last failing run."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import journal
from harness.experiment import Experiment
from harness.publish import publish
from harness.search.result import OUTCOME_WORDS, Candidate, SearchResult
from harness.search.space import SearchSpec, to_yaml
from harness.store import RunDir

__all__ = ["markdown", "publish_example", "write_record"]


def publish_example(minimal: Candidate) -> None:
    """report.html and summary.md for the minimal schedule's last failing run."""
    failing = [r for r in minimal.runs if r.get("broken") and r.get("run_dir")]
    if not failing or not (Path(failing[-1]["run_dir"]) / "journal.json").exists():
        return
    publish(Path(failing[-1]["run_dir"]), None)


def write_record(
    result: SearchResult,
    experiment: Experiment,
    spec: SearchSpec,
    history: Sequence[Candidate],
    run_dir: RunDir,
    minimal: Candidate | None,
) -> None:
    """Write the search journal and `summary.md` of `result` into `run_dir`; `history` is
    every schedule tried, in order."""
    verdicts: tuple[Any, ...] = ()
    if minimal is not None:
        failing = [r for r in minimal.runs if r.get("broken") and r.get("run_dir")]
        if failing:
            with contextlib.suppress(journal.JournalError):
                example = journal.read(failing[-1]["run_dir"])
                verdicts = example.verdicts
    record = journal.SearchJournal(
        experiment=journal.ExperimentRef(
            experiment.name, experiment.description, str(experiment.path)
        ),
        profile=result.profile,
        seed=result.seed,
        valid=None if minimal is None and result.unreproduced else minimal is None,
        expected=result.expected,
        outcome=result.outcome,
        why=result.why,
        verdicts=verdicts,
        search=journal.SearchRecord(
            space=journal.to_data(spec.space),
            examples_setting=spec.examples,
            budget_s=spec.budget,
            replays=spec.replays,
            must_fail=spec.must_fail,
            figures={
                "examples": result.examples,
                "runs": result.runs,
                "shrink_steps": result.shrink_steps,
                "shrink_tried": result.shrink_tried,
                "time_to_first_failure_s": result.time_to_first_failure,
                "time_to_shrink_s": result.time_to_shrink,
                "elapsed_s": result.elapsed,
                "setup_s": result.setup,
                "budget_spent": result.budget_spent,
            },
            first_failure=None
            if result.first_failure is None
            else tuple(to_yaml(result.first_failure)),
            minimal=None if result.minimal is None else tuple(to_yaml(result.minimal)),
            broken=tuple(result.broken),
            unreproduced=tuple(c.to_json() for c in result.unreproduced),
            history=tuple(c.to_json() for c in history),
        ),
        minimal_file=None if result.minimal_file is None else result.minimal_file.name,
        replay=result.replay,
    )
    run_dir.write_journal(record)
    (run_dir.path / "summary.md").write_text(markdown(result), encoding="utf-8")


def markdown(result: SearchResult) -> str:
    """The search's `summary.md`: its outcome and the CLI summary."""
    lines = [
        f"# Fault search: {result.experiment} [{result.profile}]",
        "",
        f"**{OUTCOME_WORDS[result.outcome]}** ({result.why})",
        "",
        "```",
        result.summary(),
        "```",
    ]
    return "\n".join(lines) + "\n"
