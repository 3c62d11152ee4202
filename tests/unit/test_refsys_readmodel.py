"""The Redis read model: reply decoding (every answer names its person), the show-code
path that never needs the database while Redis is up, the fallback when the model is
incomplete or Redis is down, entries that never expire, republish after a failed
ingest publish, and the seeder's bulk-load encoding."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from reference_system.addresses import Endpoint
from reference_system.app import Service, entry_from_row, iso
from reference_system.cache import (
    COMPLETE_KEY,
    CodeCache,
    CodeEntry,
    ReadModelAnswer,
    decode_read,
    encode_fields,
)
from reference_system.database import Unavailable
from reference_system.settings import load
from reference_system.tokens import verify

KEY = b"unit-key"


def entry(pid: int, colour: str = "green", version: int = 1, cached_at: float = 0.0) -> CodeEntry:
    return CodeEntry(pid, version, colour, "2022-01-04T00:00:00Z", 1641254400, "", "", cached_at)


# -- settings


def test_read_model_is_on_in_hardened_only_and_can_be_switched_off() -> None:
    assert load("hardened").read_model is True
    assert load("naive").read_model is False
    assert load("hardened", '{"read_model": false}').read_model is False


# -- decoding the read script's reply


def test_decode_hit_miss_and_completeness() -> None:
    assert decode_read(5, entry(5, "red").encode()) == ReadModelAnswer(entry(5, "red"), True)
    assert decode_read(5, b"?|5|1") == ReadModelAnswer(None, True)
    assert decode_read(5, b"?|5|0") == ReadModelAnswer(None, False)


@pytest.mark.parametrize(
    "raw",
    [
        b"?|6|1",  # a miss for someone else: a shifted reply, never "unknown person"
        entry(6).encode(),  # someone else's entry
        b"?|5|2",
        b"OK",
        None,
        1,
        [b"?|5|1"],
    ],
)
def test_decode_refuses_replies_that_are_not_about_this_person(raw: Any) -> None:
    with pytest.raises(ValueError):
        decode_read(5, raw)


class FakeClient:
    def __init__(self, replies: list[Any]) -> None:
        self.replies = replies
        self.sent: list[tuple[Any, ...]] = []
        self.resets: list[str] = []

    async def execute(self, *args: Any) -> Any:
        self.sent.append(args)
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def pipeline(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        self.sent.extend(commands)
        return [b"sha"] + [1] * (len(commands) - 2) + [commands[-1][1]]

    def reset(self, reason: str) -> None:
        self.resets.append(reason)


def read_model_cache(replies: list[Any]) -> tuple[CodeCache, FakeClient]:
    cache = CodeCache(Endpoint("127.0.0.1", 1), 0.05, 30, 300, read_model=True)
    fake = FakeClient(replies)
    cache.client = fake  # type: ignore[assignment]
    return cache, fake


def test_read_is_one_script_call_naming_the_marker_and_the_person() -> None:
    cache, fake = read_model_cache([b"?|7|1"])
    assert asyncio.run(cache.read(7)) == ReadModelAnswer(None, True)
    (cmd,) = fake.sent
    assert cmd[0] == "EVALSHA" and cmd[2:] == (2, "code:7", COMPLETE_KEY, 7)


def test_read_reloads_the_script_after_noscript() -> None:
    from reference_system.resp import ReplyError

    cache, fake = read_model_cache([ReplyError("NOSCRIPT No matching script"), b"?|7|0"])
    assert asyncio.run(cache.read(7)) == ReadModelAnswer(None, False)
    assert [c[0] for c in fake.sent] == ["EVALSHA", "EVAL"]


def test_read_of_a_shifted_reply_resets_the_connection() -> None:
    cache, fake = read_model_cache([b"?|8|1"])
    with pytest.raises(Unavailable, match="did not match"):
        asyncio.run(cache.read(7))
    assert fake.resets


def test_read_model_writes_never_expire_and_cache_writes_do() -> None:
    cache, fake = read_model_cache([1])
    asyncio.run(cache.fill(entry(3)))
    asyncio.run(cache.publish([entry(4, "red", 2)], 1.0))
    ttls = [c[7] for c in fake.sent if c[0] == "EVALSHA"]
    assert ttls == [0, 0]
    plain = CodeCache(Endpoint("127.0.0.1", 1), 0.05, 30, 300)
    plain_fake = FakeClient([1])
    plain.client = plain_fake  # type: ignore[assignment]
    asyncio.run(plain.fill(entry(3)))
    assert plain_fake.sent[0][7] == 300


# -- show-code through the read model


class FakeReadModel:
    read_model = True
    fresh_s = 30
    stale_s = 300

    def __init__(self, answer: ReadModelAnswer | None = None, fail: bool = False) -> None:
        self.answer = answer
        self.fail = fail
        self.fills: list[CodeEntry] = []
        self.published: list[CodeEntry] = []
        self.publish_fails = 0  # how many publishes fail before one succeeds

    async def read(self, pid: int, deadline: float | None = None) -> ReadModelAnswer:
        if self.fail:
            raise Unavailable("redis down")
        assert self.answer is not None
        return self.answer

    async def fill(self, e: CodeEntry, deadline: float | None = None) -> bool:
        self.fills.append(e)
        return True

    async def publish(self, entries: list[CodeEntry], timeout_s: float | None) -> None:
        if self.publish_fails:
            self.publish_fails -= 1
            raise Unavailable("redis down")
        self.published.extend(entries)


def service(cache: Any, db_entry: CodeEntry | None = None, db_fails: bool = False) -> Any:
    svc = Service(
        load("hardened"),
        "postgresql://x@127.0.0.1:1/x",
        Endpoint("127.0.0.1", 1),
        "app-t",
        Path("/nonexistent"),
        KEY,
    )
    svc.cache = cache
    svc.db_calls = []

    async def load_code(pid: int, deadline: float | None, now: float) -> Any:
        svc.db_calls.append(pid)
        if db_fails:
            raise Unavailable("database down")
        return db_entry, None

    svc._load_code = load_code
    return svc


def show(svc: Service, pid: int) -> tuple[int, Any]:
    return asyncio.run(svc.show_code(pid, None))


def test_hit_is_served_without_the_database_whatever_its_age() -> None:
    old = entry(5, "yellow", cached_at=time.time() - 86_400)  # far past cache_stale_s
    svc = service(FakeReadModel(ReadModelAnswer(old, True)), db_fails=True)
    status, body = show(svc, 5)
    assert status == 200 and body["colour"] == "yellow"
    assert body["source"] == "read-model" and body["degraded"] is False
    assert body["status_asof"] == "2022-01-04T00:00:00Z"  # when the colour was computed
    assert verify(body["token"], KEY, time.time()).status == "valid"
    assert svc.db_calls == []


def test_miss_in_a_complete_model_is_an_unknown_person_without_the_database() -> None:
    svc = service(FakeReadModel(ReadModelAnswer(None, True)), db_fails=True)
    status, body = show(svc, 100_001)
    assert status == 404 and "unknown person_id" in body["error"]
    assert svc.db_calls == []


def test_miss_in_an_incomplete_model_asks_the_database_and_fills() -> None:
    model = FakeReadModel(ReadModelAnswer(None, False))
    svc = service(model, db_entry=entry(5, "red", 3))
    status, body = show(svc, 5)
    assert (status, body["colour"], body["source"]) == (200, "red", "database")
    assert svc.db_calls == [5] and [e.person_id for e in model.fills] == [5]


def test_miss_in_an_incomplete_model_for_an_unknown_person_is_404_from_the_database() -> None:
    svc = service(FakeReadModel(ReadModelAnswer(None, False)), db_entry=None)
    assert show(svc, 5)[0] == 404 and svc.db_calls == [5]


def test_redis_down_falls_back_to_the_database_without_filling() -> None:
    model = FakeReadModel(fail=True)
    svc = service(model, db_entry=entry(5))
    status, body = show(svc, 5)
    assert (status, body["source"]) == (200, "database") and model.fills == []


def test_redis_and_database_down_is_503() -> None:
    svc = service(FakeReadModel(fail=True), db_fails=True)
    with pytest.raises(Unavailable):
        show(svc, 5)


# -- ingest: a failed publish is repaired from the database


def row(pid: int, colour: str, version: int) -> dict[str, Any]:
    return {
        "person_id": pid,
        "version": version,
        "colour": colour,
        "status_asof": datetime(2022, 1, 4, tzinfo=UTC),
        "last_test_at": None,
        "last_result": None,
    }


def test_people_whose_publish_failed_are_republished_from_the_database() -> None:
    body = (
        b'{"results": [{"sample_id": "s1", "person_id": 5, "result": "positive",'
        b' "at": "2022-01-04T09:00:00Z"}]}'
    )

    async def main() -> None:
        model = FakeReadModel()
        model.publish_fails = 2  # the ingest's own publish, then the first republish
        svc = service(model)
        svc.republish_every_s = 0.001
        reads: list[Any] = []

        async def run(fn: Any, deadline: Any = None, **kw: Any) -> Any:
            reads.append(fn)
            if len(reads) == 1:
                return 1, [row(5, "red", 8)]  # the ingest transaction
            return [row(5, "red", 8)]  # republish reads the current row

        svc.db.run = run
        with pytest.raises(Unavailable, match="retry the same batch"):
            await svc.ingest(body)
        assert svc._unpublished == {5}
        await asyncio.wait_for(svc._republish_task, 2)
        assert [(e.person_id, e.colour, e.version) for e in model.published] == [(5, "red", 8)]
        assert svc._unpublished == set()
        assert len(reads) == 3  # ingest, failed republish, successful republish

    asyncio.run(main())


# -- the seeder's bulk load uses the app's encoding


def test_bulk_load_values_match_what_the_app_caches() -> None:
    from reference_system.seed import read_model_values

    asof = datetime(2022, 1, 3, 21, 0, 0, 500_000, tzinfo=UTC)
    rows = [
        (7, 3, "red", int(asof.timestamp()), int(asof.timestamp()), "positive"),
        (8, 0, "green", 1641254400, None, ""),
    ]

    class Cur:
        def execute(self, sql: str) -> None:
            assert "FROM people" in sql

        def fetchall(self) -> list[tuple[Any, ...]]:
            return rows

    flat = read_model_values(Cur(), 1000.5)  # type: ignore[arg-type]
    assert flat[0::2] == ["code:7", "code:8"]
    app_row = {
        "version": 3,
        "colour": "red",
        "status_asof": asof,
        "last_test_at": asof,
        "last_result": "positive",
    }
    assert flat[1] == entry_from_row(7, app_row, 1000.5).encode().decode()
    assert flat[3] == encode_fields(
        8, 0, "green", iso(datetime.fromtimestamp(1641254400, UTC)), 1641254400, "", "", 1000.5
    )
    assert CodeEntry.decode(8, flat[3].encode()).last_test_at == ""
