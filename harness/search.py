"""The fault search: Hypothesis generates fault schedules, each runs as a short example on
one reused system, a failing one is shrunk to the smallest schedule that still breaks the
property, written out as an experiment file that replays it.

    exp = load_experiment("experiments/search-planted-weakness.yaml")
    result = search(exp, "hardened", seed=7, runs_dir=Path("runs"))
    print(result.summary())      # examples, time to first failure, time to shrink, minimal
    # result.minimal_file: runs/<name>/<stamp>-hardened/minimal.yaml
    # result.replay:       harness run runs/.../minimal.yaml --profile hardened --seed 7

**The property** is the experiment's invariants: with ``expect: {P: {fail: [ids]}}`` a
schedule fails when one of those invariants is false (so shrinking keeps breaking the
invariant that was broken); otherwise when any invariant is false. A profile expected to
pass must survive the search (no failing schedule); a profile expected to fail must
yield one.

**Nondeterminism.** A real system under real timing does not replay exactly, so a
candidate counts as failing only when it fails ``must_fail`` of at most ``replays``
runs (stopping early once the outcome is decided). Every verdict is cached per schedule,
so Hypothesis sees a deterministic property: shrinking converges and no ``Flaky`` error
is raised. A schedule that failed but not ``must_fail`` times is *unreproduced*: it is
counted as passing and listed as such in the result and the journal, never hidden.

**Cost.** One system is started and seeded once; between examples it is reset
(:func:`harness.run.reset_system`: Toxiproxy reset, dead components restarted, the fast
``reset:`` re-seed). A schedule with a database loss changes the topology (a standby is
promoted), so the system is discarded after it and a fresh one started; so is a system
whose steady state is broken before the faults (the example then runs once more). The
``budget`` bounds the whole search: once it is spent no new schedule runs (Hypothesis
sees the rest as passing), so shrinking stops with the smallest failing schedule so far.
Hypothesis's example database lives in ``~/.cache/harness/hypothesis``: a failure found
once is replayed first next time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.faults import ScheduledFault
from harness.strategies import SearchSpace, describe, fault_schedules, schedule_key, to_yaml

__all__ = [
    "Candidate",
    "ExampleRunner",
    "Search",
    "SearchResult",
    "hypothesis_dir",
    "search",
]


def hypothesis_dir() -> Path:
    """Where Hypothesis keeps failing examples between sessions (the project's cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "harness" / "hypothesis"


@dataclass(frozen=True)
class Search:
    """A search as written under ``search:``: the space, and how hard to look."""

    space: SearchSpace
    examples: int = 15  # schedules Hypothesis generates (shrinking comes on top)
    budget: float = 300.0  # seconds for the whole search, shrinking included
    replays: int = 2  # runs at most per candidate schedule ...
    must_fail: int = 2  # ... of which this many must fail for it to count as failing


@dataclass
class Candidate:
    """One schedule tried: its runs and what they decided."""

    schedule: tuple[ScheduledFault, ...]
    phase: str  # "generate" (before the first failure), "shrink", "delete" (the last pass)
    started: float  # seconds since the search began
    runs: list[dict[str, Any]] = field(default_factory=list)
    verdict: str = "pass"  # pass | fail | unreproduced | aborted | error
    broken: tuple[str, ...] = ()  # invariant ids broken in the failing runs

    @property
    def failures(self) -> int:
        return sum(1 for r in self.runs if r["broken"])

    @property
    def failing(self) -> bool:
        return self.verdict == "fail"

    def to_json(self) -> dict[str, Any]:
        return {
            "faults": to_yaml(self.schedule),
            "describe": describe(self.schedule),
            "phase": self.phase,
            "started_s": round(self.started, 2),
            "verdict": self.verdict,
            "broken": list(self.broken),
            "failures": self.failures,
            "runs": self.runs,
        }


@dataclass(frozen=True)
class SearchResult:
    """What a search found, how long it took, and where its evidence is."""

    experiment: str
    profile: str
    seed: int
    expected: str
    met: bool
    why: str
    minimal: tuple[ScheduledFault, ...] | None
    broken: tuple[str, ...]
    examples: int  # distinct schedules run
    runs: int  # example runs in all (replays included)
    shrink_steps: int  # smaller failing schedules accepted after the first failure
    shrink_tried: int  # distinct schedules tried while shrinking
    time_to_first_failure: float | None
    time_to_shrink: float | None
    elapsed: float
    unreproduced: tuple[Candidate, ...]
    budget_spent: bool
    run_dir: Path
    journal: Path
    minimal_file: Path | None = None
    replay: str | None = None
    first_failure: tuple[ScheduledFault, ...] | None = None
    setup: float = 0.0  # seconds of the elapsed time spent starting systems and calibrating
    must_fail: int = 2
    replays: int = 2

    @property
    def _rule(self) -> str:
        return f"({self.must_fail} of {self.replays} runs)"

    @property
    def found(self) -> bool:
        return self.minimal is not None

    def summary(self) -> str:
        head = (
            f"search {self.experiment} [{self.profile}] seed={self.seed}: "
            f"{'as expected' if self.met else 'NOT as expected'} ({self.why})"
        )
        ttf = "-" if self.time_to_first_failure is None else f"{self.time_to_first_failure:.0f}s"
        tts = "-" if self.time_to_shrink is None else f"{self.time_to_shrink:.0f}s"
        tried = (
            f"  {self.examples} schedules ({self.runs} runs) in {self.elapsed:.0f}s"
            f" ({self.setup:.0f}s of it starting systems and calibrating)"
        )
        if self.time_to_first_failure is None:
            lines = [head, f"{tried}; no schedule failed {self._rule}"]
        else:
            lines = [
                head,
                f"{tried}; first failure after {ttf}; shrinking {tts},"
                f" {self.shrink_steps} steps of {self.shrink_tried} tried",
            ]
        if self.first_failure is not None:
            lines.append(f"  first failing: {describe(self.first_failure)}")
        if self.minimal is not None:
            lines.append(
                f"  minimal ({len(self.minimal)} fault(s)): {describe(self.minimal)}"
                f" breaks {', '.join(self.broken)}"
            )
        for c in self.unreproduced:
            lines.append(
                f"  NOT REPRODUCED: {describe(c.schedule)} failed {c.failures} of"
                f" {len(c.runs)} runs ({', '.join(c.broken)})"
            )
        if self.budget_spent:
            lines.append("  the time budget ran out: the search (or its shrinking) stopped early")
        lines.append(f"  journal: {self.journal}")
        if self.replay:
            lines.append(f"  replay:  {self.replay}")
        return "\n".join(lines)


# --------------------------------------------------------------------------- examples


class ExampleRunner:
    """Runs an experiment with a given fault schedule on one reused system per profile.

    Also the engine of the ``fault_example`` pytest fixture, for searches written in Python
    with ``@given(schedule=fault_schedules(...))``. Use as a context manager: the system
    it started is torn down on exit.
    """

    def __init__(
        self,
        experiment: Any,
        profile: str,
        *,
        seed: int,
        runs_dir: Path,
        backend: str | None = None,
        capacity: float | None = None,
        say: Callable[[str], None] | None = None,
    ) -> None:
        self.experiment = experiment
        self.profile = profile
        self.seed = seed
        self.runs_dir = Path(runs_dir)
        self.backend = backend or experiment.system.backend
        self.capacity = capacity
        self.say = say or (lambda _m: None)
        self._stack: contextlib.ExitStack | None = None
        self._system: Any = None
        self.started_systems = 0
        self.setup_seconds = 0.0  # starting systems and calibrating C, not examples

    def __enter__(self) -> ExampleRunner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.discard()

    def discard(self) -> None:
        """Tear down the current system (the next example starts a fresh one)."""
        if self._stack is not None:
            stack, self._stack, self._system = self._stack, None, None
            stack.close()

    def system(self) -> Any:
        if self._system is None:
            from harness.backends import get_backend
            from harness.run import topology_for

            stack = contextlib.ExitStack()
            started = time.monotonic()
            try:
                topology = topology_for(self.experiment, self.profile)
                self.say(f"starting {topology.name} ({self.profile}) for the search")
                system = stack.enter_context(
                    get_backend(self.backend).start(topology, seed=self.seed)
                )
                system.seed(self.seed)
            except BaseException:
                stack.close()
                raise
            self._stack, self._system = stack, system
            self.started_systems += 1
            self.setup_seconds += time.monotonic() - started
        return self._system

    def run(self, schedule: Sequence[ScheduledFault]) -> Any:
        """One run of the experiment with ``schedule`` added to its fixed faults."""
        from harness.run import RunOptions, run

        faults = tuple(self.experiment.faults) + tuple(schedule)
        exp = dataclasses.replace(self.experiment, faults=faults, search=None)
        options = RunOptions(
            profile=self.profile,
            seed=self.seed,
            backend=self.backend,
            runs_dir=self.runs_dir,
            capacity=self.capacity,
            publish=False,
            live=False,
        )
        result = None
        for attempt in (1, 2):
            try:
                result = run(exp, options, system=self.system())
            except Exception:
                self.discard()  # a setup error may leave the system in any state
                if attempt == 2:
                    raise
                continue
            self.setup_seconds += float(result.timings.get("calibrate", 0.0))
            if self.capacity is None:
                self.capacity = result.capacity
                options = dataclasses.replace(options, capacity=result.capacity)
            if any(sf.fault.kind == "db_loss" for sf in faults):
                self.discard()  # a standby was promoted: this topology cannot be reset
            if result.aborted and attempt == 1:
                self.say(f"steady state broken ({result.aborted}); fresh system, once more")
                self.discard()
                continue
            return result
        return result


# --------------------------------------------------------------------------- the search


class _Failing(AssertionError):
    """Raised inside the Hypothesis test for a confirmed failing schedule."""

    def __init__(self, candidate: Candidate) -> None:
        super().__init__(f"{describe(candidate.schedule)} breaks {', '.join(candidate.broken)}")
        self.candidate = candidate


class _State:
    def __init__(self, budget: float) -> None:
        self.t0 = time.monotonic()
        self.budget = budget
        self.cache: dict[str, Candidate] = {}
        self.order: list[Candidate] = []
        self.first_failure: float | None = None
        self.first: Candidate | None = None
        self.best: Candidate | None = None
        self.shrink_steps = 0
        self.skipped = 0

    def now(self) -> float:
        return time.monotonic() - self.t0

    @property
    def spent(self) -> bool:
        return self.now() >= self.budget


def _watched(experiment: Any, profile: str) -> tuple[str, ...]:
    """The invariant ids whose failure makes a schedule fail."""
    expectation = experiment.expectation(profile)
    if expectation.outcome == "fail":
        return tuple(expectation.fail)
    return tuple(i.id for i in experiment.invariants)


def _evaluate(
    schedule: tuple[ScheduledFault, ...],
    phase: str,
    state: _State,
    runner: Any,
    spec: Search,
    watched: tuple[str, ...],
) -> Candidate:
    cand = Candidate(schedule, phase, state.now())
    needed, most = spec.must_fail, spec.replays
    for i in range(most):
        started = time.monotonic()
        try:
            result = runner.run(schedule)
        except Exception as exc:
            cand.runs.append(
                {"error": f"{type(exc).__name__}: {exc}", "broken": [], "seconds": 0.0}
            )
            cand.verdict = "error"
            return cand
        broken = [v.name for v in result.verdicts if v.name in watched and v.valid is False]
        cand.runs.append(
            {
                "broken": broken,
                "valid": result.valid,
                "aborted": result.aborted,
                "unknown": [v.name for v in result.verdicts if v.valid is None],
                "faults_without_effect": sum(
                    1 for f in result.faults if getattr(f, "took_effect", True) is False
                ),
                "run_dir": str(result.run_dir),
                "seconds": round(time.monotonic() - started, 2),
            }
        )
        if result.aborted:
            cand.verdict = "aborted"
            return cand
        fails = cand.failures
        if fails >= needed or fails + (most - i - 1) < needed:
            break
    if cand.failures >= needed:
        cand.verdict = "fail"
        seen = [name for r in cand.runs for name in r["broken"]]
        cand.broken = tuple(dict.fromkeys(seen))
    elif cand.failures:
        cand.verdict = "unreproduced"
        seen = [name for r in cand.runs for name in r["broken"]]
        cand.broken = tuple(dict.fromkeys(seen))
    return cand


def search(
    experiment: Any,
    profile: str,
    *,
    seed: int = 1,
    runs_dir: Path = Path("runs"),
    backend: str | None = None,
    capacity: float | None = None,
    database: Path | None = None,
    say: Callable[[str], None] | None = None,
    runner: Any = None,
) -> SearchResult:
    """Search ``experiment``'s ``search:`` space on ``profile``; see the module docstring."""
    from hypothesis import HealthCheck, Phase, Verbosity, given, settings
    from hypothesis.database import DirectoryBasedExampleDatabase

    from harness.run import topology_for
    from harness.store import RunDir

    spec: Search | None = getattr(experiment, "search", None)
    if spec is None:
        raise ValueError(f"experiment {experiment.name!r} has no search: section")
    say = say or (lambda _m: None)
    watched = _watched(experiment, profile)
    topology = topology_for(experiment, profile)
    strategy = fault_schedules(spec.space, topology=topology)
    run_dir = RunDir(runs_dir, experiment.name, profile)
    run_dir.save_experiment(experiment.path)
    state = _State(spec.budget)
    db_path = database or hypothesis_dir()
    db_path.mkdir(parents=True, exist_ok=True)

    if runner is None:  # a fake with .run(schedule) and a context manager, in unit tests
        runner = ExampleRunner(
            experiment,
            profile,
            seed=seed,
            runs_dir=run_dir.path / "examples",
            backend=backend,
            capacity=capacity,
            say=say,
        )
    with runner:

        def judge(schedule: tuple[ScheduledFault, ...], force: bool = False) -> Candidate | None:
            key = schedule_key(schedule)
            cand = state.cache.get(key)
            if cand is None:
                if state.spent and not force:
                    state.skipped += 1
                    return None  # not run: counts as passing, and is not cached
                phase = "generate" if state.first is None else "shrink"
                phase = "delete" if force else phase
                say(f"[{state.now():5.0f}s] {phase}: {describe(schedule)}")
                cand = _evaluate(schedule, phase, state, runner, spec, watched)
                say(f"         -> {cand.verdict} {', '.join(cand.broken)}")
                state.cache[key] = cand
                state.order.append(cand)
                if cand.failing:
                    if state.first is None:
                        state.first, state.first_failure = cand, state.now()
                    else:
                        state.shrink_steps += 1
                    state.best = cand
            return cand

        def prop(schedule: tuple[ScheduledFault, ...]) -> None:
            cand = judge(schedule)
            if cand is not None and cand.failing:
                raise _Failing(cand)

        test = given(schedule=strategy)(prop)
        test = settings(
            max_examples=spec.examples,
            deadline=None,
            database=DirectoryBasedExampleDatabase(str(db_path)),
            phases=(Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
            suppress_health_check=list(HealthCheck),
            report_multiple_bugs=False,
            print_blob=False,
            verbosity=Verbosity.quiet,
        )(test)
        # Seeded generation *and* the example database: hypothesis.seed() and
        # derandomize=True both switch the database off, so the seed is set the way
        # @seed sets it, without its database=None (Hypothesis 6.x internals, pinned <7).
        test._hypothesis_internal_use_seed = seed  # type: ignore[attr-defined]
        test._hypothesis_internal_database_key = json.dumps(  # type: ignore[attr-defined]
            [experiment.name, profile, repr(spec.space), sorted(watched)]
        ).encode()
        found: tuple[ScheduledFault, ...] | None = None
        try:
            test()
        except _Failing as exc:
            found = exc.candidate.schedule
        minimal = None if found is None else state.cache[schedule_key(found)]
        shrink_started = state.first_failure
        if minimal is not None:
            minimal = _delete_pass(minimal, judge)
        shrink_done = state.now()

    return _finish(
        experiment,
        profile,
        seed,
        spec,
        state,
        run_dir,
        minimal,
        shrink_started,
        shrink_done,
        watched,
        float(getattr(runner, "setup_seconds", 0.0)),
    )


def _delete_pass(best: Candidate, judge: Callable[..., Candidate | None]) -> Candidate:
    """Try the schedule with each single fault removed; keep any that still fails.
    Hypothesis's list shrinking sometimes keeps a mild fault that is not needed. This pass
    runs even when the budget is spent (at most ``max_faults`` schedules per removal), so
    the schedule reported never carries a fault it does not need."""
    improved = True
    while improved and len(best.schedule) > 1:
        improved = False
        for i in range(len(best.schedule)):
            smaller = best.schedule[:i] + best.schedule[i + 1 :]
            cand = judge(smaller, force=True)
            if cand is not None and cand.failing:
                best, improved = cand, True
                break
    return best


def _finish(
    experiment: Any,
    profile: str,
    seed: int,
    spec: Search,
    state: _State,
    run_dir: Any,
    minimal: Candidate | None,
    shrink_started: float | None,
    shrink_done: float,
    watched: tuple[str, ...],
    setup: float = 0.0,
) -> SearchResult:
    expectation = experiment.expectation(profile)
    unreproduced = tuple(c for c in state.order if c.verdict == "unreproduced")
    errors = [c for c in state.order if c.verdict in ("error", "aborted")]
    found = minimal is not None
    if expectation.outcome == "fail":
        met = found
        why = (
            f"found and shrank a schedule breaking {', '.join(minimal.broken)}"
            if minimal is not None
            else f"no schedule broke {', '.join(watched)} ({len(state.order)} tried)"
        )
    else:
        met = not found
        why = (
            f"survived {len(state.order)} schedules"
            if minimal is None
            else f"a schedule breaks {', '.join(minimal.broken)}"
        )
    if unreproduced:
        why += f"; {len(unreproduced)} failure(s) seen but not reproduced"
    if errors:
        why += f"; {len(errors)} schedule(s) could not be judged (error or broken steady state)"
    minimal_file = replay = None
    if minimal is not None:
        minimal_file = run_dir.path / "minimal.yaml"
        replay = f"harness run {_display(minimal_file)} --profile {profile} --seed {seed}"
        _write_minimal(experiment, profile, seed, minimal, minimal_file, replay)
        _publish_example(minimal)
    tried_in_shrink = [c for c in state.order if c.phase in ("shrink", "delete")]
    result = SearchResult(
        experiment=experiment.name,
        profile=profile,
        seed=seed,
        expected=str(expectation),
        met=met,
        why=why,
        minimal=None if minimal is None else minimal.schedule,
        broken=() if minimal is None else minimal.broken,
        examples=len(state.order),
        runs=sum(len(c.runs) for c in state.order),
        shrink_steps=state.shrink_steps,
        shrink_tried=len(tried_in_shrink),
        time_to_first_failure=state.first_failure,
        time_to_shrink=None if shrink_started is None else shrink_done - shrink_started,
        elapsed=state.now(),
        unreproduced=unreproduced,
        budget_spent=state.skipped > 0,
        run_dir=run_dir.path,
        journal=run_dir.journal,
        minimal_file=minimal_file,
        replay=replay,
        first_failure=None if state.first is None else state.first.schedule,
        setup=setup,
        must_fail=spec.must_fail,
        replays=spec.replays,
    )
    _write_journal(result, experiment, spec, state, run_dir, minimal)
    return result


def _display(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(Path.cwd()))
    return str(path)


def _write_minimal(
    experiment: Any,
    profile: str,
    seed: int,
    minimal: Candidate,
    target: Path,
    replay: str,
) -> None:
    """The experiment file with the minimal schedule as its fixed faults, ready to run."""
    import yaml

    data = yaml.safe_load(Path(experiment.path).read_text(encoding="utf-8"))
    data.pop("search", None)
    data["name"] = f"{experiment.name}-found"
    data["description"] = f"minimal failing schedule found by searching {experiment.name}"
    data["seed"] = seed
    system = dict(data.get("system") or {})
    system["profile"] = profile
    topo = system.get("topology")
    if topo and topo != "reference":
        system["topology"] = str((Path(experiment.path).resolve().parent / topo).resolve())
    data["system"] = system
    data["faults"] = to_yaml(tuple(experiment.faults) + minimal.schedule)
    data["expect"] = {profile: {"fail": list(minimal.broken)}}
    head = (
        f"# Found by the fault search of {experiment.path} on {profile} (seed {seed}):\n"
        f"# the smallest schedule that broke {', '.join(minimal.broken)} in"
        f" {minimal.failures} of {len(minimal.runs)} runs.\n"
        f"# Replay: {replay}\n"
        f"#   ('as expected' means the failure reproduced)\n"
    )
    order = ["name", "description", "seed", "system", "workload", "faults", "invariants"]
    ordered = {k: data[k] for k in order if k in data}
    ordered.update({k: v for k, v in data.items() if k not in ordered})
    body = yaml.safe_dump(ordered, sort_keys=False, default_flow_style=None, width=100)
    target.write_text(head + body, encoding="utf-8")


def _publish_example(minimal: Candidate) -> None:
    """report.html and summary.md for the minimal schedule's last failing run."""
    failing = [r for r in minimal.runs if r.get("broken") and r.get("run_dir")]
    if not failing or not (Path(failing[-1]["run_dir"]) / "journal.json").exists():
        return
    from harness.run import _publish

    _publish(Path(failing[-1]["run_dir"]), None)


def _write_journal(
    result: SearchResult,
    experiment: Any,
    spec: Search,
    state: _State,
    run_dir: Any,
    minimal: Candidate | None,
) -> None:
    verdicts: list[dict[str, Any]] = []
    if minimal is not None:
        failing = [r for r in minimal.runs if r.get("broken") and r.get("run_dir")]
        if failing:
            with contextlib.suppress(Exception):
                from harness.store import read_journal

                verdicts = read_journal(failing[-1]["run_dir"]).get("verdicts", [])
    journal = {
        "kind": "search",
        "experiment": {
            "name": experiment.name,
            "description": experiment.description,
            "path": str(experiment.path),
            "copy": "experiment.yaml",
        },
        "profile": result.profile,
        "seed": result.seed,
        "valid": None if minimal is None and result.unreproduced else minimal is None,
        "expected": result.expected,
        "met": result.met,
        "why": result.why,
        "aborted": None,
        "verdicts": verdicts,
        "search": {
            "space": spec.space,
            "examples_setting": spec.examples,
            "budget_s": spec.budget,
            "replays": spec.replays,
            "must_fail": spec.must_fail,
            "figures": {
                "examples": result.examples,
                "runs": result.runs,
                "shrink_steps": result.shrink_steps,
                "shrink_tried": result.shrink_tried,
                "time_to_first_failure_s": result.time_to_first_failure,
                "time_to_shrink_s": result.time_to_shrink,
                "elapsed_s": result.elapsed,
                "setup_s": result.setup,
                "budget_spent": result.budget_spent,
            },
            "first_failure": None
            if result.first_failure is None
            else to_yaml(result.first_failure),
            "minimal": None if result.minimal is None else to_yaml(result.minimal),
            "broken": list(result.broken),
            "unreproduced": [c.to_json() for c in result.unreproduced],
            "history": [c.to_json() for c in state.order],
        },
        "minimal_file": None if result.minimal_file is None else result.minimal_file.name,
        "replay": result.replay,
    }
    run_dir.write_journal(journal)
    (run_dir.path / "summary.md").write_text(_markdown(result), encoding="utf-8")


def _markdown(result: SearchResult) -> str:
    lines = [
        f"# Fault search: {result.experiment} [{result.profile}]",
        "",
        f"**{'as expected' if result.met else 'NOT as expected'}** ({result.why})",
        "",
        "```",
        result.summary(),
        "```",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m harness.search EXPERIMENT --profile P [--seed N] [--runs-dir D]``."""
    import argparse

    from harness.experiment import load_experiment

    parser = argparse.ArgumentParser(prog="python -m harness.search", description=main.__doc__)
    parser.add_argument("experiment")
    parser.add_argument("--profile", required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--runs-dir", default="runs")
    args = parser.parse_args(argv)
    exp = load_experiment(args.experiment)
    result = search(exp, args.profile, seed=args.seed, runs_dir=Path(args.runs_dir), say=print)
    print(result.summary())
    return 0 if result.met else 1


if __name__ == "__main__":
    raise SystemExit(main())
