"""Config files a component names (`files:`): templates read when the topology loads,
checked line by line, rendered into the component's run directory before it starts.

A template uses the placeholders of commands, plus one form of its own: a line holding
`${each:GROUP}` is written once per member of GROUP this component links to, in link
order, with `${each:GROUP}` the `host:port` of that link's proxy and `${each:GROUP.name}`,
`.index` (1, 2, ...), `.host`, `.port` its parts. An HAProxy backend::

    backend kinto
        option httpchk GET /v1/__heartbeat__
        server ${each:kinto.name} ${each:kinto} check inter 500ms

`$${` writes a literal `${` (for languages that use `${...}` themselves).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from harness.errors import ConfigError
from harness.topology.model import Component, FileTemplate, Topology
from harness.topology.placeholders import RenderContext, check_text, render
from harness.validate import Node

__all__ = ["EACH_PARTS", "MAX_TEMPLATE_BYTES", "check_file", "read_template", "render_file"]

MAX_TEMPLATE_BYTES = 64 * 1024
EACH_PARTS = ("name", "index", "host", "port")
_FILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_EACH = re.compile(r"(?<!\$)\$\{each:([^}.]+)(?:\.([^}]*))?\}")


def read_template(name: str, node: Node) -> FileTemplate:
    """`NAME: TEMPLATE` of a `files:` mapping: the template's path is relative to the file
    the node comes from; it must be UTF-8 text of at most `MAX_TEMPLATE_BYTES`."""
    if not _FILE_NAME.match(name):
        raise ConfigError(node.source, node.path, name, "a plain file name like haproxy.cfg")
    path = (Path(node.source).resolve().parent / node.str()).resolve()
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_TEMPLATE_BYTES + 1)
    except OSError as exc:
        raise node.fail(
            "a readable template file (relative to the topology file)", exc.strerror or str(exc)
        ) from None
    if len(data) > MAX_TEMPLATE_BYTES:
        raise node.fail(f"a template of at most {MAX_TEMPLATE_BYTES:,} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise node.fail("a UTF-8 template file", f"{path} is not UTF-8 text") from None
    return FileTemplate(name, path, text)


def check_file(topo: Topology, comp: Component, tmpl: FileTemplate) -> None:
    """Fail at load time on a line of `tmpl` that cannot render for `comp`."""
    key = f"components.{comp.group}.files.{tmpl.name}"
    linked = sorted({topo.component(lk.target).group for lk in topo.links_from(comp.name)})
    for number, line in enumerate(tmpl.text.splitlines(), 1):
        where = f"{tmpl.path} line {number}"
        groups = set()
        for m in _EACH.finditer(line):
            group, part = m.group(1), m.group(2)
            if group not in linked:
                raise ConfigError(
                    topo.source,
                    key,
                    line.strip(),
                    f"${{each:GROUP}} with GROUP a group {comp.name} links to: {linked}",
                    where,
                )
            if part is not None and part not in EACH_PARTS:
                raise ConfigError(
                    topo.source,
                    key,
                    line.strip(),
                    f"${{each:{group}}} or ${{each:{group}.PART}} with PART in {list(EACH_PARTS)}",
                    where,
                )
            groups.add(group)
        if len(groups) > 1:
            raise ConfigError(
                topo.source, key, line.strip(), "${each:...} of one group per line", where
            )
        try:
            check_text(topo, comp, f"files.{tmpl.name}", line, each=True)
        except ConfigError as exc:
            raise ConfigError(
                exc.source, exc.key, line.strip(), exc.expected, f"{where}, {exc.hint}"
            ) from None


def render_file(
    tmpl: FileTemplate,
    ctx: RenderContext,
    component: str,
    render_text: Callable[[str], str] | None = None,
) -> str:
    """The file's text for `component`: each-lines expanded per linked member, then every
    other placeholder rendered by `render_text` (default: `render` with `ctx`)."""
    rendered = render_text or (lambda text: render(text, ctx, component))
    out = []
    for line in tmpl.text.splitlines(keepends=True):
        m = _EACH.search(line)
        if m is None:
            out.append(rendered(line))
            continue
        links = ctx.topology.links_to_group(component, m.group(1))
        for index, link in enumerate(links, 1):
            port = str(ctx.link_ports[link.name])
            parts = {
                None: f"{ctx.host}:{port}",
                "name": link.target,
                "index": str(index),
                "host": ctx.host,
                "port": port,
            }
            out.append(rendered(_expand(line, parts)))
    return "".join(out)


def _expand(line: str, parts: dict[str | None, str]) -> str:
    return _EACH.sub(lambda m: parts[m.group(2)], line)
