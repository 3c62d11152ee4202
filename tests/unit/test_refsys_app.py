"""The app with fake dependencies: read path (cache, stale-on-error), ingest ordering,
admission and error answers at the ASGI boundary."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from reference_system.addresses import Endpoint
from reference_system.app import Service
from reference_system.cache import CodeEntry
from reference_system.database import Unavailable
from reference_system.settings import load
from reference_system.tokens import verify

KEY = b"unit-key"


def service(profile: str = "hardened", overrides: str = "{}") -> Service:
    return Service(
        load(profile, overrides),
        "postgresql://x@127.0.0.1:1/x",
        Endpoint("127.0.0.1", 1),
        "app-t",
        Path("/nonexistent"),
        KEY,
    )


def entry(pid: int, colour: str, cached_at: float, version: int = 1) -> CodeEntry:
    return CodeEntry(pid, version, colour, "2022-01-04T00:00:00Z", 1641254400, "", "", cached_at)


class FakeCache:
    """The code cache as used without the read model (``read_model`` off)."""

    read_model = False

    def __init__(self, stored: CodeEntry | None = None, fail: bool = False) -> None:
        self.stored = stored
        self.fail = fail
        self.fills: list[CodeEntry] = []
        self.published: list[CodeEntry] = []
        self.fresh_s = 30
        self.stale_s = 300
        self.publish_fails = False

    async def get(self, pid: int, deadline: float | None = None) -> CodeEntry | None:
        if self.fail:
            raise Unavailable("cache down")
        return self.stored

    async def fill(self, e: CodeEntry, deadline: float | None = None) -> bool:
        self.fills.append(e)
        return True

    async def publish(self, entries: list[CodeEntry], timeout_s: float | None) -> None:
        if self.publish_fails:
            raise Unavailable("cache down")
        self.published.extend(entries)


def with_db(svc: Service, result: Any = None, fail: bool = False) -> list[int]:
    calls: list[int] = []

    async def load_code(pid: int, deadline: float | None, now: float) -> Any:
        calls.append(pid)
        if fail:
            raise Unavailable("database timed out")
        return result, None

    svc._load_code = load_code  # type: ignore[method-assign]
    return calls


def show(svc: Service, pid: int) -> tuple[int, Any]:
    return asyncio.run(svc.show_code(pid, None))


def test_fresh_cache_hit_skips_the_database_and_signs_a_token() -> None:
    svc = service()
    svc.cache = FakeCache(entry(5, "yellow", time.time()))  # type: ignore[assignment]
    calls = with_db(svc)
    status, body = show(svc, 5)
    assert status == 200 and body["colour"] == "yellow" and body["source"] == "cache"
    assert body["degraded"] is False and calls == []
    assert verify(body["token"], KEY, time.time()).status == "valid"


def test_miss_reads_the_database_and_fills() -> None:
    svc = service()
    cache = FakeCache(None)
    svc.cache = cache  # type: ignore[assignment]
    with_db(svc, entry(5, "green", time.time()))
    status, body = show(svc, 5)
    assert (status, body["source"]) == (200, "database")
    assert [e.person_id for e in cache.fills] == [5]


def test_stale_entry_is_served_degraded_only_when_the_database_fails() -> None:
    svc = service()
    svc.cache = FakeCache(entry(5, "red", time.time() - 60))  # type: ignore[assignment]
    with_db(svc, fail=True)
    status, body = show(svc, 5)
    assert status == 200 and body["degraded"] is True and body["colour"] == "red"


def test_too_old_entries_are_never_served() -> None:
    svc = service()
    svc.cache = FakeCache(entry(5, "green", time.time() - 301))  # type: ignore[assignment]
    with_db(svc, fail=True)
    with pytest.raises(Unavailable):
        show(svc, 5)


def test_stale_on_error_off() -> None:
    svc = service(overrides='{"stale_on_error": false}')
    svc.cache = FakeCache(entry(5, "green", time.time() - 60))  # type: ignore[assignment]
    with_db(svc, fail=True)
    with pytest.raises(Unavailable):
        show(svc, 5)


def test_cache_down_falls_back_to_the_database_without_filling() -> None:
    svc = service()
    cache = FakeCache(fail=True)
    svc.cache = cache  # type: ignore[assignment]
    with_db(svc, entry(5, "green", time.time()))
    status, body = show(svc, 5)
    assert status == 200 and body["source"] == "database" and cache.fills == []


def test_unknown_person_is_404() -> None:
    svc = service("naive")
    with_db(svc, None)
    assert show(svc, 9)[0] == 404


def rows_for(pid: int, colour: str, version: int) -> dict[str, Any]:
    return {
        "person_id": pid,
        "version": version,
        "colour": colour,
        "status_asof": datetime(2022, 1, 4, tzinfo=UTC),
        "last_test_at": None,
        "last_result": None,
    }


def ingest_body(pid: int) -> bytes:
    return orjson.dumps(
        {
            "results": [
                {
                    "sample_id": "s1",
                    "person_id": pid,
                    "result": "positive",
                    "at": "2022-01-04T09:00:00Z",
                }
            ]
        }
    )


def test_ingest_publishes_the_committed_versions_before_acknowledging() -> None:
    svc = service()
    cache = FakeCache()
    svc.cache = cache  # type: ignore[assignment]

    async def run(
        fn: Any, deadline: Any = None, use_breaker: bool = True, timeout_s: Any = None
    ) -> Any:
        return 1, [rows_for(5, "red", 8)]

    svc.db.run = run  # type: ignore[method-assign]
    status, body = asyncio.run(svc.ingest(ingest_body(5)))
    assert status == 200 and body["new"] == 1
    assert [(e.person_id, e.colour, e.version) for e in cache.published] == [(5, "red", 8)]


def test_ingest_is_not_acknowledged_if_the_cache_cannot_be_updated() -> None:
    svc = service()
    cache = FakeCache()
    cache.publish_fails = True
    svc.cache = cache  # type: ignore[assignment]

    async def run(
        fn: Any, deadline: Any = None, use_breaker: bool = True, timeout_s: Any = None
    ) -> Any:
        return 1, [rows_for(5, "red", 8)]

    svc.db.run = run  # type: ignore[method-assign]
    with pytest.raises(Unavailable, match="retry the same batch"):
        asyncio.run(svc.ingest(ingest_body(5)))


# -- the ASGI boundary


async def call(
    svc: Service,
    method: str,
    path: str,
    body: bytes = b"",
    headers: list[tuple[bytes, bytes]] | None = None,
) -> tuple[int, dict, Any]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(msg: dict[str, Any]) -> None:
        sent.append(msg)

    scope = {"type": "http", "method": method, "path": path, "headers": headers or []}
    await svc(scope, receive, send)
    start, payload = sent[0], sent[1]
    hdrs = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], hdrs, orjson.loads(payload["body"])


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/v1/scans", b"{", 400),
        ("POST", "/v1/results", b'{"results": 5}', 400),
        ("POST", "/v1/tokens/verify", b'{"token": "x", "y": 1}', 400),
        ("GET", "/v1/code/abc", b"", 400),
        ("DELETE", "/v1/code/1", b"", 405),
        ("GET", "/v1/nope", b"", 404),
        ("GET", "/elsewhere", b"", 404),
    ],
)
def test_bad_requests_get_json_4xx(method: str, path: str, body: bytes, status: int) -> None:
    got, hdrs, payload = asyncio.run(call(service(), method, path, body))
    assert got == status and payload["error"]
    assert hdrs["content-type"] == "application/json"


def test_oversized_body_is_413() -> None:
    svc = service(overrides='{"max_body_bytes": 1024}')
    got, _, payload = asyncio.run(call(svc, "POST", "/v1/results", b" " * 2000))
    assert got == 413 and "1024" in payload["error"]


def test_unavailable_dependency_is_503_with_retry_after() -> None:
    svc = service()
    svc.cache = FakeCache(fail=True)  # type: ignore[assignment]
    with_db(svc, fail=True)
    got, hdrs, payload = asyncio.run(call(svc, "GET", "/v1/code/5"))
    assert got == 503 and hdrs["retry-after"] == "1" and "database" in payload["error"]
    assert "x-refusal" not in hdrs  # not shed load: the gateway may try another worker


def test_request_that_waited_past_its_deadline_is_dropped() -> None:
    svc = service()
    calls = with_db(svc, entry(5, "green", time.time()))
    old = f"t={time.time() - 5:.3f}".encode()
    got, hdrs, _ = asyncio.run(call(svc, "GET", "/v1/code/5", headers=[(b"x-request-start", old)]))
    assert got == 503 and hdrs["retry-after"] == "1" and calls == []
    assert hdrs["x-refusal"] == "busy"


def test_admission_rejects_fast_when_full() -> None:
    async def main() -> None:
        svc = service(overrides='{"max_inflight": 1, "max_queue": 0}')
        svc.cache = None
        gate = asyncio.Event()

        async def slow(pid: int, deadline: float | None, now: float) -> Any:
            await gate.wait()
            return entry(pid, "green", now), None

        svc._load_code = slow  # type: ignore[method-assign]
        first = asyncio.create_task(call(svc, "GET", "/v1/code/5"))
        await asyncio.sleep(0.01)
        t0 = time.monotonic()
        got, hdrs, payload = await call(svc, "GET", "/v1/code/6")
        assert got == 503 and hdrs["retry-after"] == "1" and "busy" in payload["error"]
        assert hdrs["x-refusal"] == "busy"
        assert time.monotonic() - t0 < 0.05
        gate.set()
        assert (await first)[0] == 200

    asyncio.run(main())


def test_naive_has_no_admission() -> None:
    assert service("naive").admission is None and service("naive").cache is None
