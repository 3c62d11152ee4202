"""Config files a topology component names (`files:`): rendered with the placeholders of
commands and one line per linked member (`${each:GROUP}`), checked when the topology loads,
written by the containers backend's prelude."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from harness.backends.containers import PRELUDE_SCRIPT
from harness.errors import ConfigError
from harness.topology import RenderContext, load_topology, render, render_file

TOPOLOGY = """
name: t
params: {mode: fast}
components:
  lb:
    command: [haproxy, -f, "${dir}/haproxy.cfg"]
    files: {haproxy.cfg: lb.tmpl}
    probe: {tcp: true}
  web:
    replicas: 3
    command: [web, --port, "${port}", --db, "${link:db}"]
    probe: {http: /healthz}
  db:
    command: [db, --port, "${port}"]
    probe: {tcp: true}
links:
  - {from: client, to: lb}
  - {from: lb, to: web}
  - {from: web, to: db}
"""

TEMPLATE = """\
frontend api
    bind ${host}:${port}
    # ${param:mode} mode; $${literal} stays
backend web
    server ${each:web.name} ${each:web} check   # ${each:web.index}/${each:web.port}
    server-template spare 1 ${each:web.host}:1 disabled
"""


def topology(tmp_path: Path, template: str = TEMPLATE, text: str = TOPOLOGY) -> Path:
    (tmp_path / "lb.tmpl").write_text(template)
    path = tmp_path / "topology.yaml"
    path.write_text(text)
    return path


def context(tmp_path: Path, path: Path) -> RenderContext:
    topo = load_topology(path)
    link_ports = {link.name: 30000 + i for i, link in enumerate(topo.links)}
    ports = {c.name: 20000 + i for i, c in enumerate(topo.components)}
    return RenderContext(topo, "127.0.0.1", ports, link_ports, tmp_path, 1, lambda n: n)


def test_each_line_is_written_once_per_linked_member_in_link_order(tmp_path: Path) -> None:
    ctx = context(tmp_path, topology(tmp_path))
    (tmpl,) = ctx.topology.component("lb").files
    text = render_file(tmpl, ctx, "lb")
    ports = [ctx.link_ports[f"lb->web-{i}"] for i in (1, 2, 3)]
    assert text.splitlines() == [
        "frontend api",
        f"    bind 127.0.0.1:{ctx.ports['lb']}",
        "    # fast mode; ${literal} stays",
        "backend web",
        *(
            f"    server web-{i} 127.0.0.1:{p} check   # {i}/{p}"
            for i, p in zip((1, 2, 3), ports, strict=True)
        ),
        *("    server-template spare 1 127.0.0.1:1 disabled" for _ in ports),
    ]


def test_a_profile_with_fewer_replicas_writes_fewer_lines(tmp_path: Path) -> None:
    text = TOPOLOGY.replace("replicas: 3", "replicas: ${param:n}").replace(
        "params: {mode: fast}", "params: {mode: fast, n: 3}\nprofiles: {one: {n: 1}, three: {}}"
    )
    path = topology(tmp_path, "server ${each:web}\n", text)
    topo = load_topology(path, profile="one")
    ctx = RenderContext(topo, "h", {}, {"lb->web-1": 7}, tmp_path, 1, lambda n: n)
    assert render_file(topo.component("lb").files[0], ctx, "lb") == "server h:7\n"


def test_escaped_placeholders_are_literal_in_commands_too(tmp_path: Path) -> None:
    ctx = context(tmp_path, topology(tmp_path))
    assert render("echo $${HOME} ${port}", ctx, "db") == f"echo ${{HOME}} {ctx.ports['db']}"


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("server ${each:db}\n", "GROUP a group lb links to: ['web']"),
        ("server ${each:web.addr}\n", "PART in ['name', 'index', 'host', 'port']"),
        ("server ${each:web} ${each:lb}\n", "a group lb links to"),
        ("x ${param:nope}\n", "a parameter among ['mode']"),
        ("x ${link:db}\n", "a link from lb to one of"),
        ("ok\nx ${porrt}\n", "placeholders among"),
        ("x ${data_dir}\n", "a data_dir declared"),
    ],
)
def test_a_bad_template_line_is_a_load_time_error_naming_file_key_line(
    tmp_path: Path, template: str, expected: str
) -> None:
    path = topology(tmp_path, template)
    with pytest.raises(ConfigError) as info:
        load_topology(path)
    message = str(info.value)
    assert message.startswith(f"{path}: components.lb.files.haproxy.cfg: got "), message
    assert expected in message and "lb.tmpl line" in message, message


def test_each_of_two_groups_on_one_line_is_refused(tmp_path: Path) -> None:
    text = TOPOLOGY.replace(
        "  - {from: lb, to: web}", "  - {from: lb, to: web}\n  - {from: lb, to: db}"
    )
    path = topology(tmp_path, "x ${each:web} ${each:db}\n", text)
    with pytest.raises(ConfigError, match="of one group per line"):
        load_topology(path)


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ("{haproxy.cfg: missing.tmpl}", "a readable template file"),
        ("{../evil: lb.tmpl}", "a plain file name"),
        ("{haproxy.cfg: big.tmpl}", "a template of at most 65,536 bytes"),
        ("{haproxy.cfg: binary.tmpl}", "a UTF-8 template file"),
    ],
)
def test_a_bad_files_entry_is_a_load_time_error(tmp_path: Path, files: str, expected: str) -> None:
    (tmp_path / "big.tmpl").write_text("x" * 70_000)
    (tmp_path / "binary.tmpl").write_bytes(b"\xff\xfe\x00")
    path = topology(tmp_path, text=TOPOLOGY.replace("{haproxy.cfg: lb.tmpl}", files))
    with pytest.raises(ConfigError) as info:
        load_topology(path)
    assert str(path) in str(info.value) and expected in str(info.value), str(info.value)


def test_each_outside_a_file_is_refused(tmp_path: Path) -> None:
    path = topology(tmp_path, text=TOPOLOGY.replace("[web, --port,", '[web, "${each:db}", --port,'))
    with pytest.raises(ConfigError, match=r"components\.web\.command.*only in a config file"):
        load_topology(path)


def test_the_containers_prelude_writes_the_files_verbatim(tmp_path: Path) -> None:
    script = PRELUDE_SCRIPT.replace("/harness/run", str(tmp_path / "run"))
    tricky = "a $HOME `date` \"q\" 'q' \\ \n${each:x}\n\nlast line without newline"
    env = {
        "PATH": os.environ["PATH"],
        "HARNESS_FILES": "one.cfg two.conf",
        "HARNESS_FILE_1": tricky,
        "HARNESS_FILE_2": "",
    }
    subprocess.run(["sh", "-c", script, "prelude", "true"], env=env, check=True)
    assert (tmp_path / "run" / "one.cfg").read_text() == tricky
    assert (tmp_path / "run" / "two.conf").read_text() == ""
