"""The topology as typed data: components, the links between them, and the whole system
(`harness.topology` reads it from YAML)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

__all__ = [
    "CLIENT",
    "DEFAULT_PROFILE",
    "PROBE_KINDS",
    "Component",
    "DataDir",
    "FileTemplate",
    "ImageBuild",
    "Link",
    "Probe",
    "ProbeKind",
    "Topology",
]

CLIENT = "client"
DEFAULT_PROFILE = "default"  # what a topology without profiles runs as
ProbeKind = Literal["http", "tcp", "postgres", "redis"]
PROBE_KINDS: tuple[ProbeKind, ...] = ("http", "tcp", "postgres", "redis")


@dataclass(frozen=True)
class Probe:
    """How to tell a component is ready: an HTTP path, a TCP connect, SQL, or a Redis PING."""

    kind: ProbeKind
    target: str = ""


@dataclass(frozen=True)
class DataDir:
    """A component's data directory, optionally initialised once by a cached command."""

    init: tuple[str, ...] = ()


@dataclass(frozen=True)
class FileTemplate:
    """A config file a component names: written as `name` into its run directory before it
    starts, from the template `path` (its text read at load time)."""

    name: str
    path: Path
    text: str


@dataclass(frozen=True)
class Component:
    """One process of the system (one replica of a group)."""

    name: str
    group: str
    command: tuple[str, ...]
    probe: Probe
    env: Mapping[str, str] = field(default_factory=dict)
    files: tuple[FileTemplate, ...] = ()
    data_dir: DataDir | None = None
    user: str | None = None
    after: tuple[str, ...] = ()
    image: str | None = None
    lazyfs: tuple[str, ...] = ()  # directories of its run directory that live on LazyFS
    # the password the harness's own clients (probe, data checks, metrics, database
    # faults) give this component, a template like `${secret:db_password}`
    password: str | None = None

    @property
    def role(self) -> str:
        return self.group


@dataclass(frozen=True)
class Link:
    """A directed connection from a component (or the client) to a component, via one proxy."""

    source: str
    target: str

    @property
    def name(self) -> str:
        return f"{self.source}->{self.target}"


@dataclass(frozen=True)
class ImageBuild:
    """A container image the topology's system is built into (containers backend)."""

    dockerfile: Path
    context: Path
    inputs: Path  # the folder whose files decide when to rebuild


@dataclass(frozen=True)
class Topology:
    """A whole system: components, links, parameters, and how to seed it."""

    name: str
    components: tuple[Component, ...]
    links: tuple[Link, ...]
    params: Mapping[str, Any]
    seed: tuple[str, ...] = ()
    source: str = "<memory>"
    reset: tuple[str, ...] = ()  # back to the seeded state; empty: seed again
    seed_env: Mapping[str, str] = field(default_factory=dict)  # the seed's and reset's env
    root: Path = Path(".")
    profile: str = DEFAULT_PROFILE
    profiles: tuple[str, ...] = (DEFAULT_PROFILE,)
    images: Mapping[str, ImageBuild] = field(default_factory=dict)

    def component(self, name: str) -> Component:
        for comp in self.components:
            if comp.name == name:
                return comp
        raise KeyError(f"no component {name!r} in topology {self.name!r}")

    def group(self, group: str) -> tuple[Component, ...]:
        return tuple(c for c in self.components if c.group == group)

    def link(self, name: str) -> Link:
        for link in self.links:
            if link.name == name:
                return link
        raise KeyError(f"no link {name!r} in topology {self.name!r}")

    def links_from(self, source: str) -> tuple[Link, ...]:
        return tuple(link for link in self.links if link.source == source)

    def links_to_group(self, source: str, group: str) -> tuple[Link, ...]:
        """The links from `source` to the members of `group`, in declaration order."""
        members = {c.name for c in self.group(group)}
        return tuple(link for link in self.links_from(source) if link.target in members)

    @property
    def entrypoints(self) -> tuple[Component, ...]:
        """Components the client reaches (the gateways), in declaration order."""
        targets = {link.target for link in self.links_from(CLIENT)}
        return tuple(c for c in self.components if c.name in targets)

    def names(self) -> frozenset[str]:
        """Every component and group name."""
        return frozenset({c.name for c in self.components} | {c.group for c in self.components})

    def link_names(self) -> tuple[str, ...]:
        """Every way to name a link, sorted: by its members (`web-1->db`), its groups
        (`web->db`) or a mix of both (`web-1->db`, `web->db-main`)."""
        out: set[str] = set()
        for link in self.links:
            src = {link.source} | (
                set() if link.source == CLIENT else {self.component(link.source).group}
            )
            dst = {link.target, self.component(link.target).group}
            out.update(f"{s}->{t}" for s in src for t in dst)
        return tuple(sorted(out))
