"""Reading ``faults:`` lists from experiment files into :class:`ScheduledFault` values.

Every entry is ``at`` (required), ``for`` (optional) and exactly one fault kind::

    - {at: 10s, for: 5s, latency: {link: app->postgres, ms: 500, jitter_ms: 100}}
    - {at: 2s, for: 4s, down: {link: client->gateway-a}}
    - {at: 18s, kill: {component: gateway-a, signal: SIGKILL}}
    - {at: 10s, db_loss: {component: postgres}}
    - {at: 10s, lose_unsynced: {component: app-1}}   # power loss: its LazyFS dirs lose
                                                     # what was not fsync'd, then restart

Durations are ``500ms``, ``5s``, ``1.5s``, ``2m``, ``1h`` or plain numbers of seconds;
numbers are bounded by what the backend accepts (Toxiproxy's 32-bit attributes, at most
an hour of delay). Errors
name the file, the key path (``faults[1].latency.ms``), the value and what was expected.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from harness.faults.base import FaultError, resolve_components, resolve_links
from harness.faults.database import DbLoss
from harness.faults.network import (
    STREAMS,
    Bandwidth,
    Latency,
    LimitData,
    LinkDown,
    ResetPeer,
    Slicer,
    SlowClose,
    Timeout,
)
from harness.faults.power import LoseUnsynced
from harness.faults.process import Crash, Kill, Pause, Restart, signal_name
from harness.faults.schedule import ScheduledFault
from harness.topology import Topology
from harness.validate import Node
from harness.values import parse_duration

MAX_INT = 2**31 - 1  # what Toxiproxy's attributes hold
MAX_MS = 3_600_000  # no toxic time beyond an hour
_MS_KEYS = frozenset({"ms", "jitter_ms", "delay_ms", "after_ms"})
_TOXIC_COMMON = {"link", "stream", "toxicity"}


def _int(node: Node, minimum: int = 0, maximum: int = MAX_INT) -> int:
    return node.int(minimum=minimum, maximum=maximum)


def _link(node: Node, topology: Topology | None) -> str:
    spec = node.key("link").str()
    if topology is not None:
        try:
            resolve_links(topology, spec)
        except FaultError as exc:
            raise node.key("link").fail(
                "a link 'source->target' (components or groups) of the topology",
                str(exc).split(": ", 1)[-1],
            ) from None
    return spec


def _component(node: Node, topology: Topology | None) -> str:
    target = node.key("component")
    spec = target.str()
    if topology is not None:
        try:
            resolve_components(topology, spec)
        except FaultError as exc:
            raise target.fail(
                "a component or group of the topology", str(exc).split("; ", 1)[-1]
            ) from None
    return spec


def _toxic_common(node: Node, topology: Topology | None) -> dict[str, Any]:
    return {
        "link": _link(node, topology),
        "stream": node.key("stream", "downstream").choice(STREAMS),
        "toxicity": node.key("toxicity", 1.0).number(minimum=0.0, maximum=1.0),
    }


def _toxic(cls: type, keys: dict[str, tuple[str, Any, int]]) -> Callable[..., Any]:
    """A parser for a toxic: YAML key -> (attribute, default or required, minimum)."""

    def parse(node: Node, topology: Topology | None) -> Any:
        node.no_unknown_keys(_TOXIC_COMMON | set(keys))
        args = _toxic_common(node, topology)
        for yaml_key, (attr, default, minimum) in keys.items():
            sub = node.key(yaml_key) if default is _REQUIRED else node.key(yaml_key, default)
            args[attr] = _int(sub, minimum, MAX_MS if yaml_key in _MS_KEYS else MAX_INT)
        return cls(**args)

    return parse


_REQUIRED = object()


def _down(node: Node, topology: Topology | None) -> LinkDown:
    node.no_unknown_keys({"link"})
    return LinkDown(link=_link(node, topology))


def _kill(node: Node, topology: Topology | None) -> Kill:
    if isinstance(node.value, str):  # kill: gateway-a
        node = Node({"component": node.value}, node.source, node.path)
    node.no_unknown_keys({"component", "signal"})
    sig = node.key("signal", "SIGKILL")
    if not isinstance(sig.value, str | int) or isinstance(sig.value, bool):
        raise sig.fail("a signal name like SIGKILL, SIGTERM, SIGHUP")
    try:
        name = signal_name(str(sig.value))
    except (FaultError, ValueError):
        raise sig.fail("a signal name like SIGKILL, SIGTERM, SIGHUP") from None
    return Kill(component=_component(node, topology), signal=name)


def _one_component(cls: type) -> Callable[..., Any]:
    def parse(node: Node, topology: Topology | None) -> Any:
        if isinstance(node.value, str):
            node = Node({"component": node.value}, node.source, node.path)
        node.no_unknown_keys({"component"})
        return cls(component=_component(node, topology))

    return parse


def _crash(node: Node, topology: Topology | None) -> Crash:
    fault = _one_component(Crash)(node, topology)
    if topology is not None:
        names = resolve_components(topology, fault.component)
        gateways = {c.name for c in topology.entrypoints}
        if not set(names) <= gateways:
            raise node.key("component", fault.component).fail(
                f"a gateway (a component the client reaches): one of {sorted(gateways)}"
            )
    return fault


def _db_loss(node: Node, topology: Topology | None) -> DbLoss:
    if isinstance(node.value, str):
        node = Node({"component": node.value}, node.source, node.path)
    node.no_unknown_keys({"component"})
    fault = DbLoss(component=_component(node, topology))
    if topology is not None and topology.component(fault.component).probe.kind != "postgres":
        raise node.key("component").fail("a PostgreSQL component (probe: postgres)")
    return fault


def _lose_unsynced(node: Node, topology: Topology | None) -> LoseUnsynced:
    if isinstance(node.value, str):  # lose_unsynced: app-1
        node = Node({"component": node.value}, node.source, node.path)
    fault = _one_component(LoseUnsynced)(node, topology)
    if topology is not None:
        bare = [
            name
            for name in resolve_components(topology, fault.component)
            if not topology.component(name).lazyfs
        ]
        if bare:
            raise node.key("component", fault.component).fail(
                "a component with a directory on LazyFS (lazyfs: [DIR] in the topology)",
                f"{bare} keep none under these parameters",
            )
    return fault


KINDS: dict[str, Callable[[Node, Topology | None], Any]] = {
    "latency": _toxic(Latency, {"ms": ("latency", _REQUIRED, 0), "jitter_ms": ("jitter", 0, 0)}),
    "bandwidth": _toxic(Bandwidth, {"kb_per_s": ("rate", _REQUIRED, 0)}),
    "slow_close": _toxic(SlowClose, {"delay_ms": ("delay", _REQUIRED, 0)}),
    "timeout": _toxic(Timeout, {"ms": ("timeout", 0, 0)}),
    "reset_peer": _toxic(ResetPeer, {"after_ms": ("timeout", 0, 0)}),
    "slicer": _toxic(
        Slicer,
        {
            "average_bytes": ("average_size", _REQUIRED, 1),
            "variation_bytes": ("size_variation", 0, 0),
            "delay_us": ("delay", 0, 0),
        },
    ),
    "limit_data": _toxic(LimitData, {"bytes": ("bytes", _REQUIRED, 0)}),
    "down": _down,
    "kill": _kill,
    "crash": _crash,
    "pause": _one_component(Pause),
    "restart": _one_component(Restart),
    "db_loss": _db_loss,
    "lose_unsynced": _lose_unsynced,
}
# recovery starts right after the loss
_DEFAULT_DURATION = {"db_loss": 0.0, "lose_unsynced": 0.0}
_ONE_NAME = ("kill", "crash", "pause", "restart", "db_loss", "lose_unsynced")


def parse_fault(node: Node, topology: Topology | None = None) -> ScheduledFault:
    """One ``faults:`` entry; links and components are checked against ``topology``."""
    node.no_unknown_keys({"at", "for", *KINDS})
    kinds = [k for k in node.mapping() if k in KINDS]
    if len(kinds) != 1:
        raise node.fail(
            f"exactly one fault kind among {sorted(KINDS)} besides 'at' and 'for'",
            f"found {kinds or 'none'}",
        )
    kind = kinds[0]
    at = parse_duration(node.key("at"))
    duration = parse_duration(node.key("for")) if node.has("for") else _DEFAULT_DURATION.get(kind)
    sub = node.key(kind)
    if kind not in _ONE_NAME or not isinstance(sub.value, str):
        sub.mapping()
    fault = KINDS[kind](sub, topology)
    return ScheduledFault(
        at=at, fault=fault, duration=duration, source=f"{node.source}: {node.path}"
    )


def parse_schedule(node: Node, topology: Topology | None = None) -> tuple[ScheduledFault, ...]:
    """A ``faults:`` list (an absent or empty list is an empty schedule)."""
    if node.value is None:
        return ()
    return tuple(parse_fault(el, topology) for el in node.elements())
