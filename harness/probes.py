"""Readiness probes: one cheap check per call, true when the component answers properly.

Probes speak each protocol directly on a socket (HTTP GET, Redis PING, PostgreSQL's
wire protocol for ``SELECT 1``), so a probe that says ready means the component served
a real request, not merely that a port was open. No client library is imported: the
probes run while every component starts at once on a small machine, where importing
psycopg alone costs ~0.2 s of CPU.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import socket
import struct

from harness.topology import Probe

TIMEOUT = 0.5


def check(probe: Probe, host: str, port: int, password: str | None = None) -> bool:
    """Run the probe once; any failure (refused, wrong answer, timeout) is False.
    ``password`` is the component's (PostgreSQL: cleartext, MD5 or SCRAM-SHA-256 as the
    server asks; Redis: AUTH before PING)."""
    try:
        return _CHECKS[probe.kind](probe.target, host, port, password)
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


def _tcp(_: str, host: str, port: int, password: str | None) -> bool:
    with socket.create_connection((host, port), timeout=TIMEOUT):
        return True


def _http(path: str, host: str, port: int, password: str | None) -> bool:
    with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
        sock.settimeout(TIMEOUT)
        request = f"GET {path or '/'} HTTP/1.0\r\nHost: {host}\r\nUser-Agent: harness-probe\r\n\r\n"
        sock.sendall(request.encode())
        status = sock.recv(64).split(b"\r\n", 1)[0].split()
        return len(status) >= 2 and status[1].startswith(b"2")


def resp(*words: bytes) -> bytes:
    """One Redis command in RESP, e.g. ``resp(b"AUTH", b"secret")``."""
    return b"*%d\r\n" % len(words) + b"".join(b"$%d\r\n%s\r\n" % (len(w), w) for w in words)


def _redis(_: str, host: str, port: int, password: str | None) -> bool:
    with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
        sock.settimeout(TIMEOUT)
        ping = resp(b"PING")
        if password is None:
            sock.sendall(ping)
            return sock.recv(64).startswith(b"+PONG")
        sock.sendall(resp(b"AUTH", password.encode()) + ping)
        answer = b""
        while answer.count(b"\r\n") < 2:
            chunk = sock.recv(64)
            if not chunk:
                return False
            answer += chunk
        return answer.startswith(b"+OK\r\n+PONG")


def _postgres(sql: str, host: str, port: int, password: str | None) -> bool:
    """Start a session as user ``postgres`` (with ``password`` when the server asks for
    one), run ``sql``, expect no error."""
    with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
        sock.settimeout(TIMEOUT)
        params = b"user\0postgres\0database\0postgres\0\0"
        sock.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
        if not _pg_until_ready(sock, PgAuth(password)):
            return False
        query = (sql or "SELECT 1").encode() + b"\0"
        sock.sendall(b"Q" + struct.pack("!i", 4 + len(query)) + query)
        ok = _pg_until_ready(sock, PgAuth(None))
        sock.sendall(b"X" + struct.pack("!i", 4))
        return ok


class PgAuth:
    """Answers to PostgreSQL's authentication requests for user ``postgres``: None when
    it cannot answer (no password, an unknown method, a server that fails SCRAM's proof)."""

    def __init__(self, password: str | None) -> None:
        self.password = password
        self.first_bare = ""
        self.server_signature = b""

    def answer(self, body: bytes) -> bytes | None:
        code = struct.unpack("!i", body[:4])[0]
        if self.password is None:
            return None
        pw = self.password.encode()
        if code == 3:  # cleartext
            return pw + b"\0"
        if code == 5:  # MD5 with a 4-byte salt
            inner = hashlib.md5(pw + b"postgres").hexdigest().encode()
            return b"md5" + hashlib.md5(inner + body[4:8]).hexdigest().encode() + b"\0"
        if code == 10 and b"SCRAM-SHA-256\0" in body[4:]:
            self.first_bare = "n=,r=" + base64.b64encode(os.urandom(18)).decode()
            first = ("n,," + self.first_bare).encode()
            return b"SCRAM-SHA-256\0" + struct.pack("!i", len(first)) + first
        if code == 11 and self.first_bare:
            return self._scram_final(body[4:].decode())
        if code == 12:
            final = dict(p.split("=", 1) for p in body[4:].decode().split(","))
            ok = hmac.compare_digest(base64.b64decode(final.get("v", "")), self.server_signature)
            return b"" if ok else None
        return None

    def _scram_final(self, server_first: str) -> bytes | None:
        assert self.password is not None
        fields = dict(p.split("=", 1) for p in server_first.split(","))
        nonce = fields["r"]
        if not nonce.startswith(self.first_bare.split("r=", 1)[1]):
            return None
        salted = hashlib.pbkdf2_hmac(
            "sha256", self.password.encode(), base64.b64decode(fields["s"]), int(fields["i"])
        )
        without_proof = f"c=biws,r={nonce}"
        message = f"{self.first_bare},{server_first},{without_proof}".encode()
        client_key = hmac.digest(salted, b"Client Key", "sha256")
        signature = hmac.digest(hashlib.sha256(client_key).digest(), message, "sha256")
        proof = bytes(a ^ b for a, b in zip(client_key, signature, strict=True))
        server_key = hmac.digest(salted, b"Server Key", "sha256")
        self.server_signature = hmac.digest(server_key, message, "sha256")
        return f"{without_proof},p={base64.b64encode(proof).decode()}".encode()


def _pg_until_ready(sock: socket.socket, auth: PgAuth) -> bool:
    """Read backend messages up to ReadyForQuery, answering authentication requests;
    False on an error or a request ``auth`` cannot answer."""
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
        if kind == b"E":  # e.g. "the database system is starting up", a wrong password
            return False
        if kind == b"R" and struct.unpack("!i", body[:4])[0] != 0:
            reply = auth.answer(body)
            if reply is None:
                return False
            if reply:  # SASLFinal wants no reply, only the check above
                sock.sendall(b"p" + struct.pack("!i", 4 + len(reply)) + reply)
        if kind == b"Z":
            return True


_CHECKS = {"tcp": _tcp, "http": _http, "redis": _redis, "postgres": _postgres}
