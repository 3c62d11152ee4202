"""The sections of a topology file that say how to test the system: each mistake is one
load-time error naming file, key path, value and the valid choices (nothing started),
and the forms users write (no profiles, no steady state, a Domain of their own) load."""

from __future__ import annotations

import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.domain import DataDomain, Domain
from harness.errors import ConfigError
from harness.experiment import load_experiment
from harness.run.lifecycle import steady_rate
from harness.sut import load_sut

SYSTEM = textwrap.dedent(
    """
    name: shop
    params: {workers: 2}
    components:
      db:
        command: [db, --port, "${port}"]
        probe: {tcp: true}
      web:
        replicas: "${param:workers}"
        command: [web, --port, "${port}", --db, "${link:db}"]
        probe: {http: /healthz}
    links:
      - {from: client, to: web}
      - {from: web, to: db}
    operations:
      values: {n: {int: [1, 100]}}
      operations:
        get_item: {path: "/items/${n}"}
        put_item:
          method: PUT
          path: /items/${id}
          key: ${id}
          values: {id: {uuid: true}}
          headers: {X-Request: "${id}"}
          body: {id: "${id}", n: "${n}"}
    state:
      items: {sql: "SELECT id FROM items", via: web->db}
    settle: {http: /idle, component: web, until: {json: backlog, equals: 0}}
    """
)


def write(tmp_path: Path, text: str, name: str = "topology.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def data(text: str = SYSTEM) -> dict[str, Any]:
    return yaml.safe_load(text)


def dump(value: dict[str, Any]) -> str:
    return yaml.safe_dump(value, sort_keys=False)


def load_error(tmp_path: Path, value: dict[str, Any]) -> ConfigError:
    path = write(tmp_path, dump(value))
    with pytest.raises(ConfigError) as info:
        load_sut(path)
    assert info.value.source == str(path) and str(path) in str(info.value)
    return info.value


def test_the_system_loads(tmp_path: Path) -> None:
    sut = load_sut(write(tmp_path, SYSTEM))
    assert sut.operations is not None and sut.operations.writes == ("put_item",)
    assert sut.state["items"].via == "web->db" and sut.settle is not None
    assert sut.topology.profiles == ("default",)


# --------------------------------------------------------------------------- bad input


def test_a_template_naming_an_undefined_value(tmp_path: Path) -> None:
    d = data()
    d["operations"]["operations"]["put_item"]["headers"]["X-Request"] = "${idd}"
    e = load_error(tmp_path, d)
    assert e.key == "operations.operations.put_item.headers.X-Request" and e.value == "${idd}"
    assert "a declared value" in e.expected and "values: ['id', 'n']" in e.hint, str(e)
    assert "special: ['client', 'now']" in e.hint


def test_a_captured_value_without_requires_says_which_operation_captures_it(
    tmp_path: Path,
) -> None:
    d = data()
    ops = d["operations"]["operations"]
    ops["get_item"]["capture"] = {"etag": {"header": "ETag"}}
    ops["put_item"]["headers"]["If-Match"] = "${etag}"
    e = load_error(tmp_path, d)
    assert e.key == "operations.operations.put_item.headers.If-Match", str(e)
    assert "add requires: {etag: get_item}" in e.hint


@pytest.mark.parametrize(
    ("body", "key", "value"),
    [
        ({"id": "${id}", "when": "DATE"}, "operations.operations.put_item.body.when", "DATE"),
        (
            {"id": "${id}", "tags": ["a", "BYTES"]},
            "operations.operations.put_item.body.tags[1]",
            "BYTES",
        ),
        ({"id": "${id}", 7: "seven"}, "operations.operations.put_item.body", 7),
        ({"id": "${id"}, "operations.operations.put_item.body.id", "${id"),
    ],
)
def test_a_body_that_is_not_json(
    tmp_path: Path, body: dict[Any, Any], key: str, value: Any
) -> None:
    import datetime

    real = {"DATE": datetime.date(2026, 1, 2), "BYTES": b"\x00\x01"}

    def swap(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: swap(x) for k, x in v.items()}
        if isinstance(v, list):
            return [swap(x) for x in v]
        return real.get(v, v) if isinstance(v, str) else v

    d = data()
    d["operations"]["operations"]["put_item"]["body"] = swap(body)
    text = yaml.dump(d, sort_keys=False)  # !!binary and dates, as a YAML author may write
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_sut(path)
    e = info.value
    assert e.source == str(path) and e.key == key, str(e)
    assert e.value == real.get(value, value) and "a JSON body template" in e.expected, str(e)


@pytest.mark.parametrize(
    ("section", "change", "key", "value", "choices"),
    [
        ("state", {"via": "web->dbx"}, "state.items.via", "web->dbx", "'web->db'"),
        ("state", {"via": "db->web"}, "state.items.via", "db->web", "'web-1->db'"),
        (
            "state",
            {"via": None, "component": "postgres"},
            "state.items.component",
            "postgres",
            "['db', 'web', 'web-1', 'web-2']",
        ),
        (
            "settle",
            {"component": "app"},
            "settle.component",
            "app",
            "['db', 'web', 'web-1', 'web-2']",
        ),
    ],
)
def test_a_query_or_settle_naming_what_the_topology_lacks(
    tmp_path: Path, section: str, change: dict[str, Any], key: str, value: str, choices: str
) -> None:
    d = data()
    target = d["state"]["items"] if section == "state" else d["settle"]
    for k, v in change.items():
        if v is None:
            del target[k]
        else:
            target[k] = v
    e = load_error(tmp_path, d)
    assert e.key == key and e.value == value, str(e)
    assert choices in e.expected, str(e)


def test_an_http_reader_naming_a_missing_component(tmp_path: Path) -> None:
    d = data()
    d["state"]["listing"] = {"http": {"list": "/items"}, "component": "api"}
    e = load_error(tmp_path, d)
    assert e.key == "state.listing.component" and e.value == "api", str(e)


def test_a_component_missing_in_one_profile_is_named_with_that_profile(tmp_path: Path) -> None:
    d = data()
    d["profiles"] = {"big": {"workers": 3}, "small": {"workers": 1}}
    d["state"]["items"]["via"] = "web-3->db"
    path = write(tmp_path, dump(d))
    assert load_sut(path, profile="big").state["items"].via == "web-3->db"
    with pytest.raises(ConfigError, match=r"state\.items\.via.*\(small\)"):
        load_sut(path, profile="small")


# --------------------------------------------------------------------------- forms users write


EXPERIMENT = {
    "name": "e",
    "description": "an experiment on a system of its own",
    "system": {"topology": "topology.yaml"},
    "workload": {"duration": "4s", "rate": [{"at": 0, "rps": 20}], "mix": {"get_item": 1}},
    "invariants": [{"availability": {"min": 0.99}}],
}


def test_a_topology_without_profiles_runs_once_as_default(tmp_path: Path) -> None:
    write(tmp_path, SYSTEM)
    exp = load_experiment(write(tmp_path, dump(EXPERIMENT), "e.yaml"))
    assert exp.profiles == ("default",)
    assert exp.sut("default").topology.profile == "default"


def test_an_all_absolute_experiment_needs_no_capacity(tmp_path: Path) -> None:
    write(tmp_path, SYSTEM)
    exp = load_experiment(write(tmp_path, dump(EXPERIMENT), "e.yaml"))
    assert exp.workload.absolute and not exp.needs_capacity
    relative = {**EXPERIMENT, "workload": {**EXPERIMENT["workload"], "rate": [{"at": 0, "x": 0.2}]}}
    assert load_experiment(write(tmp_path, dump(relative), "r.yaml")).needs_capacity


def test_steady_state_false_turns_it_off_in_the_topology_and_the_experiment(
    tmp_path: Path,
) -> None:
    write(tmp_path, SYSTEM + "steady_state: false\n")
    exp = load_experiment(write(tmp_path, dump(EXPERIMENT), "e.yaml"))
    assert exp.steady(exp.sut("default")) is None
    write(tmp_path, SYSTEM + "steady_state: {rate: {rps: 5}, op: get_item}\n")
    on = load_experiment(write(tmp_path, dump(EXPERIMENT), "e.yaml"))
    steady = on.steady(on.sut("default"))
    assert steady is not None and steady.rps(None) == 5 and not steady.relative
    off = load_experiment(write(tmp_path, dump({**EXPERIMENT, "steady_state": False}), "o.yaml"))
    assert off.steady(off.sut("default")) is None


def test_an_absolute_steady_state_rate_is_used_when_nothing_calibrates(tmp_path: Path) -> None:
    write(tmp_path, SYSTEM + "steady_state: {rate: {rps: 5}, op: get_item}\n")
    exp = load_experiment(write(tmp_path, dump(EXPERIMENT), "e.yaml"))
    steady = exp.steady(exp.sut("default"))
    assert steady is not None
    first = exp.workload.rate[0].rate.resolve(None)
    assert first != 5 and steady_rate(steady, None, exp) == 5
    write(tmp_path, SYSTEM + "steady_state: {rate: {x: 0.1}, op: get_item}\n")
    relative = load_experiment(write(tmp_path, dump(EXPERIMENT), "e.yaml"))
    rel = relative.steady(relative.sut("default"))
    assert rel is not None and rel.relative
    assert steady_rate(rel, 300.0, relative) == 30
    assert steady_rate(rel, None, relative) == first  # no C: the first phase's rate


USER_DOMAIN = textwrap.dedent(
    """
    from harness.domain import DataDomain, Problem

    class ShopDomain(DataDomain):
        def check_params(self, params):
            if params["workers"] > 4:
                return (Problem("workers", params["workers"], "at most 4 workers"),)
            return ()

        def invariants(self):
            return {}
    """
)


def module(tmp_path: Path, text: str) -> str:
    """A module of `text` in the topology's folder, under a name no other test uses."""
    name = f"shopdomain_{uuid.uuid4().hex[:12]}"
    (tmp_path / f"{name}.py").write_text(text)
    return name


def test_a_user_domain_is_imported_from_the_topologys_folder_and_checks_params(
    tmp_path: Path,
) -> None:
    name = module(tmp_path, USER_DOMAIN)
    write(tmp_path, SYSTEM + f"domain: {name}:ShopDomain\n")
    sut = load_sut(tmp_path / "topology.yaml")
    assert isinstance(sut.domain, Domain) and isinstance(sut.domain, DataDomain)
    assert type(sut.domain).__name__ == "ShopDomain"
    bad = {**EXPERIMENT, "system": {"topology": "topology.yaml", "workers": 9}}
    path = write(tmp_path, dump(bad), "e.yaml")
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    assert info.value.key == "system.workers" and info.value.value == 9
    assert "at most 4 workers" in str(info.value) and "ShopDomain" in str(info.value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("shopdomain", "module:attribute naming a Domain"),
        ("shopdomain:Nothing", "module:attribute that can be imported"),
        ("shopdomain:NotADomain", "a factory returning a Domain"),
    ],
)
def test_a_bad_domain_is_a_load_time_error(tmp_path: Path, value: str, expected: str) -> None:
    name = module(
        tmp_path, USER_DOMAIN + "\nclass NotADomain:\n    def __init__(self, **kw):\n        pass\n"
    )
    path = write(tmp_path, SYSTEM + f"domain: {value.replace('shopdomain', name)}\n")
    with pytest.raises(ConfigError) as info:
        load_sut(path)
    assert info.value.key == "domain" and expected in str(info.value), str(info.value)
