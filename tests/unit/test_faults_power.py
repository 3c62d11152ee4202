"""The power-loss fault (`lose_unsynced`) and where its directories come from: parsed
against the topology's `lazyfs:` declarations, and acting on a fake system in the order
a power loss does (kill first, then lose the unsynced bytes), with their count as
evidence."""

from __future__ import annotations

import socket
import subprocess
from dataclasses import dataclass, field
from typing import Any

import pytest

from harness.backends import ComponentEndpoint
from harness.errors import ConfigError
from harness.faults import LoseUnsynced, parse_fault
from harness.faults.base import FaultError
from harness.lazyfs import Discarded, Stats
from harness.topology import REFERENCE, load_topology
from harness.validate import Node


def topology(**params: Any) -> Any:
    return load_topology(REFERENCE, profile="hardened", params=params)


def test_the_reference_topology_puts_dirs_on_lazyfs_only_when_asked() -> None:
    plain = topology()
    assert plain.component("app-1").lazyfs == () and plain.component("postgres").lazyfs == ()
    lazy = topology(spool_on_lazyfs=True, pg_on_lazyfs=True)
    assert lazy.component("app-1").lazyfs == ("spool",)
    assert lazy.component("postgres").lazyfs == ("data",)
    assert lazy.component("redis").lazyfs == ()


def fault(value: Any, topo: Any) -> Any:
    return parse_fault(Node({"at": "1s", "lose_unsynced": value}, "x.yaml", "faults[0]"), topo)


def test_lose_unsynced_parses_and_heals_at_once_by_default() -> None:
    sf = fault("app-1", topology(spool_on_lazyfs=True))
    assert sf.fault == LoseUnsynced("app-1") and sf.duration == 0.0
    assert fault({"component": "app"}, topology(spool_on_lazyfs=True)).fault.component == "app"


def test_lose_unsynced_needs_a_directory_on_lazyfs() -> None:
    with pytest.raises(ConfigError) as e:
        fault("app-1", topology())
    assert e.value.key == "faults[0].lose_unsynced.component"
    assert "LazyFS" in e.value.expected


@dataclass
class FakeMount:
    dirty: int
    lost: list[int] = field(default_factory=list)
    order: list[str] = field(default_factory=list)

    def lose_unsynced(self) -> Discarded:
        self.order.append("lose")
        self.lost.append(self.dirty)
        d, self.dirty = self.dirty, 0
        return Discarded(d, 1 if d else 0)

    def stats(self) -> Stats:
        return Stats(self.dirty, 1 if self.dirty else 0, 7)


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def _refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class FakeSystem:
    """Kills by forgetting the pid; every component listens on a refused port."""

    def __init__(self, mounts: dict[str, dict[str, FakeMount]]) -> None:
        self.topology = topology(spool_on_lazyfs=True)
        self.mounts = mounts
        self.pids = {name: _dead_pid() for name in mounts}
        self.order: list[str] = []
        port = _refused_port()
        self.endpoints = type(
            "E",
            (),
            {
                "components": {
                    c.name: ComponentEndpoint(c.name, c.group, "127.0.0.1", port, "http")
                    for c in self.topology.components
                }
            },
        )()

    def pid(self, name: str) -> int | None:
        return self.pids.get(name)

    def is_running(self, name: str) -> bool:
        return False

    def kill(self, name: str, sig: int = 9) -> None:
        self.order.append(f"kill {name}")
        for m in self.mounts.get(name, {}).values():
            m.order.append("kill")

    def lazyfs(self, name: str) -> dict[str, FakeMount]:
        return self.mounts.get(name, {})


def test_inject_kills_then_discards_and_counts_the_bytes() -> None:
    spool = FakeMount(dirty=4096)
    system = FakeSystem({"app-1": {"spool": spool}})
    evidence = LoseUnsynced("app-1").inject(system)
    assert evidence.took_effect, evidence.summary()
    assert spool.order == ["kill", "lose"]  # nothing runs on the disk when it loses its cache
    assert evidence.figures == {"discarded_bytes": 4096, "discarded_files": 1}
    lost = next(c for c in evidence.checks if c.target == "app-1:spool")
    assert lost.figures["discarded_bytes"] == 4096 and lost.figures["dirty_bytes_left"] == 0


def test_a_group_loses_on_every_member() -> None:
    a, b = FakeMount(dirty=10), FakeMount(dirty=0)
    system = FakeSystem({"app-1": {"spool": a}, "app-2": {"spool": b}})
    evidence = LoseUnsynced("app").inject(system)
    assert evidence.took_effect and evidence.figures["discarded_bytes"] == 10
    assert system.order == ["kill app-1", "kill app-2"]


def test_a_component_without_lazyfs_is_a_fault_error() -> None:
    system = FakeSystem({"app-1": {}})
    with pytest.raises(FaultError, match="LazyFS"):
        LoseUnsynced("app-1").inject(system)
