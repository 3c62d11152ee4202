"""Ablation with a fake runner: one run per switch and experiment, each cell naming the
invariant and figure that caught the mechanism off, written as Markdown (between the
doc's markers) and JSON; the plan read from the real catalogue and domain."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from harness import ablate
from harness.ablate import CellRun, Entry, Plan, make_plan, markdown, run_matrix
from harness.cli import main
from harness.domain import Switch
from harness.errors import ConfigError
from harness.invariants import Verdict

ROOT = Path(__file__).resolve().parents[2]
CACHE = Switch("cache", {"overrides": {"cache": False}}, "cache: false")
GATEWAY = Switch("second_gateway", {"gateways": 1}, "one gateway")
SPOOL = Switch("spool", {"overrides": {"spool": False}}, "spool: false")


def plan() -> Plan:
    entries = (
        Entry("slow-db", Path("experiments/slow-db.yaml"), (CACHE, GATEWAY, SPOOL)),
        Entry("gateway-hang", Path("experiments/gateway-hang.yaml"), (CACHE, GATEWAY, SPOOL)),
        Entry("search-x", Path("experiments/search-x.yaml"), (), skip="a fault search"),
    )
    return Plan("hardened", entries, (CACHE, GATEWAY, SPOOL))


class FakeRunner:
    """Catches `second_gateway` in gateway-hang (availability) and `spool` in slow-db;
    `cache` is caught nowhere; gateway-hang with `spool` off is inconclusive."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any], str]] = []

    def __call__(self, path: Path, params: Mapping[str, Any], switch: str) -> CellRun:
        self.calls.append((path.stem, dict(params), switch))
        ok = Verdict("load_generator", True, {"never_sent_share": 0.0})
        if (path.stem, switch) == ("gateway-hang", "second_gateway"):
            bad = Verdict("availability", False, {"availability": 0.61, "min": 0.99})
            return CellRun("not_met", (bad, ok), "runs/a", "availability failed")
        if (path.stem, switch) == ("slow-db", "spool"):
            bad = Verdict("scans", False, {"availability": 0.5})
            lat = Verdict("slow-latency", False, {"p99_ms": 1200.0})
            return CellRun("not_met", (lat, bad, ok), "runs/b")
        if (path.stem, switch) == ("gateway-hang", "spool"):
            return CellRun("inconclusive", (ok,), "runs/c", "the machine stalled")
        return CellRun("met", (Verdict("availability", True, {"availability": 1.0}), ok))


def test_each_switch_runs_each_used_experiment_once_with_its_params() -> None:
    runner = FakeRunner()
    matrix = run_matrix(plan(), runner, date="2026-12-07", commit="abc1234")
    assert len(runner.calls) == 6  # 3 switches x 2 experiments; the search is not used
    assert ("gateway-hang", {"gateways": 1}, "second_gateway") in runner.calls
    hang = matrix.cell("second_gateway", "gateway-hang")
    assert hang is not None and hang.outcome == "caught"
    assert hang.caught_by == ("availability",) and hang.figure == "availability 0.61"
    slow = matrix.cell("spool", "slow-db")
    assert slow is not None and slow.caught_by == ("slow-latency", "scans")
    assert slow.figure == "slow-latency: p99 1.2e+03 ms"
    assert matrix.cell("cache", "slow-db").outcome == "held"  # type: ignore[union-attr]
    assert matrix.cell("spool", "gateway-hang").outcome == "inconclusive"  # type: ignore[union-attr]
    assert matrix.uncaught == ("cache",) and matrix.undecided == ()
    assert matrix.skipped == {"search-x": "a fault search"}


def test_markdown_names_the_catching_invariant_and_flags_empty_rows() -> None:
    matrix = run_matrix(plan(), FakeRunner(), date="2026-12-07", commit="abc1234")
    text = markdown(matrix)
    assert "2026-12-07, commit `abc1234`: 2 of 3 mechanisms caught" in text
    assert "| mechanism off | slow-db | gateway-hang | caught by |" in text
    assert "| `second_gateway` (one gateway) | · | **availability 0.61** | 1 |" in text
    assert "| `cache` (cache: false) | · | · | **none** |" in text
    assert "Caught by no experiment: `cache`" in text


def test_the_matrix_replaces_only_what_is_between_the_markers(tmp_path: Path) -> None:
    doc = tmp_path / "ablation.md"
    doc.write_text(
        "# Ablation\n\nprose before\n\n<!-- matrix -->\nold\n<!-- end matrix -->\nafter\n"
    )
    matrix = run_matrix(plan(), FakeRunner(), date="d", commit="c")
    ablate.write_markdown(matrix, doc)
    text = doc.read_text()
    assert text.startswith("# Ablation\n\nprose before\n\n<!-- matrix -->\nProfile `hardened`")
    assert "old" not in text and text.endswith("<!-- end matrix -->\nafter\n")
    data = json.loads(ablate.write_json(matrix, tmp_path / "a.json").read_text())
    assert data["uncaught"] == ["cache"] and data["commit"] == "c"
    assert {c["outcome"] for c in data["cells"]} == {"caught", "held", "inconclusive"}


def test_only_keeps_the_named_switches_and_refuses_unknown_ones() -> None:
    assert [s.name for s in plan().only(["spool"]).switches] == ["spool"]
    with pytest.raises(ConfigError):
        plan().only(["no-such"])


def test_the_plan_comes_from_the_catalogue_and_the_domain() -> None:
    p = make_plan([ROOT / "experiments"], "hardened")
    names = [s.name for s in p.switches]
    for expected in ("cache", "spool", "spool_fsync", "rate_limit", "upstream_retry"):
        assert expected in names
    assert "second_gateway" in names and "pg_replica" in names
    used = {e.name for e in p.entries if not e.skip}
    skipped = {e.name: e.skip for e in p.entries if e.skip}
    assert "slow-db" in used and "db-loss" in used
    assert skipped["search-hardened"] == "a fault search"
    assert "power-loss-nofsync" in skipped  # expected to fail on hardened


def test_the_command_runs_the_plan_and_exits_by_its_empty_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ablate, "make_plan", lambda paths, profile: plan())
    monkeypatch.setattr(ablate, "harness_runner", lambda profile, **kw: FakeRunner())
    args = [
        "ablate",
        "--profile",
        "hardened",
        "--markdown",
        str(tmp_path / "m.md"),
        "--json",
        str(tmp_path / "m.json"),
    ]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 1, result.output  # cache is caught by nothing
    assert "**none**" in result.output and (tmp_path / "m.json").exists()
    caught = CliRunner().invoke(main, [*args, "--switch", "spool", "--switch", "second_gateway"])
    assert caught.exit_code == 0, caught.output


def test_a_given_capacity_is_never_measured_again(monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.run import capacity as capacity_module

    measured: list[str] = []

    class Cap:
        rps = 2500.0

    def measure(target: Any, running: Any, source: str, *args: Any) -> Cap:
        measured.append(source)
        return Cap()

    seen: list[Any] = []

    class Result:
        outcome, verdicts, run_dir, why = "met", (), "r", ""

    def fake_run(experiment: Any, options: Any) -> Result:
        seen.append(options)
        return Result()

    monkeypatch.setattr(capacity_module, "_measured", measure)
    monkeypatch.setattr(ablate, "run", fake_run)
    runner = ablate.harness_runner("hardened", capacity=1100.0)
    for name in ("slow-db", "overload-own"):  # x: rates; x_own rates of hardened
        runner(ROOT / "experiments" / f"{name}.yaml", {"overrides": {"cache": False}}, "cache")
    assert [o.capacity for o in seen] == [1100.0, 1100.0]  # C as given, never measured
    assert [o.own_capacity for o in seen] == [None, 2500.0]
    assert measured == ["hardened"]  # only hardened's own capacity, for x_own
