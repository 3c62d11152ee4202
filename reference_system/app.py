"""App: the 一码通 HTTP API, a plain ASGI application served by one uvicorn process per worker.

    REFSYS_OVERRIDES='{"cache": false}' python -m reference_system.app \\
        --host 127.0.0.1 --port 8001 --postgres 127.0.0.1:5432 --redis 127.0.0.1:6379 \\
        --profile hardened --instance app-1 [--spool-dir DIR] [--token-key-file FILE]

The token signing key is required: ``$REFSYS_TOKEN_KEY`` or ``--token-key-file``, at
least 32 bytes; without it the app exits with code 2 and a one-line message.

Routes (every error is JSON ``{"error": ...}``; overload rejections are 503 + Retry-After):

- ``GET  /v1/code/{person_id}``  show code: colour, status_asof, signed token, degraded flag
- ``POST /v1/scans``             record a scan; idempotent on ``scan_id``; ack once durable
- ``GET  /v1/results/{person_id}`` recent test results
- ``POST /v1/results``           ``{"results": [...]}`` lab batch; ack once durable *and* visible
- ``POST /v1/tokens/verify``     ``{"token": ...}`` -> valid / expired / forged
- ``GET  /healthz``, ``GET /readyz`` liveness; readiness (dependencies reachable)
- ``GET  /metrics``              Prometheus text (:mod:`reference_system.metrics`)

Nothing connects at start: PostgreSQL and Redis are reached lazily and reconnected after
failures. Which mechanisms are active is decided by :mod:`reference_system.settings`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from reference_system import tokens
from reference_system.addresses import Endpoint, parse_hostport, postgres_dsn
from reference_system.admission import Admission, Rejected
from reference_system.breaker import CircuitBreaker
from reference_system.cache import CodeCache, CodeEntry
from reference_system.database import Database, Unavailable
from reference_system.metrics import CONTENT_TYPE, AppMetrics, route_of
from reference_system.settings import OVERRIDES_ENV, PROFILES, Settings, SettingsError, load
from reference_system.spool import Replayer, ScanConflict, ScanRecord, Spool
from reference_system.validation import (
    BadInput,
    ScanRequest,
    parse_person_id,
    parse_results,
    parse_scan,
    parse_verify,
)

log = logging.getLogger("reference_system.app")

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Reply = tuple[int, Any]

_JSON = (b"content-type", b"application/json")
_RETRY_AFTER = (b"retry-after", b"1")
# Marks a 503 that sheds load (this worker is busy), as opposed to one where a dependency
# is down: the gateway retries the latter on another worker, never the former (a retry
# of shed load at a second layer only multiplies it).
_BUSY = (b"x-refusal", b"busy")
RESULTS_SHOWN = 10

SQL_CODE_ONE = (
    "SELECT version, colour, status_asof, last_test_at, last_result"
    " FROM people WHERE person_id = $1"
)
SQL_CODE_PERSON = "SELECT version, colour, status_asof FROM people WHERE person_id = $1"
SQL_CODE_LAST = "SELECT result, at FROM results WHERE person_id = $1 ORDER BY at DESC LIMIT 1"
SQL_CODE_TRIPS = (
    "SELECT count(*) FROM scans WHERE person_id = $1 AND at > now() - interval '14 days'"
)
SQL_SCAN_INSERT = (
    "INSERT INTO scans (scan_id, person_id, venue_id, at) VALUES ($1, $2, $3, $4)"
    " ON CONFLICT (scan_id) DO NOTHING RETURNING scan_id"
)
SQL_SCAN_GET = "SELECT person_id, venue_id, at FROM scans WHERE scan_id = $1"
SQL_SCAN_REPLAY = (
    "INSERT INTO scans (scan_id, person_id, venue_id, at)"
    " SELECT * FROM unnest($1::text[], $2::int[], $3::int[], $4::timestamptz[])"
    " ON CONFLICT (scan_id) DO NOTHING RETURNING scan_id"
)
SQL_SCANS_GET = "SELECT scan_id, person_id, venue_id, at FROM scans WHERE scan_id = ANY($1::text[])"
SQL_LOCK_PEOPLE = (
    "SELECT person_id FROM people WHERE person_id = ANY($1::int[]) ORDER BY person_id FOR UPDATE"
)
SQL_INSERT_RESULTS = (
    "INSERT INTO results (sample_id, person_id, result, at)"
    " SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::timestamptz[])"
    " ON CONFLICT (sample_id) DO NOTHING RETURNING sample_id"
)
# A positive makes a person red; a negative clears yellow (overdue test) to green; red stays
# red. Every touched person gets a new version, which orders the cache (see cache.py).
SQL_APPLY_RESULTS = """
UPDATE people p SET
  colour = CASE WHEN u.pos THEN 'red' WHEN p.colour = 'yellow' THEN 'green' ELSE p.colour END,
  status_asof = CASE WHEN (u.pos AND p.colour <> 'red') OR (NOT u.pos AND p.colour = 'yellow')
                     THEN now() ELSE p.status_asof END,
  last_result = CASE WHEN p.last_test_at IS NULL OR u.at >= p.last_test_at
                     THEN u.result ELSE p.last_result END,
  last_test_at = GREATEST(p.last_test_at, u.at),
  version = p.version + 1
FROM unnest($1::int[], $2::bool[], $3::timestamptz[], $4::text[]) AS u(person_id, pos, at, result)
WHERE p.person_id = u.person_id
RETURNING p.person_id, p.version, p.colour, p.status_asof, p.last_test_at, p.last_result
"""
SQL_RESULTS = (
    "SELECT sample_id, result, at FROM results WHERE person_id = $1"
    f" ORDER BY at DESC LIMIT {RESULTS_SHOWN}"
)
SQL_PERSON_EXISTS = "SELECT 1 FROM people WHERE person_id = $1"
SQL_PEOPLE_ROWS = (
    "SELECT person_id, version, colour, status_asof, last_test_at, last_result"
    " FROM people WHERE person_id = ANY($1::int[])"
)
REPUBLISH_EVERY_S = 0.5
REPUBLISH_BATCH = 1000


def iso(value: datetime | None) -> str:
    """UTC ISO-8601 with a Z, or '' for None."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_unix(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))


def entry_from_row(person_id: int, row: Any, now: float) -> CodeEntry:
    asof: datetime = row["status_asof"]
    return CodeEntry(
        person_id=person_id,
        version=row["version"],
        colour=row["colour"],
        status_asof=iso(asof),
        status_asof_unix=int(asof.timestamp()),
        last_test_at=iso(row["last_test_at"]),
        last_result=row["last_result"] or "",
        cached_at=now,
    )


class ClientGone(Exception):
    """The client disconnected before its request body arrived."""


class Service:
    """The ASGI application: routing, admission, and the five operations."""

    def __init__(
        self,
        settings: Settings,
        dsn: str,
        redis: Endpoint,
        instance: str,
        spool_dir: Path,
        key: bytes,
    ) -> None:
        s = settings
        self.settings = s
        self.instance = instance
        self.key = key
        self.breaker = self._new_breaker()
        self.db = Database(
            dsn,
            s.db_pool_size,
            s.db_timeout_ms / 1000 if s.db_timeouts else None,
            s.db_connect_timeout_ms / 1000 if s.db_timeouts else None,
            self.breaker,
        )
        # Writes get twice the read timeout: still below nginx's upstream read timeout, so
        # the app answers 503 itself rather than the gateway a 504.
        self.write_timeout_s = 2 * s.db_timeout_ms / 1000 if s.db_timeouts else None
        self.cache = (
            CodeCache(
                redis,
                s.redis_timeout_ms / 1000 if s.redis_timeouts else None,
                s.cache_fresh_s,
                s.cache_stale_s,
                CircuitBreaker(s.breaker_failures, s.breaker_reset_ms / 1000)
                if s.breaker
                else None,
                read_model=s.read_model,
            )
            if s.cache
            else None
        )
        self.publish_timeout_s = (
            max(0.25, 5 * s.redis_timeout_ms / 1000) if s.redis_timeouts else None
        )
        self.admission = (
            Admission(s.max_inflight, s.max_queue, s.queue_timeout_ms / 1000)
            if s.admission
            else None
        )
        self.spool_dir = spool_dir
        self.spool: Spool | None = None
        self.replayer: Replayer | None = None
        self._replay_task: asyncio.Task[None] | None = None
        # The spooled path's lookup of a new scan_id in the DB has its own breaker, so a
        # slow DB opens it (scans are then accepted without the lookup) without refusing
        # the DB to everything else.
        self.scan_check_breaker = self._new_breaker()
        # Spooled scans the DB already held with other contents when they were replayed:
        # acknowledged, not stored as acknowledged (another worker took the same scan_id
        # with other contents before either reached the DB; see README).
        self.replay_conflicts = 0
        self._last_conflict_log = 0.0
        # People whose committed colour could not be published to Redis (ingest answered
        # 503): republished from the DB in the background, so the read model (whose
        # entries never expire) does not keep an old colour until the lab retries.
        self._unpublished: set[int] = set()
        self._republish_task: asyncio.Task[None] | None = None
        self.republish_every_s = REPUBLISH_EVERY_S
        self.metrics = AppMetrics(self._metrics_state)

    def _metrics_state(self) -> dict[str, Any]:
        """What the mechanisms of this profile show now (absent mechanisms: absent keys)."""
        out: dict[str, Any] = {}
        if self.admission is not None:
            out.update(
                inflight=self.admission.inflight,
                queued=self.admission.queued,
                rejected=self.admission.rejected,
            )
        if self.replayer is not None:
            out.update(
                backlog=self.replayer.backlog_bytes(),
                replayed=self.replayer.replayed,
                conflicts=self.replay_conflicts,
            )
        breakers = {
            "database": self.breaker,
            "scan_check": self.scan_check_breaker,
            "cache": self.cache.breaker if self.cache is not None else None,
        }
        out["breakers"] = {k: b.state for k, b in breakers.items() if b is not None}
        out["pool"] = self.db.pool_use()
        return out

    def _new_breaker(self) -> CircuitBreaker | None:
        s = self.settings
        return CircuitBreaker(s.breaker_failures, s.breaker_reset_ms / 1000) if s.breaker else None

    # -- lifecycle

    async def startup(self) -> None:
        if self.settings.spool:
            self.spool = Spool(self.spool_dir, fsync=self.settings.spool_fsync)
            self.replayer = Replayer(self.spool, self._replay_sink, self.db.identity)
            self._replay_task = asyncio.get_running_loop().create_task(self.replayer.run())

    async def shutdown(self) -> None:
        for task in (self._replay_task, self._republish_task):
            if task is None:
                continue
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.spool is not None:
            self.spool.close()
        if self.cache is not None:
            await self.cache.close()
        await self.db.close()

    async def _replay_sink(self, records: list[ScanRecord]) -> None:
        cols = (
            [r.scan_id for r in records],
            [r.person_id for r in records],
            [r.venue_id for r in records],
            [datetime.fromisoformat(r.at) for r in records],
        )

        async def q(conn: asyncpg.Connection) -> Any:
            inserted = {r["scan_id"] for r in await conn.fetch(SQL_SCAN_REPLAY, *cols)}
            present = [r.scan_id for r in records if r.scan_id not in inserted]
            return await conn.fetch(SQL_SCANS_GET, present) if present else []

        rows = await self.db.run(q, use_breaker=False, timeout_s=10.0)
        self._count_replay_conflicts(records, rows)

    def _count_replay_conflicts(self, records: list[ScanRecord], rows: Iterable[Any]) -> None:
        """Count (and log) spooled scans whose id the DB holds with other contents."""
        stored = {r["scan_id"]: r for r in rows}
        conflicts = [
            r for r in records if r.scan_id in stored and _scan_row_differs(stored[r.scan_id], r)
        ]
        if not conflicts:
            return
        self.replay_conflicts += len(conflicts)
        now = time.monotonic()
        if now - self._last_conflict_log >= 10:
            self._last_conflict_log = now
            log.warning(
                "spool: %d acknowledged scan(s) conflict with what the database holds "
                "(e.g. scan_id %r); %d so far",
                len(conflicts),
                conflicts[0].scan_id,
                self.replay_conflicts,
            )

    # -- ASGI

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        if not path.startswith("/v1/"):
            if path == "/healthz":
                return await _send(send, 200, {"status": "ok", "instance": self.instance})
            if path == "/readyz":
                status, body = await self.readyz()
                return await _send(send, status, body)
            if path == "/metrics":
                return await _send_raw(send, 200, CONTENT_TYPE, self.metrics.render())
            return await _send(send, 404, {"error": f"no route for {method} {path}"})
        started = time.monotonic()
        answered: list[int] = []

        async def counted(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                answered.append(message["status"])
            await send(message)

        try:
            await self._api(scope, receive, counted, path, method)
        finally:
            if answered:
                self.metrics.observe(route_of(path), answered[0], time.monotonic() - started)

    async def _api(
        self, scope: dict[str, Any], receive: Receive, send: Send, path: str, method: str
    ) -> None:
        deadline = self._deadline(scope)
        if deadline is not None and deadline <= time.monotonic():
            return await _send(
                send, 503, {"error": "request expired before it could be served"}, True, busy=True
            )
        admission = self.admission
        if admission is not None:
            try:
                budget = None if deadline is None else deadline - time.monotonic()
                await admission.acquire(budget)
            except Rejected as exc:
                return await _send(send, 503, {"error": str(exc)}, True, busy=True)
        try:
            try:
                status, body = await self._route(method, path, receive, deadline)
            except BadInput as exc:
                status, body = exc.status, exc.body()
            except Unavailable as exc:
                return await _send(send, 503, {"error": str(exc)}, True)
            except ClientGone:
                return None
            except Exception:
                log.exception("unexpected error on %s %s", method, path)
                status, body = 500, {"error": "internal error"}
            await _send(send, status, body)
        finally:
            if admission is not None:
                admission.release()
        return None

    def _deadline(self, scope: dict[str, Any]) -> float | None:
        """The request's monotonic deadline, counting time already spent queued in nginx."""
        budget_ms = self.settings.deadline_ms
        if not budget_ms:
            return None
        budget = budget_ms / 1000
        for name, value in scope["headers"]:
            if name == b"x-request-start":
                try:
                    start = float(value[2:] if value.startswith(b"t=") else value)
                except ValueError:
                    break
                waited = time.time() - start
                if waited > 0:
                    budget -= waited
                break
        return time.monotonic() + budget

    async def _route(
        self, method: str, path: str, receive: Receive, deadline: float | None
    ) -> Reply:
        parts = path.split("/")  # ['', 'v1', resource, ...]
        resource = parts[2] if len(parts) > 2 else ""
        if resource == "code" and len(parts) == 4:
            _allow(method, "GET", path)
            return await self.show_code(parse_person_id(parts[3]), deadline)
        if resource == "results" and len(parts) == 4:
            _allow(method, "GET", path)
            return await self.lookup_results(parse_person_id(parts[3]), deadline)
        if path == "/v1/results":
            _allow(method, "POST", path)
            return await self.ingest(await self._body(receive))
        if path == "/v1/scans":
            _allow(method, "POST", path)
            return await self.scan(await self._body(receive), deadline)
        if path == "/v1/tokens/verify":
            _allow(method, "POST", path)
            return self.verify(await self._body(receive))
        raise BadInput(f"no route for {method} {path}", status=404)

    async def _body(self, receive: Receive) -> bytes:
        limit = self.settings.max_body_bytes
        chunks: list[bytes] = []
        size = 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                raise ClientGone()
            chunk = msg.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise BadInput(f"body is larger than {limit} bytes", status=413)
            chunks.append(chunk)
            if not msg.get("more_body", False):
                return b"".join(chunks)

    # -- show code

    async def show_code(self, person_id: int, deadline: float | None) -> Reply:
        now = time.time()
        cache = self.cache
        if cache is None:
            entry, extra = await self._load_code(person_id, deadline, now)
            return self._code_reply(person_id, entry, now, "database", extra)
        if cache.read_model:
            return await self._show_from_read_model(cache, person_id, deadline, now)
        stale: CodeEntry | None = None
        cache_ok = True
        try:
            cached = await cache.get(person_id, deadline)
        except Unavailable:
            cached = None  # Redis trouble: the database is the source of truth anyway
            cache_ok = False
        if cached is not None:
            age = now - cached.cached_at
            if age < cache.fresh_s:
                return self._code_reply(person_id, cached, now, "cache")
            if age < cache.stale_s:
                stale = cached
        try:
            entry, extra = await self._load_code(person_id, deadline, now)
        except Unavailable:
            if stale is not None and self.settings.stale_on_error:
                return self._code_reply(person_id, stale, now, "stale-cache")
            raise
        if entry is not None and cache_ok:
            with contextlib.suppress(Unavailable):
                await cache.fill(entry, deadline)
        return self._code_reply(person_id, entry, now, "database", extra)

    async def _show_from_read_model(
        self, cache: CodeCache, person_id: int, deadline: float | None, now: float
    ) -> Reply:
        """Serve from the read model: its entry is the colour as of the last acknowledged
        ingest whatever its age (ingest writes through before it acks), so there is no
        freshness check and no DB call. A miss in a complete model is an unknown person.
        Only if Redis is unavailable, or the model is not (yet) complete, does the DB
        answer; an incomplete model is filled as the cache would be."""
        try:
            answer = await cache.read(person_id, deadline)
        except Unavailable:
            answer = None  # Redis trouble: the database is the source of truth anyway
        if answer is not None:
            if answer.entry is not None:
                return self._code_reply(person_id, answer.entry, now, "read-model")
            if answer.complete:
                return self._code_reply(person_id, None, now, "read-model")
        entry, extra = await self._load_code(person_id, deadline, now)
        if entry is not None and answer is not None:
            with contextlib.suppress(Unavailable):
                await cache.fill(entry, deadline)
        return self._code_reply(person_id, entry, now, "database", extra)

    async def _load_code(
        self, person_id: int, deadline: float | None, now: float
    ) -> tuple[CodeEntry | None, dict[str, Any] | None]:
        if self.settings.single_query:

            async def one(conn: asyncpg.Connection) -> Any:
                return await conn.fetchrow(SQL_CODE_ONE, person_id)

            row = await self.db.run(one, deadline)
            return (None if row is None else entry_from_row(person_id, row, now)), None

        async def several(conn: asyncpg.Connection) -> Any:
            person = await conn.fetchrow(SQL_CODE_PERSON, person_id)
            if person is None:
                return None
            last = await conn.fetchrow(SQL_CODE_LAST, person_id)
            trips = await conn.fetchval(SQL_CODE_TRIPS, person_id)
            return person, last, trips

        got = await self.db.run(several, deadline)
        if got is None:
            return None, None
        person, last, trips = got
        asof: datetime = person["status_asof"]
        entry = CodeEntry(
            person_id=person_id,
            version=person["version"],
            colour=person["colour"],
            status_asof=iso(asof),
            status_asof_unix=int(asof.timestamp()),
            last_test_at=iso(last["at"]) if last else "",
            last_result=last["result"] if last else "",
            cached_at=now,
        )
        return entry, {"recent_scans": trips}

    def _code_reply(
        self,
        person_id: int,
        entry: CodeEntry | None,
        now: float,
        source: str,
        extra: dict[str, Any] | None = None,
    ) -> Reply:
        self.metrics.code_source(source)
        if entry is None:
            return 404, {"error": f"unknown person_id {person_id}", "person_id": person_id}
        ttl = self.settings.token_ttl_s
        token = tokens.issue(person_id, entry.colour, entry.status_asof_unix, now, ttl, self.key)
        body: dict[str, Any] = {
            "person_id": person_id,
            "colour": entry.colour,
            "status_asof": entry.status_asof,
            "last_test": (
                {"result": entry.last_result, "at": entry.last_test_at}
                if entry.last_test_at
                else None
            ),
            "token": token,
            "expires_at": iso_unix(int(now) + ttl),
            "degraded": source == "stale-cache",
            "source": source,
        }
        if extra:
            body.update(extra)
        return 200, body

    # -- scans

    async def scan(self, body: bytes, deadline: float | None) -> Reply:
        """Record a scan. Validation is offline (the signed token names the person, and
        only known people get tokens), so with the spool nothing here waits on the
        database: the scan is acknowledged once it is fsync'd, and replayed later."""
        req = parse_scan(body)
        refused = scan_refusal(req, self.key, time.time())
        if refused is not None:
            return refused
        answer = {
            "scan_id": req.scan_id,
            "person_id": req.person_id,
            "venue_id": req.venue_id,
            "at": iso(req.at),
            "status": "recorded",
        }
        if self.spool is not None:
            return await self._scan_spooled(self.spool, req, answer, deadline)
        return await self._scan_direct(req, answer)

    async def _scan_spooled(
        self, spool: Spool, req: ScanRequest, answer: dict[str, Any], deadline: float | None
    ) -> Reply:
        """Acknowledge a scan once it is in the spool, refusing a conflicting repeat of its
        ``scan_id`` as the direct path does (409), as far as this worker can know:

        - the id is in the spool's index: identical, 200 (not appended again); other
          contents, 409; the database is not asked;
        - else the database is asked (``scan_check``, bounded by ``scan_check_timeout_ms``
          and its own breaker): a row with other contents, 409; the identical row, 200
          (nothing to spool); no row, spooled and 200;
        - the database cannot answer (down, slow, breaker open): spooled and 200, since
          nothing this worker can see contradicts it.
        """
        record = ScanRecord(req.scan_id, req.person_id, req.venue_id, req.at.isoformat())
        if spool.lookup(req.scan_id) is None:
            row = await self._stored_scan(req.scan_id, deadline)
            if row is not None:
                if _scan_row_differs(row, record):
                    return _scan_conflict(req.scan_id)
                return 200, answer
        try:
            await spool.append(record)
        except ScanConflict:
            return _scan_conflict(req.scan_id)
        except OSError as exc:
            raise Unavailable(f"scan spool write failed: {exc}") from exc
        return 200, answer

    async def _stored_scan(self, scan_id: str, deadline: float | None) -> Any | None:
        """The scans row for ``scan_id``, or None if there is none or the DB cannot say."""
        breaker = self.scan_check_breaker
        if not self.settings.scan_check or (breaker is not None and not breaker.allow()):
            return None

        async def q(conn: asyncpg.Connection) -> Any:
            return await conn.fetchrow(SQL_SCAN_GET, scan_id)

        timeout_s = self.settings.scan_check_timeout_ms / 1000
        try:
            row = await self.db.run(q, deadline, use_breaker=False, timeout_s=timeout_s)
        except Unavailable:
            if breaker is not None:
                breaker.failure()
            return None
        except BaseException:
            if breaker is not None:
                breaker.release_probe()
            raise
        if breaker is not None:
            breaker.success()
        return row

    async def _scan_direct(self, req: ScanRequest, answer: dict[str, Any]) -> Reply:
        async def q(conn: asyncpg.Connection) -> Any:
            new = await conn.fetchval(
                SQL_SCAN_INSERT, req.scan_id, req.person_id, req.venue_id, req.at
            )
            if new is not None:
                return None
            return await conn.fetchrow(SQL_SCAN_GET, req.scan_id)

        existing = await self.db.run(q, None, timeout_s=self.write_timeout_s)
        if existing is not None and (
            existing["person_id"] != req.person_id
            or existing["venue_id"] != req.venue_id
            or existing["at"] != req.at
        ):
            return _scan_conflict(req.scan_id)
        return 200, answer

    # -- results

    async def lookup_results(self, person_id: int, deadline: float | None) -> Reply:
        async def q(conn: asyncpg.Connection) -> Any:
            rows = await conn.fetch(SQL_RESULTS, person_id)
            if rows:
                return rows
            return None if await conn.fetchval(SQL_PERSON_EXISTS, person_id) is None else []

        rows = await self.db.run(q, deadline)
        if rows is None:
            return 404, {"error": f"unknown person_id {person_id}", "person_id": person_id}
        return 200, {
            "person_id": person_id,
            "results": [
                {"sample_id": r["sample_id"], "result": r["result"], "at": iso(r["at"])}
                for r in rows
            ],
        }

    async def ingest(self, body: bytes) -> Reply:
        items = parse_results(body, self.settings.max_batch)
        persons = sorted({i.person_id for i in items})
        latest: dict[int, tuple[datetime, str]] = {}
        positive: set[int] = set()
        for i in items:
            if i.result == "positive":
                positive.add(i.person_id)
            seen = latest.get(i.person_id)
            if seen is None or i.at > seen[0]:
                latest[i.person_id] = (i.at, i.result)

        async def tx(conn: asyncpg.Connection) -> Any:
            async with conn.transaction():
                found = await conn.fetch(SQL_LOCK_PEOPLE, persons)
                if len(found) != len(persons):
                    known = {r["person_id"] for r in found}
                    missing = [p for p in persons if p not in known]
                    raise BadInput(
                        f"unknown person_id(s) {missing[:10]}; nothing from this batch was stored",
                        status=422,
                        field="results",
                    )
                new = await conn.fetch(
                    SQL_INSERT_RESULTS,
                    [i.sample_id for i in items],
                    [i.person_id for i in items],
                    [i.result for i in items],
                    [i.at for i in items],
                )
                rows = await conn.fetch(
                    SQL_APPLY_RESULTS,
                    persons,
                    [p in positive for p in persons],
                    [latest[p][0] for p in persons],
                    [latest[p][1] for p in persons],
                )
            return len(new), rows

        new, rows = await self.db.run(tx, None, timeout_s=self.write_timeout_s)
        if self.cache is not None:
            now = time.time()
            entries = [entry_from_row(r["person_id"], r, now) for r in rows]
            try:
                await self.cache.publish(entries, self.publish_timeout_s)
            except Unavailable as exc:
                self._schedule_republish(e.person_id for e in entries)
                raise Unavailable(
                    f"results stored but not yet visible to show-code ({exc}); "
                    f"retry the same batch (idempotent by sample_id)"
                ) from exc
        return 200, {"accepted": len(items), "new": new, "people_updated": len(rows)}

    def _schedule_republish(self, persons: Iterable[int]) -> None:
        self._unpublished.update(persons)
        if self._republish_task is None or self._republish_task.done():
            loop = asyncio.get_running_loop()
            self._republish_task = loop.create_task(self._republish())

    async def _republish(self) -> None:
        """Publish the DB's current entries of ``_unpublished`` people until none is left.

        A batch is taken out of the set before it is read, and put back if anything
        fails, so an ingest that fails again meanwhile keeps its people queued. The
        guarded script refuses anything older than what Redis holds, so a late
        republish never undoes a newer ingest."""
        cache = self.cache
        if cache is None:
            self._unpublished.clear()
            return
        while self._unpublished:
            await asyncio.sleep(self.republish_every_s)
            batch = sorted(self._unpublished)[:REPUBLISH_BATCH]
            self._unpublished.difference_update(batch)

            async def q(conn: asyncpg.Connection, ids: list[int] = batch) -> Any:
                return await conn.fetch(SQL_PEOPLE_ROWS, ids)

            try:
                rows = await self.db.run(q, None, timeout_s=self.write_timeout_s)
                now = time.time()
                entries = [entry_from_row(r["person_id"], r, now) for r in rows]
                await cache.publish(entries, self.publish_timeout_s)
            except Unavailable as exc:
                self._unpublished.update(batch)
                log.debug("republish of %d people failed, will retry: %s", len(batch), exc)

    # -- tokens

    def verify(self, body: bytes) -> Reply:
        verdict = tokens.verify(parse_verify(body), self.key, time.time())
        claims = verdict.claims
        return 200, {
            "status": verdict.status,
            "reason": verdict.reason,
            "claims": None
            if claims is None
            else {
                "person_id": claims.person_id,
                "colour": claims.colour,
                "status_asof": iso_unix(claims.status_asof),
                "issued_at": iso_unix(claims.issued_at),
                "expires_at": iso_unix(claims.expires_at),
            },
        }

    # -- readiness

    async def readyz(self) -> Reply:
        checks: dict[str, str] = {}

        async def ping(conn: asyncpg.Connection) -> Any:
            return await conn.fetchval("SELECT 1")

        try:
            await self.db.run(ping, use_breaker=False, timeout_s=0.5)
            checks["database"] = "ok"
        except Unavailable as exc:
            checks["database"] = str(exc)
        if self.cache is not None:
            try:
                await self.cache.ping(0.5)
                checks["cache"] = "ok"
            except Unavailable as exc:
                checks["cache"] = str(exc)
        read_model: str | None = None
        if self.cache is not None and self.cache.read_model and checks["cache"] == "ok":
            try:
                read_model = "complete" if await self.cache.complete(0.5) else "incomplete"
            except Unavailable:
                read_model = "unknown"
        ready = all(v == "ok" for v in checks.values())
        body: dict[str, Any] = {
            "ready": ready,
            "instance": self.instance,
            "profile": self.settings.profile,
            "checks": checks,
        }
        if read_model is not None:
            body["read_model"] = read_model  # informative: incomplete falls back to the DB
        if self.breaker is not None:
            body["breaker"] = self.breaker.state
        if self.admission is not None:
            body["inflight"] = self.admission.inflight
            body["queued"] = self.admission.queued
            body["rejected"] = self.admission.rejected
        # no spool: nothing waits to be written, so the backlog is 0 (not absent)
        body["spool_backlog_bytes"] = (
            self.replayer.backlog_bytes() if self.replayer is not None else 0
        )
        if self.replayer is not None:
            body["spool_replayed"] = self.replayer.replayed
            body["spool_conflicts"] = self.replay_conflicts
        return (200 if ready else 503), body


def scan_refusal(req: ScanRequest, key: bytes, now: float) -> Reply | None:
    """The 403 for a scan whose token is forged, expired or someone else's; None if the
    token is valid for ``req.person_id``. Offline: no database, no Redis."""
    verdict = tokens.verify(req.token, key, now)
    if verdict.status != "valid" or verdict.claims is None:
        return 403, {
            "error": f"{verdict.status} token: {verdict.reason}",
            "token": verdict.status,
        }
    if verdict.claims.person_id != req.person_id:
        return 403, {
            "error": f"token is for person {verdict.claims.person_id}, "
            f"not person_id {req.person_id}",
            "token": "mismatch",
        }
    return None


def _scan_conflict(scan_id: str) -> Reply:
    return 409, {
        "error": f"scan_id {scan_id!r} was already recorded with different contents",
        "field": "scan_id",
    }


def _scan_row_differs(row: Any, record: ScanRecord) -> bool:
    """Does a scans row (person_id, venue_id, at) differ from a spooled record?"""
    return (
        row["person_id"] != record.person_id
        or row["venue_id"] != record.venue_id
        or row["at"] != datetime.fromisoformat(record.at)
    )


def _allow(method: str, expected: str, path: str) -> None:
    if method != expected:
        raise BadInput(f"method {method} not allowed on {path}; use {expected}", status=405)


async def _send_raw(send: Send, status: int, content_type: bytes, body: bytes) -> None:
    headers = [(b"content-type", content_type)]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send(
    send: Send, status: int, body: Any, retry_after: bool = False, busy: bool = False
) -> None:
    headers = [_JSON, _RETRY_AFTER] if retry_after else [_JSON]
    if busy:
        headers.append(_BUSY)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": orjson.dumps(body)})


def build(argv: list[str] | None = None) -> tuple[Service, argparse.Namespace]:
    """Parse the command line and environment into a :class:`Service` (SettingsError/ValueError)."""
    parser = argparse.ArgumentParser(prog="python -m reference_system.app")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--postgres", required=True, help="HOST:PORT of PostgreSQL")
    parser.add_argument("--redis", required=True, help="HOST:PORT of Redis")
    parser.add_argument("--profile", choices=PROFILES, required=True)
    parser.add_argument("--instance", default="app")
    parser.add_argument(
        "--spool-dir", help="scan spool directory (default ./refsys-spool/INSTANCE)"
    )
    parser.add_argument(
        "--token-key-file",
        help=f"file holding the token signing key (default: ${tokens.KEY_ENV}); "
        f"at least {tokens.MIN_KEY_BYTES} bytes, required one way or the other",
    )
    args = parser.parse_args(argv)
    settings = load(args.profile, os.environ.get(OVERRIDES_ENV))
    key = tokens.load_key(args.token_key_file)
    spool_dir = Path(args.spool_dir) if args.spool_dir else Path("refsys-spool") / args.instance
    service = Service(
        settings,
        postgres_dsn(args.postgres),
        parse_hostport(args.redis, "--redis"),
        args.instance,
        spool_dir,
        key,
    )
    return service, args


def main(argv: list[str] | None = None) -> int:
    try:
        service, args = build(argv)
    except (SettingsError, ValueError) as exc:
        print(f"reference_system.app: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.WARNING,
        format=f"{args.instance} %(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    import uvicorn

    config = uvicorn.Config(
        service,
        host=args.host,
        port=args.port,
        loop="uvloop",
        http="httptools",
        lifespan="on",
        access_log=False,
        log_level="warning",
        timeout_keep_alive=75,
        backlog=2048,
        server_header=False,
        date_header=False,
    )
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
