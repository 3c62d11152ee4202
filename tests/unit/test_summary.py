"""Markdown summaries per run and per suite, and the pytest hook that writes them."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
from report_fakes import make_run

from harness import journal
from harness.invariants import Verdict
from harness.summary import append_step_summary, headline, row, side_by_side, suite_markdown
from harness.summary import write_summary as write_run_summary


@pytest.mark.parametrize(
    ("name", "valid", "figures", "expected"),
    [
        ("goodput", False, {"fraction_of_capacity": 0.4213}, "goodput 0.421 C ✗"),
        ("recovers", False, {"recovery_s": "never"}, "recovers never ✗"),
        ("recovers", True, {"recovery_s": 2.5}, "recovers in 2.5 s"),
        ("steady-latency", True, {"count": 3, "p99_ms": 12.0}, "steady-latency: p99 12 ms"),
        ("after", None, {"availability": 0.99512}, "after: availability 0.9951 ?"),
        (
            "no_lost_scans",
            False,
            {"acknowledged": 9, "lost": 0, "duplicated": 2},
            "no_lost_scans: lost 0, duplicated 2 ✗",
        ),
        ("fresh", True, {"stale_reads": 0}, "fresh: stale reads 0"),
        ("faults_took_effect", True, {"faults": 2, "took_effect": 2}, "faults took effect 2/2"),
        ("custom", True, {"x": 1.23456}, "custom x=1.23"),
        ("custom", None, {}, "custom ?"),
    ],
)
def test_headline(name: str, valid: bool | None, figures: dict, expected: str) -> None:
    assert headline(Verdict(name, valid, figures)) == expected


def test_row_and_suite_table(tmp_path: Path) -> None:
    naive = make_run(tmp_path, "naive")
    hardened = make_run(tmp_path, "hardened", stamp="20260101-070100-000")
    rows = [row(naive), row(hardened)]
    assert rows[0].verdict == "✅ met (invariants: fail; expected fail ['goodput', 'recovers'])"
    text = suite_markdown(rows, base=tmp_path)
    lines = text.splitlines()
    assert lines[0] == "### Chaos experiments: 2/2 as expected"
    assert lines[2] == "| experiment | profile | verdict | key figures | report |"
    assert len([x for x in lines if x.startswith("| story |")]) == 2
    assert "[report](story/20260101-070000-000-naive/report.html)" in text
    assert "goodput 0.31 C ✗ · recovers never ✗ · no_lost_scans: lost 3 ✗" in text
    assert "Not as expected" not in text


def _edit(path: Path, **changes: object) -> None:
    record = journal.read(path)
    journal.write(path, dataclasses.replace(record, **changes))  # type: ignore[arg-type]


def test_not_met_is_listed_with_why_and_pipes_escaped(tmp_path: Path) -> None:
    path = make_run(tmp_path, "naive")
    _edit(path, outcome="not_met", why="expected a | b")
    text = suite_markdown([row(path)])
    assert "0/1 as expected" in text
    assert "❌ not met" in text
    assert "- **story [naive]** (seed 1): expected a \\| b" in text


def test_aborted_run_says_so(tmp_path: Path) -> None:
    path = make_run(tmp_path, "naive")
    _edit(path, aborted="slow")
    assert row(path).figures[0] == "aborted: slow"


def test_inconclusive_runs_are_listed_apart(tmp_path: Path) -> None:
    path = make_run(tmp_path, "naive", outcome="inconclusive")
    text = suite_markdown([row(path)])
    assert "⚠️ inconclusive" in text and "Inconclusive:" in text and "Not as expected" not in text


def test_write_run_summary_links_own_report(tmp_path: Path) -> None:
    path = write_run_summary(make_run(tmp_path, "hardened"))
    assert path.name == "summary.md"
    assert "| story | hardened | ✅ met" in path.read_text()
    assert "[report](report.html)" in path.read_text()


def test_append_step_summary(tmp_path: Path) -> None:
    assert append_step_summary("x", environ={}) is None
    target = tmp_path / "step.md"
    target.write_text("before\n")
    append_step_summary("table", environ={"GITHUB_STEP_SUMMARY": str(target)})
    assert target.read_text() == "before\ntable\n"


def test_side_by_side(tmp_path: Path) -> None:
    naive = make_run(tmp_path, "naive")
    hardened = make_run(tmp_path, "hardened", stamp="20260101-070100-000")
    lines = side_by_side([naive, hardened]).splitlines()
    assert lines[0].split() == ["naive", "hardened"]
    goodput = next(x for x in lines if x.startswith("goodput"))
    assert goodput.split() == [
        "goodput",
        "FAIL",
        "goodput",
        "0.31",
        "C",
        "pass",
        "goodput",
        "0.98",
        "C",
    ]
    assert any(x.startswith("faults_took_effect") and " ? " in x for x in lines)


def test_pytest_writes_suite_summary(tmp_path: Path) -> None:
    """The plugin's session hook, in a pytest of its own: <runs-dir>/summary.md from the
    journals the items recorded, appended to GITHUB_STEP_SUMMARY."""
    runs = tmp_path / "runs"
    naive = make_run(runs, "naive")
    hardened = make_run(runs, "hardened", stamp="20260101-070100-000")
    step = tmp_path / "step.md"
    (tmp_path / "test_fake.py").write_text(
        f"""
def test_naive(record_property):
    record_property("journal", {str(naive / "journal.json")!r})

def test_hardened(record_property):
    record_property("journal", {str(hardened / "journal.json")!r})

def test_other():
    pass
"""
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = {**os.environ, "GITHUB_STEP_SUMMARY": str(step)}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--harness-runs-dir",
            str(runs),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"harness: suite summary in {runs / 'summary.md'}" in done.stdout
    text = (runs / "summary.md").read_text()
    assert "2/2 as expected" in text
    assert step.read_text().strip() == text.strip()
