"""The machine-stall watch: its verdict, the expectation it spoils, and the real watcher
catching a stall (its own process stopped, as a CPU taken away would stop it)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
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
    assert Expectation("fail", ("latency",)).judge([latency_failed]).met
    j = Expectation("fail", ("latency",)).judge([latency_failed, stalled])
    assert j.outcome == "inconclusive" and "machine itself stalled" in j.why
    j = Expectation("pass").judge([Verdict("latency", True), stalled])
    assert j.outcome == "inconclusive"


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


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead
    except OSError:
        return False


def test_the_watchers_die_with_a_harness_killed_by_sigkill() -> None:
    script = (
        "import time\n"
        "from harness.stalls import StallWatch\n"
        "with StallWatch() as watch:\n"
        "    print(*[p.pid for p in watch._procs], flush=True)\n"
        "    time.sleep(60)\n"
    )
    harness = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert harness.stdout is not None
        watchers = [int(p) for p in harness.stdout.readline().split()]
        assert watchers and all(_alive(p) for p in watchers)
        harness.kill()  # no teardown of any kind
        harness.wait(timeout=5)
        deadline = time.monotonic() + 5
        while any(_alive(p) for p in watchers) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not [p for p in watchers if _alive(p)], "a watcher outlived its harness"
    finally:
        if harness.poll() is None:
            harness.kill()
            harness.wait()
