"""Addresses: parse the ``HOST:PORT`` arguments of the command lines into typed endpoints."""

from __future__ import annotations

import os
from dataclasses import dataclass

# Passwords come from the environment, never the command line (which `ps` shows to every
# local user): libpq's and asyncpg's own PGPASSWORD for PostgreSQL, this one for Redis.
REDIS_PASSWORD_ENV = "REFSYS_REDIS_PASSWORD"


def redis_password() -> str | None:
    """Redis's password (``$REFSYS_REDIS_PASSWORD``); None when unset or empty."""
    return os.environ.get(REDIS_PASSWORD_ENV) or None


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
    """A libpq URI for ``HOST:PORT`` (user and database ``postgres``; the password, if
    the server wants one, from ``$PGPASSWORD``).

    A value that already looks like a DSN (``postgresql://...`` or ``key=value``) is
    returned unchanged.
    """
    if "://" in target or "=" in target:
        return target
    ep = parse_hostport(target, "--postgres")
    return f"postgresql://postgres@{ep.host}:{ep.port}/postgres"
