"""Database loss while writes run: the hardened reference system promotes its synchronous
standby and keeps every acknowledged row; a topology without a replica (the naive way)
comes back empty and the evidence says what was lost."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from harness.backends.local import LocalBackend, LocalSystem
from harness.faults import DbLoss, ScheduledFault, run_schedule
from harness.topology import load_topology

pytestmark = [pytest.mark.integration, pytest.mark.chaos]
MINI = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "mini.yaml"


class Writer:
    """Inserts ids through one link, one autocommit statement each; keeps the acknowledged."""

    def __init__(self, system: LocalSystem, link: str) -> None:
        self.system, self.link = system, link
        self.acknowledged: list[int] = []
        self.failed = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def connect(self) -> psycopg.Connection:
        link = self.system.endpoints.links[self.link]
        host, port = link.listen.split(":")
        return psycopg.connect(
            host=host,
            port=int(port),
            user="postgres",
            password=self.system.endpoints.components[link.target].password,
            dbname="postgres",
            autocommit=True,
            connect_timeout=2,
        )

    def run(self) -> None:
        next_id, conn = 0, None
        while not self.stop.is_set():
            next_id += 1
            try:
                if conn is None:
                    conn = self.connect()
                conn.execute("INSERT INTO acked (id) VALUES (%s)", (next_id,))
                self.acknowledged.append(next_id)  # the commit returned: acknowledged
            except psycopg.Error:
                self.failed += 1  # outcome unknown; never counted as acknowledged
                if conn is not None:
                    conn.close()
                conn = None
                time.sleep(0.02)
        if conn is not None:
            conn.close()

    def __enter__(self) -> Writer:
        with self.connect() as conn:
            conn.execute("CREATE TABLE IF NOT EXISTS acked (id int PRIMARY KEY)")
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(10)


def rows(url: str) -> set[int]:
    with psycopg.connect(url, connect_timeout=3) as conn:
        if conn.execute("SELECT to_regclass('acked')").fetchone() == (None,):
            return set()  # the table itself was lost
        return {r[0] for r in conn.execute("SELECT id FROM acked")}


@pytest.fixture
def hardened() -> Iterator[LocalSystem]:
    with LocalBackend().start(load_topology(profile="hardened"), seed=1) as system:
        yield system


def test_hardened_promotes_the_replica_and_keeps_every_acknowledged_row(
    hardened: LocalSystem,
) -> None:
    system = hardened
    with psycopg.connect(system.endpoints.components["postgres"].dsn) as conn:
        assert conn.execute("SELECT sync_state FROM pg_stat_replication").fetchall() == [("sync",)]
    schedule = [ScheduledFault(0.5, DbLoss(component="postgres"), duration=0.0)]
    with Writer(system, "app-1->postgres") as writer, run_schedule(system, schedule) as nemesis:
        time.sleep(0.5)
        deadline = time.monotonic() + 30
        while nemesis.report.records[0].heal is None and time.monotonic() < deadline:
            time.sleep(0.05)
        acked_at_recovery = len(writer.acknowledged)
        time.sleep(1.0)  # writes resume on the promoted replica, through the same link
    report = nemesis.report
    assert report.ok, "\n".join(e.summary() for e in report.ineffective())
    record = report.records[0]
    loss, heal = record.inject, record.heal
    assert loss is not None and heal is not None
    assert heal.figures["recovery"] == "promoted replica"
    assert heal.figures["primary"] == "postgres-replica-1"
    assert heal.figures["lost.acked"] == 0
    assert heal.actuated - loss.actuated < 30  # RTO well inside the 30 s of docs/domain.md
    assert not system.is_running("postgres")
    present = rows(system.endpoints.components["postgres"].dsn)  # redirected to the new primary
    assert set(writer.acknowledged) <= present, sorted(set(writer.acknowledged) - present)[:10]
    assert len(writer.acknowledged) > acked_at_recovery > 0  # writes before and after
    assert writer.failed > 0  # the loss was felt by the writer


def test_without_a_replica_the_database_comes_back_empty_and_the_loss_is_recorded(
    tmp_path: Path,
) -> None:
    with LocalBackend(base=tmp_path).start(load_topology(MINI), seed=1) as system:
        with Writer(system, "web-1->db") as writer:
            time.sleep(0.3)
            fault = DbLoss(component="db")
            loss = fault.inject(system)
            heal = fault.heal(system)
            time.sleep(0.3)
        assert loss.took_effect, loss.summary()
        assert heal.took_effect, heal.summary()
        assert heal.figures["recovery"].startswith("re-initialised")
        assert heal.figures["before.acked"] > 0
        assert "after.acked" not in heal.figures  # the table itself is gone
        present = rows(system.endpoints.components["db"].dsn)
        lost = set(writer.acknowledged) - present
        assert lost and min(lost) == 1  # acknowledged rows before the loss are gone
        assert system.is_running("db")
