"""Circuit breaker: opens after consecutive failures, probes once, closes on success."""

from __future__ import annotations

import pytest

from reference_system.breaker import CircuitBreaker, CircuitOpen


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_opens_after_threshold_and_refuses() -> None:
    clock = Clock()
    b = CircuitBreaker(3, 2.0, clock)
    for _ in range(2):
        assert b.allow()
        b.failure()
    assert b.state == "closed"
    assert b.allow()
    b.failure()
    assert b.state == "open"
    assert not b.allow()
    with pytest.raises(CircuitOpen):
        b.check()


def test_success_resets_the_count() -> None:
    b = CircuitBreaker(2, 1.0, Clock())
    b.failure()
    b.success()
    b.failure()
    assert b.state == "closed"


def test_half_open_allows_one_probe_then_closes_on_success() -> None:
    clock = Clock()
    b = CircuitBreaker(1, 2.0, clock)
    b.failure()
    clock.t += 1.9
    assert not b.allow()
    clock.t += 0.2
    assert b.state == "half-open"
    assert b.allow()
    assert not b.allow()  # only one probe at a time
    b.success()
    assert b.state == "closed" and b.allow()


def test_failed_probe_reopens_for_a_full_period() -> None:
    clock = Clock()
    b = CircuitBreaker(5, 2.0, clock)
    for _ in range(5):
        b.failure()
    clock.t += 2.0
    assert b.allow()
    b.failure()
    assert b.state == "open"
    clock.t += 1.0
    assert not b.allow()


def test_released_probe_lets_another_try() -> None:
    clock = Clock()
    b = CircuitBreaker(1, 0.0, clock)
    b.failure()
    assert b.allow()
    b.release_probe()
    assert b.allow()


def test_bad_parameters() -> None:
    with pytest.raises(ValueError, match="failures=0"):
        CircuitBreaker(0, 1.0)
