"""One experiment run, start to finish: ``run(experiment, options) -> RunResult``.

The lifecycle (ARCHITECTURE.md), as nested context managers so teardown always runs:

1. resolve the topology for the profile; start the system (or take a reused one);
2. seed the data from the run's seed;
3. calibrate capacity C (cached per machine and configuration);
4. steady-state check: a short low-rate load must meet the show-code SLO (measured
   twice when the first fails), or the run aborts with its own verdict (a broken
   baseline says nothing about resilience);
5. the workload and the fault schedule on one clock, every CPU watched for stalls of the
   machine itself; the schedule heals everything on exit, also on errors and Ctrl-C;
6. drain (the app's scan spool, the database settling), then the final reads;
7. every invariant checked and composed (false > unknown > true), judged against the
   experiment's expectation for the profile;
8. the journal, history and component logs written under ``runs/``; teardown;
9. a run that missed its expectation while the machine stalled is run once more.

    exp = load_experiment("experiments/morning-surge.yaml")
    result = run(exp, RunOptions(profile="hardened", seed=7))
    print(result.summary())
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib.metadata
import json
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness import progress
from harness.backends import System, get_backend
from harness.calibrate import cached_capacity, calibrate, capacity_key, system_key
from harness.client import FastClient
from harness.experiment import Experiment
from harness.faults import run_schedule
from harness.history import History, HistoryWriter, Op
from harness.invariants import Verdict, check_all, compose, fault_records
from harness.load import LOOP, LoadConfig, LoadResult, Runner, run_generator
from harness.stalls import MACHINE, StallWatch, machine_verdict
from harness.store import RunDir
from harness.topology import Topology, load_topology
from harness.workload import ClientClass, Constant, Good, Mix, Workload, rps

WARMUP_SECONDS = 0.5
STEADY_SECONDS = 1.5
STEADY_FRACTION = 0.2
STEADY_MIX = Mix(show_code=0.9, scan=0.0, lookup=0.1, ingest=0.0)  # reads: no trace in the data
STEADY_P99 = 0.3
STEADY_AVAILABILITY = 0.99
DRAIN_TIMEOUT = 20.0
SCANS_QUERY = "SELECT scan_id, count(*) FROM scans WHERE scan_id LIKE %s GROUP BY scan_id"


@dataclass(frozen=True)
class RunOptions:
    """How to run an experiment: which profile, seed, backend, and where to keep the run."""

    profile: str
    seed: int = 1
    backend: str | None = None  # None: the experiment's (default local)
    runs_dir: Path = Path("runs")
    capacity: float | None = None  # None: calibrate (cached)
    recalibrate: bool = False
    progress: Callable[[str], None] | None = None
    live: bool | None = None  # the live progress line; None: only when stderr is a terminal
    publish: bool = True  # write report.html and summary.md (a search's examples do not)
    rerun_of: str | None = None  # the earlier run this one repeats, and why (journal: why)


@dataclass(frozen=True)
class RunResult:
    """What one run proved, and where its evidence is."""

    experiment: str
    profile: str
    seed: int
    backend: str
    valid: bool | None  # the composed verdict
    verdicts: tuple[Verdict, ...]
    met: bool  # the verdicts match the experiment's expectation for this profile
    why: str
    expected: str
    capacity: float | None
    load: LoadResult | None
    faults: tuple[Any, ...]
    run_dir: Path
    journal: Path
    replay: str
    aborted: str | None = None
    timings: dict[str, float] = field(default_factory=dict)
    rerun_of: str | None = None  # see RunOptions.rerun_of

    def summary(self) -> str:
        head = (
            f"{self.experiment} [{self.profile}] seed={self.seed}: "
            f"{'as expected' if self.met else 'NOT as expected'} ({self.why})"
        )
        lines = [head] + [f"  {v}" for v in self.verdicts]
        if self.rerun_of:
            lines.append(f"  rerun of {self.rerun_of}")
        lines.append(f"  journal: {self.journal}")
        lines.append(f"  replay:  {self.replay}")
        return "\n".join(lines)


def topology_for(experiment: Experiment, profile: str) -> Topology:
    """The experiment's topology with the profile and the experiment's parameters applied."""
    return load_topology(
        experiment.system.topology, profile=profile, params=dict(experiment.system.params)
    )


def replay_command(experiment: Experiment, profile: str, seed: int, backend: str) -> str:
    path = _display_path(experiment.path)
    extra = "" if backend == "local" else f" --backend {backend}"
    return f"harness run {path} --profile {profile} --seed {seed}{extra}"


def _display_path(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.resolve().relative_to(Path.cwd()))
    return str(path)


MACHINE_RERUNS = 1  # how often a run spoilt by a machine stall is run again


def run(experiment: Experiment, options: RunOptions, *, system: System | None = None) -> RunResult:
    """Run ``experiment`` on ``options.profile``; ``system`` reuses an already started one.

    A run that missed its expectation while the machine itself stalled (the ``machine``
    verdict, harness/stalls.py) says nothing about the system: it is run again, at most
    `MACHINE_RERUNS` times, on a system of its own, and the new result names the run it
    repeats (`rerun_of`). Both journals stay.
    """
    result = _run_once(experiment, options, system=system)
    for _ in range(MACHINE_RERUNS):
        stalled = machine_stall(result)
        if result.met or stalled is None or system is not None:
            break
        if options.progress:
            options.progress(f"{stalled}: running it again")
        again = dataclasses.replace(options, rerun_of=f"{_display_path(result.journal)}: {stalled}")
        result = _run_once(experiment, again)
    return result


def machine_stall(result: RunResult) -> str | None:
    """The ``machine`` verdict's message when the machine stalled during the run."""
    for verdict in result.verdicts:
        if verdict.name == MACHINE and verdict.valid is not True:
            return verdict.message
    return None


def _run_once(
    experiment: Experiment, options: RunOptions, *, system: System | None = None
) -> RunResult:
    say = options.progress or (lambda _msg: None)
    backend_name = options.backend or experiment.system.backend
    seed = options.seed
    topology = topology_for(experiment, options.profile)
    run_dir = RunDir(options.runs_dir, experiment.name, options.profile)
    run_dir.save_experiment(experiment.path)
    timings: dict[str, float] = {}
    clock = _Stopwatch(timings)
    with contextlib.ExitStack() as stack:
        reused = system is not None
        with clock("start"):
            if system is None:
                say(f"starting {topology.name} ({options.profile}) on {backend_name}")
                system = stack.enter_context(get_backend(backend_name).start(topology, seed=seed))
            stack.callback(_save_logs, system, run_dir)
        with clock("seed"):
            say("seeding")
            if reused:
                reset_system(system, seed)
            else:
                system.seed(seed)
        with clock("calibrate"):
            capacity = _capacity(experiment, system, options, say)
        common = dict(
            experiment=experiment,
            options=options,
            backend=backend_name,
            system=system,
            run_dir=run_dir,
            capacity=capacity,
            timings=timings,
        )
        with clock("steady_state"):
            broken = steady_state_broken(lambda: _steady_state(system, capacity), say)
        if broken:
            say(f"steady state broken: {broken}")
            return _finish(**common, history=History(), load=None, report=None, aborted=broken)
        history = History()
        with clock("workload"):
            say(f"workload {experiment.workload.duration / experiment.workload.compression:.0f} s")
            load, report, runner_t0, machine = _workload(
                experiment, system, capacity, seed, history, run_dir, live=options.live
            )
        with clock("drain"):
            _drain(system)
        return _finish(
            **common,
            history=history,
            load=load,
            report=dataclasses.replace(report, t0=runner_t0),
            aborted=None,
            machine=machine,
        )
    raise AssertionError("unreachable")


# --- reuse (issue 9) -----------------------------------------------------------------------


def reset_system(system: System, seed: int) -> None:
    """A reused system back to where a fresh one starts: no toxic and every link enabled
    (Toxiproxy reset), every component running and not paused, the data re-seeded (the
    topology's fast ``reset:`` command when it has one). A database loss changes the
    topology itself (a standby promoted): such a system cannot be reset, start a new one.
    """
    import inspect

    system.toxiproxy.reset()
    for name in system.endpoints.components:
        is_running = getattr(system, "is_running", None)
        if is_running is not None and not is_running(name):
            system.restart(name)  # type: ignore[attr-defined]
        elif hasattr(system, "resume"):
            with contextlib.suppress(Exception):
                system.resume(name)
    if "reset" in inspect.signature(system.seed).parameters:
        system.seed(seed, reset=True)  # type: ignore[call-arg]
    else:
        system.seed(seed)


# --- steps ---------------------------------------------------------------------------------


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


def _capacity(
    experiment: Experiment, system: System, options: RunOptions, say: Callable[[str], None]
) -> float:
    """C in req/s: given, or calibrated (cached) on the experiment's `capacity_from` profile,
    which may mean starting that profile once just to measure it."""
    if options.capacity is not None:
        return options.capacity
    source = experiment.system.capacity_from
    if source is None or source == options.profile:
        say(f"capacity C of {options.profile} (calibrated once per machine and configuration)")
        return calibrate(system, refresh=options.recalibrate).rps
    other = topology_for(experiment, source)
    backend = get_backend(options.backend or experiment.system.backend)
    cached = cached_capacity(capacity_key(system_key(other, backend.name)))
    if cached is not None and not options.recalibrate:
        return cached.rps
    say(f"calibrating capacity C on {source} (once per machine and configuration)")
    with backend.start(other, seed=options.seed) as reference:
        reference.seed(options.seed)
        return calibrate(reference, refresh=True).rps


def _good_clients() -> tuple[ClientClass, ...]:
    return (ClientClass("good", 1.0, Good(timeout=3.0, max_retries=0)),)


def steady_state_broken(
    measure: Callable[[], str | None], say: Callable[[str], None]
) -> str | None:
    """Why the steady state does not hold, or None. A broken baseline stays broken; a
    one-off stall (a dropped SYN costs a second) does not: a failed check is measured once
    more, and the run aborts only when both fail."""
    broken = measure()
    if not broken:
        return None
    say(f"steady state broken ({broken}); measuring it once more")
    again = measure()
    return again and f"{broken}; measured again: {again}"


def _steady_state(system: System, capacity: float) -> str | None:
    """Warm up, then run a short low-rate load of reads; the reason the show-code SLO is
    broken, or None when it holds."""
    rate = rps(max(1.0, capacity * STEADY_FRACTION))
    workload = Workload(
        profile=Constant(rate, WARMUP_SECONDS + STEADY_SECONDS),
        mix=STEADY_MIX,
        clients=_good_clients(),
        seed=0,
        tag=f"steady-{time.time_ns()}",
    )
    history = History()

    async def go() -> None:
        async with FastClient(list(system.endpoints.gateways)) as client:
            runner = Runner(client, history, LoadConfig(targets=len(system.endpoints.gateways)))
            await runner.run(workload.schedule().arrivals())

    run_generator(go())
    shows = [op for op in history if op.op == "show_code" and op.intended >= WARMUP_SECONDS]
    if not shows:
        return "no show-code request was sent"
    ok = [op for op in shows if op.outcome == "ok"]
    availability = len(ok) / len(shows)
    latencies = sorted(op.latency for op in ok if op.latency is not None)
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else 0.0
    if availability < STEADY_AVAILABILITY or p99 > STEADY_P99:
        return (
            f"at {STEADY_FRACTION:g} C show-code availability {availability:.3f}"
            f" (needs >= {STEADY_AVAILABILITY}) and p99 {p99 * 1000:.0f} ms"
            f" (needs <= {STEADY_P99 * 1000:.0f} ms)"
        )
    return None


class _Tee:
    """The history in memory (for the checks) and on disk (for the journal)."""

    def __init__(self, memory: History, disk: HistoryWriter) -> None:
        self.memory, self.disk = memory, disk

    def append(self, op: Op) -> None:
        self.memory.append(op)
        self.disk.append(op)


def _workload(
    experiment: Experiment,
    system: System,
    capacity: float,
    seed: int,
    history: History,
    run_dir: RunDir,
    *,
    live: bool | None = None,
) -> tuple[LoadResult, Any, float, Verdict]:
    """The load and the fault schedule on one clock, watched for machine stalls: the load's
    result, the fault report, the runner's start (monotonic) and the ``machine`` verdict."""
    schedule = experiment.schedule(capacity, seed=seed, tag=f"{run_dir.path.name}")
    gateways = list(system.endpoints.gateways)
    duration = schedule.duration
    # attempts in flight at the end complete (within the deadline); no new ones start
    config = LoadConfig(
        targets=len(gateways), drain=5.0, deadline=duration + 5.0, retry_until=duration
    )

    async def go() -> tuple[LoadResult, Any, float]:
        with HistoryWriter(run_dir.history) as disk:
            async with FastClient(gateways) as client:
                runner = Runner(client, _Tee(history, disk), config)
                t0 = time.monotonic()
                with run_schedule(system, experiment.fault_schedule(), t0) as nemesis:
                    async with progress.live(
                        history.ops,
                        total=duration,
                        phases=experiment.phases(capacity),
                        faults=lambda: _active_faults(nemesis),
                        force=live,
                    ):
                        load = await runner.run(schedule.arrivals())
                return load, nemesis.report, runner.t0

    with StallWatch() as watch:
        load, report, t0 = run_generator(go())
        end = time.monotonic()
    return load, report, t0, machine_verdict(watch.report(), t0, end)


def _active_faults(nemesis: Any) -> list[str]:
    """Faults injected and not yet healed (for the live line)."""
    records = nemesis.report.records
    return [r.scheduled.fault.describe() for r in records if r.inject and r.heal is None]


def _drain(system: System) -> None:
    """Wait until every app reports an empty scan spool (reference system), bounded."""
    deadline = time.monotonic() + DRAIN_TIMEOUT
    apps = [c for c in system.endpoints.components.values() if c.probe == "http"]
    while time.monotonic() < deadline:
        backlog = 0
        for app in apps:
            try:
                with urllib.request.urlopen(f"{app.url}/readyz", timeout=1.0) as resp:
                    body = json.loads(resp.read() or b"{}")
            except Exception:
                continue
            if isinstance(body, dict):
                backlog += int(body.get("spool_backlog_bytes", 0) or 0)
        if backlog == 0:
            return
        time.sleep(0.2)


def _scans(system: System, tag: str) -> dict[str, int] | None:
    """This run's scan ids (they start with its tag) -> rows, read through the apps' own
    database link, which follows a failover."""
    import psycopg

    links = [lk for lk in system.endpoints.links.values() if lk.target.startswith("postgres")]
    links = [lk for lk in links if not lk.source.startswith("postgres")] or links
    if not links:
        return None
    host, port = links[0].listen.rsplit(":", 1)
    deadline = time.monotonic() + 10
    while True:
        try:
            with psycopg.connect(
                host=host, port=int(port), user="postgres", dbname="postgres", connect_timeout=3
            ) as conn:
                rows = conn.execute(SCANS_QUERY, (tag + "-%",)).fetchall()
                return {sid: int(n) for sid, n in rows}
        except psycopg.Error:
            if time.monotonic() > deadline:
                return None
            time.sleep(0.2)


def _finish(
    *,
    experiment: Experiment,
    options: RunOptions,
    backend: str,
    system: System,
    run_dir: RunDir,
    capacity: float,
    timings: dict[str, float],
    history: History,
    load: LoadResult | None,
    report: Any,
    aborted: str | None,
    machine: Verdict | None = None,
) -> RunResult:
    profile, seed = options.profile, options.seed
    expectation = experiment.expectation(profile)
    faults = fault_records(report) if report is not None else ()
    if aborted:
        verdicts: tuple[Verdict, ...] = (
            Verdict("steady_state", False, message=f"aborted before any fault: {aborted}"),
        )
        met, why = False, f"steady state broken before any fault: {aborted}"
    else:
        final = experiment.final_state(
            capacity,
            faults=faults,
            scans=_scans(system, run_dir.path.name),
            t0=load.wall_start if load else 0.0,
        )
        verdicts = tuple(check_all(experiment.invariants, list(history), final))
        if load is not None:
            verdicts += (generator_verdict(load),)
        if machine is not None:
            verdicts += (machine,)
        met, why = expectation.judge(verdicts)
    replay = replay_command(experiment, profile, seed, backend)
    valid = compose(verdicts).valid
    journal = {
        "experiment": {
            "name": experiment.name,
            "description": experiment.description,
            "path": str(experiment.path),
            "copy": "experiment.yaml",
        },
        "profile": profile,
        "seed": seed,
        "backend": backend,
        "versions": versions(system),
        "topology": {
            "name": system.topology.name,
            "params": dict(system.topology.params),
            "components": system.endpoints.components,
            "links": system.endpoints.links,
            "gateways": system.endpoints.gateways,
            "toxiproxy": system.endpoints.toxiproxy,
        },
        "capacity_rps": capacity,
        "workload": {
            "duration_s": experiment.workload.duration / experiment.workload.compression,
            "compression": experiment.workload.compression,
            "phases": experiment.phases(capacity),
        },
        "load": load,
        "faults": report.to_json() if report is not None else [],
        "fault_records": faults,
        "verdicts": [
            {
                "name": v.name,
                "outcome": v.outcome,
                "valid": v.valid,
                "message": v.message,
                "figures": v.figures,
                "evidence": v.evidence,
            }
            for v in verdicts
        ],
        "valid": valid,
        "expected": str(expectation),
        "met": met,
        "why": why,
        "aborted": aborted,
        "rerun_of": options.rerun_of,
        "timings_s": timings,
        "history": run_dir.history.name,
        "logs": "logs/",
        "replay": replay,
        "report": "report.html",
        "summary": "summary.md",
    }
    journal_path = run_dir.write_journal(journal)
    if options.publish:
        _publish(run_dir.path, options.progress)
    return RunResult(
        experiment=experiment.name,
        profile=profile,
        seed=seed,
        backend=backend,
        valid=valid,
        verdicts=verdicts,
        met=met,
        why=why,
        expected=str(expectation),
        capacity=capacity,
        load=load,
        faults=faults,
        run_dir=run_dir.path,
        journal=journal_path,
        replay=replay,
        aborted=aborted,
        timings=timings,
        rerun_of=options.rerun_of,
    )


def _publish(path: Path, say: Callable[[str], None] | None) -> None:
    """The run's summary.md and report.html; a report that fails never fails the run."""
    try:
        from harness.report import write_report
        from harness.summary import write_summary

        write_summary(path)
        write_report(path)
    except Exception as exc:
        (say or print)(f"report not written: {type(exc).__name__}: {exc}")


MAX_NEVER_SENT = 0.10  # the system must have faced at least 90% of the load asked of it


def generator_verdict(load: LoadResult) -> Verdict:
    """Whether the load generator kept to its schedule. Arrivals it could not send in time
    lighten the load the system faced; past `MAX_NEVER_SENT` a pass would claim more than
    was tested, so this verdict is then unknown: the run cannot pass, and it says why
    instead of blaming the system."""
    share = load.never_sent / load.arrivals if load.arrivals else 0.0
    figures = {
        "arrivals": load.arrivals,
        "never_sent": load.never_sent,
        "never_sent_share": round(share, 4),
        "lateness_p99_ms": round(load.lateness_p99 * 1000, 2),
    }
    if share <= MAX_NEVER_SENT:
        return Verdict("load_generator", True, figures, "the generator kept to its schedule")
    return Verdict(
        "load_generator",
        None,
        figures,
        f"the load generator fell behind: {load.never_sent} of {load.arrivals} arrivals never"
        f" sent (> {MAX_NEVER_SENT:.0%}); the machine is too busy to offer this load, so the"
        " other verdicts are suspect",
    )


def _save_logs(system: System, run_dir: RunDir) -> None:
    logs = getattr(system, "logs", None)
    if logs is None:
        return
    names = [*system.endpoints.components, "toxiproxy"]
    with contextlib.suppress(Exception):
        run_dir.save_logs({name: logs(name, 200) for name in names})


@functools.cache
def _binary_versions() -> dict[str, str]:
    from harness.tools import find_binary

    out = {}
    for name, args in (
        ("postgres", ["--version"]),
        ("redis-server", ["--version"]),
        ("nginx", ["-v"]),
    ):
        try:
            res = subprocess.run(
                [find_binary(name), *args], capture_output=True, text=True, timeout=5
            )
            out[name] = (res.stdout or res.stderr).strip().splitlines()[0]
        except Exception as exc:  # a missing binary is reported, not fatal
            out[name] = f"unknown ({exc})"
    return out


def versions(system: System) -> dict[str, str]:
    """Versions of the harness and of every real part, for the journal."""
    try:
        harness = importlib.metadata.version("xian-chaos-harness")
    except importlib.metadata.PackageNotFoundError:
        harness = "unknown"
    out = {"harness": harness, "generator loop": LOOP, **_binary_versions()}
    with contextlib.suppress(Exception):
        out["toxiproxy"] = system.toxiproxy.version()
    return out
