"""The harness's pytest plugin (registered through the ``pytest11`` entry point).

Adds the options ``--backend``, ``--profile``, ``--seed N|last`` and ``--runs-dir``,
prints the seed in the header (``--seed last`` replays the previous session's), and
gives tests a running system::

    def test_gateway_answers(start_system):
        system = start_system(load_topology(profile="hardened"))
        ...  # torn down when the test ends, also on failure or Ctrl-C
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator

import pytest

from harness.backends import Backend, System, get_backend
from harness.topology import Topology

_SEED_KEY = "harness/seed"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "chaos harness")
    group.addoption("--backend", default="local", help="backend that starts systems: local")
    group.addoption(
        "--profile",
        default="both",
        choices=("naive", "hardened", "both"),
        help="reference-system profile(s) experiments run against",
    )
    group.addoption("--seed", default=None, help="seed for workloads and data; 'last' replays")
    group.addoption("--runs-dir", default="runs", help="where run journals and reports go")


def pytest_configure(config: pytest.Config) -> None:
    for line in (
        "integration: starts real components (PostgreSQL, Redis, nginx, Toxiproxy)",
        "chaos: injects faults into a running system",
        "containers: needs a Docker engine",
    ):
        config.addinivalue_line("markers", line)
    raw = config.getoption("--seed")
    cache = getattr(config, "cache", None)  # absent with -p no:cacheprovider
    if raw == "last":
        seed = cache.get(_SEED_KEY, None) if cache else None
        if seed is None:
            raise pytest.UsageError("--seed last: no previous seed recorded in .pytest_cache")
    elif raw is None:
        seed = random.SystemRandom().randrange(1, 2**31)
    else:
        try:
            seed = int(raw)
        except ValueError:
            raise pytest.UsageError(f"--seed: got {raw!r}, expected an integer or 'last'") from None
    config.harness_seed = seed  # type: ignore[attr-defined]
    if cache is not None:
        cache.set(_SEED_KEY, seed)


def pytest_report_header(config: pytest.Config) -> str:
    seed = config.harness_seed  # type: ignore[attr-defined]
    return f"harness: backend={config.getoption('--backend')} seed={seed} (replay: --seed {seed})"


@pytest.fixture(scope="session")
def harness_seed(request: pytest.FixtureRequest) -> int:
    """The session's seed (printed in the header)."""
    return request.config.harness_seed  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def harness_backend(request: pytest.FixtureRequest) -> Backend:
    """The backend chosen with ``--backend``."""
    return get_backend(request.config.getoption("--backend"))


@pytest.fixture
def start_system(harness_backend: Backend, harness_seed: int) -> Iterator[Callable[..., System]]:
    """Start a topology for this test; everything started is torn down after it."""
    with contextlib.ExitStack() as stack:

        def start(topology: Topology, seed: int | None = None) -> System:
            return stack.enter_context(
                harness_backend.start(topology, seed=harness_seed if seed is None else seed)
            )

        yield start
