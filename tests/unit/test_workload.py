"""The workload schedule: determinism, rates, mix, arguments, client classes, validation."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from harness.workload import (
    OPS,
    Abuser,
    Buggy,
    ClientClass,
    Constant,
    Good,
    Impatient,
    Ingest,
    Mix,
    Population,
    Ramp,
    Scan,
    Sequence,
    ShowCode,
    Step,
    Workload,
    WorkloadError,
    rps,
    x,
)

ONE_GOOD = (ClientClass("good", 1.0, Good()),)


def within(n: int, expected: float, sigmas: float = 5.0) -> bool:
    """A Poisson count lies within `sigmas` standard deviations of its mean."""
    return abs(n - expected) <= sigmas * math.sqrt(max(expected, 1.0))


def test_same_seed_same_arrivals_and_different_seed_differs():
    def run(seed: int):
        wl = Workload(Constant(rps(2000), 2.0), seed=seed)
        return list(wl.schedule().arrivals())

    a, b, c = run(7), run(7), run(8)
    assert a == b
    assert len(a) > 3000
    assert [(e.intended, e.args) for e in a] != [(e.intended, e.args) for e in c]


def test_schedule_is_restartable():
    s = Workload(Constant(rps(500), 1.0), seed=3).schedule()
    assert list(s.arrivals()) == list(s.arrivals())


def test_arrivals_are_time_ordered_indexed_and_within_duration():
    wl = Workload(
        Sequence((Constant(rps(300), 1.0), Ramp(rps(300), rps(900), 1.0))),
        clients=(*ONE_GOOD, ClientClass("abuse", 0.0, Abuser(identities=2, rate=rps(200)))),
        seed=1,
    )
    s = wl.schedule()
    arr = list(s.arrivals())
    times = [a.intended for a in arr]
    assert times == sorted(times)
    assert [a.index for a in arr] == list(range(len(arr)))
    assert times[0] >= 0 and times[-1] < s.duration == 2.0


@pytest.mark.parametrize(
    "profile, expected",
    [
        (Constant(rps(1000), 5.0), 5000),
        (Ramp(rps(0), rps(2000), 5.0), 5000),
        (Ramp(rps(2000), rps(0), 5.0), 5000),
        (Step(rps(100), rps(1900), at=2.5, duration=5.0), 250 + 4750),
    ],
)
def test_counts_match_the_rate_profile(profile, expected):
    s = Workload(profile, clients=ONE_GOOD, seed=11).schedule()
    assert s.expected() == pytest.approx(expected)
    n = sum(1 for _ in s.arrivals())
    assert within(n, expected), (n, expected)


def test_ramp_shape_second_half_carries_three_quarters():
    s = Workload(Ramp(rps(0), rps(4000), 4.0), clients=ONE_GOOD, seed=5).schedule()
    arr = list(s.arrivals())
    late = sum(1 for a in arr if a.intended >= 2.0)
    assert within(late, 6000) and within(len(arr) - late, 2000)


def test_step_jumps_at_its_time():
    s = Workload(Step(rps(200), rps(2000), at=1.0, duration=2.0), clients=ONE_GOOD).schedule()
    arr = list(s.arrivals())
    before = sum(1 for a in arr if a.intended < 1.0)
    assert within(before, 200) and within(len(arr) - before, 2000)


def test_relative_rates_resolve_against_capacity_and_need_it():
    wl = Workload(Constant(x(0.5), 2.0), clients=ONE_GOOD, seed=2)
    s = wl.schedule(capacity=1000.0)
    assert s.rate_at(1.0) == 500.0
    assert within(sum(1 for _ in s.arrivals()), 1000)
    with pytest.raises(WorkloadError, match="capacity"):
        wl.schedule()


def test_compression_shortens_the_profile_not_the_rates():
    wl = Workload(Sequence((Constant(rps(100), 10.0), Constant(rps(1000), 10.0))), seed=4)
    s = wl.schedule(compression=10)
    assert s.duration == pytest.approx(2.0)
    assert s.rate_at(0.5) == 100 and s.rate_at(1.5) == 1000
    assert within(sum(1 for _ in s.arrivals()), 1100)
    # behaviours (client timeouts) are untouched by compression
    assert all(a.behaviour == Impatient() for a in s.arrivals() if a.client_class == "impatient")


def test_mix_shares_and_args():
    mix = Mix(show_code=0.5, scan=0.3, lookup=0.15, ingest=0.05)
    pop = Population(people=1000, venues=50, batch_size=5)
    s = Workload(Constant(rps(10000), 2.0), mix=mix, population=pop, clients=ONE_GOOD).schedule()
    arr = list(s.arrivals())
    n = len(arr)
    by_op = Counter(a.op for a in arr)
    for op in OPS:
        p = getattr(mix, op)
        assert abs(by_op[op] - n * p) <= 5 * math.sqrt(n * p * (1 - p)), (op, by_op)
    for a in arr:
        if a.op == "show_code":
            assert isinstance(a.args, ShowCode) and 1 <= a.args.person_id <= 1000
            assert a.client_id == f"p{a.args.person_id}"
        elif a.op == "scan":
            assert isinstance(a.args, Scan) and 1 <= a.args.venue_id <= 50
        elif a.op == "ingest":
            assert isinstance(a.args, Ingest) and len(a.args.results) == 5
            assert a.client_id.startswith("lab")
    scan_ids = [a.args.scan_id for a in arr if a.op == "scan"]
    assert len(scan_ids) == len(set(scan_ids))
    samples = [r.sample_id for a in arr if a.op == "ingest" for r in a.args.results]
    assert len(samples) == len(set(samples))


def test_venue_popularity_is_zipf():
    pop = Population(venues=100, zipf_s=1.0)
    mix = Mix(show_code=0, scan=1, lookup=0, ingest=0)
    s = Workload(Constant(rps(20000), 1.0), mix=mix, population=pop, clients=ONE_GOOD).schedule()
    c = Counter(a.args.venue_id for a in s.arrivals())
    ranked = [n for _, n in c.most_common()]
    harmonic = sum(1 / k for k in range(1, 101))
    total = sum(ranked)
    assert ranked[0] == pytest.approx(total / harmonic, rel=0.1)  # top venue ~19%
    assert ranked[1] == pytest.approx(total / harmonic / 2, rel=0.15)
    assert len(c) > 90


def test_uniform_popularity_when_zipf_s_is_zero():
    pop = Population(venues=10, zipf_s=0.0)
    mix = Mix(show_code=0, scan=1, lookup=0, ingest=0)
    s = Workload(Constant(rps(20000), 1.0), mix=mix, population=pop, clients=ONE_GOOD).schedule()
    c = Counter(a.args.venue_id for a in s.arrivals())
    assert max(c.values()) / min(c.values()) < 1.2


def test_client_classes_share_arrivals_and_carry_behaviours():
    clients = (
        ClientClass("good", 0.7, Good()),
        ClientClass("impatient", 0.2, Impatient()),
        ClientClass("buggy", 0.1, Buggy()),
    )
    s = Workload(Constant(rps(10000), 1.0), clients=clients, seed=9).schedule()
    arr = list(s.arrivals())
    c = Counter(a.client_class for a in arr)
    for cls in clients:
        p = cls.share
        assert abs(c[cls.name] - len(arr) * p) <= 5 * math.sqrt(len(arr) * p * (1 - p))
    assert all(
        a.behaviour == next(k.behaviour for k in clients if k.name == a.client_class) for a in arr
    )
    assert len({a.seed for a in arr}) > 0.99 * len(arr)


def test_abuser_with_fixed_rate_sends_its_own_stream_from_few_identities():
    clients = (*ONE_GOOD, ClientClass("abuser", 0.0, Abuser(identities=3, rate=rps(500))))
    s = Workload(Constant(rps(100), 4.0), clients=clients, seed=1).schedule()
    arr = list(s.arrivals())
    ab = [a for a in arr if a.client_class == "abuser"]
    assert within(len(ab), 2000) and within(len(arr) - len(ab), 400)
    assert {a.client_id for a in ab} == {"abuser-1", "abuser-2", "abuser-3"}
    # fixed rate: same density in the first and second half although the profile is flat too
    assert within(sum(1 for a in ab if a.intended < 2.0), 1000)


def test_abuser_with_a_share_takes_part_of_the_profile():
    clients = (ClientClass("good", 0.5), ClientClass("abuser", 0.5, Abuser(identities=2)))
    s = Workload(Constant(rps(1000), 1.0), clients=clients).schedule()
    ab = [a for a in s.arrivals() if a.client_class == "abuser"]
    assert within(len(ab), 500) and {a.client_id for a in ab} == {"abuser-1", "abuser-2"}


def test_good_backoff_is_full_jitter_and_capped():
    import random

    g = Good(backoff_base=0.1, backoff_cap=0.3)
    rng = random.Random(0)
    for retry, bound in [(1, 0.1), (2, 0.2), (3, 0.3), (6, 0.3)]:
        vals = [g.backoff(retry, rng) for _ in range(2000)]
        assert min(vals) >= 0 and max(vals) <= bound
        assert max(vals) > 0.9 * bound and min(vals) < 0.1 * bound


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: rps(-1), "rate must be >= 0"),
        (lambda: Constant(rps(1), -1.0), r"Constant.duration"),
        (lambda: Step(rps(1), rps(2), at=5.0, duration=2.0), r"Step.at"),
        (lambda: Mix(0, 0, 0, 0), "sum to 0"),
        (lambda: Population(people=0), "Population.people"),
        (lambda: ClientClass("a", 0.1, Abuser(rate=rps(5))), "share must be 0"),
        (lambda: Workload(Constant(rps(1), 1.0), clients=ONE_GOOD * 2), "unique"),
        (lambda: Workload(Constant(rps(1), 1.0)).schedule(compression=0), "compression"),
    ],
)
def test_errors_say_what_was_wrong(make, match):
    with pytest.raises(WorkloadError, match=match):
        make()
