"""The ``Fault`` protocol and what every fault shares: naming targets, timing an action.

A fault is a frozen dataclass that knows how to ``inject`` itself into a running system
and how to ``heal`` it, each returning :class:`~harness.faults.evidence.Evidence`.
Faults keep no state between the two calls (heal re-derives what to undo from the
system), so the same value can be scheduled twice and serialised as plain data.
Targets may name one link or component, or a group (``app->postgres`` is every
``app-N->postgres`` link; ``app`` is every ``app-N``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, ClassVar, Protocol, runtime_checkable

from harness.errors import HarnessError
from harness.faults.evidence import Action, Check, Evidence
from harness.topology import CLIENT, Topology


class FaultError(HarnessError):
    """A fault cannot act on this system (unknown target, missing ability)."""


class FaultNotEffective(HarnessError):
    """One or more faults did not take effect (or did not heal); carries their evidence."""

    def __init__(self, evidence: list[Evidence]) -> None:
        self.evidence = evidence
        super().__init__(
            f"{len(evidence)} fault action(s) did not take effect:\n"
            + "\n".join(e.summary() for e in evidence)
        )


@runtime_checkable
class Fault(Protocol):
    """Something done to a running system and undone again."""

    kind: ClassVar[str]

    def describe(self) -> str: ...

    def inject(self, system: Any) -> Evidence: ...

    def heal(self, system: Any) -> Evidence: ...


def resolve_links(topology: Topology, spec: str) -> tuple[str, ...]:
    """Link names matching ``source->target`` where each side is a component or a group."""
    if "->" not in spec:
        raise FaultError(f"link {spec!r}: expected 'source->target', e.g. 'app-1->postgres'")
    src, dst = (part.strip() for part in spec.split("->", 1))

    def side(name: str, component: str) -> bool:
        if name == CLIENT:
            return component == CLIENT
        if name == component:
            return True
        return component != CLIENT and topology.component(component).group == name

    found = tuple(
        link.name for link in topology.links if side(src, link.source) and side(dst, link.target)
    )
    if not found:
        known = sorted(link.name for link in topology.links)
        raise FaultError(f"link {spec!r} matches no link of {topology.name!r}; links: {known}")
    return found


def resolve_components(topology: Topology, spec: str) -> tuple[str, ...]:
    """Component names: ``spec`` itself, or every member of the group ``spec``."""
    exact = [c.name for c in topology.components if c.name == spec]
    found = tuple(exact or [c.name for c in topology.components if c.group == spec])
    if not found:
        known = sorted(
            {c.name for c in topology.components} | {c.group for c in topology.components}
        )
        raise FaultError(
            f"component {spec!r} is not in {topology.name!r}; components and groups: {known}"
        )
    return found


def need(system: Any, ability: type, fault: str) -> None:
    """Fail clearly when the backend lacks an ability the fault uses."""
    if not isinstance(system, ability):
        raise FaultError(f"{fault}: backend {type(system).__name__} cannot {ability.__name__}")


def act(
    fault: str,
    phase: Action,
    action: Callable[[], Any],
    verify: Callable[[Any], list[Check]],
) -> Evidence:
    """Run ``action`` then ``verify(result)``, timing both; any exception becomes evidence."""
    started = time.monotonic()
    actuated = started
    try:
        result = action()
        actuated = time.monotonic()
        checks = verify(result)
    except Exception as exc:  # a failed fault is evidence, not a crash of the run
        return Evidence(
            fault,
            phase,
            started,
            actuated if actuated != started else time.monotonic(),
            error=f"{type(exc).__name__}: {exc}",
        )
    return Evidence(fault, phase, started, actuated, tuple(checks))
