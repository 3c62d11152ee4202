"""A latency heal's evidence: the best of a few fresh round trips, not one sample."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from harness.faults import network, wire
from harness.faults.network import HEAL_SAMPLES, Latency


def fake_system() -> Any:
    link = SimpleNamespace(listen="127.0.0.1:1", target="db")
    component = SimpleNamespace(probe=SimpleNamespace(kind="postgres"))
    return SimpleNamespace(
        endpoints=SimpleNamespace(links={"app->db": link}, components={}),
        topology=SimpleNamespace(component=lambda name: component),
    )


def with_round_trips(monkeypatch: pytest.MonkeyPatch, ms: list[float]) -> list[float]:
    left = list(ms)
    monkeypatch.setattr(network.time, "sleep", lambda s: None)
    monkeypatch.setattr(
        network.wire, "ping", lambda addr, protocol, timeout: wire.Sample(True, left.pop(0) / 1000)
    )
    return left


def test_one_slow_sample_is_not_a_toxic_left_behind(monkeypatch: pytest.MonkeyPatch) -> None:
    left = with_round_trips(monkeypatch, [22.0, 18.0, 2.0, 2.0, 2.0])
    check = Latency(link="app->db", latency=30)._healed(fake_system(), "app->db")
    assert check.ok and check.claim == "round trip back under 15 ms"
    assert check.figures["samples"] == 3 and check.figures["round_trip_ms"] == 2.0
    assert len(left) == 2  # stopped at the first fast answer


def test_a_link_still_slow_every_time_did_not_heal(monkeypatch: pytest.MonkeyPatch) -> None:
    with_round_trips(monkeypatch, [31.0] * HEAL_SAMPLES)
    check = Latency(link="app->db", latency=30)._healed(fake_system(), "app->db")
    assert not check.ok
    assert check.figures["samples"] == HEAL_SAMPLES and check.figures["round_trip_ms"] == 31.0
