"""Metrics: what happened inside the system during a run, sampled every second.

A topology declares, per component group, how to read each replica (``harness.sut``
reads the section), and whether to read Toxiproxy's own per-link counters::

    metrics:
      every: 1s                          # sampling interval (run time); default 1 s
      toxiproxy: true                    # bytes per link and direction (Toxiproxy /metrics)
      components:
        app: {prometheus: /metrics}      # Prometheus text over HTTP from the component
        gateway: {nginx: /nginx-status}  # nginx stub_status
        postgres: {postgres: {}}         # connections by state, commits, replication lag
        redis: {redis: {}}               # INFO: clients, memory, ops, hits and misses

A separate sampler process (`harness.metrics.sampler`) reads them while the workload
runs, on the runner's clock, and writes ``metrics.jsonl`` into the run directory (its
format: `harness.metrics.store`). Invariants (``alerts``), blame and the report read it
back as `Metrics` (`harness.metrics.store.load`).
"""

from __future__ import annotations

from harness.metrics.spec import MetricsSpec, Source, parse_metrics
from harness.metrics.store import Metrics, Series, load

__all__ = ["Metrics", "MetricsSpec", "Series", "Source", "load", "parse_metrics"]
