"""The capacity search and its cache, against a fake single-server queue of known capacity."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from harness.calibrate import (
    CalibrationError,
    Capacity,
    Search,
    cached_capacity,
    calibrate,
    capacity_key,
    system_key,
)
from harness.client import Result
from harness.topology import load_topology
from harness.workload import OpArgs

FAST = Search(
    start_rps=100, step_seconds=0.5, warmup=0.1, settle=0.0, max_steps=7, timeout=0.5, recover=2.0
)
SLO = 0.05
TWO_STEPS = Search(start_rps=100, step_seconds=0.3, warmup=0.0, settle=0.0, max_steps=2)


class Queue:
    """One FIFO server of `capacity` req/s: past it, waiting time grows without bound."""

    def __init__(self, capacity: float) -> None:
        self.service = 1.0 / capacity
        self.busy_until = 0.0
        self.calls = 0

    def __call__(self, urls: Sequence[str]) -> Queue:
        return self

    async def __aenter__(self) -> Queue:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def invoke(
        self, target: int, op: str, args: OpArgs, client_id: str, timeout: float
    ) -> Result:
        self.calls += 1
        now = time.monotonic()
        self.busy_until = max(now, self.busy_until) + self.service
        wait = self.busy_until - now
        if wait > timeout:
            await asyncio.sleep(timeout)
            return Result("info" if op in ("scan", "ingest") else "fail", None, "timeout")
        await asyncio.sleep(wait)
        return Result("ok", 200)


def test_search_finds_the_capacity_of_a_queue(tmp_path: Path) -> None:
    fake = Queue(400.0)
    cap = calibrate(
        ["http://fake"],
        profile_key="fake queue",
        slo_p99=SLO,
        search=FAST,
        path=tmp_path / "c.json",
        client_factory=fake,
    )
    assert 0.6 * 400 <= cap.rps <= 1.15 * 400, cap.steps
    assert cap.p99 <= SLO and cap.bound == "system"
    rates = [t.rate for t in cap.steps]
    assert rates[:3] == [100, 200, 400] or rates[:2] == [100, 200]  # doubling first
    passed = [t.rate for t in cap.steps if t.passed]
    failed = [t.rate for t in cap.steps if not t.passed]
    assert cap.rps == max(passed) and failed and min(failed) > cap.rps
    assert all(t.reason for t in cap.steps if not t.passed)


def test_cache_hit_skips_the_search_and_refresh_redoes_it(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    fake = Queue(400.0)
    kw = dict(profile_key="fake", slo_p99=SLO, search=TWO_STEPS, path=path, client_factory=fake)
    first = calibrate(["http://fake"], **kw)
    calls = fake.calls
    again = calibrate(["http://fake"], **kw)
    assert again == first and fake.calls == calls
    assert cached_capacity(first.key, path=path) == first
    assert first.key == capacity_key("fake", slo_p99=SLO)
    refreshed = calibrate(["http://fake"], refresh=True, **kw)
    assert fake.calls > calls and refreshed.measured_at >= first.measured_at
    assert cached_capacity("another system", path=path) is None


def test_key_names_the_machine_harness_and_slo() -> None:
    key = capacity_key("reference naive", slo_p99=0.3)
    assert key.startswith("reference naive | host=") and "cpus=" in key
    assert "harness=" in key and "slo_p99=0.3" in key
    assert capacity_key("reference naive", slo_p99=0.2) != key


def test_each_backend_has_its_own_capacity() -> None:
    topo = load_topology(profile="naive")
    local = system_key(topo)
    assert local == system_key(topo, "local") and local.startswith("reference {")
    assert system_key(topo, "containers") == local + " on containers"


def test_corrupt_cache_is_a_miss(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text("{not json")
    assert cached_capacity("k", path=path) is None
    cap = Capacity(100.0, 0.01, "2024-01-01T00:00:00+00:00", "k", ())
    path.write_text('{"k": {"rps": "x"}}')
    assert cached_capacity("k", path=path) is None
    assert Capacity.from_dict(cap.to_dict()) == cap


def test_no_passing_rate_is_an_error(tmp_path: Path) -> None:
    search = Search(
        start_rps=40, min_rps=20, step_seconds=0.3, warmup=0.0, settle=0.0, timeout=0.5, recover=0.5
    )
    with pytest.raises(CalibrationError, match="no rate down to 20"):
        calibrate(
            ["http://fake"],
            profile_key="slow",
            slo_p99=0.001,
            search=search,
            path=tmp_path / "c.json",
            client_factory=Queue(5.0),
        )
    assert not (tmp_path / "c.json").exists()


def test_urls_need_a_profile_key() -> None:
    with pytest.raises(ValueError, match="profile_key"):
        calibrate(["http://fake"], client_factory=Queue(1.0))
    with pytest.raises(ValueError, match="precision"):
        Search(precision=0)
