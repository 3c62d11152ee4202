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


def test_scram_answer_matches_rfc_7677() -> None:
    """The SCRAM-SHA-256 exchange of RFC 7677's example (user, pencil)."""
    from harness.probes import PgAuth

    auth = PgAuth("pencil")
    auth.first_bare = "n=user,r=rOprNGfwEbeRWgbNEkqO"
    server_first = (
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
    )
    final = auth._scram_final(server_first)
    assert final == (
        b"c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        b"p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    )
    verify = b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
    assert auth.answer((12).to_bytes(4, "big") + verify) == b""  # the server proved itself
    assert auth.answer((12).to_bytes(4, "big") + b"v=AAAA") is None  # an impostor did not
    auth.first_bare = "n=,r=ours"
    assert auth._scram_final("r=someone-else,s=AA==,i=1") is None  # not our nonce


def _pg_message(kind: bytes, body: bytes) -> bytes:
    return kind + (4 + len(body)).to_bytes(4, "big") + body


def test_postgres_probe_gives_the_password_when_asked() -> None:
    """An MD5 request with a salt is answered as libpq would; no password, no answer."""
    import hashlib

    salt = b"\x01\x02\x03\x04"
    want = (
        b"md5"
        + hashlib.md5(hashlib.md5(b"s3cretpostgres").hexdigest().encode() + salt)
        .hexdigest()
        .encode()
    )
    got: list[bytes] = []
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(2)

    def serve() -> None:
        for _ in range(2):
            conn, _ = server.accept()
            with conn:
                conn.recv(1024)  # the startup message
                conn.sendall(_pg_message(b"R", (5).to_bytes(4, "big") + salt))
                answer = conn.recv(1024)
                got.append(answer)
                if answer[5:-1] != want:
                    continue
                conn.sendall(_pg_message(b"R", bytes(4)) + _pg_message(b"Z", b"I"))
                conn.recv(1024)  # the query
                conn.sendall(_pg_message(b"Z", b"I"))
        server.close()

    threading.Thread(target=serve, daemon=True).start()
    port = server.getsockname()[1]
    assert check(Probe("postgres", "SELECT 1"), "127.0.0.1", port, "s3cret")
    assert got[0][5:-1] == want
    assert not check(Probe("postgres", "SELECT 1"), "127.0.0.1", port)  # no password to give


def test_redis_probe_sends_auth_first() -> None:
    assert check(Probe("redis"), "127.0.0.1", serve_once(b"+OK\r\n+PONG\r\n"), "pw")
    noauth = b"-WRONGPASS invalid username-password pair\r\n-NOAUTH Authentication required.\r\n"
    assert not check(Probe("redis"), "127.0.0.1", serve_once(noauth), "pw")


def test_an_endpoint_never_shows_its_password() -> None:
    from harness.backends import ComponentEndpoint

    ep = ComponentEndpoint("db", "db", "127.0.0.1", 5432, "postgres", "p@ss/word")
    assert "p@ss" not in repr(ep) and "p@ss" not in ep.url
    assert ep.dsn == "postgresql://postgres:p%40ss%2Fword@127.0.0.1:5432/postgres"
    redis = ComponentEndpoint("r", "r", "127.0.0.1", 6379, "redis", "x")
    assert redis.dsn == "redis://:x@127.0.0.1:6379/0"
    assert ComponentEndpoint("w", "w", "127.0.0.1", 80, "http", "x").dsn == "http://127.0.0.1:80"
