"""Hypothesis strategies that generate fault schedules: the same data an experiment's
``faults:`` list holds (tuples of :class:`~harness.faults.ScheduledFault`), within a space
the user bounds.

    from hypothesis import given
    from harness.search.space import SearchSpace, fault_schedules

    space = SearchSpace(kinds=("latency", "kill"), targets=("app->postgres", "app-1"),
                        max_faults=2, window=(2.0, 12.0), duration=(1.0, 8.0))

    @given(schedule=fault_schedules(space, topology=load_topology(profile="hardened")))
    def test_survives(schedule, run_schedule_on_system): ...

The draws are laid out so that Hypothesis's own shrinking goes where a person debugging
would want it to: **fewer** faults (a list shrinks by deleting elements), **milder kinds**
(kinds are tried in the order of :data:`KIND_ORDER`, mildest first, unless the space
lists its own order), **later** (a fault's time is drawn as its *earliness*: 0 is the end
of the window), **shorter** (0 is the shortest duration) and **weaker** (a magnitude is
drawn as a level, 0 the weakest end of its range). Times move in steps of
:data:`TIME_STEP` seconds and magnitudes in :data:`LEVELS` geometric levels, so a shrunk
schedule reads cleanly and shrinking needs few steps (each step is a real run).

Every toxic runs with ``toxicity: 1`` and no jitter so that a schedule replays the same
faults (Toxiproxy's own random draws cannot be seeded). Times are experiment seconds,
like the YAML file; :func:`to_yaml` writes a schedule back as ``faults:`` entries.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from hypothesis import strategies as st

from harness.faults import (
    Bandwidth,
    Crash,
    DbLoss,
    FaultError,
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
    resolve_components,
    resolve_links,
)
from harness.topology import Topology
from harness.validate import Node
from harness.values import parse_duration, parse_span

__all__ = [
    "KIND_ORDER",
    "LEVELS",
    "LINK_KINDS",
    "MAGNITUDES",
    "TIME_STEP",
    "UNSEARCHED",
    "Magnitude",
    "SearchSpace",
    "SearchSpec",
    "describe",
    "fault_schedules",
    "parse_search",
    "schedule_key",
    "scheduled_faults",
    "targets_for",
    "to_yaml",
]

TIME_STEP = 0.5  # seconds of experiment time between drawn instants and durations
LEVELS = 6  # magnitude levels from the weakest to the strongest end of a range

# Mildest first: shrinking moves towards the front of this order.
KIND_ORDER: tuple[str, ...] = (
    "latency",
    "bandwidth",
    "slicer",
    "slow_close",
    "limit_data",
    "reset_peer",
    "timeout",
    "down",
    "pause",
    "kill",
    "crash",
    "restart",
    "db_loss",
)
# Fault kinds the search leaves out, and why.
UNSEARCHED: dict[str, str] = {
    "lose_unsynced": "acts only on directories that the topology's parameters put on LazyFS",
}
LINK_KINDS = frozenset(
    {"latency", "bandwidth", "slicer", "slow_close", "limit_data", "reset_peer", "timeout", "down"}
)
INSTANT_KINDS = frozenset({"restart", "db_loss"})  # no duration: they act once


@dataclass(frozen=True)
class Magnitude:
    """How strong a fault is: its YAML key, the range, and which end is the weak one."""

    key: str
    low: int
    high: int
    stronger: str = "up"  # "up": larger is stronger; "down": smaller is stronger

    def value(self, level: int, levels: int = LEVELS) -> int:
        """The magnitude at ``level`` (0 = weakest) of ``levels``, geometric when it can be."""
        if self.low == self.high or levels <= 1:
            return self.low
        frac = min(max(level, 0), levels - 1) / (levels - 1)
        if self.stronger == "down":
            frac = 1.0 - frac
        if self.low > 0:
            v = self.low * (self.high / self.low) ** frac
        else:
            v = self.low + (self.high - self.low) * frac
        return round(v)


MAGNITUDES: dict[str, Magnitude] = {
    "latency": Magnitude("ms", 50, 2000, "up"),
    "bandwidth": Magnitude("kb_per_s", 1, 1000, "down"),
    "slicer": Magnitude("average_bytes", 1, 1024, "down"),
    "slow_close": Magnitude("delay_ms", 100, 5000, "up"),
    "limit_data": Magnitude("bytes", 0, 100_000, "down"),
    "reset_peer": Magnitude("after_ms", 0, 1000, "down"),
    "timeout": Magnitude("ms", 500, 5000, "up"),
}


@dataclass(frozen=True)
class SearchSpace:
    """The bounds of a search: which kinds, on which targets, how many, when, how long,
    how strong. Times are experiment seconds. ``targets`` empty: every link and component
    of the topology (no hint where to look)."""

    kinds: tuple[str, ...] = KIND_ORDER
    targets: tuple[str, ...] = ()
    max_faults: int = 2
    min_faults: int = 1
    window: tuple[float, float] = (0.0, 10.0)
    duration: tuple[float, float] = (1.0, 8.0)
    magnitudes: Mapping[str, Magnitude] = field(default_factory=lambda: dict(MAGNITUDES))
    end: float | None = None  # the workload's duration: every fault heals by then

    def __post_init__(self) -> None:
        unknown = [k for k in self.kinds if k not in KIND_ORDER]
        if unknown:
            raise ValueError(f"unknown fault kinds {unknown}; expected some of {list(KIND_ORDER)}")
        if not self.kinds:
            raise ValueError("a search space needs at least one fault kind")
        if not 0 <= self.min_faults <= self.max_faults:
            raise ValueError(
                f"expected 0 <= min_faults <= max_faults, got {self.min_faults}, {self.max_faults}"
            )
        for name, (lo, hi) in (("window", self.window), ("duration", self.duration)):
            if not 0 <= lo <= hi:
                raise ValueError(f"{name}: expected 0 <= low <= high, got [{lo:g}, {hi:g}]")
        if self.end is not None and self.window[1] >= self.end:
            raise ValueError(
                f"window ends at {self.window[1]:g}s, not before the workload ends ({self.end:g}s)"
            )

    def magnitude(self, kind: str) -> Magnitude | None:
        return self.magnitudes.get(kind, MAGNITUDES.get(kind))


# --------------------------------------------------------------------------- targets


def _all_targets(topology: Topology) -> tuple[str, ...]:
    links = tuple(link.name for link in topology.links)
    comps = tuple(c.name for c in topology.components)
    return links + comps


def targets_for(kind: str, space: SearchSpace, topology: Topology | None) -> tuple[str, ...]:
    """The targets of ``space`` a fault of ``kind`` can act on (in the space's order)."""
    given = space.targets or (_all_targets(topology) if topology is not None else ())
    links = tuple(t for t in given if "->" in t)
    comps = tuple(t for t in given if "->" not in t)
    if kind in LINK_KINDS:
        return links
    if topology is None:
        return comps

    def members(spec: str) -> tuple[str, ...]:
        try:
            return resolve_components(topology, spec)
        except Exception:
            return ()

    if kind == "crash":
        gateways = {c.name for c in topology.entrypoints}
        return tuple(t for t in comps if members(t) and set(members(t)) <= gateways)
    if kind == "db_loss":
        # a primary: a PostgreSQL component that links lead to (a standby is not a target)
        targets = {link.target for link in topology.links}
        return tuple(
            t for t in comps if t in targets and topology.component(t).probe.kind == "postgres"
        )
    return tuple(t for t in comps if members(t))


# --------------------------------------------------------------------------- faults


def _fault(kind: str, target: str, strength: int | None) -> Any:
    if kind == "latency":
        return Latency(link=target, latency=int(strength or 0))
    if kind == "bandwidth":
        return Bandwidth(link=target, rate=int(strength or 0))
    if kind == "slicer":
        # a delay between slices makes the slicing observable (and a fault at all)
        return Slicer(link=target, average_size=max(1, int(strength or 1)), delay=1000)
    if kind == "slow_close":
        return SlowClose(link=target, delay=int(strength or 0))
    if kind == "limit_data":
        return LimitData(link=target, bytes=int(strength or 0))
    if kind == "reset_peer":
        return ResetPeer(link=target, timeout=int(strength or 0))
    if kind == "timeout":
        return Timeout(link=target, timeout=int(strength or 0))
    if kind == "down":
        return LinkDown(link=target)
    if kind == "kill":
        return Kill(component=target)
    if kind == "crash":
        return Crash(component=target)
    if kind == "pause":
        return Pause(component=target)
    if kind == "restart":
        return Restart(component=target)
    if kind == "db_loss":
        return DbLoss(component=target)
    raise ValueError(f"unknown fault kind {kind!r}")


def _steps(lo: float, hi: float) -> int:
    return max(0, math.floor((hi - lo) / TIME_STEP + 1e-9))


def _round(t: float) -> float:
    return round(t, 3)


def scheduled_faults(
    space: SearchSpace, topology: Topology | None = None
) -> st.SearchStrategy[ScheduledFault]:
    """One fault of the space: kind, target, when (latest first), how long, how strong."""
    kinds = [k for k in space.kinds if targets_for(k, space, topology)]
    if not kinds:
        raise ValueError(
            f"no fault kind of {list(space.kinds)} has a target among "
            f"{list(space.targets) or 'the topology'}"
        )
    per_kind = {k: targets_for(k, space, topology) for k in kinds}
    widest = max(len(t) for t in per_kind.values())
    lo, hi = space.window
    dlo, dhi = space.duration

    @st.composite
    def one(draw: st.DrawFn) -> ScheduledFault:
        kind = draw(st.sampled_from(kinds), label="kind")
        targets = per_kind[kind]
        target = targets[draw(st.integers(0, widest - 1), label="target") % len(targets)]
        at = _round(hi - TIME_STEP * draw(st.integers(0, _steps(lo, hi)), label="earliness"))
        at = max(lo, at)
        # Every kind makes the same draws (unused ones are ignored), so that shrinking
        # compares kinds by their order alone: Hypothesis prefers shorter choice
        # sequences, which would otherwise favour the kinds with fewer parameters.
        steps = draw(st.integers(0, _steps(dlo, dhi)), label="length")
        level = draw(st.integers(0, LEVELS - 1), label="level")
        duration: float | None = 0.0
        if kind not in INSTANT_KINDS:
            duration = _round(dlo + TIME_STEP * steps)
            if space.end is not None:
                duration = max(0.0, min(duration, _round(space.end - at)))
        mag = space.magnitude(kind)
        strength = None if mag is None else mag.value(level)
        return ScheduledFault(
            at=at, fault=_fault(kind, target, strength), duration=duration, source="search"
        )

    return one()


def fault_schedules(
    space: SearchSpace | None = None, *, topology: Topology | None = None, **bounds: Any
) -> st.SearchStrategy[tuple[ScheduledFault, ...]]:
    """Schedules of ``min_faults..max_faults`` faults of ``space`` (or of a space built from
    ``bounds``: ``kinds``, ``targets``, ``max_faults``, ``window``, ``duration``, ...),
    sorted by time. Two faults never share a kind and a target (Toxiproxy names a toxic
    after its fault, and a process cannot be killed twice at once)."""
    if space is None:
        given: dict[str, Any] = {
            k: tuple(v) if isinstance(v, list) else v for k, v in bounds.items()
        }
        space = SearchSpace(**given)
    elif bounds:
        raise TypeError("give either a SearchSpace or keyword bounds, not both")
    return st.lists(
        scheduled_faults(space, topology),
        min_size=space.min_faults,
        max_size=space.max_faults,
        unique_by=lambda sf: (sf.fault.kind, _target(sf)),
    ).map(lambda faults: tuple(sorted(faults, key=lambda sf: sf.at)))


# --------------------------------------------------------------------------- as data


def _target(sf: ScheduledFault) -> str:
    return str(getattr(sf.fault, "link", None) or getattr(sf.fault, "component", ""))


# kind -> (attribute, YAML key) for every parameter a fault carries
_YAML_KEYS: dict[str, tuple[tuple[str, str], ...]] = {
    "latency": (("latency", "ms"), ("jitter", "jitter_ms")),
    "bandwidth": (("rate", "kb_per_s"),),
    "slow_close": (("delay", "delay_ms"),),
    "timeout": (("timeout", "ms"),),
    "reset_peer": (("timeout", "after_ms"),),
    "slicer": (
        ("average_size", "average_bytes"),
        ("size_variation", "variation_bytes"),
        ("delay", "delay_us"),
    ),
    "limit_data": (("bytes", "bytes"),),
}


def _seconds(t: float) -> str:
    return f"{t:g}s"


def to_yaml(schedule: Iterable[ScheduledFault]) -> list[dict[str, Any]]:
    """A schedule as ``faults:`` entries (plain data that ``parse_schedule`` reads back)."""
    out = []
    for sf in schedule:
        fault: Any = sf.fault
        kind = fault.kind
        entry: dict[str, Any] = {"at": _seconds(sf.at)}
        if sf.duration is not None and not (kind == "db_loss" and sf.duration == 0):
            entry["for"] = _seconds(sf.duration)
        if kind in LINK_KINDS:
            body: dict[str, Any] = {"link": fault.link}
            for attr, key in _YAML_KEYS.get(kind, ()):
                body[key] = getattr(fault, attr)
            if fault.kind != "down":
                if fault.stream != "downstream":
                    body["stream"] = fault.stream
                if fault.toxicity != 1.0:
                    body["toxicity"] = fault.toxicity
        else:
            body = {"component": fault.component}
            if kind == "kill" and fault.signal != "SIGKILL":
                body["signal"] = fault.signal
        entry[kind] = body
        out.append(entry)
    return out


def schedule_key(schedule: Iterable[ScheduledFault]) -> str:
    """A stable text key for a schedule (its YAML entries), for caching verdicts."""
    return json.dumps(to_yaml(schedule), sort_keys=True)


def describe(schedule: Iterable[ScheduledFault]) -> str:
    """One line per fault, or 'no faults'."""
    lines = [sf.describe() for sf in schedule]
    return "; ".join(lines) if lines else "no faults"


# --------------------------------------------------------------------------- the file


@dataclass(frozen=True)
class SearchSpec:
    """A search as written under ``search:``: the space, and how hard to look."""

    space: SearchSpace
    examples: int = 15  # schedules Hypothesis generates (shrinking comes on top)
    budget: float = 300.0  # seconds for the whole search, shrinking included
    replays: int = 2  # runs at most per candidate schedule ...
    must_fail: int = 2  # ... of which this many must fail for it to count as failing


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


def parse_search(node: Node, duration: float, topologies: Mapping[str, Topology]) -> SearchSpec:
    """`search:` - a space of fault schedules and how hard to look, checked against the
    topology of every profile the experiment runs (`topologies`: profile -> topology)."""
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
    window = parse_span(node.key("window")) if node.has("window") else (0.0, duration / 2)
    if window[1] >= duration:
        raise node.key("window").fail(
            f"[from, to] with 'to' before the workload ends ({duration:g}s)"
        )
    span = parse_span(node.key("duration")) if node.has("duration") else (1.0, duration / 4)
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
    examples = node.key("examples", 15).int(minimum=1, maximum=10_000)
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
    for profile, topology in topologies.items():
        for i, target in enumerate(targets):
            try:
                if "->" in target:
                    resolve_links(topology, target)
                else:
                    resolve_components(topology, target)
            except FaultError as e:
                where = node.child(target, "targets").child(target, i)
                raise where.fail(
                    "a link 'source->target' or a component (or group) of the topology",
                    f"{e} (profile {profile!r})",
                ) from None
        try:
            fault_schedules(space, topology=topology)
        except ValueError as e:
            raise node.fail("kinds with at least one target", str(e)) from None
    return SearchSpec(space, examples, budget, replays, must_fail)
