"""The load runner against the real reference system: a history whose counts add up."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from pathlib import Path

import psycopg
import pytest

from harness.client import HttpClient
from harness.history import History, HistoryWriter, load
from harness.load import LoadConfig, LoadResult, run_load
from harness.operations import Mix
from harness.workload import ClientClass, Constant, Good, Impatient, Workload, rps
from tests.support import reference_operations

pytestmark = pytest.mark.integration

RATE = 40.0  # requests/s: far below the capacity of either profile
SECONDS = 4.0
OPS = reference_operations()
MIX = Mix.of(show_code=0.55, scan=0.25, lookup=0.10, ingest=0.10)  # every op shows up
POPULATION = (
    ClientClass("good", 0.8, Good(timeout=3.0)),
    ClientClass("impatient", 0.2, Impatient(patience=(3.0, 5.0))),
)


def run(urls: list[str], tag: str, history: History | HistoryWriter) -> LoadResult:
    workload = Workload(Constant(rps(RATE), SECONDS), OPS, MIX, POPULATION, seed=7, tag=tag)
    config = LoadConfig(targets=len(urls), drain=10.0, max_ops=5_000)

    async def go() -> LoadResult:
        async with HttpClient(OPS, urls) as c:
            return await run_load(
                workload.schedule().arrivals(), c, history, config, writes=OPS.writes
            )

    return asyncio.run(go())


def test_history_counts_add_up(reference_stack, tmp_path: Path) -> None:
    path = tmp_path / "history.jsonl"
    tag = f"counts-{reference_stack.profile}"
    with HistoryWriter(path) as writer:
        result = run(reference_stack.gateway_urls, tag, writer)
    ops = load(path)

    # Every invoked op has exactly one completion, and the tallies agree with the history.
    assert len(ops) == result.ops == writer.count
    assert sorted(op.id for op in ops) == list(range(len(ops)))
    assert result.ops == result.sent + result.never_sent
    assert result.never_sent == 0, f"the runner fell behind at {RATE}/s: {result}"
    assert result.arrivals == sum(1 for op in ops if op.cause == "first")
    assert result.cancelled == 0
    by_id = {op.id: op for op in ops}
    for op in ops:
        assert op.sent is not None and op.intended <= op.sent + 1e-3 <= op.completed + 1e-3
        assert op.root is not None and by_id[op.root].cause == "first"
        if op.parent is not None:
            assert by_id[op.parent].completed <= op.intended + 1e-6

    # At a low rate every operation succeeds, each of the four kinds included.
    outcomes = Counter((op.op, op.outcome) for op in ops)
    failed = [op for op in ops if op.outcome != "ok"][:5]
    assert not failed, f"{reference_stack.profile}: {outcomes}; e.g. {failed}"
    for name in ("show_code", "scan", "lookup", "ingest"):
        assert outcomes[(name, "ok")] > 0, f"no successful {name} in {outcomes}"
    assert all(op.status == 200 for op in ops)


def test_acknowledged_scans_are_in_postgres(reference_stack) -> None:
    history = History()
    tag = f"durable-{reference_stack.profile}"
    result = run(reference_stack.gateway_urls, tag, history)
    assert result.never_sent == 0
    acked = {
        op.args["scan_id"]: op.args for op in history if op.op == "scan" and op.outcome == "ok"
    }
    failed = {op.args["scan_id"] for op in history if op.op == "scan" and op.outcome == "fail"}
    assert acked, "no scan was acknowledged"

    # The hardened profile acknowledges a scan once it is in its durable spool and
    # writes it to PostgreSQL behind the answer: wait (bounded) for it to land.
    deadline = time.monotonic() + 20.0
    with psycopg.connect(reference_stack.postgres_dsn, autocommit=True) as conn:
        while True:
            rows = conn.execute(
                "SELECT scan_id, person_id, venue_id FROM scans WHERE scan_id LIKE %s",
                (f"{tag}-%",),
            ).fetchall()
            stored = {r[0]: (r[1], r[2]) for r in rows}
            missing = sorted(set(acked) - set(stored))
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    assert not missing, f"{len(missing)} acknowledged scans not in PostgreSQL, e.g. {missing[:5]}"
    for scan_id, args in acked.items():
        assert stored[scan_id] == (args["person"], args["venue"]), scan_id
    # A scan whose every attempt failed was definitely not applied.
    never_acked = failed - set(acked)
    assert not (never_acked & set(stored)), sorted(never_acked & set(stored))[:5]
