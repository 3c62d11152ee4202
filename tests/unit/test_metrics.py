"""The metrics layer without a system: parsers, the section of a topology, the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.metrics.readers import parse_prometheus, parse_redis_info, parse_stub_status
from harness.metrics.spec import Source, parse_metrics
from harness.metrics.store import FORMAT, Metrics, Series, load, series_key, split_key
from harness.validate import Node

PROM = """\
# HELP refsys_requests_total Requests answered.
# TYPE refsys_requests_total counter
refsys_requests_total{route="code",status="200"} 12.0
refsys_requests_total{route="code",status="503"} 3.0
refsys_requests_created{route="code",status="200"} 1.7e9
# TYPE refsys_breaker_open gauge
refsys_breaker_open{breaker="redis"} 1.0
"""

STUB = (
    "Active connections: 7 \n"
    "server accepts handled requests\n"
    " 120 120 480 \n"
    "Reading: 1 Writing: 2 Waiting: 4 \n"
)


def test_prometheus_text_becomes_labelled_series_without_created() -> None:
    got = parse_prometheus(PROM)
    assert got == {
        'refsys_requests_total{route="code",status="200"}': 12.0,
        'refsys_requests_total{route="code",status="503"}': 3.0,
        'refsys_breaker_open{breaker="redis"}': 1.0,
    }
    assert parse_prometheus(PROM, keep=lambda n: n.startswith("refsys_breaker")) == {
        'refsys_breaker_open{breaker="redis"}': 1.0
    }
    summed = parse_prometheus(PROM, lambda n: n.endswith("_total"), drop_labels=("status",))
    assert summed == {'refsys_requests_total{route="code"}': 15.0}


def test_stub_status_and_redis_info() -> None:
    s = parse_stub_status(STUB)
    assert s["nginx_connections_active"] == 7 and s["nginx_requests_total"] == 480
    assert (s["nginx_connections_reading"], s["nginx_connections_waiting"]) == (1, 4)
    info = "# Clients\r\nconnected_clients:5\r\nblocked_clients:0\r\n"
    info += "used_memory:1024\r\nrole:master\r\n"
    assert parse_redis_info(info) == {
        "redis_connected_clients": 5.0,
        "redis_blocked_clients": 0.0,
        "redis_used_memory_bytes": 1024.0,
    }


@pytest.mark.parametrize(
    "labels", [{}, {"a": "x"}, {"b": 'q"uote', "a": "back\\slash"}, {"route": "/v1/code"}]
)
def test_series_keys_round_trip(labels: dict[str, str]) -> None:
    key = series_key("m_total", labels)
    assert split_key(key) == ("m_total", labels)


def test_counter_rate_survives_a_reset() -> None:
    s = Series("app-1", "c_total", ((0.0, 10.0), (1.0, 20.0), (2.0, 5.0), (2.0, 9.0)))
    assert s.rate() == ((1.0, 10.0), (2.0, 5.0))


def _write(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_load_reads_samples_errors_costs_and_the_end(tmp_path: Path) -> None:
    p = _write(
        tmp_path / "metrics.jsonl",
        [
            {"format": FORMAT, "every_s": 0.5, "sources": {"app-1": "prometheus"}},
            {"t": 1.0, "c": "app-1", "ms": 2.0, "v": {"q": 1.0, 'x{k="v"}': 3.0}},
            {"t": 1.5, "c": "app-1", "ms": 4.0, "v": {"q": 2.0}},
            {"t": 2.0, "c": "app-1", "ms": 500.0, "error": "TimeoutError: timed out"},
            {"end": True, "ticks": 3, "cpu_s": 0.03},
        ],
    )
    m = load(p)
    assert m.every == 0.5 and m.sources == {"app-1": "prometheus"}
    assert m.series["app-1"]["q"].points == ((1.0, 1.0), (1.5, 2.0))
    assert m.errors == {"app-1": ((2.0, "TimeoutError: timed out"),)}
    assert m.read_ms["app-1"] == pytest.approx(506 / 3)
    assert m.ticks == 3 and m.cpu_ms_per_tick == pytest.approx(10.0)
    assert [s.key for s in m.find("x", component="app", k="v")] == ['x{k="v"}']
    assert not list(m.find("x", component="gateway"))
    assert m.samples == 3


def test_load_refuses_other_formats_and_bad_lines(tmp_path: Path) -> None:
    assert load(tmp_path / "absent.jsonl").series == {}
    with pytest.raises(ValueError, match="format"):
        load(_write(tmp_path / "a.jsonl", [{"format": "other/9"}]))
    bad = tmp_path / "b.jsonl"
    bad.write_text(json.dumps({"format": FORMAT}) + "\n{not json\n")
    with pytest.raises(ValueError, match=r"b.jsonl:2: not JSON"):
        load(bad)


GROUPS = ("app", "app-1", "app-2", "postgres", "redis", "gateway")


def _parse(value: object) -> object:
    return parse_metrics(Node(value, "topo.yaml", "metrics"), GROUPS)


def test_the_section_parses_readers_and_interval() -> None:
    spec = _parse(
        {
            "every": "500ms",
            "toxiproxy": True,
            "components": {"app": {"prometheus": "/metrics"}, "postgres": {"postgres": {}}},
        }
    )
    assert spec.every == 0.5 and spec.toxiproxy  # type: ignore[attr-defined]
    assert spec.components == {  # type: ignore[attr-defined]
        "app": Source("prometheus", "/metrics"),
        "postgres": Source("postgres"),
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"components": {"db": {"postgres": {}}}}, "a component of the topology"),
        ({"components": {"app": {"prometheus": "/m", "nginx": "/s"}}}, "exactly one reader"),
        ({"components": {"app": {}}}, "exactly one reader"),
        ({"components": {"app": {"prometheus": "metrics"}}}, "starting with '/'"),
        ({"components": {"redis": {"redis": {"db": 1}}}}, "takes no options"),
        ({"every": "10ms"}, "at least 100ms"),
        ({"every": "2m"}, "metrics.every"),
        ({"scrape": 1}, "scrape"),
    ],
)
def test_bad_sections_name_the_key(value: object, expected: str) -> None:
    with pytest.raises(ConfigError, match=r"topo\.yaml") as err:
        _parse(value)
    assert expected in str(err.value)


def test_the_panel_draws_moving_series_and_folds_the_rest() -> None:
    from harness.metrics.panel import KEY_SERIES, MetricsColumn, figure, panel_html

    flat = {
        f"g{i}": Series("app-1", f"g{i}", ((0.0, 1.0), (1.0, 1.0), (2.0, 1.0))) for i in range(5)
    }
    moving = {"q": Series("app-1", "q", ((0.0, 0.0), (1.0, 9.0), (2.0, 0.0)))}
    c_total = {"c_total": Series("app-1", "c_total", ((0.0, 0.0), (1.0, 5.0), (2.0, 10.0)))}
    naive = Metrics(series={"app-1": {**flat, **moving}})
    hardened = Metrics(series={"app-1": {**flat, **c_total}, "redis": moving})
    cols = [
        MetricsColumn("naive", naive, ((1.0, 2.0, "kill app-1"),), 3.0),
        MetricsColumn("hardened", hardened, (), 3.0),
    ]
    fig = figure(cols)
    names = [(t.name, t.visible, t.showlegend) for t in fig.data]
    assert names[0] == ("app-1 q", True, True)  # the most moving first
    assert ("app-1 c_total/s", True, True) in names  # counters as rates
    assert sum(v == "legendonly" for _, v, _ in names) >= 5 - (KEY_SERIES - 2)
    # a series shown in both columns has one legend entry
    assert sum(n == "app-1 g0" and shown for n, _, shown in names) == 1
    assert len(fig.layout.shapes) == 2  # the fault, on both rows of the naive column
    assert fig.layout.xaxis.range == (0, 3.0)

    def embed(fig: object, height: int) -> str:
        return f'<div id="metrics" style="height:{height}px"></div>'

    assert 'id="metrics" style="height:' in panel_html(cols, embed)
    assert "declare <code>metrics:</code>" in panel_html([MetricsColumn("x", Metrics())], embed)
