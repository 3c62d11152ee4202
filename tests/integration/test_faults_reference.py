"""Faults on the reference system itself (hardened: two nginx gateways, app workers,
PostgreSQL with its standby, Redis): group targets, a gateway crash, and heal."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from harness.backends.local import LocalBackend, LocalSystem
from harness.faults import (
    Crash,
    Fault,
    Kill,
    Latency,
    LinkDown,
    Pause,
    Restart,
    Timeout,
)
from harness.topology import load_topology

pytestmark = [pytest.mark.integration, pytest.mark.chaos]


@pytest.fixture(scope="module")
def system() -> Iterator[LocalSystem]:
    with LocalBackend().start(load_topology(profile="hardened"), seed=1) as running:
        yield running


FAULTS: list[Fault] = [
    Latency(link="app->postgres", latency=100, jitter=10),
    Latency(link="gateway-a->app", latency=50),
    Timeout(link="app->redis", timeout=0),
    LinkDown(link="client->gateway-a"),
    Crash(component="gateway-a"),
    Kill(component="app-1"),
    Kill(component="gateway", signal="SIGTERM"),
    Pause(component="postgres"),
    Pause(component="redis"),
    Restart(component="postgres-replica-1"),
]


@pytest.mark.parametrize("fault", FAULTS, ids=[f.describe() for f in FAULTS])
def test_fault_on_the_reference_system(system: LocalSystem, fault: Fault) -> None:
    injected = fault.inject(system)
    try:
        assert injected.took_effect, injected.summary()
    finally:
        healed = fault.heal(system)
    assert healed.took_effect, healed.summary()
    for comp in system.topology.components:
        assert system.is_running(comp.name), comp.name
    for name, proxy in system.toxiproxy.proxies().items():
        assert proxy["enabled"] and proxy["toxics"] == [], name
