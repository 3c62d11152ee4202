"""Ablation: is every resilience mechanism needed? Run experiments on one profile once per
single-mechanism switch its domain declares, and see which experiment catches each.

A topology's domain lists switches (`Domain.switches(params)`: `cache` off, one gateway
instead of two, ...). For each switch and each chosen experiment the experiment runs on
the profile with that one mechanism turned off (the switch's parameters, as
`--param` would give them). A cell is:

- `caught`: an invariant of the experiment failed (the cell names it and its figure);
- `held`: every invariant held: this experiment does not need the mechanism;
- `inconclusive`: the run could not judge (the generator fell behind, the machine
  stalled, a fault did not take effect);
- `n/a`: the experiment cannot run with the switch (it names a component the switch
  removes), or does not run on the profile.

Only experiments whose expectation on the profile is `pass` are used: a cell's failure
then means the mechanism was needed. A mechanism no experiment catches is a row with no
`caught` cell: either the mechanism is not needed, or the catalogue does not test what
it is for. The matrix is written as Markdown (with the date and the commit it ran at)
and as JSON::

    plan = make_plan([Path("experiments")], "hardened")
    matrix = run_matrix(plan, harness_runner("hardened"))
    write_markdown(matrix, Path("docs/ablation.md"))
"""

from __future__ import annotations

import datetime
import json
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol

from harness.domain import Switch
from harness.errors import ConfigError
from harness.experiment import TRUST, load_experiment
from harness.invariants import Verdict
from harness.run import RunOptions, run
from harness.run.capacity import intact_capacities
from harness.summary import headline

__all__ = [
    "Cell",
    "CellRun",
    "CellRunner",
    "Entry",
    "Matrix",
    "Plan",
    "harness_runner",
    "make_plan",
    "markdown",
    "run_matrix",
    "to_json",
    "write_json",
    "write_markdown",
]

CellOutcome = Literal["caught", "held", "inconclusive", "n/a"]
MARK_START, MARK_END = "<!-- matrix -->", "<!-- end matrix -->"


@dataclass(frozen=True)
class Entry:
    """One experiment of the plan and the switches its system declares on the profile."""

    name: str
    path: Path
    switches: tuple[Switch, ...]
    skip: str = ""  # why it is not used (its expectation on the profile is not `pass`)


@dataclass(frozen=True)
class Plan:
    """Which experiments run, on which profile, with which switches (by name, in order)."""

    profile: str
    entries: tuple[Entry, ...]
    switches: tuple[Switch, ...]

    def only(self, names: Sequence[str]) -> Plan:
        """The plan with just the named switches (a `ConfigError` for an unknown one)."""
        known = [s.name for s in self.switches]
        for n in names:
            if n not in known:
                raise ConfigError("--switch", "", n, f"a switch of the domain: {known}")
        return replace(self, switches=tuple(s for s in self.switches if s.name in names))


@dataclass(frozen=True)
class CellRun:
    """What a runner reports of one run: its outcome, verdicts and where it is kept."""

    outcome: str  # met | not_met | inconclusive
    verdicts: tuple[Verdict, ...]
    run_dir: str = ""
    why: str = ""


@dataclass(frozen=True)
class Cell:
    """One mechanism switched off under one experiment: what happened, and what said so."""

    switch: str
    experiment: str
    outcome: CellOutcome
    caught_by: tuple[str, ...] = ()  # the invariants that failed
    figure: str = ""  # the first failing invariant's headline figure
    why: str = ""
    run_dir: str = ""


@dataclass(frozen=True)
class Matrix:
    """Every cell of one ablation, with when and at what commit it ran."""

    profile: str
    switches: tuple[Switch, ...]
    experiments: tuple[str, ...]
    cells: tuple[Cell, ...]
    date: str = ""
    commit: str = ""
    skipped: Mapping[str, str] = field(default_factory=dict)

    def cell(self, switch: str, experiment: str) -> Cell | None:
        for c in self.cells:
            if c.switch == switch and c.experiment == experiment:
                return c
        return None

    def caught(self, switch: str) -> tuple[Cell, ...]:
        return tuple(c for c in self.cells if c.switch == switch and c.outcome == "caught")

    @property
    def uncaught(self) -> tuple[str, ...]:
        """The switches no experiment caught (empty rows)."""
        return tuple(s.name for s in self.switches if not self.caught(s.name))

    @property
    def undecided(self) -> tuple[str, ...]:
        """Uncaught switches with an inconclusive cell (a rerun may still catch them)."""
        return tuple(
            n
            for n in self.uncaught
            if any(c.switch == n and c.outcome == "inconclusive" for c in self.cells)
        )


class CellRunner(Protocol):
    """Runs one experiment file on a profile with extra system parameters."""

    def __call__(self, path: Path, params: Mapping[str, Any], switch: str) -> CellRun: ...


# --------------------------------------------------------------------------- planning


def _files(paths: Sequence[Path]) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        out.extend(sorted(p.glob("*.yaml")) if p.is_dir() else [p])
    return out


def make_plan(paths: Sequence[Path], profile: str) -> Plan:
    """Load the experiments and the switches their system declares on `profile`.

    An experiment is used when it runs on `profile`, has no fault search, and its
    expectation there is `pass`; the others are listed with the reason they are not."""
    entries: list[Entry] = []
    switches: dict[str, Switch] = {}
    for path in _files(paths):
        exp = load_experiment(path)
        skip = ""
        if profile not in exp.profiles:
            skip = f"does not run on {profile}"
        elif exp.search is not None:
            skip = "a fault search"
        elif exp.expectation(profile).outcome != "pass":
            skip = f"expected on {profile}: {exp.expectation(profile)}"
        sw: tuple[Switch, ...] = ()
        if not skip:
            sut = exp.sut(profile)
            sw = tuple(sut.domain.switches(dict(sut.topology.params)))
            for s in sw:
                switches.setdefault(s.name, s)
        entries.append(Entry(exp.name, path, sw, skip))
    return Plan(profile, tuple(entries), tuple(switches.values()))


# --------------------------------------------------------------------------- running


def _cell(switch: str, experiment: str, run: CellRun) -> Cell:
    if run.outcome == "inconclusive":
        return Cell(switch, experiment, "inconclusive", why=run.why, run_dir=run.run_dir)
    failed = [v for v in run.verdicts if v.name not in TRUST and v.valid is False]
    if failed:
        return Cell(
            switch,
            experiment,
            "caught",
            tuple(v.name for v in failed),
            headline(failed[0], mark=False),
            run.why,
            run.run_dir,
        )
    unknown = [v for v in run.verdicts if v.valid is None]
    if unknown:
        return Cell(switch, experiment, "inconclusive", why=run.why, run_dir=run.run_dir)
    return Cell(switch, experiment, "held", why=run.why, run_dir=run.run_dir)


def run_matrix(
    plan: Plan,
    runner: CellRunner,
    *,
    say: Callable[[str], None] = lambda _m: None,
    date: str | None = None,
    commit: str | None = None,
) -> Matrix:
    """Run every used experiment once per switch of the plan."""
    used = [e for e in plan.entries if not e.skip]
    cells: list[Cell] = []
    for switch in plan.switches:
        for entry in used:
            mine = next((s for s in entry.switches if s.name == switch.name), None)
            if mine is None:
                cells.append(Cell(switch.name, entry.name, "n/a", why="switch not declared"))
                continue
            try:
                run = runner(entry.path, dict(mine.params), switch.name)
            except ConfigError as exc:
                cells.append(Cell(switch.name, entry.name, "n/a", why=str(exc)))
                continue
            cell = _cell(switch.name, entry.name, run)
            cells.append(cell)
            say(f"{switch.name} x {entry.name}: {cell.outcome} {cell.figure}".rstrip())
    return Matrix(
        profile=plan.profile,
        switches=plan.switches,
        experiments=tuple(e.name for e in used),
        cells=tuple(cells),
        date=date if date is not None else _now(),
        commit=commit if commit is not None else _commit(),
        skipped={e.name: e.skip for e in plan.entries if e.skip},
    )


def harness_runner(
    profile: str,
    *,
    seed: int = 1,
    runs_dir: Path = Path("runs"),
    backend: str | None = None,
    capacity: float | None = None,
    progress: Callable[[str], None] | None = None,
) -> CellRunner:
    """A runner that runs each cell as `harness run` does, kept under
    `runs_dir/ablation-<switch>/`, at the load the intact experiment meets: its C and the
    profile's own capacity are those of the experiment as written (cached, else calibrated
    once), never those of the weakened variant."""
    say = progress or (lambda _m: None)
    intact: dict[Path, tuple[float | None, float | None]] = {}

    def runner(path: Path, params: Mapping[str, Any], switch: str) -> CellRun:
        if path not in intact:
            plain = load_experiment(path)
            where = backend or plain.system.backend
            intact[path] = intact_capacities(
                plain, profile, backend=where, seed=seed, say=say, given=capacity
            )
        base, own = intact[path]
        exp = load_experiment(path, params=params)
        options = RunOptions(
            profile=profile,
            seed=seed,
            backend=backend,
            runs_dir=runs_dir / f"ablation-{switch}",
            capacity=base,
            own_capacity=own,
            progress=progress,
        )
        result = run(exp, options)
        return CellRun(result.outcome, result.verdicts, str(result.run_dir), result.why)

    return runner


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() or "unknown"


# --------------------------------------------------------------------------- writing


def _text(cell: Cell | None) -> str:
    if cell is None:
        return ""
    if cell.outcome == "caught":
        return f"**{cell.figure}**".replace("|", "\\|")
    return {"held": "·", "inconclusive": "?", "n/a": "n/a"}[cell.outcome]


def markdown(matrix: Matrix) -> str:
    """The matrix as a Markdown table: a row per mechanism, a column per experiment; a
    caught cell shows the failing invariant and its figure, `·` held, `?` inconclusive."""
    head = ["mechanism off", *matrix.experiments, "caught by"]
    lines = [
        f"Profile `{matrix.profile}`, {matrix.date}, commit `{matrix.commit}`: "
        f"{len(matrix.switches) - len(matrix.uncaught)} of {len(matrix.switches)} mechanisms "
        "caught by at least one experiment.",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for s in matrix.switches:
        caught = matrix.caught(s.name)
        row = [f"`{s.name}` ({s.description})" if s.description else f"`{s.name}`"]
        row += [_text(matrix.cell(s.name, e)) for e in matrix.experiments]
        row.append(str(len(caught)) if caught else "**none**")
        lines.append("| " + " | ".join(row) + " |")
    if matrix.uncaught:
        lines += ["", "Caught by no experiment: " + ", ".join(f"`{n}`" for n in matrix.uncaught)]
    if matrix.skipped:
        lines += ["", "Not used: " + "; ".join(f"`{n}` ({w})" for n, w in matrix.skipped.items())]
    return "\n".join(lines) + "\n"


def write_markdown(matrix: Matrix, path: Path) -> Path:
    """Write the matrix into `path`: between its `<!-- matrix -->` and `<!-- end matrix -->`
    markers when the file has them (the prose around stays), else as the whole file."""
    table = markdown(matrix)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    if MARK_START in text and MARK_END in text:
        before, rest = text.split(MARK_START, 1)
        after = rest.split(MARK_END, 1)[1]
        text = f"{before}{MARK_START}\n{table}{MARK_END}{after}"
    else:
        text = f"# Ablation matrix\n\n{MARK_START}\n{table}{MARK_END}\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def to_json(matrix: Matrix) -> dict[str, Any]:
    """The matrix as plain JSON data."""
    return {
        "profile": matrix.profile,
        "date": matrix.date,
        "commit": matrix.commit,
        "switches": [
            {"name": s.name, "description": s.description, "params": dict(s.params)}
            for s in matrix.switches
        ],
        "experiments": list(matrix.experiments),
        "cells": [
            {
                "switch": c.switch,
                "experiment": c.experiment,
                "outcome": c.outcome,
                "caught_by": list(c.caught_by),
                "figure": c.figure,
                "why": c.why,
                "run_dir": c.run_dir,
            }
            for c in matrix.cells
        ],
        "uncaught": list(matrix.uncaught),
        "skipped": dict(matrix.skipped),
    }


def write_json(matrix: Matrix, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(to_json(matrix), indent=1) + "\n", encoding="utf-8")
    return path
