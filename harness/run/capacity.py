"""Which capacities a run's rates are relative to: C (given, none needed, or calibrated and
cached on the experiment's `capacity_from` profile, which may mean starting that profile
once just to measure it) and, for `x_own` rates, the running profile's own capacity,
calibrated and cached the same way."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from harness.backends import System, get_backend
from harness.calibrate import Capacity, cached_capacity, calibrate, capacity_key
from harness.experiment import Experiment
from harness.journal import CapacityRecord
from harness.run.proxied import proxied_links
from harness.sut import SystemUnderTest

__all__ = ["intact_capacities", "resolve_capacity", "resolve_own_capacity"]


def _record(cap: Capacity, source: str, profile: str) -> CapacityRecord:
    return CapacityRecord(
        rps=cap.rps,
        source="cached" if source == "cached" else "calibrated",
        profile=profile,
        measured_at=cap.measured_at,
        load_before=cap.load_before,
        load_during=cap.others,
        key=cap.key,
        steal=cap.steal,
    )


def resolve_capacity(
    experiment: Experiment,
    sut: SystemUnderTest,
    system: System,
    *,
    profile: str,
    backend: str,
    given: float | None,
    recalibrate: bool,
    seed: int,
    say: Callable[[str], None],
    at_most: float | None = None,
) -> CapacityRecord:
    """C for this run (`CalibrationError` when it cannot be measured); a measured C above
    `at_most` is lowered to it, and the record keeps the measured figure (`capped_from`)."""
    if given is not None:
        return CapacityRecord(given, "given", None)
    if experiment.capacity is not None:
        return CapacityRecord(experiment.capacity, "given", None)
    if not experiment.needs_capacity:
        return CapacityRecord(None, "none", None)
    source = experiment.system.capacity_from or profile
    target = sut if source == profile else experiment.sut(source)
    running = system if source == profile else None
    proxied = _same_links(system, target)
    measured = _measured(target, running, source, backend, recalibrate, seed, say, proxied)
    return _capped(measured, at_most)


def _capped(measured: CapacityRecord, at_most: float | None) -> CapacityRecord:
    """`measured`, lowered to `at_most` when above it (keeping the measured figure)."""
    if at_most is not None and measured.rps is not None and measured.rps > at_most:
        return dataclasses.replace(measured, rps=at_most, capped_from=measured.rps)
    return measured


def resolve_own_capacity(
    experiment: Experiment,
    sut: SystemUnderTest,
    system: System,
    capacity: CapacityRecord,
    *,
    profile: str,
    backend: str,
    recalibrate: bool,
    seed: int,
    say: Callable[[str], None],
    given: float | None = None,
    at_most: float | None = None,
) -> CapacityRecord | None:
    """The running profile's own capacity, for `x_own` rates (None when no rate needs it).

    `given` is used as it is. When C already is this profile's own (`capacity_from: own`,
    or a C given for a run that measures each profile on its own), it is C itself;
    otherwise it is calibrated on the running system, once per machine and configuration,
    and cached as C is; a measured one above `at_most` is lowered to it, as C is."""
    if not experiment.needs_own_capacity:
        return None
    if given is not None:
        return CapacityRecord(given, "given", profile)
    of = experiment.system.capacity_from or profile  # whose capacity C is, as measured
    if capacity.profile == profile or (capacity.source == "given" and of == profile):
        return capacity
    measured = _measured(
        sut, system, profile, backend, recalibrate, seed, say, _same_links(system, sut)
    )
    return _capped(measured, at_most)


def _measured(
    target: SystemUnderTest,
    running: System | None,
    source: str,
    backend: str,
    recalibrate: bool,
    seed: int,
    say: Callable[[str], None],
    proxied: frozenset[str] | None,
) -> CapacityRecord:
    """The capacity of `target` (the profile `source`) with the links `proxied` through
    Toxiproxy (None: every link; the shape of `running`, when given): cached, else
    calibrated on the `running` system, or, when that is another profile's, on one
    started for it. The cache key names the links that run direct."""
    links = target.topology.links
    direct = [] if proxied is None else sorted(lk.name for lk in links if lk.name not in proxied)
    key = capacity_key(target.key(backend, direct))
    cached = None if recalibrate else cached_capacity(key)
    if cached is not None:
        return _record(cached, "cached", source)
    if running is not None:
        say(f"capacity C of {source} (calibrated once per machine and configuration)")
        cap = calibrate(running, target, backend=backend, refresh=True, log=say)
        return _record(cap, "calibrated", source)
    say(f"calibrating capacity C on {source} (once per machine and configuration)")
    start = get_backend(backend).start(target.topology, seed=seed, proxied=proxied)
    with start as reference:
        target.domain.seed(reference, seed)
        cap = calibrate(reference, target, backend=backend, refresh=True, log=say)
    return _record(cap, "calibrated", source)


def intact_capacities(
    experiment: Experiment,
    profile: str,
    *,
    backend: str,
    seed: int,
    say: Callable[[str], None],
    given: float | None = None,
) -> tuple[float | None, float | None]:
    """C and the own capacity of `profile` for `experiment` as its file is written (cached,
    else calibrated on a system started for it), without starting the experiment; `given`
    is C as given (`--capacity`), never measured.

    An ablation runs each experiment with one mechanism off at the load the intact system
    met: with these given, a variant is never calibrated on its own (its weakness would
    lower its own C, and the load with it)."""
    base: float | None = None
    if given is not None:
        base = given
    elif experiment.capacity is not None:
        base = experiment.capacity
    elif experiment.needs_capacity:
        source = experiment.system.capacity_from or profile
        target = experiment.sut(source)
        proxied = proxied_links(experiment, target.topology)
        base = _measured(target, None, source, backend, False, seed, say, proxied).rps
    own: float | None = None
    if experiment.needs_own_capacity:
        if (experiment.system.capacity_from or profile) == profile:
            own = base
        else:
            target = experiment.sut(profile)
            proxied = proxied_links(experiment, target.topology)
            own = _measured(target, None, profile, backend, False, seed, say, proxied).rps
    return base, own


def _same_links(system: System | None, target: SystemUnderTest) -> frozenset[str] | None:
    """The links of `target`'s topology proxied in the running `system`, by name: all of
    them when every link of `system` is proxied, else those `system` proxies too (None,
    every link, without a system)."""
    if system is None:
        return None
    links = system.endpoints.links
    every = all(link.proxied for link in links.values())
    return frozenset(
        link.name
        for link in target.topology.links
        if every or (link.name in links and links[link.name].proxied)
    )
