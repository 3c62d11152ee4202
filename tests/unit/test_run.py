"""Pieces of the run lifecycle that need no system: the generator's own verdict, the
steady-state retry, and the rerun of an inconclusive run."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from harness.cpu import CpuShare
from harness.invariants import Verdict
from harness.journal import CapacityRecord
from harness.load import LoadResult
from harness.run import RunOptions, RunResult, lifecycle
from harness.run.steady import SteadyCheck, judge_steady, steady_state
from harness.run.verdicts import generator_verdict


def load(arrivals: int, never_sent: int, lateness_p99: float = 0.002) -> LoadResult:
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
        lateness_p99=lateness_p99,
        lateness_max=0.01,
    )


def test_a_generator_that_kept_up_is_a_pass() -> None:
    verdict = generator_verdict(load(10_000, 900))
    assert verdict.valid is True
    assert verdict.figures["never_sent"] == 900


def test_a_generator_that_fell_behind_is_unknown_and_says_what_to_do() -> None:
    verdict = generator_verdict(load(10_000, 1500))
    assert verdict.valid is None
    assert "1,500 of 10,000 arrivals never sent" in verdict.message
    assert "could not offer 1,000 req/s; close other work" in verdict.message
    late = generator_verdict(load(10_000, 0, lateness_p99=0.4))
    assert late.valid is None and "p99 400 ms behind schedule" in late.message


def test_a_broken_steady_state_is_measured_once_more_and_aborts_only_when_both_fail() -> None:
    said: list[str] = []
    results = iter([SteadyCheck("p99 965 ms"), SteadyCheck()])
    assert steady_state(lambda: next(results), said.append).holds
    assert said == ["steady state broken (p99 965 ms); measuring it once more"]

    results = iter([SteadyCheck("p99 965 ms"), SteadyCheck("p99 1002 ms"), SteadyCheck()])
    check = steady_state(lambda: next(results), said.append)
    assert check.broken == "p99 965 ms; measured again: p99 1002 ms"
    assert check.inconclusive is None

    calls: list[int] = []

    def holds() -> SteadyCheck:
        calls.append(1)
        return SteadyCheck()

    assert steady_state(holds, said.append).holds  # holds: measured once
    assert calls == [1]


def test_a_steady_state_check_that_could_not_judge_is_inconclusive_not_broken() -> None:
    busy = SteadyCheck("p99 965 ms", "the steady-state check could not judge: machine stalled")
    results = iter([busy, SteadyCheck()])
    assert steady_state(lambda: next(results), lambda _: None) is busy  # not measured again
    results = iter([SteadyCheck("p99 965 ms"), busy])
    assert steady_state(lambda: next(results), lambda _: None) is busy


def test_steady_state_judged_with_the_generator_the_machine_and_the_cpu_of_others() -> None:
    behind = generator_verdict(load(1000, 500))
    check = judge_steady("p99 965 ms", (behind, Verdict("machine", True)))
    assert check.inconclusive is not None and check.broken == "p99 965 ms"
    assert "load_generator: 500 of 1,000 arrivals never sent" in check.inconclusive
    stalled = Verdict("machine", None, message="the machine itself stalled")
    on_time = generator_verdict(load(1000, 0))
    check = judge_steady(None, (on_time, stalled))
    assert check.inconclusive and "machine: the machine itself stalled" in check.inconclusive

    quiet = CpuShare(2.0, 0.05, 0.0, 0.3)
    busy = CpuShare(2.0, 1.6, 0.0, 2.1)
    fine = (on_time, Verdict("machine", True))
    assert judge_steady("p99 965 ms", fine, quiet) == SteadyCheck("p99 965 ms")
    assert judge_steady(None, fine, busy).holds  # held although the machine was busy
    check = judge_steady("p99 965 ms", fine, busy)
    assert check.inconclusive is not None
    assert "other processes used 1.60 cores" in check.inconclusive
    assert "p99 965 ms" in check.inconclusive


def _result(outcome: str, why: str) -> RunResult:
    return RunResult(
        experiment="x", profile="naive", seed=1, backend="local", valid=False,
        verdicts=(Verdict("latency", False),), outcome=outcome, why=why, expected="pass",
        capacity=CapacityRecord(None, "none"), load=None, faults=(), run_dir=Path("runs/x/1"),
        journal=Path("runs/x/1/journal.json"), replay="",
    )  # fmt: skip


def test_an_inconclusive_run_is_run_once_more_and_says_so(monkeypatch) -> None:
    stalled = _result("inconclusive", "machine: the machine itself stalled: 1520 ms on cpu 1")
    calls: list[RunOptions] = []

    def fake(results):
        def once(experiment, options, *, system=None, pool=None):
            calls.append(options)
            return next(results)

        return once

    options = RunOptions(profile="naive")
    again = dataclasses.replace(stalled, outcome="met", why="all hold")
    monkeypatch.setattr(lifecycle, "_run_once", fake(iter([stalled, again])))
    assert lifecycle.run(None, options) is again  # type: ignore[arg-type]
    assert calls[1].rerun_of == "runs/x/1/journal.json: " + stalled.why

    # at most once; a run that was not met, a met run or a caller's own system: no rerun
    for results, system in (
        ([stalled, stalled], None),
        ([_result("not_met", "latency fails")], None),
        ([again], None),
        ([stalled], object()),
    ):
        calls.clear()
        monkeypatch.setattr(lifecycle, "_run_once", fake(iter(results)))
        lifecycle.run(None, options, system=system)  # type: ignore[arg-type]
        assert len(calls) == len(results)
