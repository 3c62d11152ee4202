"""The capacity search and its cache, against a fake single-server queue of known capacity."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from harness import calibrate as calibrate_module
from harness.calibrate import (
    CalibrationError,
    Capacity,
    CapacitySearch,
    cached_capacity,
    calibrate,
    capacity_key,
)
from harness.client import Result
from harness.cpu import CpuShare
from harness.sut import Slo
from tests.support import operations, reference

FAST = CapacitySearch(
    start_rps=100, step_seconds=0.5, warmup=0.1, settle=0.0, max_steps=7, timeout=0.5, recover=2.0
)
SLO = 0.05
TWO_STEPS = CapacitySearch(start_rps=100, step_seconds=0.3, warmup=0.0, settle=0.0, max_steps=2)
QUIET = CpuShare(1.0, others=0.0, steal=0.0, load1=0.1)


@pytest.fixture(autouse=True)
def quiet_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake system's capacity does not depend on what else the machine runs."""
    monkeypatch.setattr(calibrate_module.CpuMeter, "stop", lambda self: QUIET)


TOY = operations({"values": {"k": {"int": [1, 9]}}, "operations": {"read": {"path": "/${k}"}}})


def sut(p99_ms: float = SLO * 1000, name: str = "fake"):
    return dataclasses.replace(
        reference(), operations=TOY, slo=Slo("read", p99_ms=p99_ms), capacity_from=name
    )


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
        self, target: int, op: str, args: Any, client_id: str, timeout: float
    ) -> Result:
        self.calls += 1
        now = time.monotonic()
        self.busy_until = max(now, self.busy_until) + self.service
        wait = self.busy_until - now
        if wait > timeout:
            await asyncio.sleep(timeout)
            return Result("fail", None, "timeout")
        await asyncio.sleep(wait)
        return Result("ok", 200)


def test_search_finds_the_capacity_of_a_queue(tmp_path: Path) -> None:
    fake = Queue(400.0)
    cap = calibrate(
        ["http://fake"], sut(), search=FAST, path=tmp_path / "c.json", client_factory=fake
    )
    assert 0.6 * 400 <= cap.rps <= 1.15 * 400, cap.steps
    assert cap.p99 <= SLO and cap.bound == "system"
    rates = [t.rate for t in cap.steps]
    assert rates[:3] == [100, 200, 400] or rates[:2] == [100, 200]  # doubling first
    passed = [t.rate for t in cap.steps if t.passed]
    failed = [t.rate for t in cap.steps if not t.passed]
    assert cap.rps == max(passed) and failed and min(failed) > cap.rps
    assert all(t.reason for t in cap.steps if not t.passed)
    assert cap.others is not None  # the CPU other processes took meanwhile


def test_cache_hit_skips_the_search_and_refresh_redoes_it(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    fake = Queue(400.0)
    kw: dict[str, Any] = dict(search=TWO_STEPS, path=path, client_factory=fake)
    first = calibrate(["http://fake"], sut(), **kw)
    calls = fake.calls
    again = calibrate(["http://fake"], sut(), **kw)
    assert again == first and fake.calls == calls
    assert cached_capacity(first.key, path=path) == first
    assert first.key == capacity_key(sut().key())
    refreshed = calibrate(["http://fake"], sut(), refresh=True, **kw)
    assert fake.calls > calls and refreshed.measured_at >= first.measured_at
    assert cached_capacity("another system", path=path) is None


def test_key_names_the_system_its_operations_slo_machine_and_harness() -> None:
    key = capacity_key(sut().key())
    assert key.startswith("reference {") and "host=" in key and "cpus=" in key
    assert "harness=" in key and "slo=read:p99<=50ms" in key and f"ops={TOY.digest}" in key
    assert capacity_key(sut(p99_ms=20).key()) != key


def test_each_backend_has_its_own_capacity() -> None:
    local = sut().key()
    assert local == sut().key("local")
    assert sut().key("containers") != local and " on containers" in sut().key("containers")


def test_a_busy_machine_is_measured_again_then_refused_not_cached(
    tmp_path: Path, monkeypatch
) -> None:
    busy = CpuShare(1.0, others=1.3, steal=0.0, load1=2.5)
    monkeypatch.setattr(calibrate_module.CpuMeter, "stop", lambda self: busy)
    path = tmp_path / "c.json"
    searched: list[int] = []
    real = calibrate_module._search

    async def counting(*args: Any) -> Capacity:
        searched.append(1)
        return await real(*args)

    monkeypatch.setattr(calibrate_module, "_search", counting)
    with pytest.raises(
        CalibrationError, match=r"too busy to measure C .other processes used 1\.30"
    ):
        calibrate(["http://fake"], sut(), search=TWO_STEPS, path=path, client_factory=Queue(400))
    assert len(searched) == 2 and not path.exists()


def test_corrupt_cache_is_a_miss(tmp_path: Path) -> None:
    path = tmp_path / "c.json"
    path.write_text("{not json")
    assert cached_capacity("k", path=path) is None
    cap = Capacity(100.0, 0.01, "2024-01-01T00:00:00+00:00", "k", ())
    path.write_text('{"k": {"rps": "x"}}')
    assert cached_capacity("k", path=path) is None
    assert Capacity.from_dict(cap.to_dict()) == cap


def test_no_passing_rate_is_an_error(tmp_path: Path) -> None:
    search = CapacitySearch(
        start_rps=40, min_rps=20, step_seconds=0.3, warmup=0.0, settle=0.0, timeout=0.5, recover=0.5
    )
    with pytest.raises(CalibrationError, match="no rate down to 20"):
        calibrate(
            ["http://fake"],
            sut(p99_ms=1),
            search=search,
            path=tmp_path / "c.json",
            client_factory=Queue(5.0),
        )
    assert not (tmp_path / "c.json").exists()


def test_search_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="precision"):
        CapacitySearch(precision=0)


def test_a_failure_at_the_boundary_is_run_again_and_a_pass_moves_c_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scripted steps: the system passes below 640 req/s, but 600 fails once (noise)."""
    script = {600.0: [False, True]}
    ran: list[float] = []

    async def trial(client: Any, targets: int, rate: float, **kw: Any) -> Any:
        ran.append(rate)
        left = script.get(rate)
        passed = left.pop(0) if left else rate < 640
        return calibrate_module.Trial(
            rate, 1.0, 10, 10 if passed else 0, 0 if passed else 10, 0,
            0.01 if passed else 1.0, 0.01, 0.0, passed, "" if passed else "p99",
        )  # fmt: skip

    monkeypatch.setattr(calibrate_module, "_trial", trial)

    async def recovered(*args: Any) -> bool:
        return True

    monkeypatch.setattr(calibrate_module, "_recovered", recovered)
    search = dataclasses.replace(FAST, max_steps=20, start_rps=200)
    cap = calibrate(
        ["http://fake"], sut(), search=search, path=tmp_path / "c.json", client_factory=Queue(1)
    )
    # 600 fails, 550 passes: 600 once more passes, so the search goes on above it; the
    # next failure at the boundary (650) fails again and ends it
    assert ran == [200, 400, 800, 600, 500, 550, 600, 700, 650, 650], ran
    assert cap.rps == 600
    without = dataclasses.replace(search, confirm=False)
    script[600.0] = [False, True]
    ran.clear()
    cap = calibrate(
        ["http://fake"], sut(), search=without, path=tmp_path / "d.json", client_factory=Queue(1)
    )
    assert ran == [200, 400, 800, 600, 500, 550] and cap.rps == 550
