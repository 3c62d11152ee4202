"""A machine too busy to offer the load: while each run's workload is on, busy processes
the test starts (twice as many as there are CPUs, and one more, each outranking everything
else) take the CPUs from the load generator, so it cannot send on time. The run must come out
inconclusive, not failed and not passed; it is run once more, and when that run is
starved too, the CLI exits 3 and pytest fails the item, each with the one-line reason
(how many arrivals were never sent, and what to do).

The experiment's latency bound fails on such a run, so without the rule the run would be
a failure (and, with the availability bound alone, a pass): it is neither.

The hog starts when a run's history file appears (the workload begins) and stops after
the workload's length, so starting, seeding and reading the system are not starved.
The rate is high (2,000 req/s): a generator that sleeps between sends still wins some CPU
from busy loops of a higher weight (the scheduler favours waking sleepers), and at 400
req/s a starved rerun once sent 90% of its arrivals, enough to pass."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

DURATION = 6.0  # run seconds of the workload
EXPERIMENT = f"""
name: busy-machine
description: a run on a machine too busy to offer the load (the test hogs every CPU)
system:
  profile: hardened
capacity: 2000
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


def _outrank(pid: int) -> bool:
    """Give `pid` the highest CPU weight: its autogroup's nice (sched_autogroup, as on
    this kernel), else its own nice; False when not permitted (not root)."""
    try:
        Path(f"/proc/{pid}/autogroup").write_text("-20")
        return True
    except OSError:
        pass
    try:
        os.setpriority(os.PRIO_PROCESS, pid, -20)
        return True
    except OSError:
        return False


@contextlib.contextmanager
def cpu_hog(seconds: float) -> Iterator[None]:
    """Busy processes on every CPU (and one more) for at most `seconds`; stopped on exit."""
    n = 2 * len(os.sched_getaffinity(0)) + 1
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", f"import time\nend = time.time() + {seconds}\n"
             "while time.time() < end: pass"],
            start_new_session=True,
        )
        for _ in range(n)
    ]  # fmt: skip
    try:
        if not all(_outrank(p.pid) for p in procs):
            raise PermissionError("cannot raise the hog above the generator (needs root)")
        yield
    finally:
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                p.kill()
        for p in procs:
            p.wait()


class HogEachWorkload:
    """Watches `runs` for new run directories with a history; hogs the CPUs for each workload."""

    def __init__(self, runs: Path) -> None:
        self.runs, self.hogged = runs, 0
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def _scan(self, seen: set[Path]) -> set[Path]:
        found = self.runs.glob("*/*/history.jsonl*")  # not through `latest`
        new = {p.parent for p in found if not p.parent.is_symlink()} - seen
        seen |= new
        self.hogged += len(new)
        return new

    def _watch(self) -> None:
        """One hog per run directory, held until the last run's workload is over (a rerun
        that starts while the hog is on extends it rather than going unhogged)."""
        seen: set[Path] = set()
        try:
            while not self.stop.is_set():
                if self._scan(seen):
                    until = time.monotonic() + DURATION + 1
                    with cpu_hog(10 * (DURATION + 5)):
                        while time.monotonic() < until and not self.stop.is_set():
                            if self._scan(seen):
                                until = time.monotonic() + DURATION + 1
                            self.stop.wait(0.05)
                self.stop.wait(0.05)
        except BaseException as exc:
            self.error = exc

    def __enter__(self) -> HogEachWorkload:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(30)


def _starved(text: str) -> bool:
    """One of the generator's two reasons: arrivals dropped, or sent too late."""
    return (
        "arrivals never sent: the machine could not offer" in text
        or "the machine was too busy to offer the load on time" in text
    )


def _check_root() -> None:
    try:
        with cpu_hog(0.1):
            pass
    except PermissionError as exc:
        pytest.skip(str(exc))


def _write(tmp_path: Path) -> Path:
    path = tmp_path / "experiments" / "busy-machine.yaml"
    path.parent.mkdir()
    path.write_text(EXPERIMENT)
    return path


def test_cli_a_starved_generator_is_inconclusive_rerun_and_exits_3(tmp_path: Path) -> None:
    _check_root()
    experiment, runs = _write(tmp_path), tmp_path / "runs"
    harness = Path(sys.executable).with_name("harness")
    with HogEachWorkload(runs) as hog:
        done = subprocess.run(
            [str(harness), "run", str(experiment), "--runs-dir", str(runs), "--seed", "3"],
            capture_output=True,
            text=True,
            timeout=240,
            cwd=tmp_path,
        )
    assert hog.error is None, hog.error
    out, err = done.stdout, done.stderr
    assert done.returncode == 3, out + err
    assert hog.hogged == 2  # the run and its rerun
    assert "inconclusive (load_generator: " in err and "running it again" in err
    first = out.splitlines()[0]
    assert "busy-machine [hardened] seed=3: INCONCLUSIVE (load_generator: " in first
    assert _starved(first) and "close other work" in first
    assert "rerun of " in out
    assert "  latency: fail" in out  # the starved run would have failed: it is not a failure
    assert len(list((runs / "busy-machine").glob("*-hardened"))) == 2  # both journals kept


def test_pytest_a_starved_generator_fails_the_item_as_inconclusive(tmp_path: Path) -> None:
    _check_root()
    _write(tmp_path)
    runs = tmp_path / "runs"
    with HogEachWorkload(runs) as hog:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-ra", "-p", "no:cacheprovider",
             "experiments", "--harness-runs-dir", str(runs), "--harness-seed", "3"],
            capture_output=True, text=True, timeout=240, cwd=tmp_path,
            env={**os.environ, "COLUMNS": "400"},  # -ra lines whole
        )  # fmt: skip
    assert hog.error is None, hog.error
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    assert hog.hogged == 2, out
    # the item's reason is its last run's (load_generator, or machine if a CPU stalled
    # under the hog); the first run's, named by the rerun line, is the generator's
    assert "FAILED experiments/busy-machine.yaml::hardened - INCONCLUSIVE: " in out, out
    assert _starved(out), out
    assert "harness: experiments/busy-machine.yaml::hardened was run again: " in out
    assert "report:  " in out and "report.html" in out
