"""The declared-operations client against an in-process aiohttp server on 127.0.0.1:
requests built from templates, captures, outcome classification."""

from __future__ import annotations

import asyncio
import socket

import pytest
from aiohttp import web

from harness.client import HttpClient, Result
from harness.http import Transport
from tests.support import operations, reference_operations


class Server:
    """A tiny fake of the reference API whose answers each test can bend."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict | None, str | None]] = []
        self.mode = "normal"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json() if request.method == "POST" else None
        self.requests.append(
            (request.method, request.path, body, request.headers.get("X-Client-Id"))
        )
        if self.mode == "slow":
            await asyncio.sleep(0.6)
        if self.mode == "reset":
            assert request.transport is not None
            request.transport.abort()
            await asyncio.sleep(0.1)
        if self.mode == "503":
            return web.json_response({"error": "busy"}, status=503, headers={"Retry-After": "2"})
        if self.mode == "502":
            return web.json_response({"error": "bad gateway"}, status=502)
        parts = request.path.split("/")
        if request.path.startswith("/v1/code/"):
            if int(parts[-1]) > 100:
                return web.json_response({"error": "unknown person"}, status=404)
            return web.json_response(
                {
                    "colour": "green",
                    "status_asof": 1,
                    "token": f"tok{parts[-1]}",
                    "expires_at": 2,
                    "degraded": False,
                }
            )
        if request.path.startswith("/v1/results/"):
            return web.json_response({"results": []})
        return web.json_response({"ok": True})


OPS = reference_operations()


async def with_server(fn, mode: str = "normal", ops=OPS):
    srv = Server()
    srv.mode = mode
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", srv.handle)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        async with HttpClient(ops, [f"http://127.0.0.1:{port}"]) as client:
            return await fn(client), srv
    finally:
        await runner.cleanup()


def go(fn, mode: str = "normal", ops=OPS) -> tuple[Result, Server]:
    return asyncio.run(with_server(fn, mode, ops))


def scan(scan_id: str, person: int, venue: int) -> dict:
    return {"scan_id": scan_id, "person": person, "venue": venue}


def ingest(*results: tuple[str, int, str]) -> dict:
    return {
        "lab": 1,
        "results": [{"sample_id": s, "person_id": p, "result": r} for s, p, r in results],
    }


def test_show_code_keeps_its_declared_fields_captures_the_token_and_sends_the_client_id():
    async def fn(c: HttpClient):
        r = await c.invoke(0, "show_code", {"person": 7}, "p7", 1.0)
        return r, c.captured("token", "7")

    (r, token), srv = go(fn)
    assert r.outcome == "ok" and r.status == 200
    assert r.value == {"colour": "green"}  # keep: [colour], nothing else
    assert token == "tok7"
    assert srv.requests == [("GET", "/v1/code/7", None, "p7")]


def test_unknown_person_is_a_fail_with_404():
    r, _ = go(lambda c: c.invoke(0, "show_code", {"person": 999}, "p999", 1.0))
    assert (r.outcome, r.status) == ("fail", 404)


def test_lookup_ok():
    r, srv = go(lambda c: c.invoke(0, "lookup", {"person": 3}, "p3", 1.0))
    assert r.outcome == "ok" and srv.requests[0][1] == "/v1/results/3"


def test_scan_shows_the_code_first_then_posts_with_the_token():
    r, srv = go(lambda c: c.invoke(0, "scan", scan("s-1", 5, 9), "g9", 1.0))
    assert r.outcome == "ok"
    assert [q[:2] for q in srv.requests] == [("GET", "/v1/code/5"), ("POST", "/v1/scans")]
    body = srv.requests[1][2]
    assert body["scan_id"] == "s-1" and body["person_id"] == 5 and body["venue_id"] == 9
    assert body["token"] == "tok5" and body["at"].endswith("+00:00")


def test_ingest_posts_the_batch():
    batch = ingest(("r1", 1, "positive"), ("r2", 2, "negative"))
    r, srv = go(lambda c: c.invoke(0, "ingest", batch, "lab1", 1.0))
    assert r.outcome == "ok"
    method, path, body, _ = srv.requests[0]
    assert (method, path) == ("POST", "/v1/results")
    assert [(x["sample_id"], x["person_id"], x["result"]) for x in body["results"]] == [
        ("r1", 1, "positive"),
        ("r2", 2, "negative"),
    ]


def test_rejection_is_a_fail_with_retry_after():
    r, _ = go(lambda c: c.invoke(0, "show_code", {"person": 1}, "p1", 1.0), mode="503")
    assert (r.outcome, r.status, r.retry_after) == ("fail", 503, 2.0)


@pytest.mark.parametrize(
    "op, args, outcome",
    [
        ("show_code", {"person": 1}, "fail"),
        ("ingest", ingest(("r", 1, "negative")), "info"),
    ],
)
def test_502_is_unknown_for_a_write_only(op, args, outcome):
    r, _ = go(lambda c: c.invoke(0, op, args, "x", 1.0), mode="502")
    assert (r.outcome, r.status) == (outcome, 502)


@pytest.mark.parametrize(
    "op, args, outcome",
    [
        ("lookup", {"person": 1}, "fail"),
        ("ingest", ingest(("r", 1, "negative")), "info"),
    ],
)
def test_timeout_after_sending_is_info_for_writes_fail_for_reads(op, args, outcome):
    r, _ = go(lambda c: c.invoke(0, op, args, "x", 0.2), mode="slow")
    assert (r.outcome, r.status, r.error) == (outcome, None, "timeout")


def test_connection_reset_after_sending_a_write_is_info():
    batch = ingest(("r", 1, "negative"))
    r, _ = go(lambda c: c.invoke(0, "ingest", batch, "lab1", 2.0), mode="reset")
    assert r.outcome == "info" and r.status is None


def test_connection_refused_is_a_fail_even_for_writes():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: connections are refused

        async def fn():
            async with HttpClient(OPS, [f"http://127.0.0.1:{port}"]) as c:
                return await c.invoke(0, "scan", scan("s", 1, 1), "g1", 1.0)

        r = asyncio.run(fn())
    assert r.outcome == "fail" and r.error.startswith("connect")


def test_the_transport_reuses_keep_alive_connections():
    async def fn(c: HttpClient):
        for i in range(5):
            assert (await c.invoke(0, "show_code", {"person": i + 1}, "p", 1.0)).outcome == "ok"
        sequential = len(c.transport._all)
        rs = await asyncio.gather(
            *(c.invoke(0, "lookup", {"person": i}, "p", 1.0) for i in range(8))
        )
        return sequential, len(c.transport._all), [r.outcome for r in rs]

    (sequential, concurrent, outcomes), _ = go(fn)
    assert sequential == 1 and 1 <= concurrent <= 8 and outcomes == ["ok"] * 8


def test_the_transport_rejects_non_http_targets():
    with pytest.raises(ValueError, match="not an http://host:port URL"):
        Transport(["https://127.0.0.1:1"])


def test_a_retried_write_resends_the_same_body():
    """The scan happened once: a retry under the same scan_id must not carry a new time
    (the server would see different contents under one id and answer 409)."""
    clock = iter(float(t) for t in range(1_700_000_000, 1_700_000_100))

    async def fn(c: HttpClient):
        c._wall = lambda: next(clock)
        for _ in range(2):
            await c.invoke(0, "scan", scan("s-1", 5, 9), "g9", 1.0)
            await c.invoke(0, "ingest", ingest(("x-1", 5, "negative")), "lab", 1.0)
        return await c.invoke(0, "scan", scan("s-2", 5, 9), "g9", 1.0)

    _, srv = go(fn)
    scans = [q[2] for q in srv.requests if q[1] == "/v1/scans"]
    ingests = [q[2] for q in srv.requests if q[1] == "/v1/results"]
    assert scans[0] == scans[1] and ingests[0] == ingests[1]
    assert scans[2]["at"] != scans[0]["at"]  # another scan, another time


KV = operations(
    {
        "values": {"id": {"int": [1, 10]}},
        "operations": {
            "get": {
                "path": "/kv/${id}",
                "client": "c${id}",
                "capture": {"etag": {"header": "ETag", "key": "${id}"}},
                "keep": ["data.v"],
            },
            "put": {
                "method": "PUT",
                "path": "/kv/${id}",
                "key": "${id}",
                "headers": {"If-Match": "${etag}", "X-Id": "${client}"},
                "requires": {"etag": "get"},
                "body": {"v": "${id}", "items": {"$each": "tags", "$item": {"t": "${item}"}}},
                "values": {"tags": {"list": 2, "item": {"choice": ["a", "b"]}}},
                "outcomes": {"ok": ["2xx"], "info": ["500-504"]},
            },
        },
    }
)


class KvServer:
    """Answers GET /kv/N with an ETag and a body; PUT needs the ETag in If-Match."""

    def __init__(self) -> None:
        self.requests: list[tuple[str, str, dict, dict | None]] = []

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json() if request.method == "PUT" else None
        self.requests.append((request.method, request.path, dict(request.headers), body))
        if request.method == "GET":
            return web.json_response({"data": {"v": 1}}, headers={"ETag": '"e1"'})
        if request.headers.get("If-Match") != '"e1"':
            return web.json_response({"error": "precondition"}, status=412)
        return web.json_response({"ok": True}, status=503 if body["v"] == 9 else 201)


def kv(fn):
    async def main():
        srv = KvServer()
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", srv.handle)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        try:
            async with HttpClient(KV, [f"http://127.0.0.1:{port}"]) as client:
                return await fn(client), srv
        finally:
            await runner.cleanup()

    return asyncio.run(main())


def test_a_captured_header_is_sent_by_the_next_request_of_the_flow():
    args = {"id": 3, "tags": ["a", "b"]}
    r, srv = kv(lambda c: c.invoke(0, "put", args, "c3", 1.0))
    assert r.outcome == "ok" and r.status == 201
    (m1, p1, _, _), (m2, p2, headers, body) = srv.requests
    assert (m1, p1, m2, p2) == ("GET", "/kv/3", "PUT", "/kv/3")
    assert headers["If-Match"] == '"e1"' and headers["X-Id"] == "c3"
    assert body == {"v": 3, "items": [{"t": "a"}, {"t": "b"}]}


def test_declared_outcomes_decide_and_kept_fields_are_nested_paths():
    async def fn(c: HttpClient):
        got = await c.invoke(0, "get", {"id": 9}, "c9", 1.0)
        put = await c.invoke(0, "put", {"id": 9, "tags": []}, "c9", 1.0)
        return got, put

    (got, put), _ = kv(fn)
    assert got.value == {"data.v": 1}
    assert (put.outcome, put.status) == ("info", 503)  # declared info, not the default fail


def test_a_required_operation_that_fails_makes_the_write_a_fail_not_sent():
    r, _ = go(lambda c: c.invoke(0, "scan", scan("s-9", 999, 1), "g1", 1.0))
    assert (r.outcome, r.status) == ("fail", 404)
