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

from harness.store import read_journal

__all__ = [
    "SUMMARY",
    "Row",
    "append_step_summary",
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
    met: bool
    valid: bool | None
    expected: str
    why: str
    figures: tuple[str, ...]
    run_dir: Path

    @property
    def verdict(self) -> str:
        composed = "pass" if self.valid is True else "fail" if self.valid is False else "unknown"
        mark = "✅ met" if self.met else "❌ not met"
        return f"{mark} (invariants: {composed}; expected {self.expected})"


def _num(value: Any, digits: int = 3) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def headline(verdict: Mapping[str, Any], *, mark: bool = True, named: bool = True) -> str:
    """One short figure that says what an invariant measured, e.g. `goodput 0.42 C`; with
    `mark`, a failing one ends in ✗ and an unknown one in ?. Chosen by the figures the
    verdict carries (its name may be an id such as `after-surge`), prefixed by that id
    when the figure alone would not name it."""
    name = str(verdict.get("name", "?"))
    f = verdict.get("figures") or {}
    valid = verdict.get("valid")
    suffix = "" if valid is True or not mark else " ✗" if valid is False else " ?"
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
    elif "lost" in f:
        kind, text = "no_lost_scans", f"lost scans {f['lost']}"
        if f.get("duplicated"):
            text += f", duplicated {f['duplicated']}"
    elif "false_greens" in f:
        kind, text = "no_false_green", f"false greens {f['false_greens']}"
    elif "faults" in f and "took_effect" in f:
        kind, text = "faults_took_effect", f"faults took effect {f['took_effect']}/{f['faults']}"
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
    j = read_journal(path)
    verdicts = j.get("verdicts") or ()
    figures = tuple(headline(v) for v in verdicts)
    if j.get("aborted"):
        figures = (f"aborted: {j['aborted']}", *figures)
    exp = j.get("experiment") or {}
    return Row(
        experiment=str(exp.get("name", "?")),
        profile=str(j.get("profile", "?")),
        seed=j.get("seed"),
        met=bool(j.get("met")),
        valid=j.get("valid"),
        expected=str(j.get("expected", "")),
        why=str(j.get("why", "")),
        figures=figures,
        run_dir=path,
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
    not_met = [r for r in items if not r.met]
    if not_met:
        lines += ["", "Not as expected:"]
        lines += [
            f"- **{_cell(r.experiment)} [{_cell(r.profile)}]** (seed {r.seed}): {_cell(r.why)}"
            for r in not_met
        ]
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
    journals = [read_journal(Path(p)) for p in run_dirs]
    names: list[str] = []
    for j in journals:
        names += [v["name"] for v in j.get("verdicts") or () if v["name"] not in names]
    header = ["", *(str(j.get("profile", "?")) for j in journals)]
    lines = [
        ["expected", *(str(j.get("expected", "")) for j in journals)],
        ["result", *("as expected" if j.get("met") else "NOT as expected" for j in journals)],
    ]
    for name in names:
        cells = [name]
        for j in journals:
            found = [v for v in j.get("verdicts") or () if v["name"] == name]
            if not found:
                cells.append("-")
                continue
            v = found[0]
            outcome = (
                "pass" if v.get("valid") is True else "FAIL" if v.get("valid") is False else "?"
            )
            cells.append(f"{outcome:<4}  {headline(v, mark=False, named=False)}")
        lines.append(cells)
    table = [header, *lines]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    out = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(out)
