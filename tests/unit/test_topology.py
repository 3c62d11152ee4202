"""Topology files: expansion of replicas and links, and one clear error per mistake."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.topology import REFERENCE, RenderContext, load_topology, render

MINI = Path(__file__).parent.parent / "fixtures" / "mini.yaml"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "topo.yaml"
    path.write_text(text)
    return path


BASE = """
name: t
components:
  db:
    command: [db, --port, "${port}"]
    probe: {tcp: true}
  web:
    replicas: 2
    command: [web, --db, "${link:db}"]
    probe: {http: /healthz}
links:
  - {from: client, to: web}
  - {from: web, to: db}
"""


def test_reference_profiles_expand_gateways_and_links() -> None:
    naive = load_topology(REFERENCE, profile="naive")
    hardened = load_topology(REFERENCE, profile="hardened")
    assert [c.name for c in naive.entrypoints] == ["gateway-a"]
    assert [c.name for c in hardened.entrypoints] == ["gateway-a", "gateway-b"]
    names = {link.name for link in hardened.links}
    assert {
        "client->gateway-a",
        "client->gateway-b",
        "gateway-b->app-2",
        "app-1->postgres",
    } <= names
    # every link between components and the client edge is a proxy: 2 + 2*2 + 2*2
    assert len(hardened.links) == 10
    assert naive.params["profile"] == "naive"


def test_params_override_replicas() -> None:
    topo = load_topology(REFERENCE, profile="hardened", params={"app_workers": 3})
    assert [c.name for c in topo.group("app")] == ["app-1", "app-2", "app-3"]
    assert len(topo.links_from("gateway-a")) == 3


def test_render_placeholders_as_seen_from_a_component(tmp_path: Path) -> None:
    topo = load_topology(write(tmp_path, BASE))
    ctx = RenderContext(
        topology=topo,
        host="127.0.0.1",
        ports={"db": 20001, "web-1": 20002, "web-2": 20003},
        link_ports={"web-1->db": 21001, "web-2->db": 21002, "client->web-1": 1, "client->web-2": 2},
        run_dir=tmp_path,
        seed=7,
        find_binary=lambda name: f"/bin/{name}",
    )
    assert render("${link:db}", ctx, "web-2") == "127.0.0.1:21002"
    assert render("${port} ${name} ${seed}", ctx, "web-1") == "20002 web-1 7"
    assert render("${addr:db} ${bin:x}", ctx, None) == "127.0.0.1:20001 /bin/x"
    assert render("${dir}", ctx, "db") == str(tmp_path / "db")


@pytest.mark.parametrize(
    ("mutation", "key", "expected"),
    [
        (("probe: {tcp: true}", "probe: {smtp: 25}"), "components.db.probe", "one of"),
        (("probe: {tcp: true}", "probe: {}"), "components.db.probe", "exactly one of"),
        (("replicas: 2", "replicas: -1"), "components.web.replicas", "in [0, 26]"),
        (("replicas: 2", "replicas: lots"), "components.web.replicas", "integer"),
        (("    command: [db", "    comand: [db"), "components.db.comand", "unknown key"),
        (("{from: web, to: db}", "{from: web, to: dbx}"), "links[1].to", "component or group"),
        (("${link:db}", "${link:web}"), "components.web.command", "a link from web-1"),
        (("${port}", "${param:nope}"), "components.db.command", "a parameter among"),
        (("${port}", "${porrt}"), "components.db.command", "placeholders among"),
        (("name: t", "name: 5"), "name", "non-empty string"),
        (("  - {from: client, to: web}\n", ""), "links", "from 'client'"),
    ],
)
def test_each_mistake_names_file_key_value_and_expectation(
    tmp_path: Path, mutation: tuple[str, str], key: str, expected: str
) -> None:
    old, new = mutation
    assert old in BASE
    path = write(tmp_path, BASE.replace(old, new))
    with pytest.raises(ConfigError) as info:
        load_topology(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {key}"), message
    assert expected in message


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    path = write(tmp_path, "name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"line \d+, column \d+"):
        load_topology(path)


def test_unknown_profile_and_param_are_errors() -> None:
    with pytest.raises(ConfigError, match="unknown profile"):
        load_topology(REFERENCE, profile="turbo")
    with pytest.raises(ConfigError, match=r"params\.workers.*unknown parameter"):
        load_topology(REFERENCE, params={"workers": 3})


def test_user_topology_loads() -> None:
    topo = load_topology(MINI, profile="single")
    assert [c.name for c in topo.components] == ["db", "cache", "web-1"]
    assert topo.component("db").data_dir is not None
    assert topo.component("db").user == "postgres"


def test_a_group_scaled_to_zero_is_absent_with_its_links(tmp_path: Path) -> None:
    extra = "  extra:\n    replicas: 0\n    command: [x]\n    probe: {tcp: true}\nlinks:"
    text = BASE.replace("links:", extra).replace(
        "  - {from: web, to: db}", "  - {from: web, to: db}\n  - {from: web, to: extra}"
    )
    topo = load_topology(write(tmp_path, text))
    assert [c.group for c in topo.components] == ["db", "web", "web"]
    assert not [link for link in topo.links if "extra" in link.name]


def test_password_and_seed_env_render_one_secret_per_system(tmp_path: Path) -> None:
    text = (
        BASE.replace(
            "    probe: {tcp: true}\n",
            '    probe: {tcp: true}\n    password: "${secret:db_pw}"\n',
            1,
        )
        + 'seed: [seed]\nseed_env: {DB_PASSWORD: "${secret:db_pw}"}\n'
    )
    topo = load_topology(write(tmp_path, text))
    assert topo.component("db").password == "${secret:db_pw}"
    ctx = RenderContext(
        topology=topo,
        host="127.0.0.1",
        ports={"db": 1, "web-1": 2, "web-2": 3},
        link_ports={},
        run_dir=tmp_path,
        seed=1,
        find_binary=lambda name: name,
    )
    secret = render(topo.component("db").password or "", ctx, "db")
    assert len(secret) >= 32 and render(topo.seed_env["DB_PASSWORD"], ctx, None) == secret
    bad = text.replace('password: "${secret:db_pw}"', 'password: "${param:nope}"')
    with pytest.raises(ConfigError) as err:
        load_topology(write(tmp_path, bad))
    assert err.value.key == "components.db.password"
