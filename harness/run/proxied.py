"""Which links of a run go through Toxiproxy: only those a fault may act on.

A link that no fault of the experiment, and no fault its search space can draw, acts on
runs direct: its source is given the target's own address instead of a proxy's, and the
hop's cost (a copy of every byte through Toxiproxy) is gone. Faults on processes (kill,
crash, pause, restart, lose_unsynced) need no proxy; toxics and ``down`` need the links
they name; a database loss needs every link to the database (recovery re-points them at
a promoted standby). A fault this module does not know keeps every link proxied.

``system: {proxy: all}`` in the experiment, ``--proxy-all`` or ``--harness-proxy-all``
keep every link proxied. A direct link still has an address (``listen`` is the target's),
so fault evidence, ``via:`` state readers and probes reach it the same way.

    links = proxied_links(experiment, sut.topology)   # None: every link
    with backend.start(sut.topology, seed=1, proxied=links) as system: ...
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from harness.errors import HarnessError
from harness.faults import (
    Crash,
    DbLoss,
    FaultError,
    Kill,
    LinkDown,
    LoseUnsynced,
    Pause,
    Restart,
    ScheduledFault,
    Toxic,
    resolve_links,
)
from harness.search.space import LINK_KINDS, SearchSpace, targets_for
from harness.topology import Topology

__all__ = ["check_proxied", "fault_links", "proxied_links", "schedule_links", "space_links"]

_PROCESS = (Kill, Crash, Pause, Restart, LoseUnsynced)


def fault_links(fault: Any, topology: Topology) -> frozenset[str] | None:
    """The links of `topology` that `fault` may act on through Toxiproxy (None: any).

    A target this topology lacks (another profile's replica) names no link here."""
    if isinstance(fault, _PROCESS):
        return frozenset()
    if isinstance(fault, Toxic | LinkDown):
        return _resolve(topology, fault.link)
    if isinstance(fault, DbLoss):
        return frozenset(link.name for link in topology.links if link.target == fault.component)
    return None


def space_links(space: SearchSpace, topology: Topology) -> frozenset[str]:
    """Every link a fault drawn from `space` may act on."""
    out: set[str] = set()
    for kind in space.kinds:
        for target in targets_for(kind, space, topology):
            if kind in LINK_KINDS:
                out |= _resolve(topology, target)
            elif kind == "db_loss":
                out |= fault_links(DbLoss(component=target), topology) or frozenset()
    return frozenset(out)


def proxied_links(
    experiment: Any, topology: Topology, *, proxy_all: bool = False
) -> frozenset[str] | None:
    """The links to proxy for `experiment` (its faults and search space) on `topology`;
    None: every link (asked for, or a fault whose links cannot be told)."""
    if proxy_all or experiment.system.proxy == "all":
        return None
    found = schedule_links(experiment.faults, topology)
    if found is None:
        return None
    if experiment.search is not None:
        found |= space_links(experiment.search.space, topology)
    return found


def schedule_links(faults: Iterable[ScheduledFault], topology: Topology) -> frozenset[str] | None:
    """The links the faults of a schedule may act on (None: any)."""
    out: set[str] = set()
    for sf in faults:
        links = fault_links(sf.fault, topology)
        if links is None:
            return None
        out |= links
    return frozenset(out)


def check_proxied(experiment: Any, system: Any) -> None:
    """Fail before anything runs when a fault of `experiment` may act on a link that the
    already started `system` runs direct."""
    links = system.endpoints.links
    needed = proxied_links(experiment, system.topology)
    wanted = set(links) if needed is None else set(needed)
    direct = sorted(name for name in wanted if name in links and not links[name].proxied)
    if direct:
        raise HarnessError(
            f"{experiment.name}: its faults may act on {direct}, which this system runs"
            " direct (not through Toxiproxy); start a system for it"
        )


def _resolve(topology: Topology, spec: str) -> frozenset[str]:
    try:
        return frozenset(resolve_links(topology, spec))
    except (FaultError, KeyError):
        return frozenset()
