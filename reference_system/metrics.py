"""The app worker's Prometheus metrics, served at ``GET /metrics`` in the text format.

Counted per request (a counter and a histogram per route and status) and read at scrape
time from the mechanisms themselves (admission, breakers, spool, pool, read model), so a
profile without a mechanism reports it as absent rather than as zero::

    refsys_requests_total{route="code",status="200"}
    refsys_request_duration_seconds_bucket{route="code",le="0.1"}
    refsys_admission_inflight  refsys_admission_queued  refsys_admission_rejected_total
    refsys_breaker_open{breaker="database|scan_check|cache"}     1 while open or half-open
    refsys_spool_backlog_bytes  refsys_spool_replayed_total  refsys_spool_conflicts_total
    refsys_db_pool_connections{state="busy|idle"}
    refsys_code_source_total{source="database|cache|stale-cache|read-model"}
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"
_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.3, 1.0, 3.0)


def route_of(path: str) -> str:
    """The route label of a request path: a few fixed values, never an id."""
    parts = path.split("/")
    if len(parts) > 2 and parts[1] == "v1":
        resource = parts[2]
        if resource == "code":
            return "code"
        if resource == "results":
            return "results" if len(parts) == 4 else "ingest"
        if resource in ("scans", "tokens"):
            return resource
    return "other"


class _State(Collector):
    """Gauges read from the service when scraped."""

    def __init__(self, read: Callable[[], dict[str, Any]]) -> None:
        self.read = read

    def collect(self) -> Iterator[GaugeMetricFamily]:
        s = self.read()
        for name, help_, value in (
            ("refsys_admission_inflight", "requests admitted and running", s.get("inflight")),
            ("refsys_admission_queued", "requests waiting for a slot", s.get("queued")),
            ("refsys_admission_rejected_total", "requests shed", s.get("rejected")),
            ("refsys_spool_backlog_bytes", "spooled scans not yet in the DB", s.get("backlog")),
            ("refsys_spool_replayed_total", "spooled scans written", s.get("replayed")),
            ("refsys_spool_conflicts_total", "spooled scans in conflict", s.get("conflicts")),
        ):
            if value is not None:
                yield GaugeMetricFamily(name, help_, value=float(value))
        breakers = s.get("breakers") or {}
        if breakers:
            g = GaugeMetricFamily(
                "refsys_breaker_open", "1 while a breaker refuses calls", labels=["breaker"]
            )
            for name, state in breakers.items():
                g.add_metric([name], 0.0 if state == "closed" else 1.0)
            yield g
        pool = s.get("pool")
        if pool is not None:
            g = GaugeMetricFamily(
                "refsys_db_pool_connections", "pooled DB connections", labels=["state"]
            )
            busy, idle = pool
            g.add_metric(["busy"], float(busy))
            g.add_metric(["idle"], float(idle))
            yield g


class AppMetrics:
    """A registry of one worker's metrics; `observe` per request, `render` per scrape."""

    def __init__(self, read_state: Callable[[], dict[str, Any]]) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter(
            "refsys_requests",
            "requests answered, by route and status",
            ["route", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "refsys_request_duration_seconds",
            "time from the request's arrival at the worker to its answer",
            ["route"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.sources = Counter(
            "refsys_code_source",
            "show-code answers by where the colour came from",
            ["source"],
            registry=self.registry,
        )
        self.registry.register(_State(read_state))

    def code_source(self, source: str) -> None:
        self.sources.labels(source).inc()

    def observe(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.duration.labels(route).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
