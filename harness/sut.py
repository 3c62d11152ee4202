"""The system under test: its topology and everything a test of it needs besides, read from
the one topology file.

`harness.topology` reads how to start the system (components, links, profiles); this
module reads how to test it, from the same file's other sections::

    domain: reference_system.domain:ReferenceDomain   # optional (harness.domain)
    client: mysys.client:MyClient          # optional: factory(operations, targets) -> Client
    operations: operations.yaml            # what clients send (harness.operations), or inline
    capacity:                              # the SLO that defines capacity C
      op: show_code                        # default: the default mix's first read
      p99_ms: 300                          # default 300
      max_errors: 1%                       # default 1%
      mix: normal_day                      # default: the default mix
    capacity_from: naive                   # whose C rates are relative to (default: each its own)
    steady_state:                          # checked before any fault; every key optional
      rate: {x: 0.2}                       # default 0.2 C
      mix: {show_code: 0.9, lookup: 0.1}   # default: the reads of the default mix
      op: show_code                        # default: capacity.op
      p99_ms: 300                          # default: capacity.p99_ms
      min_availability: 0.99
    settle: {http: /readyz, component: app, until: {json: backlog, equals: 0}}  # harness.state
    metrics: {components: {app: {prometheus: /metrics}}, toxiproxy: true}    # harness.metrics
    state: {scans: {sql: "SELECT ...", via: app->postgres}}                       # harness.state
    invariants:                            # presets: named invariants experiments can list
      no_lost_scans: {acknowledged_writes: {op: scan, state: scans, field: scan_id}}

    sut = load_sut("reference_system/topology.yaml", profile="hardened")
    sut.topology, sut.operations, sut.slo, sut.domain
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from harness.client import Client, HttpClient
from harness.domain import DataDomain, Domain
from harness.errors import ConfigError
from harness.metrics.spec import MetricsSpec, parse_metrics
from harness.operations import Mix, Operations, parse_mix, parse_operations
from harness.state import Settle, StateReader, load_function, parse_settle, parse_state
from harness.topology import REFERENCE, Topology, load_node, load_topology, profile_names
from harness.validate import Node
from harness.values import parse_duration, parse_fraction, parse_ms

ClientFactory = Callable[[Operations, Sequence[str]], AbstractAsyncContextManager[Client]]
"""Builds the client of a run: the system's operations and its client-facing URLs. The
client is used as an async context manager (``async with factory(ops, urls) as c``)."""

__all__ = [
    "ClientFactory",
    "Preset",
    "Slo",
    "SteadyState",
    "SystemUnderTest",
    "load_sut",
    "parse_steady_state",
]


@dataclass(frozen=True)
class Slo:
    """The objective that defines capacity C: operation `op` answers with p99 <= `p99_ms`
    from the intended send time, and at most `max_errors` of requests fail."""

    op: str
    p99_ms: float = 300.0
    max_errors: float = 0.01
    mix: Mix | None = None  # the mix calibrated with (None: the default mix)

    def key(self) -> str:
        mix = self.mix.describe() if self.mix else "default"
        return f"slo={self.op}:p99<={self.p99_ms:g}ms errors<={self.max_errors:g} mix={mix}"


@dataclass(frozen=True)
class SteadyState:
    """A short low-rate load checked before any fault (see the module docstring)."""

    op: str
    rate: float = 0.2
    relative: bool = True  # rate is a multiple of C (else requests/s)
    mix: Mix | None = None
    p99_ms: float = 300.0
    min_availability: float = 0.99
    warmup: float = 0.5
    seconds: float = 1.5

    def rps(self, capacity: float | None) -> float:
        if not self.relative:
            return self.rate
        if not capacity:
            raise ValueError("a steady state relative to C needs a measured C")
        return max(1.0, self.rate * capacity)


@dataclass(frozen=True)
class Preset:
    """A named invariant the system declares: one kind with its parameters."""

    name: str
    kind: str
    params: Mapping[str, Any]
    node: Node


@dataclass(frozen=True)
class SystemUnderTest:
    """A topology and how to test it."""

    topology: Topology
    path: Path
    operations: Operations | None
    slo: Slo | None
    steady_state: SteadyState | None
    domain: Domain
    settle: Settle | None = None
    state: Mapping[str, StateReader] = field(default_factory=dict)
    presets: Mapping[str, Preset] = field(default_factory=dict)
    capacity_from: str | None = None
    client: ClientFactory = HttpClient
    metrics: MetricsSpec = field(default_factory=MetricsSpec)

    @property
    def profiles(self) -> tuple[str, ...]:
        return self.topology.profiles

    def key(self, backend: str = "local", direct: Sequence[str] = ()) -> str:
        """What names this system in calibration keys: topology, parameters, backend,
        the links that run direct (not through Toxiproxy), the operations' declaration
        and the SLO."""
        params = json.dumps(dict(self.topology.params), sort_keys=True, default=str)
        ops = self.operations.digest if self.operations else "-"
        slo = self.slo.key() if self.slo else "-"
        where = "" if backend == "local" else f" on {backend}"
        shape = f" direct={','.join(sorted(direct))}" if direct else ""
        return f"{self.topology.name} {params}{where}{shape} | ops={ops} {slo}"


def load_sut(
    path: Path | str = REFERENCE,
    *,
    profile: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> SystemUnderTest:
    """The topology file at `path` with `profile` and `params` applied, and its test
    sections (cached like `load_topology`)."""
    p = Path(path).resolve()
    try:
        mtime = p.stat().st_mtime_ns
    except OSError:
        mtime = 0
    key = json.dumps(dict(params or {}), sort_keys=True, default=str)
    return _load_cached(str(p), mtime, profile, key)


@functools.lru_cache(maxsize=64)
def _load_cached(path: str, mtime_ns: int, profile: str | None, params: str) -> SystemUnderTest:
    topology = load_topology(path, profile=profile, params=json.loads(params))
    root = load_node(topology.source)
    base = topology.root
    operations = None
    if root.has("operations"):
        on = root.key("operations")
        if isinstance(on.value, str):
            file = base / on.value
            try:
                op_root = Node.load(file)
            except ConfigError as exc:
                raise on.fail("a readable operations file", str(exc)) from None
            operations = parse_operations(op_root, file.resolve().parent, topology.params)
        else:
            operations = parse_operations(on, base, topology.params)
    slo = _slo(root.key("capacity", {}), operations) if operations else None
    steady = (
        parse_steady_state(root.key("steady_state"), operations, slo)
        if root.has("steady_state")
        else (_default_steady(operations, slo) if operations and slo else None)
    )
    settle = parse_settle(root.key("settle")) if root.has("settle") else None
    declared = {name for name, _ in root.key("components", {}).items()}
    names = tuple(declared | {c.name for c in topology.components})
    metrics = parse_metrics(root.key("metrics"), names) if root.has("metrics") else MetricsSpec()
    state = parse_state(root.key("state")) if root.has("state") else {}
    _check_targets(root, topology, settle, state)
    presets = {}
    for name, pn in root.key("invariants", {}).items():
        m = pn.mapping()
        if len(m) != 1:
            raise pn.fail(
                "one invariant kind with its parameters, e.g. {acknowledged_writes: {...}}"
            )
        kind, params_value = next(iter(m.items()))
        params_node = pn.key(kind)
        if params_value is None:
            params_node = Node({}, params_node.source, params_node.path)
        params_node.mapping()
        presets[name] = Preset(name, kind, MappingProxyType(dict(params_node.value)), params_node)
    capacity_from = None
    if root.has("capacity_from"):
        cn = root.key("capacity_from")
        capacity_from = cn.choice(profile_names(root))
    domain: Domain = DataDomain(settle=settle, state=state, root=base)
    if root.has("domain"):
        dn = root.key("domain")
        spec = dn.str()
        if ":" not in spec:
            raise dn.fail("module:attribute naming a Domain, e.g. mysys.domain:MyDomain")
        factory = load_function(spec, base, dn)
        try:
            domain = factory(settle=settle, state=state, root=base)
        except TypeError as exc:
            raise dn.fail(
                "a factory taking settle=, state=, root= (as DataDomain)", str(exc)
            ) from None
        if not isinstance(domain, Domain):
            raise dn.fail("a factory returning a Domain (see harness.domain)")
    client: ClientFactory = HttpClient
    if root.has("client"):
        cn = root.key("client")
        spec = cn.str()
        if ":" not in spec:
            raise cn.fail("module:attribute naming a client factory, e.g. mysys.load:MyClient")
        client = load_function(spec, base, cn)
    return SystemUnderTest(
        topology=topology,
        path=Path(topology.source),
        operations=operations,
        slo=slo,
        steady_state=steady,
        domain=domain,
        settle=settle,
        state=MappingProxyType(state),
        presets=MappingProxyType(presets),
        capacity_from=capacity_from,
        client=client,
        metrics=metrics,
    )


def _check_targets(
    root: Node, topology: Topology, settle: Settle | None, state: Mapping[str, StateReader]
) -> None:
    """The links and components `settle:` and `state:` name exist in this profile's
    topology (else the run would find out at its end, and its invariant be unknown)."""
    names = sorted(topology.names())
    links = topology.link_names()
    if settle is not None and settle.component not in names:
        raise (
            root.key("settle")
            .key("component")
            .fail(
                f"a component or group of topology {topology.name!r} ({topology.profile}): {names}"
            )
        )
    for name, reader in state.items():
        rn = root.key("state").key(name)
        if reader.via is not None and reader.via not in links:
            raise rn.key("via").fail(
                f"a link of topology {topology.name!r} ({topology.profile}): {list(links)}"
            )
        if reader.component is not None and reader.component not in names:
            raise rn.key("component").fail(
                f"a component or group of topology {topology.name!r} ({topology.profile}): {names}"
            )


def _first_read(operations: Operations, mix: Mix) -> str:
    reads = [op for op in mix.ops if not operations.op(op).write]
    return (reads or list(mix.ops))[0]


def _slo(node: Node, operations: Operations) -> Slo:
    node.no_unknown_keys({"op", "p99_ms", "max_errors", "mix"})
    mix = None
    if node.has("mix"):
        mn = node.key("mix")
        mix = (
            operations.mixes[mn.choice(tuple(operations.mixes))]
            if isinstance(mn.value, str)
            else parse_mix(mn, operations.names)
        )
    op = (
        node.key("op").choice(operations.names)
        if node.has("op")
        else _first_read(operations, mix or operations.mix)
    )
    return Slo(
        op=op,
        p99_ms=parse_ms(node.key("p99_ms")) if node.has("p99_ms") else 300.0,
        max_errors=parse_fraction(node.key("max_errors")) if node.has("max_errors") else 0.01,
        mix=mix,
    )


def _default_steady(operations: Operations, slo: Slo) -> SteadyState:
    mix = operations.mix
    reads = tuple((n, s) for n, s in mix.shares if s > 0 and not operations.op(n).write)
    return SteadyState(op=slo.op, mix=Mix(reads) if reads else None, p99_ms=slo.p99_ms)


def parse_steady_state(
    node: Node,
    operations: Operations | None,
    slo: Slo | None,
    base: SteadyState | None = None,
) -> SteadyState | None:
    """A `steady_state:` mapping over `base` (its defaults), or `false` for none."""
    if node.value is False:
        return None
    node.mapping()
    node.no_unknown_keys({"rate", "mix", "op", "p99_ms", "min_availability", "warmup", "seconds"})
    if operations is None:
        raise node.fail("no steady_state: the topology declares no operations")
    if base is None:
        base = (
            _default_steady(operations, slo)
            if slo is not None
            else SteadyState(op=operations.names[0])
        )
    changes: dict[str, Any] = {}
    if node.has("rate"):
        rn = node.key("rate")
        rn.no_unknown_keys({"x", "rps"})
        if len(rn.mapping()) != 1:
            raise rn.fail("exactly one of {x: N} (multiples of C) or {rps: N}")
        k, vn = next(rn.items())
        changes["rate"] = vn.number(minimum=0.001, maximum=100 if k == "x" else 100_000)
        changes["relative"] = k == "x"
    if node.has("mix"):
        mn = node.key("mix")
        changes["mix"] = (
            operations.mixes[mn.choice(tuple(operations.mixes))]
            if isinstance(mn.value, str)
            else parse_mix(mn, operations.names)
        )
    if node.has("op"):
        changes["op"] = node.key("op").choice(operations.names)
    if node.has("p99_ms"):
        changes["p99_ms"] = parse_ms(node.key("p99_ms"))
    if node.has("min_availability"):
        changes["min_availability"] = parse_fraction(node.key("min_availability"))
    if node.has("warmup"):
        changes["warmup"] = parse_duration(node.key("warmup"), maximum=60)
    if node.has("seconds"):
        changes["seconds"] = parse_duration(node.key("seconds"), positive=True, maximum=60)
    out = replace(base, **changes)
    mix = out.mix or operations.mix
    if out.op not in mix.ops:
        raise node.fail(f"an op that the steady-state mix sends ({list(mix.ops)})", f"op: {out.op}")
    return out
