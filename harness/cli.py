"""The ``harness`` command line; the only module that imports click.

harness up [TOPOLOGY] [--profile hardened] [--param app_workers=3] [--seed 1]
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import click

from harness.errors import ConfigError, HarnessError
from harness.signals import terminate_as_interrupt
from harness.topology import REFERENCE, load_topology


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
    """Bad input exits 2, a broken setup 1, Ctrl-C 130 (after teardown), with one line each."""
    try:
        yield
    except KeyboardInterrupt:
        click.echo(interrupted, err=True)
        sys.exit(interrupt_code)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except HarnessError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)


@click.group()
@click.version_option(package_name="xian-chaos-harness")
def main() -> None:
    """Chaos-engineering harness: real components, Toxiproxy on every link, open-loop surges."""


@main.command()
@click.argument("topology", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--profile", help="a profile declared in the topology (reference: naive, hardened)")
@click.option("--param", "params", multiple=True, help="override a topology parameter, KEY=VALUE")
@click.option(
    "--seed", default=1, show_default=True, help="seed for the data the system is seeded with"
)
@click.option("--no-seed", is_flag=True, help="do not run the topology's seed command")
@click.option(
    "--backend", default="local", show_default=True, type=click.Choice(["local", "containers"])
)
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

    terminate_as_interrupt()
    with _exit_codes("# stopped; everything torn down", 0):
        topo = load_topology(topology or REFERENCE, profile=profile, params=_parse_params(params))
        started = time.monotonic()
        with get_backend(backend).start(topo, seed=seed) as system:
            ready = time.monotonic() - started
            if not no_seed:
                system.seed(seed)
            ep = system.endpoints
            lines = [(c, url) for c, url in zip(topo.entrypoints, ep.gateways, strict=True)]
            out = [f"{c.name} {url}" for c, url in lines]
            out.append(f"toxiproxy {ep.toxiproxy}")
            ordered = sorted(
                ep.components.values(),
                key=lambda c: {"postgres": 0, "redis": 1}.get(c.probe, 2),
            )
            gateways = {c.name for c in topo.entrypoints}
            out += [f"{c.name} {c.url}" for c in ordered if c.name not in gateways]
            click.echo("\n".join(out))
            click.echo(
                f"# {topo.name} ({topo.profile or 'default'}) ready in {ready:.2f} s,"
                f" seeded in {time.monotonic() - started - ready:.2f} s; Ctrl-C stops it",
                err=True,
            )
            sys.stdout.flush()
            while True:
                time.sleep(3600)


def _load_experiments(paths: tuple[Path, ...]) -> list:
    from harness.experiment import load_experiment

    files: list[Path] = []
    for path in paths:
        files.extend(sorted(path.glob("*.yaml")) if path.is_dir() else [path])
    return [load_experiment(f) for f in files]


@main.command("run")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--profile", type=click.Choice(["naive", "hardened"]), help="default: every profile")
@click.option("--seed", type=int, help="default: the experiment's seed, else random (printed)")
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path(path_type=Path))
@click.option("--backend", type=click.Choice(["local", "containers"]), help="default: the file's")
@click.option("--capacity", type=float, help="use this C (req/s) instead of calibrating")
@click.option(
    "--expectations",
    is_flag=True,
    help="exit 0 when every run met its experiment's expectation (naive may be expected to fail)",
)
def run_command(
    paths: tuple[Path, ...],
    profile: str | None,
    seed: int | None,
    runs_dir: Path,
    backend: str | None,
    capacity: float | None,
    expectations: bool,
) -> None:
    """Run experiments; exit 0 when every invariant holds, 1 when one fails, 2 on bad input."""
    import random

    from harness.run import RunOptions, run

    terminate_as_interrupt()
    failed = False
    with _exit_codes():
        experiments = _load_experiments(paths)
        for exp in experiments:
            for prof in [profile] if profile else exp.profiles:
                run_seed = seed if seed is not None else exp.seed
                if run_seed is None:
                    run_seed = random.SystemRandom().randrange(1, 2**31)
                options = RunOptions(
                    profile=prof,
                    seed=run_seed,
                    backend=backend,
                    runs_dir=runs_dir,
                    capacity=capacity,
                    progress=lambda msg: click.echo(f"# {msg}", err=True),
                )
                click.echo(f"# {exp.name} [{prof}] seed={run_seed}", err=True)
                result = run(exp, options)
                click.echo(result.summary())
                failed |= (not result.met) if expectations else result.valid is not True
    sys.exit(1 if failed else 0)


@main.command("search")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--profile", required=True, help="the profile to search (e.g. hardened)")
@click.option("--seed", default=1, show_default=True, type=int)
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path(path_type=Path))
def search_command(path: Path, profile: str, seed: int, runs_dir: Path) -> None:
    """Search fault schedules within an experiment's search: space; shrink what fails and
    write it as a runnable minimal.yaml. Exit 0 when the result is what the file expects."""
    from harness.experiment import load_experiment
    from harness.search import search

    terminate_as_interrupt()
    with _exit_codes():
        exp = load_experiment(path)
        result = search(exp, profile, seed=seed, runs_dir=runs_dir, say=click.echo)
        click.echo(result.summary())
    sys.exit(0 if result.met else 1)


@main.command("list")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def list_command(paths: tuple[Path, ...]) -> None:
    """List experiments with one-line descriptions."""
    with _exit_codes():
        experiments = _load_experiments(paths or (Path("experiments"),))
    width = max((len(e.name) for e in experiments), default=0)
    for exp in experiments:
        click.echo(f"{exp.name:<{width}}  {exp.description}")


# --- reports and the demo (issue 7) ---------------------------------------------------------


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


DEMO = Path("experiments/xian-story.yaml")


@main.command("demo")
@click.option("--seed", default=7, show_default=True, type=int, help="seed of both runs")
@click.option("--runs-dir", default="runs", show_default=True, type=click.Path(path_type=Path))
@click.option(
    "--experiment",
    "experiment_path",
    default=str(DEMO),
    show_default=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="the story to tell",
)
@click.option(
    "--capacity",
    type=float,
    help="C (req/s) for both profiles (default: calibrated on capacity_from)",
)
def demo_command(seed: int, runs_dir: Path, experiment_path: Path, capacity: float | None) -> None:
    """The Xi'an story: a morning surge with a retry storm, then a database loss, on the naive
    and the hardened profile; prints them side by side and writes the report."""
    from harness.experiment import load_experiment
    from harness.report import write_report
    from harness.run import RunOptions, run
    from harness.summary import side_by_side

    terminate_as_interrupt()
    with _exit_codes():
        exp = load_experiment(experiment_path)
        results = []
        for profile in ("naive", "hardened"):
            click.echo(f"# {exp.name} [{profile}] seed={seed}", err=True)
            options = RunOptions(
                profile=profile,
                seed=seed,
                runs_dir=runs_dir,
                capacity=capacity,
                progress=lambda msg: click.echo(f"# {msg}", err=True),
            )
            results.append(run(exp, options))
            capacity = capacity or results[-1].capacity  # the same offered load on both
    for result in results:  # each report shows both profiles, now that both have run
        report = write_report(result.run_dir)
    click.echo(side_by_side([r.run_dir for r in results]))
    click.echo("")
    for result in results:
        click.echo(f"replay {result.profile}: {result.replay}")
    click.echo(f"report: {report}")
    sys.exit(0 if all(r.met for r in results) else 1)


if __name__ == "__main__":
    main()
