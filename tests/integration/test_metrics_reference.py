"""The system's own metrics on the real reference system: every declared source sampled
into metrics.jsonl during the run, the journal's account of it, the report's panel, and
the blame of a failed invariant naming the fault, the gateway and the silent worker."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.metrics import store

sys.path.insert(0, str(Path(__file__).parent))
from chromium import Chromium, chromium_binary

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXPERIMENT = ROOT / "tests" / "fixtures" / "metrics-crash.yaml"


def test_metrics_blame_and_panel_on_a_killed_worker(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness.cli",
            "run",
            str(EXPERIMENT),
            "--profile",
            "naive",
            "--runs-dir",
            str(runs),
            "--seed",
            "7",
            "--proxy-all",  # a kill needs no proxy: keep them, for Toxiproxy's own metrics
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode in (0, 1), done.stdout + done.stderr
    (run,) = [p for p in (runs / "metrics-crash").iterdir() if p.name.endswith("-naive")]
    journal = json.loads((run / "journal.json").read_text())
    assert all(link["proxied"] for link in journal["topology"]["links"].values())
    assert "--proxy-all" in journal["replay"]
    rec = journal["metrics"]
    assert rec["file"] == "metrics.jsonl" and rec["ticks"] >= 7
    assert {"app-1", "app-2", "gateway-a", "postgres", "redis", "toxiproxy"} <= set(rec["sources"])

    m = store.load(run / "metrics.jsonl")
    assert list(m.find("refsys_requests_total", component="app")), m.series.keys()
    assert list(m.find("pg_connections", component="postgres"))
    assert list(m.find("redis_connected_clients"))
    assert list(m.find("nginx_connections_active"))
    assert any(k.startswith("toxiproxy_") for k in m.series["toxiproxy"])
    # app-1 was dead from 3 s to about 6 s: its reads failed then, and only then
    failed = [t for t, _ in m.errors.get("app-1", ())]
    assert failed and all(2.5 <= t <= 7.5 for t in failed), failed
    assert not m.errors.get("app-2")

    (avail,) = [v for v in journal["verdicts"] if v["name"] == "availability"]
    assert avail["valid"] is False
    blame = avail["blame"]
    assert "kill" in blame and "app-1" in blame, blame
    assert "via gateway-" in blame, blame
    assert "app-1 stopped answering its metrics" in blame, blame
    assert "blame: availability" in done.stdout
    assert "Blame" in (run / "summary.md").read_text()
    page = (run / "report.html").read_text()
    assert 'data-chart="metrics"' in page and "Inside the system" in page
    if chromium_binary() is not None:  # the panel is drawn, with a trace per series
        with Chromium(width=1400, height=1600) as browser:
            shown = browser.open(run / "report.html", wait_for="window.reportReady === true")
            assert shown.errors == []
            traces = shown.evaluate("document.getElementById('metrics').data.length")
            assert traces >= 10, traces
