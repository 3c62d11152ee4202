"""The harness's pytest plugin (registered through the ``pytest11`` entry point).

- Collects experiment files as test items, one per profile:
  ``experiments/db-loss.yaml::hardened``. A YAML file is an experiment when its top level
  has both ``workload:`` and ``invariants:``; any other YAML file is ignored, and an
  experiment file that does not load is a collection error naming file, key and value.
  An item passes when the run met its file's expectation for that profile; an
  inconclusive run (the run could not judge) fails with that reason, never passes.
- Options, each with an ini equivalent: ``--harness-backend local|containers``
  (``harness_backend``), ``--harness-profile NAME|all`` (``harness_profile``),
  ``--harness-seed N|last`` (``harness_seed``; default: the file's ``seed:``, else random,
  printed in the header), ``--harness-runs-dir`` (``harness_runs_dir``),
  ``--harness-capacity C`` (``harness_capacity``: C in requests/s instead of calibrating),
  ``--harness-capacity-max C`` (``harness_capacity_max``: calibrate, but at most C, a
  profile's own capacity too), ``--harness-proxy-all`` (``harness_proxy_all``: every link
  through Toxiproxy even where a file says ``system.proxy: faults``), ini
  ``harness_reuse = true`` (one system per profile reset between experiments instead of a
  fresh one each; `harness.run.reuse`; ``--harness-no-reuse`` turns it off again). Markers:
  ``integration``, ``chaos``, ``containers``.
- While an experiment item (or a test using ``start_system``, ``run_experiment`` or
  ``fault_example``) runs, SIGTERM and SIGHUP tear the system down as Ctrl-C does; other
  tests of the session keep pytest's own handling.
- A failing item's first line (what ``-ra`` shows) names the invariant that decided it
  and its figure; its text gives every verdict, C and how it was measured, the report,
  the journal and the replay commands.
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
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from harness.backends import BACKENDS, Backend, System, get_backend
from harness.topology import Topology

_SEED_KEY = "harness/seed"
_MARKERS = (
    "integration: starts real components (PostgreSQL, Redis, nginx, Toxiproxy)",
    "chaos: injects faults into a running system",
    "containers: needs a Docker engine",
)
_EXPERIMENT = re.compile(r"^(workload|invariants)\s*:", re.M)
_PROFILE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_CHAOS_FIXTURES = frozenset({"start_system", "run_experiment", "fault_example"})
_OPTIONS = {
    "backend": ("local", f"backend that starts systems: {'|'.join(BACKENDS)}"),
    "profile": ("all", "the profile(s) experiments run on: a profile name, or all"),
    "seed": ("", "seed of workloads and data, or 'last' (default: the file's, else random)"),
    "runs_dir": ("runs", "where run journals and reports go"),
    "capacity": ("", "C in requests/s instead of calibrating"),
    "capacity_max": ("", "calibrate C (and own C), but use at most this many requests/s"),
}


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "chaos harness")
    for name, (default, help_) in _OPTIONS.items():
        flag = "--harness-" + name.replace("_", "-")
        group.addoption(
            flag, dest=f"harness_{name}", default=None, help=f"{help_} [{default or '-'}]"
        )
        parser.addini(f"harness_{name}", help_, default=default)
    help_ = "a fresh system for every experiment (the default unless ini harness_reuse = true)"
    group.addoption("--harness-no-reuse", dest="harness_no_reuse", action="store_true", help=help_)
    parser.addini(
        "harness_reuse", "reuse one system per profile between experiments", "bool", False
    )
    help_ = "every link through Toxiproxy, whatever the files say (their default: every link)"
    group.addoption(
        "--harness-proxy-all", dest="harness_proxy_all", action="store_true", help=help_
    )
    parser.addini("harness_proxy_all", help_, type="bool", default=False)


def option(config: pytest.Config, name: str) -> str:
    """An option's value: the command line's, else the ini file's, else its default."""
    value = config.getoption(f"harness_{name}")
    if value is None:
        value = config.getini(f"harness_{name}")
    return str(value)


def proxy_all(config: pytest.Config) -> bool:
    """Whether every link goes through Toxiproxy (``--harness-proxy-all``, or the ini's)."""
    return bool(config.getoption("harness_proxy_all") or config.getini("harness_proxy_all"))


def reuse(config: pytest.Config) -> bool:
    """Whether experiment items share one system per profile (not ``--harness-no-reuse``)."""
    return not config.getoption("harness_no_reuse") and bool(config.getini("harness_reuse"))


_POOL = pytest.StashKey[Any]()


def _pool(config: pytest.Config) -> Any:
    """The session's pool of kept systems (created on first use)."""
    if _POOL not in config.stash:
        from harness.run.reuse import SystemPool

        config.stash[_POOL] = SystemPool()
    return config.stash[_POOL]


def _close_pool(config: pytest.Config) -> None:
    pool = config.stash.get(_POOL, None)
    if pool is not None:
        pool.close()


def pytest_unconfigure(config: pytest.Config) -> None:
    _close_pool(config)


def pytest_configure(config: pytest.Config) -> None:
    for line in _MARKERS:
        config.addinivalue_line("markers", line)
    backend = option(config, "backend")
    if backend not in BACKENDS:
        raise pytest.UsageError(
            f"--harness-backend: got {backend!r}, expected one of {list(BACKENDS)}"
        )
    profile = option(config, "profile")
    if not _PROFILE.match(profile):
        raise pytest.UsageError(
            f"--harness-profile: got {profile!r}, expected 'all' or a profile name"
            " (letters, digits, _ . -)"
        )
    for name in ("capacity", "capacity_max"):
        value = option(config, name)
        if value:
            try:
                if not 0 < float(value) < float("inf"):
                    raise ValueError
            except ValueError:
                flag = "--harness-" + name.replace("_", "-")
                raise pytest.UsageError(f"{flag}: got {value!r}, expected requests/s > 0") from None
    raw = option(config, "seed")
    cache = getattr(config, "cache", None)  # absent with -p no:cacheprovider
    seed: int | None
    if raw == "last":
        seed = cache.get(_SEED_KEY, None) if cache else None
        if seed is None:
            raise pytest.UsageError(
                "--harness-seed last: no previous seed recorded in .pytest_cache"
            )
    elif not raw:
        seed = None
    else:
        try:
            seed = int(raw)
        except ValueError:
            raise pytest.UsageError(
                f"--harness-seed: got {raw!r}, expected an integer or 'last'"
            ) from None
    session_seed = seed if seed is not None else random.SystemRandom().randrange(1, 2**31)
    config.stash[_SEED] = session_seed
    config.stash[_FIXED] = seed is not None
    if cache is not None:
        cache.set(_SEED_KEY, session_seed)


_SEED = pytest.StashKey[int]()
_FIXED = pytest.StashKey[bool]()
_SUMMARY = pytest.StashKey[Path]()


def session_seed(config: pytest.Config) -> int:
    return config.stash[_SEED]


def seed_for(config: pytest.Config, file_seed: int | None) -> int:
    """The seed of one experiment: --harness-seed if given, else the file's, else the session's."""
    if config.stash[_FIXED] or file_seed is None:
        return config.stash[_SEED]
    return file_seed


_PROFILES = pytest.StashKey[set[str]]()


def _starts_systems(item: pytest.Item) -> bool:
    if isinstance(item, ExperimentItem):
        return True
    return bool(_CHAOS_FIXTURES & set(getattr(item, "fixturenames", ())))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """While an item that starts systems runs (set-up, call, teardown), SIGTERM and SIGHUP
    (CI's timeout, a supervisor, ``kill``) end it as Ctrl-C does, so its systems are torn
    down; every other item keeps the handlers it had."""
    if not _starts_systems(item):
        return (yield)
    from harness.signals import interrupting

    try:
        with interrupting():
            return (yield)
    finally:
        # kept systems live only while experiment items follow one another
        if type(nextitem) is not ExperimentItem:
            _close_pool(item.config)


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """A --harness-profile that no collected experiment runs on is a usage error, not an
    empty run that passes."""
    wanted = option(config, "profile")
    seen = config.stash.get(_PROFILES, set())
    if wanted != "all" and seen and wanted not in seen:
        raise pytest.UsageError(
            f"--harness-profile: got {wanted!r}, expected 'all' or a profile the collected"
            f" experiments run on: {sorted(seen)}"
        )


def pytest_report_header(config: pytest.Config) -> str:
    seed = config.stash[_SEED]
    given = "given" if config.stash[_FIXED] else "random; files with seed: use theirs"
    return (
        f"harness: backend={option(config, 'backend')} profile={option(config, 'profile')}"
        f" seed={seed} ({given}; replay: --harness-seed {seed})"
    )


def _backend_arg(config: pytest.Config) -> str | None:
    backend = option(config, "backend")
    return None if backend == "local" else backend


@pytest.fixture(scope="session")
def harness_seed(request: pytest.FixtureRequest) -> int:
    """The session's seed (printed in the header)."""
    return session_seed(request.config)


@pytest.fixture(scope="session")
def harness_backend(request: pytest.FixtureRequest) -> Backend:
    """The backend chosen with ``--harness-backend``."""
    return get_backend(option(request.config, "backend"))


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
def run_experiment(request: pytest.FixtureRequest) -> Callable[..., Any]:
    """Run an experiment file (or a loaded Experiment) on a profile; returns the RunResult."""
    from harness.experiment import Experiment, load_experiment
    from harness.run import RunOptions, run

    config = request.config

    def go(experiment: str | Path | Experiment, profile: str, **options: Any) -> Any:
        exp = experiment if isinstance(experiment, Experiment) else load_experiment(experiment)
        opts = RunOptions(
            profile=profile,
            seed=options.pop("seed", seed_for(config, exp.seed)),
            backend=options.pop("backend", _backend_arg(config)),
            runs_dir=Path(options.pop("runs_dir", option(config, "runs_dir"))),
            proxy_all=options.pop("proxy_all", proxy_all(config)),
            **options,
        )
        return run(exp, opts)

    return go


@pytest.fixture
def fault_example(request: pytest.FixtureRequest) -> Iterator[Callable[..., Any]]:
    """Run an experiment with a given fault schedule (from ``fault_schedules``) on one
    system per experiment and profile, reset between calls; torn down after the test::

        @given(schedule=fault_schedules(space, topology=...))
        def test_x(fault_example, schedule):
            assert fault_example("experiments/x.yaml", schedule, "hardened").valid
    """
    from harness.experiment import Experiment, load_experiment
    from harness.search.engine import ExampleRunner

    config = request.config
    runners: dict[tuple[str, str], Any] = {}
    with contextlib.ExitStack() as stack:

        def go(experiment: str | Path | Experiment, schedule: Any, profile: str) -> Any:
            exp = experiment if isinstance(experiment, Experiment) else load_experiment(experiment)
            key = (str(exp.path), profile)
            if key not in runners:
                runners[key] = stack.enter_context(
                    ExampleRunner(
                        exp,
                        profile,
                        seed=seed_for(config, exp.seed),
                        runs_dir=Path(option(config, "runs_dir")),
                        backend=_backend_arg(config),
                    )
                )
            return runners[key].run(schedule)

        yield go


# --- the suite's summary ---------------------------------------------------------------------


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write ``<runs-dir>/summary.md`` for the experiments that ran, and append it to the
    GitHub Actions job summary when ``GITHUB_STEP_SUMMARY`` is set."""
    journals = [
        Path(str(value))
        for item in session.items
        for key, value in item.user_properties
        if key == "journal" and Path(str(value)).is_file()
    ]
    if not journals:
        return
    from harness.summary import SUMMARY, append_step_summary, row, suite_markdown

    runs_dir = Path(option(session.config, "runs_dir"))
    text = suite_markdown([row(j.parent) for j in journals], base=runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    (runs_dir / SUMMARY).write_text(text, encoding="utf-8")
    append_step_summary(text)
    session.config.stash[_SUMMARY] = runs_dir / SUMMARY


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for report in terminalreporter.getreports("passed") + terminalreporter.getreports("failed"):
        for key, value in report.user_properties:
            if key == "rerun_of":
                terminalreporter.write_line(f"harness: {report.nodeid} was run again: {value}")
    summary = terminalreporter.config.stash.get(_SUMMARY, None)
    if summary is not None:
        terminalreporter.write_line(f"harness: suite summary in {summary}")


# --- experiments as test items --------------------------------------------------------------


def _is_experiment(path: Path) -> bool:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            head = fh.read(1 << 20)
    except OSError:
        return False
    found = set(_EXPERIMENT.findall(head))
    return found == {"workload", "invariants"}


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.suffix not in (".yaml", ".yml") or not _is_experiment(file_path):
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
            raise self.CollectError(str(exc)) from None
        wanted = option(self.config, "profile")
        self.config.stash.setdefault(_PROFILES, set()).update(experiment.profiles)
        for profile in experiment.profiles:
            if wanted not in ("all", profile):
                continue
            if experiment.expectation(profile).outcome == "skip":
                continue
            kind = ExperimentItem if experiment.search is None else SearchItem
            item = kind.from_parent(self, name=profile, experiment=experiment, profile=profile)
            item.add_marker(pytest.mark.chaos)
            item.add_marker(pytest.mark.integration)
            yield item


class ExperimentFailed(Exception):
    """The run did not do what its file expects (not met, or inconclusive)."""

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

        capacity = option(self.config, "capacity")
        capacity_max = option(self.config, "capacity_max")
        options = RunOptions(
            profile=self.profile,
            seed=seed_for(self.config, self.experiment.seed),
            backend=_backend_arg(self.config),
            runs_dir=Path(option(self.config, "runs_dir")),
            capacity=float(capacity) if capacity else None,
            capacity_max=float(capacity_max) if capacity_max else None,
            proxy_all=proxy_all(self.config),
        )
        pool = _pool(self.config) if reuse(self.config) else None
        result = run(self.experiment, options, pool=pool)
        if result.reused:
            self.user_properties.append(("reused", True))
        self.user_properties.append(("journal", str(result.journal)))
        self.user_properties.append(("verdict", result.outcome))
        if result.rerun_of:
            self.user_properties.append(("rerun_of", result.rerun_of))
        if not result.met:
            raise ExperimentFailed(result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, ExperimentFailed):
            compression = self.experiment.workload.compression
            return report_text(excinfo.value.result, compression)
        return str(super().repr_failure(excinfo, style=style))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"experiment {self.experiment.name} [{self.profile}]"


class SearchFailed(Exception):
    """The search did not meet the expectation (a false alarm, or nothing found)."""

    def __init__(self, result: Any) -> None:
        super().__init__(result.why)
        self.result = result


class SearchItem(ExperimentItem):
    """An experiment with a ``search:`` space on one profile: a profile expected to pass
    must survive the search; one expected to fail must yield a (shrunk) failing schedule."""

    def runtest(self) -> None:
        import dataclasses

        from harness.search.engine import search

        experiment = self.experiment
        if proxy_all(self.config):
            system = dataclasses.replace(experiment.system, proxy="all")
            experiment = dataclasses.replace(experiment, system=system)
        result = search(
            experiment,
            self.profile,
            seed=seed_for(self.config, self.experiment.seed),
            runs_dir=Path(option(self.config, "runs_dir")),
            backend=_backend_arg(self.config),
        )
        self.user_properties.append(("search", str(result.journal)))
        self.user_properties.append(("verdict", "met" if result.met else "not_met"))
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


def _first_failing(result: Any) -> str:
    """The first line of a failure (what ``-ra`` shows, cut to the terminal's width): the
    invariant that decided it and its figure first, then its message."""
    from harness.summary import headline

    if result.inconclusive:
        return f"INCONCLUSIVE: {result.why}"
    expected_fail = set()
    if result.expected.startswith("fail"):
        expected_fail = set(re.findall(r"'([^']+)'", result.expected))
    for v in result.verdicts:
        figure = headline(v, mark=False, named=False)
        if v.name in expected_fail and v.valid is not False:
            return f"{v.name} {v.outcome} ({figure}), expected to fail: {v.message}"
        if v.valid is not True and v.name not in expected_fail:
            return f"{v.name} {v.outcome} ({figure}): {v.message}"
    return result.why


def report_text(result: Any, compression: float = 1.0) -> str:
    """A failing run as a pytest item reports it: what failed first, then every verdict."""
    from harness.summary import capacity_text, clock_text

    lines = [
        _first_failing(result),
        f"experiment {result.experiment} on {result.profile}: expected {result.expected}",
        f"  {result.why}",
        "",
        clock_text(compression),
        "invariants:",
    ]
    for v in result.verdicts:
        lines.append(f"  [{v.outcome.upper():7}] {v}")
    if result.faults:
        lines += ["", "fault timeline (run seconds):"]
        for f in result.faults:
            end = "never healed" if f.end is None else f"{f.end:.2f}s"
            lines.append(f"  {f.start:6.2f}s - {end}: {f.target} (took effect: {f.took_effect})")
    lines += ["", capacity_text(result.capacity)]
    path = result.replay.split()[2] if len(result.replay.split()) > 2 else ""
    lines += [
        f"report:  {result.report}",
        f"journal: {result.journal}",
        f"replay:  {result.replay}",
        f"     or: pytest {path}::{result.profile} --harness-seed {result.seed}",
    ]
    if result.rerun_of:
        lines.append(f"rerun of {result.rerun_of}")
    return "\n".join(lines)
