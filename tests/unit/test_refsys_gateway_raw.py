"""Gateway: the rendered config under real nginx, fed raw bytes over a socket.

Requests nginx cannot parse get a JSON 400 (never nginx's HTML 500 or 400), the app's
own 4xx pass through unchanged, and the hardened per-client limit also covers requests
that carry no X-Client-Id."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import orjson
import pytest

from reference_system.addresses import Endpoint
from reference_system.gateway import GatewaySpec, render
from reference_system.settings import load

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
pytestmark = pytest.mark.skipif(NGINX is None, reason="nginx not installed")

APP_400 = {"error": "person_id: got 'x'; expected an integer 1..2147483647", "field": "person_id"}


class _App(BaseHTTPRequestHandler):
    """A stand-in app worker: 400 with its own body on /v1/code/x, 200 otherwise."""

    protocol_version = "HTTP/1.1"
    wbufsize = 1 << 16  # one write per response (no Nagle / delayed-ACK stalls)
    disable_nagle_algorithm = True

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        received = self.rfile.read(length) if length else b""
        status, body = (400, APP_400) if self.path == "/v1/code/x" else (200, {"ok": True})
        if self.path == "/echo":
            body = {"body": received.decode(), "headers": sorted(k.lower() for k in self.headers)}
        data = orjson.dumps(body)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _answer

    def log_message(self, *args: object) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _app() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _App)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextlib.contextmanager
def _nginx(profile: str, rundir: Path, app_port: int) -> Iterator[int]:
    """nginx on the rendered config for ``profile``, both upstreams on the stand-in app."""
    assert NGINX is not None
    rundir.chmod(0o755)
    for attempt in range(5):
        port = _free_port()
        spec = GatewaySpec(
            port=port,
            rundir=rundir,
            upstreams=(Endpoint("127.0.0.1", app_port), Endpoint("127.0.0.1", app_port)),
            instance="gateway-t",
            run_as_root=os.geteuid() == 0,
        )
        conf = rundir / "nginx.conf"
        conf.write_text(render(load(profile), spec))
        proc = subprocess.Popen(
            [NGINX, "-e", "stderr", "-p", str(rundir), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline and proc.poll() is None:
                with (
                    contextlib.suppress(OSError),
                    socket.create_connection(("127.0.0.1", port), timeout=0.2),
                ):
                    break
                time.sleep(0.02)
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                if "Address already in use" in err and attempt < 4:
                    continue
                raise RuntimeError(f"nginx exited: {err}")
            yield port
            return
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc.stderr:
                proc.stderr.close()


@pytest.fixture(scope="module", params=["naive", "hardened"])
def gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, int]]:
    profile = request.param
    rundir = tmp_path_factory.mktemp(f"gw-{profile}")
    with _app() as app_port, _nginx(profile, rundir, app_port) as port:
        yield profile, port


def raw(port: int, data: bytes, timeout: float = 3.0) -> tuple[int, dict[str, str], bytes]:
    """Send ``data`` as is; the first response's status, headers and body."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        got = b""
        with contextlib.suppress(TimeoutError, ConnectionResetError):
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                got += chunk
                head, sep, rest = got.partition(b"\r\n\r\n")
                if sep:
                    hdrs = _headers(head)
                    if len(rest) >= int(hdrs.get("content-length", "-1")) >= 0:
                        break
    head, _, body = got.partition(b"\r\n\r\n")
    status_line = head.split(b"\r\n", 1)[0]
    assert status_line.startswith(b"HTTP/1."), got[:200]
    hdrs = _headers(head)
    if "content-length" in hdrs:
        body = body[: int(hdrs["content-length"])]
    return int(status_line.split()[1]), hdrs, body


def _headers(head: bytes) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.decode("latin-1").partition(":")
        out[name.strip().lower()] = value.strip()
    return out


UNPARSEABLE = {
    "nul in the path": b"GET /v1/code/\x00 HTTP/1.1\r\nHost: x\r\n\r\n",
    "escaped nul in the path": b"GET /v1/code/%00 HTTP/1.1\r\nHost: x\r\n\r\n",
    "space before the request line": b" GET /v1/code/1 HTTP/1.1\r\nHost: x\r\n\r\n",
    "space inside the uri": b"GET /v1/co de/1 HTTP/1.1\r\nHost: x\r\n\r\n",
    "garbage request line": b"garbage\r\n\r\n",
    "binary request line": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    "control byte in the query": b"GET /v1/code/1?a=\x7f HTTP/1.1\r\nHost: x\r\n\r\n",
    "path above the root": b"GET /../../etc/passwd HTTP/1.1\r\nHost: x\r\n\r\n",
    "unknown http version": b"GET /v1/code/1 HTTP/9.9\r\nHost: x\r\n\r\n",
    "header name with a space": b"GET /v1/code/1 HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n",
    "header name with a nul": b"GET /v1/code/1 HTTP/1.1\r\nHost: x\r\nX\x00: y\r\n\r\n",
    "no host": b"GET /v1/code/1 HTTP/1.1\r\n\r\n",
    "two hosts": b"GET /v1/code/1 HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
    "bad content-length": b"POST /v1/scans HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
    "raw non-ascii byte in the path": b"GET /v1/code/\xff HTTP/1.1\r\nHost: x\r\n\r\n",
    "raw utf-8 in the path": "GET /v1/code/é HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
    "raw non-ascii byte in the query": b"GET /v1/code/1?q=\x80 HTTP/1.1\r\nHost: x\r\n\r\n",
    "oversized header": b"GET /v1/code/1 HTTP/1.1\r\nHost: x\r\nX-Big: "
    + b"a" * 20000
    + b"\r\n\r\n",
}


@pytest.mark.parametrize("case", sorted(UNPARSEABLE))
def test_unparseable_request_gets_a_json_400(gateway: tuple[str, int], case: str) -> None:
    _, port = gateway
    status, hdrs, body = raw(port, UNPARSEABLE[case])
    assert status == 400, body[:200]
    assert hdrs.get("content-type") == "application/json", hdrs
    assert orjson.loads(body) == {"error": "bad request"}


def test_too_long_request_line_gets_a_json_414(gateway: tuple[str, int]) -> None:
    _, port = gateway
    status, hdrs, body = raw(port, b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 414 and hdrs.get("content-type") == "application/json"
    assert orjson.loads(body)["error"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [(b"3\r\n{}}\r\n0\r\n\r\n", 411), (b"zz\r\n\r\n", 400)],
    ids=["well-formed", "bad-chunk-size"],
)
def test_chunked_body_is_refused_with_json(
    gateway: tuple[str, int], body: bytes, expected: int
) -> None:
    """A malformed chunked body would get nginx's HTML 400 where the hardened gateway
    intercepts upstream errors; bodies must come with a Content-Length instead (411; a
    chunked body nginx cannot even discard turns that into a 400, still JSON)."""
    _, port = gateway
    for path in (b"/v1/scans", b"/v1/results"):
        req = b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        status, hdrs, got = raw(port, req + body)
        assert status == expected and hdrs.get("content-type") == "application/json"
        assert "Content-Length" in orjson.loads(got)["error"]


def test_internal_error_pages_are_not_reachable_from_outside(gateway: tuple[str, int]) -> None:
    _, port = gateway
    status, _, body = raw(port, b"GET /__refsys_error/400 HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 404 and orjson.loads(body) == {"error": "not found"}


def test_the_apps_own_400_passes_through_unchanged(gateway: tuple[str, int]) -> None:
    _, port = gateway
    status, _, body = raw(port, b"GET /v1/code/x HTTP/1.1\r\nHost: x\r\nX-Client-Id: c1\r\n\r\n")
    assert status == 400 and orjson.loads(body) == APP_400


def test_a_post_with_a_content_length_is_proxied(gateway: tuple[str, int]) -> None:
    _, port = gateway
    req = b"POST /v1/scans HTTP/1.1\r\nHost: x\r\nX-Client-Id: c2\r\nContent-Length: 2\r\n\r\n{}"
    status, _, body = raw(port, req)
    assert status == 200 and orjson.loads(body) == {"ok": True}


def _burst(port: int, n: int, client_id: bytes | None) -> list[int]:
    header = b"" if client_id is None else b"X-Client-Id: " + client_id + b"\r\n"
    return [
        raw(port, b"GET /v1/code/7 HTTP/1.1\r\nHost: x\r\n" + header + b"\r\n")[0] for _ in range(n)
    ]


def test_requests_without_a_client_id_are_limited_by_address(gateway: tuple[str, int]) -> None:
    """hardened: no X-Client-Id falls back to the connection's address (burst 40 at 20/s);
    naive has no limit at all."""
    profile, port = gateway
    statuses = _burst(port, 80, None)
    if profile == "naive":
        assert set(statuses) == {200}, statuses
        return
    assert 429 in statuses, statuses
    # the address's bucket is not any client id's: a named client is still served
    assert _burst(port, 1, b"someone-else") == [200]


def test_rendered_limit_key_falls_back_to_the_address() -> None:
    spec = GatewaySpec(1, Path("/tmp/gw"), (Endpoint("127.0.0.1", 2),), "g", False)
    conf = render(load("hardened"), spec)
    assert '"" "addr:$binary_remote_addr";' in conf
    assert "limit_req_zone $refsys_client_key zone=per_client" in conf
    assert "limit_req_zone $refsys_client_key zone=per_gate" in conf
    assert "limit_req_zone $http_x_client_id" not in conf
    unlimited = render(load("hardened", '{"rate_limit": false}'), spec)
    assert "$refsys_client_key" not in unlimited


def test_nginx_accepts_both_configs_with_the_error_pages(tmp_path: Path) -> None:
    assert NGINX is not None
    for profile in ("naive", "hardened"):
        spec = dataclasses.replace(
            GatewaySpec(1, tmp_path, (Endpoint("127.0.0.1", 2),), "g", False), port=_free_port()
        )
        conf = tmp_path / "nginx.conf"
        conf.write_text(render(load(profile), spec))
        done = subprocess.run(
            [NGINX, "-t", "-e", "stderr", "-p", str(tmp_path), "-c", str(conf)],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "@bad_request" not in conf.read_text()


def test_percent_encoded_bytes_are_passed_to_the_app(gateway: tuple[str, int]) -> None:
    _, port = gateway
    req = b"GET /v1/code/%C3%A9?q=%FF HTTP/1.1\r\nHost: x\r\nX-Client-Id: c3\r\n\r\n"
    status, _, body = raw(port, req)
    assert status == 200 and orjson.loads(body) == {"ok": True}


def test_only_the_gateways_own_headers_reach_the_app(gateway: tuple[str, int]) -> None:
    """A control byte in a header value passes nginx; the app's parser would answer it
    with a plain-text 400, so client headers are not passed on (the body is)."""
    _, port = gateway
    req = (
        b"POST /echo HTTP/1.1\r\nHost: x\r\nX-Client-Id: a\x0eb\r\nCookie: c\x01\r\n"
        b'X-Request-Start: t=0\r\nContent-Length: 7\r\n\r\n{"a":1}'
    )
    status, _, body = raw(port, req)
    assert status == 200, body
    echo = orjson.loads(body)
    assert echo["body"] == '{"a":1}'
    assert "cookie" not in echo["headers"] and "x-client-id" not in echo["headers"]
    assert {"host", "content-length", "x-request-start"} <= set(echo["headers"])
