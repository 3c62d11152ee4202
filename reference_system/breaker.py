"""Breaker: a circuit breaker that stops calling a failing dependency for a while.

Closed, it counts consecutive failures; at ``failures`` it opens and refuses calls for
``reset_s``; then it lets one probe through (half-open): success closes it, failure opens
it again. The clock is injectable for tests.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

State = Literal["closed", "open", "half-open"]


class CircuitOpen(Exception):
    """The breaker refused the call without trying it."""


class CircuitBreaker:
    """Consecutive-failure circuit breaker (single event loop; not thread-safe)."""

    def __init__(
        self, failures: int, reset_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if failures < 1 or reset_s < 0:
            raise ValueError(f"failures={failures}, reset_s={reset_s}: expected >= 1 and >= 0")
        self._threshold = failures
        self._reset_s = reset_s
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> State:
        if self._opened_at is None:
            return "closed"
        if self._probing or self._clock() - self._opened_at >= self._reset_s:
            return "half-open"
        return "open"

    def allow(self) -> bool:
        """May a call go ahead now? In half-open state only one probe at a time may."""
        if self._opened_at is None:
            return True
        if self._probing or self._clock() - self._opened_at < self._reset_s:
            return False
        self._probing = True
        return True

    def check(self) -> None:
        """Raise :class:`CircuitOpen` unless :meth:`allow`."""
        if not self.allow():
            raise CircuitOpen("database circuit breaker is open")

    def success(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._probing = False

    def failure(self) -> None:
        self._failures += 1
        if self._probing or self._failures >= self._threshold:
            self._opened_at = self._clock()
        self._probing = False

    def release_probe(self) -> None:
        """A probe ended without a verdict (e.g. cancelled): let another one try."""
        self._probing = False
