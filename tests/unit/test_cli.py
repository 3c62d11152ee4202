"""The command line: exit codes and messages for bad input (no system is started)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from harness.cli import main

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
