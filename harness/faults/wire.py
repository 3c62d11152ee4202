"""Measurements on the wire: small requests through a link's proxy, timed.

Each function opens a fresh TCP connection (Toxiproxy draws toxicity per connection,
so a pooled connection would prove nothing), speaks just enough of the target's
protocol to get an answer, and returns a :class:`Sample`. The TCP handshake is never
timed: Toxiproxy's toxics act on data, not on connecting.

- ``ping``: the smallest request with an answer (PostgreSQL SSLRequest, Redis PING,
  an HTTP status line); time to the first byte of the answer's end.
- ``bulk``: a request that carries ``up`` bytes to the server and asks for ``down``
  bytes back (Redis ECHO, a PostgreSQL query, an HTTP request padded with a header).
- ``close_time``: half-close and time until the far side's close arrives.
- ``connect``: whether a connection is accepted at all.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import time
from dataclasses import dataclass

from harness.probes import PgAuth, resp

PROTOCOLS = ("postgres", "redis", "http")
# The password the server behind an address wants, looked up by address as libpq looks
# up a .pgpass file: filled by `remember_password` for the links a fault measures.
_PASSWORDS: dict[str, str] = {}
# The HTTP path the server behind an address answers on its own (its readiness probe's
# path, e.g. nginx's health location), so that a ping times the link and not a queue
# behind the server: filled by `remember_ping_path`; "/" where none is known.
_PING_PATHS: dict[str, str] = {}
_SSL_REQUEST = struct.pack("!II", 8, 80877103)
_HTTP_PAD_MAX = 6000  # nginx refuses header lines over 8 KB; the answer still comes back


@dataclass(frozen=True)
class Sample:
    """One timed exchange: complete or not, how long, what came back."""

    complete: bool  # the whole expected answer arrived
    seconds: float  # from the request's first byte sent to the last byte wanted (or failure)
    received: int = 0  # bytes received
    chunks: int = 0  # recv() calls that returned data
    error: str = ""  # "reset", "eof", "timeout", "refused" or an exception text


def remember_password(addr: str, password: str | None) -> None:
    """Give ``password`` (PostgreSQL: SCRAM, MD5 or cleartext; Redis: AUTH) to the server
    behind ``addr`` from now on; None forgets it."""
    _keep(_PASSWORDS, addr, password)


def remember_ping_path(addr: str, path: str | None) -> None:
    """Ping the HTTP server behind ``addr`` on ``path`` from now on; None forgets it."""
    _keep(_PING_PATHS, addr, path)


def _keep(table: dict[str, str], addr: str, value: str | None) -> None:
    if value is None:
        table.pop(addr, None)
    else:
        table[addr] = value


def split(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    return host, int(port)


def connect(addr: str, timeout: float = 0.5) -> Sample:
    """Open and close a connection: complete when accepted."""
    started = time.perf_counter()
    try:
        with socket.create_connection(split(addr), timeout=timeout):
            return Sample(True, time.perf_counter() - started)
    except OSError as exc:
        return Sample(False, time.perf_counter() - started, error=_why(exc))


def ping(addr: str, protocol: str, timeout: float = 2.0, path: str | None = None) -> Sample:
    """The smallest request/answer exchange for ``protocol`` (HTTP: on ``path``, else the
    address's remembered ping path, else "/")."""
    if protocol == "postgres":
        return _exchange(addr, _SSL_REQUEST, lambda buf: len(buf) >= 1, timeout)
    if protocol == "redis":
        return _exchange(addr, b"*1\r\n$4\r\nPING\r\n", lambda buf: b"\r\n" in buf, timeout)
    if protocol == "http":
        path = path if path is not None else _PING_PATHS.get(addr, "/")
        return _exchange(addr, _http_request(path), lambda buf: b"\r\n" in buf, timeout)
    raise ValueError(f"no ping for protocol {protocol!r}; expected one of {PROTOCOLS}")


def bulk(
    addr: str, protocol: str, up: int = 0, down: int = 0, timeout: float = 10.0, path: str = "/"
) -> Sample:
    """Send about ``up`` bytes, receive about ``down`` bytes (HTTP: whatever the path returns)."""
    if protocol == "redis":
        n = max(up, down, 1)
        payload = b"x" * n
        request = b"*2\r\n$4\r\nECHO\r\n$%d\r\n%s\r\n" % (n, payload)
        want = len(b"$%d\r\n" % n) + n + 2
        password = _PASSWORDS.get(addr)
        if password is not None:  # AUTH in the same write: one round trip, as before
            request = resp(b"AUTH", password.encode()) + request
            want += len(b"+OK\r\n")
        return _exchange(addr, request, lambda buf: len(buf) >= want, timeout)
    if protocol == "postgres":
        return _postgres_query(
            addr, f"SELECT length('{'x' * up}'), repeat('y', {max(down, 0)})", timeout
        )
    if protocol == "http":
        pad = min(up, _HTTP_PAD_MAX)
        return _exchange(addr, _http_request(path, pad), None, timeout)
    raise ValueError(f"no bulk exchange for protocol {protocol!r}; expected one of {PROTOCOLS}")


def close_time(addr: str, timeout: float = 5.0) -> Sample:
    """Half-close our side; time until the server's close comes back through the link."""
    try:
        sock = socket.create_connection(split(addr), timeout=timeout)
    except OSError as exc:
        return Sample(False, 0.0, error=_why(exc))
    with sock:
        sock.settimeout(timeout)
        started = time.perf_counter()
        try:
            sock.shutdown(socket.SHUT_WR)
            received = 0
            while data := sock.recv(65536):
                received += len(data)
            return Sample(True, time.perf_counter() - started, received)
        except OSError as exc:
            return Sample(False, time.perf_counter() - started, error=_why(exc))


def _http_request(path: str, pad: int = 0) -> bytes:
    extra = f"X-Harness-Pad: {'p' * pad}\r\n" if pad else ""
    return (
        f"GET {path} HTTP/1.0\r\nHost: harness\r\nUser-Agent: harness-faults\r\n{extra}"
        "Connection: close\r\n\r\n"
    ).encode()


def _exchange(addr: str, request: bytes, done, timeout: float) -> Sample:
    """Send ``request``; read until ``done(buffer)`` (None: until the server closes)."""
    try:
        sock = socket.create_connection(split(addr), timeout=timeout)
    except OSError as exc:
        return Sample(False, 0.0, error=_why(exc))
    with sock:
        sock.settimeout(timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buf = bytearray()
        chunks = 0
        started = time.perf_counter()
        try:
            sock.sendall(request)
            while True:
                data = sock.recv(65536)
                if not data:
                    ok = done is None and bool(buf)
                    return Sample(
                        ok, time.perf_counter() - started, len(buf), chunks, "" if ok else "eof"
                    )
                chunks += 1
                buf += data
                if done is not None and done(buf):
                    return Sample(True, time.perf_counter() - started, len(buf), chunks)
        except OSError as exc:
            return Sample(False, time.perf_counter() - started, len(buf), chunks, _why(exc))


def _postgres_query(addr: str, sql: str, timeout: float) -> Sample:
    """Start a session as ``postgres`` (with the address's password when the server asks
    for one), then time one simple query."""
    auth = PgAuth(_PASSWORDS.get(addr))
    try:
        sock = socket.create_connection(split(addr), timeout=timeout)
    except OSError as exc:
        return Sample(False, 0.0, error=_why(exc))
    with sock:
        sock.settimeout(timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        params = b"user\0postgres\0database\0postgres\0\0"
        started = time.perf_counter()
        received = chunks = 0
        try:
            sock.sendall(struct.pack("!II", 8 + len(params), 196608) + params)
            reader = _Messages(sock)
            while (kind := reader.next()) != b"Z":
                if kind == b"E":
                    return Sample(False, time.perf_counter() - started, error="startup refused")
                if kind == b"R" and reader.body[:4] != bytes(4):
                    reply = auth.answer(reader.body)
                    if reply is None:
                        return Sample(False, time.perf_counter() - started, error="no password")
                    if reply:
                        sock.sendall(b"p" + struct.pack("!I", 4 + len(reply)) + reply)
            query = sql.encode() + b"\0"
            started = time.perf_counter()
            reader.received = reader.chunks = 0
            sock.sendall(b"Q" + struct.pack("!I", 4 + len(query)) + query)
            failed = False
            while (kind := reader.next()) != b"Z":
                failed = failed or kind == b"E"
            received, chunks = reader.received, reader.chunks
            with contextlib.suppress(OSError):
                sock.sendall(b"X\0\0\0\4")
            return Sample(
                not failed,
                time.perf_counter() - started,
                received,
                chunks,
                "query failed" if failed else "",
            )
        except _Eof:
            return Sample(False, time.perf_counter() - started, received, chunks, "eof")
        except OSError as exc:
            return Sample(False, time.perf_counter() - started, received, chunks, _why(exc))


class _Eof(Exception):
    pass


class _Messages:
    """Reads PostgreSQL backend messages (type byte, length) from a socket."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock, self.buf, self.received, self.chunks = sock, bytearray(), 0, 0
        self.body = b""  # the last message's body

    def _fill(self, n: int) -> None:
        while len(self.buf) < n:
            data = self.sock.recv(262144)
            if not data:
                raise _Eof
            self.received += len(data)
            self.chunks += 1
            self.buf += data

    def next(self) -> bytes:
        self._fill(5)
        kind = bytes(self.buf[:1])
        (length,) = struct.unpack("!I", self.buf[1:5])
        self._fill(1 + length)
        self.body = bytes(self.buf[5 : 1 + length])
        del self.buf[: 1 + length]
        return kind


def _why(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if isinstance(exc, ConnectionResetError):
        return "reset"
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timeout"
    return f"{type(exc).__name__}: {exc}"
