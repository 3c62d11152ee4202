"""Stopping a run from outside: a SIGTERM at any moment of the workload ends `harness run`
at once, with everything it started gone; a SIGKILL leaves no stall watcher behind, and
the next start reaps everything else (real components on the mini topology)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.backends.local import LocalBackend
from harness.sessions import descendants
from harness.topology import load_topology

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
MINI = ROOT / "tests" / "fixtures" / "mini.yaml"
REPEATS = 20  # each repeat starts the system afresh (~3 s); the moments vary within the workload
STOP_WITHIN = 5.0  # seconds from the signal to the exit, teardown included (seen: 0.17-0.27 s)

EXPERIMENT = """\
name: stop-signals
description: a steady workload on the mini topology, stopped from outside
system: {{topology: {topology}, profile: single}}
workload:
  duration: 60s
  rate:
    - {{at: 0s, rps: 150, phase: steady}}
  clients:
    good: 1.0
invariants:
  - availability: {{op: index, min: 0.1}}
steady_state: false
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is dead
    except OSError:
        return False


def _left(pids: list[int], within: float) -> list[int]:
    deadline = time.monotonic() + within
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.02)
    return [p for p in pids if _alive(p)]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _cmdlines(pids: list[int]) -> list[str]:
    return [_cmdline(p) for p in pids]


@pytest.fixture
def experiment(tmp_path: Path) -> Path:
    path = tmp_path / "stop.yaml"
    path.write_text(EXPERIMENT.format(topology=MINI))
    return path


def _start(tmp_path: Path, experiment: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "HARNESS_BASE_DIR": str(tmp_path / "base")}
    runs, path = str(tmp_path / "runs"), str(experiment)
    return subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "run", "--capacity", "100", "--runs-dir", runs, path],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _until_workload(proc: subprocess.Popen[str]) -> Iterator[str]:
    assert proc.stderr is not None
    for line in proc.stderr:
        yield line
        if line.startswith("# workload"):
            return
    raise AssertionError("the run ended before its workload")


def _ensure_stopped(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("repeat", range(REPEATS))
def test_one_sigterm_during_the_workload_stops_the_run(
    tmp_path: Path, experiment: Path, repeat: int
) -> None:
    moment = random.Random(repeat).uniform(0.0, 3.0)
    proc = _start(tmp_path, experiment)
    try:
        seen = list(_until_workload(proc))
        time.sleep(moment)
        started = descendants(proc.pid)
        assert started, "the run started nothing"
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(timeout=STOP_WITHIN)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"one SIGTERM {moment:.2f} s into the workload did not stop the run"
            ) from None
        took = time.monotonic() - signalled
        rest = proc.stderr.read() if proc.stderr else ""
        assert code == 130, "".join(seen) + rest
        assert "interrupted" in rest, rest
        left = _left(started, 2.0)
        assert not left, f"left running after {took:.1f} s: {_cmdlines(left)}"
    finally:
        _ensure_stopped(proc)


def test_after_a_sigkill_the_watchers_are_gone_and_the_next_start_reaps_the_rest(
    tmp_path: Path, experiment: Path
) -> None:
    proc = _start(tmp_path, experiment)
    try:
        list(_until_workload(proc))
        time.sleep(1.0)
        started = descendants(proc.pid)
        watchers = [p for p in started if "stall_watcher" in _cmdline(p)]
        assert watchers, _cmdlines(started)
        proc.kill()  # no teardown of any kind
        proc.wait(timeout=5)
    finally:
        _ensure_stopped(proc)
    outlived = _left(watchers, 3.0)
    for pid in outlived:  # a failing check leaves nothing running either
        os.kill(pid, signal.SIGKILL)
    assert not outlived, "a stall watcher outlived the harness"
    assert [p for p in started if _alive(p)], "the components should wait for the next run"
    with LocalBackend(base=tmp_path / "base").start(load_topology(MINI, profile="single")):
        left = _left(started, 3.0)
        assert not left, f"not reaped by the next start: {_cmdlines(left)}"
