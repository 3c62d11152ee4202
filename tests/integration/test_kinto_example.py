"""The worked example on a third-party system (examples/kinto): Kinto from PyPI under
gunicorn, two instances behind HAProxy, on PostgreSQL. First that the example starts as
its files say (one HAProxy server line per Kinto instance, the declared operations work
through the client edge); then its four experiments on both profiles, each of which
must come out as its file expects (careful passes, plain fails the named invariant).

Needs `./dev setup` (HAProxy and examples/kinto/.venv); skipped with the reason when it
has not run."""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from harness.backends.local import LocalBackend
from harness.client import HttpClient
from harness.experiment import load_experiment
from harness.run import RunOptions, run
from harness.sut import load_sut

pytestmark = pytest.mark.integration
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "kinto"
EXPERIMENTS = sorted((EXAMPLE / "experiments").glob("*.yaml"))
PROFILES = ("plain", "careful")


@pytest.fixture(autouse=True)
def _needs_setup() -> None:
    if not (EXAMPLE / ".venv" / "bin" / "gunicorn").exists():
        pytest.skip("examples/kinto/.venv is missing: run ./dev setup")
    if not (shutil.which("haproxy") or Path("/usr/sbin/haproxy").exists()):
        pytest.skip("HAProxy is not installed: run ./dev setup")


def test_the_example_starts_with_a_server_line_per_instance_and_its_operations_work(
    tmp_path: Path,
) -> None:
    sut = load_sut(EXAMPLE / "topology.yaml", profile="careful")
    assert sut.operations is not None
    with LocalBackend(base=tmp_path).start(sut.topology) as system:
        sut.domain.seed(system, 1)
        conf = (system.run_dir / "haproxy" / "haproxy.cfg").read_text()
        servers = [
            line.split()[1:3] for line in conf.splitlines() if line.strip().startswith("server ")
        ]
        links = system.endpoints.links
        assert servers == [
            ["kinto-1", links["haproxy->kinto-1"].listen],
            ["kinto-2", links["haproxy->kinto-2"].listen],
        ]

        async def go() -> list[tuple[str, str, int | None]]:
            async with HttpClient(sut.operations, system.endpoints.gateways) as client:
                created = await client.invoke(
                    0, "create_record", {"id": "t-1", "title": "idea", "size": 3}, "c1", 5.0
                )
                again = await client.invoke(
                    0, "create_record", {"id": "t-1", "title": "idea", "size": 3}, "c1", 5.0
                )
                read = await client.invoke(0, "read_record", {"n": 7}, "c1", 5.0)
                missing = await client.invoke(0, "read_record", {"n": 10**6}, "c1", 5.0)
            return [(r.outcome, r.error or "", r.status) for r in (created, again, read, missing)]

        created, again, read, missing = asyncio.run(go())
        assert created[0] == "ok" and created[2] == 201, created
        assert again[0] == "fail" and again[2] == 412, again  # If-None-Match: * refuses
        assert read[0] == "ok" and read[2] == 200, read
        assert missing[0] == "fail" and missing[2] in (403, 404), missing


@pytest.mark.parametrize("profile", PROFILES)
@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.stem for p in EXPERIMENTS])
def test_each_experiment_comes_out_as_its_file_expects(
    path: Path, profile: str, tmp_path: Path
) -> None:
    experiment = load_experiment(path)
    assert experiment.profiles == PROFILES
    result = run(experiment, RunOptions(profile=profile, runs_dir=tmp_path / "runs", publish=False))
    assert result.met, result.summary()
