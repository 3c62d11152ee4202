"""The ``harness`` command line; the only module that imports click.

    harness run PATH... [--profile P] [--param K=V] [--seed N] [--strict]
    harness search FILE --profile P
    harness up [TOPOLOGY] [--profile P] [--param K=V]
    harness calibrate [TOPOLOGY] [--profile P]
    harness ablate [PATH...] [--profile P] [--switch NAME]
    harness list | report RUN_DIR | demo

Exit codes (`EXIT_CODES`, also in ``harness --help``).
"""

from __future__ import annotations

import contextlib
import json
import random
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import click

from harness.backends import BACKENDS
from harness.errors import ConfigError, HarnessError
from harness.signals import interrupting
from harness.topology import REFERENCE

EXIT_OK, EXIT_NOT_MET, EXIT_INPUT, EXIT_INCONCLUSIVE = 0, 1, 2, 3
EXIT_CODES = f"""Exit codes:

\b
  {EXIT_OK}    every run did what its file expects (with --strict: every invariant held)
  {EXIT_NOT_MET}    a run did not (or the harness itself failed to set up)
  {EXIT_INPUT}    unusable input: a file, key or option (nothing was started)
  {EXIT_INCONCLUSIVE}    none failed, but a run could not judge even when run again (inconclusive:
       the machine was too busy to offer the load, it stalled, a fault did not take
       effect); the line says what to do
  130  interrupted (Ctrl-C, SIGTERM, SIGHUP), after everything was torn down"""
MAX_SEED = 2**31 - 1  # the bound an experiment file's `seed:` has too
SEED = click.IntRange(0, MAX_SEED)


def _parse_params(values: tuple[str, ...]) -> dict[str, object]:
    params: dict[str, object] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ConfigError("--param", key or item, item, "KEY=VALUE, e.g. app_workers=3")
        try:
            params[key] = json.loads(raw)
        except json.JSONDecodeError:
            params[key] = raw
    return params


@contextlib.contextmanager
def _exit_codes(
    interrupted: str = "# interrupted; everything torn down", interrupt_code: int = 130
) -> Iterator[None]:
    """Bad input exits 2, a broken setup 1, Ctrl-C or SIGTERM 130 (after teardown)."""
    try:
        with interrupting():
            yield
    except KeyboardInterrupt:
        click.echo(interrupted, err=True)
        sys.exit(interrupt_code)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_INPUT)
    except HarnessError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(EXIT_NOT_MET)


def _say(msg: str) -> None:
    click.echo(f"# {msg}", err=True)


@click.group(epilog=EXIT_CODES)
@click.version_option(package_name="xian-chaos-harness")
def main() -> None:
    """Chaos-engineering harness: real components, Toxiproxy on the links, open-loop surges."""


@main.command()
@click.argument("topology", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--profile", help="a profile the topology declares")
@click.option("--param", "params", multiple=True, help="override a topology parameter, KEY=VALUE")
@click.option(
    "--seed",
    default=1,
    show_default=True,
    type=SEED,
    help="seed of the data the system is seeded with",
)
@click.option("--no-seed", is_flag=True, help="do not seed the system")
@click.option("--backend", default="local", show_default=True, type=click.Choice(BACKENDS))
def up(
    topology: Path | None,
    profile: str | None,
    params: tuple[str, ...],
    seed: int,
    no_seed: bool,
    backend: str,
) -> None:
    """Start a topology (the reference system by default), print its endpoints, run until Ctrl-C."""
    from harness.backends import get_backend
    from harness.sut import load_sut

    with _exit_codes("# stopped; everything torn down", 0):
        sut = load_sut(topology or REFERENCE, profile=profile, params=_parse_params(params))
        topo = sut.topology
        started = time.monotonic()
        with get_backend(backend).start(topo, seed=seed) as system:
            ready = time.monotonic() - started
            if not no_seed:
                sut.domain.seed(system, seed)
            ep = system.endpoints
            out = [f"{c.name} {url}" for c, url in zip(topo.entrypoints, ep.gateways, strict=True)]
            out.append(f"toxiproxy {ep.toxiproxy}")
            gateways = {c.name for c in topo.entrypoints}
            # with their passwords: the terminal is the user's, who started the system
            out += [f"{c.name} {c.dsn}" for c in ep.components.values() if c.name not in gateways]
            click.echo("\n".join(out))
            click.echo(
                f"# {topo.name} ({topo.profile}) ready in {ready:.2f} s,"
                f" seeded in {time.monotonic() - started - ready:.2f} s; Ctrl-C stops it",
                err=True,
            )
            sys.stdout.flush()
            while True:
                time.sleep(3600)


def _files(paths: Sequence[Path]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.yaml")) if path.is_dir() else [path])
    return files


def _load_experiments(paths: Sequence[Path], params: dict[str, object] | None = None) -> list[Any]:
    from harness.experiment import load_experiment

    return [load_experiment(f, params=params) for f in _files(paths)]


def _exit_code(outcomes: Sequence[str]) -> int:
    if "not_met" in outcomes:
        return EXIT_NOT_MET
    if "inconclusive" in outcomes:
        return EXIT_INCONCLUSIVE
    return EXIT_OK


@main.command("run", epilog=EXIT_CODES)
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--profile", help="a profile the topology declares (default: every profile)")
@click.option("--param", "params", multiple=True, help="override a system parameter, KEY=VALUE")
@click.option("--seed", type=SEED, help="default: the experiment's seed, else random (printed)")
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path(path_type=Path))
@click.option("--backend", type=click.Choice(BACKENDS), help="default: the file's")
@click.option("--capacity", type=float, help="use this C (req/s) instead of calibrating")
@click.option(
    "--own-capacity",
    type=float,
    help="for x_own rates: the running profile's own capacity (req/s) instead of calibrating",
)
@click.option("--recalibrate", is_flag=True, help="measure C again, ignoring the cache")
@click.option(
    "--proxy-all",
    is_flag=True,
    help="every link through Toxiproxy, even where the file says system.proxy: faults",
)
@click.option(
    "--strict",
    is_flag=True,
    help="exit 0 only when every invariant holds (even where the file expects a failure)",
)
def run_command(
    paths: tuple[Path, ...],
    profile: str | None,
    params: tuple[str, ...],
    seed: int | None,
    runs_dir: Path,
    backend: str | None,
    capacity: float | None,
    own_capacity: float | None,
    recalibrate: bool,
    proxy_all: bool,
    strict: bool,
) -> None:
    """Run experiments; exit 0 when every run did what its file expects (see `harness --help`)."""
    from harness.run import RunOptions, run
    from harness.summary import clock_text

    outcomes: list[str] = []
    with _exit_codes():
        experiments = _load_experiments(paths, _parse_params(params) or None)
        for exp in experiments:
            if profile is not None and profile not in exp.profiles:
                raise ConfigError(
                    "--profile", "", profile, f"a profile {exp.name} runs: {list(exp.profiles)}"
                )
        for exp in experiments:
            for prof in [profile] if profile else exp.profiles:
                if exp.expectation(prof).outcome == "skip" and not profile:
                    continue
                run_seed = seed if seed is not None else exp.seed
                if run_seed is None:
                    run_seed = random.SystemRandom().randrange(1, 2**31)
                options = RunOptions(
                    profile=prof,
                    seed=run_seed,
                    backend=backend,
                    runs_dir=runs_dir,
                    capacity=capacity,
                    own_capacity=own_capacity,
                    recalibrate=recalibrate,
                    progress=_say,
                    proxy_all=proxy_all,
                )
                click.echo(f"# {exp.name} [{prof}] seed={run_seed}", err=True)
                result = run(exp, options)
                click.echo(result.summary())
                click.echo(f"  {clock_text(exp.workload.compression)}")
                if strict and result.outcome == "met" and result.valid is not True:
                    outcomes.append("not_met")
                else:
                    outcomes.append(result.outcome)
    sys.exit(_exit_code(outcomes))


@main.command("search", epilog=EXIT_CODES)
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--profile", required=True, help="the profile to search")
@click.option("--seed", default=1, show_default=True, type=SEED)
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path(path_type=Path))
@click.option("--backend", type=click.Choice(BACKENDS), help="default: the file's")
def search_command(
    path: Path, profile: str, seed: int, runs_dir: Path, backend: str | None
) -> None:
    """Search fault schedules within an experiment's search: space; shrink what fails and
    write it as a runnable minimal.yaml. Exit 0 when the result is what the file expects;
    3 when nothing failed but some schedules could not be judged."""
    from harness.experiment import load_experiment
    from harness.search.engine import search

    with _exit_codes():
        exp = load_experiment(path)
        if exp.search is None:
            raise ConfigError(str(path), "search", None, "a search: section (docs/search.md)")
        if profile not in exp.profiles:
            raise ConfigError(
                "--profile", "", profile, f"a profile of {exp.name}: {list(exp.profiles)}"
            )
        result = search(exp, profile, seed=seed, runs_dir=runs_dir, backend=backend, say=click.echo)
        click.echo(result.summary())
    sys.exit(_exit_code([result.outcome]))


@main.command("calibrate")
@click.argument("topology", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--profile", help="a profile the topology declares (default: every profile)")
@click.option("--param", "params", multiple=True, help="override a topology parameter, KEY=VALUE")
@click.option("--backend", default="local", show_default=True, type=click.Choice(BACKENDS))
@click.option("--seed", default=1, show_default=True, type=SEED)
def calibrate_command(
    topology: Path | None, profile: str | None, params: tuple[str, ...], backend: str, seed: int
) -> None:
    """Measure the capacity C of a topology's profiles again, on purpose, and cache it."""
    from harness.backends import get_backend
    from harness.calibrate import calibrate
    from harness.sut import load_sut

    with _exit_codes():
        path = topology or REFERENCE
        first = load_sut(path, params=_parse_params(params))
        for prof in [profile] if profile else list(first.profiles):
            sut = load_sut(path, profile=prof, params=_parse_params(params))
            _say(f"{sut.topology.name} [{prof}]: starting")
            with get_backend(backend).start(sut.topology, seed=seed) as system:
                sut.domain.seed(system, seed)
                cap = calibrate(system, sut, backend=backend, refresh=True, log=_say)
            others = (
                f", other processes used {cap.others:.2f} cores" if cap.others is not None else ""
            )
            steal = f", the hypervisor stole {cap.steal:.2f} cores" if cap.steal else ""
            before = "unknown" if cap.load_before is None else f"{cap.load_before:.2f}"
            click.echo(
                f"{sut.topology.name} [{prof}]: C = {cap.rps:.0f} req/s ({cap.bound}-bound,"
                f" measured {cap.measured_at}, load average before {before}{others}{steal});"
                " cached"
            )


@main.command("list")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def list_command(paths: tuple[Path, ...]) -> None:
    """List experiments with one-line descriptions and the profiles they run on."""
    with _exit_codes():
        experiments = _load_experiments(paths or (Path("experiments"),))
    width = max((len(e.name) for e in experiments), default=0)
    for exp in experiments:
        click.echo(f"{exp.name:<{width}}  {exp.description}  [{', '.join(exp.profiles)}]")


def _run_dir(path: Path) -> Path:
    """A run directory, or an experiment's directory (its ``latest`` run)."""
    if (path / "journal.json").is_file():
        return path
    if (path / "latest" / "journal.json").is_file():
        return (path / "latest").resolve()
    raise ConfigError(
        "RUN_DIR",
        "",
        str(path),
        "a run directory with a journal.json, or an experiment's directory (its latest run)",
        "e.g. runs/db-loss/latest",
    )


@main.command("report")
@click.argument("run_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--single", is_flag=True, help="only this run, not the other profiles beside it")
def report_command(run_dir: Path, single: bool) -> None:
    """Re-render a run's report.html and summary.md from its journal and history."""
    from harness.report import write_report
    from harness.summary import write_summary

    with _exit_codes():
        path = _run_dir(run_dir)
        write_summary(path)
        click.echo(write_report(path, side_by_side=not single))


@main.command("ablate")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("--profile", required=True, help="the profile ablated (all its mechanisms on)")
@click.option("--switch", "switches", multiple=True, help="only this switch (repeatable)")
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path(path_type=Path))
@click.option("--backend", type=click.Choice(BACKENDS), help="default: each file's")
@click.option("--capacity", type=float, help="use this C (req/s) instead of calibrating")
@click.option(
    "--markdown",
    "markdown_path",
    default="docs/ablation.md",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="where the matrix goes (between its markers when the file has them)",
)
@click.option(
    "--json",
    "json_path",
    default="docs/ablation.json",
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
)
def ablate_command(
    paths: tuple[Path, ...],
    profile: str,
    switches: tuple[str, ...],
    seed: int,
    runs_dir: Path,
    backend: str | None,
    capacity: float | None,
    markdown_path: Path,
    json_path: Path,
) -> None:
    """Run experiments (default: the catalogue) on PROFILE once per single-mechanism
    switch its domain declares; print which experiment catches each mechanism off, and
    write the matrix as Markdown and JSON. Exit 0 when every mechanism is caught."""
    from harness.ablate import (
        harness_runner,
        make_plan,
        markdown,
        run_matrix,
        write_json,
        write_markdown,
    )

    with _exit_codes():
        plan = make_plan(list(paths) or [Path("experiments")], profile)
        if switches:
            plan = plan.only(switches)
        if not plan.switches:
            raise ConfigError("--profile", "", profile, "a profile whose domain declares switches")
        runner = harness_runner(
            profile,
            seed=seed,
            runs_dir=runs_dir,
            backend=backend,
            capacity=capacity,
            progress=_say,
        )
        matrix = run_matrix(plan, runner, say=_say)
        click.echo(markdown(matrix))
        click.echo(f"# {write_markdown(matrix, markdown_path)}, {write_json(matrix, json_path)}")
    if matrix.uncaught and len(matrix.undecided) == len(matrix.uncaught):
        sys.exit(EXIT_INCONCLUSIVE)
    sys.exit(EXIT_NOT_MET if matrix.uncaught else EXIT_OK)


DEMO = Path("experiments/xian-story.yaml")


@main.command("demo", epilog=EXIT_CODES)
@click.option("--seed", default=7, show_default=True, type=SEED, help="seed of every run")
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path(path_type=Path))
@click.option(
    "--experiment",
    "experiment_path",
    default=str(DEMO),
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="the story to tell",
)
@click.option("--capacity", type=float, help="C (req/s) for every profile (default: calibrated)")
def demo_command(seed: int, runs_dir: Path, experiment_path: Path, capacity: float | None) -> None:
    """The Xi'an story: a morning surge with a retry storm, then a database loss, on every
    profile of the system; prints them side by side and writes the report."""
    from harness.experiment import load_experiment
    from harness.report import write_report
    from harness.run import RunOptions, run
    from harness.summary import capacity_text, clock_text, side_by_side

    with _exit_codes():
        exp = load_experiment(experiment_path)
        results = []
        for profile in exp.profiles:
            click.echo(f"# {exp.name} [{profile}] seed={seed}", err=True)
            options = RunOptions(
                profile=profile, seed=seed, runs_dir=runs_dir, capacity=capacity, progress=_say
            )
            results.append(run(exp, options))
            if exp.system.capacity_from is None:  # the same offered load on all profiles
                capacity = capacity or results[-1].capacity.rps
    report = None
    for result in results:  # each report shows every profile, now that all have run
        report = write_report(result.run_dir)
    click.echo(side_by_side([r.run_dir for r in results]))
    click.echo("")
    for result in results:
        click.echo(result.headline())
        click.echo(f"  {capacity_text(result.capacity)}")
        click.echo(f"  replay {result.profile}: {result.replay}")
    click.echo(clock_text(exp.workload.compression))
    click.echo(f"report: {report}")
    sys.exit(_exit_code([r.outcome for r in results]))


if __name__ == "__main__":
    main()
