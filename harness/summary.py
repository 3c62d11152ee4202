"""Summaries: one Markdown table of runs, fit for a CI job summary or a pull-request comment.

One row per run: experiment, profile, verdict (whether the run met the experiment's
expectation for that profile, and the composed verdict of its invariants), key figures
(one headline number per invariant) and a link to the run's report. Built from journals
only, so it is cheap for a whole suite.

    write_summary(Path("runs/db-loss/latest"))            # runs/db-loss/<run>/summary.md
    text = suite_markdown([row(p) for p in journals], base=Path("runs"))
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import journal
from harness.invariants import Verdict

__all__ = [
    "SUMMARY",
    "Row",
    "append_step_summary",
    "capacity_text",
    "clock_text",
    "headline",
    "row",
    "suite_markdown",
    "write_summary",
]

SUMMARY = "summary.md"
REPORT = "report.html"  # harness.report.REPORT, without importing plotly here


@dataclass(frozen=True)
class Row:
    """One run in a summary table."""

    experiment: str
    profile: str
    seed: int | None
    outcome: str  # met | not_met | inconclusive
    valid: bool | None
    expected: str
    why: str
    figures: tuple[str, ...]
    run_dir: Path
    blames: tuple[str, ...] = ()  # one sentence per failed invariant (`harness.blame`)

    @property
    def met(self) -> bool:
        return self.outcome == "met"

    @property
    def verdict(self) -> str:
        composed = "pass" if self.valid is True else "fail" if self.valid is False else "unknown"
        mark = {"met": "✅ met", "not_met": "❌ not met"}.get(self.outcome, "⚠️ inconclusive")
        return f"{mark} (invariants: {composed}; expected {self.expected})"


def capacity_text(c: journal.CapacityRecord) -> str:
    """C as a run used it: its value, whose it is, where it came from, when and under
    what load it was measured (`C = 1180 req/s (cached, of naive, measured ..., load
    average 0.21 before, other processes used 0.04 cores during)`)."""
    if c.rps is None:
        return "C not needed (every rate is absolute)"
    parts: list[str] = [c.source]
    if c.profile:
        parts.append(f"of {c.profile}")
    if c.measured_at:
        parts.append(f"measured {c.measured_at}")
    if c.load_before is not None:
        parts.append(f"load average {c.load_before:.2f} before")
    if c.load_during is not None:
        parts.append(f"other processes used {c.load_during:.2f} cores during")
    if c.steal:
        parts.append(f"the hypervisor stole {c.steal:.2f} cores")
    if c.capped_from is not None:
        parts.append(f"capped: {c.capped_from:.0f} req/s measured")
    return f"C = {c.rps:.0f} req/s ({', '.join(parts)})"


def clock_text(compression: float) -> str:
    """The one clock of every time a user reads, stated once (report, CLI, pytest)."""
    text = (
        "Times are run seconds since the load started (axes, faults, recoveries, the"
        " invariants' messages)."
    )
    if compression != 1:
        text += (
            f" The experiment file's times are experiment time = run time × {compression:g}"
            f" (its compression): the file's 10s is {10 / compression:g} s here."
        )
    return text


def _num(value: Any, digits: int = 3) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def headline(verdict: Verdict, *, mark: bool = True, named: bool = True) -> str:
    """One short figure that says what an invariant measured, e.g. `goodput 0.42 C`; with
    `mark`, a failing one ends in ✗ and an unknown one in ?. Chosen by the figures the
    verdict carries (its name may be an id such as `after-surge`), prefixed by that id
    when the figure alone would not name it."""
    name = verdict.name
    f = verdict.figures
    suffix = "" if verdict.valid is True or not mark else " ✗" if verdict.valid is False else " ?"
    kind = ""
    if "fraction_of_capacity" in f:
        kind, text = "goodput", f"goodput {_num(f['fraction_of_capacity'])} C"
    elif "recovery_s" in f:
        rec = f["recovery_s"]
        kind = "recovers"
        text = "recovers never" if rec == "never" else f"recovers in {_num(rec)} s"
    elif "p99_ms" in f:
        kind, text = "latency", f"p99 {_num(f['p99_ms'])} ms"
    elif "availability" in f:
        kind, text = "availability", f"availability {_num(f['availability'], 4)}"
    elif "lost" in f and "acknowledged" in f:
        kind, text = "acknowledged_writes", f"lost {f['lost']}"
        for extra in ("duplicated", "mismatched"):
            if f.get(extra):
                text += f", {extra} {f[extra]}"
    elif "stale_reads" in f:
        kind, text = "reads_see_writes", f"stale reads {f['stale_reads']}"
    elif "faults" in f and "took_effect" in f:
        kind, text = "faults_took_effect", f"faults took effect {f['took_effect']}/{f['faults']}"
    elif "never_sent_share" in f:
        kind, text = "load_generator", f"never sent {_num(f['never_sent_share'])}"
    elif "worst_stall_ms" in f:
        kind, text = "machine", f"worst stall {_num(f['worst_stall_ms'])} ms"
    elif f:
        key, value = next(iter(f.items()))
        text = f"{name} {key}={_num(value)}" if named else f"{key}={_num(value)}"
    else:
        text = name
    if named and kind and not name.startswith(kind):
        text = f"{name}: {text}"
    return text + suffix


def row(run_dir: Path | str) -> Row:
    """The summary row of one run directory, from its journal."""
    path = Path(run_dir).resolve()
    j = journal.read(path)
    figures = tuple(headline(v) for v in j.verdicts)
    aborted = getattr(j, "aborted", None)
    if aborted:
        figures = (f"aborted: {aborted}", *figures)
    clients = getattr(j, "clients", ())
    if clients:
        ratios = ", ".join(f"{c.client_class} {c.amplification:.2f}" for c in clients)
        figures = (*figures, f"attempts/intent {ratios}")
    return Row(
        experiment=j.experiment.name,
        profile=j.profile,
        seed=j.seed,
        outcome=j.outcome,
        valid=j.valid,
        expected=j.expected,
        why=j.why,
        figures=figures,
        run_dir=path,
        blames=tuple(v.blame for v in j.verdicts if v.valid is False and v.blame),
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _link(r: Row, base: Path | None) -> str:
    target = r.run_dir / REPORT
    if base is not None:
        try:
            return f"[report]({target.relative_to(base.resolve())})"
        except ValueError:
            pass
    return f"[report]({target})"


def suite_markdown(rows: Iterable[Row], *, base: Path | None = None, title: str = "") -> str:
    """A Markdown table of `rows`; report links relative to `base` (the summary's folder)."""
    items = list(rows)
    met = sum(r.met for r in items)
    head = title or "Chaos experiments"
    lines = [
        f"### {head}: {met}/{len(items)} as expected",
        "",
        "| experiment | profile | verdict | key figures | report |",
        "|---|---|---|---|---|",
    ]
    for r in items:
        lines.append(
            f"| {_cell(r.experiment)} | {_cell(r.profile)} | {_cell(r.verdict)} | "
            f"{_cell(' · '.join(r.figures))} | {_link(r, base)} |"
        )
    for outcome, title_ in (("not_met", "Not as expected"), ("inconclusive", "Inconclusive")):
        some = [r for r in items if r.outcome == outcome]
        if some:
            lines += ["", f"{title_}:"]
            lines += [
                f"- **{_cell(r.experiment)} [{_cell(r.profile)}]** (seed {r.seed}): {_cell(r.why)}"
                for r in some
            ]
    blamed = [r for r in items if r.blames]
    if blamed:
        lines += ["", "Blame (what set off each failed invariant):"]
        for r in blamed:
            lines += [f"- {_cell(r.experiment)} [{_cell(r.profile)}]: {_cell(b)}" for b in r.blames]
    return "\n".join(lines) + "\n"


def write_summary(run_dir: Path | str) -> Path:
    """Write ``<run_dir>/summary.md``: the one-row table of this run."""
    path = Path(run_dir).resolve()
    r = row(path)
    text = suite_markdown([r], base=path, title=f"{r.experiment} [{r.profile}]")
    target = path / SUMMARY
    target.write_text(text, encoding="utf-8")
    return target


def append_step_summary(text: str, environ: Mapping[str, str] | None = None) -> Path | None:
    """Append `text` to GitHub Actions' job summary file when ``GITHUB_STEP_SUMMARY`` is set."""
    target = (environ if environ is not None else os.environ).get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    with open(target, "a", encoding="utf-8") as f:
        f.write(text + "\n")
    return Path(target)


def side_by_side(run_dirs: Iterable[Path | str]) -> str:
    """A plain-text table: one column per run (profile), one line per invariant."""
    journals = [journal.read(Path(p)) for p in run_dirs]
    names: list[str] = []
    for j in journals:
        names += [v.name for v in j.verdicts if v.name not in names]
    header = ["", *(j.profile for j in journals)]
    words = {"met": "as expected", "not_met": "NOT as expected", "inconclusive": "INCONCLUSIVE"}
    lines = [
        ["expected", *(j.expected for j in journals)],
        ["result", *(words[j.outcome] for j in journals)],
    ]
    for name in names:
        cells = [name]
        for j in journals:
            found = [v for v in j.verdicts if v.name == name]
            if not found:
                cells.append("-")
                continue
            v = found[0]
            outcome = "pass" if v.valid is True else "FAIL" if v.valid is False else "?"
            cells.append(f"{outcome:<4}  {headline(v, mark=False, named=False)}")
        lines.append(cells)
    table = [header, *lines]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    out = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)
