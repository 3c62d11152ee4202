"""The ``metrics:`` section of a topology as typed data (see `harness.metrics`)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from harness.validate import Node
from harness.values import parse_duration

__all__ = ["KINDS", "MetricsSpec", "Source", "parse_metrics"]

Kind = Literal["prometheus", "nginx", "postgres", "redis"]
KINDS: tuple[Kind, ...] = ("prometheus", "nginx", "postgres", "redis")
_HTTP_KINDS = ("prometheus", "nginx")


@dataclass(frozen=True)
class Source:
    """How to read one component group: a reader kind and, for HTTP kinds, a path."""

    kind: Kind
    path: str = ""


@dataclass(frozen=True)
class MetricsSpec:
    """Which components are read, how often (run seconds), and whether Toxiproxy is."""

    components: Mapping[str, Source] = field(default_factory=dict)
    every: float = 1.0
    toxiproxy: bool = False

    @property
    def empty(self) -> bool:
        return not self.components and not self.toxiproxy


def parse_every(node: Node, scale: float = 1.0) -> float:
    """A sampling interval in run seconds: the duration divided by `scale` (an experiment's
    compression), at least 100 ms of run time."""
    every = parse_duration(node, positive=True, maximum=60) / scale
    if every < 0.1:
        raise node.fail("an interval of at least 100ms of run time")
    return every


def parse_metrics(node: Node, groups: tuple[str, ...]) -> MetricsSpec:
    """Parse the section; `groups` are the topology's component groups and replica names."""
    node.no_unknown_keys({"every", "toxiproxy", "components"})
    every = parse_every(node.key("every")) if node.has("every") else 1.0
    components: dict[str, Source] = {}
    if node.has("components"):
        for name, sn in node.key("components").items():
            if name not in groups:
                raise sn.fail(f"a component of the topology, one of {sorted(groups)}")
            sn.mapping()
            kinds = [k for k in KINDS if sn.has(k)]
            if len(kinds) != 1:
                raise sn.fail(f"exactly one reader: {', '.join(KINDS)}")
            kind = kinds[0]
            sn.no_unknown_keys({kind})
            path = ""
            if kind in _HTTP_KINDS:
                path = sn.key(kind).str()
                if not path.startswith("/"):
                    raise sn.key(kind).fail("an HTTP path starting with '/'")
            else:
                opts = sn.key(kind)
                if opts.value not in ({}, None, True):
                    raise opts.fail("{} (the reader takes no options)")
            components[name] = Source(kind, path)
    toxiproxy = node.key("toxiproxy").bool() if node.has("toxiproxy") else False
    return MetricsSpec(components=components, every=every, toxiproxy=toxiproxy)
