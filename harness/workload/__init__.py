"""Workloads: seeded open-loop schedules of a system's declared operations.

- `rates`: `Rate` (`rps`, `x` = multiples of C, `x_own` = multiples of the running
  profile's own capacity) and rate profiles (`Constant`, `Ramp`,
  `Step`, `Series`);
- `clients`: client classes and their behaviours (`Good`, `Impatient`, `Buggy`, `Abuser`);
- `schedule`: `Workload` -> `Schedule` -> `Arrival`s (pure, no I/O);
- `spec`: the `workload:` section of an experiment file.
"""

from harness.workload.clients import (
    DEFAULT_CLIENTS,
    Abuser,
    Behaviour,
    Buggy,
    ClientClass,
    Good,
    Impatient,
    RetryBudget,
)
from harness.workload.rates import (
    Constant,
    Piece,
    Ramp,
    Rate,
    Segment,
    Series,
    Step,
    WorkloadError,
    rps,
    x,
    x_own,
)
from harness.workload.schedule import Arrival, Schedule, Workload

__all__ = [
    "DEFAULT_CLIENTS",
    "Abuser",
    "Arrival",
    "Behaviour",
    "Buggy",
    "ClientClass",
    "Constant",
    "Good",
    "Impatient",
    "Piece",
    "Ramp",
    "Rate",
    "RetryBudget",
    "Schedule",
    "Segment",
    "Series",
    "Step",
    "Workload",
    "WorkloadError",
    "rps",
    "x",
    "x_own",
]
