"""The harness's pytest plugin (registered through the ``pytest11`` entry point).

- Collects ``experiments/*.yaml`` (any YAML file with ``invariants:`` and ``workload:``
  under a directory named ``experiments``, or any such file given on the command line)
  as test items, one per profile: ``experiments/db-loss.yaml::hardened``. An item
  passes when the run's verdicts match the experiment's expectation for that profile;
  a failure reads like a report (invariants, figures, fault timeline, journal, replay).
- Options ``--backend``, ``--profile naive|hardened|both``, ``--seed N|last`` (printed
  in the header; ``last`` replays the previous session's) and ``--runs-dir``; the
  ``chaos``, ``integration`` and ``containers`` markers.
- Fixtures for experiments written in Python::

    def test_gateway_answers(start_system):
        system = start_system(load_topology(profile="hardened"))
        ...  # torn down when the test ends, also on failure or Ctrl-C

    def test_my_experiment(run_experiment):
        result = run_experiment("experiments/db-loss.yaml", profile="hardened")
        assert result.met, result.summary()
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.backends import Backend, System, get_backend
from harness.signals import terminate_as_interrupt
from harness.topology import Topology

_SEED_KEY = "harness/seed"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "chaos harness")
    group.addoption("--backend", default="local", help="backend that starts systems: local")
    group.addoption(
        "--profile",
        default="both",
        choices=("naive", "hardened", "both"),
        help="reference-system profile(s) experiments run against",
    )
    group.addoption("--seed", default=None, help="seed for workloads and data; 'last' replays")
    group.addoption("--runs-dir", default="runs", help="where run journals and reports go")


def pytest_configure(config: pytest.Config) -> None:
    # a SIGTERM (CI's timeout, a supervisor) tears systems down as Ctrl-C does
    terminate_as_interrupt()
    for line in (
        "integration: starts real components (PostgreSQL, Redis, nginx, Toxiproxy)",
        "chaos: injects faults into a running system",
        "containers: needs a Docker engine",
    ):
        config.addinivalue_line("markers", line)
    raw = config.getoption("--seed")
    cache = getattr(config, "cache", None)  # absent with -p no:cacheprovider
    if raw == "last":
        seed = cache.get(_SEED_KEY, None) if cache else None
        if seed is None:
            raise pytest.UsageError("--seed last: no previous seed recorded in .pytest_cache")
    elif raw is None:
        seed = random.SystemRandom().randrange(1, 2**31)
    else:
        try:
            seed = int(raw)
        except ValueError:
            raise pytest.UsageError(f"--seed: got {raw!r}, expected an integer or 'last'") from None
    config.harness_seed = seed  # type: ignore[attr-defined]
    if cache is not None:
        cache.set(_SEED_KEY, seed)


def pytest_report_header(config: pytest.Config) -> str:
    seed = config.harness_seed  # type: ignore[attr-defined]
    return f"harness: backend={config.getoption('--backend')} seed={seed} (replay: --seed {seed})"


@pytest.fixture(scope="session")
def harness_seed(request: pytest.FixtureRequest) -> int:
    """The session's seed (printed in the header)."""
    return request.config.harness_seed  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def harness_backend(request: pytest.FixtureRequest) -> Backend:
    """The backend chosen with ``--backend``."""
    return get_backend(request.config.getoption("--backend"))


@pytest.fixture
def start_system(harness_backend: Backend, harness_seed: int) -> Iterator[Callable[..., System]]:
    """Start a topology for this test; everything started is torn down after it."""
    with contextlib.ExitStack() as stack:

        def start(topology: Topology, seed: int | None = None) -> System:
            return stack.enter_context(
                harness_backend.start(topology, seed=harness_seed if seed is None else seed)
            )

        yield start


@pytest.fixture
def run_experiment(request: pytest.FixtureRequest, harness_seed: int) -> Callable[..., Any]:
    """Run an experiment file (or a loaded Experiment) on a profile; returns the RunResult."""
    from harness.experiment import Experiment, load_experiment
    from harness.run import RunOptions, run

    config = request.config

    def go(experiment: str | Path | Experiment, profile: str = "hardened", **options: Any) -> Any:
        exp = experiment if isinstance(experiment, Experiment) else load_experiment(experiment)
        opts = RunOptions(
            profile=profile,
            seed=options.pop("seed", harness_seed),
            backend=options.pop("backend", config.getoption("--backend")),
            runs_dir=Path(options.pop("runs_dir", config.getoption("--runs-dir"))),
            **options,
        )
        return run(exp, opts)

    return go


@pytest.fixture
def fault_example(
    request: pytest.FixtureRequest, harness_seed: int
) -> Iterator[Callable[..., Any]]:
    """Run an experiment with a given fault schedule (from ``fault_schedules``) on one
    system per experiment and profile, reset between calls; torn down after the test::

        @given(schedule=fault_schedules(space, topology=...))
        def test_x(fault_example, schedule):
            assert fault_example("experiments/x.yaml", schedule).valid
    """
    from harness.experiment import Experiment, load_experiment
    from harness.search import ExampleRunner

    config = request.config
    backend = config.getoption("--backend")
    runners: dict[tuple[str, str], Any] = {}
    with contextlib.ExitStack() as stack:

        def go(
            experiment: str | Path | Experiment, schedule: Any, profile: str = "hardened"
        ) -> Any:
            exp = experiment if isinstance(experiment, Experiment) else load_experiment(experiment)
            key = (str(exp.path), profile)
            if key not in runners:
                runners[key] = stack.enter_context(
                    ExampleRunner(
                        exp,
                        profile,
                        seed=harness_seed,
                        runs_dir=Path(config.getoption("--runs-dir")),
                        backend=None if backend == "local" else backend,
                    )
                )
            return runners[key].run(schedule)

        yield go


# --- the suite's summary (issue 7) ---------------------------------------------------------


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write ``<runs-dir>/summary.md`` for the experiments that ran, and append it to the
    GitHub Actions job summary when ``GITHUB_STEP_SUMMARY`` is set."""
    journals = [
        Path(value)
        for item in session.items
        for key, value in item.user_properties
        if key == "journal"
    ]
    if not journals:
        return
    from harness.summary import SUMMARY, append_step_summary, row, suite_markdown

    runs_dir = Path(session.config.getoption("--runs-dir"))
    text = suite_markdown([row(j.parent) for j in journals], base=runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    (runs_dir / SUMMARY).write_text(text, encoding="utf-8")
    append_step_summary(text)
    session.config.harness_summary = runs_dir / SUMMARY  # type: ignore[attr-defined]


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for report in terminalreporter.getreports("passed") + terminalreporter.getreports("failed"):
        for key, value in report.user_properties:
            if key == "rerun_of":
                terminalreporter.write_line(f"harness: {report.nodeid} was run again: {value}")
    summary = getattr(terminalreporter.config, "harness_summary", None)
    if summary is not None:
        terminalreporter.write_line(f"harness: suite summary in {summary}")


# --- experiments as test items --------------------------------------------------------------


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.suffix not in (".yaml", ".yml"):
        return None
    given = any(Path(a.split("::")[0]).resolve() == file_path for a in parent.config.args)
    if not given and file_path.parent.name != "experiments":
        return None
    return ExperimentFile.from_parent(parent, path=file_path)


class ExperimentFile(pytest.File):
    """An experiment file: one item per profile it runs on."""

    def collect(self) -> Iterator[pytest.Item]:
        from harness.errors import ConfigError
        from harness.experiment import load_experiment

        try:
            experiment = load_experiment(self.path)
        except ConfigError as exc:
            yield BrokenExperiment.from_parent(self, name="load", error=exc)
            return
        wanted = self.config.getoption("--profile")
        for profile in experiment.profiles:
            if wanted not in ("both", profile):
                continue
            if experiment.expectation(profile).outcome == "skip":
                continue
            kind = ExperimentItem if experiment.search is None else SearchItem  # issue 9
            item = kind.from_parent(self, name=profile, experiment=experiment, profile=profile)
            item.add_marker(pytest.mark.chaos)
            item.add_marker(pytest.mark.integration)
            yield item


class ExperimentFailed(Exception):
    """The run's verdicts did not match the experiment's expectation."""

    def __init__(self, result: Any) -> None:
        super().__init__(result.why)
        self.result = result


class ExperimentItem(pytest.Item):
    """One experiment on one profile."""

    def __init__(self, *, experiment: Any, profile: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.experiment, self.profile = experiment, profile

    def runtest(self) -> None:
        from harness.run import RunOptions, run

        seed = self.config.harness_seed  # type: ignore[attr-defined]
        options = RunOptions(
            profile=self.profile,
            seed=seed,
            backend=None
            if self.config.getoption("--backend") == "local"
            else self.config.getoption("--backend"),
            runs_dir=Path(self.config.getoption("--runs-dir")),
        )
        result = run(self.experiment, options)
        self.user_properties.append(("journal", str(result.journal)))
        self.user_properties.append(("verdict", "met" if result.met else "not met"))
        if result.rerun_of:
            self.user_properties.append(("rerun_of", result.rerun_of))
        if not result.met:
            raise ExperimentFailed(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ExperimentFailed):
            return _report(excinfo.value.result)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"experiment {self.experiment.name} [{self.profile}]"


# --- fault searches (issue 9) ---------------------------------------------------------------


class SearchFailed(Exception):
    """The search did not meet the expectation (a false alarm, or nothing found)."""

    def __init__(self, result: Any) -> None:
        super().__init__(result.why)
        self.result = result


class SearchItem(ExperimentItem):
    """An experiment with a ``search:`` space on one profile: a profile expected to pass
    must survive the search; one expected to fail must yield a (shrunk) failing schedule."""

    def runtest(self) -> None:
        from harness.search import search

        backend = self.config.getoption("--backend")
        result = search(
            self.experiment,
            self.profile,
            seed=self.config.harness_seed,  # type: ignore[attr-defined]
            runs_dir=Path(self.config.getoption("--runs-dir")),
            backend=None if backend == "local" else backend,
        )
        self.user_properties.append(("search", str(result.journal)))
        self.user_properties.append(("verdict", "met" if result.met else "not met"))
        print(result.summary())
        if not result.met:
            raise SearchFailed(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, SearchFailed):
            r = excinfo.value.result
            return f"search {r.experiment} on {r.profile}: expected {r.expected}\n{r.summary()}"
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"fault search {self.experiment.name} [{self.profile}]"


class BrokenExperiment(pytest.Item):
    """An experiment file that does not load: its ConfigError is the failure."""

    def __init__(self, *, error: Exception, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error

    def runtest(self) -> None:
        raise self.error

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        return str(excinfo.value)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"experiment file {self.path.name}"


def _report(result: Any) -> str:
    lines = [
        f"experiment {result.experiment} on {result.profile}: expected {result.expected}",
        f"  {result.why}",
        "",
        "invariants:",
    ]
    for v in result.verdicts:
        lines.append(f"  [{v.outcome.upper():7}] {v}")
    if result.faults:
        lines += ["", "fault timeline (run seconds):"]
        for f in result.faults:
            end = "never healed" if f.end is None else f"{f.end:.2f}s"
            lines.append(f"  {f.start:6.2f}s - {end}: {f.target} (took effect: {f.took_effect})")
    if result.capacity:
        lines.append(f"\ncapacity C = {result.capacity:.0f} req/s")
    lines += [
        f"journal: {result.journal}",
        f"replay:  {result.replay}",
        f"     or: pytest {result.replay.split()[2]}::{result.profile} --seed {result.seed}",
    ]
    if result.rerun_of:
        lines.append(f"rerun of {result.rerun_of}")
    return "\n".join(lines)
