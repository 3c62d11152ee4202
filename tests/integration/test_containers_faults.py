"""Every fault of the fault layer against the mini topology in containers: the same list
and checks as ``test_faults.py`` (imported from it, so the two cannot drift apart)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_faults import FAULTS, assert_clean  # same directory: pytest puts it on sys.path

from harness.backends.containers import ContainersBackend, ContainersSystem, engine_available
from harness.faults import Fault
from harness.topology import load_topology

AVAILABLE, WHY = engine_available()
pytestmark = [
    pytest.mark.integration,
    pytest.mark.chaos,
    pytest.mark.containers,
    pytest.mark.skipif(not AVAILABLE, reason=WHY),
]
MINI = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "mini.yaml"


@pytest.fixture(scope="module")
def system() -> Iterator[ContainersSystem]:
    with ContainersBackend().start(load_topology(MINI), seed=1) as running:
        yield running


@pytest.mark.parametrize("fault", FAULTS, ids=[f.describe() for f in FAULTS])
def test_fault_takes_effect_and_heals_in_containers(system: ContainersSystem, fault: Fault) -> None:
    injected = fault.inject(system)
    try:
        assert injected.took_effect, injected.summary()
    finally:
        healed = fault.heal(system)
    assert healed.took_effect, healed.summary()
    json.dumps(injected.to_json(injected.started))
    assert_clean(system)
