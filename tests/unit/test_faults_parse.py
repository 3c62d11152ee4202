"""Parsing ``faults:`` entries: every kind, durations, group targets, and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.faults import (
    Bandwidth,
    Crash,
    DbLoss,
    Kill,
    Latency,
    LimitData,
    LinkDown,
    Pause,
    ResetPeer,
    Restart,
    Slicer,
    SlowClose,
    Timeout,
    parse_fault,
    parse_schedule,
    resolve_components,
    resolve_links,
)
from harness.topology import load_topology
from harness.validate import Node
from harness.values import parse_duration

MINI = Path(__file__).resolve().parents[1] / "fixtures" / "mini.yaml"


@pytest.fixture(scope="module")
def reference():
    return load_topology(profile="hardened")


def entry(value, index: int = 0) -> Node:
    return Node(value, "experiments/x.yaml", f"faults[{index}]")


def test_every_kind_parses(reference) -> None:
    cases = [
        (
            {"latency": {"link": "app-1->postgres", "ms": 500, "jitter_ms": 100}},
            Latency(link="app-1->postgres", latency=500, jitter=100),
        ),
        (
            {"bandwidth": {"link": "client->gateway", "kb_per_s": 64, "stream": "both"}},
            Bandwidth(link="client->gateway", rate=64, stream="both"),
        ),
        (
            {"slow_close": {"link": "app->redis", "delay_ms": 100}},
            SlowClose(link="app->redis", delay=100),
        ),
        (
            {"timeout": {"link": "app->redis", "ms": 0, "toxicity": 0.5}},
            Timeout(link="app->redis", timeout=0, toxicity=0.5),
        ),
        (
            {"reset_peer": {"link": "app->redis", "after_ms": 10, "stream": "upstream"}},
            ResetPeer(link="app->redis", timeout=10, stream="upstream"),
        ),
        (
            {"slicer": {"link": "app->postgres", "average_bytes": 10, "delay_us": 50}},
            Slicer(link="app->postgres", average_size=10, delay=50),
        ),
        (
            {"limit_data": {"link": "app->postgres", "bytes": 1000}},
            LimitData(link="app->postgres", bytes=1000),
        ),
        ({"down": {"link": "client->gateway-a"}}, LinkDown(link="client->gateway-a")),
        (
            {"kill": {"component": "gateway-a", "signal": "SIGTERM"}},
            Kill(component="gateway-a", signal="SIGTERM"),
        ),
        ({"kill": "gateway-a"}, Kill(component="gateway-a", signal="SIGKILL")),
        ({"kill": {"component": "app", "signal": 9}}, Kill(component="app", signal="SIGKILL")),
        (
            {"kill": {"component": "redis", "signal": "hup"}},
            Kill(component="redis", signal="SIGHUP"),
        ),
        ({"crash": {"component": "gateway-b"}}, Crash(component="gateway-b")),
        ({"pause": {"component": "postgres"}}, Pause(component="postgres")),
        ({"restart": "redis"}, Restart(component="redis")),
        ({"db_loss": {"component": "postgres"}}, DbLoss(component="postgres")),
    ]
    for i, (body, fault) in enumerate(cases):
        scheduled = parse_fault(entry({"at": "1s", **body}, i), reference)
        assert scheduled.fault == fault, body
        assert scheduled.at == 1.0
        assert scheduled.source == f"experiments/x.yaml: faults[{i}]"


def test_durations_and_defaults(reference) -> None:
    s = parse_fault(entry({"at": "500ms", "for": "1.5s", "pause": {"component": "redis"}}))
    assert (s.at, s.duration) == (0.5, 1.5)
    assert parse_fault(entry({"at": 2, "kill": "redis"})).duration is None  # until the end
    assert parse_fault(entry({"at": 2, "db_loss": "postgres"}), reference).duration == 0.0
    assert parse_duration(Node("2m", "f")) == 120.0
    assert parse_duration(Node(0.25, "f")) == 0.25


def test_schedule_from_yaml_list(reference) -> None:
    node = Node(
        [
            {
                "at": "10s",
                "for": "5s",
                "latency": {
                    "link": "app->postgres",
                    "ms": 500,
                    "jitter_ms": 100,
                    "stream": "downstream",
                },
            },
            {"at": "18s", "kill": {"component": "gateway-a", "signal": "SIGKILL"}},
            {"at": "5s", "for": "3s", "pause": {"component": "postgres"}},
            {"at": "10s", "db_loss": {"component": "postgres"}},
            {"at": "2s", "for": "4s", "down": {"link": "client->gateway-a"}},
        ],
        "experiments/x.yaml",
        "faults",
    )
    schedule = parse_schedule(node, reference)
    assert [s.fault.kind for s in schedule] == ["latency", "kill", "pause", "db_loss", "down"]
    assert parse_schedule(Node(None, "f", "faults")) == ()


def expect_error(value, topology=None, *, key: str, expected: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse_fault(entry(value, 1), topology)
    err = info.value
    assert err.source == "experiments/x.yaml"
    assert err.key == key, str(err)
    assert expected in err.expected, str(err)
    assert str(err).startswith(f"experiments/x.yaml: {key}: got ")
    return err


def test_errors_name_file_key_value_and_expectation(reference) -> None:
    expect_error(
        {"at": "1s", "latency": {"link": "app-1->postgres", "ms": "fast"}},
        key="faults[1].latency.ms",
        expected="an integer",
    )
    expect_error(
        {"at": "1s", "latency": {"link": "app-1->postgres"}},
        key="faults[1].latency.ms",
        expected="required",
    )
    expect_error(
        {"at": "1s", "latency": {"link": "app-1->postgres", "ms": 5, "jiter_ms": 1}},
        key="faults[1].latency.jiter_ms",
        expected="one of",
    )
    expect_error(
        {"at": "1s", "latency": {"link": "a->b", "ms": 5, "stream": "sideways"}},
        key="faults[1].latency.stream",
        expected="'upstream'",
    )
    expect_error(
        {"at": "1s", "latency": {"link": "a->b", "ms": 5, "toxicity": 2}},
        key="faults[1].latency.toxicity",
        expected="in [0, 1]",
    )
    expect_error({"at": "soon", "kill": "redis"}, key="faults[1].at", expected="a duration")
    expect_error({"at": "1s", "for": -1, "kill": "redis"}, key="faults[1].for", expected="(>= 0)")
    expect_error({"kill": "redis"}, key="faults[1].at", expected="required")
    expect_error({"at": 1, "explode": {}}, key="faults[1].explode", expected="one of")
    expect_error({"at": 1}, key="faults[1]", expected="exactly one fault kind")
    expect_error(
        {"at": 1, "kill": "redis", "pause": "redis"},
        key="faults[1]",
        expected="exactly one fault kind",
    )
    expect_error(
        {"at": 1, "kill": {"component": "redis", "signal": "SIGNOPE"}},
        key="faults[1].kill.signal",
        expected="a signal name",
    )
    expect_error({"at": 1, "latency": ["app"]}, key="faults[1].latency", expected="a mapping")


def test_targets_are_checked_against_the_topology(reference) -> None:
    err = expect_error(
        {"at": 1, "latency": {"link": "app-9->postgres", "ms": 5}},
        reference,
        key="faults[1].latency.link",
        expected="a link",
    )
    assert "app-1->postgres" in str(err)  # the hint lists the real links
    expect_error(
        {"at": 1, "down": {"link": "postgres"}},
        reference,
        key="faults[1].down.link",
        expected="a link",
    )
    expect_error(
        {"at": 1, "pause": {"component": "mysql"}},
        reference,
        key="faults[1].pause.component",
        expected="a component or group",
    )
    expect_error(
        {"at": 1, "crash": {"component": "postgres"}},
        reference,
        key="faults[1].crash.component",
        expected="a gateway",
    )
    expect_error(
        {"at": 1, "db_loss": {"component": "redis"}},
        reference,
        key="faults[1].db_loss.component",
        expected="PostgreSQL",
    )
    # without a topology, names are not checked
    assert parse_fault(entry({"at": 1, "down": {"link": "x->y"}})).fault == LinkDown(link="x->y")


def test_group_names_expand_to_every_member(reference) -> None:
    mini = load_topology(MINI)
    assert resolve_links(mini, "web->db") == ("web-1->db", "web-2->db")
    assert resolve_links(mini, "client->web-2") == ("client->web-2",)
    assert resolve_links(reference, "gateway-a->app") == ("gateway-a->app-1", "gateway-a->app-2")
    assert resolve_links(reference, "client->gateway") == ("client->gateway-a", "client->gateway-b")
    assert resolve_components(reference, "app") == ("app-1", "app-2")
    assert resolve_components(reference, "postgres") == ("postgres",)
