"""The open-loop runner, against a fake client: punctuality, accounting, behaviours, bounds."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from harness.client import Result
from harness.history import NEVER_SENT, History, Op
from harness.load import LoadConfig, LoadResult, run_load
from harness.operations import Mix
from harness.workload import (
    Abuser,
    Arrival,
    Buggy,
    ClientClass,
    Constant,
    Good,
    Impatient,
    RetryBudget,
    Workload,
    rps,
)
from tests.support import reference_operations

OPS = reference_operations()

Answer = Callable[
    [int, str, int], tuple[float, Result]
]  # (target, op, attempt#) -> (delay, result)


class FakeClient:
    """Answers after a delay (capped by the timeout, as a real client would)."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.calls: list[tuple[float, int, str, str]] = []
        self.seen: Counter[str] = Counter()

    async def invoke(
        self, target: int, op: str, args: Mapping[str, Any], client_id: str, timeout: float
    ) -> Result:
        self.calls.append((time.monotonic(), target, op, client_id))
        self.seen[client_id] += 1
        delay, result = self.answer(target, op, self.seen[client_id])
        if delay >= timeout:
            await asyncio.sleep(timeout)
            return Result("info" if op == "scan" else "fail", None, "timeout")
        await asyncio.sleep(delay)
        return result


OK = Result("ok", 200)


def ok_after(delay: float) -> Answer:
    return lambda target, op, n: (delay, OK)


def arrival(i: int, t: float, behaviour, op: str = "show_code", args=None) -> Arrival:
    args = args or {"person": i + 1}
    return Arrival(i, t, f"c{i}", type(behaviour).__name__.lower(), op, args, behaviour, 1234 + i)


DEFAULT = LoadConfig(drain=5.0)


def run(arrivals, client, cfg: LoadConfig = DEFAULT) -> tuple[LoadResult, list[Op]]:
    h = History()
    result = asyncio.run(run_load(arrivals, client, h, cfg, writes=("scan", "ingest")))
    return result, h.ops


def check_accounting(result: LoadResult, ops: list[Op]) -> None:
    """Every op completes exactly once and the counters add up."""
    assert len({o.id for o in ops}) == len(ops) == result.ops
    assert result.ops == result.sent + result.never_sent
    firsts = [o for o in ops if o.cause == "first"]
    assert len(firsts) == result.arrivals
    assert sorted(o.arrival for o in firsts) == list(range(result.arrivals))
    assert Counter(o.cause for o in ops)["retry"] == result.retries
    assert Counter(o.cause for o in ops)["reopen"] == result.reopens
    by_id = {o.id: o for o in ops}
    for o in ops:
        assert o.completed >= (o.sent if o.sent is not None else o.intended) - 1e-9
        if o.cause != "first":
            assert by_id[o.parent].root == o.root and by_id[o.parent].attempt == o.attempt - 1
            assert o.intended >= by_id[o.parent].completed


def test_open_loop_sends_on_schedule_although_the_system_is_slow():
    wl = Workload(
        Constant(rps(400), 1.0),
        OPS,
        mix=Mix.of(show_code=1),
        clients=(ClientClass("good", 1.0, Good(max_retries=0)),),
        seed=3,
    )
    arrivals = list(wl.schedule().arrivals())
    client = FakeClient(ok_after(0.4))  # far slower than the inter-arrival time
    result, ops = run(arrivals, client)
    check_accounting(result, ops)
    assert result.never_sent == 0 and result.sent == len(arrivals)
    lateness = sorted(o.lateness for o in ops)
    assert lateness[int(0.99 * len(lateness))] < 0.05
    assert min(lateness) >= 0  # never sent before its time
    # latency is from the intended time and includes the system's delay
    assert all(0.4 <= o.latency < 0.6 for o in ops)
    # open loop: in-flight grew to ~rate * delay instead of the sender waiting
    assert client.calls[-1][0] - client.calls[0][0] < 1.1


def test_late_arrivals_are_recorded_as_never_sent():
    b = Good(max_retries=0)

    def arrivals() -> Iterator[Arrival]:
        for i in range(20):
            if i == 10:
                time.sleep(0.3)  # the runner is stalled: arrivals 10.. are overdue
            yield arrival(i, i * 0.01, b)

    result, ops = run(arrivals(), FakeClient(ok_after(0.001)), LoadConfig(max_lateness=0.1))
    check_accounting(result, ops)
    never = [o for o in ops if o.error == NEVER_SENT]
    assert result.never_sent == len(never) >= 5
    assert all(o.sent is None and o.outcome == "fail" and o.latency is None for o in never)
    assert {o.value["reason"] for o in never} == {"late"}
    assert result.sent + result.never_sent == 20


def test_in_flight_cap_turns_arrivals_into_never_sent():
    arrivals = [arrival(i, 0.001 * i, Good(max_retries=0)) for i in range(20)]
    result, ops = run(arrivals, FakeClient(ok_after(0.2)), LoadConfig(max_in_flight=5))
    check_accounting(result, ops)
    assert result.sent == 5 and result.never_sent == 15
    assert Counter(o.value["reason"] for o in ops if o.sent is None) == {"in_flight_limit": 15}


def test_good_client_retries_with_backoff_and_honours_retry_after():
    g = Good(max_retries=2, backoff_base=0.01, backoff_cap=0.02, budget=None)
    rejected = Result("fail", 503, "http 503", retry_after=0.15)
    client = FakeClient(lambda t, op, n: (0.0, rejected))
    result, ops = run([arrival(0, 0.0, g)], client)
    check_accounting(result, ops)
    assert [o.attempt for o in ops] == [1, 2, 3]
    assert [o.cause for o in ops] == ["first", "retry", "retry"]
    assert result.retries == 2
    for prev, nxt in itertools.pairwise(ops):
        assert nxt.parent == prev.id and nxt.root == ops[0].id
        assert nxt.intended - prev.completed >= 0.15  # Retry-After is a floor


def test_good_clients_refused_together_do_not_retry_together():
    g = Good(max_retries=1, backoff_base=0.05, backoff_cap=0.05, budget=None)
    rejected = Result("fail", 503, "http 503", retry_after=0.1)
    client = FakeClient(lambda t, op, n: (0.0, rejected))
    result, ops = run([arrival(i, 0.0, g) for i in range(20)], client)
    check_accounting(result, ops)
    by_id = {o.id: o for o in ops}
    waits = [o.intended - by_id[o.parent].completed for o in ops if o.cause == "retry"]
    assert len(waits) == 20
    assert all(0.1 <= w <= 0.15 + 1e-6 for w in waits)  # Retry-After, then jitter on top
    assert max(waits) - min(waits) > 0.02  # spread, not a herd


def test_good_client_stops_after_success_and_does_not_retry_a_404():
    g = Good(budget=None)
    flaky = FakeClient(lambda t, op, n: (0.0, OK if n == 2 else Result("fail", None, "connect")))
    _, ops1 = run([arrival(0, 0.0, g)], flaky)
    assert [o.outcome for o in ops1] == ["fail", "ok"]
    r2, ops2 = run([arrival(0, 0.0, g)], FakeClient(lambda t, op, n: (0, Result("fail", 404))))
    assert len(ops2) == 1 and r2.retries == 0


def test_good_client_fails_over_to_the_other_gateway():
    g = Good(budget=None, backoff_base=0.001)

    def answer(target: int, op: str, n: int) -> tuple[float, Result]:
        return (0.0, OK) if target == 1 else (0.0, Result("fail", None, "connect: refused"))

    arrivals = [arrival(i, 0.001 * i, g) for i in range(20)]
    result, ops = run(arrivals, FakeClient(answer), LoadConfig(targets=2))
    check_accounting(result, ops)
    assert {o.target for o in ops if o.cause == "first"} == {0, 1}  # spread over gateways
    for root, chain in _chains(ops).items():
        assert chain[-1].outcome == "ok" and chain[-1].target == 1, (root, chain)
        assert len(chain) <= 2


def test_retry_budget_limits_retries_per_client():
    g = Good(budget=RetryBudget(ratio=0.0, min_per_s=0.0, burst=3), backoff_base=0.001)
    # one gate sends 30 scans-worth of requests; its budget allows 3 retries in all
    arrivals = [
        Arrival(i, 0.001 * i, "gate-7", "good", "show_code", {"person": i + 1}, g, 1234 + i)
        for i in range(30)
    ]
    client = FakeClient(lambda t, op, n: (0.0, Result("fail", 503)))
    result, ops = run(arrivals, client)
    check_accounting(result, ops)
    assert result.retries == 3
    exhausted = sum(1 for chain in _chains(ops).values() if len(chain) == 3)  # hit max_retries
    assert result.budget_denied == 30 - exhausted
    # other clients have budgets of their own
    others = [arrival(i, 0.001 * i, g) for i in range(5)]
    result, _ = run(others, FakeClient(lambda t, op, n: (0.0, Result("fail", 503))))
    assert result.retries == 10 and result.budget_denied == 0


def test_a_client_that_failed_over_stays_on_the_other_gateway():
    g = Good(budget=None, backoff_base=0.001)
    arrivals = [
        Arrival(i, 0.01 * i, "phone-1", "good", "show_code", {"person": 1}, g, 99 + i)
        for i in range(5)
    ]
    dead = FakeClient(
        lambda t, op, n: (0.0, Result("fail", None, "refused") if t == 0 else Result("ok", 200))
    )
    result, ops = run(arrivals, dead, LoadConfig(targets=2, drain=5.0))
    check_accounting(result, ops)
    assert sum(1 for o in ops if o.target == 0) <= 1  # only the first request hit the dead one


def test_impatient_person_gives_up_and_reopens_after_a_pause():
    b = Impatient(patience=(0.03, 0.05), pause=(0.02, 0.04), max_attempts=4)
    client = FakeClient(ok_after(10.0))  # the system never answers in time
    result, ops = run([arrival(0, 0.0, b)], client)
    check_accounting(result, ops)
    assert [o.cause for o in ops] == ["first", "reopen", "reopen", "reopen"]
    assert result.reopens == 3
    for o in ops:
        assert o.error == "timeout" and 0.03 <= o.completed - o.sent < 0.09
    for prev, nxt in itertools.pairwise(ops):
        assert 0.02 <= nxt.intended - prev.completed <= 0.04 + 1e-6


def test_buggy_app_retries_at_once_in_a_loop_until_its_bound():
    b = Buggy(max_attempts=6)
    client = FakeClient(lambda t, op, n: (0.0, Result("fail", 503, retry_after=5.0)))
    result, ops = run([arrival(0, 0.0, b)], client)
    check_accounting(result, ops)
    assert len(ops) == 6 and result.retries == 5
    assert ops[-1].completed - ops[0].sent < 0.05  # no backoff, Retry-After ignored


def test_buggy_app_stops_on_success():
    client = FakeClient(lambda t, op, n: (0.0, OK if n == 3 else Result("fail", 500)))
    _, ops = run([arrival(0, 0.0, Buggy())], client)
    assert [o.outcome for o in ops] == ["fail", "fail", "ok"]


def test_abuser_never_retries():
    client = FakeClient(lambda t, op, n: (0.0, Result("fail", 429)))
    result, ops = run([arrival(i, 0.001 * i, Abuser()) for i in range(10)], client)
    assert len(ops) == 10 and result.retries == 0


def test_hard_deadline_completes_every_in_flight_op():
    arrivals = [
        arrival(
            i,
            0.01 * i,
            Good(timeout=30),
            op="scan",
            args={"scan_id": f"s{i}", "person": i, "venue": 1},
        )
        for i in range(10)
    ] + [arrival(10, 0.05, Good(timeout=30))]
    arrivals.sort(key=lambda a: a.intended)

    class Hanging:  # ignores its timeout: only the deadline can end it
        async def invoke(self, *args) -> Result:
            await asyncio.sleep(100)
            return OK

    t = time.monotonic()
    result, ops = run(arrivals, Hanging(), LoadConfig(deadline=0.3))
    assert time.monotonic() - t < 2.0
    check_accounting(result, ops)
    assert result.cancelled == len(ops) == 11
    assert all(o.error == "deadline" for o in ops)
    assert {o.outcome for o in ops if o.op == "scan"} == {"info"}
    assert {o.outcome for o in ops if o.op == "show_code"} == {"fail"}


def test_no_retry_starts_after_retry_until_and_what_is_in_flight_completes():
    client = FakeClient(lambda t, op, n: (0.02, Result("fail", 503)))
    arrivals = [arrival(i, 0.01 * i, Buggy(max_attempts=1000, timeout=1.0)) for i in range(5)]
    t = time.monotonic()
    result, ops = run(arrivals, client, LoadConfig(deadline=2.0, retry_until=0.3))
    assert time.monotonic() - t < 1.0  # the chains ended at 0.3 s, not at the deadline
    check_accounting(result, ops)
    assert result.retries > 0 and result.cancelled == 0
    assert max(o.intended for o in ops) < 0.3
    assert all(o.completed is not None for o in ops)


def test_arrivals_past_the_deadline_are_never_sent():
    arrivals = [arrival(i, 0.1 * i, Good()) for i in range(10)]
    result, ops = run(arrivals, FakeClient(ok_after(0.0)), LoadConfig(deadline=0.45))
    check_accounting(result, ops)
    assert result.sent == 5 and result.never_sent == 5


def test_a_full_workload_adds_up():
    wl = Workload(
        Constant(rps(1500), 1.0),
        OPS,
        seed=5,
        clients=(
            ClientClass("good", 0.5, Good(backoff_base=0.005, budget=None)),
            ClientClass(
                "impatient",
                0.3,
                Impatient(patience=(0.02, 0.03), pause=(0.01, 0.02), max_attempts=3),
            ),
            ClientClass("buggy", 0.2, Buggy(max_attempts=3)),
        ),
    )

    def answer(t: int, op: str, n: int) -> tuple[float, Result]:
        return (0.001, OK) if n % 3 == 0 else (0.05, Result("fail", 503))

    result, ops = run(wl.schedule().arrivals(), FakeClient(answer), LoadConfig(drain=3.0))
    check_accounting(result, ops)  # whatever a busy machine left unsent is accounted for
    assert result.retries > 0 and result.reopens > 0


def _chains(ops: list[Op]) -> dict[int, list[Op]]:
    out: dict[int, list[Op]] = {}
    for o in ops:
        out.setdefault(o.root, []).append(o)
    return out


@pytest.mark.parametrize("bad", [dict(targets=0), dict(max_lateness=0)])
def test_config_errors(bad):
    with pytest.raises(ValueError, match="LoadConfig"):
        LoadConfig(**bad)
