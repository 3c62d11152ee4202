"""The containers backend's pure parts, without a Docker engine: where a run's components
and links listen (inside and on the host), and how a component's command, environment and
files read inside its container."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.backends.containers.inside import (
    MAX_FILE_BYTES,
    RUN_DIR,
    InsideView,
    unloopback,
)
from harness.backends.containers.layout import HOST, LINK_PORT_BASE, Layout
from harness.errors import ConfigError
from harness.ports import PortAllocator
from harness.sessions import LABEL
from harness.topology import RenderContext, Topology, load_topology

TOPOLOGY = """
name: t
components:
  web:
    replicas: 2
    command: [web, --bind, "127.0.0.1", "--port=${port}", --db, "${link:db}", --dir, "${dir}"]
    env: {PEER: "${addr:db}", HOST: "${host}", KEEP: "$${host}"}
    files: {web.cfg: web.tmpl}
    probe: {http: /healthz}
  db:
    command: [db, "listen_addresses=127.0.0.1", --port, "${port}"]
    probe: {postgres: true}
links:
  - {from: client, to: web}
  - {from: web, to: db}
"""


@pytest.fixture
def topo(tmp_path: Path) -> Topology:
    (tmp_path / "web.tmpl").write_text("listen ${host}:${port}\ndb ${link:db}\n")
    (tmp_path / "topology.yaml").write_text(TOPOLOGY)
    return load_topology(tmp_path / "topology.yaml")


def layout_of(topo: Topology, tmp_path: Path) -> Layout:
    ports = PortAllocator(tmp_path / "base", "s1", HOST)
    try:
        return Layout.allocate(topo, ports)
    finally:
        ports.release()


def view_of(topo: Topology, layout: Layout) -> InsideView:
    ctx = RenderContext(
        topology=topo,
        host="toxiproxy",
        ports=layout.inside,
        link_ports=layout.link_inside,
        run_dir=Path(RUN_DIR),
        seed=1,
        find_binary=lambda name: name,
        python="python3",
    )
    return InsideView(topo, ctx, layout.inside, "s1")


def test_ports_inside_follow_the_probe_kind_and_each_host_port_is_distinct(
    topo: Topology, tmp_path: Path
) -> None:
    layout = layout_of(topo, tmp_path)
    assert layout.inside == {"web-1": 8000, "web-2": 8000, "db": 5432}
    assert sorted(layout.link_inside.values()) == [
        LINK_PORT_BASE + i for i in range(len(topo.links))
    ]
    published = [*layout.published.values(), *layout.link_published.values(), layout.api_port]
    assert len(set(published)) == len(published)


def test_endpoints_are_host_addresses_and_the_table_maps_them_onto_the_network(
    topo: Topology, tmp_path: Path
) -> None:
    layout = layout_of(topo, tmp_path)
    endpoints = layout.endpoints(topo)
    assert endpoints.gateways == tuple(
        f"http://{HOST}:{layout.link_published[f'client->web-{i}']}" for i in (1, 2)
    )
    assert endpoints.toxiproxy == f"http://{HOST}:{layout.api_port}"
    db = endpoints.components["db"]
    assert (db.host, db.port, db.probe) == (HOST, layout.published["db"], "postgres")
    link = endpoints.links["web-1->db"]
    assert link.listen == f"{HOST}:{layout.link_published['web-1->db']}"
    assert link.upstream == f"{HOST}:{layout.published['db']}"
    table = layout.to_network(topo)
    assert table[f"{HOST}:{layout.published['db']}"] == "db:5432"
    assert table[link.listen] == f"0.0.0.0:{layout.link_inside['web-1->db']}"


def test_placeholders_mean_what_they_mean_inside_a_container(
    topo: Topology, tmp_path: Path
) -> None:
    layout = layout_of(topo, tmp_path)
    view = view_of(topo, layout)
    web = topo.component("web-1")
    assert view.command(web) == [
        "web",
        "--bind",
        "0.0.0.0",  # loopback as a listen address would be unreachable from the peers
        "--port=8000",
        "--db",
        f"toxiproxy:{layout.link_inside['web-1->db']}",
        "--dir",
        RUN_DIR,
    ]
    assert view.command(topo.component("db"))[1] == "listen_addresses=0.0.0.0"
    env = view.env(web)
    assert (env["PEER"], env["HOST"], env["KEEP"]) == ("db:5432", "0.0.0.0", "${host}")
    assert env[LABEL] == "s1" and env["HARNESS_COMPONENT"] == "web-1"
    assert env["HARNESS_FILES"] == "web.cfg" and env["HARNESS_DATA"] == ""
    assert env["HARNESS_FILE_1"].splitlines() == [
        "listen 0.0.0.0:8000",
        f"db toxiproxy:{layout.link_inside['web-1->db']}",
    ]


def test_unloopback_rewrites_only_a_listen_address() -> None:
    assert unloopback("127.0.0.1") == "0.0.0.0"
    assert unloopback("--host=127.0.0.1") == "--host=0.0.0.0"
    assert unloopback("http://127.0.0.1:8000/x") == "http://127.0.0.1:8000/x"


def test_a_config_file_too_big_for_the_environment_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "web.tmpl").write_text("${dir}" * 10_900)  # 65,400 bytes; twice that inside
    (tmp_path / "topology.yaml").write_text(TOPOLOGY)
    topo = load_topology(tmp_path / "topology.yaml")
    view = view_of(topo, layout_of(topo, tmp_path))
    with pytest.raises(ConfigError, match=f"at most {MAX_FILE_BYTES:,} bytes"):
        view.env(topo.component("web-1"))
