"""Fixtures for integration tests: an isolated harness base directory, and the reference
system (real PostgreSQL, Redis, nginx, app workers, Toxiproxy on every link), seeded."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness.backends.local import LocalBackend, LocalSystem
from harness.sessions import reap
from harness.topology import load_topology


@pytest.fixture
def tmp_path() -> Iterator[Path]:
    """A temp dir other users can traverse (PostgreSQL runs as 'postgres' under root),
    on tmpfs when there is one; removed after the test."""
    parent = "/dev/shm" if Path("/dev/shm").is_dir() else None
    path = Path(tempfile.mkdtemp(prefix="harness-test-", dir=parent))
    path.chmod(0o755)
    try:
        yield path
    finally:
        reap(path)  # a test that failed half-way may have left a crashed session behind
        shutil.rmtree(path, ignore_errors=True)


@dataclass(frozen=True)
class ReferenceStack:
    """What API tests need of a running, seeded reference system."""

    profile: str
    gateway_urls: list[str]
    postgres_dsn: str
    redis_url: str
    system: LocalSystem

    @property
    def token_key(self) -> bytes:
        """The app's token signing key (the topology's ``${secret:token_key}``)."""
        return self.system.ctx.secrets["token_key"].encode()


@pytest.fixture(scope="module", params=["naive", "hardened"])
def reference_stack(request: pytest.FixtureRequest) -> Iterator[ReferenceStack]:
    """The reference system in one profile, seeded (100k people, 2k venues, seed 1)."""
    profile = request.param
    with LocalBackend().start(load_topology(profile=profile), seed=1) as system:
        system.seed(1)
        ep = system.endpoints
        yield ReferenceStack(
            profile=profile,
            gateway_urls=list(ep.gateways),
            postgres_dsn=ep.components["postgres"].dsn,
            redis_url=ep.components["redis"].dsn,
            system=system,
        )
