"""Loads relative to the system under test: `x_own` rates are multiples of the running
profile's own capacity, parsed and checked at load time, resolved against that
capacity (calibrated and cached per profile), in the same workload as `x` rates."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.calibrate import Capacity
from harness.errors import ConfigError
from harness.experiment import load_experiment
from harness.journal import CapacityRecord
from harness.run import capacity as capacity_module
from harness.validate import Node
from harness.workload import Abuser, WorkloadError, x, x_own
from harness.workload.spec import parse_rate, parse_workload
from tests.support import reference_operations

BASE: dict[str, Any] = {
    "name": "t",
    "description": "abusers past the running profile's own capacity",
    "workload": {
        "duration": "20s",
        "rate": [
            {"at": "0s", "x": 0.3, "phase": "steady"},
            {"at": "5s", "x_own": 1.0, "phase": "surge"},
            {"at": "10s", "ramp_to": 2.0, "over": "2s", "phase": "more"},
        ],
        "clients": {"good": 1.0, "abuser": {"share": 0, "rate": {"x_own": 3}, "identities": 3}},
    },
    "invariants": [{"latency": {"op": "show_code", "p99_ms": 300}}],
}


def write(tmp_path: Path, data: Any) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def workload(data: dict[str, Any]) -> Any:
    return parse_workload(Node(data, "x.yaml", "workload"), reference_operations())


def test_x_own_rates_resolve_against_the_own_capacity() -> None:
    spec = workload(BASE["workload"])
    assert [s.rate for s in spec.rate] == [x(0.3), x_own(1.0), x_own(2.0)]  # ramp keeps the unit
    abuser = next(c for c in spec.clients if isinstance(c.behaviour, Abuser))
    assert abuser.behaviour.rate == x_own(3)
    assert spec.needs_own and not spec.absolute
    sched = spec.schedule(reference_operations(), capacity=1000.0, own_capacity=2500.0)
    assert sched.rate_at(1.0) == pytest.approx(300.0)  # 0.3 C
    assert sched.rate_at(6.0) == pytest.approx(2500.0)  # 1.0 x own
    assert sched.rate_at(15.0) == pytest.approx(5000.0)  # 2.0 x own
    with pytest.raises(WorkloadError, match="own capacity"):
        spec.schedule(reference_operations(), capacity=1000.0)


def test_a_rate_mapping_takes_x_own() -> None:
    assert parse_rate(Node({"x_own": 2}, "x.yaml", "r")) == x_own(2)
    assert str(x_own(2)) == "2C_own"


@pytest.mark.parametrize(
    ("step", "key"),
    [
        ({"at": "5s", "x": 1.0, "x_own": 1.0}, "workload.rate[1]"),
        ({"at": "5s", "x_own": -1}, "workload.rate[1].x_own"),
        ({"at": "5s", "x_own": 1000}, "workload.rate[1].x_own"),
        ({"at": "5s", "ramp_to": {"x_own": 1, "rps": 3}, "over": "1s"}, "workload.rate[1].ramp_to"),
    ],
)
def test_x_own_mistakes_are_refused_at_load(step: dict[str, Any], key: str) -> None:
    data = copy.deepcopy(BASE["workload"])
    data["rate"] = [data["rate"][0], step]
    with pytest.raises(ConfigError) as e:
        workload(data)
    assert e.value.key == key


def test_an_experiment_with_x_own_loads_and_needs_the_own_capacity(tmp_path: Path) -> None:
    exp = load_experiment(write(tmp_path, BASE))
    assert exp.needs_own_capacity and exp.needs_capacity
    phases = {p.name: p.peak_rps for p in exp.phases(1000.0, 2500.0)}
    assert phases == {"steady": 300.0, "surge": 2500.0, "more": 5000.0}


def test_x_own_with_a_fixed_capacity_is_refused(tmp_path: Path) -> None:
    data = {**BASE, "capacity": 800}
    with pytest.raises(ConfigError) as e:
        load_experiment(write(tmp_path, data))
    assert e.value.key == "workload.rate[1].x_own"
    assert "capacity" in (e.value.hint or "")


def _capacity(rps: float) -> Capacity:
    return Capacity.from_dict(
        {
            "rps": rps,
            "p99": 0.01,
            "key": "k",
            "measured_at": "2026-01-01T00:00:00+00:00",
            "steps": [],
            "bound": "system",
        }
    )


def _own(
    exp: Any, base: CapacityRecord, profile: str = "hardened", at_most: float | None = None
) -> CapacityRecord | None:
    """The profile's own capacity as a run resolves it, with nothing recalibrated."""
    return capacity_module.resolve_own_capacity(
        exp,
        exp.sut(profile),
        None,  # type: ignore[arg-type]
        base,
        profile=profile,
        backend="local",
        recalibrate=False,
        seed=1,
        say=print,
        at_most=at_most,
    )


def test_the_own_capacity_is_cached_per_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exp = load_experiment(write(tmp_path, BASE))
    keys: list[str] = []

    def cached(key: str) -> Capacity:
        keys.append(key)
        return _capacity(2500.0 if "hardened" in key else 1000.0)

    monkeypatch.setattr(capacity_module, "cached_capacity", cached)
    base = CapacityRecord(1000.0, "cached", "naive")
    own = _own(exp, base)
    assert own is not None and own.rps == 2500.0 and own.profile == "hardened"
    assert own.source == "cached" and "hardened" in keys[-1]
    same = _own(exp, base, profile="naive")
    assert same is base  # C already is naive's own


def test_a_given_c_is_the_own_capacity_of_the_profile_it_is_measured_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exp = load_experiment(write(tmp_path, BASE))
    assert exp.system.capacity_from == "naive"

    def never(key: str) -> Capacity:
        raise AssertionError(f"looked up {key}: a given C of naive is naive's own capacity")

    monkeypatch.setattr(capacity_module, "cached_capacity", never)
    given = CapacityRecord(1100.0, "given", None)
    own = _own(exp, given, profile="naive")
    assert own is given


def test_no_own_capacity_without_x_own(tmp_path: Path) -> None:
    data = copy.deepcopy(BASE)
    data["workload"]["rate"] = [{"at": "0s", "x": 0.3}]
    data["workload"]["clients"] = {"good": 1.0}
    exp = load_experiment(write(tmp_path, data))
    base = CapacityRecord(1000.0, "cached", "naive")
    own = _own(exp, base)
    assert own is None


def test_the_run_command_passes_a_given_own_capacity(monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    import harness.run as run_package
    from harness.cli import main

    seen: list[Any] = []

    class Stop(Exception):
        pass

    def fake_run(experiment: Any, options: Any) -> Any:
        seen.append(options)
        raise Stop

    monkeypatch.setattr(run_package, "run", fake_run)
    path = Path(__file__).resolve().parents[2] / "experiments" / "overload-own.yaml"
    args = ["run", str(path), "--profile", "hardened", "--own-capacity", "2500"]
    result = CliRunner().invoke(main, args)
    assert isinstance(result.exception, Stop), result.output
    assert seen[0].own_capacity == 2500.0 and seen[0].profile == "hardened"


def test_a_calibrated_c_above_the_cap_is_lowered_to_it_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`--harness-capacity-max`: C as measured, but at most the cap; the record keeps the
    measured figure, and the summary line shows both."""
    from harness.summary import capacity_text

    exp = load_experiment(write(tmp_path, BASE))
    monkeypatch.setattr(capacity_module, "cached_capacity", lambda key: _capacity(1450.0))
    common: dict[str, Any] = dict(
        backend="local", given=None, recalibrate=False, seed=1, say=print, profile="naive"
    )
    capped = capacity_module.resolve_capacity(
        exp,
        exp.sut("naive"),
        None,
        at_most=1100.0,
        **common,  # type: ignore[arg-type]
    )
    assert capped.rps == 1100.0 and capped.capped_from == 1450.0
    assert "capped: 1450 req/s measured" in capacity_text(capped)
    slow = capacity_module.resolve_capacity(
        exp,
        exp.sut("naive"),
        None,
        at_most=2000.0,
        **common,  # type: ignore[arg-type]
    )
    assert slow.rps == 1450.0 and slow.capped_from is None


def test_a_calibrated_own_capacity_above_the_cap_is_lowered_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cap bounds every load the suite offers: `x_own` rates too."""
    exp = load_experiment(write(tmp_path, BASE))
    monkeypatch.setattr(capacity_module, "cached_capacity", lambda key: _capacity(1200.0))
    base = CapacityRecord(1000.0, "cached", "naive")
    own = _own(exp, base, at_most=1100.0)
    assert own is not None and own.rps == 1100.0 and own.capped_from == 1200.0
    free = _own(exp, base)
    assert free is not None and free.rps == 1200.0 and free.capped_from is None
