"""Clients: one operation against the system, completed as ok, fail or info.

The load runner only sees the `Client` protocol (`invoke(...) -> Result`), so a user can
bring their own (another protocol, a signed request, a gRPC call) and tests can use a
fake. `HttpClient` is the one the harness uses: it builds each request from the system's
declared operations (`harness.operations`) and sends it over the lean transport
(`harness.http`).

How outcomes are classified (Jepsen's rules; `info` means "may or may not have been
applied"):

| what happened | read | write |
|---|---|---|
| a status the operation declares ok (default 2xx) | ok | ok |
| a status it declares info (default for writes: 500, 502, 504) | - | info |
| any other status (4xx, 429, 503: a rejection) | fail | fail |
| could not connect (refused, connect timeout) | fail | fail |
| timeout or connection lost after sending | fail | info |

A read that timed out changed nothing, so it is a `fail` with `error="timeout"`; a write
that timed out may have been applied, so it is `info`.

    async with HttpClient(sut.operations, ["http://127.0.0.1:8080"]) as client:
        result = await client.invoke(0, "show_code", {"person": 1}, "p1", timeout=3.0)
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, runtime_checkable

import orjson

from harness.http import Answer, Lost, NotSent, Transport
from harness.operations import Operation, Operations
from harness.templates import json_encoder, lookup

__all__ = ["Client", "HttpClient", "Result"]


@dataclass(frozen=True, slots=True)
class Result:
    """How one attempt ended, as the client saw it. `value` holds the response fields the
    operation keeps (`keep:`), for invariants that read what the system answered."""

    outcome: Literal["ok", "fail", "info"]
    status: int | None = None
    error: str | None = None
    retry_after: float | None = None
    value: Any = None


@runtime_checkable
class Client(Protocol):
    """One attempt at operation `op` with drawn `args`, sent to target `target` (an index
    into the system's client-facing URLs) as client `client_id`, within `timeout` s."""

    async def invoke(
        self, target: int, op: str, args: Mapping[str, Any], client_id: str, timeout: float
    ) -> Result: ...


def _retry_after(v: bytes | None) -> float | None:
    if v is None:
        return None
    try:
        return max(0.0, float(v))
    except ValueError:
        return None  # an HTTP date: taken as no hint


def _iso(epoch: float) -> str:
    """`epoch` as ISO 8601 to the millisecond."""
    return _iso_ms(int(epoch * 1000))


@functools.lru_cache(maxsize=1)
def _iso_ms(ms: int) -> str:
    """Formatted once per millisecond: requests sent in the same one share it."""
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


_RETRY_AFTER = b"retry-after"


class _Prepared:
    """One operation compiled for sending: the request's fixed parts and what to read back."""

    __slots__ = ("body", "headers", "json_needed", "needs_now", "op", "prefix")

    def __init__(self, op: Operation) -> None:
        self.op = op
        self.prefix = op.method + " "
        self.headers = tuple(op.headers)
        self.body = json_encoder(op.body) if op.body is not None else None
        names = set(op.path.names).union(*(t.names for _, t in op.headers))
        if op.body is not None:
            names |= op.body.names
        self.needs_now = "now" in names
        self.json_needed = bool(op.keep) or any(c.json is not None for c in op.captures)


class HttpClient:
    """The declared operations over HTTP/1.1 to `targets` (see the module docstring).

    Captured values (`capture:`) are kept for the whole run, keyed as declared; `now` is
    fixed per write key, so a retry resends the same body.
    """

    def __init__(
        self,
        operations: Operations,
        targets: Sequence[str],
        *,
        wall_clock: Any = time.time,
    ) -> None:
        self.operations = operations
        headers = {_RETRY_AFTER}
        for op in operations.ops.values():
            headers.update(c.header.encode() for c in op.captures if c.header)
        self.transport = Transport(targets, headers=headers)
        self._prepared = {name: _Prepared(op) for name, op in operations.ops.items()}
        self._captured: dict[tuple[str, str], Any] = {}
        self._written_at: dict[str, str] = {}
        self._wall = wall_clock

    async def __aenter__(self) -> HttpClient:
        await self.transport.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.transport.__aexit__(*exc)

    def captured(self, name: str, key: str) -> Any:
        """A value captured earlier (None if none was)."""
        return self._captured.get((name, key))

    async def invoke(
        self, target: int, op: str, args: Mapping[str, Any], client_id: str, timeout: float
    ) -> Result:
        p = self._prepared[op]
        o = p.op
        write = o.write
        if o.timeout is not None and o.timeout < timeout:
            timeout = o.timeout
        env = dict(args)
        env["client"] = client_id
        try:
            if o.requires:
                deadline = time.monotonic() + timeout
                for name, other in o.requires.items():
                    capture = next(c for c in self.operations.ops[other].captures if c.name == name)
                    key = str(capture.key.render(env))
                    value = self._captured.get((name, key))
                    if value is None:
                        first = await self.invoke(target, other, args, client_id, timeout)
                        if first.outcome != "ok":
                            # nothing of this operation was sent: a fail is a fail
                            return Result("fail", first.status, first.error, first.retry_after)
                        value = self._captured.get((name, key))
                        if value is None:
                            return Result("fail", None, f"{other} answered no {name}")
                        timeout = max(0.001, deadline - time.monotonic())
                    env[name] = value
            if p.needs_now:
                env["now"] = self._now(o, env)
            path = o.path.render(env)
            head = p.prefix + path + " HTTP/1.1\r\n"
            for name, t in p.headers:
                head += f"{name}: {t.render(env)}\r\n"
            body = None
            if p.body is not None:
                head += "Content-Type: application/json\r\n"
                body = p.body(env)
            answer = await self.transport.exchange(target, head.encode(), body, timeout)
        except NotSent as e:
            return Result("fail", error=str(e))
        except Lost as e:
            return Result("info" if write else "fail", status=e.status, error=e.error)
        return self._read(p, env, answer)

    def _now(self, op: Operation, env: Mapping[str, Any]) -> str:
        if op.key is None:
            return _iso(self._wall())
        key = f"{op.name}:{op.key.render(env)}"
        at = self._written_at.get(key)
        if at is None:
            at = self._written_at[key] = _iso(self._wall())
        return at

    def _read(self, p: _Prepared, env: Mapping[str, Any], answer: Answer) -> Result:
        o = p.op
        status = answer.status
        outcome = o.outcomes.classify(status)
        if outcome != "ok":
            retry_after = _retry_after(answer.headers.get(_RETRY_AFTER))
            return Result(outcome, status, f"http {status}", retry_after)
        data: Any = None
        if p.json_needed and answer.body:
            try:
                data = orjson.loads(answer.body)
            except orjson.JSONDecodeError:
                data = None
        for c in o.captures:
            value = _field(data, c.json) if c.json is not None else _header(answer, c.header)
            if value is not None:
                self._captured[(c.name, str(c.key.render(env)))] = value
        value = None
        if o.keep:
            value = {name: _field(data, path) for name, path in o.keep}
        return Result("ok", status, None, None, value)


def _field(data: Any, path: tuple[str | int, ...]) -> Any:
    if data is None:
        return None
    try:
        return lookup({"": data}, "", path)
    except (KeyError, IndexError, TypeError):
        return None


def _header(answer: Answer, name: str | None) -> Any:
    if name is None:
        return None
    raw = answer.headers.get(name.encode())
    return None if raw is None else raw.decode(errors="replace")
