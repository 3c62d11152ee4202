"""Seed: create the schema and load deterministic people, venues and test results fast.

    python -m reference_system.seed --postgres 127.0.0.1:5432 --people 100000 \\
        --venues 2000 --seed 1 [--reset] [--redis 127.0.0.1:6379 [--profile naive]]

Data comes from ``random.Random(seed)`` and is loaded with COPY; a copy is kept in
unlogged ``*_pristine`` tables so ``--reset`` (TRUNCATE + INSERT ... SELECT) brings a used
database back to the freshly seeded state in well under a second. ``--redis`` (re)builds
the Redis read model from the database, every mode included (seeded, reset, unchanged):
FLUSHDB (cached versions and floors would otherwise outlive a reset), every person's code
entry with pipelined MSETs, then the completeness marker last (see cache.py). It is an
offline step like the reset itself: an ingest acknowledged while it runs may be undone.
With ``--profile`` (and ``--overrides``, the app's ``REFSYS_OVERRIDES``) Redis is left
alone when the app does not use it (no cache: the naive profile), which saves ~0.6 s, and
only flushed when the app uses it as a plain cache (no read model): a cache-aside cache
starts empty and fills with what is read, as after any deploy; loading everyone into it
would make it the read model by another name.
Prints one summary line.
"""

from __future__ import annotations

import argparse
import io
import os
import random
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from redis.exceptions import RedisError

from reference_system.addresses import parse_hostport, postgres_dsn, redis_password
from reference_system.cache import COMPLETE_KEY, encode_fields, entry_key
from reference_system.schema import DDL
from reference_system.settings import OVERRIDES_ENV, PROFILES, SettingsError
from reference_system.settings import load as load_settings

EPOCH = datetime(2022, 1, 4, 6, 0, tzinfo=UTC)  # the morning of the second outage
SHARE_RED = 0.02
SHARE_YELLOW = 0.08
MSET_PAIRS = 10_000  # keys per MSET in the read-model load

# Whole seconds since the epoch, formatted in Python with a memo (seeded times repeat):
# twice as fast as to_char() or converting 100k datetimes.
SQL_READ_MODEL = (
    "SELECT person_id, version, colour, floor(extract(epoch FROM status_asof))::bigint,"
    " floor(extract(epoch FROM last_test_at))::bigint, coalesce(last_result, '')"
    " FROM people"
)


@dataclass(frozen=True)
class SeedReport:
    """What :func:`seed` did."""

    people: int
    venues: int
    seed: int
    mode: str  # "seeded", "reset" or "unchanged"
    seconds: float
    read_model: int | None = None  # entries loaded into Redis (None: no --redis)
    read_model_seconds: float = 0.0

    def line(self) -> str:
        loaded = (
            ""
            if self.read_model is None
            else f" read_model={self.read_model} in {self.read_model_seconds:.3f}s"
        )
        return (
            f"seed: {self.mode} people={self.people} venues={self.venues} "
            f"seed={self.seed}{loaded} in {self.seconds:.3f}s"
        )


def _generate(people: int, venues: int, seed: int) -> tuple[str, str, str]:
    """COPY text for people, results and venues."""
    rng = random.Random(seed)
    rand, randrange = rng.random, rng.randrange
    # The test times are whole hours before EPOCH (fewer than 240): format each once.
    at_hours = [(EPOCH - timedelta(hours=h)).isoformat() for h in range(240)]
    p_rows: list[str] = []
    r_rows: list[str] = []
    red, yellow = SHARE_RED, SHARE_RED + SHARE_YELLOW
    for pid in range(1, people + 1):
        u = rand()
        hours = randrange(1, 72)
        if u < red:
            colour, result, hours = "red", "positive", randrange(1, 240)
        elif u < yellow:
            colour, result, hours = "yellow", "negative", randrange(96, 240)
        else:
            colour, result = "green", "negative"
        at = at_hours[hours]
        p_rows.append(f"{pid}\t{colour}\t{at}\t{at}\t{result}\t0\n")
        r_rows.append(f"s{seed}-{pid}\t{pid}\t{result}\t{at}\t{at}\n")
    v_rows = io.StringIO()
    for vid in range(1, venues + 1):
        v_rows.write(f"{vid}\tvenue-{vid}\t{rng.randrange(1, 14)}\n")
    return "".join(p_rows), "".join(r_rows), v_rows.getvalue()


def _copy(cur: psycopg.Cursor, table: str, data: str) -> None:
    with cur.copy(f"COPY {table} FROM STDIN") as cp:
        cp.write(data)


def _full_seed(cur: psycopg.Cursor, people: int, venues: int, seed: int) -> None:
    p_data, r_data, v_data = _generate(people, venues, seed)
    cur.execute(
        "TRUNCATE people, results, scans, venues, seed_meta, people_pristine, results_pristine"
    )
    _copy(cur, "people", p_data)
    _copy(cur, "results", r_data)
    _copy(cur, "venues", v_data)
    cur.execute("INSERT INTO people_pristine SELECT * FROM people")
    cur.execute("INSERT INTO results_pristine SELECT * FROM results")
    cur.execute(
        "INSERT INTO seed_meta (id, people, venues, seed) VALUES (1, %s, %s, %s)",
        (people, venues, seed),
    )


def _seeded_as(cur: psycopg.Cursor, people: int, venues: int, seed: int) -> bool:
    cur.execute("SELECT people, venues, seed FROM seed_meta WHERE id = 1")
    row = cur.fetchone()
    if row != (people, venues, seed):
        return False
    # Unlogged pristine tables are emptied by crash recovery: check they are whole.
    cur.execute("SELECT count(*) FROM people_pristine")
    pristine = cur.fetchone()
    return pristine is not None and pristine[0] == people


def _reset(cur: psycopg.Cursor, people: int, venues: int) -> bool:
    """Undo what the service did (a fast delta); False if rows went missing (reseed)."""
    cur.execute("TRUNCATE scans")
    # Seeded results were "ingested" at or before EPOCH; everything later came from labs.
    cur.execute("DELETE FROM results WHERE ingested_at > %s", (EPOCH,))
    cur.execute(
        "UPDATE people p SET colour = q.colour, status_asof = q.status_asof,"
        " last_test_at = q.last_test_at, last_result = q.last_result, version = q.version"
        " FROM people_pristine q WHERE p.person_id = q.person_id AND p.version <> q.version"
    )
    cur.execute(
        "SELECT (SELECT count(*) FROM people), (SELECT count(*) FROM results),"
        " (SELECT count(*) FROM venues)"
    )
    return cur.fetchone() == (people, people, venues)


def seed(
    dsn: str,
    people: int = 100_000,
    venues: int = 2_000,
    seed: int = 1,
    reset: bool = False,
    redis: str | None = None,
    read_model: bool = True,
) -> SeedReport:
    """Create the schema and seed; with ``reset``, restore the freshly seeded state.

    ``dsn`` is a libpq DSN or ``HOST:PORT``. ``redis`` (``HOST:PORT``) gets the read model
    rebuilt from the seeded (or reset) database, or with ``read_model=False`` is only
    flushed (an empty cache).
    """
    if people < 1 or venues < 1:
        raise ValueError(f"people={people}, venues={venues}: expected both >= 1")
    start = time.perf_counter()
    with psycopg.connect(postgres_dsn(dsn), autocommit=False) as conn, conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(4242)")
        cur.execute(DDL)
        if not _seeded_as(cur, people, venues, seed):
            _full_seed(cur, people, venues, seed)
            mode = "seeded"
        elif reset:
            mode = "reset"
            if not _reset(cur, people, venues):
                _full_seed(cur, people, venues, seed)
                mode = "reseeded"
        else:
            mode = "unchanged"
        conn.commit()
        loaded: int | None = None
        load_s = 0.0
        if redis:
            load_start = time.perf_counter()
            if read_model:
                loaded = load_read_model(cur, redis, f"people={people} seed={seed}")
            else:
                flush(redis)
                loaded = 0
            load_s = time.perf_counter() - load_start
    return SeedReport(people, venues, seed, mode, time.perf_counter() - start, loaded, load_s)


def read_model_values(cur: psycopg.Cursor, now: float) -> list[str]:
    """``[key, value, key, value, ...]``: every person's code entry as the app would cache
    it (app.iso: UTC, whole seconds, "" for no test), with ``cached_at=now``."""
    memo: dict[int | None, str] = {None: ""}

    def iso(ts: int | None) -> str:
        text = memo.get(ts)
        if text is None:
            text = memo[ts] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ts))
        return text

    cur.execute(SQL_READ_MODEL)
    flat: list[str] = []
    for pid, version, colour, asof, last_at, last_result in cur.fetchall():
        flat.append(entry_key(pid))
        flat.append(
            encode_fields(pid, version, colour, iso(asof), asof, iso(last_at), last_result, now)
        )
    return flat


def _redis_client(target: str) -> Any:
    import redis as redis_lib

    ep = parse_hostport(target, "--redis")
    return redis_lib.Redis(host=ep.host, port=ep.port, password=redis_password(), socket_timeout=30)


def flush(target: str) -> None:
    """Empty the Redis database at ``target`` (a plain cache after a reset)."""
    client = _redis_client(target)
    try:
        client.flushdb()
    finally:
        client.close()


def load_read_model(cur: psycopg.Cursor, target: str, label: str = "") -> int:
    """Replace the Redis database at ``target`` with the read model of ``cur``'s database.

    FLUSHDB, the entries in pipelined MSETs (no expiry), and only once every MSET has
    succeeded the completeness marker; returns the number of entries."""
    flat = read_model_values(cur, time.time())
    count = len(flat) // 2
    client = _redis_client(target)
    try:
        pipe = client.pipeline(transaction=False)
        pipe.flushdb()
        for i in range(0, len(flat), 2 * MSET_PAIRS):
            pipe.execute_command("MSET", *flat[i : i + 2 * MSET_PAIRS])
        pipe.execute()  # raises on any error reply: then no marker
        client.set(COMPLETE_KEY, f"{count} {label} at {time.time():.3f}".strip())
    finally:
        client.close()
    return count


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reference_system.seed", description=__doc__)
    parser.add_argument("--postgres", required=True, help="HOST:PORT or a libpq DSN")
    parser.add_argument("--people", type=int, default=100_000)
    parser.add_argument("--venues", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--reset", action="store_true", help="restore the freshly seeded state")
    parser.add_argument(
        "--redis", help="HOST:PORT of Redis: flush it and load the read model (every person)"
    )
    parser.add_argument(
        "--profile",
        choices=PROFILES,
        help="the app's profile: --redis is ignored when it has no cache",
    )
    parser.add_argument(
        "--overrides",
        default=os.environ.get(OVERRIDES_ENV),
        help=f"the app's overrides of the profile (JSON, as {OVERRIDES_ENV})",
    )
    args = parser.parse_args(argv)
    try:
        redis, read_model = args.redis, True
        if args.profile:
            settings = load_settings(args.profile, args.overrides)
            redis = redis if settings.cache else None
            read_model = settings.read_model
        report = seed(
            args.postgres, args.people, args.venues, args.seed, args.reset, redis, read_model
        )
    except (ValueError, OSError, psycopg.Error, RedisError, SettingsError) as exc:
        print(f"seed: failed: {exc}", file=sys.stderr)
        return 1
    print(report.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
