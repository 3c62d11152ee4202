"""The metrics file of a run (``metrics.jsonl``) and its typed reading.

JSON lines. The first line describes the file; every other line is one sample of one
source at one moment, its values keyed by series in Prometheus' notation::

    {"format": "harness-metrics/1", "every_s": 1.0, "sources": {"app-1": "prometheus"}}
    {"t": 1.002, "c": "app-1", "ms": 2.4, "v": {"refsys_admission_queued": 3.0, ...}}
    {"t": 1.003, "c": "toxiproxy", "ms": 1.1, "v": {"toxiproxy_proxy_sent_bytes_total{...}": 4e5}}
    {"t": 2.001, "c": "redis", "ms": 500.6, "error": "TimeoutError: timed out"}

``t`` is run seconds (the history's clock), ``c`` the component (or ``toxiproxy``),
``ms`` what the read took, ``v`` the values, ``error`` why there are none this time.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["FORMAT", "Metrics", "Series", "load", "series_key", "split_key"]

FORMAT = "harness-metrics/1"
_KEY = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def series_key(name: str, labels: Mapping[str, str] | None = None) -> str:
    """``name{a="x",b="y"}`` with labels sorted; just ``name`` without labels."""
    if not labels:
        return name
    inner = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for k, v in sorted(labels.items())
    )
    return f"{name}{{{inner}}}"


def split_key(key: str) -> tuple[str, dict[str, str]]:
    """The metric name and labels of a series key."""
    m = _KEY.match(key)
    if m is None:
        return key, {}
    labels = {k: v.replace('\\"', '"').replace("\\\\", "\\") for k, v in _LABEL.findall(m[2] or "")}
    return m[1], labels


@dataclass(frozen=True)
class Series:
    """One series of one component: sample times (run s) and values."""

    component: str
    key: str
    points: tuple[tuple[float, float], ...]

    @property
    def name(self) -> str:
        return split_key(self.key)[0]

    @property
    def labels(self) -> dict[str, str]:
        return split_key(self.key)[1]

    def rate(self) -> tuple[tuple[float, float], ...]:
        """Per-second increase between samples (a counter reset counts from zero)."""
        out = []
        for (t0, v0), (t1, v1) in zip(self.points, self.points[1:], strict=False):
            if t1 > t0:
                out.append((t1, (v1 - v0 if v1 >= v0 else v1) / (t1 - t0)))
        return tuple(out)


@dataclass(frozen=True)
class Metrics:
    """Every series of a run, by component; the cost and the failures of reading them."""

    every: float = 1.0
    sources: Mapping[str, str] = field(default_factory=dict)  # component -> reader kind
    series: Mapping[str, Mapping[str, Series]] = field(default_factory=dict)
    errors: Mapping[str, tuple[tuple[float, str], ...]] = field(default_factory=dict)
    read_ms: Mapping[str, float] = field(default_factory=dict)  # mean ms per read
    ticks: int = 0  # samples of every source taken
    cpu_s: float | None = None  # the sampler's CPU time (None: it did not finish)

    @property
    def cpu_ms_per_tick(self) -> float | None:
        return None if self.cpu_s is None or not self.ticks else 1000 * self.cpu_s / self.ticks

    def find(self, name: str, component: str | None = None, **labels: str) -> Iterator[Series]:
        """Series of metric `name` (on components of `component`: a group or a replica),
        whose labels include `labels`."""
        for comp, by_key in self.series.items():
            if component is not None and not _member(comp, component):
                continue
            for s in by_key.values():
                if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                    yield s

    @property
    def samples(self) -> int:
        return sum(len(s.points) for by in self.series.values() for s in by.values())


def _member(component: str, group: str) -> bool:
    """Whether `component` is `group` or one of its replicas (app-1, gateway-a)."""
    return component == group or component.rsplit("-", 1)[0] == group


def load(path: Path | str) -> Metrics:
    """Read a metrics file; a missing file is no metrics. Errors name the file and line."""
    p = Path(path)
    if not p.exists():
        return Metrics()
    points: dict[str, dict[str, list[tuple[float, float]]]] = {}
    errors: dict[str, list[tuple[float, str]]] = {}
    costs: dict[str, list[float]] = {}
    every, sources, ticks, cpu = 1.0, {}, 0, None
    with p.open("rb") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"{p}:{n}: not JSON: {exc}") from None
            if n == 1:
                if row.get("format") != FORMAT:
                    raise ValueError(f"{p}:1: format {row.get('format')!r}, expected {FORMAT!r}")
                every, sources = float(row.get("every_s", 1.0)), dict(row.get("sources", {}))
                continue
            if row.get("end"):
                ticks, cpu = int(row.get("ticks", 0)), float(row.get("cpu_s", 0.0))
                continue
            comp, t = str(row["c"]), float(row["t"])
            costs.setdefault(comp, []).append(float(row.get("ms", 0.0)))
            if "error" in row:
                errors.setdefault(comp, []).append((t, str(row["error"])))
                continue
            by_key = points.setdefault(comp, {})
            for key, value in row.get("v", {}).items():
                by_key.setdefault(key, []).append((t, float(value)))
    return Metrics(
        every=every,
        sources=sources,
        series={
            c: {k: Series(c, k, tuple(v)) for k, v in by_key.items()}
            for c, by_key in points.items()
        },
        errors={c: tuple(v) for c, v in errors.items()},
        read_ms={c: sum(v) / len(v) for c, v in costs.items() if v},
        ticks=ticks,
        cpu_s=cpu,
    )
