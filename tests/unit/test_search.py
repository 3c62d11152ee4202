"""The search runner on a fake system: k-of-n failure, cached verdicts, shrinking to the
minimal schedule, unreproduced failures said plainly, the budget, the example database,
the replay file; the `search:` schema; resetting a reused system."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.errors import ConfigError
from harness.experiment import load_experiment
from harness.invariants import Verdict
from harness.journal import CapacityRecord, SearchJournal
from harness.journal import read as read_journal
from harness.run import reset_system
from harness.search.engine import search
from harness.search.space import schedule_key
from tests.support import reference

BASE = {
    "name": "s",
    "description": "a search",
    "system": {"profile": "hardened"},
    "workload": {
        "duration": "16s",
        "compression": 4,
        "rate": [{"at": "0s", "x": 0.3, "phase": "steady"}],
        "clients": {"good": 1.0},
    },
    "invariants": [{"availability": {"op": "show_code", "min": 0.99}}, {"no_lost_scans": {}}],
    "expect": {"hardened": {"fail": ["availability"]}},
    "search": {
        "kinds": ["latency", "kill"],
        "targets": ["app->postgres", "app-1", "app-2"],
        "max_faults": 2,
        "window": ["2s", "10s"],
        "duration": ["1s", "4s"],
        "examples": 40,
        "replays": 2,
        "must_fail": 2,
    },
}


def write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def variant(**search: Any) -> dict[str, Any]:
    data = json.loads(json.dumps(BASE))
    data["search"].update(search)
    return data


@dataclass
class FakeResult:
    verdicts: tuple[Verdict, ...]
    run_dir: Path
    aborted: str | None = None
    capacity: CapacityRecord = field(default_factory=lambda: CapacityRecord(100.0, "given"))
    faults: tuple[Any, ...] = ()
    timings: dict[str, float] = field(default_factory=dict)
    inconclusive: bool = False
    why: str = ""

    @property
    def valid(self) -> bool:
        return all(v.valid for v in self.verdicts)


@dataclass
class FakeRunner:
    """Availability breaks when app-1 is killed; `flaky`: only on every other run."""

    tmp: Path
    flaky: bool = False
    busy: bool = False  # every run: the generator fell behind
    delay: float = 0.0
    calls: list[str] = field(default_factory=list)
    setup_seconds: float = 0.0

    def __enter__(self) -> FakeRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def run(self, schedule: Any) -> FakeResult:
        self.calls.append(schedule_key(schedule))
        time.sleep(self.delay)
        kill = any(sf.fault.kind == "kill" and sf.fault.component == "app-1" for sf in schedule)
        if self.flaky:
            kill = kill and len(self.calls) % 2 == 1
        verdicts = (Verdict("availability", not kill), Verdict("no_lost_scans", True))
        if self.busy:
            why = "load_generator: 900 of 1,000 arrivals never sent; close other work"
            return FakeResult(verdicts, self.tmp, inconclusive=True, why=why)
        return FakeResult(verdicts, self.tmp)


def go(tmp_path: Path, data: dict[str, Any], runner: FakeRunner, **kw: Any):
    exp = load_experiment(write(tmp_path, data))
    return search(
        exp,
        "hardened",
        seed=3,
        runs_dir=tmp_path / "runs",
        database=tmp_path / "db",
        runner=runner,
        **kw,
    )


def test_finds_and_shrinks_to_the_one_fault_that_breaks_the_invariant(tmp_path: Path) -> None:
    runner = FakeRunner(tmp_path)
    result = go(tmp_path, variant(), runner)
    assert result.met and result.found, result.summary()
    (sf,) = result.minimal
    assert (sf.fault.kind, sf.fault.component) == ("kill", "app-1")
    assert (sf.at, sf.duration) == (10.0, 1.0)  # latest, shortest
    assert result.broken == ("availability",)
    assert result.time_to_first_failure is not None and result.time_to_shrink is not None
    assert result.examples == len(set(runner.calls))
    # each schedule ran at most `replays` times: verdicts are cached per schedule
    assert max(runner.calls.count(k) for k in set(runner.calls)) <= 2
    journal = read_journal(result.run_dir)
    assert isinstance(journal, SearchJournal) and journal.met
    figures = journal.search.figures
    assert figures["examples"] == result.examples
    assert figures["shrink_steps"] == result.shrink_steps
    assert journal.search.minimal == ({"at": "10s", "for": "1s", "kill": {"component": "app-1"}},)
    assert journal.search.history[0]["verdict"] in ("pass", "fail")
    assert "schedules" in result.summary() and "minimal" in result.summary()


def test_a_search_whose_examples_could_not_judge_is_inconclusive(tmp_path: Path) -> None:
    """Runs on a busy machine say nothing: their broken invariants are no failure, and a
    search that found nothing because of them did not pass either."""
    for expect in ({"fail": ["availability"]}, "pass"):
        data = variant(examples=5)
        data["expect"] = {"hardened": expect}
        result = go(tmp_path, data, FakeRunner(tmp_path, busy=True))
        assert not result.found and not result.met
        assert result.outcome == "inconclusive", result.summary()
        assert "schedule(s) inconclusive, e.g. load_generator: 900 of 1,000" in result.why
        assert "INCONCLUSIVE" in result.summary().splitlines()[0]
        assert read_journal(result.run_dir).outcome == "inconclusive"


def test_the_minimal_schedule_is_a_runnable_experiment_with_its_replay(tmp_path: Path) -> None:
    result = go(tmp_path, variant(), FakeRunner(tmp_path))
    assert result.minimal_file is not None and result.minimal_file.exists()
    text = result.minimal_file.read_text()
    assert "# Replay: harness run" in text and "--profile hardened --seed 3" in text
    found = load_experiment(result.minimal_file)
    assert found.search is None
    assert [(f.at, f.duration, f.fault) for f in found.faults] == [
        (f.at, f.duration, f.fault) for f in result.minimal
    ]
    assert found.expectation("hardened").fail == ("availability",)
    assert found.seed == 3 and found.system.profile == "hardened"
    assert result.replay == f"harness run {result.minimal_file} --profile hardened --seed 3"


def test_a_failure_that_does_not_reproduce_is_reported_not_counted(tmp_path: Path) -> None:
    result = go(tmp_path, variant(examples=25), FakeRunner(tmp_path, flaky=True))
    assert not result.found
    assert not result.met  # a planted weakness was expected to show
    assert result.unreproduced, "a failure seen once must be listed"
    assert all(c.failures == 1 and len(c.runs) == 2 for c in result.unreproduced)
    assert "NOT REPRODUCED" in result.summary()
    assert "not reproduced" in result.why


def test_one_of_one_counts_a_single_failure(tmp_path: Path) -> None:
    result = go(tmp_path, variant(replays=1, must_fail=1), FakeRunner(tmp_path, flaky=True))
    assert result.found


def test_a_profile_expected_to_pass_survives_when_nothing_breaks(tmp_path: Path) -> None:
    data = variant(targets=["app->postgres", "app-2"], examples=10)
    data["expect"] = {"hardened": "pass"}
    runner = FakeRunner(tmp_path)
    result = go(tmp_path, data, runner)
    assert result.met and not result.found
    assert result.examples == len(set(runner.calls)) >= 5
    assert all(runner.calls.count(k) == 1 for k in set(runner.calls))  # a pass runs once
    assert "survived" in result.why
    assert "no schedule failed (2 of 2 runs)" in result.summary()


def test_a_false_alarm_on_a_profile_expected_to_pass_fails_the_search(tmp_path: Path) -> None:
    data = variant()
    data["expect"] = {"hardened": "pass"}
    result = go(tmp_path, data, FakeRunner(tmp_path))
    assert result.found and not result.met


def test_the_budget_stops_the_search(tmp_path: Path) -> None:
    data = variant(budget="100ms", examples=50)
    data["expect"] = {"hardened": "pass"}
    runner = FakeRunner(tmp_path, delay=0.06)
    result = go(tmp_path, data, runner)
    assert result.budget_spent
    assert len(runner.calls) <= 3
    assert "budget" in result.summary()


def test_a_failure_found_once_is_replayed_first_next_time(tmp_path: Path) -> None:
    first = go(tmp_path, variant(), FakeRunner(tmp_path))
    assert first.found
    second = go(tmp_path, variant(), FakeRunner(tmp_path))
    journal = read_journal(second.run_dir)
    assert isinstance(journal, SearchJournal)
    history = journal.search.history
    assert history[0]["verdict"] == "fail"
    assert second.time_to_first_failure is not None
    assert schedule_key(second.minimal) == schedule_key(first.minimal)


# --- the search: schema ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("search", "key", "hint"),
    [
        ({"kinds": ["meteor"]}, "search.kinds[0]", "latency"),
        ({"kinds": []}, "search.kinds", "non-empty"),
        ({"targets": ["app->nowhere"]}, "search.targets[0]", "matches no link"),
        ({"targets": ["db"]}, "search.targets[0]", "not in"),
        ({"window": ["2s", "16s"]}, "search.window", "before the workload ends"),
        ({"replays": 1, "must_fail": 2}, "search.must_fail", "in [1, 1]"),
        ({"max_faults": 0}, "search.max_faults", "in [1, 10]"),
        ({"magnitudes": {"latency": [500]}}, "search.magnitudes.latency", "[low, high]"),
        ({"magnitudes": {"kill": [1, 2]}}, "search.magnitudes.kill", "kill"),
        ({"kinds": ["crash"], "targets": ["app-1"]}, "search", "no fault kind"),
        ({"budget": "soon"}, "search.budget", "duration"),
        ({"examples": 0}, "search.examples", "in [1, 10000]"),
    ],
)
def test_bad_search_sections_name_the_key(
    tmp_path: Path, search: dict[str, Any], key: str, hint: str
) -> None:
    data = variant()
    for k in ("kinds", "targets"):
        data["search"].pop(k) if k in search else None
    data["search"].update(search)
    with pytest.raises(ConfigError) as info:
        load_experiment(write(tmp_path, data))
    assert info.value.key == key, str(info.value)
    assert hint in str(info.value), str(info.value)


def test_search_defaults_cover_every_kind_and_target(tmp_path: Path) -> None:
    data = variant()
    data["search"] = {}
    exp = load_experiment(write(tmp_path, data))
    assert exp.search is not None
    space = exp.search.space
    assert "db_loss" in space.kinds and space.targets == ()
    assert space.window == (0.0, 8.0) and space.end == 16.0
    assert (exp.search.examples, exp.search.replays, exp.search.must_fail) == (15, 2, 2)
    assert exp.search.budget == 300.0


# --- reset of a reused system ------------------------------------------------------------


class FakeSystem:
    def __init__(self) -> None:
        self.actions: list[tuple[str, ...]] = []
        self.endpoints = type("E", (), {"components": {"app-1": 0, "app-2": 0}})()
        self.toxiproxy = type("T", (), {"reset": lambda _s: self.actions.append(("reset",))})()

    def is_running(self, name: str) -> bool:
        return name != "app-2"

    def kill(self, name: str, sig: int = 9) -> None:
        self.actions.append(("kill", name))

    def pause(self, name: str) -> None:
        self.actions.append(("pause", name))

    def restart(self, name: str) -> None:
        self.actions.append(("restart", name))

    def resume(self, name: str) -> None:
        self.actions.append(("resume", name))

    def seed(self, seed: int | None = None, reset: bool = False) -> None:
        self.actions.append(("seed", str(seed), str(reset)))


def test_reset_heals_links_restarts_the_dead_resumes_the_paused_and_reseeds_fast(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from harness.run import lifecycle

    system = FakeSystem()
    monkeypatch.setattr(lifecycle, "check_reset", lambda s: s.actions.append(("check",)))
    reset_system(system, reference(), 7)  # type: ignore[arg-type]
    assert system.actions == [
        ("reset",),
        ("resume", "app-1"),
        ("restart", "app-2"),
        ("seed", "7", "True"),
        ("check",),
    ]


def test_the_reference_topology_has_a_fast_reset_command() -> None:
    from harness.topology import load_topology

    topo = load_topology(profile="hardened")
    assert topo.reset[-1] == "--reset"
    assert topo.reset[:-1] == topo.seed


def test_the_deletion_pass_drops_faults_the_failure_does_not_need() -> None:
    from harness.faults import Kill, Latency, ScheduledFault
    from harness.search.engine import Candidate, _delete_pass

    lat = ScheduledFault(8.0, Latency(link="app-1->postgres", latency=50), 1.0)
    kill = ScheduledFault(8.0, Kill(component="postgres"), 1.0)
    forced: list[bool] = []

    def judge(schedule: tuple[ScheduledFault, ...], force: bool = False) -> Candidate:
        forced.append(force)
        failing = any(sf.fault.kind == "kill" for sf in schedule)
        return Candidate(schedule, "delete", 0.0, verdict="fail" if failing else "pass")

    best = _delete_pass(Candidate((lat, kill), "shrink", 0.0, verdict="fail"), judge)
    assert best.schedule == (kill,)
    assert forced and all(forced)  # it runs even when the budget is spent
