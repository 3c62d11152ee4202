"""A lean HTTP/1.1 transport for the load generator: asyncio `Protocol` + `httptools`.

One keep-alive pool per target (`http://host:port`), one request per connection at a
time (no pipelining), so it opens as many connections as requests are in flight (the
runner's `max_in_flight` bounds them). About three times less CPU per request than a
general-purpose client, CPU the system under test shares on a small machine.

    async with Transport(["http://127.0.0.1:8080"], headers={b"retry-after"}) as t:
        answer = await t.exchange(0, b"GET /healthz HTTP/1.1\\r\\n", None, timeout=3.0)
        answer.status, answer.headers.get(b"retry-after"), answer.body

`exchange` raises `NotSent` when nothing reached the server (refused, connect timeout)
and `Lost` when the request went out but no usable answer came back (timeout, reset,
a response that does not parse).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import cast

import httptools

__all__ = ["Answer", "Lost", "NotSent", "Transport"]


class NotSent(Exception):
    """The request never reached the server: a fail, even for a write."""


class Lost(Exception):
    """The request was sent but no usable answer came back: unknown for a write."""

    def __init__(self, error: str, status: int | None = None) -> None:
        super().__init__(error)
        self.error, self.status = error, status


@dataclass(frozen=True, slots=True)
class Answer:
    """A response: its status, the headers asked for (lower-case names) and the body."""

    status: int
    headers: dict[bytes, bytes]
    body: bytes


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; at most one request outstanding."""

    __slots__ = ("body", "closed", "headers", "parser", "transport", "waiter", "wanted")

    def __init__(self, wanted: frozenset[bytes]) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[Answer] | None = None
        self.body: list[bytes] = []
        self.headers: dict[bytes, bytes] = {}
        self.wanted = wanted
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but behave as one
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as e:
            self._fail(Lost(f"bad_response: {e}"))
            self.abort()

    def on_header(self, name: bytes, value: bytes) -> None:
        lower = name.lower()
        if lower in self.wanted:
            self.headers[lower] = value

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        answer = Answer(self.parser.get_status_code(), self.headers, b"".join(self.body))
        self.body, self.headers = [], {}
        if not self.parser.should_keep_alive():
            self.abort()
        w, self.waiter = self.waiter, None
        if w is not None and not w.done():
            w.set_result(answer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if exc is None:
            self._fail(Lost("disconnected"))
        else:
            self._fail(Lost(f"reset: {type(exc).__name__}"))

    def _fail(self, e: Exception) -> None:
        w, self.waiter = self.waiter, None
        if w is not None and not w.done():
            w.set_exception(e)

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


def _expire(waiter: asyncio.Future[Answer]) -> None:
    if not waiter.done():
        waiter.set_exception(Lost("timeout"))


class Transport:
    """Keep-alive pools to `targets`; `exchange` sends one request and awaits its answer.

    `headers`: response header names (lower-case bytes) to return in `Answer.headers`.
    """

    def __init__(self, targets: Sequence[str], *, headers: Iterable[bytes] = ()) -> None:
        if not targets:
            raise ValueError("Transport needs at least one target base URL")
        self.targets = tuple(t.rstrip("/") for t in targets)
        self.wanted = frozenset(h.lower() for h in headers)
        self._addrs: list[tuple[str, int]] = []
        self.hosts: list[bytes] = []
        for t in self.targets:
            url = httptools.parse_url(t.encode())
            if url.schema != b"http" or not url.host:
                raise ValueError(f"target {t!r} is not an http://host:port URL")
            port = url.port or 80
            self._addrs.append((url.host.decode(), port))
            self.hosts.append(url.host + b":" + str(port).encode())
        self._idle: list[list[_Connection]] = [[] for _ in self.targets]
        self._all: set[_Connection] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def __aenter__(self) -> Transport:
        self._loop = asyncio.get_running_loop()
        return self

    async def __aexit__(self, *exc: object) -> None:
        for c in list(self._all):
            c.abort()
        self._all.clear()
        for idle in self._idle:
            idle.clear()
        self._loop = None

    async def _connect(self, target: int, timeout: float) -> _Connection:
        assert self._loop is not None
        host, port = self._addrs[target]
        wanted = self.wanted
        try:
            async with asyncio.timeout(timeout):
                _, conn = await self._loop.create_connection(
                    lambda: _Connection(wanted), host, port
                )
        except TimeoutError as e:
            raise NotSent("connect_timeout") from e
        except OSError as e:
            raise NotSent(f"connect: {e.strerror or e}") from e
        self._all.add(conn)
        return conn

    async def exchange(
        self, target: int, head: bytes, body: bytes | None, timeout: float
    ) -> Answer:
        """Send `head` (the request line and headers, each ending in CRLF, without Host,
        Content-Length or the final blank line) and `body`; await the answer."""
        loop = self._loop
        if loop is None:
            raise RuntimeError("Transport is not open: use `async with Transport(...)`")
        deadline = loop.time() + timeout
        idle = self._idle[target]
        conn = None
        while idle:
            conn = idle.pop()
            if not conn.closed:
                break
            self._all.discard(conn)
            conn = None
        if conn is None:
            conn = await self._connect(target, timeout)
        host = b"Host: " + self.hosts[target] + b"\r\n"
        if body is None:
            request = head + host + b"\r\n"
        else:
            request = (
                head + host + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
            )
        waiter: asyncio.Future[Answer] = loop.create_future()
        conn.waiter = waiter
        assert conn.transport is not None
        conn.transport.write(request)
        timer = loop.call_at(deadline, _expire, waiter)
        try:
            answer = await waiter
        except BaseException:  # timeout, reset, cancelled: the connection is spent
            conn.waiter = None
            conn.abort()
            self._all.discard(conn)
            raise
        finally:
            timer.cancel()
        if conn.closed:
            self._all.discard(conn)
        else:
            idle.append(conn)
        return answer
