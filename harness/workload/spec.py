"""The `workload:` section of an experiment: what it says, validated against the system's
declared operations, and turned into a `Workload`.

```yaml
workload:
  duration: 40s                     # required; experiment time
  compression: 10                   # optional (1): play the schedule 10x faster
  rate:                             # required: phases, each from its `at` to the next one's
    - {at: 0s, x: 0.2, phase: steady}                    # x: multiple of capacity C
    - {at: 5s, ramp_to: 2.0, over: 5s, phase: ramp}      # ramp from the previous rate, then hold
    - {at: 10s, x: 2.0, phase: surge}                    # ramp_to: N uses the previous unit,
    - {at: 25s, rps: 100, phase: recovery}               #   or {x: N} / {rps: N}; rps: absolute
    - {at: 30s, x_own: 2.0, phase: overload}             # x_own: multiple of the running
                                                         #   profile's own capacity
  mix: normal_day                   # a mix the system declares, or {op: share, ...}
  clients:                          # class name -> share, or a mapping with share and behaviour
    impatient: 0.94                 #   the names good/impatient/buggy/abuser imply the behaviour
    buggy: {share: 0.05, max_attempts: 50, timeout: 10s}
    abuser: {share: 0, rate: {rps: 50}, identities: 3}  # its own fixed-rate stream
                                    #   (rate: {x: N}, {rps: N} or {x_own: N})
    apps: {behaviour: good, share: 0.01, timeout: 3s, max_retries: 2, budget: false}
  values: {person: {int: [1, 1000]}}  # optional: replace the system's value generators
  followups: true                   # optional: the operations' declared follow-ups (default on)
```

C is the capacity the experiment's rates are relative to: the system as built (the
topology's `capacity_from:`), whatever profile runs, so every profile meets the same
absolute load. `x_own: N` is N times the capacity of the profile that runs, calibrated
and cached for each profile as C is: a load that must overwhelm whichever profile runs,
so that its own protection (a rate limit, admission control) has to act. A run whose C
already is its own capacity (`capacity_from: own`) reads `x_own` as `x`.

Bounds (`MAX_DURATION`, `MAX_X`, `MAX_RPS`, `MAX_COMPRESSION`) keep a typo from running a
day-long or machine-filling load; `HARNESS_MAX_RPS` and `HARNESS_MAX_DURATION` (seconds)
raise them for those who need more.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from harness.errors import ConfigError
from harness.generators import Generator, parse_generator
from harness.operations import Mix, Operations, parse_mix
from harness.validate import Node
from harness.values import parse_duration, parse_fraction, parse_span
from harness.workload.clients import (
    DEFAULT_CLIENTS,
    Abuser,
    Behaviour,
    Buggy,
    ClientClass,
    Good,
    Impatient,
    RetryBudget,
)
from harness.workload.rates import Constant, Ramp, Rate, Segment, Series, rps, x, x_own
from harness.workload.schedule import Schedule, Workload

__all__ = [
    "MAX_COMPRESSION",
    "MAX_DURATION",
    "MAX_RPS",
    "MAX_X",
    "RateStep",
    "WorkloadSpec",
    "parse_rate",
    "parse_workload",
]

MAX_DURATION = float(os.environ.get("HARNESS_MAX_DURATION", 3600))  # experiment seconds
MAX_RPS = float(os.environ.get("HARNESS_MAX_RPS", 200_000))  # absolute, any phase
MAX_X = 100.0  # multiples of C
MAX_COMPRESSION = 100.0
_IDENT = re.compile(r"^[a-z][a-z0-9_]{0,63}$")  # at most 64 characters
_KEYS = frozenset({"duration", "compression", "rate", "mix", "clients", "values", "followups"})
_STEP_KEYS = frozenset({"at", "x", "x_own", "rps", "ramp_to", "over", "phase"})
_UNITS = ("x", "x_own", "rps")  # the keys of a rate


@dataclass(frozen=True)
class RateStep:
    """One entry of `workload.rate`: from `at` (experiment s), a rate or a ramp to it."""

    at: float
    rate: Rate
    over: float | None = None  # a ramp from the previous rate over this many seconds
    phase: str | None = None


@dataclass(frozen=True)
class WorkloadSpec:
    """The workload as written: duration, compression, rate steps, mix, clients, value
    generators replacing the system's, and whether declared follow-ups run."""

    duration: float
    rate: tuple[RateStep, ...]
    compression: float = 1.0
    mix: Mix | None = None  # None: the system's default mix
    clients: tuple[ClientClass, ...] = DEFAULT_CLIENTS
    values: Mapping[str, Generator] = field(default_factory=dict)
    followups: bool = True

    def segments(self) -> Series:
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
        return Series(tuple(out))

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

    def workload(self, operations: Operations, seed: int = 0, tag: str = "") -> Workload:
        """This workload on a system's operations (rates still relative to C)."""
        return Workload(
            self.segments(),
            with_values(operations, self.values),
            self.mix,
            self.clients,
            seed=seed,
            tag=tag,
            followups=self.followups,
        )

    def schedule(
        self,
        operations: Operations,
        capacity: float | None,
        seed: int = 0,
        tag: str = "",
        own_capacity: float | None = None,
    ) -> Schedule:
        """The arrival schedule against capacity C (and `x_own` rates against the running
        profile's `own_capacity`), compressed as written."""
        return self.workload(operations, seed, tag).schedule(
            capacity, self.compression, own_capacity
        )

    def rates(self) -> tuple[Rate, ...]:
        """Every rate the workload names: its phases and the abusers' own streams."""
        rates = [s.rate for s in self.rate]
        for c in self.clients:
            if isinstance(c.behaviour, Abuser) and c.behaviour.rate is not None:
                rates.append(c.behaviour.rate)
        return tuple(rates)

    @property
    def absolute(self) -> bool:
        """True when no rate is relative to a capacity (no calibration needed)."""
        return not any(r.relative for r in self.rates())

    @property
    def needs_own(self) -> bool:
        """True when some rate is a multiple of the running profile's own capacity."""
        return any(r.own for r in self.rates())


def with_values(operations: Operations, values: Mapping[str, Generator]) -> Operations:
    """`operations` with the named value generators replaced wherever they are drawn."""
    if not values:
        return operations
    ops = {
        name: replace(
            op,
            generators=MappingProxyType({v: values.get(v, g) for v, g in op.generators.items()}),
        )
        for name, op in operations.ops.items()
    }
    return replace(operations, ops=MappingProxyType(ops))


def parse_workload(node: Node, operations: Operations, base: Path | None = None) -> WorkloadSpec:
    """The `workload:` mapping, checked against the system's `operations`."""
    node.no_unknown_keys(_KEYS)
    duration = parse_duration(node.key("duration"), positive=True, maximum=MAX_DURATION)
    compression = 1.0
    if node.has("compression"):
        cn = node.key("compression")
        compression = cn.number()
        if not 0 < compression <= MAX_COMPRESSION:
            raise cn.fail(
                f"a number in (0, {MAX_COMPRESSION:g}] (10 plays the schedule 10x faster)"
            )
    steps = _rate(node.key("rate"), duration)
    mix = _mix(node.key("mix"), operations) if node.has("mix") else None
    clients = _clients(node.key("clients")) if node.has("clients") else DEFAULT_CLIENTS
    values: dict[str, Generator] = {}
    if node.has("values"):
        drawn = {v for op in operations.ops.values() for v in op.draws}
        for name, gn in node.key("values").items():
            if name not in drawn:
                raise ConfigError(
                    gn.source, gn.path, name, f"a value the system draws, among {sorted(drawn)}"
                )
            values[name] = parse_generator(gn, name, base)
    followups = node.key("followups", True).bool()
    return WorkloadSpec(
        duration, steps, compression, mix, clients, MappingProxyType(values), followups
    )


def _mix(node: Node, operations: Operations) -> Mix:
    if isinstance(node.value, str):
        if not operations.mixes:
            raise node.fail("a mapping {op: share}: the system declares no named mixes")
        return operations.mixes[node.choice(tuple(operations.mixes))]
    return parse_mix(node, operations.names)


def _share(node: Node) -> float:
    if isinstance(node.value, str):
        return parse_fraction(node)
    return node.number(minimum=0)


def _rate_number(node: Node, relative: bool) -> float:
    return node.number(minimum=0, maximum=MAX_X if relative else MAX_RPS)


def _rate_of(unit: str, node: Node) -> Rate:
    """A rate in one of `_UNITS` from its number."""
    value = _rate_number(node, unit != "rps")
    return rps(value) if unit == "rps" else x_own(value) if unit == "x_own" else x(value)


def _unit(rate: Rate) -> str:
    return "x_own" if rate.own else "x" if rate.relative else "rps"


def parse_rate(node: Node, unit_from: Rate | None = None) -> Rate:
    """`{x: N}`, `{x_own: N}`, `{rps: N}`, or a bare number in the unit of `unit_from`."""
    expected = (
        "exactly one of {x: N} (multiples of C), {x_own: N} (multiples of the running"
        " profile's own capacity) or {rps: N}"
    )
    if isinstance(node.value, dict):
        node.no_unknown_keys(frozenset(_UNITS))
        if len(node.mapping()) != 1:
            raise node.fail(expected)
        k, v = next(node.items())
        return _rate_of(k, v)
    if unit_from is None:
        raise node.fail(expected)
    return _rate_of(_unit(unit_from), node)


def _rate(node: Node, duration: float) -> tuple[RateStep, ...]:
    elements = [node] if isinstance(node.value, dict) else list(node.elements())
    if not elements:
        raise node.fail("a non-empty list of rate phases, e.g. [{at: 0s, x: 0.2}]")
    steps: list[RateStep] = []
    seen_phases: set[str] = set()
    for i, el in enumerate(elements):
        el.no_unknown_keys(_STEP_KEYS)
        m = el.mapping()
        kinds = [k for k in (*_UNITS, "ramp_to") if k in m]
        if len(kinds) != 1:
            raise el.fail(
                "exactly one of x: (multiples of C), x_own: (multiples of the running"
                " profile's own capacity), rps: or ramp_to:",
                f"found {kinds}" if kinds else "",
            )
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
            rate = parse_rate(el.key("ramp_to"), steps[-1].rate)
            over = parse_duration(el.key("over"), positive=True)
            if end is not None and over > end - at:
                raise el.key("over").fail(f"at most {end - at:g}s (until the workload ends)")
        else:
            if "over" in m:
                raise el.key("over").fail("no 'over' (it belongs to ramp_to)")
            rate = _rate_of(kinds[0], el.key(kinds[0]))
        phase = None
        if "phase" in m:
            pn = el.key("phase")
            phase = pn.str()
            if not _IDENT.match(phase) or phase == "all":
                raise pn.fail("a lowercase phase name like 'surge' (not 'all'), at most 64 long")
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

    def dur(key: str) -> dict[str, Any]:
        return {key: parse_duration(node.key(key), positive=True)} if key in m else {}

    def num(key: str, minimum: int) -> dict[str, Any]:
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
                kw[key] = parse_span(node.key(key))
        return Impatient(**kw)
    if kind == "buggy":
        return Buggy(**dur("timeout"), **num("max_attempts", 1))
    kw = {**num("identities", 1), **dur("timeout")}
    if "rate" in m:
        kw["rate"] = parse_rate(node.key("rate"))
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
