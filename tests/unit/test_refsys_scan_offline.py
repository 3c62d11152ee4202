"""Hardened scans are validated offline (signed token, no database, no Redis) and
acknowledged once spooled; nothing on that path needs the database (with ``scan_check``
it asks it about a new scan_id, bounded, and accepts the scan when it cannot answer)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from reference_system import tokens
from reference_system.addresses import Endpoint
from reference_system.app import Service, scan_refusal
from reference_system.settings import load
from reference_system.spool import Cursor, Spool
from reference_system.validation import parse_scan

KEY = b"unit-key"
NOW = 1_700_000_000.0


def scan_json(person_id: int, token: str, scan_id: str = "scan-1") -> bytes:
    return orjson.dumps(
        {
            "scan_id": scan_id,
            "person_id": person_id,
            "venue_id": 12,
            "token": token,
            "at": "2022-01-04T09:00:00Z",
        }
    )


def token_for(person_id: int, now: float = NOW, ttl: int = 600, key: bytes = KEY) -> str:
    return tokens.issue(person_id, "green", 1641254400, now, ttl, key)


def test_valid_token_for_the_person_passes() -> None:
    assert scan_refusal(parse_scan(scan_json(5, token_for(5))), KEY, NOW + 1) is None


@pytest.mark.parametrize(
    ("token", "person", "kind"),
    [
        (token_for(5, key=b"other-key"), 5, "forged"),
        (token_for(5)[:-2] + "AA", 5, "forged"),
        ("not-a-token", 5, "forged"),
        (token_for(5, now=NOW - 700), 5, "expired"),
        (token_for(6), 5, "mismatch"),
    ],
)
def test_bad_tokens_are_refused_with_403(token: str, person: int, kind: str) -> None:
    refused = scan_refusal(parse_scan(scan_json(person, token)), KEY, NOW)
    assert refused is not None
    status, body = refused
    assert status == 403 and body["token"] == kind


class NoDatabase:
    """Any database call is a test failure."""

    def __init__(self) -> None:
        self.calls = 0

    async def run(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        raise AssertionError("the hardened scan path touched the database")

    async def identity(self) -> str:
        raise AssertionError("identity asked during a scan")

    async def close(self) -> None:
        pass


def hardened(tmp: Path, overrides: str = '{"scan_check": false}') -> Service:
    svc = Service(
        load("hardened", overrides),
        "postgresql://x@127.0.0.1:1/x",
        Endpoint("127.0.0.1", 1),
        "app-t",
        tmp / "spool",
        KEY,
    )
    svc.db = NoDatabase()  # type: ignore[assignment]
    svc.cache = None  # nor Redis
    return svc


def test_hardened_scan_is_acknowledged_from_the_spool_without_the_database(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        svc = hardened(tmp_path)
        svc.spool = Spool(tmp_path / "spool", fsync=True)  # no replayer: DB "down" forever
        try:
            token = token_for(5, now=time.time())
            status, body = await svc.scan(scan_json(5, token, "s-a"), None)
            assert status == 200 and body["status"] == "recorded" and body["scan_id"] == "s-a"
            records, _ = svc.spool.read(Cursor(svc.spool.current_segment, 0))
            assert [(r.scan_id, r.person_id, r.venue_id) for r in records] == [("s-a", 5, 12)]
            refused = await svc.scan(scan_json(5, token_for(6, now=time.time()), "s-b"), None)
            assert refused[0] == 403
            assert len(svc.spool.read(Cursor(svc.spool.current_segment, 0))[0]) == 1
        finally:
            svc.spool.close()
        assert svc.db.calls == 0  # type: ignore[attr-defined]

    asyncio.run(main())


def test_naive_scan_goes_to_the_database() -> None:
    svc = Service(
        load("naive"),
        "postgresql://x@127.0.0.1:1/x",
        Endpoint("127.0.0.1", 1),
        "app-t",
        Path("/nonexistent"),
        KEY,
    )
    svc.db = NoDatabase()  # type: ignore[assignment]
    with pytest.raises(AssertionError, match="touched the database"):
        asyncio.run(svc.scan(scan_json(5, token_for(5, now=time.time())), None))


class DownDatabase(NoDatabase):
    """The database is down: every call is Unavailable."""

    async def run(self, *args: Any, **kwargs: Any) -> Any:
        from reference_system.database import Unavailable

        self.calls += 1
        raise Unavailable("database down (test)")


def test_hardened_scan_with_the_check_on_is_acknowledged_while_the_database_is_down(
    tmp_path: Path,
) -> None:
    async def main() -> None:
        svc = hardened(tmp_path, "{}")
        svc.db = DownDatabase()  # type: ignore[assignment]
        svc.spool = Spool(tmp_path / "spool", fsync=True)
        try:
            for i in range(8):
                token = token_for(5, now=time.time())
                status, body = await svc.scan(scan_json(5, token, f"s-{i}"), None)
                assert status == 200 and body["status"] == "recorded"
        finally:
            svc.spool.close()
        # the check's own breaker opened after 5 failures: the rest did not even ask
        assert svc.db.calls == 5  # type: ignore[attr-defined]

    asyncio.run(main())
