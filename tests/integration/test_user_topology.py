"""A topology as a user writes it, run for real: config files rendered into each
component's run directory (nginx with one server line per web replica), `harness run`
with profiles of the author's naming, a topology without profiles run once as `default`,
and runs whose rates are all absolute, which never calibrate."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path

import pytest
import yaml

from harness.backends.local import LocalBackend
from harness.experiment import load_experiment
from harness.run import RunOptions, run
from harness.topology import load_topology

pytestmark = pytest.mark.integration
SHOP = Path(__file__).resolve().parents[1] / "fixtures" / "shop" / "topology.yaml"


def get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=3) as resp:
        return resp.read().decode().strip()


def test_config_files_are_rendered_into_the_run_directory_before_start(tmp_path: Path) -> None:
    topo = load_topology(SHOP, profile="pair")
    with LocalBackend(base=tmp_path).start(topo) as system:
        gateway = system.endpoints.gateways[0]
        assert {get(gateway + "/name.txt") for _ in range(6)} == {"web-1", "web-2"}
        assert get(gateway + "/echo") == "GET /echo"  # `$${uri}` reached nginx as ${uri}
        conf = (system.run_dir / "lb" / "nginx.conf").read_text()
        servers = [line.split() for line in conf.splitlines() if "server 127" in line]
        links = system.endpoints.links
        assert servers == [
            ["server", links["lb->web-1"].listen, "max_fails=0;", "#", "web-1"],
            ["server", links["lb->web-2"].listen, "max_fails=0;", "#", "web-2"],
        ]
        assert (system.run_dir / "web-2" / "name.txt").read_text() == "web-2\n"


def experiment(tmp_path: Path, topology: Path, **extra: object) -> Path:
    spec = {
        "name": "whoami",
        "description": "an experiment on a topology of the author's own",
        "system": {"topology": str(topology)},
        "workload": {
            "duration": "3s",
            "rate": [{"at": "0s", "rps": 30, "phase": "steady"}],
            "clients": {"good": {"share": 1.0, "max_retries": 0}},
        },
        "invariants": [
            {"availability": {"op": "whoami", "min": 0.99}},
            {"latency": {"op": "whoami", "p99_ms": 1000}},
        ],
        "expect": "pass",
        **extra,
    }
    path = tmp_path / "whoami.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def test_harness_run_runs_every_profile_of_the_authors_naming_without_calibrating(
    tmp_path: Path,
) -> None:
    path = experiment(tmp_path, SHOP)
    harness = Path(sys.executable).with_name("harness")
    out = subprocess.run(
        [str(harness), "run", str(path), "--runs-dir", str(tmp_path / "runs"), "--seed", "3"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "whoami [single] seed=3: as expected" in out.stdout, out.stdout
    assert "whoami [pair] seed=3: as expected" in out.stdout, out.stdout
    assert "capacity" not in out.stderr.lower() and "C = " not in out.stdout, out.stderr
    journals = [
        j
        for j in sorted((tmp_path / "runs").glob("whoami/*/journal.json"))
        if not j.parent.is_symlink()
    ]
    assert len(journals) == 2
    for journal in journals:
        record = json.loads(journal.read_text())
        assert record["capacity"]["source"] == "none", record["capacity"]
        assert record["outcome"] == "met"


def test_a_topology_without_profiles_runs_once_as_default_and_steady_state_can_be_off(
    tmp_path: Path,
) -> None:
    plain = tmp_path / "topology.yaml"
    text = SHOP.read_text()
    start, end = text.index("profiles:"), text.index("components:")
    plain.write_text(text[:start] + text[end:])
    for name in ("nginx.conf.tmpl", "name.tmpl"):
        (tmp_path / name).write_text((SHOP.parent / name).read_text())
    exp = load_experiment(experiment(tmp_path, plain, steady_state=False))
    assert exp.profiles == ("default",)
    result = run(exp, RunOptions(profile="default", runs_dir=tmp_path / "runs", publish=False))
    assert result.met, result.summary()
    assert result.capacity.source == "none" and result.capacity.rps is None
    assert "steady_state" not in result.timings and "workload" in result.timings
    assert textwrap.shorten(result.headline(), 60).startswith("whoami [default]")
