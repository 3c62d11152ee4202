"""One read of one component's metrics, by reader kind: values keyed by series.

Each reader is built once per component (`reader(kind, ...)`) and called once per
sample; it raises on failure (the sampler records the error) and keeps what is worth
keeping between calls (a PostgreSQL connection).
"""

from __future__ import annotations

import socket
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from prometheus_client.parser import text_string_to_metric_families

from harness.metrics.store import series_key
from harness.probes import resp

__all__ = ["Reader", "parse_prometheus", "parse_redis_info", "parse_stub_status", "reader"]

Reader = Callable[[], dict[str, float]]
TIMEOUT = 0.5  # seconds one read may take: a hung component is an error, not a stall


def parse_prometheus(
    text: str, keep: Callable[[str], bool] = lambda _n: True, drop_labels: tuple[str, ...] = ()
) -> dict[str, float]:
    """Every sample of a Prometheus text page whose name `keep` accepts, without the
    labels `drop_labels` names (series that then coincide are summed)."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if keep(s.name) and not s.name.endswith("_created"):
                labels = {k: v for k, v in s.labels.items() if k not in drop_labels}
                key = series_key(s.name, labels)
                out[key] = out.get(key, 0.0) + float(s.value)
    return out


def parse_stub_status(text: str) -> dict[str, float]:
    """nginx's stub_status page as ``nginx_*`` series."""
    lines = text.split("\n")
    active = float(lines[0].split(":")[1])
    accepts, handled, requests = (float(x) for x in lines[2].split())
    parts = lines[3].split()
    return {
        "nginx_connections_active": active,
        "nginx_connections_accepted_total": accepts,
        "nginx_connections_handled_total": handled,
        "nginx_requests_total": requests,
        "nginx_connections_reading": float(parts[1]),
        "nginx_connections_writing": float(parts[3]),
        "nginx_connections_waiting": float(parts[5]),
    }


_REDIS_KEEP = {
    "connected_clients": "redis_connected_clients",
    "blocked_clients": "redis_blocked_clients",
    "used_memory": "redis_used_memory_bytes",
    "instantaneous_ops_per_sec": "redis_instantaneous_ops_per_sec",
    "total_commands_processed": "redis_commands_processed_total",
    "keyspace_hits": "redis_keyspace_hits_total",
    "keyspace_misses": "redis_keyspace_misses_total",
    "rejected_connections": "redis_rejected_connections_total",
    "evicted_keys": "redis_evicted_keys_total",
}


def parse_redis_info(text: str) -> dict[str, float]:
    """The INFO fields worth plotting, as ``redis_*`` series."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name in _REDIS_KEEP:
            try:
                out[_REDIS_KEEP[name]] = float(value)
            except ValueError:
                continue
    return out


def _http_get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=TIMEOUT) as r:
        body: bytes = r.read()
    return body.decode("utf-8", "replace")


def _redis_info(url: str) -> str:
    parts = urlsplit(url)
    with socket.create_connection(
        (parts.hostname or "127.0.0.1", parts.port or 6379), TIMEOUT
    ) as s:
        s.settimeout(TIMEOUT)
        request = b""
        if parts.password:
            user = (parts.username or "default").encode()
            pw = parts.password.encode()
            request += resp(b"AUTH", user, pw)
        request += resp(b"INFO")
        s.sendall(request)
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                raise ConnectionError("closed before INFO's answer")
            data += chunk
            text = _bulk(data, skip=1 if parts.password else 0)
            if text is not None:
                return text


def _bulk(data: bytes, skip: int) -> str | None:
    """The bulk string answer after `skip` simple answers; None until it is all here."""
    pos = 0
    for _ in range(skip):
        end = data.find(b"\r\n", pos)
        if end < 0:
            return None
        if data[pos : pos + 1] == b"-":
            raise ConnectionError(data[pos + 1 : end].decode(errors="replace"))
        pos = end + 2
    if data[pos : pos + 1] == b"-":
        raise ConnectionError(data[pos + 1 :].split(b"\r\n")[0].decode(errors="replace"))
    head = data.find(b"\r\n", pos)
    if head < 0:
        return None
    size = int(data[pos + 1 : head])
    body = data[head + 2 : head + 2 + size]
    return body.decode("utf-8", "replace") if len(body) == size else None


_PG_QUERIES = (
    (
        "SELECT coalesce(state, 'none'), count(*) FROM pg_stat_activity"
        " WHERE backend_type = 'client backend' GROUP BY 1",
        lambda rows: {series_key("pg_connections", {"state": s}): float(n) for s, n in rows},
    ),
    (
        "SELECT xact_commit, xact_rollback, deadlocks, conflicts FROM pg_stat_database"
        " WHERE datname = current_database()",
        lambda rows: (
            {
                "pg_xact_commit_total": float(rows[0][0]),
                "pg_xact_rollback_total": float(rows[0][1]),
                "pg_deadlocks_total": float(rows[0][2]),
                "pg_conflicts_total": float(rows[0][3]),
            }
            if rows
            else {}
        ),
    ),
    (
        "SELECT application_name, pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn)"
        " FROM pg_stat_replication",
        lambda rows: {
            series_key("pg_replication_lag_bytes", {"standby": name}): float(lag or 0)
            for name, lag in rows
        },
    ),
)


class _Postgres:
    """Statistics views over one kept connection (reopened after a failure)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.conn: Any = None

    def __call__(self) -> dict[str, float]:
        import psycopg

        try:
            if self.conn is None or self.conn.closed:
                self.conn = psycopg.connect(
                    self.url, autocommit=True, connect_timeout=1, application_name="harness-metrics"
                )
                self.conn.execute(f"SET statement_timeout = {int(TIMEOUT * 1000)}")
            out: dict[str, float] = {}
            for sql, shape in _PG_QUERIES:
                try:
                    rows = self.conn.execute(sql).fetchall()
                except (
                    psycopg.errors.FeatureNotSupported,
                    psycopg.errors.ObjectNotInPrerequisiteState,
                ):
                    continue  # a standby has no WAL position of its own
                out.update(shape(rows))
            return out
        except Exception:
            if self.conn is not None:
                self.conn.close()
            self.conn = None
            raise


def reader(kind: str, host: str, port: int, path: str = "", url: str = "") -> Reader:
    """The reader of one component: `kind` with its direct address (and its URL, which
    carries credentials, for PostgreSQL and Redis)."""
    if kind == "prometheus":
        target = f"http://{host}:{port}{path}"
        return lambda: parse_prometheus(_http_get(target))
    if kind == "nginx":
        target = f"http://{host}:{port}{path}"
        return lambda: parse_stub_status(_http_get(target))
    if kind == "postgres":
        return _Postgres(url or f"postgresql://postgres@{host}:{port}/postgres")
    if kind == "redis":
        target = url or f"redis://{host}:{port}/0"
        return lambda: parse_redis_info(_redis_info(target))
    if kind == "toxiproxy":
        target = f"http://{host}:{port}/metrics"
        return lambda: parse_prometheus(
            _http_get(target),
            lambda n: n.startswith("toxiproxy_"),
            drop_labels=("listener", "upstream"),  # ports: the proxy's name says the link
        )
    raise ValueError(f"no metrics reader of kind {kind!r}")
