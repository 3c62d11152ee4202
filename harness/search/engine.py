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
(:func:`harness.run.reset_system`: Toxiproxy reset, dead components restarted, the
domain's fast re-seed). A schedule with a database loss changes the topology (a standby is
promoted), so the system is discarded after it and a fresh one started; so is a system
whose steady state is broken before the faults (the example then runs once more). The
``budget`` bounds the whole search: once it is spent no new schedule runs (Hypothesis
sees the rest as passing), so shrinking stops with the smallest failing schedule so far.
Hypothesis's example database lives in ``~/.cache/harness/hypothesis``: a failure found
once is replayed first next time.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from hypothesis import HealthCheck, Verbosity, given, settings
from hypothesis import Phase as HypothesisPhase
from hypothesis.database import DirectoryBasedExampleDatabase

from harness.experiment import Experiment
from harness.faults import ScheduledFault
from harness.search.examples import ExampleRunner, Runner
from harness.search.minimal import write_minimal
from harness.search.record import publish_example, write_record
from harness.search.result import Candidate, SearchResult
from harness.search.space import SearchSpec, describe, fault_schedules, schedule_key
from harness.store import RunDir

__all__ = [
    "Candidate",
    "ExampleRunner",
    "Runner",
    "SearchResult",
    "hypothesis_dir",
    "search",
]


def hypothesis_dir() -> Path:
    """Where Hypothesis keeps failing examples between sessions (the project's cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "harness" / "hypothesis"


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


def _watched(experiment: Experiment, profile: str) -> tuple[str, ...]:
    """The invariant ids whose failure makes a schedule fail."""
    expectation = experiment.expectation(profile)
    if expectation.outcome == "fail":
        return tuple(expectation.fail)
    return tuple(i.id for i in experiment.invariants)


def _evaluate(
    schedule: tuple[ScheduledFault, ...],
    phase: str,
    state: _State,
    runner: Runner,
    spec: SearchSpec,
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
        if result.inconclusive:  # says nothing either way
            cand.runs[-1]["inconclusive"] = result.why
            cand.verdict = "inconclusive"
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
    experiment: Experiment,
    profile: str,
    *,
    seed: int = 1,
    runs_dir: Path = Path("runs"),
    backend: str | None = None,
    capacity: float | None = None,
    database: Path | None = None,
    say: Callable[[str], None] | None = None,
    runner: Runner | None = None,
) -> SearchResult:
    """Search ``experiment``'s ``search:`` space on ``profile``; see the module docstring."""
    spec = experiment.search
    if spec is None:
        raise ValueError(f"experiment {experiment.name!r} has no search: section")
    say = say or (lambda _m: None)
    watched = _watched(experiment, profile)
    strategy = fault_schedules(spec.space, topology=experiment.sut(profile).topology)
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
            phases=(
                HypothesisPhase.explicit,
                HypothesisPhase.reuse,
                HypothesisPhase.generate,
                HypothesisPhase.shrink,
            ),
            suppress_health_check=list(HealthCheck),
            report_multiple_bugs=False,
            print_blob=False,
            verbosity=Verbosity.quiet,
        )(test)
        # Seeded generation *and* the example database: hypothesis.seed() and
        # derandomize=True both switch the database off, so the seed is set the way
        # @seed sets it, without its database=None (Hypothesis 6.x internals, pinned <7).
        test._hypothesis_internal_use_seed = seed  # type: ignore[attr-defined]  # Hypothesis internal
        test._hypothesis_internal_database_key = json.dumps(  # type: ignore[attr-defined]  # Hypothesis internal
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
    experiment: Experiment,
    profile: str,
    seed: int,
    spec: SearchSpec,
    state: _State,
    run_dir: RunDir,
    minimal: Candidate | None,
    shrink_started: float | None,
    shrink_done: float,
    watched: tuple[str, ...],
    setup: float = 0.0,
) -> SearchResult:
    expectation = experiment.expectation(profile)
    unreproduced = tuple(c for c in state.order if c.verdict == "unreproduced")
    errors = [c for c in state.order if c.verdict in ("error", "aborted")]
    untrusted = [r["inconclusive"] for c in state.order for r in c.runs if "inconclusive" in r]
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
    if untrusted:
        why += f"; {len(untrusted)} schedule(s) inconclusive, e.g. {untrusted[0]}"
        if 4 * len(untrusted) > len(state.order):  # too few judged to claim a pass
            met = met and found  # a search that did not find is inconclusive, not a pass
    minimal_file = replay = None
    if minimal is not None:
        minimal_file = run_dir.path / "minimal.yaml"
        replay = f"harness run {_display(minimal_file)} --profile {profile} --seed {seed}"
        write_minimal(
            experiment,
            profile,
            seed,
            minimal.schedule,
            minimal.broken,
            f"{minimal.failures} of {len(minimal.runs)}",
            minimal_file,
            replay,
        )
        publish_example(minimal)
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
        inconclusive=tuple(untrusted),
    )
    write_record(result, experiment, spec, state.order, run_dir, minimal)
    return result


def _display(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(Path.cwd()))
    return str(path)
