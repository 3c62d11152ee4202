"""One experiment run, start to finish: ``run(experiment, options) -> RunResult``.

The lifecycle, as nested context managers so teardown always runs:

1. the system under test for the profile (`harness.sut`); start it (or take a reused one);
2. seed its data (the domain's `seed`, `reset=True` on a reused system);
3. capacity C: given, not needed, or calibrated (cached) on the `capacity_from` profile;
   for `x_own` rates also the running profile's own capacity (calibrated, cached);
4. the steady state: a short low-rate load must meet the SLO (measured twice when the
   first fails), or the run aborts with its own verdict;
5. the workload and the fault schedule on one clock (the runner's t0), every CPU watched
   for stalls of the machine itself; the schedule heals everything on exit;
6. the domain settles the system (drains), then reads the state data invariants need;
7. every invariant checked, plus the verdicts on the run itself (the generator, the
   machine, the faults), and judged against the file's expectation: met, not met, or
   inconclusive (the run could not judge);
8. the journal, history and component logs under ``runs/``; teardown;
9. an inconclusive run is run once more, on a fresh system, naming the run it repeats.

    exp = load_experiment("experiments/morning-surge.yaml")
    result = run(exp, RunOptions(profile="hardened", seed=7))
    print(result.summary())
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from harness import journal, progress
from harness.backends import Killable, Pausable, Restartable, System, get_backend
from harness.blame import blame_all
from harness.calibrate import CalibrationError
from harness.experiment import TRUST, Experiment, Judgement
from harness.faults import ScheduleReport, ScheduleRun, run_schedule
from harness.history import History, HistoryWriter, Op
from harness.invariants import Verdict, check_all, compose, fault_records
from harness.invariants.faults_took_effect import faults_verdict
from harness.journal import (
    CapacityRecord,
    ExperimentRef,
    RunJournal,
    WorkloadRecord,
)
from harness.load import LoadConfig, LoadResult, Runner, run_generator
from harness.metrics.sampler import Sampler, targets
from harness.metrics.store import Metrics
from harness.metrics.store import load as load_metrics
from harness.run.capacity import resolve_capacity, resolve_own_capacity
from harness.run.proxied import check_proxied, proxied_links
from harness.run.records import metrics_record, save_logs, topology_record, versions
from harness.run.result import RunOptions, RunResult, display_path, replay_command
from harness.run.reuse import ResetFailed, SystemPool, check_reset
from harness.run.steady import NAME as STEADY
from harness.run.steady import check_steady_state, steady_state
from harness.run.verdicts import generator_verdict
from harness.stalls import StallWatch, machine_verdict
from harness.store import RunDir
from harness.sut import SteadyState, SystemUnderTest

RERUNS = 1  # how often an inconclusive run is run again

__all__ = ["RERUNS", "reset_system", "run", "steady_rate"]


def run(
    experiment: Experiment,
    options: RunOptions,
    *,
    system: System | None = None,
    pool: SystemPool | None = None,
) -> RunResult:
    """Run ``experiment`` on ``options.profile``; ``system`` reuses an already started one,
    ``pool`` a kept system of the same shape (and keeps the one this run starts).

    A run that could not judge (inconclusive: the generator fell behind, the machine
    stalled, a fault did not take effect, C could not be measured) says nothing about the
    system: it is run again, at most `RERUNS` times, on a system of its own, and the new
    result names the run it repeats (`rerun_of`). Both journals stay. So is a run on a
    pooled system whose steady state broke (the reset may have left something behind).
    """
    result = _run_once(experiment, options, system=system, pool=pool)
    if pool is not None and (result.inconclusive or result.aborted):
        pool.forget(experiment, options)
    for _ in range(RERUNS):
        again_fresh = result.reused and pool is not None and result.aborted is not None
        if not (result.inconclusive or again_fresh) or system is not None:
            break
        if options.progress:
            options.progress(f"{result.outcome} ({result.why}): running it again")
        again = dataclasses.replace(
            options, rerun_of=f"{display_path(result.journal)}: {result.why}"
        )
        result = _run_once(experiment, again, pool=pool)
        if pool is not None and (result.inconclusive or result.aborted):
            pool.forget(experiment, options)
    return result


def reset_system(system: System, sut: SystemUnderTest, seed: int) -> None:
    """A reused system back to where a fresh one starts: no toxic and every link enabled
    (Toxiproxy reset), every component running and not paused, the data re-seeded (the
    domain's seed with `reset=True`), then checked (`ResetFailed` when it is not). A
    database loss changes the topology itself (a standby promoted): such a system cannot
    be reset, start a new one."""
    system.toxiproxy.reset()
    for name in system.endpoints.components:
        if isinstance(system, Killable) and not system.is_running(name):
            if not isinstance(system, Restartable):
                raise ResetFailed(f"{name} is down and the backend cannot restart it")
            system.restart(name)
        elif isinstance(system, Pausable):
            system.resume(name)
    sut.domain.seed(system, seed, reset=True)
    check_reset(system)


class _Stopwatch:
    def __init__(self, into: dict[str, float]) -> None:
        self.into = into

    @contextlib.contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.into[name] = round(time.monotonic() - started, 3)


@dataclass
class _Run:
    """What one run has gathered so far, for the journal."""

    experiment: Experiment
    options: RunOptions
    sut: SystemUnderTest
    backend: str
    run_dir: RunDir
    timings: dict[str, float]
    system: System | None = None
    capacity: CapacityRecord = field(default_factory=lambda: CapacityRecord(None, "none"))
    own_capacity: CapacityRecord | None = None
    history: History = field(default_factory=History)
    load: LoadResult | None = None
    report: ScheduleReport | None = None
    machine: Verdict | None = None
    settled: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    metrics: Metrics | None = None
    aborted: str | None = None
    inconclusive: Verdict | None = None  # why the run could not judge, before any workload
    reused: bool = False  # on a system an earlier run used (reset in between)


def _run_once(
    experiment: Experiment,
    options: RunOptions,
    *,
    system: System | None = None,
    pool: SystemPool | None = None,
) -> RunResult:
    say = options.progress or (lambda _msg: None)
    backend_name = options.backend or experiment.system.backend
    sut = experiment.sut(options.profile)
    run_dir = RunDir(options.runs_dir, experiment.name, options.profile)
    run_dir.save_experiment(experiment.path)
    state = _Run(experiment, options, sut, backend_name, run_dir, {})
    clock = _Stopwatch(state.timings)
    with contextlib.ExitStack() as stack:
        owner = contextlib.ExitStack()  # the teardown of a system this run starts

        def start() -> System:
            say(f"starting {sut.topology.name} ({options.profile}) on {backend_name}")
            proxied = proxied_links(experiment, sut.topology, proxy_all=options.proxy_all)
            backend = get_backend(backend_name)
            return owner.enter_context(
                backend.start(sut.topology, seed=options.seed, proxied=proxied)
            )

        def handover(*exc: object) -> None:
            if pool is not None and state.system is not None:
                if exc[0] is None and pool.keep(experiment, options, state.system, owner):
                    return
                pool.drop(state.system)
            owner.close()

        stack.push(handover)
        with clock("start"):
            pooled = pool.take(experiment, options) if system is None and pool else None
            reused = system is not None or pooled is not None
            if system is None:
                system = pooled or start()
            check_proxied(experiment, system)
            stack.callback(lambda: save_logs(state.system, run_dir))
        state.system = system
        with clock("seed"):
            say("seeding")
            if reused:
                try:
                    reset_system(system, sut, options.seed)
                except ResetFailed as exc:
                    if pool is None or pooled is None:
                        raise
                    say(f"the reset failed ({exc}): a fresh system")
                    pool.drop(pooled, why=str(exc))
                    reused, state.system = False, None
                    system = state.system = start()
                    sut.domain.seed(system, options.seed)
            else:
                sut.domain.seed(system, options.seed)
        state.reused = reused
        with clock("calibrate"):
            try:
                state.capacity = resolve_capacity(
                    experiment,
                    sut,
                    system,
                    profile=options.profile,
                    backend=backend_name,
                    given=options.capacity,
                    recalibrate=options.recalibrate,
                    seed=options.seed,
                    say=say,
                    at_most=options.capacity_max,
                )
                state.own_capacity = resolve_own_capacity(
                    experiment,
                    sut,
                    system,
                    state.capacity,
                    profile=options.profile,
                    backend=backend_name,
                    recalibrate=options.recalibrate,
                    seed=options.seed,
                    say=say,
                    given=options.own_capacity,
                    at_most=options.capacity_max,
                )
            except CalibrationError as exc:
                why = f"capacity C could not be measured: {exc}"
                state.inconclusive = Verdict("capacity", None, message=why)
                return _finish(state)
        steady = experiment.steady(sut)
        if steady is not None:
            rate = steady_rate(steady, state.capacity.rps, experiment)
            assert sut.operations is not None
            ops = sut.operations
            with clock("steady_state"):
                check = steady_state(
                    lambda: check_steady_state(system, ops, steady, rate, sut.client), say
                )
            if check.inconclusive:
                state.inconclusive = Verdict(STEADY, None, message=check.inconclusive)
                return _finish(state)
            if check.broken:
                say(f"steady state broken: {check.broken}")
                state.aborted = check.broken
                return _finish(state)
        with clock("workload"):
            say(f"workload {experiment.workload.duration / experiment.workload.compression:.0f} s")
            _workload(state)
        with clock("settle"):
            state.settled = sut.domain.settle(system)
            if state.settled:
                say(state.settled)
        with clock("read_state"):
            wanted: dict[str, list[str]] = {}
            for inv in experiment.invariants:
                for name, keys in inv.wants(state.history).items():
                    wanted.setdefault(name, []).extend(keys)
            tag = run_dir.path.name
            state.data = dict(sut.domain.read_state(system, tag, wanted)) if wanted else {}
        return _finish(state)
    raise AssertionError("unreachable")


def steady_rate(steady: SteadyState, capacity: float | None, experiment: Experiment) -> float:
    """Requests/s of the steady state: its own absolute rate, else its share of C, else
    (no C measured) the rate of the workload's first phase."""
    if not steady.relative or capacity:
        return steady.rps(capacity)
    return _first_rate(experiment)


def _first_rate(experiment: Experiment) -> float:
    """Requests/s of the workload's first phase (the steady state's rate without C)."""
    first = experiment.workload.rate[0].rate
    return max(1.0, first.resolve(None)) if not first.relative else 10.0


class _Tee:
    """The history in memory (for the checks) and on disk (for the journal)."""

    def __init__(self, memory: History, disk: HistoryWriter) -> None:
        self.memory, self.disk = memory, disk

    def append(self, op: Op) -> None:
        self.memory.append(op)
        self.disk.append(op)


def _workload(state: _Run) -> None:
    """The load and the fault schedule on one clock (the runner's t0), watched for
    machine stalls."""
    experiment, sut, system = state.experiment, state.sut, state.system
    assert system is not None and sut.operations is not None
    operations = sut.operations
    capacity = state.capacity.rps
    own = state.own_capacity.rps if state.own_capacity else None
    tag = state.run_dir.path.name
    schedule = experiment.schedule(
        operations, capacity, seed=state.options.seed, tag=tag, own_capacity=own
    )
    gateways = list(system.endpoints.gateways)
    duration = schedule.duration
    # attempts in flight at the end complete (within the deadline); no new ones start
    config = LoadConfig(
        targets=len(gateways), drain=5.0, deadline=duration + 5.0, retry_until=duration
    )
    arrivals = schedule.arrivals()  # compiled before the clock starts

    sampling = Sampler(
        targets(sut.metrics, system.endpoints),
        experiment.metrics_every or sut.metrics.every,
        state.run_dir.metrics,
    )

    async def go() -> tuple[LoadResult, ScheduleReport, float]:
        with HistoryWriter(state.run_dir.history) as disk:
            async with sut.client(operations, gateways) as client:
                with run_schedule(system, experiment.fault_schedule(), deferred=True) as nemesis:

                    def start(t0: float) -> None:
                        nemesis.start(t0)
                        sampling.start(t0)

                    runner = Runner(
                        client,
                        _Tee(state.history, disk),
                        config,
                        writes=operations.writes,
                        on_start=start,
                    )
                    async with progress.live(
                        state.history.ops,
                        total=duration,
                        phases=experiment.phases(capacity, own),
                        faults=lambda: _active_faults(nemesis),
                        force=state.options.live,
                    ):
                        load = await runner.run(arrivals)
                return load, nemesis.report, runner.t0

    with StallWatch() as watch, sampling if not sut.metrics.empty else contextlib.nullcontext():
        load, report, t0 = run_generator(go())
        end = time.monotonic()
    state.load = load
    state.report = report
    state.machine = machine_verdict(watch.report(), t0, end)
    if not sut.metrics.empty:
        state.metrics = load_metrics(state.run_dir.metrics)


def _active_faults(nemesis: ScheduleRun) -> list[str]:
    """Faults injected and not yet healed (for the live line)."""
    records = nemesis.report.records
    return [r.scheduled.fault.describe() for r in records if r.inject and r.heal is None]


def _finish(state: _Run) -> RunResult:
    experiment, options = state.experiment, state.options
    profile, seed = options.profile, options.seed
    expectation = experiment.expectation(profile)
    faults = fault_records(state.report) if state.report is not None else ()
    own_rps = state.own_capacity.rps if state.own_capacity else None
    clients = journal.client_records(state.history)
    verdicts: tuple[Verdict, ...]
    if state.inconclusive:
        verdicts = (state.inconclusive,)
        judgement = Judgement("inconclusive", state.inconclusive.message)
    elif state.aborted:
        verdicts = (Verdict(STEADY, False, message=f"aborted before any fault: {state.aborted}"),)
        judgement = Judgement("not_met", f"steady state broken before any fault: {state.aborted}")
    else:
        load = state.load
        final = experiment.final_state(
            state.capacity.rps,
            faults=faults,
            data=state.data,
            settled=state.settled,
            t0=load.wall_start if load else 0.0,
            metrics=state.metrics,
            own_capacity=own_rps,
        )
        ops = list(state.history)
        verdicts = tuple(check_all(experiment.invariants, ops, final))
        gateways = [c.name for c in state.sut.topology.entrypoints]
        blames = blame_all(experiment.invariants, verdicts, ops, final, gateways)
        verdicts = tuple(
            dataclasses.replace(v, blame=blames[v.name].sentence()) if v.name in blames else v
            for v in verdicts
        )
        names = {v.name for v in verdicts}
        if "faults_took_effect" not in names:
            verdicts += (faults_verdict(faults),)
        if load is not None:
            verdicts += (generator_verdict(load),)
        if state.machine is not None:
            verdicts += (state.machine,)
        judgement = expectation.judge(verdicts)
    replay = replay_command(experiment, profile, seed, state.backend, proxy_all=options.proxy_all)
    own = tuple(v for v in verdicts if v.name not in TRUST)
    valid = compose(own or verdicts).valid
    record = RunJournal(
        experiment=ExperimentRef(experiment.name, experiment.description, str(experiment.path)),
        profile=profile,
        seed=seed,
        backend=state.backend,
        versions=versions(state.system, state.sut),
        topology=topology_record(state.system),
        capacity=state.capacity,
        workload=WorkloadRecord(
            duration_s=experiment.workload.duration / experiment.workload.compression,
            compression=experiment.workload.compression,
            phases=experiment.phases(state.capacity.rps, own_rps),
            slo_op=state.sut.slo.op if state.sut.slo else None,
        ),
        load=state.load,
        faults=journal.fault_logs(state.report),
        fault_records=faults,
        verdicts=verdicts,
        valid=valid,
        expected=str(expectation),
        outcome=judgement.outcome,
        why=judgement.why,
        replay=replay,
        aborted=state.aborted,
        rerun_of=options.rerun_of,
        settled=state.settled,
        timings_s=state.timings,
        metrics=metrics_record(state.metrics, state.run_dir.metrics),
        clients=clients,
        own_capacity=state.own_capacity,
        reused=state.reused,
    )
    journal_path = state.run_dir.write_journal(record)
    if options.publish:
        from harness.publish import publish

        publish(state.run_dir.path, options.progress)
    return RunResult(
        experiment=experiment.name,
        profile=profile,
        seed=seed,
        backend=state.backend,
        valid=valid,
        verdicts=verdicts,
        outcome=judgement.outcome,
        why=judgement.why,
        expected=str(expectation),
        capacity=state.capacity,
        load=state.load,
        faults=faults,
        run_dir=state.run_dir.path,
        journal=journal_path,
        replay=replay,
        aborted=state.aborted,
        timings=state.timings,
        rerun_of=options.rerun_of,
        clients=clients,
        own_capacity=state.own_capacity,
        reused=state.reused,
    )
