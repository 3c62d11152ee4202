"""Machine stalls: moments when the machine itself, not the system under test, stopped
running processes (a virtual CPU taken away by its host, a kernel hiccup).

A run's figures are only the system's if every process could run. A watcher per CPU,
pinned to it and (as root) scheduled real-time, sleeps `TICK` seconds at a time and
reports every wake-up later than `THRESHOLD`: nothing on the machine outranks it, so
only a CPU that was not there explains such a delay. A stall during the workload makes
the ``machine`` verdict unknown, and a run that missed its expectation because of one
is run again (``harness.run.run``).

    with StallWatch() as watch:
        ...                       # the workload
    verdict = machine_verdict(watch.report(), start, end)
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.invariants import Verdict

MACHINE = "machine"  # the verdict's name
TICK = 0.01
THRESHOLD = 0.15  # a wake-up this late means the CPU was gone (SLO bounds are >= 0.3 s)
_WATCHER = Path(__file__).with_name("stall_watcher.py")


@dataclass(frozen=True)
class Stall:
    """One late wake-up: on `cpu`, the machine ran nothing of the watcher's from `at`
    (monotonic clock) for `seconds`."""

    cpu: int
    at: float
    seconds: float


@dataclass(frozen=True)
class StallReport:
    """What the watchers saw: their stalls, and how they were scheduled."""

    stalls: tuple[Stall, ...]
    cpus: int
    realtime: bool  # SCHED_FIFO; otherwise ordinary priority (stalls may be load)
    threshold: float = THRESHOLD

    def within(self, start: float, end: float) -> tuple[Stall, ...]:
        return tuple(s for s in self.stalls if s.at < end and s.at + s.seconds > start)


class StallWatch:
    """Watchers on every CPU for the duration of a ``with`` block (entered from the main
    thread: a watcher dies when the thread that started it ends)."""

    def __init__(self, tick: float = TICK, threshold: float = THRESHOLD) -> None:
        self.tick, self.threshold = tick, threshold
        self._procs: list[subprocess.Popen[str]] = []
        self._ready: list[list[str]] = []
        self._report: StallReport | None = None

    def __enter__(self) -> StallWatch:
        cpus = sorted(os.sched_getaffinity(0))
        # the watchers die with this process (its main thread), even by SIGKILL
        args = [str(self.tick), str(self.threshold), str(os.getpid())]
        try:
            for cpu in cpus:
                self._procs.append(
                    subprocess.Popen(
                        [sys.executable, "-I", "-S", str(_WATCHER), str(cpu), *args],
                        stdout=subprocess.PIPE,
                        text=True,
                    )
                )
            self._ready = [p.stdout.readline().split() if p.stdout else [] for p in self._procs]
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._report = self._stop()

    def _stop(self) -> StallReport:
        stalls = []
        for proc in self._procs:
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        for proc in self._procs:
            try:
                out, _ = proc.communicate(timeout=5)
            except subprocess.TimeoutExpired:  # stopped, or wedged: it goes all the same
                proc.kill()
                out, _ = proc.communicate()
            for line in out.splitlines():
                if line.startswith("ready"):  # a watcher that never got read
                    continue
                cpu, at, seconds = line.split()
                stalls.append(Stall(int(cpu), float(at), float(seconds)))
        realtime = bool(self._ready) and all(r[-1:] == ["1"] for r in self._ready)
        stalls.sort(key=lambda s: s.at)
        return StallReport(tuple(stalls), len(self._procs), realtime, self.threshold)

    def report(self) -> StallReport:
        """The stalls seen (after the ``with`` block)."""
        if self._report is None:
            raise RuntimeError("StallWatch.report() before the watch ended")
        return self._report


def machine_verdict(report: StallReport, start: float, end: float) -> Verdict:
    """``machine``: true when no CPU stalled between `start` and `end` (monotonic), unknown
    otherwise: figures measured while the machine stopped are not the system's."""
    stalls = report.within(start, end)
    worst = max((s.seconds for s in stalls), default=0.0)
    figures = {
        "cpus": report.cpus,
        "realtime": int(report.realtime),
        "stalls": len(stalls),
        "worst_stall_ms": round(worst * 1000, 1),
        "threshold_ms": round(report.threshold * 1000),
    }
    if not stalls:
        return Verdict(MACHINE, True, figures, "no CPU stalled during the workload")
    where = ", ".join(
        f"{s.seconds * 1000:.0f} ms on cpu {s.cpu} at run {s.at - start:.2f} s" for s in stalls[:3]
    )
    more = f" (+{len(stalls) - 3} more)" if len(stalls) > 3 else ""
    return Verdict(
        MACHINE,
        None,
        figures,
        f"the machine itself stalled: {where}{more}; the other figures are suspect",
    )
