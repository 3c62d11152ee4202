"""Placeholders: the `${...}` a topology writes in commands, env values, data_dir.init and
config files, checked when the topology loads and rendered by a backend once ports are
known (the grammar is in `harness.topology`'s docstring)."""

from __future__ import annotations

import json
import re
import secrets
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from harness.errors import ConfigError
from harness.topology.model import Component, Topology

__all__ = [
    "PLACEHOLDER",
    "QUALIFIED",
    "SIMPLE",
    "RenderContext",
    "check_text",
    "component_dir",
    "data_dir_of",
    "render",
]

# `$${` is a literal `${` (for config languages that use `${...}` themselves)
PLACEHOLDER = re.compile(r"\$\$\{|\$\{([a-z_]+)(?::([^}]+))?\}")
ESCAPE = "$${"
SIMPLE = frozenset({"port", "host", "dir", "data_dir", "name", "python", "root", "seed"})
QUALIFIED = frozenset({"param", "link", "links", "addr", "bin", "secret"})


def check_text(topo: Topology, comp: Component, where: str, text: str, *, each: bool) -> None:
    """Fail on a placeholder of `text` that can never render for `comp` (`where` is its key
    path under the component). `each:` placeholders are allowed only where `each` is true
    (config files; `harness.topology.files` checks their lines)."""
    targets = {link.target for link in topo.links_from(comp.name)}
    target_groups = {topo.component(t).group for t in targets}
    known = topo.names()
    key = f"components.{comp.group}.{where}"
    for m in PLACEHOLDER.finditer(text):
        if m.group(0) == ESCAPE:
            continue
        kind, arg = m.group(1), m.group(2)

        def fail(expected: str, placeholder: str = m.group(0)) -> ConfigError:
            return ConfigError(topo.source, key, text, expected, f"in {placeholder}")

        if arg is None and kind in SIMPLE:
            if kind == "data_dir" and comp.data_dir is None:
                raise fail("a data_dir declared for ${data_dir}")
            continue
        if kind == "each" and each and arg is not None:
            continue  # checked line by line by harness.topology.files
        if kind == "each":
            raise fail("${each:GROUP} only in a config file (files:), one line per member")
        if kind not in QUALIFIED or arg is None:
            raise fail(f"placeholders among {sorted(SIMPLE | QUALIFIED)} (`$${{` for a literal)")
        if kind == "param" and arg not in topo.params:
            raise fail(f"a parameter among {sorted(topo.params)}")
        if kind == "link" and arg not in targets | target_groups:
            raise fail(f"a link from {comp.name} to one of {sorted(targets)}")
        if kind == "links" and arg not in target_groups:
            raise fail(f"a group linked from {comp.name}: {sorted(target_groups)}")
        if kind == "addr" and arg not in known:
            raise fail(f"a component among {sorted(known)}")


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
    secrets: dict[str, str] = field(default_factory=dict)  # ${secret:NAME}, one per system


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
        if m.group(0) == ESCAPE:
            return "${"
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
        if kind == "secret":
            return ctx.secrets.setdefault(arg, secrets.token_hex(24))
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
            chosen = [lk for lk in links if lk.target == arg] or list(
                topo.links_to_group(component, arg)
            )
            return f"{ctx.host}:{ctx.link_ports[chosen[0].name]}"
        if kind == "links":
            group = topo.links_to_group(component, arg)
            return ",".join(f"{ctx.host}:{ctx.link_ports[lk.name]}" for lk in group)
        raise ValueError(f"unknown placeholder {m.group(0)}")

    return PLACEHOLDER.sub(value, text)
