"""Reading a topology file into `harness.topology.model` (the schema is in the
`harness.topology` docstring): profiles and parameters applied, groups expanded into
replicas, links into one per pair of members, every placeholder and config file checked."""

from __future__ import annotations

import functools
import json
import re
import string
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from harness.errors import ConfigError
from harness.topology.files import check_file, read_template
from harness.topology.model import (
    CLIENT,
    DEFAULT_PROFILE,
    PROBE_KINDS,
    Component,
    DataDir,
    FileTemplate,
    ImageBuild,
    Link,
    Probe,
    Topology,
)
from harness.topology.placeholders import PLACEHOLDER, check_text
from harness.validate import Node

__all__ = [
    "REFERENCE",
    "SUT_KEYS",
    "load_node",
    "load_topology",
    "profile_names",
    "with_params",
]

REFERENCE = Path(__file__).resolve().parents[2] / "reference_system" / "topology.yaml"

_TOP_KEYS = frozenset(
    {
        "name",
        "description",
        "params",
        "profiles",
        "components",
        "links",
        "seed",
        "seed_env",
        "reset",
        "images",
    }
)
# the sections that say how to test the system rather than how to start it (harness.sut)
SUT_KEYS = frozenset(
    {
        "domain",
        "client",
        "operations",
        "capacity",
        "capacity_from",
        "steady_state",
        "settle",
        "state",
        "invariants",
        "metrics",
    }
)
_COMPONENT_KEYS = frozenset(
    {
        "command",
        "probe",
        "env",
        "files",
        "data_dir",
        "user",
        "after",
        "replicas",
        "naming",
        "image",
        "lazyfs",
        "password",
    }
)
_NAME = re.compile(r"^[a-z][a-z0-9_]*(-[a-z0-9_]+)*$")


def load_topology(
    path: Path | str = REFERENCE,
    *,
    profile: str | None = None,
    params: Mapping[str, Any] | None = None,
) -> Topology:
    """Load and validate a topology file; ``profile`` and ``params`` override its params.

    A topology without profiles runs as the profile ``default``. Loads are cached by file,
    modification time, profile and parameters (parsing YAML is slow next to a run's step).
    """
    p = Path(path).resolve()
    try:
        mtime = p.stat().st_mtime_ns
    except OSError:
        mtime = 0  # Node.load says what is wrong with the path
    key = json.dumps(dict(params or {}), sort_keys=True, default=str)
    return _load_cached(str(p), mtime, profile, key)


@functools.lru_cache(maxsize=64)
def _load_cached(path: str, mtime_ns: int, profile: str | None, params: str) -> Topology:
    return _load(load_node(path, mtime_ns), profile, json.loads(params))


@functools.lru_cache(maxsize=16)
def _load_node(path: str, mtime_ns: int) -> Node:
    return Node.load(path)


def load_node(path: Path | str, mtime_ns: int | None = None) -> Node:
    """The topology file's root node, cached (the sections of harness.sut read it too)."""
    p = Path(path).resolve()
    if mtime_ns is None:
        try:
            mtime_ns = p.stat().st_mtime_ns
        except OSError:
            mtime_ns = 0
    root = _load_node(str(p), mtime_ns)
    root.mapping()
    return root


def profile_names(root: Node) -> tuple[str, ...]:
    """The profiles a topology file declares, in order (``default`` when it declares none)."""
    declared = tuple(root.key("profiles", {}).mapping())
    return declared or (DEFAULT_PROFILE,)


def with_params(topology: Topology, **params: Any) -> Topology:
    """The same topology with some parameters replaced (replica counts are not re-expanded)."""
    return replace(topology, params={**topology.params, **params})


def _params(root: Node, profile: str | None, params: Mapping[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = dict(root.key("params", {}).mapping())
    profiles = root.key("profiles", {})
    declared = tuple(profiles.mapping())
    if profile is not None and not (profile == DEFAULT_PROFILE and not declared):
        if profile not in declared:
            raise ConfigError(
                root.source,
                "profiles",
                profile,
                f"one of {list(declared) or [DEFAULT_PROFILE]}",
                "unknown profile",
            )
        for key, pv in profiles.key(profile).items():
            if key not in values:
                raise ConfigError(
                    pv.source,
                    pv.path,
                    key,
                    f"a parameter among {sorted(values)}",
                    "unknown parameter",
                )
            values[key] = pv.value
    for key, value in params.items():
        if key not in values:
            raise ConfigError(
                root.source, f"params.{key}", value, f"one of {sorted(values)}", "unknown parameter"
            )
        values[key] = value
    return values


def _load(root: Node, profile: str | None, params: Mapping[str, Any]) -> Topology:
    root.no_unknown_keys(_TOP_KEYS | SUT_KEYS)
    name = root.key("name").str()
    values = _params(root, profile, params)
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

    declared = tuple(root.key("profiles", {}).mapping())
    topo = Topology(
        name=name,
        components=tuple(components),
        links=tuple(links),
        params=MappingProxyType(values),
        seed=root.key("seed").str_list() if root.has("seed") else (),
        reset=root.key("reset").str_list() if root.has("reset") else (),
        seed_env=MappingProxyType(root.key("seed_env", {}).str_map()),
        source=root.source,
        root=Path(root.source).resolve().parent,
        profile=profile or DEFAULT_PROFILE,
        profiles=declared or (DEFAULT_PROFILE,),
        images=MappingProxyType(_images(root.key("images", {}))),
    )
    _check(topo)
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
    named, target = next(iter(probe_map.items()))
    kind = Node(named, node.source, probe_node.path).choice(PROBE_KINDS)
    probe = Probe(kind, "" if target in (None, True) else str(target))

    data_dir = None
    if node.has("data_dir"):
        dd = node.key("data_dir")
        if dd.value is True:
            data_dir = DataDir()
        else:
            dd.no_unknown_keys({"init"})
            data_dir = DataDir(init=dd.key("init").str_list() if dd.has("init") else ())

    files: list[FileTemplate] = [
        read_template(n, Node(_render_params(fn.str(), params, fn), fn.source, fn.path))
        for n, fn in node.key("files", {}).items()
    ]
    common: dict[str, Any] = dict(
        group=group,
        command=node.key("command").str_list(),
        probe=probe,
        env=node.key("env", {}).str_map(),
        files=tuple(files),
        data_dir=data_dir,
        user=node.key("user").str() if node.has("user") else None,
        after=node.key("after", []).str_list() if node.key("after", []).value else (),
        image=node.key("image").str() if node.has("image") else None,
        lazyfs=_lazyfs(node.key("lazyfs"), params) if node.has("lazyfs") else (),
        password=node.key("password").str() if node.has("password") else None,
    )
    if replicas == 0:
        return []
    if replicas == 1 and not node.has("replicas"):
        return [Component(name=group, **common)]
    suffix: Callable[[int], str] = (
        (lambda i: string.ascii_lowercase[i]) if naming == "letters" else (lambda i: str(i + 1))
    )
    return [Component(name=f"{group}-{suffix(i)}", **common) for i in range(replicas)]


def _images(node: Node) -> dict[str, ImageBuild]:
    """`images: {NAME: {dockerfile: PATH, context: DIR, inputs: DIR}}`, relative to the file
    (`context` defaults to the Dockerfile's folder, `inputs` to the Dockerfile's folder)."""
    base = Path(node.source).resolve().parent
    out = {}
    for name, image_node in node.items():
        image_node.no_unknown_keys({"dockerfile", "context", "inputs"})
        dockerfile = (base / image_node.key("dockerfile").str()).resolve()
        if not dockerfile.is_file():
            raise image_node.key("dockerfile").fail("a Dockerfile (relative to the topology file)")
        context = (
            (base / image_node.key("context").str()).resolve()
            if image_node.has("context")
            else dockerfile.parent
        )
        inputs = (
            (base / image_node.key("inputs").str()).resolve()
            if image_node.has("inputs")
            else dockerfile.parent
        )
        out[name] = ImageBuild(dockerfile, context, inputs)
    return out


_DIR_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]*(/[A-Za-z0-9_-][A-Za-z0-9_.-]*)*$")


def _lazyfs(node: Node, params: Mapping[str, Any]) -> tuple[str, ...]:
    """`lazyfs: [DIR, ...]` or `{dirs: [DIR, ...], when: "${param:NAME}"}`: directories of
    the component's run directory (relative, no `..`) mounted on LazyFS before it starts."""
    if isinstance(node.value, dict):
        node.no_unknown_keys({"dirs", "when"})
        if node.has("when"):
            wn = node.key("when")
            text = wn.value if isinstance(wn.value, str) else str(wn.value)
            value = _render_params(text, params, wn).strip().lower()
            if value not in ("true", "false"):
                raise wn.fail("true or false (after ${param:...})", f"rendered as {value!r}")
            if value == "false":
                return ()
        node = node.key("dirs")
    dirs = node.str_list()
    for i, d in enumerate(dirs):
        if not _DIR_NAME.match(d) or ".." in d.split("/"):
            raise node.child(d, i).fail("a directory relative to the run directory, like spool")
    if len(set(dirs)) != len(dirs):
        raise node.fail("each directory once")
    return dirs


def _render_params(text: str, params: Mapping[str, Any], node: Node) -> str:
    def sub(m: re.Match[str]) -> str:
        if m.group(1) != "param" or m.group(2) not in params:
            raise node.fail(f"only ${{param:NAME}} placeholders with NAME in {sorted(params)}")
        return str(params[m.group(2)])

    return PLACEHOLDER.sub(sub, text)


def _check(topo: Topology) -> None:
    """Fail at load time, not at start, on what can never start: an `after:` naming nothing,
    a placeholder that can never render, a config file line that cannot."""
    known = topo.names()
    for comp in topo.components:
        for dep in comp.after:
            if dep not in known:
                raise ConfigError(
                    topo.source, f"components.{comp.group}.after", dep, f"one of {sorted(known)}"
                )
        texts = [("command", t) for t in comp.command]
        texts += [(f"env.{k}", v) for k, v in comp.env.items()]
        texts += [("password", comp.password)] if comp.password is not None else []
        if comp.data_dir:
            texts += [("data_dir.init", t) for t in comp.data_dir.init]
        for where, text in texts:
            check_text(topo, comp, where, text, each=False)
        for tmpl in comp.files:
            check_file(topo, comp, tmpl)
