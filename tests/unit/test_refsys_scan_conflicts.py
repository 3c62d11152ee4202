"""A conflicting repeat of a scan_id (same id, other person, venue or time) is refused
with 409 in hardened exactly as in naive, and an identical repeat stays idempotent (200).

Hardened acknowledges from the spool, so it knows about a conflict from the spool's
index of recent scan ids and, when the database answers, from the stored row; when it
cannot know (the database is down and the id is not spooled here) it accepts."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from reference_system import app as app_module
from reference_system import tokens
from reference_system.addresses import Endpoint
from reference_system.app import Service
from reference_system.database import Unavailable
from reference_system.settings import load
from reference_system.spool import Cursor, Replayer, ScanRecord, Spool

KEY = b"unit-test-key-0123456789abcdef-01"
AT = "2022-01-04T09:00:00+08:00"


class ScansDB:
    """The scans table behind ``Database.run``: the direct insert, the lookup, the replay."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[str, Any]] = {}
        self.down = False
        self.calls = 0

    async def run(
        self, fn: Any, deadline: Any = None, use_breaker: bool = True, timeout_s: Any = None
    ) -> Any:
        self.calls += 1
        if self.down:
            raise Unavailable("database unavailable: test")
        return await fn(_Conn(self))

    async def identity(self) -> str:
        if self.down:
            raise Unavailable("database unavailable: test")
        return "db-1"

    async def close(self) -> None:
        pass

    def put(self, scan_id: str, person_id: int, venue_id: int, at: str) -> None:
        self.rows[scan_id] = {
            "scan_id": scan_id,
            "person_id": person_id,
            "venue_id": venue_id,
            "at": datetime.fromisoformat(at),
        }


class _Conn:
    def __init__(self, db: ScansDB) -> None:
        self.db = db

    async def fetchval(self, sql: str, *args: Any) -> Any:
        if sql == "SELECT 1":  # readiness
            return 1
        assert sql == app_module.SQL_SCAN_INSERT
        scan_id, person_id, venue_id, at = args
        if scan_id in self.db.rows:
            return None
        self.db.put(scan_id, person_id, venue_id, at.isoformat())
        return scan_id

    async def fetchrow(self, sql: str, *args: Any) -> Any:
        assert sql == app_module.SQL_SCAN_GET
        return self.db.rows.get(args[0])

    async def fetch(self, sql: str, *args: Any) -> Any:
        if sql == app_module.SQL_SCAN_REPLAY:
            inserted = []
            for scan_id, person_id, venue_id, at in zip(*args, strict=True):
                if scan_id not in self.db.rows:
                    self.db.put(scan_id, person_id, venue_id, at.isoformat())
                    inserted.append({"scan_id": scan_id})
            return inserted
        assert sql == app_module.SQL_SCANS_GET
        return [self.db.rows[i] for i in args[0] if i in self.db.rows]


def make(profile: str, db: ScansDB, spool_dir: Path, overrides: str = "{}") -> Service:
    svc = Service(
        load(profile, overrides),
        "postgresql://x@127.0.0.1:1/x",
        Endpoint("127.0.0.1", 1),
        "app-t",
        spool_dir,
        KEY,
    )
    svc.db = db  # type: ignore[assignment]
    svc.cache = None
    if svc.settings.spool:
        svc.spool = Spool(spool_dir, fsync=False)
    return svc


def scan(scan_id: str, person_id: int = 5, venue_id: int = 12, at: str = AT) -> bytes:
    token = tokens.issue(person_id, "green", 1641254400, time.time(), 600, KEY)
    return orjson.dumps(
        {"scan_id": scan_id, "person_id": person_id, "venue_id": venue_id, "token": token, "at": at}
    )


def spooled(svc: Service) -> list[tuple[str, int, int]]:
    assert svc.spool is not None
    records, _ = svc.spool.read(svc.spool.first_cursor(), 10_000)
    return [(r.scan_id, r.person_id, r.venue_id) for r in records]


async def status(svc: Service, body: bytes) -> int:
    return (await svc.scan(body, None))[0]


SEQUENCE = [
    (scan("a"), 200),
    (scan("a", venue_id=13), 409),  # other venue
    (scan("a", person_id=6), 409),  # other person (with that person's own valid token)
    (scan("a", at="2022-01-04T09:00:01+08:00"), 409),  # other time
    (scan("a"), 200),  # identical: idempotent
    (scan("a", at="2022-01-04T01:00:00+00:00"), 200),  # the same instant, other offset
    (scan("b"), 200),
]


@pytest.mark.parametrize("profile", ["naive", "hardened"])
def test_hardened_answers_a_repeated_scan_id_exactly_as_naive(profile: str, tmp_path: Path) -> None:
    async def main() -> None:
        db = ScansDB()
        svc = make(profile, db, tmp_path / "spool")
        got = [await status(svc, body) for body, _ in SEQUENCE]
        assert got == [want for _, want in SEQUENCE]

    asyncio.run(main())


def test_conflict_is_refused_from_the_spool_while_the_database_is_down(tmp_path: Path) -> None:
    async def main() -> None:
        db = ScansDB()
        db.down = True
        svc = make("hardened", db, tmp_path / "spool")
        got = [await status(svc, body) for body, _ in SEQUENCE]
        assert got == [want for _, want in SEQUENCE]
        assert spooled(svc) == [("a", 5, 12), ("b", 5, 12)]  # nothing appended twice

    asyncio.run(main())


def test_the_stored_row_decides_when_the_id_is_not_spooled_here(tmp_path: Path) -> None:
    """Another worker's scan, already replayed: only the database knows it."""

    async def main() -> None:
        db = ScansDB()
        db.put("x", 5, 12, AT)
        svc = make("hardened", db, tmp_path / "spool")
        assert await status(svc, scan("x", venue_id=99)) == 409
        assert await status(svc, scan("x")) == 200
        assert spooled(svc) == []  # already in the system of record: nothing to spool

    asyncio.run(main())


def test_other_workers_scan_after_replay_is_a_conflict_here(tmp_path: Path) -> None:
    async def main() -> None:
        db = ScansDB()
        one = make("hardened", db, tmp_path / "one")
        two = make("hardened", db, tmp_path / "two")
        assert await status(one, scan("s")) == 200
        assert one.spool is not None
        replayer = Replayer(one.spool, one._replay_sink, db.identity)
        while await replayer.step():
            pass
        assert await status(two, scan("s", venue_id=7)) == 409
        assert await status(two, scan("s")) == 200

    asyncio.run(main())


def test_when_it_cannot_know_it_accepts_and_the_replay_counts_the_conflict(
    tmp_path: Path,
) -> None:
    """Database down and the id not in this spool: nothing contradicts the scan, so it is
    acknowledged; if the database did hold the id with other contents, the replay finds
    out and counts it (``spool_conflicts`` on /readyz)."""

    async def main() -> None:
        db = ScansDB()
        db.put("old", 5, 12, AT)
        db.down = True
        svc = make("hardened", db, tmp_path / "spool")
        assert await status(svc, scan("old", venue_id=99)) == 200
        db.down = False
        assert svc.spool is not None
        replayer = Replayer(svc.spool, svc._replay_sink, db.identity)
        while await replayer.step():
            pass
        assert svc.replay_conflicts == 1
        assert db.rows["old"]["venue_id"] == 12  # the database keeps the first
        svc.replayer = replayer
        ready = await svc.readyz()
        assert ready[1]["spool_conflicts"] == 1

    asyncio.run(main())


def test_concurrent_conflicting_scans_one_is_acknowledged(tmp_path: Path) -> None:
    async def main() -> None:
        db = ScansDB()
        db.down = True
        svc = make("hardened", db, tmp_path / "spool")
        got = await asyncio.gather(
            *(status(svc, scan("c", venue_id=v)) for v in (1, 2, 3, 1, 2, 3))
        )
        assert sorted(got) == [200, 200, 409, 409, 409, 409]
        venue = spooled(svc)[0][2]
        assert spooled(svc) == [("c", 5, venue)]
        assert [got[i] for i in range(6) if (1, 2, 3, 1, 2, 3)[i] == venue] == [200, 200]

    asyncio.run(main())


def test_concurrent_conflicting_scans_with_the_database_up(tmp_path: Path) -> None:
    """Both miss the index and the database, then race to the spool: one wins."""

    async def main() -> None:
        db = ScansDB()
        svc = make("hardened", db, tmp_path / "spool")
        got = await asyncio.gather(
            status(svc, scan("d", venue_id=1)), status(svc, scan("d", venue_id=2))
        )
        assert sorted(got) == [200, 409]
        assert len(spooled(svc)) == 1

    asyncio.run(main())


def test_the_index_survives_a_restart(tmp_path: Path) -> None:
    async def main() -> None:
        db = ScansDB()
        db.down = True
        first = make("hardened", db, tmp_path / "spool")
        assert await status(first, scan("r")) == 200
        assert first.spool is not None
        first.spool.close()
        again = make("hardened", db, tmp_path / "spool")  # a restarted worker
        assert await status(again, scan("r", venue_id=99)) == 409
        assert await status(again, scan("r")) == 200
        assert spooled(again) == [("r", 5, 12)]

    asyncio.run(main())


def test_a_failed_write_is_not_remembered(tmp_path: Path) -> None:
    async def main() -> None:
        db = ScansDB()
        db.down = True
        svc = make("hardened", db, tmp_path / "spool")
        assert svc.spool is not None
        real = svc.spool._write
        calls = {"n": 0}

        def flaky(data: bytes) -> None:
            calls["n"] += 1
            if calls["n"] == 1:
                raise OSError(28, "No space left on device")
            real(data)

        svc.spool._write = flaky  # type: ignore[method-assign]
        with pytest.raises(Unavailable, match="spool write failed"):
            await svc.scan(scan("w", venue_id=1), None)
        # never acknowledged, so neither a retry nor another scan with that id conflicts
        assert await status(svc, scan("w", venue_id=2)) == 200
        assert spooled(svc) == [("w", 5, 2)]

    asyncio.run(main())


def test_identical_repeats_wait_for_the_first_copy_to_be_durable(tmp_path: Path) -> None:
    async def main() -> None:
        spool = Spool(tmp_path, fsync=False)
        record = ScanRecord("i", 5, 12, AT)
        results = await asyncio.gather(*(spool.append(record) for _ in range(5)))
        assert sorted(results) == [False, False, False, False, True]
        assert len(spool.read(Cursor(spool.current_segment, 0))[0]) == 1

    asyncio.run(main())


def test_the_index_is_bounded_and_keeps_the_newest(tmp_path: Path) -> None:
    async def main() -> None:
        spool = Spool(tmp_path, fsync=False, index_size=3)
        for i in range(5):
            await spool.append(ScanRecord(f"n{i}", 5, 12, AT))
        assert spool.indexed == 3
        assert spool.lookup("n0") is None and spool.lookup("n4") is not None
        spool.close()
        assert Spool(tmp_path, index_size=3).lookup("n2") is not None  # rebuilt: the newest
        assert Spool(tmp_path, index_size=3).lookup("n1") is None

    asyncio.run(main())


def test_switching_the_check_off_leaves_only_the_spool_index(tmp_path: Path) -> None:
    async def main() -> None:
        db = ScansDB()
        db.put("x", 5, 12, AT)
        svc = make("hardened", db, tmp_path / "spool", '{"scan_check": false}')
        assert await status(svc, scan("x", venue_id=99)) == 200  # not asked: cannot know
        assert db.calls == 0

    asyncio.run(main())


def test_409_at_the_asgi_boundary_is_json_naming_scan_id(tmp_path: Path) -> None:
    async def main() -> None:
        db = ScansDB()
        db.down = True
        svc = make("hardened", db, tmp_path / "spool")
        answers = []
        for body in (scan("j"), scan("j", venue_id=2)):
            sent: list[dict[str, Any]] = []

            async def receive(body: bytes = body) -> dict[str, Any]:
                return {"type": "http.request", "body": body, "more_body": False}

            async def send(msg: dict[str, Any], sent: list[dict[str, Any]] = sent) -> None:
                sent.append(msg)

            scope = {"type": "http", "method": "POST", "path": "/v1/scans", "headers": []}
            await svc(scope, receive, send)
            answers.append((sent[0]["status"], orjson.loads(sent[1]["body"])))
        assert answers[0][0] == 200 and answers[0][1]["status"] == "recorded"
        assert answers[1][0] == 409 and answers[1][1]["field"] == "scan_id"

    asyncio.run(main())
