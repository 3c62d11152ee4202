"""The journal as a boundary: records round-trip through JSON unchanged, another version is
refused with a clear error, and docs/journal.md documents exactly the dataclasses' fields."""

from __future__ import annotations

import dataclasses
import json
import re
import types
import typing
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

import pytest

from harness import journal
from harness.invariants import Verdict
from harness.journal import (
    CapacityRecord,
    ExperimentRef,
    JournalError,
    RunJournal,
    SearchJournal,
    SearchRecord,
    WorkloadRecord,
)

DOC = Path(__file__).parents[2] / "docs" / "journal.md"
OWN = {
    journal.ExperimentRef,
    journal.TopologyRecord,
    journal.CapacityRecord,
    journal.WorkloadRecord,
    journal.SearchRecord,
    journal.MetricsRecord,
}


def _record_type(tp: Any) -> Any:
    """The journal record inside `tp` (`X | None`), if any."""
    if dataclasses.is_dataclass(tp):
        return tp
    if get_origin(tp) in (typing.Union, types.UnionType):
        for arg in get_args(tp):
            if arg in OWN:
                return arg
    return None


def fields(cls: Any, prefix: str = "") -> list[str]:
    """Dotted field names of a journal record, descending into the journal's own records."""
    out = []
    hints = get_type_hints(cls)
    for f in dataclasses.fields(cls):
        name = prefix + f.name
        inner = _record_type(hints[f.name])
        if inner in OWN:
            out.extend(fields(inner, name + "."))
        else:
            out.append(name)
    return out


def documented(section: str) -> list[str]:
    text = DOC.read_text()
    part = text.split(f"<!-- {section} -->", 1)[1].split("<!-- end -->", 1)[0]
    return re.findall(r"^\| `([^`]+)` \|", part, re.M)


@pytest.mark.parametrize(("cls", "section"), [(RunJournal, "run"), (SearchJournal, "search")])
def test_docs_document_every_field_and_no_other(cls: Any, section: str) -> None:
    want, doc = fields(cls), documented(section)
    assert sorted(set(want) - set(doc)) == [], "fields missing from docs/journal.md"
    assert sorted(set(doc) - set(want)) == [], "docs/journal.md documents fields that are gone"


def sample_run() -> RunJournal:
    verdict = Verdict("availability", True, {"availability": 0.999}, "99.9% >= 99%")
    return RunJournal(
        experiment=ExperimentRef("x", "an experiment", "experiments/x.yaml"),
        profile="hardened",
        seed=7,
        backend="local",
        versions={"harness": "0.1.0"},
        topology=None,
        capacity=CapacityRecord(1200.0, "cached", profile="naive", load_before=0.2),
        workload=WorkloadRecord(20.0, 1.0, (), slo_op="read"),
        load=None,
        faults=(),
        fault_records=(),
        verdicts=(verdict,),
        valid=True,
        expected="all hold",
        outcome="met",
        why="every invariant held",
        replay="harness run experiments/x.yaml --profile hardened --seed 7",
        timings_s={"start": 1.5},
    )


def test_a_run_journal_round_trips(tmp_path: Path) -> None:
    record = sample_run()
    journal.write(tmp_path, record)
    assert journal.read(tmp_path) == record


def test_a_search_journal_round_trips(tmp_path: Path) -> None:
    record = SearchJournal(
        experiment=ExperimentRef("s", "a search", "experiments/s.yaml"),
        profile="hardened",
        seed=1,
        valid=False,
        expected="a failing schedule",
        outcome="met",
        why="found one",
        verdicts=(),
        search=SearchRecord(
            {"kinds": ["down"]}, 4, 60.0, 1, 1, {"examples": 3}, None, None, ("a",), (), ()
        ),
    )
    journal.write(tmp_path, record)
    assert journal.read(tmp_path) == record


def test_another_version_is_refused_with_what_to_do(tmp_path: Path) -> None:
    journal.write(tmp_path, sample_run())
    path = tmp_path / journal.FILE
    data = json.loads(path.read_text())
    data["journal_version"] = 1
    path.write_text(json.dumps(data))
    with pytest.raises(JournalError, match="version 1"):
        journal.read(tmp_path)


def test_a_broken_journal_names_the_field(tmp_path: Path) -> None:
    journal.write(tmp_path, sample_run())
    path = tmp_path / journal.FILE
    data = json.loads(path.read_text())
    data["capacity"]["rps"] = "fast"
    path.write_text(json.dumps(data))
    with pytest.raises(JournalError, match="capacity"):
        journal.read(tmp_path)


def test_a_password_never_reaches_a_journal() -> None:
    """Journals are shared with reviewers: a component's password is left out, and a
    journal read back has none."""
    from harness.backends import ComponentEndpoint

    endpoint = ComponentEndpoint("db", "db", "127.0.0.1", 5432, "postgres", "hunter2")
    data = journal.to_data({"components": {"db": endpoint}})
    assert data == {
        "components": {
            "db": {
                "name": "db",
                "group": "db",
                "host": "127.0.0.1",
                "port": 5432,
                "probe": "postgres",
            }
        }
    }
    assert "hunter2" not in json.dumps(data)
