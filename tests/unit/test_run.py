"""Pieces of the run lifecycle that need no system: the generator's own verdict."""

from __future__ import annotations

from harness.load import LoadResult
from harness.run import generator_verdict, steady_state_broken


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


def test_a_broken_steady_state_is_measured_once_more_and_aborts_only_when_both_fail() -> None:
    said: list[str] = []
    results = iter(["p99 965 ms", None])
    assert steady_state_broken(lambda: next(results), said.append) is None
    assert said == ["steady state broken (p99 965 ms); measuring it once more"]

    results = iter(["p99 965 ms", "p99 1002 ms", None])
    why = steady_state_broken(lambda: next(results), said.append)
    assert why == "p99 965 ms; measured again: p99 1002 ms"

    calls: list[int] = []
    assert steady_state_broken(lambda: calls.append(1), said.append) is None  # holds: once
    assert calls == [1]
