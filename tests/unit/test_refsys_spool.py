"""Spool: durable append, in-order idempotent replay, no skipped batch, rewind on a new DB."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from reference_system.spool import Replayer, ScanRecord, Spool


def rec(i: int) -> ScanRecord:
    return ScanRecord(f"scan-{i}", i, 1 + i % 7, "2022-01-04T09:00:00+00:00")


class FakeDB:
    """A sink that behaves like INSERT ... ON CONFLICT (scan_id) DO NOTHING."""

    def __init__(self) -> None:
        self.rows: dict[str, ScanRecord] = {}
        self.order: list[str] = []
        self.fail_next = 0
        self.ident = "db-1"

    async def sink(self, records: list[ScanRecord]) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise ConnectionError("database down")
        for r in records:
            if r.scan_id not in self.rows:
                self.rows[r.scan_id] = r
                self.order.append(r.scan_id)

    async def identity(self) -> str:
        return self.ident


def test_appended_records_replay_in_order(tmp_path: Path) -> None:
    async def main() -> None:
        spool = Spool(tmp_path, fsync=True)
        await asyncio.gather(*(spool.append(rec(i)) for i in range(50)))
        db = FakeDB()
        rp = Replayer(spool, db.sink, db.identity, batch=7)
        while await rp.step():
            pass
        assert db.order == [f"scan-{i}" for i in range(50)]
        assert rp.backlog_bytes() == 0

    asyncio.run(main())


def test_failed_batch_is_retried_not_skipped(tmp_path: Path) -> None:
    async def main() -> None:
        spool = Spool(tmp_path)
        for i in range(10):
            await spool.append(rec(i))
        db = FakeDB()
        rp = Replayer(spool, db.sink, db.identity, batch=4)
        assert await rp.step() == 4
        db.fail_next = 2
        for _ in range(2):
            with pytest.raises(ConnectionError):
                await rp.step()
        assert rp.backlog_bytes() > 0
        while await rp.step():
            pass
        assert db.order == [f"scan-{i}" for i in range(10)]

    asyncio.run(main())


def test_records_survive_a_restart_and_a_torn_tail_is_skipped(tmp_path: Path) -> None:
    async def main() -> None:
        first = Spool(tmp_path, segment_bytes=200)
        for i in range(8):
            await first.append(rec(i))
        first.close()
        segs = sorted(tmp_path.glob("seg-*.log"))
        assert len(segs) > 1  # rotated
        with open(segs[-1], "ab") as f:
            f.write(b'["torn", 1, 2')  # a crash mid-write: never acknowledged
        second = Spool(tmp_path)
        await second.append(rec(99))
        db = FakeDB()
        rp = Replayer(second, db.sink, db.identity)
        while await rp.step():
            pass
        assert db.order == [f"scan-{i}" for i in range(8)] + ["scan-99"]

    asyncio.run(main())


def test_rewind_when_the_database_is_replaced(tmp_path: Path) -> None:
    async def main() -> None:
        spool = Spool(tmp_path)
        for i in range(5):
            await spool.append(rec(i))
        db = FakeDB()
        rp = Replayer(spool, db.sink, db.identity)
        while await rp.step():
            pass
        # The database is lost and restored from an older backup under a new identity.
        restored = FakeDB()
        restored.ident = "db-2"
        restored.fail_next = 1
        rp.sink = restored.sink
        rp.identity = restored.identity
        await spool.append(rec(5))
        with pytest.raises(ConnectionError):
            await rp.step()
        while await rp.step():
            pass
        assert restored.order == [f"scan-{i}" for i in range(6)]

    asyncio.run(main())


def test_same_identity_does_not_rewind(tmp_path: Path) -> None:
    async def main() -> None:
        spool = Spool(tmp_path)
        await spool.append(rec(0))
        db = FakeDB()
        calls: list[int] = []

        async def counting(records: list[ScanRecord]) -> None:
            calls.append(len(records))
            await db.sink(records)

        rp = Replayer(spool, counting, db.identity)
        await rp.step()
        db.fail_next = 1
        await spool.append(rec(1))
        with pytest.raises(ConnectionError):
            await rp.step()
        await rp.step()
        assert calls == [1, 1, 1]

    asyncio.run(main())


def test_prune_keeps_unreplayed_and_recent_segments(tmp_path: Path) -> None:
    async def main() -> None:
        spool = Spool(tmp_path, segment_bytes=100)
        for i in range(6):
            await spool.append(rec(i))
        db = FakeDB()
        rp = Replayer(spool, db.sink, db.identity)
        n_before = len(list(tmp_path.glob("seg-*.log")))
        assert spool.prune(rp.cursor, retain_s=0) == 0  # nothing replayed yet
        while await rp.step():
            pass
        assert spool.prune(rp.cursor, retain_s=3600) == 0  # too recent
        assert spool.prune(rp.cursor, retain_s=0) == n_before - 1
        assert len(list(tmp_path.glob("seg-*.log"))) == 1

    asyncio.run(main())


def test_run_loop_drains_in_the_background(tmp_path: Path) -> None:
    async def main() -> None:
        spool = Spool(tmp_path)
        db = FakeDB()
        db.fail_next = 1
        rp = Replayer(spool, db.sink, db.identity, idle_s=0.01, retry_s=0.01)
        task = asyncio.create_task(rp.run())
        for i in range(3):
            await spool.append(rec(i))
        for _ in range(200):
            if len(db.rows) == 3:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        assert db.order == ["scan-0", "scan-1", "scan-2"]

    asyncio.run(main())


def test_replaced_database_gets_retained_scans_without_new_traffic(tmp_path: Path) -> None:
    async def main() -> None:
        spool = Spool(tmp_path)
        for i in range(3):
            await spool.append(rec(i))
        db = FakeDB()
        rp = Replayer(spool, db.sink, db.identity, identity_every_s=0.0)
        while await rp.step():
            pass
        db.rows.clear()  # the database was wiped and restored from an old backup...
        db.order.clear()
        db.ident = "db-restored"  # ...under a new identity; no scan arrives meanwhile
        while await rp.step():
            pass
        assert db.order == ["scan-0", "scan-1", "scan-2"]

    asyncio.run(main())
