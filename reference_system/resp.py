"""RESP: a minimal pipelining Redis client on one asyncio connection per worker.

Every command is written at once and its reply matched in FIFO order (hiredis parses), so
concurrent requests share one socket without a pool; a command that times out simply
abandons its slot (the late reply is discarded). The connection is opened lazily,
re-opened after it breaks, and aborted when replies are owed but nothing has arrived for
``stall_s`` (a blackholed link), so a dead Redis costs each caller at most its own timeout.

A link that silently *drops* bytes (e.g. a Toxiproxy ``timeout`` toxic) and then recovers
leaves replies shifted against requests; RESP cannot detect that by itself, so callers
check that replies belong to their request (see cache.py) and call :meth:`Redis.reset`.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

import hiredis


class RedisError(Exception):
    """Redis could not be reached, broke the connection, or answered with an error."""


class ReplyError(RedisError):
    """Redis answered with an error reply (e.g. NOSCRIPT)."""


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = hiredis.Reader()
        self.waiters: deque[tuple[asyncio.Future[Any], float]] = deque()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.last_rx = time.monotonic()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self.last_rx = time.monotonic()
        self.reader.feed(data)
        waiters = self.waiters
        while True:
            try:
                reply = self.reader.gets()
            except hiredis.ProtocolError as exc:
                self.abort(RedisError(f"redis protocol error: {exc}"))
                return
            if reply is False:
                return
            if not waiters:
                self.abort(RedisError("redis sent a reply nobody asked for"))
                return
            fut, _ = waiters.popleft()
            if fut.done():
                continue
            if isinstance(reply, hiredis.ReplyError):
                fut.set_exception(ReplyError(str(reply)))
            else:
                fut.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        err = RedisError(f"redis connection lost: {exc or 'closed by server'}")
        while self.waiters:
            fut, _ = self.waiters.popleft()
            if not fut.done():
                fut.set_exception(err)

    def send(self, payload: bytes, count: int) -> list[asyncio.Future[Any]]:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        futs = [loop.create_future() for _ in range(count)]
        self.waiters.extend((f, now) for f in futs)
        self.transport.write(payload)
        return futs

    def stalled(self, stall_s: float) -> bool:
        """Replies are owed (even to callers who gave up) and nothing arrived for stall_s."""
        if not self.waiters:
            return False
        now = time.monotonic()
        return now - self.waiters[0][1] > stall_s and now - self.last_rx > stall_s

    def abort(self, err: RedisError) -> None:
        if self.transport is not None:
            self.transport.abort()
        self.closed = True
        while self.waiters:
            fut, _ = self.waiters.popleft()
            if not fut.done():
                fut.set_exception(err)


class Redis:
    """One lazily (re)connected, pipelined connection to a Redis server."""

    def __init__(
        self,
        host: str,
        port: int,
        connect_timeout_s: float | None = 1.0,
        stall_s: float = 1.0,
        password: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.password = password  # sent with AUTH first on every new connection
        self.connect_timeout_s = connect_timeout_s
        self.stall_s = stall_s
        self._proto: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None

    async def _connection(self) -> _Protocol:
        proto = self._proto
        if proto is not None and not proto.closed:
            return proto
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._connect())
        fut = self._connecting
        try:
            return await asyncio.shield(fut)
        finally:
            if fut.done() and self._connecting is fut:
                self._connecting = None

    async def _connect(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                _, proto = await loop.create_connection(_Protocol, self.host, self.port)
        except (OSError, TimeoutError) as exc:
            raise RedisError(
                f"cannot connect to redis {self.host}:{self.port}: {type(exc).__name__} {exc}"
            ) from None
        if self.password is not None:
            try:
                async with asyncio.timeout(self.connect_timeout_s):
                    command: Any = ("AUTH", self.password)  # the stub wants a 1-tuple
                    (auth,) = proto.send(hiredis.pack_command(command), 1)
                    await auth
            except (TimeoutError, RedisError) as exc:
                proto.abort(RedisError("AUTH failed"))
                raise RedisError(
                    f"redis {self.host}:{self.port} did not take AUTH: {type(exc).__name__} {exc}"
                ) from None
        self._proto = proto
        return proto

    async def execute(self, *args: Any) -> Any:
        """Send one command; return its reply (raise RedisError / ReplyError)."""
        proto = self._proto
        if proto is None or proto.closed:
            proto = await self._connection()
        (fut,) = proto.send(hiredis.pack_command(args), 1)
        try:
            return await fut
        except asyncio.CancelledError:
            if proto.stalled(self.stall_s):
                proto.abort(RedisError("redis stalled: replies overdue"))
            raise

    async def pipeline(self, commands: list[tuple[Any, ...]]) -> list[Any]:
        """Send several commands in one write; return their replies (ReplyError in place)."""
        proto = await self._connection()
        payload = b"".join(hiredis.pack_command(c) for c in commands)
        futs = proto.send(payload, len(commands))
        try:
            await asyncio.gather(*futs, return_exceptions=True)
        except asyncio.CancelledError:
            if proto.stalled(self.stall_s):
                proto.abort(RedisError("redis stalled: replies overdue"))
            raise
        out: list[Any] = []
        for f in futs:
            exc = f.exception()
            if exc is not None and not isinstance(exc, ReplyError):
                raise exc
            out.append(exc if exc is not None else f.result())
        return out

    def reset(self, reason: str) -> None:
        """Drop the connection (e.g. a reply did not match its request); reconnect later."""
        if self._proto is not None:
            self._proto.abort(RedisError(reason))
        self._proto = None

    async def close(self) -> None:
        if self._proto is not None and self._proto.transport is not None:
            self._proto.transport.close()
        self._proto = None
