"""Topology as data: the components of a system and the named links between them.

A topology is what a backend starts. It is written in YAML (the reference system's is
``reference_system/topology.yaml``) and loaded into frozen dataclasses::

    name: shop
    params: {workers: 2}                 # defaults, overridable per run
    profiles: {small: {workers: 1}}      # named sets of params
    components:
      db:
        command: ["${bin:postgres}", -D, "${data_dir}", -p, "${port}", -k, "${dir}"]
        user: postgres                   # used when the harness runs as root
        data_dir: {init: ["${bin:initdb}", -D, "${data_dir}", -A, trust, -U, postgres]}
        probe: {postgres: SELECT 1}
      web:
        replicas: "${param:workers}"     # web-1, web-2 (naming: letters gives web-a, web-b)
        command: ["${python}", -m, myapp, --port, "${port}", --db, "${link:db}"]
        probe: {http: /healthz}
    links:
      - {from: client, to: web}          # client->web-1, client->web-2: the client edge
      - {from: web, to: db}              # web-1->db, web-2->db
    seed: ["${python}", -m, myapp.seed, --db, "${addr:db}", --seed, "${seed}"]
    reset: ["${python}", -m, myapp.seed, --db, "${addr:db}", --seed, "${seed}", --reset]

Every link, including the client edge, is one Toxiproxy proxy, so any fault can be put
on any link. Components reach each other only through links: ``${link:db}`` renders as
the ``host:port`` of the proxy for ``web-1->db``.

Placeholders (rendered by a backend once ports are known): ``${port}`` ``${host}``
``${dir}`` (the component's run directory) ``${data_dir}`` ``${name}`` ``${python}``
``${root}`` (the topology file's directory) ``${seed}`` ``${param:NAME}`` (JSON for
lists and mappings) ``${link:TARGET}`` ``${links:GROUP}`` (comma-separated)
``${addr:COMPONENT}`` (direct, for seeding and checks) ``${bin:NAME}`` (a binary found
on PATH or in PostgreSQL's bin directory).

``reset:`` (optional, like ``seed:``) brings a used system back to its freshly seeded
state quickly, so a started system can be reused between runs (a fault search runs many
short examples on one system); without it a reused system is seeded again in full.
"""

from __future__ import annotations

import json
import re
import string
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from harness.errors import ConfigError
from harness.validate import Node

CLIENT = "client"
PROBE_KINDS = ("http", "tcp", "postgres", "redis")
ProbeKind = Literal["http", "tcp", "postgres", "redis"]

_PLACEHOLDER = re.compile(r"\$\{([a-z_]+)(?::([^}]+))?\}")
_SIMPLE = frozenset({"port", "host", "dir", "data_dir", "name", "python", "root", "seed"})
_QUALIFIED = frozenset({"param", "link", "links", "addr", "bin"})
_NAME = re.compile(r"^[a-z][a-z0-9_]*(-[a-z0-9_]+)*$")

REFERENCE = Path(__file__).resolve().parent.parent / "reference_system" / "topology.yaml"


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
class Component:
    """One process of the system (one replica of a group)."""

    name: str
    group: str
    command: tuple[str, ...]
    probe: Probe
    env: Mapping[str, str] = field(default_factory=dict)
    data_dir: DataDir | None = None
    user: str | None = None
    after: tuple[str, ...] = ()
    image: str | None = None

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
class Topology:
    """A whole system: components, links, parameters, and how to seed it."""

    name: str
    components: tuple[Component, ...]
    links: tuple[Link, ...]
    params: Mapping[str, Any]
    seed: tuple[str, ...] = ()
    source: str = "<memory>"
    reset: tuple[str, ...] = ()  # (issue 9) back to the seeded state; empty: seed again
    root: Path = Path(".")
    profile: str | None = None

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

    @property
    def entrypoints(self) -> tuple[Component, ...]:
        """Components the client reaches (the gateways), in declaration order."""
        targets = {link.target for link in self.links_from(CLIENT)}
        return tuple(c for c in self.components if c.name in targets)


# --- loading ---------------------------------------------------------------------------

_TOP_KEYS = frozenset(
    {"name", "description", "params", "profiles", "components", "links", "seed", "reset"}
)
_COMPONENT_KEYS = frozenset(
    {"command", "probe", "env", "data_dir", "user", "after", "replicas", "naming", "image"}
)


def load_topology(
    path: Path | str = REFERENCE,
    *,
    profile: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> Topology:
    """Load and validate a topology file; ``profile`` and ``params`` override its params."""
    root = Node.load(path)
    root.no_unknown_keys(_TOP_KEYS)
    name = root.key("name").str()
    values: dict[str, Any] = dict(root.key("params", {}).mapping())
    profiles = root.key("profiles", {})
    if profile is not None:
        if profile not in profiles.mapping():
            raise ConfigError(
                root.source,
                "profiles",
                profile,
                f"one of {sorted(profiles.mapping())}",
                "unknown profile",
            )
        values.update(profiles.key(profile).mapping())
    for key, value in (params or {}).items():
        if key not in values:
            raise ConfigError(
                root.source, f"params.{key}", value, f"one of {sorted(values)}", "unknown parameter"
            )
        values[key] = value

    groups = root.key("components")
    components: list[Component] = []
    for group, node in groups.items():
        if not _NAME.match(group):
            raise ConfigError(
                root.source,
                f"components.{group}",
                group,
                "a lowercase name like 'app' or 'db-main'",
            )
        components.extend(_load_group(group, node, values))
    names = {c.name for c in components}
    group_names = {c.group for c in components}
    absent = set(groups.mapping()) - group_names  # groups scaled to zero replicas

    links: list[Link] = []
    for el in root.key("links").elements():
        el.no_unknown_keys({"from", "to"})
        src, dst = el.key("from").str(), el.key("to").str()
        if src in absent or dst in absent:
            continue
        sources = [CLIENT] if src == CLIENT else _members(el.key("from"), src, components)
        for s in sources:
            for t in _members(el.key("to"), dst, components):
                if s == t:
                    raise el.fail("a link between two different components")
                links.append(Link(s, t))
    if len({link.name for link in links}) != len(links):
        raise root.key("links").fail("links without duplicates")
    if not any(link.source == CLIENT for link in links):
        raise root.key("links").fail("at least one link from 'client' (the client edge)")

    seed = root.key("seed").str_list() if root.has("seed") else ()
    reset = root.key("reset").str_list() if root.has("reset") else ()  # issue 9
    topo = Topology(
        name=name,
        components=tuple(components),
        links=tuple(links),
        params=values,
        seed=seed,
        reset=reset,
        source=root.source,
        root=Path(root.source).resolve().parent,
        profile=profile,
    )
    _check_placeholders(topo, names | group_names)
    return topo


def _members(node: Node, name: str, components: list[Component]) -> list[str]:
    exact = [c.name for c in components if c.name == name]
    group = [c.name for c in components if c.group == name]
    if not (exact or group):
        known = sorted({c.group for c in components} | {c.name for c in components})
        raise node.fail(f"a component or group, one of {known}")
    return exact or group


def _load_group(group: str, node: Node, params: Mapping[str, Any]) -> list[Component]:
    node.no_unknown_keys(_COMPONENT_KEYS)
    replicas_node = node.key("replicas", 1)
    replicas_value = replicas_node.value
    if isinstance(replicas_value, str):
        replicas_value = _render_params(replicas_value, params, replicas_node)
        try:
            replicas_value = int(replicas_value)
        except ValueError:
            raise replicas_node.fail("an integer >= 1") from None
    replicas = Node(replicas_value, node.source, replicas_node.path).int(minimum=0, maximum=26)
    naming = node.key("naming", "numbers").choice(("numbers", "letters"))

    probe_node = node.key("probe")
    probe_map = probe_node.mapping()
    if len(probe_map) != 1:
        raise probe_node.fail(f"exactly one of {list(PROBE_KINDS)}, e.g. {{http: /healthz}}")
    kind, target = next(iter(probe_map.items()))
    kind = Node(kind, node.source, probe_node.path).choice(PROBE_KINDS)
    probe = Probe(kind, "" if target in (None, True) else str(target))

    data_dir = None
    if node.has("data_dir"):
        dd = node.key("data_dir")
        if dd.value is True:
            data_dir = DataDir()
        else:
            dd.no_unknown_keys({"init"})
            data_dir = DataDir(init=dd.key("init").str_list() if dd.has("init") else ())

    common = dict(
        group=group,
        command=node.key("command").str_list(),
        probe=probe,
        env=node.key("env", {}).str_map(),
        data_dir=data_dir,
        user=node.key("user").str() if node.has("user") else None,
        after=node.key("after", []).str_list() if node.key("after", []).value else (),
        image=node.key("image").str() if node.has("image") else None,
    )
    if replicas == 0:
        return []
    if replicas == 1 and not node.has("replicas"):
        return [Component(name=group, **common)]
    suffix: Callable[[int], str] = (
        (lambda i: string.ascii_lowercase[i]) if naming == "letters" else (lambda i: str(i + 1))
    )
    return [Component(name=f"{group}-{suffix(i)}", **common) for i in range(replicas)]


def _render_params(text: str, params: Mapping[str, Any], node: Node) -> str:
    def sub(m: re.Match[str]) -> str:
        if m.group(1) != "param" or m.group(2) not in params:
            raise node.fail(f"only ${{param:NAME}} placeholders with NAME in {sorted(params)}")
        return str(params[m.group(2)])

    return _PLACEHOLDER.sub(sub, text)


def _check_placeholders(topo: Topology, known: set[str]) -> None:
    """Fail at load time, not at start, on placeholders that can never render."""
    for comp in topo.components:
        if comp.after:
            for dep in comp.after:
                if dep not in known:
                    raise ConfigError(
                        topo.source,
                        f"components.{comp.group}.after",
                        dep,
                        f"one of {sorted(known)}",
                    )
        texts = [("command", t) for t in comp.command] + [
            (f"env.{k}", v) for k, v in comp.env.items()
        ]
        if comp.data_dir:
            texts += [("data_dir.init", t) for t in comp.data_dir.init]
        targets = {link.target for link in topo.links_from(comp.name)}
        target_groups = {topo.component(t).group for t in targets}
        for key, text in texts:
            for m in _PLACEHOLDER.finditer(text):
                kind, arg = m.group(1), m.group(2)
                where = f"components.{comp.group}.{key}"
                if arg is None and kind in _SIMPLE:
                    if kind == "data_dir" and comp.data_dir is None:
                        raise ConfigError(
                            topo.source, where, text, "a data_dir declared for ${data_dir}"
                        )
                    continue
                if kind not in _QUALIFIED or arg is None:
                    raise ConfigError(
                        topo.source,
                        where,
                        text,
                        f"placeholders among {sorted(_SIMPLE | _QUALIFIED)}",
                    )
                if kind == "param" and arg not in topo.params:
                    raise ConfigError(
                        topo.source, where, text, f"a parameter among {sorted(topo.params)}"
                    )
                if kind == "link" and arg not in targets | target_groups:
                    raise ConfigError(
                        topo.source,
                        where,
                        text,
                        f"a link from {comp.name} to one of {sorted(targets)}",
                    )
                if kind == "links" and arg not in target_groups:
                    raise ConfigError(
                        topo.source,
                        where,
                        text,
                        f"a group linked from {comp.name}: {sorted(target_groups)}",
                    )
                if kind == "addr" and arg not in known:
                    raise ConfigError(
                        topo.source, where, text, f"a component among {sorted(known)}"
                    )


# --- rendering -------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderContext:
    """What placeholders resolve to for one component at start time."""

    topology: Topology
    host: str
    ports: Mapping[str, int]  # component name -> its own listen port
    link_ports: Mapping[str, int]  # link name -> proxy listen port
    run_dir: Path
    seed: int
    find_binary: Callable[[str], str]
    python: str = sys.executable


def component_dir(run_dir: Path, name: str) -> Path:
    return run_dir / name


def data_dir_of(run_dir: Path, name: str) -> Path:
    return run_dir / name / "data"


def render(
    text: str, ctx: RenderContext, component: str | None, data_dir: Path | None = None
) -> str:
    """Replace every placeholder in ``text`` as seen from ``component`` (None: the harness).

    ``data_dir`` replaces the component's data directory (used to build cached templates).
    """

    def value(m: re.Match[str]) -> str:
        kind, arg = m.group(1), m.group(2)
        topo = ctx.topology
        if kind == "host":
            return ctx.host
        if kind == "python":
            return ctx.python
        if kind == "root":
            return str(topo.root)
        if kind == "seed":
            return str(ctx.seed)
        if kind == "param":
            v = topo.params[arg]
            return json.dumps(v) if isinstance(v, dict | list) else str(v)
        if kind == "bin":
            return ctx.find_binary(arg)
        if kind == "addr":
            name = arg if arg in ctx.ports else topo.group(arg)[0].name
            return f"{ctx.host}:{ctx.ports[name]}"
        if component is None:
            raise ValueError(f"placeholder {m.group(0)} needs a component")
        if kind == "port":
            return str(ctx.ports[component])
        if kind == "name":
            return component
        if kind == "dir":
            return str(component_dir(ctx.run_dir, component))
        if kind == "data_dir":
            return str(data_dir or data_dir_of(ctx.run_dir, component))
        links = topo.links_from(component)
        if kind == "link":
            chosen = [lk for lk in links if lk.target == arg] or [
                lk for lk in links if topo.component(lk.target).group == arg
            ]
            return f"{ctx.host}:{ctx.link_ports[chosen[0].name]}"
        if kind == "links":
            chosen = [lk for lk in links if topo.component(lk.target).group == arg]
            return ",".join(f"{ctx.host}:{ctx.link_ports[lk.name]}" for lk in chosen)
        raise ValueError(f"unknown placeholder {m.group(0)}")

    return _PLACEHOLDER.sub(value, text)


def with_params(topology: Topology, **params: Any) -> Topology:
    """The same topology with some parameters replaced (replica counts are not re-expanded)."""
    return replace(topology, params={**topology.params, **params})
