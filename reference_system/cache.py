"""Cache: the Redis code cache, ordered with ingest by per-person versions.

An entry is ``person|version|colour|asof_iso|asof_unix|last_iso|last_result|cached_at``;
the person id in the value is checked on every read, so a reply that does not belong to
the key asked for (a desynchronised connection) is never served. Every
write goes through one Lua script that refuses to replace a newer version, and ingest
also raises a per-person *floor* (``codev:<id>``, no expiry) to the version it committed.
A show-code that read the DB before an ingest and writes afterwards therefore cannot put
an old green back (its version is below the floor), whatever the timing or the TTLs.

Two ways to use it:

- **cache** (``read_model`` off): entries live ``stale_s`` seconds; younger than
  ``fresh_s`` they are served as they are, older ones only when the DB cannot answer
  (stale-on-error, flagged ``degraded``).
- **read model** (``read_model`` on): the seeder loads *every* person's entry (no expiry)
  and writes :data:`COMPLETE_KEY` last; ingest keeps entries current through the same
  guarded script before it acknowledges, and entries written by the app never expire
  either. An entry is then the person's colour as of the last acknowledged ingest,
  whatever its age, so it is served without the DB. :meth:`CodeCache.read` answers in
  one round trip with the entry, or with a miss that names the person and says whether
  the model is complete: a miss in a complete model is an unknown person; in an
  incomplete one (never loaded, or Redis restarted empty) the caller falls back to the DB.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from dataclasses import dataclass

from reference_system.addresses import Endpoint, redis_password
from reference_system.breaker import CircuitBreaker
from reference_system.database import Unavailable
from reference_system.resp import Redis, RedisError, ReplyError

# KEYS[1] entry, KEYS[2] floor; ARGV: version, value, ttl (0: none), raise_floor ("1"/"0")
_GUARDED_SET = """
local v = tonumber(ARGV[1])
local floor = tonumber(redis.call('GET', KEYS[2]) or '-1')
if v < floor then return 0 end
local cur = redis.call('GET', KEYS[1])
if cur then
  local cv = tonumber(string.match(cur, '^%d+|(%d+)|'))
  if cv and cv > v then return 0 end
end
if ARGV[3] == '0' then
  redis.call('SET', KEYS[1], ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[2], 'EX', ARGV[3])
end
if ARGV[4] == '1' and v > floor then redis.call('SET', KEYS[2], ARGV[1]) end
return 1
"""
_GUARDED_SET_SHA = hashlib.sha1(_GUARDED_SET.encode()).hexdigest()

# The read model is complete (every person loaded) while this key exists; the seeder
# writes it after everything else. A Redis restart or FLUSHDB takes it with the data.
COMPLETE_KEY = "readmodel:complete"

# KEYS[1] entry, KEYS[2] the completeness marker; ARGV[1] the person id. The reply is the
# entry, or ``?|<person>|1`` (a miss in a complete model) / ``?|<person>|0``: every reply
# names its person, so a shifted reply is never taken for this person's answer.
_READ = """
local v = redis.call('GET', KEYS[1])
if v then return v end
if redis.call('EXISTS', KEYS[2]) == 1 then return '?|' .. ARGV[1] .. '|1' end
return '?|' .. ARGV[1] .. '|0'
"""
_READ_SHA = hashlib.sha1(_READ.encode()).hexdigest()


def encode_fields(
    person_id: int,
    version: int,
    colour: str,
    status_asof: str,
    status_asof_unix: int,
    last_test_at: str,
    last_result: str,
    cached_at: float,
) -> str:
    """The cached value of an entry (also used by the seeder's bulk load, without the
    cost of building 100k :class:`CodeEntry` objects)."""
    return (
        f"{person_id}|{version}|{colour}|{status_asof}|{status_asof_unix}|"
        f"{last_test_at}|{last_result}|{cached_at:.3f}"
    )


@dataclass(frozen=True)
class CodeEntry:
    """A person's colour at a version, as cached (and as read from the DB)."""

    person_id: int
    version: int
    colour: str
    status_asof: str
    status_asof_unix: int
    last_test_at: str
    last_result: str
    cached_at: float

    def encode(self) -> bytes:
        return encode_fields(
            self.person_id,
            self.version,
            self.colour,
            self.status_asof,
            self.status_asof_unix,
            self.last_test_at,
            self.last_result,
            self.cached_at,
        ).encode()

    @staticmethod
    def decode(person_id: int, raw: bytes) -> CodeEntry:
        """Parse a cached value; ValueError if malformed or for another person."""
        pid, v, colour, asof, asof_unix, last_at, last_result, cached = raw.decode().split("|")
        if int(pid) != person_id:
            raise ValueError(f"cached value is for person {pid}, not {person_id}")
        return CodeEntry(
            person_id, int(v), colour, asof, int(asof_unix), last_at, last_result, float(cached)
        )


@dataclass(frozen=True)
class ReadModelAnswer:
    """What the read model says about one person: the entry, or a miss and whether the
    model is complete (a miss in a complete model: the person does not exist).
    ``complete`` is True with an entry."""

    entry: CodeEntry | None
    complete: bool


def decode_read(person_id: int, raw: object) -> ReadModelAnswer:
    """Parse the read script's reply; ValueError if it is not an answer about ``person_id``."""
    if not isinstance(raw, bytes):
        raise ValueError(f"expected a string reply, got {type(raw).__name__}")
    if raw.startswith(b"?|"):
        _, pid, complete = raw.decode().split("|")
        if int(pid) != person_id or complete not in ("0", "1"):
            raise ValueError(f"read model miss {raw!r} is not about person {person_id}")
        return ReadModelAnswer(None, complete == "1")
    return ReadModelAnswer(CodeEntry.decode(person_id, raw), True)


def entry_key(person_id: int) -> str:
    return f"code:{person_id}"


def floor_key(person_id: int) -> str:
    return f"codev:{person_id}"


class CodeCache:
    """Version-guarded Redis cache of show-code answers."""

    def __init__(
        self,
        endpoint: Endpoint,
        timeout_s: float | None,
        fresh_s: float,
        stale_s: float,
        breaker: CircuitBreaker | None = None,
        read_model: bool = False,
    ) -> None:
        self.timeout_s = timeout_s
        self.fresh_s = fresh_s
        self.stale_s = max(int(stale_s), 1)
        self.read_model = read_model
        # Read-model entries never expire: a miss must mean "not loaded", not "aged out".
        self.ttl_s = 0 if read_model else self.stale_s
        self.breaker = breaker
        self.client = Redis(
            endpoint.host,
            endpoint.port,
            connect_timeout_s=timeout_s or 5.0,
            password=redis_password(),
        )

    def _check_breaker(self) -> None:
        if self.breaker is not None and not self.breaker.allow():
            raise Unavailable("cache circuit breaker is open")

    def _failed(self) -> None:
        if self.breaker is not None:
            self.breaker.failure()

    def _abandoned(self) -> None:
        if self.breaker is not None:
            self.breaker.release_probe()

    def _succeeded(self) -> None:
        if self.breaker is not None:
            self.breaker.success()

    def _limit(self, deadline: float | None) -> float | None:
        if self.timeout_s is None:
            return None
        if deadline is None:
            return self.timeout_s
        left = min(self.timeout_s, deadline - time.monotonic())
        if left <= 0:
            raise Unavailable("request deadline passed before the cache call")
        return left

    async def get(self, person_id: int, deadline: float | None = None) -> CodeEntry | None:
        """The cached entry (fresh or stale), None on a miss; Unavailable if Redis is not."""
        limit = self._limit(deadline)
        self._check_breaker()
        try:
            async with asyncio.timeout(limit):
                raw = await self.client.execute("GET", entry_key(person_id))
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed()
            raise Unavailable(f"cache unavailable: {type(exc).__name__}: {exc}") from exc
        except BaseException:
            self._abandoned()
            raise
        self._succeeded()
        if raw is None:
            return None
        if not isinstance(raw, bytes):
            self.client.reset(f"GET {entry_key(person_id)} got a non-string reply")
            raise Unavailable("cache reply did not match its request; connection reset")
        try:
            return CodeEntry.decode(person_id, raw)
        except (ValueError, UnicodeDecodeError) as exc:
            self.client.reset(f"GET {entry_key(person_id)}: {exc}")
            raise Unavailable(f"cache reply did not match its request ({exc})") from exc

    async def read(self, person_id: int, deadline: float | None = None) -> ReadModelAnswer:
        """The read model's answer for ``person_id`` in one round trip; Unavailable if
        Redis is not (or the reply belongs to another request: the connection is reset)."""
        limit = self._limit(deadline)
        self._check_breaker()
        args = (2, entry_key(person_id), COMPLETE_KEY, person_id)
        try:
            async with asyncio.timeout(limit):
                try:
                    raw = await self.client.execute("EVALSHA", _READ_SHA, *args)
                except ReplyError as exc:
                    if not str(exc).startswith("NOSCRIPT"):
                        raise
                    raw = await self.client.execute("EVAL", _READ, *args)
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed()
            raise Unavailable(f"read model unavailable: {type(exc).__name__}: {exc}") from exc
        except BaseException:
            self._abandoned()
            raise
        try:
            answer = decode_read(person_id, raw)
        except (ValueError, UnicodeDecodeError) as exc:
            self._failed()
            self.client.reset(f"read model reply for {person_id}: {exc}")
            raise Unavailable(f"read model reply did not match its request ({exc})") from exc
        self._succeeded()
        return answer

    async def fill(self, entry: CodeEntry, deadline: float | None = None) -> bool:
        """Cache what a reader got from the DB, unless something newer is (or was) there."""
        limit = self._limit(deadline)
        self._check_breaker()
        try:
            async with asyncio.timeout(limit):
                args = self._script_args(entry, "0")
                try:
                    done = await self.client.execute("EVALSHA", _GUARDED_SET_SHA, *args)
                except ReplyError as exc:
                    if not str(exc).startswith("NOSCRIPT"):
                        raise
                    done = await self.client.execute("EVAL", _GUARDED_SET, *args)
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed()
            raise Unavailable(f"cache unavailable: {type(exc).__name__}: {exc}") from exc
        except BaseException:
            self._abandoned()
            raise
        if done not in (0, 1):
            self._failed()
            self.client.reset(f"cache fill got {done!r}, expected 0 or 1")
            raise Unavailable("cache reply did not match its request; connection reset")
        self._succeeded()
        return bool(done)

    async def publish(self, entries: list[CodeEntry], timeout_s: float | None) -> None:
        """Install committed entries and raise their floors; raise Unavailable on failure.

        Ingest calls this after its commit and before its acknowledgement. It ignores the
        breaker: correctness needs it to be tried, and ingest is rare.
        """
        try:
            async with asyncio.timeout(timeout_s):
                # The trailing ECHO proves the replies line up with these commands.
                nonce = os.urandom(8).hex().encode()
                commands: list[tuple[object, ...]] = [("SCRIPT", "LOAD", _GUARDED_SET)]
                commands += [
                    ("EVALSHA", _GUARDED_SET_SHA, *self._script_args(e, "1")) for e in entries
                ]
                commands.append(("ECHO", nonce))
                replies = await self.client.pipeline(commands)
            if replies[-1] != nonce:
                self.client.reset("cache publish replies out of step")
                raise RedisError("cache replies did not match the requests; connection reset")
            errors = [r for r in replies if isinstance(r, ReplyError)]
            if errors:
                raise errors[0]
        except (RedisError, OSError, TimeoutError) as exc:
            raise Unavailable(f"cache unavailable: {type(exc).__name__}: {exc}") from exc

    async def ping(self, timeout_s: float) -> None:
        try:
            async with asyncio.timeout(timeout_s):
                await self.client.execute("PING")
        except (RedisError, OSError, TimeoutError) as exc:
            raise Unavailable(f"cache unavailable: {type(exc).__name__}: {exc}") from exc

    async def complete(self, timeout_s: float) -> bool:
        """Whether the read model is marked complete (readiness reporting)."""
        try:
            async with asyncio.timeout(timeout_s):
                found = await self.client.execute("EXISTS", COMPLETE_KEY)
        except (RedisError, OSError, TimeoutError) as exc:
            raise Unavailable(f"cache unavailable: {type(exc).__name__}: {exc}") from exc
        return found == 1

    def _script_args(self, e: CodeEntry, raise_floor: str) -> tuple[object, ...]:
        return (
            2,
            entry_key(e.person_id),
            floor_key(e.person_id),
            e.version,
            e.encode(),
            self.ttl_s,
            raise_floor,
        )

    async def close(self) -> None:
        await self.client.close()
