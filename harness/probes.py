"""Readiness probes: one cheap check per call, true when the component answers properly.

Probes speak each protocol directly on a socket (HTTP GET, Redis PING, PostgreSQL's
wire protocol for ``SELECT 1``), so a probe that says ready means the component served
a real request, not merely that a port was open. No client library is imported: the
probes run while every component starts at once on a small machine, where importing
psycopg alone costs ~0.2 s of CPU.
"""

from __future__ import annotations

import socket
import struct

from harness.topology import Probe

TIMEOUT = 0.5


def check(probe: Probe, host: str, port: int) -> bool:
    """Run the probe once; any failure (refused, wrong answer, timeout) is False."""
    try:
        return _CHECKS[probe.kind](probe.target, host, port)
    except Exception:
        return False


def describe(probe: Probe, host: str, port: int) -> str:
    """What the probe waits for, in words, for timeout messages."""
    if probe.kind == "http":
        return f"HTTP 2xx from GET http://{host}:{port}{probe.target or '/'}"
    if probe.kind == "postgres":
        return f"{probe.target or 'SELECT 1'!r} to succeed on postgresql://{host}:{port}"
    if probe.kind == "redis":
        return f"+PONG to PING on redis://{host}:{port}"
    return f"a TCP connection to {host}:{port}"


def _tcp(_: str, host: str, port: int) -> bool:
    with socket.create_connection((host, port), timeout=TIMEOUT):
        return True


def _http(path: str, host: str, port: int) -> bool:
    with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
        sock.settimeout(TIMEOUT)
        request = f"GET {path or '/'} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: harness-probe\r\n\r\n"
        sock.sendall(request.encode())
        status = sock.recv(64).split(b"\r\n", 1)[0].split()
        return len(status) >= 2 and status[1].startswith(b"2")


def _redis(_: str, host: str, port: int) -> bool:
    with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
        sock.settimeout(TIMEOUT)
        sock.sendall(b"*1\r\n$4\r\nPING\r\n")
        return sock.recv(64).startswith(b"+PONG")


def _postgres(sql: str, host: str, port: int) -> bool:
    """Start a session as user ``postgres`` (trust auth), run ``sql``, expect no error."""
    with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
        sock.settimeout(TIMEOUT)
        params = b"user\0postgres\0database\0postgres\0\0"
        sock.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
        if not _pg_until_ready(sock):
            return False
        query = (sql or "SELECT 1").encode() + b"\0"
        sock.sendall(b"Q" + struct.pack("!i", 4 + len(query)) + query)
        ok = _pg_until_ready(sock)
        sock.sendall(b"X" + struct.pack("!i", 4))
        return ok


def _pg_until_ready(sock: socket.socket) -> bool:
    """Read backend messages up to ReadyForQuery; False on an error or an auth request."""
    buffer = b""
    while True:
        while len(buffer) < 5:
            chunk = sock.recv(4096)
            if not chunk:
                return False
            buffer += chunk
        kind, length = buffer[:1], struct.unpack("!i", buffer[1:5])[0]
        while len(buffer) < 1 + length:
            chunk = sock.recv(4096)
            if not chunk:
                return False
            buffer += chunk
        body, buffer = buffer[5 : 1 + length], buffer[1 + length :]
        if kind == b"E":  # e.g. "the database system is starting up"
            return False
        if kind == b"R" and struct.unpack("!i", body[:4])[0] != 0:
            return False  # a password is wanted: the harness's topologies use trust
        if kind == b"Z":
            return True


_CHECKS = {"tcp": _tcp, "http": _http, "redis": _redis, "postgres": _postgres}
