"""Every fault kind against real PostgreSQL, Redis, HTTP servers and Toxiproxy (the mini
topology): the fault takes effect with evidence, heals with evidence, and leaves the
system clean; plus a real schedule with overlapping faults and the final phase."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.backends.local import LocalBackend, LocalSystem
from harness.faults import (
    Bandwidth,
    Crash,
    Fault,
    Kill,
    Latency,
    LimitData,
    LinkDown,
    Pause,
    ResetPeer,
    Restart,
    ScheduledFault,
    Slicer,
    SlowClose,
    Timeout,
    parse_schedule,
    run_schedule,
    wire,
)
from harness.topology import load_topology
from harness.validate import Node

pytestmark = [pytest.mark.integration, pytest.mark.chaos]
MINI = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "mini.yaml"


@pytest.fixture(scope="module")
def system() -> Iterator[LocalSystem]:
    with LocalBackend().start(load_topology(MINI), seed=1) as running:
        yield running


def assert_clean(system: LocalSystem) -> None:
    """No toxic left, every proxy enabled, every component running and answering."""
    for name, proxy in system.toxiproxy.proxies().items():
        assert proxy["enabled"], name
        assert proxy["toxics"] == [], name
    for comp in system.topology.components:
        assert system.is_running(comp.name), comp.name
    for name, link in system.endpoints.links.items():
        protocol = system.topology.component(link.target).probe.kind
        assert wire.ping(link.listen, protocol).complete, name


FAULTS: list[Fault] = [
    Latency(link="web-1->db", latency=100, jitter=20),
    Latency(link="web->cache", latency=30, stream="both"),  # a group: both web-N->cache
    Latency(link="client->web-1", latency=50, stream="upstream", toxicity=0.5),
    Bandwidth(link="web-1->db", rate=200),
    Bandwidth(link="web-2->cache", rate=100, stream="upstream"),
    Bandwidth(link="client->web-2", rate=2),
    SlowClose(link="web-1->cache", delay=150),
    SlowClose(link="web-1->db", delay=100, stream="upstream"),
    Timeout(link="web-1->db", timeout=0),
    Timeout(link="client->web-1", timeout=100),
    ResetPeer(link="web-2->cache"),
    ResetPeer(link="web-1->db", timeout=50, stream="upstream"),
    Slicer(link="web-1->db", average_size=64, size_variation=16, delay=100),
    Slicer(link="client->web-2", average_size=10, delay=1000, stream="upstream"),
    LimitData(link="web-2->db", bytes=2000),
    LimitData(link="web-1->cache", bytes=1000, stream="upstream"),
    LinkDown(link="client->web"),
    LinkDown(link="web-2->db"),
    Kill(component="cache"),
    Kill(component="web-1", signal="SIGTERM"),
    Kill(component="db", signal="SIGKILL"),
    Kill(component="db", signal="SIGHUP"),  # not terminating: delivered, still runs
    Pause(component="db"),
    Pause(component="web"),
    Restart(component="cache"),
    Crash(component="web-2"),
]


@pytest.mark.parametrize("fault", FAULTS, ids=[f.describe() for f in FAULTS])
def test_fault_takes_effect_and_heals(system: LocalSystem, fault: Fault) -> None:
    injected = fault.inject(system)
    try:
        assert injected.took_effect, injected.summary()
        assert injected.started <= injected.actuated <= (injected.observed or 0)
    finally:
        healed = fault.heal(system)
    assert healed.took_effect, healed.summary()
    json.dumps(injected.to_json(injected.started))  # journal-ready
    assert_clean(system)


def test_latency_evidence_measures_the_round_trip(system: LocalSystem) -> None:
    fault = Latency(link="web-1->cache", latency=200)
    injected = fault.inject(system)
    try:
        (check,) = injected.checks
        assert 200 <= check.figures["round_trip_ms"] < 400
        assert check.figures["replayable"] is True
    finally:
        fault.heal(system)
    jittery = Latency(link="web-1->cache", latency=20, jitter=5).inject(system)
    Latency(link="web-1->cache", latency=20, jitter=5).heal(system)
    assert jittery.checks[0].figures["replayable"] is False  # -seed has no effect (v2.12.0)


def test_a_toxic_that_cannot_act_is_reported_not_hidden(system: LocalSystem) -> None:
    """A cap far above what the probe can notice must not pass as proof."""
    fault = Bandwidth(link="client->web-1", rate=10_000_000)
    injected = fault.inject(system)
    fault.heal(system)
    assert not injected.took_effect
    assert injected.checks[0].figures["observable"] is False


def test_schedule_with_overlapping_faults_heals_everything(system: LocalSystem) -> None:
    node = Node(
        [
            {"at": "100ms", "for": "600ms", "latency": {"link": "web->db", "ms": 80}},
            {"at": "200ms", "for": "200ms", "down": {"link": "client->web-1"}},
            {"at": "300ms", "pause": {"component": "cache"}},  # until the final phase
            {"at": "60s", "kill": {"component": "web-2"}},  # never reached
        ],
        "test.yaml",
        "faults",
    )
    schedule = parse_schedule(node, system.topology)
    t0 = time.monotonic()
    with run_schedule(system, schedule, t0) as nemesis:
        time.sleep(0.25)
        assert not wire.connect(system.endpoints.links["client->web-1"].listen).complete
        time.sleep(0.7)
    report = nemesis.report
    assert report.ok, "\n".join(e.summary() for e in report.ineffective())
    assert [r.took_effect for r in report.records] == [True, True, True, False]
    assert report.records[3].inject is None
    assert report.records[2].healed_in_final_phase
    for record in report.records[:3]:
        lateness = record.lateness(t0)
        assert lateness is not None and lateness < 0.5
        assert record.end(t0) is not None
    json.dumps(report.to_json())
    assert_clean(system)


def test_final_phase_heals_when_the_run_fails(system: LocalSystem) -> None:
    schedule = [
        ScheduledFault(0.0, LinkDown(link="web-1->cache")),
        ScheduledFault(0.0, Timeout(link="web-2->db", timeout=0)),
    ]
    with pytest.raises(RuntimeError), run_schedule(system, schedule) as nemesis:
        deadline = time.monotonic() + 5
        while not all(s.inject for s in nemesis.slots) and time.monotonic() < deadline:
            time.sleep(0.01)
        raise RuntimeError("workload crashed")
    assert nemesis.report.ok
    assert_clean(system)
