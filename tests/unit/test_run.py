"""Pieces of the run lifecycle that need no system: the generator's own verdict."""

from __future__ import annotations

from harness.load import LoadResult
from harness.run import generator_verdict


def load(arrivals: int, never_sent: int) -> LoadResult:
    return LoadResult(
        arrivals=arrivals,
        sent=arrivals - never_sent,
        never_sent=never_sent,
        retries=0,
        reopens=0,
        cancelled=0,
        budget_denied=0,
        ops=arrivals,
        duration=10.0,
        wall_start=0.0,
        lateness_p50=0.0001,
        lateness_p99=0.002,
        lateness_max=0.01,
    )


def test_a_generator_that_kept_up_is_a_pass() -> None:
    verdict = generator_verdict(load(10_000, 900))
    assert verdict.valid is True
    assert verdict.figures["never_sent"] == 900


def test_a_generator_that_fell_behind_makes_the_run_unknown_not_a_failure_of_the_system() -> None:
    verdict = generator_verdict(load(10_000, 1500))
    assert verdict.valid is None
    assert "fell behind: 1500 of 10000" in verdict.message
