"""Rates and rate profiles: how many arrivals per second, over time, a workload offers.

Rates are `rps(...)` (absolute requests/s), `x(...)` (multiples of the capacity C,
resolved by `Workload.schedule(capacity=...)`; an unresolved `x` rate is an error) or
`x_own(...)` (multiples of the running profile's own capacity, resolved by
`Workload.schedule(own_capacity=...)`: where C is the system as built, an abuse or a
surge can be pushed past the capacity of the profile under test).
Profiles are segments: `Constant`, `Ramp` (linear), `Step` (a jump at a given time) and
`Series` (segments one after another). All durations are seconds. Pure data, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "Constant",
    "Piece",
    "Ramp",
    "Rate",
    "Segment",
    "Series",
    "Step",
    "WorkloadError",
    "rps",
    "x",
    "x_own",
]


class WorkloadError(ValueError):
    """A workload description that cannot be turned into a schedule."""


# --------------------------------------------------------------------------- rates


@dataclass(frozen=True, slots=True)
class Rate:
    """A request rate: absolute (requests/s) or `relative` (a multiple of capacity C, or,
    with `own`, of the running profile's own capacity)."""

    value: float
    relative: bool = False
    own: bool = False

    def __post_init__(self) -> None:
        if not (isinstance(self.value, int | float) and math.isfinite(self.value)):
            raise WorkloadError(f"rate must be a finite number, got {self.value!r}")
        if self.value < 0:
            raise WorkloadError(f"rate must be >= 0, got {self.value!r}")
        if self.own and not self.relative:
            raise WorkloadError("a rate relative to the own capacity must be relative")

    def resolve(self, capacity: float | None, own: float | None = None) -> float:
        """Requests/s; a relative rate needs the measured capacity C (`capacity`), or,
        relative to the own capacity, the running profile's (`own`)."""
        if not self.relative:
            return float(self.value)
        base = own if self.own else capacity
        if base is None or base <= 0:
            which = "the running profile's own capacity" if self.own else "a measured capacity C"
            raise WorkloadError(
                f"rate {self} needs {which} > 0, got {base!r}"
                " (hint: calibrate first, or give the rate in requests/s with rps())"
            )
        return float(self.value) * base

    def __str__(self) -> str:
        if self.own:
            return f"{self.value:g}C_own"
        return f"{self.value:g}C" if self.relative else f"{self.value:g}/s"


def rps(value: float) -> Rate:
    """An absolute rate in requests per second."""
    return Rate(value, relative=False)


def x(value: float) -> Rate:
    """A rate as a multiple of the measured capacity C."""
    return Rate(value, relative=True)


def x_own(value: float) -> Rate:
    """A rate as a multiple of the running profile's own capacity."""
    return Rate(value, relative=True, own=True)


# --------------------------------------------------------------------------- profiles


@dataclass(frozen=True, slots=True)
class Piece:
    """One linear piece of a resolved profile: rate goes from r0 to r1 over [t0, t0+duration)."""

    t0: float
    duration: float
    r0: float
    r1: float

    def rate_at(self, t: float) -> float:
        if self.duration <= 0:
            return self.r0
        return self.r0 + (self.r1 - self.r0) * (t - self.t0) / self.duration

    @property
    def expected(self) -> float:
        """Expected number of arrivals in this piece (the integral of the rate)."""
        return (self.r0 + self.r1) / 2 * self.duration


def _check_duration(kind: str, duration: float) -> None:
    if not (isinstance(duration, int | float) and math.isfinite(duration) and duration >= 0):
        raise WorkloadError(f"{kind}.duration must be a number of seconds >= 0, got {duration!r}")


@dataclass(frozen=True, slots=True)
class Constant:
    """A constant rate for `duration` seconds."""

    rate: Rate
    duration: float

    def __post_init__(self) -> None:
        _check_duration("Constant", self.duration)

    def pieces(
        self, capacity: float | None, own: float | None = None
    ) -> list[tuple[float, float, float]]:
        r = self.rate.resolve(capacity, own)
        return [(self.duration, r, r)]


@dataclass(frozen=True, slots=True)
class Ramp:
    """A linear ramp from `start` to `end` over `duration` seconds."""

    start: Rate
    end: Rate
    duration: float

    def __post_init__(self) -> None:
        _check_duration("Ramp", self.duration)

    def pieces(
        self, capacity: float | None, own: float | None = None
    ) -> list[tuple[float, float, float]]:
        return [(self.duration, self.start.resolve(capacity, own), self.end.resolve(capacity, own))]


@dataclass(frozen=True, slots=True)
class Step:
    """`before` until `at` seconds, then `after` until `duration` seconds."""

    before: Rate
    after: Rate
    at: float
    duration: float

    def __post_init__(self) -> None:
        _check_duration("Step", self.duration)
        if not 0 <= self.at <= self.duration:
            raise WorkloadError(
                f"Step.at must lie within [0, duration={self.duration}], got {self.at!r}"
            )

    def pieces(
        self, capacity: float | None, own: float | None = None
    ) -> list[tuple[float, float, float]]:
        b, a = self.before.resolve(capacity, own), self.after.resolve(capacity, own)
        return [(self.at, b, b), (self.duration - self.at, a, a)]


@dataclass(frozen=True, slots=True)
class Series:
    """Segments played one after another."""

    segments: tuple[Segment, ...]

    def __post_init__(self) -> None:
        if not self.segments:
            raise WorkloadError("Series needs at least one segment")

    @property
    def duration(self) -> float:
        return sum(s.duration for s in self.segments)

    def pieces(
        self, capacity: float | None, own: float | None = None
    ) -> list[tuple[float, float, float]]:
        out: list[tuple[float, float, float]] = []
        for s in self.segments:
            out.extend(s.pieces(capacity, own))
        return out


Segment = Constant | Ramp | Step | Series
