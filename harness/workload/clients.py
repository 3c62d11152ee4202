"""Client behaviours: who sends the arrivals and what each does after an attempt fails.

A `ClientClass` takes a share of the arrivals and carries a behaviour the load runner
interprets (`harness.load`): `Good` (timeout, few retries with full-jitter backoff, a
retry budget, failover), `Impatient` (gives up after its patience, re-opens after a
pause), `Buggy` (retries at once, in a loop) and `Abuser` (a few identities; with a
`rate`, a fixed-rate stream of its own). Plain data.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from harness.workload.rates import Rate, WorkloadError

__all__ = [
    "DEFAULT_CLIENTS",
    "Abuser",
    "Behaviour",
    "Buggy",
    "ClientClass",
    "Good",
    "Impatient",
    "RetryBudget",
]


@dataclass(frozen=True, slots=True)
class RetryBudget:
    """Retries one client allows itself: `ratio` per first attempt plus `min_per_s`, banked
    up to `burst` (it starts full). Each client id (a phone, a gate, a lab) has its own."""

    ratio: float = 0.1
    min_per_s: float = 0.5
    burst: float = 3.0


@dataclass(frozen=True, slots=True)
class Good:
    """A well-behaved app: timeout, few retries with full-jitter backoff, failover."""

    timeout: float = 3.0
    max_retries: int = 2
    backoff_base: float = 0.1
    backoff_cap: float = 2.0
    honour_retry_after: bool = True
    max_retry_after: float = 10.0
    budget: RetryBudget | None = field(default_factory=RetryBudget)
    failover: bool = True

    def backoff(self, retry: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(cap, base * 2**retry)] for retry = 1, 2, ..."""
        return rng.uniform(0.0, min(self.backoff_cap, self.backoff_base * 2 ** (retry - 1)))


@dataclass(frozen=True, slots=True)
class Impatient:
    """A person who gives up after `patience` s and re-opens the page after a `pause`."""

    patience: tuple[float, float] = (2.0, 5.0)
    pause: tuple[float, float] = (0.5, 3.0)
    max_attempts: int = 10


@dataclass(frozen=True, slots=True)
class Buggy:
    """A buggy app: retries at once, in a loop, until ok or `max_attempts`."""

    timeout: float = 10.0
    max_attempts: int = 50


@dataclass(frozen=True, slots=True)
class Abuser:
    """Few identities; with `rate`, a fixed-rate stream of its own (its share must be 0)."""

    identities: int = 3
    rate: Rate | None = None
    timeout: float = 3.0


Behaviour = Good | Impatient | Buggy | Abuser


@dataclass(frozen=True, slots=True)
class ClientClass:
    """A named client population taking `share` of the profile's arrivals."""

    name: str
    share: float
    behaviour: Behaviour = field(default_factory=Good)

    def __post_init__(self) -> None:
        if not self.name:
            raise WorkloadError("ClientClass.name must not be empty")
        if not (isinstance(self.share, int | float) and self.share >= 0):
            raise WorkloadError(f"clients.{self.name}.share must be >= 0, got {self.share!r}")
        if isinstance(self.behaviour, Abuser) and self.behaviour.rate is not None and self.share:
            raise WorkloadError(
                f"clients.{self.name}: an Abuser with a fixed rate sends its own stream;"
                f" its share must be 0, got {self.share!r}"
            )


DEFAULT_CLIENTS: tuple[ClientClass, ...] = (
    ClientClass("impatient", 0.94, Impatient()),
    ClientClass("buggy", 0.05, Buggy()),
    ClientClass("abuser", 0.01, Abuser()),
)
