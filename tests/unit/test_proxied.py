"""Toxiproxy only where a fault may act: which links an experiment's faults and search
space need proxied, the option that keeps every link proxied, and what a started system
does with the selection (direct links get the target's own address)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml

from harness.backends import Endpoints, LinkEndpoint
from harness.errors import ConfigError, HarnessError
from harness.experiment import load_experiment
from harness.faults import (
    Crash,
    DbLoss,
    Kill,
    Latency,
    LinkDown,
    LoseUnsynced,
    Pause,
    Restart,
    ScheduledFault,
)
from harness.run.capacity import _same_links
from harness.run.proxied import check_proxied, fault_links, proxied_links, space_links
from harness.search.space import SearchSpace
from harness.sut import load_sut
from harness.topology import RenderContext, load_topology, render

HARDENED = load_topology(profile="hardened")
NAIVE = load_topology(profile="naive")
ALL = frozenset(link.name for link in HARDENED.links)


def experiment(tmp_path: Path, faults: list[Any], **more: Any) -> Any:
    data = {
        "name": "t",
        "description": "links",
        "workload": {"duration": "20s", "rate": [{"at": "0s", "rps": 20}]},
        "faults": faults,
        "invariants": [{"availability": {"min": 0.5}}],
        **more,
    }
    data.setdefault("system", {"proxy": "faults"})
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_experiment(path)


def test_process_faults_need_no_proxy() -> None:
    for fault in (Kill(component="app-1"), Crash(component="gateway-a"), Pause(component="redis")):
        assert fault_links(fault, HARDENED) == frozenset()
    assert fault_links(LoseUnsynced(component="app-1"), HARDENED) == frozenset()
    assert fault_links(Restart(component="postgres"), HARDENED) == frozenset()


def test_a_link_fault_needs_the_links_it_names_and_a_group_names_every_member() -> None:
    assert fault_links(Latency(link="app->postgres", latency=5), HARDENED) == {
        "app-1->postgres",
        "app-2->postgres",
    }
    assert fault_links(LinkDown(link="app-2->redis"), HARDENED) == {"app-2->redis"}
    assert fault_links(Latency(link="client->gateway", latency=5), NAIVE) == {"client->gateway-a"}
    # a target another profile's topology lacks names nothing here
    assert fault_links(LinkDown(link="client->gateway-b"), NAIVE) == frozenset()


def test_a_database_loss_needs_every_link_to_the_database() -> None:
    assert fault_links(DbLoss(component="postgres"), HARDENED) == {
        "app-1->postgres",
        "app-2->postgres",
    }


def test_a_fault_of_an_unknown_kind_keeps_every_link() -> None:
    class Mine:
        kind = "mine"

    assert fault_links(Mine(), HARDENED) is None


def test_an_experiment_proxies_its_faults_links_only(tmp_path: Path) -> None:
    exp = experiment(
        tmp_path,
        [
            {"at": "2s", "for": "2s", "latency": {"link": "app-1->postgres", "ms": 50}},
            {"at": "3s", "kill": {"component": "app-2"}},
        ],
    )
    assert proxied_links(exp, HARDENED) == {"app-1->postgres"}
    assert proxied_links(exp, HARDENED, proxy_all=True) is None
    # the asymmetric case: one direction of one instance, its peers direct
    assert "app-2->postgres" not in proxied_links(exp, HARDENED)  # type: ignore[operator]


def test_no_fault_no_proxy_and_the_file_can_keep_every_link(tmp_path: Path) -> None:
    assert proxied_links(experiment(tmp_path, []), HARDENED) == frozenset()
    exp = experiment(tmp_path, [], system={"proxy": "all"})
    assert exp.system.proxy == "all"
    assert proxied_links(exp, HARDENED) is None


def test_proxy_takes_faults_or_all(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        experiment(tmp_path, [], system={"proxy": "some"})
    assert "system.proxy" in str(err.value) and "faults" in str(err.value)


def test_a_search_space_proxies_every_link_it_may_draw(tmp_path: Path) -> None:
    space = SearchSpace(
        kinds=("latency", "pause"), targets=("app-1->redis", "postgres"), window=(1, 5)
    )
    assert space_links(space, HARDENED) == {"app-1->redis"}
    everything = SearchSpace(kinds=("down", "db_loss"), window=(1, 5))
    assert space_links(everything, HARDENED) == ALL
    only_processes = SearchSpace(kinds=("kill", "db_loss"), window=(1, 5))
    assert space_links(only_processes, HARDENED) == {"app-1->postgres", "app-2->postgres"}
    exp = experiment(tmp_path, [])
    spec = SimpleNamespace(space=space)
    assert proxied_links(dataclasses.replace(exp, search=spec), HARDENED) == {"app-1->redis"}


def test_the_catalogue_proxies_every_link_and_only_where_its_faults_act_when_asked() -> None:
    root = Path(__file__).resolve().parents[2] / "experiments"
    wanted = {
        "app-crash": set(),
        "morning-surge": set(),
        "slow-db": {"app-1->postgres", "app-2->postgres"},
        "congestion": {"client->gateway-a", "client->gateway-b"}
        | {"app-1->postgres", "app-2->postgres"},
        "xian-story": {"app-1->postgres", "app-2->postgres"},
    }
    for name, links in wanted.items():
        exp = load_experiment(root / f"{name}.yaml")
        assert exp.system.proxy == "all" and proxied_links(exp, HARDENED) is None, name
        exp = dataclasses.replace(exp, system=dataclasses.replace(exp.system, proxy="faults"))
        assert proxied_links(exp, HARDENED) == links, name


def _endpoints(proxied: set[str]) -> Endpoints:
    links = {
        link.name: LinkEndpoint(
            link.name,
            link.source,
            link.target,
            f"127.0.0.1:{9000 + i}" if link.name in proxied else f"127.0.0.1:{100 + i}",
            f"127.0.0.1:{100 + i}",
            link.name in proxied,
        )
        for i, link in enumerate(HARDENED.links)
    }
    return Endpoints((), "http://127.0.0.1:1", {}, links)


def test_a_reused_system_must_proxy_what_the_faults_need(tmp_path: Path) -> None:
    exp = experiment(tmp_path, [{"at": "2s", "down": {"link": "app->redis"}}])
    ok = SimpleNamespace(topology=HARDENED, endpoints=_endpoints({"app-1->redis", "app-2->redis"}))
    check_proxied(exp, ok)
    short = SimpleNamespace(topology=HARDENED, endpoints=_endpoints({"app-1->redis"}))
    with pytest.raises(HarnessError, match="app-2->redis"):
        check_proxied(exp, short)
    assert short.endpoints.direct() == tuple(sorted(ALL - {"app-1->redis"}))


def test_capacity_is_measured_on_the_same_shape_and_keyed_by_it() -> None:
    naive = load_sut(profile="naive")
    system = SimpleNamespace(endpoints=_endpoints({"app-1->postgres", "client->gateway-b"}))
    assert _same_links(system, naive) == {"app-1->postgres"}  # type: ignore[arg-type]
    assert _same_links(None, naive) is None
    every = SimpleNamespace(endpoints=_endpoints(set(ALL)))
    assert _same_links(every, naive) == {link.name for link in NAIVE.links}  # type: ignore[arg-type]
    assert naive.key() == naive.key("local", ())
    assert "direct=app-1->redis,client->gateway-a" in naive.key(
        "local", ("client->gateway-a", "app-1->redis")
    )


def test_a_direct_link_renders_as_its_target_and_a_proxied_one_as_its_proxy() -> None:
    ports = {c.name: 100 + i for i, c in enumerate(HARDENED.components)}
    link_ports = {
        link.name: 9000 + i if link.name == "app-1->postgres" else ports[link.target]
        for i, link in enumerate(HARDENED.links)
    }
    ctx = RenderContext(HARDENED, "127.0.0.1", ports, link_ports, Path("/tmp"), 1, str)
    assert render("${link:postgres}", ctx, "app-1") == f"127.0.0.1:{link_ports['app-1->postgres']}"
    assert render("${link:postgres}", ctx, "app-2") == f"127.0.0.1:{ports['postgres']}"
    assert render("${links:app}", ctx, "gateway-a") == (
        f"127.0.0.1:{ports['app-1']},127.0.0.1:{ports['app-2']}"
    )


def test_scheduled_faults_of_every_kind_are_known() -> None:
    faults = [
        ScheduledFault(1.0, Latency(link="app->redis", latency=5)),
        ScheduledFault(2.0, Kill(component="app-1")),
    ]
    from harness.run.proxied import schedule_links

    assert schedule_links(faults, HARDENED) == {"app-1->redis", "app-2->redis"}
