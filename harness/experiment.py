"""Experiments: one YAML file says what system to start, what load and faults to apply, and
what must hold; `load_experiment` validates it into frozen dataclasses.

Every mistake raises one `ConfigError` naming the file, the key path
(`faults[1].latency.ms`), the value received and what was expected. Unknown keys are
errors. Traffic goes only to loopback: any URL or host in the file must be 127.0.0.0/8,
::1 or localhost.

Schema
------
```yaml
name: morning-surge                 # required: lowercase letters, digits, '-'
description: 10x surge at 07:40     # required: one line, shown by `harness list`
seed: 42                            # optional default seed (--seed wins)

system:                             # optional; every key optional
  topology: reference               # 'reference' (default) or a file, relative to this one
  # profile: hardened               # run only this profile (default: every profile of the topology)
  backend: local                    # local | containers
  host: 127.0.0.1                   # loopback only
  app_workers: 2                    # any parameter of the topology (overrides the profile's) ...
  overrides: {cache: false}         # ... e.g. the reference system's single-mechanism switches
  # params: {app_workers: 2}        # ... or the same grouped under params

workload:
  duration: 40s                     # required; durations: 5s, 500ms, 2m, 1h or seconds
  compression: 10                   # optional (1): play the schedule 10x faster
  rate:                             # required: phases, each from its `at` to the next one's
    - {at: 0s, x: 0.2, phase: steady}                    # x: multiple of capacity C
    - {at: 5s, ramp_to: 2.0, over: 5s, phase: ramp}      # ramp from the previous rate, then hold
    - {at: 10s, x: 2.0, phase: surge}                    # ramp_to: N uses the previous unit,
    - {at: 25s, rps: 100, phase: recovery}               #   or {x: N} / {rps: N}; rps: absolute
  mix: {show_code: 0.8, scan: 0.12, lookup: 0.06, ingest: 0.02}   # or normal_day | mass_testing_day
  clients:                          # class name -> share, or a mapping with share and behaviour
    impatient: 0.94                 #   the names good/impatient/buggy/abuser imply the behaviour
    buggy: {share: 0.05, max_attempts: 50, timeout: 10s}
    abuser: {share: 0, rate: {rps: 50}, identities: 3}  # its own fixed-rate stream
    apps: {behaviour: good, share: 0.01, timeout: 3s, max_retries: 2, budget: false}
  population: {people: 100000, venues: 2000, zipf_s: 1.0, labs: 20, batch_size: 20,
               positive_rate: 0.02}
  reread: {share: 1.0, count: 2, delay: [200ms, 2s]}  # optional, this is the default: each
                                    # positive person in an ingest shows their code `count`
                                    # times, `delay` (real time) after it; `reread: false` = off

faults:                             # optional: `at`, optional `for`, exactly one fault kind
  - {at: 10s, for: 5s, latency: {link: app->postgres, ms: 500, jitter_ms: 100}}
  - {at: 18s, kill: {component: gateway-a, signal: SIGKILL}}   # no `for`: healed at the end
  - {at: 20s, for: 4s, down: {link: app->redis}}
  - {at: 22s, db_loss: postgres}    # kinds: see harness.faults (latency bandwidth slow_close
                                    # timeout reset_peer slicer limit_data down kill crash
                                    # pause restart db_loss); targets must exist in every
                                    # profile the experiment runs

invariants:                         # required, non-empty; each one kind with its parameters
  - availability: {op: show_code, min: 0.99, client_class: good, during: steady}
  - availability: {min: "99%", window: 1s, max_below_for: 5s, id: proxy-errors}
  - latency: {op: show_code, p99_ms: 300, during: steady}   # also p50_ms p90_ms p999_ms max_ms
  - goodput: {min_fraction_of_capacity: 0.8, during: surge}
  - recovers: {within: 6s, after: trigger_end}   # or faults_healed, surge_over, a phase, a time
  - no_lost_scans: {}
  - no_false_green: {}
  - faults_took_effect: {}

search:                             # optional: a fault search (harness.search, docs/search.md)
  kinds: [latency, down, kill, pause]  # default: every kind; shrinking prefers the milder
  targets: [app->postgres, app-1]   # links and components (groups too); default: all of them
  max_faults: 2                     # schedules of min_faults (1) .. max_faults faults
  window: [2s, 12s]                 # when faults start (default: the first half)
  duration: [1s, 8s]                # how long each lasts (default: 1s .. a quarter)
  magnitudes: {latency: [50, 2000]} # per kind [low, high] in its YAML unit
  examples: 15                      # schedules generated (shrinking comes on top)
  budget: 5m                        # the whole search, shrinking included
  replays: 2                        # runs at most per schedule, of which ...
  must_fail: 2                      # ... this many must fail for it to count as failing

expect:                             # optional, per profile; unlisted profiles must pass
  naive: {fail: [recovers, goodput]}  # these invariant ids must fail (others may do anything)
  hardened: pass                    # every invariant must hold; `skip` does not run it
```

Time: every duration in the file is experiment time and is divided by
`workload.compression` at run time (phases, fault times, `within`, `window`,
`max_below_for`), except client behaviour times (timeouts, patience, backoff, the
re-read `delay`) and latency bounds in `*_ms`, which are real. `during:` takes a phase
name, `all`, or `{from: 5s, to: 25s}`. An invariant's id is its kind, `kind#n` when the
kind repeats, or its `id:`. See `harness.invariants` for every invariant's parameters.

    exp = load_experiment("experiments/morning-surge.yaml")
    for profile in exp.profiles: ...
    schedule = exp.schedule(capacity=820.0, seed=7)          # arrivals, compressed
    with run_schedule(system, exp.fault_schedule(), t0) as nemesis: ...   # compressed too
    final = exp.final_state(820.0, scans={...}, faults=fault_records(nemesis.report))
    verdicts = check_all(exp.invariants, history, final)
    met, why = exp.expectation(profile).judge(verdicts)
"""

from __future__ import annotations

import functools
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import urlsplit

from harness.errors import ConfigError
from harness.faults import (
    FaultError,
    ScheduledFault,
    parse_schedule,
    resolve_components,
    resolve_links,
)
from harness.invariants import FaultRecord, FinalState, Invariant, Phase, Verdict
from harness.invariants._values import parse_duration, parse_fraction
from harness.invariants.registry import parse_invariants
from harness.search import Search
from harness.stalls import MACHINE
from harness.strategies import KIND_ORDER, MAGNITUDES, SearchSpace, fault_schedules
from harness.topology import REFERENCE, Topology, load_topology
from harness.validate import Node
from harness.workload import (
    DEFAULT_CLIENTS,
    MASS_TESTING_DAY,
    NORMAL_DAY,
    OPS,
    Abuser,
    Behaviour,
    Buggy,
    ClientClass,
    Constant,
    Good,
    Impatient,
    Mix,
    Population,
    Ramp,
    Rate,
    Reread,
    RetryBudget,
    Schedule,
    Segment,
    Sequence,
    Workload,
    WorkloadError,
    rps,
    x,
)

__all__ = [
    "BACKENDS",
    "Expectation",
    "Experiment",
    "RateStep",
    "System",
    "WorkloadSpec",
    "check_loopback",
    "load_experiment",
]

BACKENDS = ("local", "containers")
_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_IDENT = re.compile(r"^[a-z][a-z0-9_]*$")
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
    }
)


# --------------------------------------------------------------------------- types


@dataclass(frozen=True)
class System:
    """Which system to start: a topology file, an optional fixed profile, its parameters."""

    topology: Path = REFERENCE
    profile: str | None = None
    backend: Literal["local", "containers"] = "local"
    host: str = "127.0.0.1"
    params: Mapping[str, Any] = field(default_factory=dict)
    profiles_available: tuple[str, ...] = ()
    capacity_from: str | None = None  # the profile whose capacity is C (None: each its own)


@dataclass(frozen=True)
class RateStep:
    """One entry of `workload.rate`: from `at` (experiment s), a rate or a ramp to it."""

    at: float
    rate: Rate
    over: float | None = None  # a ramp from the previous rate over this many seconds
    phase: str | None = None


@dataclass(frozen=True)
class WorkloadSpec:
    """The workload as written: duration, compression, rate steps, mix, clients, population,
    re-reads after positive results (None: off)."""

    duration: float
    rate: tuple[RateStep, ...]
    compression: float = 1.0
    mix: Mix = NORMAL_DAY
    clients: tuple[ClientClass, ...] = ()
    population: Population = field(default_factory=Population)
    reread: Reread | None = field(default_factory=Reread)

    def segments(self) -> Sequence:
        """The rate profile as `harness.workload` segments (experiment time)."""
        out: list[Segment] = []
        previous: Rate | None = None
        for i, step in enumerate(self.rate):
            end = self.rate[i + 1].at if i + 1 < len(self.rate) else self.duration
            span = end - step.at
            if step.over is not None:
                assert previous is not None  # checked at load
                out.append(Ramp(previous, step.rate, step.over))
                if span > step.over:
                    out.append(Constant(step.rate, span - step.over))
            else:
                out.append(Constant(step.rate, span))
            previous = step.rate
        return Sequence(tuple(out))

    def phase_spans(self) -> tuple[tuple[str, float, float, tuple[Rate, ...]], ...]:
        """Named phases as (name, start, end, rates reached) in experiment seconds."""
        out: list[tuple[str, float, float, tuple[Rate, ...]]] = []
        previous: Rate | None = None
        for i, step in enumerate(self.rate):
            end = self.rate[i + 1].at if i + 1 < len(self.rate) else self.duration
            rates = (step.rate,) if step.over is None or previous is None else (previous, step.rate)
            previous = step.rate
            if step.phase is None:
                continue
            if out and out[-1][0] == step.phase:
                name, start, _, before = out[-1]
                out[-1] = (name, start, end, before + rates)
            else:
                out.append((step.phase, step.at, end, rates))
        return tuple(out)

    @property
    def phase_names(self) -> tuple[str, ...]:
        return tuple(p[0] for p in self.phase_spans())


@dataclass(frozen=True)
class Expectation:
    """What a profile must show: every invariant holding (`pass`), listed ones failing, or skip."""

    outcome: Literal["pass", "fail", "skip"] = "pass"
    fail: tuple[str, ...] = ()

    def judge(self, verdicts: Iterable[Verdict]) -> tuple[bool, str]:
        """Whether the verdicts meet the expectation, and a sentence saying why."""
        vs = {v.name: v for v in verdicts}
        if self.outcome == "skip":
            return True, "skipped"
        machine = vs.get(MACHINE)
        if machine is not None and machine.valid is not True:
            # a failure the stalled machine may have caused proves nothing either way
            return False, machine.message
        if self.outcome == "pass":
            bad = [f"{n} ({v.outcome})" for n, v in vs.items() if v.valid is not True]
            if bad:
                return False, "expected every invariant to hold; not holding: " + ", ".join(bad)
            return True, f"all {len(vs)} invariants hold, as expected"
        missing = [
            f"{n} ({vs[n].outcome if n in vs else 'not checked'})"
            for n in self.fail
            if n not in vs or vs[n].valid is not False
        ]
        if missing:
            return False, "expected to fail but did not: " + ", ".join(missing)
        return True, "failed as expected: " + ", ".join(self.fail)

    def __str__(self) -> str:
        return self.outcome if self.outcome != "fail" else f"fail {list(self.fail)}"


@dataclass(frozen=True)
class Experiment:
    """A validated experiment file."""

    name: str
    description: str
    path: Path
    system: System
    workload: WorkloadSpec
    faults: tuple[ScheduledFault, ...]
    invariants: tuple[Invariant, ...]
    expect: Mapping[str, Expectation] = field(default_factory=dict)
    seed: int | None = None
    search: Search | None = None  # a fault search (issue 9): harness.search

    @property
    def profiles(self) -> tuple[str, ...]:
        """The profiles this experiment runs under (empty: the topology has none)."""
        if self.system.profile is not None:
            return (self.system.profile,)
        return self.system.profiles_available

    def expectation(self, profile: str | None) -> Expectation:
        """What `profile` must show; profiles not listed under `expect` must pass."""
        return self.expect.get(profile or "", Expectation())

    def workload_for(self, seed: int = 0, tag: str = "") -> Workload:
        """The file's workload as a `harness.workload.Workload` (rates still relative to C)."""
        w = self.workload
        return Workload(
            w.segments(), w.mix, w.clients, w.population, seed=seed, tag=tag, reread=w.reread
        )

    def schedule(self, capacity: float | None, seed: int = 0, tag: str = "") -> Schedule:
        """The arrival schedule against capacity C, compressed as the file says."""
        return self.workload_for(seed, tag).schedule(capacity, self.workload.compression)

    def fault_schedule(self) -> tuple[ScheduledFault, ...]:
        """The faults with `at` and `for` divided by the compression (run seconds)."""
        c = self.workload.compression
        return tuple(
            replace(f, at=f.at / c, duration=None if f.duration is None else f.duration / c)
            for f in self.faults
        )

    def phases(self, capacity: float | None) -> tuple[Phase, ...]:
        """Named phases in run seconds, with their peak offered rate (None if not resolvable)."""
        c = self.workload.compression
        out = []
        for name, start, end, rates in self.workload.phase_spans():
            try:
                peak: float | None = max(r.resolve(capacity) for r in rates)
            except WorkloadError:
                peak = None
            out.append(Phase(name, start / c, end / c, peak))
        return tuple(out)

    def final_state(
        self,
        capacity: float | None,
        *,
        faults: tuple[FaultRecord, ...] | None = (),
        scans: Mapping[str, int] | None = None,
        t0: float = 0.0,
        extra: Mapping[str, Any] | None = None,
    ) -> FinalState:
        """A `FinalState` with this experiment's compression, duration and phases filled in."""
        c = self.workload.compression
        return FinalState(
            capacity=capacity,
            compression=c,
            duration=self.workload.duration / c,
            phases=self.phases(capacity),
            faults=faults,
            scans=scans,
            t0=t0,
            extra=extra or {},
        )


# --------------------------------------------------------------------------- loading


def load_experiment(path: Path | str, *, allow_hosts: Iterable[str] = ()) -> Experiment:
    """Read and validate an experiment file; raises one `ConfigError` for the first mistake.

    `allow_hosts` lets a caller (a CLI flag, never the file itself) permit non-loopback hosts.
    """
    root = Node.load(path)
    root.mapping()
    check_loopback(root, frozenset(allow_hosts))
    root.no_unknown_keys(_TOP_KEYS)
    name_node = root.key("name")
    name = name_node.str()
    if not _NAME.match(name):
        raise name_node.fail("a name of lowercase letters, digits and '-', like 'morning-surge'")
    description = root.key("description").str()
    seed = root.key("seed").int(minimum=0) if root.has("seed") else None
    base = Path(root.source).resolve().parent
    system = _system(root.key("system", {}), base)
    workload = _workload(root.key("workload"))
    faults = parse_faults(root.key("faults", []), workload.duration, system)
    invariants = parse_invariants(root.key("invariants"), workload.phase_names)
    expect = _expect(root.key("expect", {}), system, invariants)
    search = _search(root.key("search"), workload.duration, system) if root.has("search") else None
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
    )


# --------------------------------------------------------------------------- loopback

_HOST_KEYS = frozenset({"host", "hosts", "url", "urls", "address", "endpoint", "endpoints"})


def _is_loopback(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _host_of(text: str) -> str | None:
    if text.startswith("[") and "]" in text:  # [::1]:8080
        return text[1 : text.index("]")]
    if "://" in text:
        try:
            return urlsplit(text).hostname or ""
        except ValueError:
            return ""
    if text.count(":") == 1:  # host:port
        return text.split(":")[0]
    return text


def check_loopback(node: Node, allowed: frozenset[str] = frozenset()) -> None:
    """Refuse any URL (anywhere) or host-like key whose host is not loopback."""

    def walk(n: Node, key: str | None) -> None:
        v = n.value
        if isinstance(v, dict):
            for k, child in n.items():
                walk(child, k)
        elif isinstance(v, list):
            for child in n.elements():
                walk(child, key)
        elif isinstance(v, str) and ("://" in v or key in _HOST_KEYS):
            host = _host_of(v)
            if host is not None and host not in allowed and not _is_loopback(host):
                raise n.fail(
                    "a loopback target (127.0.0.0/8, ::1 or localhost)",
                    "the harness only sends traffic to this machine",
                )

    walk(node, None)


# --------------------------------------------------------------------------- system


@functools.lru_cache(maxsize=16)
def _topology_file(path: str, mtime_ns: int) -> Node:
    return Node.load(path)


@functools.lru_cache(maxsize=64)
def _topology_cached(path: str, mtime_ns: int, profile: str | None, params: str) -> Topology:
    return load_topology(path, profile=profile, params=json.loads(params))


def _topology(path: Path, profile: str | None, params: Mapping[str, Any]) -> Topology:
    """A loaded topology, cached by file, mtime, profile and params (the YAML parse is slow)."""
    key = json.dumps(dict(params), sort_keys=True)
    return _topology_cached(str(path), path.stat().st_mtime_ns, profile, key)


def _system(node: Node, base: Path) -> System:
    node.mapping()
    topo_path = REFERENCE
    if node.has("topology"):
        t = node.key("topology")
        text = t.str()
        if text != "reference":
            topo_path = (base / text).resolve()
            if not topo_path.is_file():
                raise t.fail("'reference' or a topology file (relative to the experiment file)")
    raw = _topology_file(str(topo_path), topo_path.stat().st_mtime_ns)
    defaults: dict[str, Any] = dict(raw.key("params", {}).mapping())
    profiles = tuple(raw.key("profiles", {}).mapping())
    fixed = {"topology", "profile", "backend", "host", "params", "capacity_from"}
    param_keys = set(defaults) - fixed
    node.no_unknown_keys(frozenset(fixed | param_keys))

    profile = None
    if node.has("profile"):
        p = node.key("profile")
        if not profiles:
            raise p.fail("no profile: the topology declares none")
        profile = p.choice(profiles)
    backend = node.key("backend", "local").choice(BACKENDS)
    host = node.key("host", "127.0.0.1").str()
    # C is the capacity of the system as built (the reference's naive profile), and every
    # profile meets the same absolute load: Xi'an's morning was "10x the previous peak",
    # whatever system was running; a hardened one must absorb it with the same hardware.
    capacity_from: str | None = "naive" if "naive" in profiles else None
    if node.has("capacity_from"):
        c = node.key("capacity_from")
        capacity_from = None if c.value == "own" else c.choice((*profiles, "own"))

    params: dict[str, Any] = {}
    given = [(k, n) for k, n in node.items() if k in param_keys]
    if node.has("params"):
        pnode = node.key("params")
        pnode.no_unknown_keys(frozenset(defaults))
        given += list(pnode.items())
    for key, n in given:
        if key in params:
            raise n.fail("each parameter once", f"{key} is given twice")
        params[key] = _param(n, defaults[key], topo_path == REFERENCE and key == "overrides")

    for p in (profile,) if profile else profiles or (None,):
        try:
            _topology(topo_path, p, params)
        except ConfigError as e:
            raise node.fail(f"parameters topology {topo_path.name} accepts", str(e)) from None
    return System(
        topo_path,
        profile,
        backend,  # type: ignore[arg-type]
        host,
        MappingProxyType(params),
        profiles,
        capacity_from,
    )


def _param(node: Node, default: Any, reference_overrides: bool) -> Any:
    if isinstance(default, bool):
        return node.bool()
    if isinstance(default, int):
        return node.int(minimum=0)
    if isinstance(default, float):
        return node.number()
    if isinstance(default, str):
        return node.str()
    if isinstance(default, dict):
        value = node.mapping()
        if reference_overrides:
            from reference_system.settings import SettingsError, known_keys, parse_overrides

            for k, v in node.items():
                if k not in known_keys():
                    raise ConfigError(
                        v.source, v.path, k, f"one of {known_keys()}", "unknown setting"
                    )
                try:
                    parse_overrides(json.dumps({k: v.value}))
                except SettingsError as e:
                    raise v.fail("a valid value", str(e).split("; ")[-1]) from None
        return dict(value)
    if isinstance(default, list):
        return [e.value for e in node.elements()]
    return node.value


# --------------------------------------------------------------------------- workload

_WORKLOAD_KEYS = frozenset(
    {"duration", "compression", "rate", "mix", "clients", "population", "reread"}
)
_STEP_KEYS = frozenset({"at", "x", "rps", "ramp_to", "over", "phase"})


def _workload(node: Node) -> WorkloadSpec:
    node.no_unknown_keys(_WORKLOAD_KEYS)
    duration = parse_duration(node.key("duration"), positive=True)
    compression = node.key("compression", 1).number()
    if compression <= 0:
        raise node.key("compression").fail("a number > 0 (10 plays the schedule 10x faster)")
    steps = _rate(node.key("rate"), duration)
    mix = _mix(node.key("mix")) if node.has("mix") else NORMAL_DAY
    clients = _clients(node.key("clients")) if node.has("clients") else DEFAULT_CLIENTS
    population = _population(node.key("population", {}))
    reread = _reread(node.key("reread")) if node.has("reread") else Reread()
    return WorkloadSpec(duration, steps, compression, mix, clients, population, reread)


def _rate_value(node: Node, unit_from: Rate | None = None) -> Rate:
    """`{x: N}`, `{rps: N}`, or a bare number in the unit of `unit_from`."""
    if isinstance(node.value, dict):
        node.no_unknown_keys({"x", "rps"})
        if len(node.mapping()) != 1:
            raise node.fail("exactly one of {x: N} (multiples of C) or {rps: N}")
        k, v = next(node.items())
        value = v.number(minimum=0)
        return x(value) if k == "x" else rps(value)
    if unit_from is None:
        raise node.fail("{x: N} or {rps: N}")
    value = node.number(minimum=0)
    return x(value) if unit_from.relative else rps(value)


def _rate(node: Node, duration: float) -> tuple[RateStep, ...]:
    elements = [node] if isinstance(node.value, dict) else list(node.elements())
    if not elements:
        raise node.fail("a non-empty list of rate phases, e.g. [{at: 0s, x: 0.2}]")
    steps: list[RateStep] = []
    seen_phases: set[str] = set()
    for i, el in enumerate(elements):
        el.no_unknown_keys(_STEP_KEYS)
        m = el.mapping()
        kinds = [k for k in ("x", "rps", "ramp_to") if k in m]
        if len(kinds) != 1:
            raise el.fail("exactly one of x: (multiples of C), rps: or ramp_to:")
        at_node = el.key("at", 0) if i == 0 else el.key("at")
        at = parse_duration(at_node)
        if i == 0 and at != 0:
            raise at_node.fail("0s: the first rate phase starts the workload")
        if steps and at <= steps[-1].at:
            raise at_node.fail(f"a time after the previous phase's at={steps[-1].at:g}s")
        if at >= duration:
            raise at_node.fail(f"a time before the workload's duration ({duration:g}s)")
        end = duration if i + 1 == len(elements) else None
        over = None
        if kinds[0] == "ramp_to":
            if not steps:
                raise el.key("ramp_to").fail(
                    "a rate before the ramp", "start with e.g. {at: 0s, x: 0.2}"
                )
            rate = _rate_value(el.key("ramp_to"), steps[-1].rate)
            over = parse_duration(el.key("over"), positive=True)
            if end is not None and over > end - at:
                raise el.key("over").fail(f"at most {end - at:g}s (until the workload ends)")
        else:
            if "over" in m:
                raise el.key("over").fail("no 'over' (it belongs to ramp_to)")
            v = el.key(kinds[0]).number(minimum=0)
            rate = x(v) if kinds[0] == "x" else rps(v)
        phase = None
        if "phase" in m:
            pn = el.key("phase")
            phase = pn.str()
            if not _IDENT.match(phase) or phase == "all":
                raise pn.fail("a lowercase phase name like 'surge' (not 'all')")
            if phase in seen_phases and steps[-1].phase != phase:
                raise pn.fail("a phase name used by consecutive entries only")
            seen_phases.add(phase)
        if steps and steps[-1].over is not None and at - steps[-1].at < steps[-1].over:
            raise (
                elements[i - 1]
                .key("over")
                .fail(f"at most {at - steps[-1].at:g}s: the next phase starts at {at:g}s")
            )
        steps.append(RateStep(at, rate, over, phase))
    return tuple(steps)


def _mix(node: Node) -> Mix:
    if isinstance(node.value, str):
        preset = node.choice(("normal_day", "mass_testing_day"))
        return NORMAL_DAY if preset == "normal_day" else MASS_TESTING_DAY
    node.no_unknown_keys(frozenset(OPS))
    shares = {op: node.key(op).number(minimum=0) if node.has(op) else 0.0 for op in OPS}
    if sum(shares.values()) <= 0:
        raise node.fail("at least one operation with a share > 0")
    return Mix(**shares)


def _share(node: Node) -> float:
    if isinstance(node.value, str):
        return parse_fraction(node)
    return node.number(minimum=0)


def _span(node: Node) -> tuple[float, float]:
    if isinstance(node.value, list):
        items = list(node.elements())
        if len(items) != 2:
            raise node.fail("[low, high] durations, e.g. [2s, 5s]")
        lo, hi = parse_duration(items[0]), parse_duration(items[1])
        if hi < lo:
            raise items[1].fail(f"a duration >= {lo:g}s (the low end)")
        return lo, hi
    d = parse_duration(node)
    return d, d


_BEHAVIOUR_KEYS: dict[str, frozenset[str]] = {
    "good": frozenset(
        {
            "timeout",
            "max_retries",
            "backoff_base",
            "backoff_cap",
            "honour_retry_after",
            "max_retry_after",
            "budget",
            "failover",
        }
    ),
    "impatient": frozenset({"patience", "pause", "max_attempts"}),
    "buggy": frozenset({"timeout", "max_attempts"}),
    "abuser": frozenset({"identities", "rate", "timeout"}),
}


def _behaviour(kind: str, node: Node) -> Behaviour:
    m = node.mapping()

    def dur(key: str) -> dict[str, float]:
        return {key: parse_duration(node.key(key), positive=True)} if key in m else {}

    def num(key: str, minimum: int) -> dict[str, int]:
        return {key: node.key(key).int(minimum=minimum)} if key in m else {}

    def flag(key: str) -> dict[str, bool]:
        return {key: node.key(key).bool()} if key in m else {}

    if kind == "good":
        kw: dict[str, Any] = {
            **dur("timeout"),
            **num("max_retries", 0),
            **dur("backoff_base"),
            **dur("backoff_cap"),
            **flag("honour_retry_after"),
            **dur("max_retry_after"),
            **flag("failover"),
        }
        if "budget" in m:
            b = node.key("budget")
            if b.value is False or b.value is None:
                kw["budget"] = None
            else:
                b.no_unknown_keys({"ratio", "min_per_s", "burst"})
                kw["budget"] = RetryBudget(
                    ratio=b.key("ratio", 0.1).number(minimum=0),
                    min_per_s=b.key("min_per_s", 10.0).number(minimum=0),
                    burst=b.key("burst", 100.0).number(minimum=0),
                )
        return Good(**kw)
    if kind == "impatient":
        kw = {**num("max_attempts", 1)}
        for key in ("patience", "pause"):
            if key in m:
                kw[key] = _span(node.key(key))
        return Impatient(**kw)
    if kind == "buggy":
        return Buggy(**dur("timeout"), **num("max_attempts", 1))
    kw = {**num("identities", 1), **dur("timeout")}
    if "rate" in m:
        kw["rate"] = _rate_value(node.key("rate"))
    return Abuser(**kw)


def _clients(node: Node) -> tuple[ClientClass, ...]:
    node.mapping()
    out: list[ClientClass] = []
    for name, cn in node.items():
        if not _IDENT.match(name):
            raise ConfigError(cn.source, cn.path, name, "a lowercase client class name")
        if not isinstance(cn.value, dict):
            cn = Node({"share": cn.value}, cn.source, cn.path)
        m = cn.mapping()
        if "behaviour" in m:
            kind = cn.key("behaviour").choice(tuple(_BEHAVIOUR_KEYS))
        elif name in _BEHAVIOUR_KEYS:
            kind = name
        else:
            raise ConfigError(
                cn.source,
                f"{cn.path}.behaviour",
                None,
                f"one of {list(_BEHAVIOUR_KEYS)}",
                f"class {name!r} is not named after a behaviour, so it needs one",
            )
        cn.no_unknown_keys(_BEHAVIOUR_KEYS[kind] | {"share", "behaviour"})
        behaviour = _behaviour(kind, cn)
        fixed_rate = isinstance(behaviour, Abuser) and behaviour.rate is not None
        if "share" in m:
            share = _share(cn.key("share"))
            if fixed_rate and share:
                raise cn.key("share").fail(
                    "0 (or no share): an abuser with a rate sends its own stream"
                )
        elif fixed_rate:
            share = 0.0
        else:
            raise ConfigError(cn.source, f"{cn.path}.share", None, "a share >= 0 (required)")
        out.append(ClientClass(name, share, behaviour))
    if not out:
        raise node.fail("at least one client class")
    if sum(c.share for c in out) <= 0:
        raise node.fail("client shares summing to more than 0")
    return tuple(out)


_POPULATION: dict[str, Callable[[Node], Any]] = {
    "people": lambda n: n.int(minimum=1),
    "venues": lambda n: n.int(minimum=1),
    "zipf_s": lambda n: n.number(minimum=0),
    "labs": lambda n: n.int(minimum=1),
    "batch_size": lambda n: n.int(minimum=1),
    "positive_rate": parse_fraction,
}


def _population(node: Node) -> Population:
    node.no_unknown_keys(frozenset(_POPULATION))
    return Population(**{k: _POPULATION[k](n) for k, n in node.items()})


def _reread(node: Node) -> Reread | None:
    """`{share: 1.0, count: 2, delay: [200ms, 2s]}` (every key optional), `true` for the
    defaults, or `false` for no re-reads."""
    if isinstance(node.value, bool):
        return Reread() if node.value else None
    if not isinstance(node.value, dict):
        raise node.fail("{share: 1.0, count: 2, delay: [200ms, 2s]}, true or false")
    node.no_unknown_keys(frozenset({"share", "count", "delay"}))
    kw: dict[str, Any] = {}
    if node.has("share"):
        kw["share"] = parse_fraction(node.key("share"))
    if node.has("count"):
        kw["count"] = node.key("count").int(minimum=0)
    if node.has("delay"):
        kw["delay"] = _span(node.key("delay"))
    return Reread(**kw)


# --------------------------------------------------------------------------- faults


def parse_faults(node: Node, duration: float, system: System) -> tuple[ScheduledFault, ...]:
    """The `faults:` list through the fault layer, checked against every profile's topology.

    A fault must name links and components that exist under every profile the experiment
    runs, start before the workload ends and heal (`for`) before it ends.
    """
    if node.value is None:
        return ()
    node.elements()  # a list, or a clear error
    runs = (system.profile,) if system.profile else system.profiles_available or (None,)
    schedule = parse_schedule(node)  # mistakes that do not depend on the topology first
    for profile in runs:
        topology = _topology(system.topology, profile, system.params)
        try:
            schedule = parse_schedule(node, topology)
        except ConfigError as e:
            if profile is None:
                raise
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


# --------------------------------------------------------------------------- search (issue 9)

_SEARCH_KEYS = frozenset(
    {
        "kinds",
        "targets",
        "max_faults",
        "min_faults",
        "window",
        "duration",
        "magnitudes",
        "examples",
        "budget",
        "replays",
        "must_fail",
    }
)


def _search(node: Node, duration: float, system: System) -> Search:
    """`search:` - a space of fault schedules and how hard to look (harness.search)."""
    node.mapping()
    node.no_unknown_keys(_SEARCH_KEYS)
    kinds: tuple[str, ...] = KIND_ORDER
    if node.has("kinds"):
        kn = node.key("kinds")
        kinds = tuple(el.choice(KIND_ORDER) for el in kn.elements())
        if not kinds:
            raise kn.fail(f"a non-empty list of fault kinds among {list(KIND_ORDER)}")
    targets: tuple[str, ...] = ()
    if node.has("targets"):
        targets = node.key("targets").str_list()
    max_faults = node.key("max_faults", 2).int(minimum=1, maximum=10)
    min_faults = node.key("min_faults", 1).int(minimum=0, maximum=max_faults)
    window = _span(node.key("window")) if node.has("window") else (0.0, duration / 2)
    if window[1] >= duration:
        raise node.key("window").fail(
            f"[from, to] with 'to' before the workload ends ({duration:g}s)"
        )
    span = _span(node.key("duration")) if node.has("duration") else (1.0, duration / 4)
    magnitudes = dict(MAGNITUDES)
    if node.has("magnitudes"):
        mn = node.key("magnitudes")
        mn.no_unknown_keys(frozenset(MAGNITUDES))
        for kind, rn in mn.items():
            items = list(rn.elements())
            default = MAGNITUDES[kind]
            if len(items) != 2:
                raise rn.fail(f"[low, high] in {default.key}, e.g. [{default.low}, {default.high}]")
            lo, hi = items[0].int(minimum=0), items[1].int(minimum=0)
            if hi < lo:
                raise items[1].fail(f"a number >= {lo} (the low end)")
            magnitudes[kind] = replace(default, low=lo, high=hi)
    examples = node.key("examples", 15).int(minimum=1)
    budget = parse_duration(node.key("budget"), positive=True) if node.has("budget") else 300.0
    replays = node.key("replays", 2).int(minimum=1, maximum=10)
    must_fail = node.key("must_fail", min(2, replays)).int(minimum=1, maximum=replays)
    try:
        space = SearchSpace(
            kinds=kinds,
            targets=targets,
            max_faults=max_faults,
            min_faults=min_faults,
            window=window,
            duration=span,
            magnitudes=MappingProxyType(magnitudes),
            end=duration,
        )
    except ValueError as e:
        raise node.fail("a valid search space", str(e)) from None
    runs = (system.profile,) if system.profile else system.profiles_available or (None,)
    for profile in runs:
        topology = _topology(system.topology, profile, system.params)
        for i, target in enumerate(targets):
            try:
                if "->" in target:
                    resolve_links(topology, target)
                else:
                    resolve_components(topology, target)
            except FaultError as e:
                where = Node(target, node.source, f"{node.path}.targets[{i}]")
                raise where.fail(
                    "a link 'source->target' or a component (or group) of the topology",
                    f"{e}" + (f" (profile {profile!r})" if profile else ""),
                ) from None
        try:
            fault_schedules(space, topology=topology)
        except ValueError as e:
            raise node.fail("kinds with at least one target", str(e)) from None
    return Search(space, examples, budget, replays, must_fail)


# --------------------------------------------------------------------------- expect


def _expectation(node: Node, ids: set[str]) -> Expectation:
    if isinstance(node.value, str):
        outcome = node.choice(("pass", "skip"))
        return Expectation(outcome)  # type: ignore[arg-type]
    node.no_unknown_keys({"fail"})
    names = node.key("fail")
    failing = []
    for el in names.elements():
        if el.value not in ids:
            raise el.fail(f"an invariant id among {sorted(ids)}", "unknown invariant")
        failing.append(el.value)
    if not failing:
        raise names.fail("a non-empty list of invariant ids that must fail")
    return Expectation("fail", tuple(failing))


def _expect(
    node: Node, system: System, invariants: tuple[Invariant, ...]
) -> dict[str, Expectation]:
    ids = {i.id for i in invariants}
    runs = (system.profile,) if system.profile else system.profiles_available
    v = node.value
    if isinstance(v, str) or (isinstance(v, dict) and set(v) == {"fail"}):
        one = _expectation(node, ids)
        return {p: one for p in runs} if runs else {"": one}
    out = {}
    for profile, en in node.items():
        if profile not in runs:
            expected = (
                f"a profile this experiment runs: {list(runs)}"
                if runs
                else "no profiles (the topology has none): write 'expect: pass' directly"
            )
            raise ConfigError(en.source, en.path, profile, expected, "unknown profile")
        out[profile] = _expectation(en, ids)
    return out
