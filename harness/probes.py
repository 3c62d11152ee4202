"""Readiness probes: one cheap check per call, true when the component answers properly.

Probes speak each protocol directly on a socket (HTTP GET, Redis PING) or through
psycopg (``SELECT 1``), so a probe that says ready means the component served a real
request, not merely that a port was open.
"""

from __future__ import annotations

import socket

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
    import psycopg

    with socket.create_connection((host, port), timeout=TIMEOUT):
        pass  # fail fast on a closed port before paying for a PostgreSQL handshake
    with psycopg.connect(
        host=host, port=port, user="postgres", dbname="postgres", connect_timeout=1, autocommit=True
    ) as conn:
        conn.execute(sql or "SELECT 1").fetchall()
    return True


_CHECKS = {"tcp": _tcp, "http": _http, "redis": _redis, "postgres": _postgres}
