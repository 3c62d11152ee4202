"""The machine-stall watch: its verdict, the expectation it spoils, and the real watcher
catching a stall (its own process stopped, as a CPU taken away would stop it)."""

from __future__ import annotations

import os
import signal
import time

from harness.experiment import Expectation
from harness.invariants import Verdict
from harness.stalls import Stall, StallReport, StallWatch, machine_verdict


def report(*stalls: Stall) -> StallReport:
    return StallReport(stalls=stalls, cpus=2, realtime=True)


def test_no_stall_in_the_window_is_a_pass() -> None:
    before = Stall(cpu=0, at=5.0, seconds=0.4)  # ended before the workload began
    verdict = machine_verdict(report(before), start=10.0, end=20.0)
    assert verdict.valid is True
    assert verdict.figures["stalls"] == 0


def test_a_stall_in_the_window_makes_the_run_unknown_and_says_where() -> None:
    stall = Stall(cpu=1, at=18.2, seconds=1.52)
    verdict = machine_verdict(report(stall), start=10.0, end=20.0)
    assert verdict.valid is None
    assert verdict.figures["worst_stall_ms"] == 1520.0
    assert "1520 ms on cpu 1 at run 8.20 s" in verdict.message


def test_a_stalled_machine_meets_no_expectation_neither_pass_nor_fail() -> None:
    latency_failed = Verdict("latency", False, message="p99 1195 ms > 300 ms")
    stalled = machine_verdict(report(Stall(0, 12.0, 1.5)), 10.0, 20.0)
    assert Expectation("fail", ("latency",)).judge([latency_failed])[0]
    met, why = Expectation("fail", ("latency",)).judge([latency_failed, stalled])
    assert not met and "machine itself stalled" in why
    met, _ = Expectation("pass").judge([Verdict("latency", True), stalled])
    assert not met


def test_the_watcher_reports_a_stall_of_its_cpu() -> None:
    with StallWatch() as watch:
        time.sleep(0.2)
        proc = watch._procs[0]
        os.kill(proc.pid, signal.SIGSTOP)
        time.sleep(0.4)
        os.kill(proc.pid, signal.SIGCONT)
        time.sleep(0.2)
    stalls = watch.report().stalls
    assert [s.cpu for s in stalls] == [sorted(os.sched_getaffinity(0))[0]]
    assert 0.3 < stalls[0].seconds < 1.0
    assert all(p.poll() is not None for p in watch._procs)  # every watcher stopped
