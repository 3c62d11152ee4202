"""The pytest plugin's manners, in pytest runs of their own (pytester): what it collects,
its options and ini keys, its markers, its signal handler, and how a failing experiment
reads. Runs are fakes (`harness.run.run` replaced): nothing is started."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Any

import pytest

import harness.run
from harness.invariants import Verdict
from harness.journal import CapacityRecord
from harness.run import RunResult, replay_command

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENT = (ROOT / "experiments" / "gateway-crash.yaml").read_text()


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project with one experiment (gateway-crash: naive expected to fail availability)."""
    pytester.mkdir("experiments")
    (pytester.path / "experiments" / "gateway-crash.yaml").write_text(EXPERIMENT)
    return pytester


def test_a_yaml_file_that_is_not_an_experiment_is_ignored(pytester: pytest.Pytester) -> None:
    pytester.mkdir("experiments")
    (pytester.path / "experiments" / "train.yaml").write_text("learning_rate: 0.1\nepochs: 3\n")
    (pytester.path / "experiments" / "half.yaml").write_text("workload: {duration: 5s}\n")
    result = pytester.runpytest("experiments")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED
    result.stdout.no_fnmatch_line("*ERROR*")


def test_a_broken_experiment_is_a_clear_collection_error(project: pytest.Pytester) -> None:
    bad = project.path / "experiments" / "gateway-crash.yaml"
    bad.write_text(EXPERIMENT.replace("for: 8s", "for: -8s"))
    result = project.runpytest("experiments")
    assert result.ret == pytest.ExitCode.INTERRUPTED  # collection errors stop the session
    result.stdout.fnmatch_lines(["*ERROR collecting experiments/gateway-crash.yaml*"])
    result.stdout.fnmatch_lines([f"*{bad}: faults[[]0[]].for*"])


def test_one_item_per_profile_and_the_profile_option_and_ini(project: pytest.Pytester) -> None:
    result = project.runpytest("--collect-only", "-q", "experiments")
    result.stdout.fnmatch_lines(
        ["experiments/gateway-crash.yaml::naive", "experiments/gateway-crash.yaml::hardened"]
    )
    result = project.runpytest("--collect-only", "-q", "--harness-profile", "hardened")
    result.stdout.no_fnmatch_line("*::naive")
    project.makeini("[pytest]\nharness_profile = naive\n")
    result = project.runpytest("--collect-only", "-q", "experiments")
    result.stdout.fnmatch_lines(["experiments/gateway-crash.yaml::naive"])
    result.stdout.no_fnmatch_line("*::hardened")


@pytest.mark.parametrize(
    ("args", "ini", "message"),
    [
        (["--harness-backend", "foo"], "", "*--harness-backend: got 'foo'*"),
        ([], "harness_backend = foo", "*--harness-backend: got 'foo'*"),
        (["--harness-profile", "no such"], "", "*--harness-profile: got 'no such'*"),
        (["--harness-profile", "turbo"], "", "*got 'turbo'*[[]'hardened', 'naive'[]]*"),
        ([], "harness_profile = turbo", "*got 'turbo'*[[]'hardened', 'naive'[]]*"),
        (["--harness-seed", "x"], "", "*--harness-seed: got 'x'*"),
        (["--harness-capacity", "-3"], "", "*--harness-capacity: got '-3'*"),
    ],
)
def test_bad_options_and_ini_values_are_usage_errors(
    project: pytest.Pytester, args: list[str], ini: str, message: str
) -> None:
    if ini:
        project.makeini(f"[pytest]\n{ini}\n")
    result = project.runpytest("--collect-only", *args, "experiments")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_markers_are_registered_once(pytester: pytest.Pytester) -> None:
    out = pytester.runpytest("--markers").stdout.str()
    for marker in ("chaos", "integration", "containers"):
        assert out.count(f"@pytest.mark.{marker}:") == 1, marker


def test_stop_signals_are_taken_over_only_while_chaos_items_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import signal
        from harness.signals import _interrupt

        def test_plain():
            assert signal.getsignal(signal.SIGTERM) is not _interrupt

        def test_with_a_system(start_system):
            assert signal.getsignal(signal.SIGTERM) is _interrupt
            assert signal.getsignal(signal.SIGHUP) is _interrupt

        def test_plain_again():
            assert signal.getsignal(signal.SIGTERM) is not _interrupt
        """
    )
    before = signal.getsignal(signal.SIGTERM)
    pytester.runpytest().assert_outcomes(passed=3)
    assert signal.getsignal(signal.SIGTERM) is before


# --- experiment items, with a fake run ----------------------------------------------------


def _fake_result(exp: Any, options: Any) -> RunResult:
    naive = options.profile == "naive"
    run_dir = options.runs_dir / exp.name / f"20260101-070000-000-{options.profile}"
    availability = Verdict(
        "availability",
        True,  # naive is expected to fail availability: holding is not what the file expects
        {"availability": 0.9931, "min": 0.99},
        "0.9931 of requests of show_code during all (0.00s..15.0s) succeeded",
    )
    return RunResult(
        experiment=exp.name,
        profile=options.profile,
        seed=options.seed,
        backend="local",
        valid=True,
        verdicts=(availability, Verdict("steady-latency", True, {"p99_ms": 12.0})),
        outcome="not_met" if naive else "met",
        why="expected to fail but did not: availability (pass)" if naive else "all hold",
        expected=str(exp.expectation(options.profile)),
        capacity=CapacityRecord(1180.0, "cached", "naive", "2026-01-01T07:00:00+00:00", 0.21, 0.04),
        load=None,
        faults=(),
        run_dir=run_dir,
        journal=run_dir / "journal.json",
        replay=replay_command(exp, options.profile, options.seed, "local"),
    )


@pytest.fixture
def fake_runs(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    calls: list[Any] = []

    def fake(exp: Any, options: Any, **_: Any) -> RunResult:
        calls.append(options)
        return _fake_result(exp, options)

    monkeypatch.setattr(harness.run, "run", fake)
    return calls


def test_a_failing_item_names_the_invariant_and_its_figure_first_and_gives_the_report(
    project: pytest.Pytester, fake_runs: list[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # -ra cuts its line to the terminal's width
    result = project.runpytest("-ra", "experiments", "--harness-runs-dir", "out")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "FAILED experiments/gateway-crash.yaml::naive - availability pass"
            " (availability 0.9931), expected to fail: 0.9931 of requests*",
        ]
    )
    text = result.stdout.str()
    assert "report:  out/gateway-crash/20260101-070000-000-naive/report.html" in text
    assert "C = 1180 req/s (cached, of naive, measured 2026-01-01T07:00:00+00:00" in text
    assert "experiment time = run time × 2" in text  # the clock, stated once
    assert "pytest experiments/gateway-crash.yaml::naive --harness-seed" in text


def test_the_files_seed_is_used_unless_one_is_given(
    project: pytest.Pytester, fake_runs: list[Any]
) -> None:
    path = project.path / "experiments" / "gateway-crash.yaml"
    path.write_text(EXPERIMENT + "seed: 42\n")
    project.runpytest("experiments", "--harness-profile", "hardened")
    assert [o.seed for o in fake_runs] == [42]
    project.runpytest("experiments", "--harness-profile", "hardened", "--harness-seed", "7")
    assert [o.seed for o in fake_runs] == [42, 7]
    project.makeini("[pytest]\nharness_seed = 9\n")
    project.runpytest("experiments", "--harness-profile", "hardened")
    assert [o.seed for o in fake_runs] == [42, 7, 9]


def test_items_share_a_pool_and_the_reuse_and_proxy_options_reach_the_run(
    project: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[bool, Any]] = []

    def fake(exp: Any, options: Any, **kw: Any) -> RunResult:
        seen.append((options.proxy_all, kw.get("pool")))
        return _fake_result(exp, options)

    monkeypatch.setattr(harness.run, "run", fake)
    project.runpytest("experiments")
    assert seen == [(False, None), (False, None)]  # by default: a fresh system each
    seen.clear()
    project.makeini("[pytest]\nharness_reuse = true\n")
    project.runpytest("experiments")
    assert [p for p, _ in seen] == [False, False]
    assert seen[0][1] is not None and seen[0][1] is seen[1][1]  # one pool for the session
    seen.clear()
    project.runpytest("experiments", "--harness-no-reuse", "--harness-proxy-all")
    assert seen == [(True, None), (True, None)]
    seen.clear()
    project.makeini("[pytest]\nharness_reuse = false\nharness_proxy_all = true\n")
    project.runpytest("experiments")
    assert seen == [(True, None), (True, None)]
