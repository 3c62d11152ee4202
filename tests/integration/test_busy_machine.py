"""A machine that cannot keep the load generator on a CPU: while each run's workload is
on, the test takes the CPU from the harness's process in long slices (stopped for 0.7 s of
every second, as a CPU quota or a host stealing a virtual machine's CPU would), so it cannot
send on time. The run must come out inconclusive, not failed and not passed; it is run once
more, and when that run is starved too, the CLI exits 3 and pytest fails the item, each
with the one-line reason (how many arrivals were never sent, or how late they went, and
what to do).

The experiment's latency bound fails on such a run (latency counts from the intended send
time), so without the rule the run would be a failure (and, with the availability bound
alone, a pass): it is neither.

The stall starts when a run's history file appears (the workload begins) and stops after
the workload's length, so starting, seeding and reading the system are not slowed. (Busy
processes of a higher weight do not starve the generator reliably: the scheduler favours
waking sleepers.) The stalled process dies with the test (parent-death signal), so a
killed test cannot leave it stopped."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

DURATION = 6.0  # run seconds of the workload
STOPPED, PERIOD = 0.7, 1.0  # seconds the generator is off the CPU, of each period
EXPERIMENT = f"""
name: busy-machine
description: a run on a machine that cannot keep the load generator on a CPU
system:
  profile: hardened
capacity: 300
steady_state: false
workload:
  duration: {DURATION:g}s
  rate:
    - {{at: 0s, x: 1.0, phase: load}}
  clients:
    good: 1.0
invariants:
  - availability: {{op: show_code, min: 0.0}}
  - latency: {{op: show_code, p99_ms: 100}}
expect:
  hardened: pass
"""


class StallEachWorkload:
    """Watches `runs` for new run directories with a history; for each workload, stops
    the process `pid` (the harness, whose event loop is the generator) for `STOPPED` of
    every `PERIOD`, and always lets it go on at the end."""

    def __init__(self, runs: Path) -> None:
        self.runs, self.stalled, self.pidfd = runs, 0, -1
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _scan(self, seen: set[Path]) -> set[Path]:
        found = self.runs.glob("*/*/history.jsonl*")  # not through `latest`
        new = {p.parent for p in found if not p.parent.is_symlink()} - seen
        seen |= new
        self.stalled += len(new)
        return new

    def _stall_until(self, until: float, seen: set[Path]) -> None:
        """Stop and continue the process in turns until `until`, later when a rerun
        begins meanwhile."""
        send = signal.pidfd_send_signal  # by pidfd: never a recycled pid
        try:
            while time.monotonic() < until and not self.stop.is_set():
                send(self.pidfd, signal.SIGSTOP)
                self.stop.wait(STOPPED)
                send(self.pidfd, signal.SIGCONT)
                self.stop.wait(PERIOD - STOPPED)
                if self._scan(seen):
                    until = time.monotonic() + DURATION + 1
        finally:
            with contextlib.suppress(ProcessLookupError):
                send(self.pidfd, signal.SIGCONT)

    def _watch(self) -> None:
        seen: set[Path] = set()
        try:
            while not self.stop.is_set():
                if self._scan(seen):
                    self._stall_until(time.monotonic() + DURATION + 1, seen)
                self.stop.wait(0.05)
        except ProcessLookupError:
            pass  # the process ended
        except BaseException as exc:
            self.error = exc

    def run(
        self, args: list[str], cwd: Path, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run `args` as the stalled process; the watcher stops with it."""
        with subprocess.Popen(
            args,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=cwd,
            env=env,
            preexec_fn=_die_with_parent,
        ) as proc:
            self.pidfd = os.pidfd_open(proc.pid)
            self.thread.start()
            try:
                out, err = proc.communicate(timeout=240)
            finally:
                self.stop.set()
                self.thread.join(30)
                if proc.poll() is None:
                    proc.kill()
                os.close(self.pidfd)
        return subprocess.CompletedProcess(args, proc.returncode, out, err)


def _die_with_parent() -> None:
    """In the child: SIGKILL when the test process ends (PR_SET_PDEATHSIG)."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)


def _starved(text: str) -> bool:
    """One of the generator's two reasons: arrivals dropped, or sent too late."""
    return (
        "arrivals never sent: the machine could not offer" in text
        or "the machine was too busy to offer the load on time" in text
    )


def _write(tmp_path: Path) -> Path:
    path = tmp_path / "experiments" / "busy-machine.yaml"
    path.parent.mkdir()
    path.write_text(EXPERIMENT)
    return path


def test_cli_a_starved_generator_is_inconclusive_rerun_and_exits_3(tmp_path: Path) -> None:
    experiment, runs = _write(tmp_path), tmp_path / "runs"
    harness = Path(sys.executable).with_name("harness")
    stall = StallEachWorkload(runs)
    done = stall.run(
        [str(harness), "run", str(experiment), "--runs-dir", str(runs), "--seed", "3"],
        cwd=tmp_path,
    )
    assert stall.error is None, stall.error
    out, err = done.stdout, done.stderr
    assert done.returncode == 3, out + err
    assert stall.stalled == 2  # the run and its rerun
    assert "inconclusive (load_generator: " in err and "running it again" in err
    first = out.splitlines()[0]
    assert "busy-machine [hardened] seed=3: INCONCLUSIVE (load_generator: " in first
    assert _starved(first) and "close other work" in first
    assert "rerun of " in out
    assert "  latency: fail" in out  # the starved run would have failed: it is not a failure
    assert len(list((runs / "busy-machine").glob("*-hardened"))) == 2  # both journals kept


def test_pytest_a_starved_generator_fails_the_item_as_inconclusive(tmp_path: Path) -> None:
    _write(tmp_path)
    runs = tmp_path / "runs"
    stall = StallEachWorkload(runs)
    done = stall.run(
        [sys.executable, "-m", "pytest", "-ra", "-p", "no:cacheprovider",
         "experiments", "--harness-runs-dir", str(runs), "--harness-seed", "3"],
        cwd=tmp_path, env={**os.environ, "COLUMNS": "400"},  # -ra lines whole
    )  # fmt: skip
    assert stall.error is None, stall.error
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert stall.stalled == 2, out
    # the item's reason is its last run's; the first run's, named by the rerun line, is
    # the generator's
    assert "FAILED experiments/busy-machine.yaml::hardened - INCONCLUSIVE: " in out, out
    assert _starved(out), out
    assert "harness: experiments/busy-machine.yaml::hardened was run again: " in out
    assert "report:  " in out and "report.html" in out
