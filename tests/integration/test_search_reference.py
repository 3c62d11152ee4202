"""Fault search end to end on the real reference system: the Python way
(``@given(schedule=fault_schedules(...))`` with the ``fault_example`` fixture) on one
reused, reset system. The two YAML demonstrations (a planted weakness found and shrunk;
the fully hardened profile surviving the same search) are the experiment files
``experiments/search-planted-weakness.yaml`` and ``experiments/search-hardened.yaml``,
collected by the pytest plugin."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, Phase, given, settings

from harness.experiment import load_experiment
from harness.search.space import fault_schedules
from harness.topology import load_topology

pytestmark = [pytest.mark.integration, pytest.mark.chaos]

EXPERIMENT = load_experiment("experiments/search-hardened.yaml")
assert EXPERIMENT.search is not None
SPACE = EXPERIMENT.search.space


@settings(
    max_examples=2,
    deadline=None,
    database=None,
    phases=(Phase.generate,),
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(schedule=fault_schedules(SPACE, topology=load_topology(profile="hardened")))
def test_hardened_keeps_its_invariants_under_generated_data_tier_faults(
    fault_example, schedule
) -> None:
    result = fault_example(EXPERIMENT, schedule, profile="hardened")
    assert result.aborted is None, result.summary()
    # every generated fault acted (the schedule ran, not just the workload)
    assert len(result.faults) == len(schedule)
    assert all(f.took_effect for f in result.faults), result.summary()
    assert result.valid, result.summary()
