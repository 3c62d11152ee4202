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


def test_a_run_spoilt_by_a_machine_stall_is_run_once_more_and_says_so(monkeypatch) -> None:
    import dataclasses
    from pathlib import Path

    from harness import run as run_module
    from harness.invariants import Verdict

    stalled = Verdict("machine", None, message="the machine itself stalled: 1520 ms on cpu 1")
    first = run_module.RunResult(
        experiment="x", profile="naive", seed=1, backend="local", valid=False,
        verdicts=(Verdict("latency", False), stalled), met=False, why="stalled",
        expected="pass", capacity=None, load=None, faults=(), run_dir=Path("runs/x/1"),
        journal=Path("runs/x/1/journal.json"), replay="",
    )  # fmt: skip
    calls: list[run_module.RunOptions] = []

    def fake(results):
        def once(experiment, options, *, system=None):
            calls.append(options)
            return next(results)

        return once

    options = run_module.RunOptions(profile="naive")
    again = dataclasses.replace(first, verdicts=(Verdict("latency", True),), met=True)
    monkeypatch.setattr(run_module, "_run_once", fake(iter([first, again])))
    assert run_module.run(None, options) is again  # type: ignore[arg-type]
    assert calls[1].rerun_of == "runs/x/1/journal.json: " + stalled.message

    # at most once; a miss without a stall, a met run or a caller's own system: no rerun
    for results, system in (
        ([first, first], None),
        ([dataclasses.replace(first, verdicts=(Verdict("latency", False),))], None),
        ([again], None),
        ([first], object()),
    ):
        calls.clear()
        monkeypatch.setattr(run_module, "_run_once", fake(iter(results)))
        run_module.run(None, options, system=system)  # type: ignore[arg-type]
        assert len(calls) == len(results)
