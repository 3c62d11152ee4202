"""Addresses: parse the ``HOST:PORT`` arguments of the command lines into typed endpoints."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoint:
    """A TCP endpoint."""

    host: str
    port: int

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"


def parse_hostport(text: str, what: str = "address") -> Endpoint:
    """Parse ``HOST:PORT``; raise ValueError saying what was wrong."""
    host, sep, port = text.strip().rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{what}: {text!r} is not HOST:PORT (e.g. 127.0.0.1:5432)")
    return Endpoint(host.strip("[]"), int(port))


def postgres_dsn(target: str) -> str:
    """A libpq URI for ``HOST:PORT`` (user and database ``postgres``, trust auth).

    A value that already looks like a DSN (``postgresql://...`` or ``key=value``) is
    returned unchanged.
    """
    if "://" in target or "=" in target:
        return target
    ep = parse_hostport(target, "--postgres")
    return f"postgresql://postgres@{ep.host}:{ep.port}/postgres"
