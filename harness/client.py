"""The client: one operation against the system over HTTP, completed as ok, fail or info.

The load runner only sees the `Client` protocol (`invoke(...) -> Result`), so it can be
tested with a fake. Two real ones share the operations and the outcome rules and differ
only in transport: `HttpClient` (aiohttp, one shared keep-alive connector) and
`FastClient` (a small HTTP/1.1 client on an asyncio `Protocol` with `httptools`, a
keep-alive pool per gateway, one request per connection at a time; about three times
less CPU per request, see `bench/bench_load.py`).

How outcomes are classified (Jepsen's rules; `info` means "may or may not have
been applied"):

| what happened | read (show_code, lookup) | write (scan, ingest) |
|---|---|---|
| 2xx | ok | ok |
| 4xx, 429, 503 (a rejection) | fail | fail |
| 500, 502, 504 (the upstream may have acted) | fail | info |
| could not connect (refused, connect timeout, pool wait timeout) | fail | fail |
| timeout or connection lost after connecting | fail | info |

A read that timed out changed nothing, so it is a `fail` with `error="timeout"`; a
write that timed out may have been applied, so it is `info`. Rejections (503, 429,
other 4xx) are taken at their word, as Jepsen does for explicit errors; a 500, 502 or
504 on a write may come after the app applied it, so it is `info`.

A scan needs the person's token, as a gate scans the code a person shows: the client
keeps the tokens of codes it has shown; when it has none for the person it shows the
code first, inside the same operation (and its latency).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import aiohttp
import httptools
import orjson

from harness.workload import Ingest, Lookup, OpArgs, Scan, ShowCode

__all__ = [
    "UNKNOWN_STATUSES",
    "WRITES",
    "Client",
    "FastClient",
    "HttpClient",
    "Result",
    "classify_status",
]

WRITES = frozenset({"scan", "ingest"})


@dataclass(frozen=True, slots=True)
class Result:
    """How one attempt ended, as the client saw it."""

    outcome: Literal["ok", "fail", "info"]
    status: int | None = None
    error: str | None = None
    retry_after: float | None = None
    value: Any = None


class Client(Protocol):
    """One operation against target `target` (an index into the gateway list)."""

    async def invoke(
        self, target: int, op: str, args: OpArgs, client_id: str, timeout: float
    ) -> Result: ...


UNKNOWN_STATUSES = frozenset({500, 502, 504})


def classify_status(status: int, write: bool) -> Literal["ok", "fail", "info"]:
    """Outcome of an HTTP answer (see the table in the module docstring)."""
    if 200 <= status < 300:
        return "ok"
    return "info" if write and status in UNKNOWN_STATUSES else "fail"


def _retry_after(v: str | bytes | None) -> float | None:
    if v is None:
        return None
    try:
        return max(0.0, float(v))
    except ValueError:
        return None  # an HTTP date: not used by the reference system


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


class _NotSent(Exception):
    """The request never reached the server: a fail, even for a write."""


class _Lost(Exception):
    """The request was sent but no usable answer came back: info for a write."""

    def __init__(self, error: str, status: int | None = None) -> None:
        super().__init__(error)
        self.error, self.status = error, status


_Answer = tuple[int, "str | bytes | None", bytes]  # status, Retry-After, body


class _Operations:
    """The four operations and the outcome rules, over a transport's `_exchange`."""

    def __init__(self, targets: Sequence[str], keep_values: bool, wall_clock: Any) -> None:
        if not targets:
            raise ValueError(f"{type(self).__name__} needs at least one target base URL")
        self.targets = tuple(t.rstrip("/") for t in targets)
        self.keep_values = keep_values
        self.tokens: dict[int, str] = {}
        self._wall = wall_clock
        # When each write happened, by its idempotency key: a retry resends the same body
        # (a new `at` would make the server see a different scan under the same id).
        self._written_at: dict[str, str] = {}

    async def _exchange(
        self,
        target: int,
        method: str,
        path: str,
        client_id: str,
        body: bytes | None,
        timeout: float,
    ) -> _Answer:
        raise NotImplementedError

    async def invoke(
        self, target: int, op: str, args: OpArgs, client_id: str, timeout: float
    ) -> Result:
        write = op in WRITES
        try:
            if isinstance(args, ShowCode):
                return await self._read(target, args.person_id, client_id, timeout, show=True)
            if isinstance(args, Lookup):
                return await self._read(target, args.person_id, client_id, timeout, show=False)
            if isinstance(args, Scan):
                deadline = time.monotonic() + timeout
                token = self.tokens.get(args.person_id)
                if token is None:
                    shown = await self._read(target, args.person_id, client_id, timeout, True)
                    if shown.outcome != "ok":
                        return shown  # nothing was written yet: a fail is a fail
                    token = self.tokens.get(args.person_id, "")
                    timeout = max(0.001, deadline - time.monotonic())
                body = {
                    "scan_id": args.scan_id,
                    "person_id": args.person_id,
                    "venue_id": args.venue_id,
                    "token": token,
                    "at": self._at(args.scan_id),
                }
                return await self._write(target, "/v1/scans", client_id, body, timeout)
            if isinstance(args, Ingest):
                at = self._at(args.results[0].sample_id if args.results else "")
                body = {
                    "results": [
                        {
                            "sample_id": r.sample_id,
                            "person_id": r.person_id,
                            "result": r.result,
                            "at": at,
                        }
                        for r in args.results
                    ]
                }
                return await self._write(target, "/v1/results", client_id, body, timeout)
            raise ValueError(f"unknown operation {op!r} with args {args!r}")
        except _NotSent as e:
            return Result("fail", error=str(e))
        except _Lost as e:
            return Result("info" if write else "fail", status=e.status, error=e.error)

    def _at(self, key: str) -> str:
        """The time of the write named `key`: now on its first attempt, the same after."""
        at = self._written_at.get(key)
        if at is None:
            at = self._written_at[key] = _iso(self._wall())
        return at

    async def _read(
        self, target: int, person_id: int, client_id: str, timeout: float, show: bool
    ) -> Result:
        path = f"/v1/code/{person_id}" if show else f"/v1/results/{person_id}"
        status, retry_after, data = await self._exchange(
            target, "GET", path, client_id, None, timeout
        )
        if not 200 <= status < 300:
            return Result("fail", status, f"http {status}", _retry_after(retry_after))
        value = None
        if self.keep_values or show:
            value = _json(data)
            if show and isinstance(value, dict):
                token = value.pop("token", None)
                if isinstance(token, str):
                    self.tokens[person_id] = token
        return Result("ok", status, None, None, value if self.keep_values else None)

    async def _write(
        self, target: int, path: str, client_id: str, body: dict[str, Any], timeout: float
    ) -> Result:
        status, retry_after, data = await self._exchange(
            target, "POST", path, client_id, orjson.dumps(body), timeout
        )
        if not 200 <= status < 300:
            outcome = classify_status(status, write=True)
            return Result(outcome, status, f"http {status}", _retry_after(retry_after))
        return Result("ok", status, None, None, _json(data) if self.keep_values else None)


class HttpClient(_Operations):
    """The aiohttp client: one shared keep-alive connector for all gateways.

    Use as an async context manager inside the running loop::

        async with HttpClient(["http://127.0.0.1:8080"]) as client:
            result = await client.invoke(0, "show_code", ShowCode(1), "p1", timeout=3.0)

    `limit` caps open connections (0: no cap). `keep_values` keeps response bodies of
    successful reads in `Result.value` (tokens are dropped from it).
    """

    def __init__(
        self,
        targets: Sequence[str],
        *,
        limit: int = 0,
        keep_values: bool = True,
        wall_clock: Any = time.time,
    ) -> None:
        super().__init__(targets, keep_values, wall_clock)
        self.limit = limit
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    async def __aenter__(self) -> HttpClient:
        connector = aiohttp.TCPConnector(
            limit=self.limit,
            limit_per_host=0,
            ttl_dns_cache=None,
            keepalive_timeout=30.0,
            enable_cleanup_closed=False,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            skip_auto_headers=("User-Agent", "Accept-Encoding"),
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _timeout(self, seconds: float) -> aiohttp.ClientTimeout:
        t = self._timeouts.get(seconds)
        if t is None:
            t = self._timeouts[seconds] = aiohttp.ClientTimeout(total=seconds)
        return t

    async def _exchange(
        self,
        target: int,
        method: str,
        path: str,
        client_id: str,
        body: bytes | None,
        timeout: float,
    ) -> _Answer:
        if self._session is None:
            raise RuntimeError("HttpClient is not open: use `async with HttpClient(...)`")
        headers = {"X-Client-Id": client_id}
        if body is not None:
            headers["Content-Type"] = "application/json"
        try:
            async with self._session.request(
                method,
                self.targets[target] + path,
                data=body,
                headers=headers,
                timeout=self._timeout(timeout),
            ) as r:
                data = await r.read()
                return r.status, r.headers.get("Retry-After"), data
        except aiohttp.ClientConnectorError as e:  # refused, unreachable: nothing was sent
            raise _NotSent(f"connect: {e.os_error.strerror or e}") from e
        except aiohttp.ConnectionTimeoutError as e:  # connect or pool wait timed out
            raise _NotSent("connect_timeout") from e
        except (TimeoutError, aiohttp.ServerTimeoutError) as e:
            raise _Lost("timeout") from e
        except aiohttp.ServerDisconnectedError as e:
            raise _Lost("disconnected") from e
        except (aiohttp.ClientOSError, aiohttp.ClientPayloadError, ConnectionError) as e:
            raise _Lost(f"reset: {type(e).__name__}") from e
        except aiohttp.ClientResponseError as e:
            raise _Lost(f"bad_response: {e}", e.status) from e


# --------------------------------------------------------------------------- FastClient


class _Connection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection; at most one request outstanding."""

    __slots__ = ("body", "closed", "parser", "retry_after", "transport", "waiter")

    def __init__(self) -> None:
        self.parser = httptools.HttpResponseParser(self)
        self.transport: asyncio.Transport | None = None
        self.waiter: asyncio.Future[_Answer] | None = None
        self.body: list[bytes] = []
        self.retry_after: bytes | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as e:
            self._fail(_Lost(f"bad_response: {e}"))
            self.abort()

    def on_header(self, name: bytes, value: bytes) -> None:
        if len(name) == 11 and name.lower() == b"retry-after":
            self.retry_after = value

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        answer = (self.parser.get_status_code(), self.retry_after, b"".join(self.body))
        self.body, self.retry_after = [], None
        if not self.parser.should_keep_alive():
            self.abort()
        w, self.waiter = self.waiter, None
        if w is not None and not w.done():
            w.set_result(answer)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if exc is None:
            self._fail(_Lost("disconnected"))
        else:
            self._fail(_Lost(f"reset: {type(exc).__name__}"))

    def _fail(self, e: Exception) -> None:
        w, self.waiter = self.waiter, None
        if w is not None and not w.done():
            w.set_exception(e)

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


def _expire(waiter: asyncio.Future[_Answer]) -> None:
    if not waiter.done():
        waiter.set_exception(_Lost("timeout"))


class FastClient(_Operations):
    """A lean HTTP/1.1 client: asyncio `Protocol` + `httptools`, keep-alive pool per gateway.

    Same operations and outcome rules as `HttpClient`; one request per connection at a
    time (no pipelining), so it opens as many connections as requests are in flight
    (the runner's `max_in_flight` bounds them). Plain `http://host:port` targets only.

        async with FastClient(["http://127.0.0.1:8080"]) as client:
            result = await client.invoke(0, "show_code", ShowCode(1), "p1", timeout=3.0)
    """

    def __init__(
        self,
        targets: Sequence[str],
        *,
        keep_values: bool = True,
        wall_clock: Any = time.time,
    ) -> None:
        super().__init__(targets, keep_values, wall_clock)
        self._addrs: list[tuple[str, int]] = []
        self._hosts: list[bytes] = []
        for t in self.targets:
            url = httptools.parse_url(t.encode())
            if url.schema != b"http" or not url.host:
                raise ValueError(f"FastClient: target {t!r} is not an http://host:port URL")
            port = url.port or 80
            self._addrs.append((url.host.decode(), port))
            self._hosts.append(url.host + b":" + str(port).encode())
        self._idle: list[list[_Connection]] = [[] for _ in self.targets]
        self._all: set[_Connection] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    async def __aenter__(self) -> FastClient:
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
        try:
            async with asyncio.timeout(timeout):
                _, conn = await self._loop.create_connection(_Connection, host, port)
        except TimeoutError as e:
            raise _NotSent("connect_timeout") from e
        except OSError as e:
            raise _NotSent(f"connect: {e.strerror or e}") from e
        self._all.add(conn)
        return conn

    async def _exchange(
        self,
        target: int,
        method: str,
        path: str,
        client_id: str,
        body: bytes | None,
        timeout: float,
    ) -> _Answer:
        loop = self._loop
        if loop is None:
            raise RuntimeError("FastClient is not open: use `async with FastClient(...)`")
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
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: ".encode()
            + self._hosts[target]
            + f"\r\nX-Client-Id: {client_id}\r\n".encode()
        )
        if body is None:
            request = head + b"\r\n"
        else:
            request = (
                head
                + b"Content-Type: application/json\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )
        waiter: asyncio.Future[_Answer] = loop.create_future()
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


def _json(data: bytes) -> Any:
    if not data:
        return None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
