"""The power-loss fault on real components: directories a topology puts on LazyFS are
mounted before their component starts and gone after teardown (also after the harness
was killed outright); the hardened profile loses no acknowledged scan to a power loss
of an app worker and of PostgreSQL, and the same spool without fsync loses some."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from harness.backends.local import LocalBackend
from harness.experiment import load_experiment
from harness.journal import read
from harness.lazyfs import lazyfs_mounts
from harness.lazyfs.mounts import available
from harness.run import RunOptions, RunResult, run
from harness.sessions import group_members, recorded_groups
from harness.topology import load_topology

ROOT = Path(__file__).resolve().parents[2]
MINI = ROOT / "tests" / "fixtures" / "mini.yaml"
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(available() is not None, reason=f"LazyFS cannot mount: {available()}"),
]


def mini_on_lazyfs(tmp_path: Path) -> Path:
    """mini.yaml with the database's data directory on LazyFS."""
    text = MINI.read_text().replace(
        "    probe: {postgres: SELECT 1}\n", "    probe: {postgres: SELECT 1}\n    lazyfs: [data]\n"
    )
    path = tmp_path / "mini-lazyfs.yaml"
    path.write_text(text)
    return path


def mounts_under(path: Path) -> list[Path]:
    root = path.resolve()
    return [m for m in lazyfs_mounts() if m == root or root in m.parents]


def test_a_declared_directory_is_on_lazyfs_while_the_system_runs(tmp_path: Path) -> None:
    topo = load_topology(mini_on_lazyfs(tmp_path))
    base = tmp_path / "base"
    with LocalBackend(base=base).start(topo) as system:
        data = system.data_dir("db")
        assert mounts_under(base) == [data.resolve()]
        ep = system.endpoints.components["db"]
        with psycopg.connect(f"host={ep.host} port={ep.port} user=postgres", autocommit=True) as c:
            c.execute("CREATE TABLE t (x int)")
            c.execute("INSERT INTO t VALUES (1)")
        (client,) = system.lazyfs("db").values()
        assert client.stats().fsyncs > 0  # PostgreSQL's WAL goes through the mount
        assert system.lazyfs("cache") == {}
    assert mounts_under(base) == []


def test_a_killed_harness_leaves_no_mount_behind(tmp_path: Path) -> None:
    topology = mini_on_lazyfs(tmp_path)
    base = tmp_path / "base"
    env = {**os.environ, "HARNESS_BASE_DIR": str(base)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness.cli", "up", str(topology), "--no-seed"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        proc.stdout.readline()  # up and ready
        (session,) = (base / "sessions").iterdir()
        groups = recorded_groups(session)
        assert mounts_under(base)
        proc.send_signal(signal.SIGKILL)  # no teardown at all
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert mounts_under(base), "the crash should have left its mount behind"
    with LocalBackend(base=base).start(load_topology(MINI, profile="single")):
        assert not session.exists()
        deadline = time.monotonic() + 5
        while group_members(groups) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert group_members(groups) == []
        assert mounts_under(session) == []
    assert mounts_under(base) == []


def run_file(path: Path, tmp_path: Path) -> tuple[RunResult, Path]:
    result = run(load_experiment(path), RunOptions(profile="hardened", runs_dir=tmp_path))
    return result, result.run_dir


def test_hardened_loses_no_acknowledged_scan_to_a_power_loss(tmp_path: Path) -> None:
    result, run_dir = run_file(ROOT / "experiments" / "power-loss.yaml", tmp_path)
    verdicts = {v.name: v for v in result.verdicts}
    lost = verdicts["no_lost_scans"]
    assert lost.valid is True, lost
    assert lost.figures["acknowledged"] > 100 and lost.figures["lost"] == 0
    assert verdicts["faults_took_effect"].valid is True, verdicts["faults_took_effect"]
    faults = [f for f in read(run_dir).faults if f.kind == "lose_unsynced"]
    assert len(faults) == 2 and all(f.inject and f.inject.took_effect for f in faults)


def test_the_spool_without_fsync_loses_acknowledged_scans(tmp_path: Path) -> None:
    result, run_dir = run_file(ROOT / "experiments" / "power-loss-nofsync.yaml", tmp_path)
    lost = next(v for v in result.verdicts if v.name == "no_lost_scans")
    assert lost.valid is False and lost.figures["lost"] > 0, lost
    (fault,) = [f for f in read(run_dir).faults if f.kind == "lose_unsynced"]
    assert fault.inject is not None and fault.inject.figures["discarded_bytes"] > 0
    assert result.outcome == "met", result.why
