"""Loading an experiment file: each section parsed by the part it belongs to, checked
against the system under test of every profile the experiment runs.

The order is the order of dependence: the `system:` section names the topology, whose
operations the `workload:` draws from, whose links and components the `faults:` name,
whose phases, operations, state readers and presets the `invariants:` use; `expect:`
names the invariants. Nothing is started: a file that loads is a file that can run.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, cast

from harness.errors import ConfigError
from harness.experiment.spec import BACKENDS, Expectation, Experiment, SystemSpec
from harness.faults import ScheduledFault, parse_schedule
from harness.invariants import Context, Invariant, parse_invariants
from harness.loopback import TOPOLOGY_SKIP, check_loopback
from harness.metrics.spec import parse_every
from harness.search.space import parse_search
from harness.sut import SteadyState, SystemUnderTest, load_sut, parse_steady_state
from harness.topology import REFERENCE, load_node, profile_names
from harness.validate import Node
from harness.workload.spec import WorkloadSpec, parse_workload

__all__ = ["load_experiment"]

_TOP_KEYS = frozenset(
    {
        "name",
        "description",
        "seed",
        "system",
        "workload",
        "faults",
        "invariants",
        "expect",
        "search",
        "capacity",
        "steady_state",
        "metrics",
    }
)
_SYSTEM_KEYS = frozenset(
    {"topology", "profile", "backend", "host", "params", "capacity_from", "proxy"}
)
MAX_SEED = 2**31 - 1
MAX_CAPACITY = 10_000_000.0


def load_experiment(
    path: Path | str,
    *,
    allow_hosts: Iterable[str] = (),
    params: Mapping[str, Any] | None = None,
) -> Experiment:
    """Read and validate an experiment file; raises one `ConfigError` for the first mistake.

    `allow_hosts` lets a caller (a CLI flag, never the file itself) permit non-loopback
    hosts; `params` (`--param K=V`) override the `system:` section's parameters.
    """
    root = Node.load(path)
    root.mapping()
    if params:
        root = Node({**root.value, "system": _with_params(root, params)}, root.source)
    allowed = tuple(allow_hosts)
    check_loopback(root, allowed)
    root.no_unknown_keys(_TOP_KEYS)
    name_node = root.key("name")
    name = name_node.str()
    if not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,62}", name):
        raise name_node.fail("a name of lowercase letters, digits and '-', like 'morning-surge'")
    description = root.key("description").str()
    if "\n" in description or len(description) > 300:
        raise root.key("description").fail("one line of at most 300 characters")
    seed = root.key("seed").int(minimum=0, maximum=MAX_SEED) if root.has("seed") else None
    base = Path(root.source).resolve().parent
    system, suts = _system(root.key("system", {}), base, allowed)
    first = next(iter(suts.values()))
    operations = first.operations
    if operations is None:
        raise root.key("workload").fail(
            "operations to send", f"the topology {first.path} declares no operations:"
        )
    workload = parse_workload(root.key("workload"), operations, base)
    faults = _faults(root.key("faults", []), workload, suts)
    context = Context(
        phases=workload.phase_names,
        operations=operations,
        slo_op=first.slo.op if first.slo else None,
        state=tuple(first.state),
        presets=first.presets,
        kinds=first.domain.invariants(),
    )
    invariants = parse_invariants(root.key("invariants"), context)
    profiles = (system.profile,) if system.profile else system.profiles_available
    expect = _expect(root.key("expect", {}), profiles, invariants)
    search = (
        parse_search(
            root.key("search"), workload.duration, {p: s.topology for p, s in suts.items()}
        )
        if root.has("search")
        else None
    )
    capacity = None
    if root.has("capacity"):
        capacity = root.key("capacity").number(minimum=0.001, maximum=MAX_CAPACITY)
    if workload.needs_own:
        _check_own_rates(root, first, capacity)
    metrics_every = None
    if root.has("metrics"):
        metrics_every = _metrics_every(root.key("metrics"), first, workload.compression)
    steady: SteadyState | Literal["system"] | None = "system"
    if root.has("steady_state"):
        steady = parse_steady_state(
            root.key("steady_state"), operations, first.slo, first.steady_state
        )
    return Experiment(
        name=name,
        description=description,
        path=Path(root.source),
        system=system,
        workload=workload,
        faults=faults,
        invariants=invariants,
        expect=MappingProxyType(expect),
        seed=seed,
        search=search,
        capacity=capacity,
        steady_state=steady,
        metrics_every=metrics_every,
    )


def _metrics_every(node: Node, sut: SystemUnderTest, compression: float) -> float:
    """`metrics: {every: 1s}`: this experiment's sampling interval (experiment time), for
    a system whose topology declares metrics."""
    node.mapping()
    node.no_unknown_keys({"every"})
    if sut.metrics.empty:
        raise node.fail(
            "no metrics: section", f"the topology {sut.path} declares no metrics to sample:"
        )
    return parse_every(node.key("every"), compression)


def _check_own_rates(root: Node, sut: SystemUnderTest, capacity: float | None) -> None:
    """`x_own` rates need the running profile's capacity measured: an SLO to calibrate
    against, and no fixed `capacity:` that says not to calibrate."""
    node = _first_own(root.key("workload"))
    if sut.slo is None:
        raise node.fail(
            "x: or rps: rates",
            f"x_own needs each profile's capacity calibrated, and the topology {sut.path}"
            " declares no capacity: SLO to calibrate against",
        )
    if capacity is not None:
        raise node.fail(
            "x: or rps: rates",
            "x_own needs each profile's capacity calibrated; this file fixes C (capacity:)",
        )


def _first_own(workload: Node) -> Node:
    """The first `x_own` key of `workload.rate` or of an abuser's `rate` (for errors)."""
    rate = workload.key("rate")
    steps = [rate] if isinstance(rate.value, dict) else list(rate.elements())
    for step in steps:
        for key in ("x_own", "ramp_to"):
            if step.has(key) and (key == "x_own" or _mentions_own(step.key(key))):
                return step.key(key)
    if workload.has("clients"):
        for _, cn in workload.key("clients").items():
            if isinstance(cn.value, dict) and cn.has("rate") and _mentions_own(cn.key("rate")):
                return cn.key("rate")
    return rate


def _mentions_own(node: Node) -> bool:
    return isinstance(node.value, dict) and "x_own" in node.value


# --------------------------------------------------------------------------- system


def _with_params(root: Node, params: Mapping[str, Any]) -> dict[str, Any]:
    system = dict(root.key("system", {}).mapping())
    grouped = dict(system.get("params") or {})
    for key, value in params.items():
        if key in grouped:
            grouped[key] = value
        else:
            system[key] = value
    if grouped:
        system["params"] = grouped
    return system


def _topology_error(node: Node, exc: ConfigError) -> ConfigError:
    """A topology's mistake, reported at the experiment's key, without echoing the file."""
    where = f"{exc.source}: {exc.key}" if exc.key else exc.source
    hint = f"{where}: expected {exc.expected}" + (f" ({exc.hint})" if exc.hint else "")
    return ConfigError(node.source, node.path, node.value, "a topology file that loads", hint)


def _system(
    node: Node, base: Path, allowed: tuple[str, ...]
) -> tuple[SystemSpec, dict[str, SystemUnderTest]]:
    node.mapping()
    topo_path = REFERENCE
    topo_node = node.key("topology", "reference")
    if node.has("topology"):
        text = topo_node.str()
        if text != "reference":
            topo_path = (base / text).resolve()
            if not topo_path.is_file():
                raise topo_node.fail(
                    "'reference' or a topology file (relative to the experiment file)"
                )
    try:
        raw = load_node(topo_path)
        check_loopback(raw, allowed, TOPOLOGY_SKIP)
        declared = profile_names(raw)
        defaults: dict[str, Any] = dict(raw.key("params", {}).mapping())
    except ConfigError as exc:
        raise _topology_error(topo_node, exc) from None
    param_keys = set(defaults) - _SYSTEM_KEYS
    node.no_unknown_keys(frozenset(_SYSTEM_KEYS | param_keys))

    profile = None
    if node.has("profile"):
        profile = node.key("profile").choice(declared)
    backend = cast(Literal["local", "containers"], node.key("backend", "local").choice(BACKENDS))
    host = node.key("host", "127.0.0.1").str()
    proxy = cast(Literal["faults", "all"], node.key("proxy", "all").choice(("faults", "all")))

    params: dict[str, Any] = {}
    given = [(k, n) for k, n in node.items() if k in param_keys]
    if node.has("params"):
        pnode = node.key("params")
        pnode.no_unknown_keys(frozenset(defaults))
        given += list(pnode.items())
    for key, n in given:
        if key in params:
            raise n.fail("each parameter once", f"{key} is given twice")
        params[key] = _param(n, defaults[key])

    suts: dict[str, SystemUnderTest] = {}
    for p in (profile,) if profile else declared:
        try:
            sut = load_sut(topo_path, profile=p, params=params)
        except ConfigError as exc:
            raise _topology_error(topo_node, exc) from None
        for problem in sut.domain.check_params(sut.topology.params):
            target = _locate(node, problem.key)
            raise ConfigError(
                target.source,
                target.path,
                problem.value,
                problem.expected,
                f"checked by {type(sut.domain).__name__}"
                + ("" if p == "default" else f" under profile {p!r}"),
            )
        suts[p] = sut
    first = next(iter(suts.values()))
    capacity_from = first.capacity_from
    if node.has("capacity_from"):
        c = node.key("capacity_from")
        capacity_from = None if c.value == "own" else c.choice((*declared, "own"))
    spec = SystemSpec(
        topo_path,
        profile,
        backend,
        host,
        MappingProxyType(params),
        declared,
        capacity_from,
        proxy,
    )
    return spec, suts


def _locate(node: Node, dotted: str) -> Node:
    """The deepest node of `system:` (or its `params:`) along a dotted key path."""
    parts = dotted.split(".")
    at = node
    if not node.has(parts[0]) and node.has("params"):
        at = node.key("params")
    for part in parts:
        if not (isinstance(at.value, dict) and part in at.value):
            return at.child(None, part) if at is not node else node.child(None, dotted)
        at = at.key(part)
    return at


def _param(node: Node, default: Any) -> Any:
    if isinstance(default, bool):
        return node.bool()
    if isinstance(default, int):
        return node.int(minimum=0, maximum=2**31 - 1)
    if isinstance(default, float):
        return node.number()
    if isinstance(default, str):
        if not isinstance(node.value, str):
            raise node.fail("a string")
        return node.value
    if isinstance(default, dict):
        return dict(node.mapping())
    if isinstance(default, list):
        return [e.value for e in node.elements()]
    return node.value


# --------------------------------------------------------------------------- faults


def _faults(
    node: Node, workload: WorkloadSpec, suts: Mapping[str, SystemUnderTest]
) -> tuple[ScheduledFault, ...]:
    """The `faults:` list through the fault layer, checked against every profile's topology.

    A fault must name links and components that exist under every profile the experiment
    runs, start before the workload ends and heal (`for`) before it ends.
    """
    if node.value is None:
        return ()
    node.elements()  # a list, or a clear error
    duration = workload.duration
    schedule = parse_schedule(node)  # mistakes that do not depend on the topology first
    for profile, sut in suts.items():
        try:
            schedule = parse_schedule(node, sut.topology)
        except ConfigError as e:
            hint = f"{e.hint}; " if e.hint else ""
            raise ConfigError(
                e.source, e.key, e.value, e.expected, f"{hint}under profile {profile!r}"
            ) from None
    for el, sf in zip(node.elements(), schedule, strict=True):
        if sf.at >= duration:
            raise el.key("at").fail(f"a time before the workload ends ({duration:g}s)")
        if sf.duration is not None and sf.at + sf.duration > duration:
            where = el.key("for") if el.has("for") else el
            raise where.fail(
                f"a fault healed by {duration:g}s (for <= {duration - sf.at:g}s),"
                " so recovery can be observed"
            )
    return schedule


# --------------------------------------------------------------------------- expect


_EXPECT_KEYS = {"fail", "may_fail", "others"}


def _ids(names: Node, ids: set[str]) -> tuple[str, ...]:
    out = []
    for el in names.elements():
        if el.value not in ids:
            raise el.fail(f"an invariant id among {sorted(ids)}", "unknown invariant")
        out.append(el.value)
    return tuple(out)


def _expectation(node: Node, ids: set[str]) -> Expectation:
    if isinstance(node.value, str):
        outcome = node.choice(("pass", "skip"))
        return Expectation("skip" if outcome == "skip" else "pass")
    node.no_unknown_keys(_EXPECT_KEYS)
    may_fail = _ids(node.key("may_fail"), ids) if node.has("may_fail") else ()
    if not node.has("fail"):
        if not may_fail:
            raise node.fail("pass, skip, or {fail: [ids]} / {may_fail: [ids]}")
        return Expectation("pass", may_fail=may_fail)
    names = node.key("fail")
    failing = _ids(names, ids)
    if not failing:
        raise names.fail("a non-empty list of invariant ids that must fail")
    both = sorted(set(failing) & set(may_fail))
    if both:
        raise node.key("may_fail").fail(f"ids not also under fail (both: {both})")
    others = node.key("others", "hold").choice(("hold", "any"))
    return Expectation("fail", failing, "any" if others == "any" else "hold", may_fail=may_fail)


def _expect(
    node: Node, profiles: tuple[str, ...], invariants: tuple[Invariant, ...]
) -> dict[str, Expectation]:
    ids = {i.id for i in invariants}
    v = node.value
    if isinstance(v, str) or (isinstance(v, dict) and set(v) <= _EXPECT_KEYS and v):
        one = _expectation(node, ids)
        return dict.fromkeys(profiles, one)
    out = {}
    for profile, en in node.items():
        if profile not in profiles:
            raise ConfigError(
                en.source,
                en.path,
                profile,
                f"a profile this experiment runs: {list(profiles)}",
                "unknown profile",
            )
        out[profile] = _expectation(en, ids)
    return out
