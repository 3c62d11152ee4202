"""A latency fault's evidence: a heal is the best of a few fresh round trips, not one
sample; an HTTP link is pinged on its target's own readiness path, not on a path that
queues behind the server."""

from __future__ import annotations

import socket
import threading
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


def test_an_http_link_is_pinged_on_its_targets_readiness_path() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    seen: list[bytes] = []

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            seen.append(conn.recv(4096))
            conn.sendall(b"HTTP/1.0 200 OK\r\n\r\n")

    thread = threading.Thread(target=answer, daemon=True)
    thread.start()
    listen = f"127.0.0.1:{server.getsockname()[1]}"
    system = SimpleNamespace(
        endpoints=SimpleNamespace(
            links={"client->gateway": SimpleNamespace(listen=listen, target="gateway")},
            components={},
        ),
        topology=SimpleNamespace(
            component=lambda name: SimpleNamespace(
                probe=SimpleNamespace(kind="http", target="/nginx-health")
            )
        ),
    )
    try:
        addr, protocol = network.link_address(system, "client->gateway")
        sample = wire.ping(addr, protocol, timeout=2.0)
    finally:
        thread.join(5)
        server.close()
        wire.remember_ping_path(listen, None)
    assert sample.complete
    assert seen[0].startswith(b"GET /nginx-health HTTP/1.0\r\n")
