"""Experiment files: the schema loads into typed objects, and every kind of mistake gives
one ConfigError naming the file, the key path and the value received."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.errors import ConfigError
from harness.experiment import Expectation, load_experiment
from harness.faults import Latency
from harness.invariants import Verdict
from harness.loopback import check_loopback
from harness.topology import REFERENCE
from harness.validate import Node
from harness.workload import Abuser, Buggy, Good, Impatient, Ramp, Series
from tests.support import reference_operations

ROOT = Path(__file__).resolve().parents[2]
MINI = ROOT / "tests" / "fixtures" / "mini.yaml"

BASE: dict[str, Any] = {
    "name": "t",
    "description": "a test experiment",
    "system": {"app_workers": 2},
    "workload": {
        "duration": "20s",
        "compression": 2,
        "rate": [
            {"at": "0s", "x": 0.2, "phase": "steady"},
            {"at": "5s", "ramp_to": 2.0, "over": "2s", "phase": "surge"},
            {"at": "12s", "rps": 50, "phase": "recovery"},
        ],
        "clients": {"good": 0.9, "buggy": 0.1},
    },
    "faults": [
        {"at": "6s", "for": "3s", "latency": {"link": "app->postgres", "ms": 500}},
        {"at": "8s", "kill": {"component": "gateway-a"}},
    ],
    "invariants": [
        {"latency": {"op": "show_code", "p99_ms": 300, "during": "steady"}},
        {"goodput": {"min_fraction_of_capacity": 0.8, "during": "surge"}},
        {"recovers": {"within": "6s"}},
        {"no_lost_scans": {}},
    ],
    "expect": {"naive": {"fail": ["goodput"]}, "hardened": "pass"},
}


def write(tmp_path: Path, data: Any, name: str = "exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False))
    return path


def variant(path: str, value: Any) -> dict[str, Any]:
    """BASE with the value at a dotted path (list indexes as numbers) replaced; None deletes."""
    data = copy.deepcopy(BASE)
    keys: list[Any] = [int(k) if k.isdigit() else k for k in path.split(".")]
    target = data
    for k in keys[:-1]:
        target = target[k]
    if value is None:
        del target[keys[-1]]
    else:
        target[keys[-1]] = value
    return data


def error(tmp_path: Path, data: Any) -> ConfigError:
    path = write(tmp_path, data)
    with pytest.raises(ConfigError) as info:
        load_experiment(path)
    assert info.value.source == str(path), "the error names the file"
    assert str(path) in str(info.value)
    return info.value


# --------------------------------------------------------------------------- good files


def test_base_loads_into_typed_objects(tmp_path: Path) -> None:
    exp = load_experiment(write(tmp_path, BASE))
    assert exp.name == "t" and exp.system.topology == REFERENCE
    assert exp.profiles == ("naive", "hardened")
    assert dict(exp.system.params) == {"app_workers": 2}
    w = exp.workload
    assert (w.duration, w.compression) == (20.0, 2.0)
    assert [s.at for s in w.rate] == [0.0, 5.0, 12.0]
    assert w.phase_names == ("steady", "surge", "recovery")
    assert [i.id for i in exp.invariants] == ["latency", "goodput", "recovers", "no_lost_scans"]
    assert [(f.at, f.duration, f.fault.kind) for f in exp.faults] == [
        (6.0, 3.0, "latency"),
        (8.0, None, "kill"),
    ]
    assert isinstance(exp.faults[0].fault, Latency) and exp.faults[0].fault.link == "app->postgres"
    assert [(f.at, f.duration) for f in exp.fault_schedule()] == [(3.0, 1.5), (4.0, None)]
    assert exp.expectation("naive") == Expectation("fail", ("goodput",))
    assert exp.expectation("hardened") == Expectation("pass")


def test_workload_becomes_workload_objects(tmp_path: Path) -> None:
    exp = load_experiment(write(tmp_path, BASE))
    ops = reference_operations()
    wl = exp.workload.workload(ops, seed=3)
    assert isinstance(wl.profile, Series)
    kinds = [type(s).__name__ for s in wl.profile.segments]
    assert kinds == ["Constant", "Ramp", "Constant", "Constant"]
    ramp = wl.profile.segments[1]
    assert isinstance(ramp, Ramp) and ramp.start.value == 0.2 and ramp.end.value == 2.0
    assert wl.profile.duration == 20.0
    assert [c.name for c in wl.clients] == ["good", "buggy"]
    assert isinstance(wl.clients[0].behaviour, Good)
    schedule = exp.schedule(ops, capacity=100.0, seed=3)
    assert schedule.duration == 10.0  # compressed 2x
    assert schedule.rate_at(9.0) == pytest.approx(50.0)  # rps phase, compressed time 18 s
    phases = {p.name: p for p in exp.phases(100.0)}
    assert (phases["surge"].start, phases["surge"].end) == (2.5, 6.0)
    assert phases["surge"].peak_rps == pytest.approx(200.0)
    assert phases["recovery"].peak_rps == 50.0
    fs = exp.final_state(100.0)
    assert fs.compression == 2.0 and fs.duration == 10.0 and fs.surge_over() == 6.0


def test_metrics_interval_is_experiment_time(tmp_path: Path) -> None:
    assert load_experiment(write(tmp_path, BASE)).metrics_every is None  # the topology's
    exp = load_experiment(write(tmp_path, {**BASE, "metrics": {"every": "1s"}}))
    assert exp.metrics_every == 0.5  # compression 2: half a second of run time


@pytest.mark.parametrize(
    ("metrics", "key", "expected"),
    [
        ({"every": "100ms"}, "metrics.every", "at least 100ms of run time"),
        ({"every": "0s"}, "metrics.every", None),
        ({"often": "1s"}, "metrics.often", None),
        ("1s", "metrics", None),
    ],
)
def test_bad_metrics_interval(tmp_path: Path, metrics: Any, key: str, expected: Any) -> None:
    e = error(tmp_path, {**BASE, "metrics": metrics})
    assert e.key == key, str(e)
    assert expected is None or expected in str(e)


def test_metrics_interval_needs_a_topology_with_metrics(tmp_path: Path) -> None:
    (tmp_path / "mini.yaml").write_text(MINI.read_text())
    data = {
        **BASE,
        "system": {"topology": "mini.yaml"},
        "metrics": {"every": "1s"},
        "faults": [],
        "invariants": [{"latency": {"op": "index", "p99_ms": 300}}],
        "expect": {},
    }
    e = error(tmp_path, data)
    assert e.key == "metrics" and "declares no metrics" in str(e)


def test_durations_accept_units_and_numbers(tmp_path: Path) -> None:
    data = variant("workload.duration", "2m")
    data["workload"]["rate"][1]["at"] = "5000ms"
    data["workload"]["rate"][2]["at"] = 12
    exp = load_experiment(write(tmp_path, data))
    assert exp.workload.duration == 120.0
    assert [s.at for s in exp.workload.rate] == [0.0, 5.0, 12.0]


def test_clients_with_behaviour_parameters(tmp_path: Path) -> None:
    clients = {
        "impatient": {"share": 0.5, "patience": ["1s", "3s"], "pause": "500ms"},
        "buggy": {"share": "5%", "max_attempts": 7, "timeout": "2s"},
        "abuser": {"rate": {"rps": 30}, "identities": 2},
        "apps": {"behaviour": "good", "share": 0.45, "max_retries": 1, "budget": False},
    }
    exp = load_experiment(write(tmp_path, variant("workload.clients", clients)))
    by = {c.name: c for c in exp.workload.clients}
    assert by["impatient"].behaviour == Impatient(patience=(1.0, 3.0), pause=(0.5, 0.5))
    assert by["buggy"].share == 0.05 and by["buggy"].behaviour == Buggy(2.0, 7)
    ab = by["abuser"].behaviour
    assert isinstance(ab, Abuser) and ab.identities == 2 and ab.rate is not None
    assert by["abuser"].share == 0
    assert by["apps"].behaviour == Good(max_retries=1, budget=None)


def test_followups_default_on_and_values_replace_the_systems(tmp_path: Path) -> None:
    exp = load_experiment(write(tmp_path, BASE))
    assert exp.workload.followups and not exp.workload.values
    data = variant("workload.followups", False)
    data["workload"]["values"] = {"person": {"int": [1, 50]}}
    exp = load_experiment(write(tmp_path, data))
    assert not exp.workload.followups
    drawn = exp.schedule(reference_operations(), capacity=100.0, seed=1)
    people = {a.args["person"] for a in drawn.arrivals() if a.op == "show_code"}
    assert people and max(people) <= 50


def test_single_expectation_applies_to_every_profile(tmp_path: Path) -> None:
    exp = load_experiment(write(tmp_path, variant("expect", "pass")))
    assert exp.expectation("naive") == exp.expectation("hardened") == Expectation("pass")
    fixed = variant("system", {"profile": "naive"})
    fixed["expect"] = {"fail": ["recovers"]}
    exp = load_experiment(write(tmp_path, fixed))
    assert exp.profiles == ("naive",)
    assert exp.expectation("naive") == Expectation("fail", ("recovers",))


def test_user_topology_relative_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "topo").mkdir()
    (tmp_path / "topo" / "mini.yaml").write_text(MINI.read_text())
    data = variant("system", {"topology": "topo/mini.yaml", "web_replicas": 3})
    data["expect"] = {"single": "pass"}
    data["faults"] = []
    data["invariants"] = [{"latency": {"op": "index", "p99_ms": 300}}]
    exp = load_experiment(write(tmp_path, data))
    assert exp.system.topology == (tmp_path / "topo" / "mini.yaml").resolve()
    assert exp.profiles == ("single",)


def test_expectation_judges_verdicts() -> None:
    ok, bad, unk = Verdict("a", True), Verdict("b", False), Verdict("c", None)
    assert Expectation("pass").judge([ok]).met
    j = Expectation("pass").judge([ok, unk])
    assert j.outcome == "not_met" and "c (unknown)" in j.why
    assert Expectation("fail", ("b",)).judge([ok, bad]).met
    j = Expectation("fail", ("a", "c")).judge([ok, bad, unk])
    assert j.outcome == "not_met" and "a (pass)" in j.why and "c (unknown)" in j.why
    assert Expectation("skip").judge([bad]).met


def test_fail_means_the_others_hold_unless_others_any() -> None:
    ok, bad, other = Verdict("a", True), Verdict("b", False), Verdict("c", False)
    j = Expectation("fail", ("b",)).judge([ok, bad, other])
    assert j.outcome == "not_met" and "also not holding: c (fail)" in j.why
    assert Expectation("fail", ("b",), "any").judge([ok, bad, other]).met


def test_may_fail_is_judged_on_neither_side() -> None:
    ok, bad, other = Verdict("a", True), Verdict("b", False), Verdict("c", False)
    j = Expectation("fail", ("b",), may_fail=("c",)).judge([ok, bad, other])
    assert j.met and "c too, allowed by may_fail" in j.why
    assert Expectation("fail", ("b",), may_fail=("c",)).judge([ok, bad, Verdict("c", True)]).met
    j = Expectation("fail", ("b",), may_fail=("a",)).judge([ok, bad, other])
    assert j.outcome == "not_met" and "c (fail)" in j.why
    assert Expectation("pass", may_fail=("c",)).judge([ok, other]).met


def test_may_fail_loads_and_refuses_an_id_also_under_fail(tmp_path: Path) -> None:
    data = variant("expect", {"naive": {"fail": ["goodput"], "may_fail": ["recovers"]}})
    exp = load_experiment(write(tmp_path, data))
    assert exp.expectation("naive") == Expectation("fail", ("goodput",), may_fail=("recovers",))
    data = variant("expect", {"naive": {"fail": ["goodput"], "may_fail": ["goodput"]}})
    with pytest.raises(ConfigError, match="may_fail"):
        load_experiment(write(tmp_path, data))


@pytest.mark.parametrize("name", ["load_generator", "machine", "faults_took_effect"])
@pytest.mark.parametrize("valid", [None, False])
def test_a_run_that_cannot_judge_is_inconclusive_whatever_is_expected(name, valid) -> None:
    untrusted = Verdict(name, valid, message="could not judge")
    for expectation in (Expectation("pass"), Expectation("fail", ("b",), "any")):
        j = expectation.judge([Verdict("a", True), Verdict("b", False), untrusted])
        assert j.outcome == "inconclusive" and "could not judge" in j.why


def test_morning_surge_example_loads() -> None:
    exp = load_experiment(ROOT / "experiments" / "morning-surge.yaml")
    assert exp.name == "morning-surge"
    assert {"steady", "surge", "recovery"} <= set(exp.workload.phase_names)
    assert exp.expectation("hardened").outcome == "pass"


def test_every_experiment_in_the_catalogue_loads() -> None:
    for path in sorted((ROOT / "experiments").glob("*.yaml")):
        load_experiment(path)


# --------------------------------------------------------------------------- bad files

BAD: list[tuple[str, str, Any, Any, str]] = [
    # (test id, dotted path to change, new value, expected key path, expected value)
    ("unknown top key", "colour", "red", "colour", "colour"),
    ("unknown rate key", "workload.rate.1.ramp", 3, "workload.rate[1].ramp", "ramp"),
    ("wrong type", "workload.compression", "fast", "workload.compression", "fast"),
    ("bad duration", "workload.duration", "5 sec", "workload.duration", "5 sec"),
    ("negative duration", "faults.0.for", "-2s", "faults[0].for", "-2s"),
    ("zero duration", "workload.rate.1.over", 0, "workload.rate[1].over", 0),
    (
        "bad fraction",
        "invariants.1.goodput.min_fraction_of_capacity",
        1.5,
        "invariants[1].goodput.min_fraction_of_capacity",
        1.5,
    ),
    (
        "bad percent",
        "invariants.1.goodput.min_fraction_of_capacity",
        "80 percent",
        "invariants[1].goodput.min_fraction_of_capacity",
        "80 percent",
    ),
    ("non-loopback host", "system.host", "10.0.0.7", "system.host", "10.0.0.7"),
    (
        "non-loopback url",
        "faults.0.latency.url",
        "http://example.com:8474",
        "faults[0].latency.url",
        "http://example.com:8474",
    ),
    (
        "unknown invariant",
        "invariants.3",
        {"latncy": {"p99_ms": 1}},
        "invariants[3]",
        {"latncy": {"p99_ms": 1}},
    ),
    (
        "unknown invariant key",
        "invariants.0.latency.p98_ms",
        3,
        "invariants[0].latency.p98_ms",
        "p98_ms",
    ),
    (
        "latency without bound",
        "invariants.0",
        {"latency": {"op": "show_code"}},
        "invariants[0].latency",
        {"op": "show_code"},
    ),
    (
        "unknown phase",
        "invariants.0.latency.during",
        "morning",
        "invariants[0].latency.during",
        "morning",
    ),
    (
        "unknown recovery anchor",
        "invariants.2.recovers.after",
        "dawn",
        "invariants[2].recovers.after",
        "dawn",
    ),
    ("unknown profile in expect", "expect.medium", "pass", "expect.medium", "medium"),
    ("unknown id in expect", "expect.naive.fail", ["latncy"], "expect.naive.fail[0]", "latncy"),
    ("bad expect outcome", "expect.hardened", "passes", "expect.hardened", "passes"),
    (
        "two fault kinds",
        "faults.1.pause",
        {"component": "app-1"},
        "faults[1]",
        {"at": "8s", "kill": {"component": "gateway-a"}, "pause": {"component": "app-1"}},
    ),
    ("fault after the end", "faults.1.at", "30s", "faults[1].at", "30s"),
    ("fault heals after the end", "faults.0.for", "15s", "faults[0].for", "15s"),
    ("unknown fault kind", "faults.1", {"at": 1, "explode": {}}, "faults[1].explode", "explode"),
    ("bad fault value", "faults.0.latency.ms", "lots", "faults[0].latency.ms", "lots"),
    ("unknown link", "faults.0.latency.link", "app->mysql", "faults[0].latency.link", "app->mysql"),
    # gateway-b exists under hardened (2 gateways) but not naive (1)
    (
        "component missing in a profile",
        "faults.1.kill",
        "gateway-b",
        "faults[1].kill.component",
        "gateway-b",
    ),
    ("unknown profile", "system.profile", "medium", "system.profile", "medium"),
    ("unknown system key", "system.workers", 3, "system.workers", "workers"),
    ("bad param type", "system.app_workers", "two", "system.app_workers", "two"),
    ("unknown override", "system.overrides", {"cach": False}, "system.overrides.cach", "cach"),
    ("bad override type", "system.overrides", {"cache": 3}, "system.overrides.cache", 3),
    ("bad backend", "system.backend", "k8s", "system.backend", "k8s"),
    ("missing topology file", "system.topology", "nope.yaml", "system.topology", "nope.yaml"),
    ("unknown mix op", "workload.mix", {"show_code": 1, "pay": 1}, "workload.mix.pay", "pay"),
    ("bad mix preset", "workload.mix", "holiday", "workload.mix", "holiday"),
    (
        "class without behaviour",
        "workload.clients.apps",
        0.1,
        "workload.clients.apps.behaviour",
        None,
    ),
    (
        "behaviour key of another kind",
        "workload.clients.buggy",
        {"share": 0.1, "patience": "2s"},
        "workload.clients.buggy.patience",
        "patience",
    ),
    (
        "abuser with rate and share",
        "workload.clients.abuser",
        {"share": 0.1, "rate": {"x": 0.1}},
        "workload.clients.abuser.share",
        0.1,
    ),
    ("unknown value", "workload.values", {"age": {"int": [1, 9]}}, "workload.values.age", "age"),
    (
        "bad generator",
        "workload.values",
        {"person": {"int": [9, 1]}},
        "workload.values.person.int[1]",
        1,
    ),
    ("followups not a flag", "workload.followups", "often", "workload.followups", "often"),
    (
        "unknown op in an invariant",
        "invariants.0.latency.op",
        "show_cod",
        "invariants[0].latency.op",
        "show_cod",
    ),
    ("huge rate", "workload.rate.2.rps", 1e12, "workload.rate[2].rps", 1e12),
    ("huge multiple of C", "workload.rate.0.x", 1e6, "workload.rate[0].x", 1e6),
    ("ten years", "workload.duration", "87600h", "workload.duration", "87600h"),
    ("huge seed", "seed", 2**70, "seed", 2**70),
    ("fixed C of zero", "capacity", 0, "capacity", 0),
    (
        "ramp first",
        "workload.rate.0",
        {"at": 0, "ramp_to": 1.0, "over": "1s"},
        "workload.rate[0].ramp_to",
        1.0,
    ),
    ("times not increasing", "workload.rate.2.at", "4s", "workload.rate[2].at", "4s"),
    ("rate and ramp together", "workload.rate.2.x", 1.0, "workload.rate[2]", None),
    ("ramp too long", "workload.rate.1.over", "9s", "workload.rate[1].over", "9s"),
    ("missing required key", "description", None, "description", None),
    ("bad name", "name", "Morning Surge", "name", "Morning Surge"),
    ("unknown search key", "search", {"max_examples": 10}, "search.max_examples", "max_examples"),
    ("empty invariants", "invariants", [], "invariants", []),
]


@pytest.mark.parametrize(
    ("change", "value", "key", "received"),
    [b[1:] for b in BAD],
    ids=[b[0] for b in BAD],
)
def test_bad_input_names_file_key_and_value(
    tmp_path: Path, change: str, value: Any, key: str, received: Any
) -> None:
    e = error(tmp_path, variant(change, value))
    assert e.key == key, str(e)
    if received is not None:
        assert e.value == received, str(e)
    assert key in str(e) and "expected" in str(e)


def test_duplicate_invariant_ids(tmp_path: Path) -> None:
    data = variant("invariants.3", {"latency": {"p99_ms": 10, "id": "fast"}})
    data["invariants"][0]["latency"]["id"] = "fast"
    e = error(tmp_path, data)
    assert e.key == "invariants[3]" and "'fast' is used twice" in str(e)


def test_repeated_kinds_get_numbered_ids(tmp_path: Path) -> None:
    data = variant("invariants.3", {"latency": {"p50_ms": 10}})
    data["expect"] = {"naive": {"fail": ["latency#2"]}}
    exp = load_experiment(write(tmp_path, data))
    assert [i.id for i in exp.invariants][:4] == ["latency#1", "goodput", "recovers", "latency#2"]


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    e = error(tmp_path, "name: t\nworkload: {duration: [\n")
    assert e.key.startswith("line ")


def test_loopback_forms_are_accepted(tmp_path: Path) -> None:
    for host in ("127.0.0.1", "127.3.2.1", "localhost", "::1"):
        load_experiment(write(tmp_path, variant("system.host", host)))
    for url in ("http://[::1]:8474/", "http://localhost/x", "https://127.0.0.9:1"):
        check_loopback(Node({"a": [{"b": url}]}, "x.yaml"))
    for host in ("[::1]:80", "127.0.0.1:8080"):
        check_loopback(Node({"host": host}, "x.yaml"))
    with pytest.raises(ConfigError) as info:
        check_loopback(Node({"a": [{"b": "postgres://db.example:5432/x"}]}, "x.yaml"))
    assert info.value.key == "a[0].b"


def test_allow_hosts_is_a_caller_decision(tmp_path: Path) -> None:
    path = write(tmp_path, variant("system.host", "10.0.0.7"))
    assert load_experiment(path, allow_hosts={"10.0.0.7"}).system.host == "10.0.0.7"


def test_the_schema_in_the_module_docstring_loads(tmp_path: Path) -> None:
    import harness.experiment as module

    doc = module.__doc__ or ""
    text = doc.split("```yaml\n", 1)[1].split("```", 1)[0]
    exp = load_experiment(write(tmp_path, text, "morning-surge.yaml"))
    assert exp.name == "morning-surge" and len(exp.invariants) == 6
    assert [c.name for c in exp.workload.clients] == ["impatient", "buggy", "abuser", "apps"]
    assert exp.expectation("naive") == Expectation("fail", ("recovers", "goodput"))
