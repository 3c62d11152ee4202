"""Database: a lazily connected asyncpg pool with per-call timeouts and a circuit breaker.

Nothing connects at start; the pool opens connections on first use and replaces broken
ones, so PostgreSQL may be down, restarted or replaced at any time. :meth:`Database.run`
bounds a whole call (acquire + queries) by ``min(timeout, deadline)`` when timeouts are on,
and turns every "cannot reach it / too slow" failure into :class:`Unavailable`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import asyncpg

from reference_system.breaker import CircuitBreaker

T = TypeVar("T")


class Unavailable(Exception):
    """A dependency could not answer in time (down, slow, breaker open, deadline spent)."""


UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InsufficientResourcesError,
    asyncpg.exceptions.TransactionRollbackError,
    asyncpg.exceptions.ReadOnlySQLTransactionError,
    asyncpg.exceptions.ConnectionDoesNotExistError,
)


async def _no_reset(conn: asyncpg.Connection) -> None:
    """Skip asyncpg's per-release reset query: we never change session state."""


class Database:
    """The system of record, reached through one lazily created pool."""

    def __init__(
        self,
        dsn: str,
        pool_size: int,
        timeout_s: float | None,
        connect_timeout_s: float | None,
        breaker: CircuitBreaker | None,
    ) -> None:
        self.dsn = dsn
        self.pool_size = pool_size
        self.timeout_s = timeout_s
        self.connect_timeout_s = connect_timeout_s
        self.breaker = breaker
        self._pool: asyncpg.Pool | None = None

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            pool = asyncpg.create_pool(
                self.dsn,
                min_size=0,
                max_size=self.pool_size,
                timeout=self.connect_timeout_s or 60.0,
                max_inactive_connection_lifetime=120.0,
                reset=_no_reset,
                server_settings={"application_name": "refsys"},
            )
            await pool  # min_size=0: opens no connection
            self._pool = pool
        return self._pool

    async def run(
        self,
        fn: Callable[[asyncpg.Connection], Awaitable[T]],
        deadline: float | None = None,
        use_breaker: bool = True,
        timeout_s: float | None = None,
    ) -> T:
        """Run ``fn(conn)`` on a pooled connection; raise :class:`Unavailable` on trouble.

        ``deadline`` is a ``time.monotonic()`` instant; it only bounds the call when this
        database has timeouts on. ``timeout_s`` overrides the per-call timeout.
        """
        breaker = self.breaker if use_breaker else None
        if breaker is not None and not breaker.allow():
            raise Unavailable("database circuit breaker is open")
        limit = timeout_s if timeout_s is not None else self.timeout_s
        if limit is not None and deadline is not None:
            limit = min(limit, deadline - time.monotonic())
            if limit <= 0:
                if breaker is not None:
                    breaker.release_probe()
                raise Unavailable("request deadline passed before the database call")
        try:
            if limit is None:
                result = await self._call(fn, None)
            else:
                async with asyncio.timeout(limit):
                    result = await self._call(fn, limit)
        except UNAVAILABLE_ERRORS as exc:
            if breaker is not None:
                if isinstance(exc, asyncpg.exceptions.TransactionRollbackError):
                    breaker.release_probe()
                else:
                    breaker.failure()
            kind = "timed out" if isinstance(exc, TimeoutError) else "unavailable"
            raise Unavailable(f"database {kind}: {type(exc).__name__}: {exc}") from exc
        except BaseException:
            if breaker is not None:
                breaker.release_probe()
            raise
        if breaker is not None:
            breaker.success()
        return result

    async def _call(
        self, fn: Callable[[asyncpg.Connection], Awaitable[T]], limit: float | None
    ) -> T:
        pool = await self._get_pool()
        conn = await pool.acquire(timeout=limit)
        try:
            result = await fn(conn)
        except asyncpg.PostgresError as exc:
            if isinstance(exc, UNAVAILABLE_ERRORS):
                conn.terminate()
            await pool.release(conn)
            raise
        except (TimeoutError, asyncio.CancelledError, OSError, asyncpg.InterfaceError):
            # Timed out, cancelled or the link broke: never reuse a connection that may
            # still be busy; terminating it also keeps release() from waiting on it.
            conn.terminate()
            with contextlib.suppress(Exception):
                await pool.release(conn)
            raise
        except BaseException:
            await pool.release(conn)  # e.g. a validation error after a rolled-back transaction
            raise
        await pool.release(conn)
        return result

    def pool_use(self) -> tuple[int, int] | None:
        """(busy, idle) connections of the pool; None before the first use."""
        pool = self._pool
        if pool is None:
            return None
        idle = pool.get_idle_size()
        return pool.get_size() - idle, idle

    async def identity(self) -> str:
        """Which server this is (system id + start time): changes when the DB is replaced."""

        async def q(conn: asyncpg.Connection) -> Any:
            return await conn.fetchrow(
                "SELECT (SELECT system_identifier FROM pg_control_system())::text AS sid,"
                " pg_postmaster_start_time()::text AS started"
            )

        row = await self.run(q, use_breaker=False, timeout_s=5.0)
        return f"{row['sid']}@{row['started']}"

    async def close(self) -> None:
        if self._pool is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self._pool.close()
            self._pool = None
