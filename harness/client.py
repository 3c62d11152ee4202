"""The client: one operation against the system over HTTP, completed as ok, fail or info.

The load runner only sees the `Client` protocol (`invoke(...) -> Result`), so it can be
tested with a fake; `HttpClient` is the real one (aiohttp, one shared keep-alive
connector for all gateways).

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

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

import aiohttp
import orjson

from harness.workload import Ingest, Lookup, OpArgs, Scan, ShowCode

__all__ = ["UNKNOWN_STATUSES", "WRITES", "Client", "HttpClient", "Result", "classify_status"]

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


def _retry_after(headers: Any) -> float | None:
    v = headers.get("Retry-After")
    if v is None:
        return None
    try:
        return max(0.0, float(v))
    except ValueError:
        return None  # an HTTP date: not used by the reference system


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


class HttpClient:
    """The real client: aiohttp with one shared keep-alive connector.

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
        if not targets:
            raise ValueError("HttpClient needs at least one target base URL")
        self.targets = tuple(t.rstrip("/") for t in targets)
        self.limit = limit
        self.keep_values = keep_values
        self.tokens: dict[int, str] = {}
        self._wall = wall_clock
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

    async def invoke(
        self, target: int, op: str, args: OpArgs, client_id: str, timeout: float
    ) -> Result:
        if self._session is None:
            raise RuntimeError("HttpClient is not open: use `async with HttpClient(...)`")
        base = self.targets[target]
        headers = {"X-Client-Id": client_id}
        write = op in WRITES
        deadline = time.monotonic() + timeout
        try:
            if isinstance(args, ShowCode):
                return await self._get(f"{base}/v1/code/{args.person_id}", headers, timeout, args)
            if isinstance(args, Lookup):
                return await self._get(f"{base}/v1/results/{args.person_id}", headers, timeout)
            if isinstance(args, Scan):
                token = self.tokens.get(args.person_id)
                if token is None:
                    shown = await self._get(
                        f"{base}/v1/code/{args.person_id}",
                        headers,
                        timeout,
                        ShowCode(args.person_id),
                    )
                    if shown.outcome != "ok":
                        return shown  # nothing was written yet: a fail is a fail
                    token = self.tokens.get(args.person_id, "")
                    timeout = max(0.001, deadline - time.monotonic())
                body = {
                    "scan_id": args.scan_id,
                    "person_id": args.person_id,
                    "venue_id": args.venue_id,
                    "token": token,
                    "at": _iso(self._wall()),
                }
                return await self._post(f"{base}/v1/scans", headers, body, timeout)
            if isinstance(args, Ingest):
                at = _iso(self._wall())
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
                return await self._post(f"{base}/v1/results", headers, body, timeout)
            raise ValueError(f"unknown operation {op!r} with args {args!r}")
        except aiohttp.ClientConnectorError as e:  # refused, unreachable: nothing was sent
            return Result("fail", error=f"connect: {e.os_error.strerror or e}")
        except aiohttp.ConnectionTimeoutError:  # connect or pool wait timed out: not sent
            return Result("fail", error="connect_timeout")
        except (TimeoutError, aiohttp.ServerTimeoutError):
            return Result("info" if write else "fail", error="timeout")
        except aiohttp.ServerDisconnectedError:
            return Result("info" if write else "fail", error="disconnected")
        except (aiohttp.ClientOSError, aiohttp.ClientPayloadError, ConnectionError) as e:
            return Result("info" if write else "fail", error=f"reset: {type(e).__name__}")
        except aiohttp.ClientResponseError as e:
            return Result("info" if write else "fail", status=e.status, error=f"bad_response: {e}")

    async def _get(
        self, url: str, headers: dict[str, str], timeout: float, show: ShowCode | None = None
    ) -> Result:
        assert self._session is not None
        async with self._session.get(url, headers=headers, timeout=self._timeout(timeout)) as r:
            data = await r.read()
            status = r.status
            if not 200 <= status < 300:
                return Result("fail", status, f"http {status}", _retry_after(r.headers))
        value = None
        if self.keep_values or show is not None:
            value = _json(data)
            if show is not None and isinstance(value, dict):
                token = value.pop("token", None)
                if isinstance(token, str):
                    self.tokens[show.person_id] = token
        return Result("ok", status, None, None, value if self.keep_values else None)

    async def _post(
        self, url: str, headers: dict[str, str], body: dict[str, Any], timeout: float
    ) -> Result:
        assert self._session is not None
        headers["Content-Type"] = "application/json"
        async with self._session.post(
            url, data=orjson.dumps(body), headers=headers, timeout=self._timeout(timeout)
        ) as r:
            data = await r.read()
            status = r.status
            if not 200 <= status < 300:
                outcome = classify_status(status, write=True)
                return Result(outcome, status, f"http {status}", _retry_after(r.headers))
        return Result("ok", status, None, None, _json(data) if self.keep_values else None)


def _json(data: bytes) -> Any:
    if not data:
        return None
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
