"""A reused system gives the verdicts a fresh one gives: three short catalogue experiments
run on fresh systems, then on one pooled system reset between them (figures may differ,
the verdicts may not, but those the file says may swing between runs), on the real
reference system."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.experiment import TRUST, load_experiment
from harness.run import RunOptions, run
from harness.run.reuse import SystemPool

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

ROOT = Path(__file__).resolve().parents[2]
NAMES = ("app-crash", "redis-down", "abusive-clients")  # faults on processes: one shape
CAPACITY = 1000.0  # given, so that no calibration runs (the verdicts are compared, not C)


def verdicts(result, swinging: tuple[str, ...]) -> dict[str, bool | None]:
    """The verdicts on the system, but those its file says may swing between runs."""
    return {v.name: v.valid for v in result.verdicts if v.name not in TRUST + swinging}


def test_a_reused_system_gives_the_verdicts_of_a_fresh_one(tmp_path: Path) -> None:
    experiments = [load_experiment(ROOT / "experiments" / f"{n}.yaml") for n in NAMES]
    options = RunOptions(profile="naive", seed=11, runs_dir=tmp_path, capacity=CAPACITY)
    fresh = [run(exp, options) for exp in experiments]
    with SystemPool() as pool:
        pooled = [run(exp, options, pool=pool) for exp in experiments]
    for r in fresh + pooled:  # shown on failure
        print(f"{r.headline()} reused={r.reused} rerun_of={r.rerun_of}")
    print(f"pool: {pool.started} systems started, {pool.reused} runs reused one")
    print(f"failed resets: {pool.failed_resets}")
    assert [r.reused for r in fresh] == [False] * len(NAMES)
    # a run that could not judge, or aborted, on a reused system is run again on a fresh one
    assert pool.reused >= 1 and any(r.reused for r in pooled)
    # fresh systems: the first, one per failed reset, and after a run that could not judge
    fresh_again = len(pool.failed_resets) + sum(1 for r in pooled if r.rerun_of or r.inconclusive)
    assert pool.started <= 1 + fresh_again
    compared = 0
    for exp, a, b in zip(experiments, fresh, pooled, strict=True):
        if a.inconclusive or b.inconclusive:
            continue  # a run that could not judge says nothing either way
        swinging = exp.expectation("naive").may_fail
        seen = (a.outcome, verdicts(a, swinging)), (b.outcome, verdicts(b, swinging))
        if seen[0] != seen[1]:
            print(f"fresh:\n{a.summary()}\npooled:\n{b.summary()}")  # shown on failure
        assert seen[0] == seen[1], a.experiment
        compared += 1
    if not compared:
        pytest.skip("every pair had an inconclusive run (a busy machine): nothing compared")
