"""Probes answer False for anything but a proper answer, and never raise."""

from __future__ import annotations

import socket
import threading

from harness.probes import check, describe
from harness.topology import Probe


def serve_once(reply: bytes) -> int:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)

    def answer() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(1024)
            conn.sendall(reply)
        server.close()

    threading.Thread(target=answer, daemon=True).start()
    return server.getsockname()[1]


def test_http_probe_wants_a_2xx() -> None:
    assert check(Probe("http", "/h"), "127.0.0.1", serve_once(b"HTTP/1.1 200 OK\r\n\r\n"))
    assert not check(Probe("http", "/h"), "127.0.0.1", serve_once(b"HTTP/1.1 503 No\r\n\r\n"))


def test_redis_probe_wants_pong() -> None:
    assert check(Probe("redis"), "127.0.0.1", serve_once(b"+PONG\r\n"))
    assert not check(Probe("redis"), "127.0.0.1", serve_once(b"-LOADING\r\n"))


def test_postgres_probe_refuses_a_starting_server() -> None:
    error = b"E" + (4 + 6).to_bytes(4, "big") + b"SFATAL"
    assert not check(Probe("postgres", "SELECT 1"), "127.0.0.1", serve_once(error))


def test_closed_port_is_not_ready() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    for kind in ("http", "tcp", "redis", "postgres"):
        assert not check(Probe(kind), "127.0.0.1", port)  # type: ignore[arg-type]
    assert "SELECT 1" in describe(Probe("postgres", "SELECT 1"), "127.0.0.1", port)
