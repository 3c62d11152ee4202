"""Code cache: value round trip, and replies that do not belong to the request are refused."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reference_system.addresses import Endpoint
from reference_system.cache import CodeCache, CodeEntry
from reference_system.database import Unavailable


def entry(pid: int, colour: str = "green", version: int = 3) -> CodeEntry:
    return CodeEntry(
        pid,
        version,
        colour,
        "2022-01-04T00:00:00Z",
        1641254400,
        "2022-01-03T00:00:00Z",
        "negative",
        1000.5,
    )


class FakeClient:
    def __init__(self, replies: list[Any]) -> None:
        self.replies = replies
        self.resets: list[str] = []
        self.sent: list[tuple[Any, ...]] = []

    async def execute(self, *args: Any) -> Any:
        self.sent.append(args)
        return self.replies.pop(0)

    async def pipeline(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        self.sent.extend(commands)
        return self.replies.pop(0)

    def reset(self, reason: str) -> None:
        self.resets.append(reason)


def cache_with(replies: list[Any]) -> tuple[CodeCache, FakeClient]:
    cache = CodeCache(Endpoint("127.0.0.1", 1), 0.05, 30, 300)
    fake = FakeClient(replies)
    cache.client = fake  # type: ignore[assignment]
    return cache, fake


def test_round_trip() -> None:
    e = entry(42, "red", 9)
    assert CodeEntry.decode(42, e.encode()) == e


def test_another_persons_value_is_refused_and_the_connection_reset() -> None:
    cache, fake = cache_with([entry(7, "green").encode()])
    with pytest.raises(Unavailable, match="did not match"):
        asyncio.run(cache.get(8))
    assert fake.resets


def test_own_value_and_miss() -> None:
    cache, fake = cache_with([entry(8, "red").encode(), None])
    got = asyncio.run(cache.get(8))
    assert got is not None and got.colour == "red"
    assert asyncio.run(cache.get(9)) is None
    assert not fake.resets


def test_publish_requires_the_trailing_echo() -> None:
    cache, fake = cache_with([[b"sha", 1, 1, b"not-our-nonce"]])
    with pytest.raises(Unavailable):
        asyncio.run(cache.publish([entry(1), entry(2)], 1.0))
    assert fake.resets


def test_publish_ok_sends_floor_raising_writes() -> None:
    class Echoing(FakeClient):
        async def pipeline(self, commands: list[tuple[Any, ...]]) -> list[Any]:
            self.sent.extend(commands)
            return [b"sha"] + [1] * (len(commands) - 2) + [commands[-1][1]]

    cache = CodeCache(Endpoint("127.0.0.1", 1), 0.05, 30, 300)
    fake = Echoing([])
    cache.client = fake  # type: ignore[assignment]
    asyncio.run(cache.publish([entry(1, "red", 5)], 1.0))
    evals = [c for c in fake.sent if c[0] == "EVALSHA"]
    assert len(evals) == 1 and evals[0][-1] == "1" and evals[0][4] == "codev:1"


def test_fill_with_an_odd_reply_resets() -> None:
    cache, fake = cache_with([b"PONG"])
    with pytest.raises(Unavailable):
        asyncio.run(cache.fill(entry(1)))
    assert fake.resets


def test_breaker_skips_redis_after_failures() -> None:
    from reference_system.breaker import CircuitBreaker

    class Failing(FakeClient):
        async def execute(self, *args: Any) -> Any:
            self.sent.append(args)
            raise ConnectionError("down")

    cache = CodeCache(Endpoint("127.0.0.1", 1), 0.05, 30, 300, CircuitBreaker(2, 60))
    fake = Failing([])
    cache.client = fake  # type: ignore[assignment]
    for _ in range(5):
        with pytest.raises(Unavailable):
            asyncio.run(cache.get(1))
    assert len(fake.sent) == 2  # then the breaker answered without trying
