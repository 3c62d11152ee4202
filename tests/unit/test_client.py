"""Both HTTP clients against an in-process aiohttp server on 127.0.0.1: outcome classification."""

from __future__ import annotations

import asyncio
import socket

import pytest
from aiohttp import web

from harness.client import FastClient, HttpClient, Result
from harness.workload import Ingest, LabResult, Lookup, Scan, ShowCode


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


CLIENTS = {"aiohttp": HttpClient, "fast": FastClient}


@pytest.fixture(params=sorted(CLIENTS), autouse=True)
def client_type(request: pytest.FixtureRequest):
    """Every test runs once per client implementation: both must classify alike."""
    global Client
    Client = CLIENTS[request.param]
    yield request.param
    Client = HttpClient


Client = HttpClient


async def with_server(fn, mode: str = "normal"):
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
        async with Client([f"http://127.0.0.1:{port}"]) as client:
            return await fn(client), srv
    finally:
        await runner.cleanup()


def go(fn, mode: str = "normal") -> tuple[Result, Server]:
    return asyncio.run(with_server(fn, mode))


def test_show_code_ok_keeps_value_caches_token_and_sends_client_id():
    async def fn(c: HttpClient):
        r = await c.invoke(0, "show_code", ShowCode(7), "p7", 1.0)
        return r, dict(c.tokens)

    (r, tokens), srv = go(fn)
    assert r.outcome == "ok" and r.status == 200
    assert r.value["colour"] == "green" and "token" not in r.value
    assert tokens == {7: "tok7"}
    assert srv.requests == [("GET", "/v1/code/7", None, "p7")]


def test_unknown_person_is_a_fail_with_404():
    r, _ = go(lambda c: c.invoke(0, "show_code", ShowCode(999), "p999", 1.0))
    assert (r.outcome, r.status) == ("fail", 404)


def test_lookup_ok():
    r, srv = go(lambda c: c.invoke(0, "lookup", Lookup(3), "p3", 1.0))
    assert r.outcome == "ok" and srv.requests[0][1] == "/v1/results/3"


def test_scan_shows_the_code_first_then_posts_with_the_token():
    r, srv = go(lambda c: c.invoke(0, "scan", Scan("s-1", 5, 9), "g9", 1.0))
    assert r.outcome == "ok"
    assert [q[:2] for q in srv.requests] == [("GET", "/v1/code/5"), ("POST", "/v1/scans")]
    body = srv.requests[1][2]
    assert body["scan_id"] == "s-1" and body["person_id"] == 5 and body["venue_id"] == 9
    assert body["token"] == "tok5" and body["at"].endswith("+00:00")


def test_ingest_posts_the_batch():
    batch = Ingest((LabResult("r1", 1, "positive"), LabResult("r2", 2, "negative")))
    r, srv = go(lambda c: c.invoke(0, "ingest", batch, "lab1", 1.0))
    assert r.outcome == "ok"
    method, path, body, _ = srv.requests[0]
    assert (method, path) == ("POST", "/v1/results")
    assert [(x["sample_id"], x["person_id"], x["result"]) for x in body["results"]] == [
        ("r1", 1, "positive"),
        ("r2", 2, "negative"),
    ]


def test_rejection_is_a_fail_with_retry_after():
    r, _ = go(lambda c: c.invoke(0, "show_code", ShowCode(1), "p1", 1.0), mode="503")
    assert (r.outcome, r.status, r.retry_after) == ("fail", 503, 2.0)


@pytest.mark.parametrize(
    "op, args, outcome",
    [
        ("show_code", ShowCode(1), "fail"),
        ("ingest", Ingest((LabResult("r", 1, "negative"),)), "info"),
    ],
)
def test_502_is_unknown_for_a_write_only(op, args, outcome):
    r, _ = go(lambda c: c.invoke(0, op, args, "x", 1.0), mode="502")
    assert (r.outcome, r.status) == (outcome, 502)


@pytest.mark.parametrize(
    "op, args, outcome",
    [
        ("lookup", Lookup(1), "fail"),
        ("ingest", Ingest((LabResult("r", 1, "negative"),)), "info"),
    ],
)
def test_timeout_after_sending_is_info_for_writes_fail_for_reads(op, args, outcome):
    r, _ = go(lambda c: c.invoke(0, op, args, "x", 0.2), mode="slow")
    assert (r.outcome, r.status, r.error) == (outcome, None, "timeout")


def test_connection_reset_after_sending_a_write_is_info():
    batch = Ingest((LabResult("r", 1, "negative"),))
    r, _ = go(lambda c: c.invoke(0, "ingest", batch, "lab1", 2.0), mode="reset")
    assert r.outcome == "info" and r.status is None


def test_connection_refused_is_a_fail_even_for_writes():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound but not listening: connections are refused

        async def fn():
            async with Client([f"http://127.0.0.1:{port}"]) as c:
                c.tokens[1] = "t"
                return await c.invoke(0, "scan", Scan("s", 1, 1), "g1", 1.0)

        r = asyncio.run(fn())
    assert r.outcome == "fail" and r.error.startswith("connect")


def test_fast_client_reuses_keep_alive_connections(client_type):
    if client_type != "fast":
        pytest.skip("FastClient's pool")

    async def fn(c: FastClient):
        for i in range(5):
            assert (await c.invoke(0, "show_code", ShowCode(i + 1), "p", 1.0)).outcome == "ok"
        sequential = len(c._all)
        rs = await asyncio.gather(*(c.invoke(0, "lookup", Lookup(i), "p", 1.0) for i in range(8)))
        return sequential, len(c._all), [r.outcome for r in rs]

    (sequential, concurrent, outcomes), _ = go(fn)
    assert sequential == 1 and 1 <= concurrent <= 8 and outcomes == ["ok"] * 8


def test_fast_client_rejects_non_http_targets():
    with pytest.raises(ValueError, match="not an http://host:port URL"):
        FastClient(["https://127.0.0.1:1"])


def test_a_retried_write_resends_the_same_body():
    """The scan happened once: a retry under the same scan_id must not carry a new time
    (the server would see different contents under one id and answer 409)."""
    clock = iter(float(t) for t in range(1_700_000_000, 1_700_000_100))

    async def fn(c: HttpClient):
        c._wall = lambda: next(clock)
        for _ in range(2):
            await c.invoke(0, "scan", Scan("s-1", 5, 9), "g9", 1.0)
            await c.invoke(0, "ingest", Ingest((LabResult("x-1", 5, "negative"),)), "lab", 1.0)
        return await c.invoke(0, "scan", Scan("s-2", 5, 9), "g9", 1.0)

    _, srv = go(fn)
    scans = [q[2] for q in srv.requests if q[1] == "/v1/scans"]
    ingests = [q[2] for q in srv.requests if q[1] == "/v1/results"]
    assert scans[0] == scans[1] and ingests[0] == ingests[1]
    assert scans[2]["at"] != scans[0]["at"]  # another scan, another time
