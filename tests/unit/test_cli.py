"""The command line: exit codes and messages for bad input (no system is started)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import harness.run
from harness.cli import main
from harness.invariants import Verdict
from harness.journal import CapacityRecord
from harness.run import RunResult, replay_command

ROOT = Path(__file__).resolve().parents[2]


def test_list_names_every_experiment_with_its_description() -> None:
    result = CliRunner().invoke(main, ["list", str(ROOT / "experiments")])
    assert result.exit_code == 0, result.output
    names = [line.split()[0] for line in result.output.splitlines()]
    assert {"morning-surge", "retry-storm", "db-loss", "gateway-crash"} <= set(names)


def test_run_with_a_broken_experiment_exits_2_naming_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text((ROOT / "experiments" / "slow-db.yaml").read_text().replace("ms: 800", "ms: -5"))
    result = CliRunner().invoke(main, ["run", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}: faults[0].latency.ms" in result.output


def test_run_with_a_missing_file_exits_2() -> None:
    result = CliRunner().invoke(main, ["run", "/nonexistent/x.yaml"])
    assert result.exit_code == 2
    assert "readable YAML file" in result.output


def test_up_with_an_unknown_profile_exits_2() -> None:
    result = CliRunner().invoke(main, ["up", "--profile", "turbo"])
    assert result.exit_code == 2
    assert "unknown profile" in result.output


def test_up_with_a_malformed_param_exits_2() -> None:
    result = CliRunner().invoke(main, ["up", "--param", "app_workers"])
    assert result.exit_code == 2
    assert "KEY=VALUE" in result.output


# --- run and search: exit codes and what is printed (the run itself is a fake) ------------

EXPERIMENT = ROOT / "experiments" / "gateway-crash.yaml"  # naive: fail [availability]


def _result(exp: Any, options: Any, outcome: str, valid: bool | None) -> RunResult:
    why = {"met": "as the file expects", "not_met": "availability held", "inconclusive": ""}
    if outcome == "inconclusive":
        why["inconclusive"] = "load_generator: 5,512 of 9,245 arrivals never sent; close other work"
    run_dir = Path("runs") / exp.name / f"20260101-070000-000-{options.profile}"
    return RunResult(
        experiment=exp.name,
        profile=options.profile,
        seed=options.seed,
        backend="local",
        valid=valid,
        verdicts=(Verdict("availability", valid, {"availability": 0.93}, "0.93 succeeded"),),
        outcome=outcome,
        why=why[outcome],
        expected=str(exp.expectation(options.profile)),
        capacity=CapacityRecord(
            1180.0, "cached", "naive", "2026-01-01T07:00:00+00:00", 0.21, 0.04, steal=0.0
        ),
        load=None,
        faults=(),
        run_dir=run_dir,
        journal=run_dir / "journal.json",
        replay=replay_command(exp, options.profile, options.seed, "local"),
    )


@dataclass
class Runs:
    """What the fake `harness.run.run` was asked, and the (outcome, valid) per profile."""

    outcomes: dict[str, tuple[str, bool | None]]
    calls: list[tuple[Any, Any]]


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> Runs:
    record = Runs({}, [])

    def fake(exp: Any, options: Any, **_: Any) -> RunResult:
        record.calls.append((exp, options))
        outcome, valid = record.outcomes[options.profile]
        return _result(exp, options, outcome, valid)

    monkeypatch.setattr(harness.run, "run", fake)
    return record


def invoke(*args: str) -> Any:
    return CliRunner().invoke(main, ["run", str(EXPERIMENT), *args])


@pytest.mark.parametrize(
    ("naive", "hardened", "code"),
    [
        (("met", False), ("met", True), 0),  # naive fails as expected, hardened holds
        (("not_met", True), ("met", True), 1),
        (("not_met", True), ("inconclusive", None), 1),  # a failure outranks inconclusive
        (("met", False), ("inconclusive", None), 3),
    ],
)
def test_run_exit_code_says_whether_every_run_did_what_its_file_expects(
    runs: Runs, naive: tuple, hardened: tuple, code: int
) -> None:
    runs.outcomes = {"naive": naive, "hardened": hardened}
    result = invoke()
    assert result.exit_code == code, result.output
    assert [o.profile for _, o in runs.calls] == ["naive", "hardened"]


def test_run_prints_report_c_replay_and_the_clock(runs: Runs) -> None:
    runs.outcomes = {"naive": ("met", False)}
    result = invoke("--profile", "naive", "--seed", "5")
    assert result.exit_code == 0, result.output
    out = result.output
    assert "gateway-crash [naive] seed=5: as expected" in out
    assert (
        "C = 1180 req/s (cached, of naive, measured 2026-01-01T07:00:00+00:00,"
        " load average 0.21 before, other processes used 0.04 cores during)" in out
    )
    assert "report:  runs/gateway-crash/20260101-070000-000-naive/report.html" in out
    assert "replay:  harness run experiments/gateway-crash.yaml --profile naive --seed 5" in out
    assert "Times are run seconds since the load started" in out


def test_an_inconclusive_run_says_why_in_one_line_and_exits_3(runs: Runs) -> None:
    runs.outcomes = {"hardened": ("inconclusive", None)}
    result = invoke("--profile", "hardened")
    assert result.exit_code == 3
    first = result.stdout.splitlines()[0]  # stderr has the progress lines
    assert first.startswith("gateway-crash [hardened] seed=")
    assert "INCONCLUSIVE (load_generator: 5,512 of 9,245 arrivals never sent" in first


def test_strict_asks_every_invariant_to_hold(runs: Runs) -> None:
    runs.outcomes = {"naive": ("met", False), "hardened": ("met", True)}
    assert invoke().exit_code == 0
    assert invoke("--strict").exit_code == 1  # naive's expected failure counts as one
    assert invoke("--strict", "--profile", "hardened").exit_code == 0


def test_run_takes_params(runs: Runs) -> None:
    runs.outcomes = {"hardened": ("met", True)}
    result = invoke("--profile", "hardened", "--param", "app_workers=3")
    assert result.exit_code == 0, result.output
    ((exp, _),) = runs.calls
    assert exp.system.params["app_workers"] == 3
    bad = invoke("--param", "no_such_param=1")
    assert bad.exit_code == 2 and "no_such_param" in bad.output
    assert invoke("--param", "app_workers").exit_code == 2  # not KEY=VALUE


def test_run_with_a_profile_the_file_does_not_run_exits_2(runs: Runs) -> None:
    result = invoke("--profile", "turbo")
    assert result.exit_code == 2 and "turbo" in result.output
    assert runs.calls == []


def test_search_exits_3_when_it_could_not_judge(monkeypatch: pytest.MonkeyPatch) -> None:
    import harness.search.engine as engine

    @dataclass
    class Found:
        outcome: str

        def summary(self) -> str:
            return f"search: {self.outcome}"

    path = ROOT / "experiments" / "search-hardened.yaml"
    for outcome, code in (("met", 0), ("not_met", 1), ("inconclusive", 3)):
        monkeypatch.setattr(engine, "search", lambda *a, o=outcome, **k: Found(o))
        result = CliRunner().invoke(main, ["search", str(path), "--profile", "hardened"])
        assert result.exit_code == code, result.output


def test_help_documents_the_exit_codes() -> None:
    for args in ([], ["run"], ["search"], ["demo"]):
        out = CliRunner().invoke(main, [*args, "--help"]).output
        assert "Exit codes:" in out, args
        assert "3    none failed, but a run could not judge" in out


SHOP = ROOT / "tests" / "fixtures" / "shop" / "topology.yaml"  # profiles: single, pair


def test_run_takes_a_profile_of_the_topologys_own_naming(runs: Runs, tmp_path: Path) -> None:
    path = tmp_path / "whoami.yaml"
    path.write_text(
        "name: whoami\n"
        "description: an experiment on a topology of the author's own\n"
        f"system: {{topology: {SHOP}}}\n"
        "workload:\n"
        "  duration: 3s\n"
        "  rate: [{at: 0s, rps: 30, phase: steady}]\n"
        "  clients: {good: {share: 1.0, max_retries: 0}}\n"
        "invariants: [{availability: {op: whoami, min: 0.99}}]\n"
        "expect: pass\n"
    )
    runs.outcomes = {"pair": ("met", True), "single": ("met", True)}
    result = CliRunner().invoke(main, ["run", str(path), "--profile", "pair"])
    assert result.exit_code == 0, result.output
    assert [o.profile for _, o in runs.calls] == ["pair"]
    assert runs.calls[0][0].sut("pair").topology.profile == "pair"
    result = CliRunner().invoke(main, ["run", str(path)])
    assert [o.profile for _, o in runs.calls[1:]] == ["single", "pair"]
    bad = CliRunner().invoke(main, ["run", str(path), "--profile", "hardened"])
    assert bad.exit_code == 2 and "['single', 'pair']" in bad.output, bad.output
    assert len(runs.calls) == 3


def test_up_refuses_a_profile_the_users_topology_does_not_define() -> None:
    result = CliRunner().invoke(main, ["up", str(SHOP), "--profile", "hardened"])
    assert result.exit_code == 2 and "hardened" in result.output, result.output
